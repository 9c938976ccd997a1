"""``diagnostic run``: one commune's diagnostic, from parameters to ``<output>/<code>/``.

Parameters are validated before they reach the notebook. The notebook runs
into a staged folder (:func:`diagnostic.pipeline.execution.execute_staged`, the path
``evaluate`` takes too), which replaces the previous report only when everything
succeeded: a failure never destroys a report that was already produced. A failed
notebook is kept in ``<output>/_echecs/<code>/``. The commune's evaluations
(``<code>/evaluation/``) and roadmap (``<code>/feuille_de_route/``) are carried over to the new folder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diagnostic import resources, text
from diagnostic._fs import output_lock, write_atomic
from diagnostic.analysis.commune import validate_params
from diagnostic.analysis.evaluation import FOLDER as EVALUATION_FOLDER
from diagnostic.analysis.roadmap import FOLDER as ROADMAP_FOLDER
from diagnostic.errors import CatalogError, MissingFileError, ParameterError
from diagnostic.io.catalog import read_yaml
from diagnostic.io.reference import indicator_table
from diagnostic.io.territory import TerritoryData, load_territory
from diagnostic.options import BAND_M, INDICATOR
from diagnostic.pipeline.execution import execute, execute_staged
from diagnostic.report.pdf import chromium_path

NOTEBOOK = resources.path("notebooks/diagnostic_territorial.ipynb")
PARAMETERS_FILE = "parametres.json"


@dataclass
class RunResult:
    code: str
    folder: Path
    files: list[str]
    seconds: float


def run_parameters(
    data: TerritoryData,
    code: str,
    *,
    band_m: float = BAND_M,
    domains: list[str] | None = None,
    needs_rules: str | None = None,
    reco_rules: str | None = None,
    indicator: str = INDICATOR,
    tiles: bool = False,
    qpv_codes: list[str] | None = None,
) -> dict[str, Any]:
    """The notebook parameters for one commune, checked (a known commune code, nothing else)."""
    code = str(code).strip()
    validate_params(data, code, band_m, domains, qpv_codes)
    _check_indicator(data, indicator)
    for option, value in (("--needs-rules", needs_rules), ("--reco-rules", reco_rules)):
        if value:
            _check_rules(Path(value), option)
    return {
        "catalog": str(data.catalog.path),
        "commune": code,
        "data_dir": str(data.catalog.data_dir),
        "band_m": float(band_m),
        "domains": list(domains) if domains else None,
        "needs_rules": str(Path(needs_rules).resolve()) if needs_rules else None,
        "reco_rules": str(Path(reco_rules).resolve()) if reco_rules else None,
        "indicator": indicator,
        "tiles": bool(tiles),
        "qpv_codes": sorted(qpv_codes) if qpv_codes else None,
    }


#: The options of a run that ``parametres.json`` records and a batch can take back.
RUN_OPTIONS = ("band_m", "domains", "needs_rules", "reco_rules", "indicator", "tiles", "qpv_codes")


def _check_indicator(data: TerritoryData, indicator: str) -> None:
    """The map's indicator must be one the reference table or the catalogue defines (code 22)."""
    known = set(indicator_table().index)
    for table in (data.qpv_indicators, data.commune_indicators):
        if table is not None:
            known |= set(table.definitions.index)
    if indicator not in known:
        raise ParameterError(f"indicateur « {indicator} » inconnu pour --indicator.",
                             hint=f"indicateurs possibles : {', '.join(sorted(known))}.")


def _check_rules(path: Path, option: str) -> None:
    """A rules file given by the officer: present (code 11) and a readable YAML mapping (code 10)."""
    if not path.is_file():
        raise MissingFileError(f"le fichier de règles donné à {option} est introuvable.", path=path,
                               hint="vérifiez le chemin ; les règles par défaut sont dans diagnostic/resources/rules/.")
    if not isinstance(read_yaml(path, f"fichier de règles ({option})"), dict):
        raise CatalogError(f"le fichier de règles donné à {option} n'a pas la forme attendue.", path=path,
                           hint="partez d'une copie de diagnostic/resources/rules/besoins.yaml ou diagnostic/resources/rules/recommandations.yaml.")
    # Every rule checked now, with the loader the notebook uses (code 10 before any work, not 30 inside it).
    from diagnostic.analysis.indicators.needs import load_rules as need_rules
    from diagnostic.analysis.recommend import load_rules as reco_rules

    (need_rules if option == "--needs-rules" else reco_rules)(path)


def method_of(folder: Path) -> str | None:
    """The method version written in ``folder/resultats.json`` (None without that file)."""
    path = Path(folder) / "resultats.json"
    if not path.exists():
        return None
    return (json.loads(path.read_text(encoding="utf-8")).get("versions") or {}).get("methode")


def saved_options(folder: Path) -> dict[str, Any]:
    """The run options recorded in ``folder/parametres.json`` (empty when there is none)."""
    path = Path(folder) / PARAMETERS_FILE
    if not path.exists():
        return {}
    saved = json.loads(path.read_text(encoding="utf-8"))
    return {k: saved[k] for k in RUN_OPTIONS if k in saved}


def run_commune(
    catalog: str | Path | TerritoryData,
    code: str,
    output: str | Path,
    *,
    data_dir: str | Path | None = None,
    notebook: Path = NOTEBOOK,
    **options: Any,
) -> RunResult:
    """Execute and export the diagnostic of ``code`` into ``output/code``."""
    start = time.perf_counter()
    if options.get("pdf"):
        chromium_path()  # a wrong DIAGNOSTIC_CHROMIUM is refused before any work
    data = catalog if isinstance(catalog, TerritoryData) else load_territory(catalog, data_dir)
    run_parameters(data, code, **{k: v for k, v in options.items() if k != "pdf"})  # refused before writing
    from diagnostic.pipeline.warm import kernel_for

    with output_lock(Path(output).resolve()), kernel_for(data) as kernel:  # the kernel reads the data loaded here
        result = run_territory(data, code, output, notebook=notebook, executor=kernel.execute, **options)
    result.seconds = time.perf_counter() - start
    return result


def run_territory(
    data: TerritoryData,
    code: str,
    output: str | Path,
    *,
    notebook: Path = NOTEBOOK,
    executor: Callable[..., Any] = execute,
    pdf: bool = False,
    **options: Any,
) -> RunResult:
    """:func:`run_commune` on loaded data; ``executor`` runs the notebook (a warm kernel in a batch).

    With ``pdf``, ``rapport.pdf`` is printed beside the HTML from its print stylesheet.
    """
    start = time.perf_counter()
    params = run_parameters(data, code, **options)
    code = params["commune"]
    output = Path(output).resolve()
    commune = data.commune(code)

    def record(folder: Path) -> None:
        # The method version the report was made with, as resultats.json states it.
        recorded = {**params, "methode": method_of(folder)}
        write_atomic(folder / PARAMETERS_FILE, json.dumps(recorded, ensure_ascii=False, indent=2) + "\n")

    files = execute_staged(
        notebook, output, code, params,
        executed="diagnostic.ipynb",
        page="rapport.html",
        export={
            "title": f"Diagnostic territorial — {commune['lib_com']}",
            "subtitle": _subtitle(data, commune),
            "vintages": vintages_in_words(data),
            "fictional": data.catalog.fictional,
            "mark": "Document interne",  # on every printed page of a report on real data (README)
            "place": str(commune["lib_com"]),
            "meta": _cover_meta(commune),
        },
        pdf=pdf,
        keep=(EVALUATION_FOLDER, ROADMAP_FOLDER),
        executor=executor,
        finish=record,
    )
    return RunResult(code, output / code, files, time.perf_counter() - start)


#: Commune columns that name its intercommunality, when the catalogue has one.
EPCI_COLUMNS = ("lib_epci", "nom_epci", "epci_nom", "libelle_epci")


def _cover_meta(commune) -> list[tuple[str, str]]:
    """What the cover says of the commune: its intercommunality when known."""
    for col in EPCI_COLUMNS:
        value = commune.get(col)
        if isinstance(value, str) and value.strip():
            return [("Intercommunalité", value.strip())]
    return []


def _subtitle(data: TerritoryData, commune) -> str:
    from diagnostic.io.reference import department_name, department_regions

    regions = department_regions()
    dep = str(commune.get("insee_dep", ""))
    region = regions.at[dep, "libelle_region"] if dep in regions.index else ""
    where = (department_name(dep) or f"département {dep}") + (f", {region}" if region else "") if dep else ""
    return f"Commune {text.of(commune['lib_com'])}" + (f" ({where})" if where else "")


def vintages_in_words(data: TerritoryData) -> str:
    """The data vintages as a sentence: « indicateurs par QPV de 2021, équipements et services de 2024 et du 1er août
    2025… »; QPVs known as a list without outlines are called « liste des QPV », not « contours »."""
    import datetime as dt

    years: dict[str, list[str]] = {}
    days: dict[str, list[dt.date]] = {}
    outlines = "geometry" in data.qpv and data.qpv.geometry.notna().any()
    for v in data.vintages():
        if v["millesime"]:
            role = v["role"] if outlines or v["role"] != "contours des QPV" else "liste des QPV"
            value = str(v["millesime"])
            try:
                day = dt.date.fromisoformat(value)
            except ValueError:
                if value not in years.setdefault(role, []):
                    years[role].append(value)
            else:
                if day not in days.setdefault(role, []):
                    days[role].append(day)
    parts = [f"{role} " + text.join([f"de {text.join(sorted(years.get(role, [])))}" if years.get(role) else "",
                                     *[text.of_date(day) for day in sorted(days.get(role, []))]])
             for role in dict.fromkeys([*years, *days])]
    return text.sentence(" ; ".join(parts)) if parts else ""
