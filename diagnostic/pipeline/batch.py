"""``diagnostic batch``: every commune of a region, on Dask, incremental and resumable.

Each commune gets exactly what ``diagnostic run`` gives it (:func:`diagnostic.pipeline.run.run_territory`),
executed on a Dask cluster (a local one sized to the machine, or ``--scheduler``)
whose workers keep a warm Jupyter kernel (:mod:`diagnostic.pipeline.warm`). The shared
indicator tables are computed once, into the on-disk cache every worker reads.

A commune is skipped when its input hash (data, rules, notebook, report template,
officer texts, parameters, workbench version) matches the last success recorded
in ``manifest.json``, which is rewritten atomically as communes complete. Reports
are moved into place whole, so a batch killed at any moment and started again
finishes the rest. ``index.html`` maps the communes and links to their reports.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diagnostic import __version__
from diagnostic import text as text_fr
from diagnostic._fs import FAILED_DIR, is_leftover, output_lock
from diagnostic.analysis.indicators.cache import compute
from diagnostic.errors import BatchError, DiagnosticError, ParameterError
from diagnostic.io.territory import TerritoryData, load_territory
from diagnostic.options import BAND_M, INDICATOR, WORKER_TIMEOUT_S
from diagnostic.pipeline.cluster import (
    GONE,
    NO_SCHEDULER,
    NO_WORKER,
    NoWorkers,
    check_scheduler_address,
    dask_client,
    gather,
)
from diagnostic.pipeline.manifest import (
    SCHEMA,
    input_hashes,
    read_manifest,
    up_to_date,
    write_manifest,
)
from diagnostic.pipeline.run import NOTEBOOK, run_parameters, saved_options
from diagnostic.report.batch_index import INDEX, preload, write_index


@dataclass
class BatchResult:
    """What a batch did: the manifest entries of its communes, and the pages it wrote."""

    output: Path
    entries: dict[str, dict[str, Any]]
    seconds: float
    #: Communes left undone because every Dask worker, or the scheduler, was lost.
    lost: int = 0
    #: Why they were left (:data:`NO_WORKER` or :data:`NO_SCHEDULER`).
    lost_reason: str = NO_WORKER

    def codes(self, status: str) -> list[str]:
        return [c for c, e in self.entries.items() if e["statut"] == status]

    @property
    def exit_code(self) -> int:
        return BatchError.exit_code if self.codes("echec") else 0


def select_communes(
    data: TerritoryData,
    *,
    department: str | None = None,
    communes: Sequence[str] | None = None,
    all_communes: bool = False,
) -> list[str]:
    """The communes to diagnose: those given, or every commune (with a QPV unless ``all_communes``)."""
    if communes:
        codes = list(dict.fromkeys(str(c).strip() for c in communes if str(c).strip()))
        for code in codes:
            data.commune(code)
        return codes
    table = data.communes if all_communes else data.communes[data.communes["qpv_count"] > 0]
    if department:
        table = table[table["insee_dep"].astype(str) == str(department)]
    if table.empty:
        raise ParameterError("aucune commune à traiter pour cette sélection.",
                             hint="« diagnostic territories --catalog … --with-qpv » liste les communes ayant un QPV.")
    return sorted(table["insee_com"])


def clean_leftovers(output: Path) -> list[Path]:
    """Remove the temporary files and folders a killed batch, run or evaluation left (:func:`is_leftover`)."""
    removed = []
    for folder in (output, output / FAILED_DIR):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if is_leftover(path):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
                removed.append(path)
    return removed


def _run_task(catalog: str, data_dir: str | None, code: str, output: str, notebook: str,
              options: dict[str, Any], shipped: str | None = None) -> dict[str, Any]:
    """One commune, on a Dask worker: never raises, returns its manifest entry.

    ``shipped``: the batch's loaded territory, pickled (read instead of the catalogue where it is seen).
    """
    from distributed import get_worker

    from diagnostic.pipeline.run import method_of, run_territory
    from diagnostic.pipeline.warm import WarmKernels

    start = time.perf_counter()
    plugin: WarmKernels = get_worker().plugins[WarmKernels.name]
    entry: dict[str, Any] = {"statut": "echec", "fichiers": [], "erreur": None, "chemin_erreur": None}
    try:
        pickled = Path(shipped) if shipped else None
        data = plugin.territory(catalog, data_dir, pickled)
        with plugin.kernel() as kernel:
            if pickled is not None and pickled.is_file():
                kernel.remember(pickled)
            result = run_territory(data, code, output, notebook=Path(notebook), executor=kernel.execute, **options)
        entry.update(statut="ok", fichiers=result.files, methode=method_of(result.folder))
    except DiagnosticError as exc:
        entry.update(erreur=exc.message, chemin_erreur=str(exc.path) if exc.path else None)
    except Exception as exc:  # noqa: BLE001 — one commune's failure must not stop the others
        entry.update(erreur=f"{type(exc).__name__} : {exc}")
    entry["duree_s"] = round(time.perf_counter() - start, 2)
    return entry


def _submit_and_gather(client: Any, todo: list[str], data: TerritoryData, output: Path, notebook: Path,
                       per_commune: dict[str, dict[str, Any]], pdf: bool, hashes: dict[str, str],
                       names: Any, entries: dict[str, Any], manifest: dict[str, Any], worker_timeout_s: float,
                       quiet: bool) -> None:
    """Run the ``todo`` communes on ``client``'s cluster, recording each outcome in the manifest as it comes.

    The loaded territory is pickled once into a private folder, where the workers
    and their kernels read it instead of loading the catalogue again.
    Raises :class:`NoWorkers` when every worker or the scheduler is lost (what finished is kept).
    """
    from diagnostic.pipeline.warm import WarmKernels, shipped

    try:
        client.register_plugin(WarmKernels())
    except GONE:  # the workers died while their kernels started, or the scheduler is gone
        for code in todo:
            entries[code] = {"nom": names[code], "statut": "echec", "fichiers": [], "erreur": NO_WORKER,
                             "chemin_erreur": None, "duree_s": None, "empreinte": hashes[code]}
        raise NoWorkers(len(todo)) from None
    with shipped(data) as pickled:
        futures = {
            client.submit(_run_task, str(data.catalog.path), str(data.catalog.data_dir), code, str(output),
                          str(notebook), {**per_commune[code], "pdf": pdf}, str(pickled),
                          key=f"diagnostic-{code}-{hashes[code][:12]}", pure=False): code
            for code in todo
        }
        _gather_into(client, futures, todo, output, hashes, names, entries, manifest, worker_timeout_s, quiet)
    with suppress(*GONE):  # every report is in: a scheduler lost now costs nothing
        client.unregister_worker_plugin(WarmKernels.name)


def _gather_into(client: Any, futures: dict[Any, str], todo: list[str], output: Path, hashes: dict[str, str],
                 names: Any, entries: dict[str, Any], manifest: dict[str, Any], worker_timeout_s: float,
                 quiet: bool) -> None:
    """Record each commune's outcome in the manifest as it comes, with a progress bar."""
    from tqdm import tqdm

    bar = tqdm(total=len(futures), unit="rapport", disable=quiet, desc="Rapports", smoothing=0.1)
    try:
        for code, entry in gather(client, futures, worker_timeout_s):
            entries[code] = {"nom": names[code], **entry, "empreinte": hashes[code]}
            write_manifest(output, manifest)
            bar.update()
            if entry["statut"] == "echec":
                failed = sum(e["statut"] == "echec" for c, e in entries.items() if c in todo)
                bar.set_postfix_str(text_fr.count(failed, "échec"))
    finally:
        bar.close()


def check_options(scheduler: str | None, workers: int | None, worker_timeout_s: float) -> None:
    """Raise :class:`ParameterError` (code 22) on a batch option that cannot work, before any work."""
    if scheduler is not None:
        check_scheduler_address(scheduler)
    if workers is not None and workers < 1:
        raise ParameterError(f"--workers doit être un nombre entier d'au moins 1 (reçu : {workers}).")
    if not math.isfinite(worker_timeout_s) or worker_timeout_s <= 0:
        raise ParameterError(f"--worker-timeout doit être une durée positive en secondes (reçu : {worker_timeout_s}).",
                             hint=f"par défaut {text_fr.number(WORKER_TIMEOUT_S, 0)} s.")


def run_batch(
    catalog: str | Path,
    output: str | Path,
    *,
    communes: Sequence[str] | None = None,
    department: str | None = None,
    all_communes: bool = False,
    data_dir: str | Path | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    force: bool = False,
    quiet: bool = False,
    keep_parameters: bool = False,
    notebook: Path = NOTEBOOK,
    pdf: bool = False,
    dashboard: bool = False,
    worker_timeout_s: float = WORKER_TIMEOUT_S,
    **options: Any,
) -> BatchResult:
    """Diagnose many communes into ``output``; see the module docstring.

    With ``keep_parameters``, a commune whose folder holds a ``parametres.json``
    (from an earlier run or an export from the explorer) is redone with those
    parameters instead of ``options``, so that regeneration reproduces it.
    With ``pdf``, each report gets its ``rapport.pdf``.
    """
    check_options(scheduler, workers, worker_timeout_s)
    start = time.perf_counter()
    output = Path(output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    notebook = Path(notebook).resolve()
    lost, lost_reason = 0, NO_WORKER
    with output_lock(output, exclusive=True):
        clean_leftovers(output)
        data = load_territory(catalog, data_dir)
        codes = select_communes(data, department=department, communes=communes, all_communes=all_communes)
        per_commune = {code: {**options, **(saved_options(output / code) if keep_parameters else {})}
                       for code in codes}
        params = {code: run_parameters(data, code, **per_commune[code]) for code in codes}
        hashes = input_hashes(data, params, notebook)
        manifest = read_manifest(output)
        manifest.update(schema=SCHEMA, catalogue=str(data.catalog.path), version=__version__)
        entries = manifest["communes"]
        names = data.communes.set_index("insee_com")["lib_com"]
        todo = []
        for code in codes:
            if not force and up_to_date(entries.get(code), hashes[code], output / code):
                entries[code]["statut"] = "ignore"
            else:
                todo.append(code)
        write_manifest(output, manifest)
        if todo:
            compute(data, band_m=options.get("band_m", BAND_M), rules_path=options.get("needs_rules"),
                    reco_path=options.get("reco_rules"))
            preload()  # while the cluster starts and the reports run
            with dask_client(scheduler, workers, dashboard, timeout_s=min(30.0, worker_timeout_s)) as client:
                try:
                    _submit_and_gather(client, todo, data, output, notebook, per_commune, pdf, hashes, names,
                                       entries, manifest, worker_timeout_s, quiet)
                except NoWorkers as exc:
                    lost, lost_reason = exc.left, exc.reason
        for code in codes:
            entries[code]["nom"] = names[code]
        write_manifest(output, manifest)
        write_index(output, data, manifest, indicator=options.get("indicator", INDICATOR),
                    band_m=options.get("band_m", BAND_M), needs_rules=options.get("needs_rules"),
                    reco_rules=options.get("reco_rules"))
    return BatchResult(output, {code: entries[code] for code in codes}, time.perf_counter() - start, lost, lost_reason)


def summary(result: BatchResult) -> str:
    """The French end-of-batch summary: counts, then each failure with its reason and path."""
    ok, skipped, failed = result.codes("ok"), result.codes("ignore"), result.codes("echec")
    lines = [(f"Traitement par lot terminé en {text_fr.number(result.seconds, 1, 's')} : "
              f"{text_fr.count(len(ok), 'rapport produit', 'rapports produits')}, "
              f"{text_fr.count(len(skipped), 'inchangé', 'inchangés')}, {text_fr.count(len(failed), 'échec')}."),
             f"Vue d'ensemble : {result.output / INDEX}"]
    if result.lost:
        why = ("l'ordonnanceur Dask ne répond plus" if result.lost_reason == NO_SCHEDULER
               else "plus aucun processus de calcul Dask n'est en vie")
        lines.insert(0, f"Lot arrêté : {why} ; "
                        f"{text_fr.count(result.lost, 'commune non traitée', 'communes non traitées')}. Relancez la même commande pour les reprendre (ce qui est fait est gardé).")
    if failed:
        lines.append("Échecs :")
        for code in failed:
            e = result.entries[code]
            lines.append(f"  - {e.get('nom', code)} ({code}) : {e.get('erreur')}")
            if e.get("chemin_erreur"):
                lines.append(f"    Carnet conservé : {e['chemin_erreur']}")
    return "\n".join(lines)


def cmd_batch(args: argparse.Namespace) -> int:
    from diagnostic.cli import _domains

    communes = [c for c in args.communes.split(",")] if args.communes else None
    result = run_batch(
        args.catalog, args.output, communes=communes, department=args.department, all_communes=args.all,
        data_dir=args.data_dir, scheduler=args.scheduler, workers=args.workers, force=args.force, quiet=args.quiet,
        keep_parameters=args.keep_parameters, dashboard=args.dashboard, worker_timeout_s=args.worker_timeout,
        band_m=args.band_m, domains=_domains(args.domains), needs_rules=args.needs_rules,
        reco_rules=args.reco_rules, indicator=args.indicator, tiles=args.tiles, pdf=args.pdf,
    )
    text = summary(result)
    if result.exit_code:
        print(text, file=sys.stderr)
    elif not args.quiet:
        print(text)
    return result.exit_code

