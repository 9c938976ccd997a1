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
import shutil
import sys
import time
from collections.abc import Sequence
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
from diagnostic.pipeline.cluster import NO_WORKER, NoWorkers, dask_client, gather
from diagnostic.pipeline.manifest import (
    SCHEMA,
    input_hashes,
    read_manifest,
    up_to_date,
    write_manifest,
)
from diagnostic.pipeline.run import NOTEBOOK, run_parameters, saved_options
from diagnostic.report.batch_index import INDEX, write_index


@dataclass
class BatchResult:
    """What a batch did: the manifest entries of its communes, and the pages it wrote."""

    output: Path
    entries: dict[str, dict[str, Any]]
    seconds: float
    #: Communes left undone because every Dask worker was lost.
    lost: int = 0

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
              options: dict[str, Any]) -> dict[str, Any]:
    """One commune, on a Dask worker: never raises, returns its manifest entry."""
    from distributed import get_worker

    from diagnostic.pipeline.run import method_of, run_territory
    from diagnostic.pipeline.warm import WarmKernels

    start = time.perf_counter()
    plugin: WarmKernels = get_worker().plugins[WarmKernels.name]
    entry: dict[str, Any] = {"statut": "echec", "fichiers": [], "erreur": None, "chemin_erreur": None}
    try:
        data = plugin.territory(catalog, data_dir)
        with plugin.kernel() as kernel:
            result = run_territory(data, code, output, notebook=Path(notebook), executor=kernel.execute, **options)
        entry.update(statut="ok", fichiers=result.files, methode=method_of(result.folder))
    except DiagnosticError as exc:
        entry.update(erreur=exc.message, chemin_erreur=str(exc.path) if exc.path else None)
    except Exception as exc:  # noqa: BLE001 — one commune's failure must not stop the others
        entry.update(erreur=f"{type(exc).__name__} : {exc}")
    entry["duree_s"] = round(time.perf_counter() - start, 2)
    return entry


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
    from tqdm import tqdm

    from diagnostic.pipeline.warm import WarmKernels

    start = time.perf_counter()
    output = Path(output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    notebook = Path(notebook).resolve()
    lost = 0
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
            compute(data, band_m=options.get("band_m", BAND_M), domains=options.get("domains"),
                    rules_path=options.get("needs_rules"))
            with dask_client(scheduler, workers, dashboard) as client:
                try:
                    client.register_plugin(WarmKernels())
                except OSError:  # the workers died while their kernels started
                    lost = len(todo)
                    for code in todo:
                        entries[code] = {"nom": names[code], "statut": "echec", "fichiers": [], "erreur": NO_WORKER,
                                         "chemin_erreur": None, "duree_s": None, "empreinte": hashes[code]}
                try:
                    if lost:
                        raise NoWorkers(lost)
                    futures = {
                        client.submit(_run_task, str(data.catalog.path), str(data.catalog.data_dir), code,
                                      str(output), str(notebook), {**per_commune[code], "pdf": pdf},
                                      key=f"diagnostic-{code}-{hashes[code][:12]}",
                                      pure=False): code
                        for code in todo
                    }
                    bar = tqdm(total=len(futures), unit="rapport", disable=quiet, desc="Rapports", smoothing=0.1)
                    try:
                        for code, entry in gather(client, futures, worker_timeout_s):
                            entries[code] = {"nom": names[code], **entry, "empreinte": hashes[code]}
                            write_manifest(output, manifest)
                            bar.update()
                            if entry["statut"] == "echec":
                                failed = sum(e["statut"] == "echec" for c, e in entries.items() if c in todo)
                                bar.set_postfix_str(text_fr.count(failed, "échec"))
                    except NoWorkers as exc:
                        lost = exc.args[0]
                    bar.close()
                except NoWorkers:
                    pass
                finally:
                    if not lost:
                        client.unregister_worker_plugin(WarmKernels.name)
        for code in codes:
            entries[code]["nom"] = names[code]
        write_manifest(output, manifest)
        write_index(output, data, manifest, indicator=options.get("indicator", INDICATOR),
                    band_m=options.get("band_m", BAND_M), domains=options.get("domains"),
                    needs_rules=options.get("needs_rules"))
    return BatchResult(output, {code: entries[code] for code in codes}, time.perf_counter() - start, lost)


def summary(result: BatchResult) -> str:
    """The French end-of-batch summary: counts, then each failure with its reason and path."""
    ok, skipped, failed = result.codes("ok"), result.codes("ignore"), result.codes("echec")
    lines = [(f"Traitement par lot terminé en {text_fr.number(result.seconds, 1, 's')} : "
              f"{text_fr.count(len(ok), 'rapport produit', 'rapports produits')}, "
              f"{text_fr.count(len(skipped), 'inchangé', 'inchangés')}, {text_fr.count(len(failed), 'échec')}."),
             f"Vue d'ensemble : {result.output / INDEX}"]
    if result.lost:
        lines.insert(0, f"Lot arrêté : plus aucun processus de calcul Dask n'est en vie ; "
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

