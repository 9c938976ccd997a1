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
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import yaml
from markupsafe import Markup

from diagnostic import __version__, resources
from diagnostic import text as text_fr
from diagnostic._fs import FAILED_DIR, is_leftover, output_lock, write_atomic
from diagnostic.analysis.indicators.cache import compute
from diagnostic.analysis.indicators.needs import RULES_FILE as NEEDS_RULES
from diagnostic.analysis.recommend import LOCAL_FILE
from diagnostic.analysis.recommend import RULES_FILE as RECO_RULES
from diagnostic.errors import BatchError, DiagnosticError, ParameterError
from diagnostic.io.reference import DOMAINS_FILE, INDICATORS_FILE, indicator_table
from diagnostic.io.territory import TerritoryData, load_territory
from diagnostic.options import BAND_M, INDICATOR, WORKER_TIMEOUT_S
from diagnostic.pipeline.run import NOTEBOOK, run_parameters, saved_options
from diagnostic.report.export import TEMPLATE_DIR, fr_number

MANIFEST = "manifest.json"
INDEX = "index.html"
SCHEMA = "diagnostic-manifeste/1"
STATUS_LABELS = {"ok": "produit", "ignore": "inchangé", "echec": "échec"}
#: Seconds a batch waits with no worker alive before it stops (``--worker-timeout``).
NO_WORKER = "non traitée : plus aucun processus de calcul Dask n'était en vie (relancez le lot pour la reprendre)"


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


def _sha(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def _files(paths: Sequence[Path]) -> bytes:
    return b"".join(p.name.encode() + b"\0" + p.read_bytes() for p in paths if p.is_file())


def input_hashes(data: TerritoryData, params: dict[str, dict[str, Any]], notebook: Path = NOTEBOOK) -> dict[str, str]:
    """Per commune, a SHA-256 over everything its report depends on.

    The officer's local recommendations count in full for their global part and,
    for ``par_commune``, only the section of that commune: editing one commune's
    section re-runs that commune alone.
    """
    any_params = next(iter(params.values()), {})
    rules = [Path(any_params.get(k) or default)
             for k, default in (("needs_rules", NEEDS_RULES), ("reco_rules", RECO_RULES))]
    texts = sorted(data.catalog.texts_dir.glob("*.md")) if data.catalog.texts_dir.is_dir() else []
    common = _sha(
        data.catalog.fingerprint().encode(), _files(rules), _files([INDICATORS_FILE, DOMAINS_FILE]),
        Path(notebook).read_bytes(), _files(sorted(p for p in TEMPLATE_DIR.rglob("*") if p.is_file())),
        _files(texts), __version__.encode(),
    )
    local_path = data.catalog.path.parent / LOCAL_FILE
    local_raw = local_path.read_bytes() if local_path.exists() else b""
    try:
        local = yaml.safe_load(local_raw) or {}
    except yaml.YAMLError:
        local = local_raw.decode(errors="replace")
    per_commune = (local.pop("par_commune", None) or {}) if isinstance(local, dict) else {}

    def dump(value: Any) -> bytes:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode()

    return {
        code: _sha(common.encode(), dump(local), dump(per_commune.get(code)), dump(p))
        for code, p in params.items()
    }


def _up_to_date(entry: dict[str, Any] | None, digest: str, folder: Path) -> bool:
    return bool(
        entry and entry.get("statut") in ("ok", "ignore") and entry.get("empreinte") == digest
        and entry.get("fichiers") and all((folder / f).is_file() for f in entry["fichiers"])
    )


def read_manifest(output: Path) -> dict[str, Any]:
    path = Path(output) / MANIFEST
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"schema": SCHEMA, "communes": {}}


def _write_manifest(output: Path, manifest: dict[str, Any]) -> None:
    manifest["mis_a_jour"] = dt.datetime.now().isoformat(timespec="seconds")
    write_atomic(output / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")


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


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None, dashboard: bool = False) -> Iterator[Any]:
    """A client of ``scheduler``, or of a local cluster: one single-threaded process per core.

    The local cluster (scheduler, workers and, with ``dashboard``, the Dask
    dashboard) listens on 127.0.0.1 only: nothing is reachable from another machine.
    """
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise BatchError(f"l'ordonnanceur Dask {scheduler} ne répond pas ({type(exc).__name__}).",
                             hint="vérifiez l'adresse donnée à --scheduler et que l'ordonnanceur est démarré.") from None
        with client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:8787" if dashboard else None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        if dashboard:
            print(f"Tableau de bord Dask (sur cette machine seulement) : {client.dashboard_link}", file=sys.stderr)
        yield client


def _gather(client: Any, futures: dict[Any, str], timeout_s: float) -> Iterator[tuple[str, dict[str, Any]]]:
    """(code, manifest entry) as communes finish; stops when no worker has been alive for ``timeout_s``.

    A worker that dies takes its commune with it (an « échec »); when every
    worker is gone and none comes back in time, the communes left are reported
    as not done, so that the batch ends instead of waiting forever.
    """
    from distributed import wait

    pending = set(futures)
    alone_since: float | None = None
    while pending:
        try:
            done, pending = wait(pending, timeout=min(2.0, timeout_s), return_when="FIRST_COMPLETED")
        except TimeoutError:  # nothing finished in this poll
            done = set()
        for future in done:
            try:
                entry = future.result()
            except Exception as exc:  # noqa: BLE001 — the worker died (memory, signal): go on
                entry = {"statut": "echec", "fichiers": [], "erreur": f"{type(exc).__name__} : {exc}",
                         "chemin_erreur": None, "duree_s": None}
            yield futures[future], entry
        if not pending:
            return
        if client.scheduler_info().get("workers"):
            alone_since = None
        elif alone_since is None:
            alone_since = time.monotonic()
        elif time.monotonic() - alone_since >= timeout_s:
            client.cancel(list(pending))
            for future in sorted(pending, key=lambda f: futures[f]):
                yield futures[future], {"statut": "echec", "fichiers": [], "erreur": NO_WORKER,
                                        "chemin_erreur": None, "duree_s": None}
            raise _NoWorkers(len(pending))


class _NoWorkers(Exception):
    """Every worker was lost; carries how many communes were left."""


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
            if not force and _up_to_date(entries.get(code), hashes[code], output / code):
                entries[code]["statut"] = "ignore"
            else:
                todo.append(code)
        _write_manifest(output, manifest)
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
                        raise _NoWorkers(lost)
                    futures = {
                        client.submit(_run_task, str(data.catalog.path), str(data.catalog.data_dir), code,
                                      str(output), str(notebook), {**per_commune[code], "pdf": pdf},
                                      key=f"diagnostic-{code}-{hashes[code][:12]}",
                                      pure=False): code
                        for code in todo
                    }
                    bar = tqdm(total=len(futures), unit="rapport", disable=quiet, desc="Rapports", smoothing=0.1)
                    try:
                        for code, entry in _gather(client, futures, worker_timeout_s):
                            entries[code] = {"nom": names[code], **entry, "empreinte": hashes[code]}
                            _write_manifest(output, manifest)
                            bar.update()
                            if entry["statut"] == "echec":
                                failed = sum(e["statut"] == "echec" for c, e in entries.items() if c in todo)
                                bar.set_postfix_str(text_fr.count(failed, "échec"))
                    except _NoWorkers as exc:
                        lost = exc.args[0]
                    bar.close()
                except _NoWorkers:
                    pass
                finally:
                    if not lost:
                        client.unregister_worker_plugin(WarmKernels.name)
        for code in codes:
            entries[code]["nom"] = names[code]
        _write_manifest(output, manifest)
        write_index(output, data, manifest, indicator=options.get("indicator", INDICATOR),
                    band_m=options.get("band_m", BAND_M), domains=options.get("domains"),
                    needs_rules=options.get("needs_rules"))
    return BatchResult(output, {code: entries[code] for code in codes}, time.perf_counter() - start, lost)


def _indicator_by_commune(data: TerritoryData, key: str, **indicators: Any) -> tuple[pd.Series, str]:
    """``key`` per commune for the overview map: the commune's value, or else its QPVs' weighted mean."""
    ind = compute(data, band_m=indicators.get("band_m", BAND_M), domains=indicators.get("domains"),
                  rules_path=indicators.get("needs_rules"))
    try:
        label = str(indicator_table().loc[key, "libelle"])
    except KeyError:
        label = key
    com = ind.commune_social
    if len(com) and (com["indicator"] == key).any():
        return com[com["indicator"] == key].set_index("insee_com")["value"].astype(float), label
    qpv = ind.qpv_social
    if not len(qpv) or not (qpv["indicator"] == key).any():
        return pd.Series(dtype=float), label
    value = qpv[qpv["indicator"] == key].set_index("code_qp")["value"]
    weight = qpv[qpv["indicator"] == "population"].set_index("code_qp")["value"]
    pairs = data.qpv_communes.assign(v=lambda d: d["code_qp"].map(value),
                                     w=lambda d: d["code_qp"].map(weight).fillna(1.0)).dropna(subset=["v"])
    pairs = pairs.assign(vw=pairs["v"].astype(float) * pairs["w"])
    grouped = pairs.groupby("insee_com")
    return grouped["vw"].sum() / grouped["w"].sum(), f"{label} (moyenne des QPV, pondérée par la population)"


_INDEX_TEMPLATE = jinja2.Environment(
    loader=jinja2.FileSystemLoader(resources.path("batch")), autoescape=True, keep_trailing_newline=True,
).get_template("index.html.j2")


def _isna(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)  # noqa: PLR0124 — NaN test


def _read_results(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "resultats.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_index(output: Path, data: TerritoryData, manifest: dict[str, Any], *, indicator: str = INDICATOR,
                **indicators: Any) -> Path:
    """The regional page: key figures, overview map coloured by ``indicator``, sortable table, failures.

    ``indicators`` are the options of the indicator tables (``band_m``, ``domains``, ``needs_rules``).
    The page is ``diagnostic/resources/batch/index.html.j2`` rendered with autoescaping: names, errors and paths
    from data are escaped; only the project's CSS and map are marked safe (the page's own style and
    script are included from the same folder).
    """
    from diagnostic.report.maps import map_assets, map_fragment, overview_map

    entries = {c: e for c, e in sorted(manifest["communes"].items()) if c in set(data.communes["insee_com"])}
    values, label = _indicator_by_commune(data, indicator, **indicators)
    rows, failures, links = [], [], {}
    for code, entry in entries.items():
        res = _read_results(output / code)
        com = res.get("commune", {})
        link = f"{code}/rapport.html" if (output / code / "rapport.html").is_file() else ""
        links[code] = link
        strong = sum(1 for b in res.get("besoins_non_couverts", []) if b.get("niveau") == "fort") if res else None
        name = entry.get("nom") or com.get("nom") or code
        recommendations = len(res["recommandations"]) if res else None
        cells = [
            (code, code, "num"),
            (name, name, ""),
            (com.get("population"), fr_number(com.get("population")), "num"),
            (com.get("nombre_qpv"), fr_number(com.get("nombre_qpv")), "num"),
            (com.get("part_population_qpv"), fr_number(com.get("part_population_qpv"), 1, "%"), "num"),
            (values.get(code), fr_number(values.get(code), 1), "num"),
            (strong, fr_number(strong), "num"),
            (recommendations, fr_number(recommendations), "num"),
            (entry["statut"], STATUS_LABELS.get(entry["statut"], entry["statut"]), f"statut-{entry['statut']}"),
            (entry.get("duree_s"), fr_number(entry.get("duree_s"), 1), "num"),
        ]
        rows.append([{"sort": "" if _isna(v) else str(v), "text": text, "css": css, "link": link if i == 1 else ""}
                     for i, (v, text, css) in enumerate(cells)])
        if entry["statut"] == "echec":
            failures.append({"name": name, "code": code, "error": entry.get("erreur") or "",
                             "path": entry.get("chemin_erreur")})
    shapes = data.communes[data.communes["insee_com"].isin(entries)].copy()
    shapes[indicator] = shapes["insee_com"].map(values)
    shapes["rapport"] = shapes["insee_com"].map(links)
    carte = map_fragment(overview_map(shapes, indicator=indicator, indicator_label=label), height="560px") if len(shapes) else ""
    page = _INDEX_TEMPLATE.render(
        name=data.catalog.name, fictional=data.catalog.fictional, version=__version__,
        date=dt.date.today().strftime("%d/%m/%Y"), communes=text_fr.count(len(entries), "commune", "communes"), label=label,
        count={s: sum(e["statut"] == s for e in entries.values()) for s in STATUS_LABELS},
        heads=["Code", "Commune", "Population", "QPV", "Population en QPV", label, "Besoins forts",
               "Préconisations", "Statut", "Durée (s)"],
        rows=rows, failures=failures,
        # Built by the project itself, never from data:
        css=Markup((TEMPLATE_DIR / "report.css").read_text(encoding="utf-8")),
        map_assets=Markup(map_assets()), carte=Markup(carte),
    )
    return write_atomic(output / INDEX, page)


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

