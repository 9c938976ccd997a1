"""``index.html`` of a batch: key figures, the overview map coloured by an indicator, the sortable table, failures."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from diagnostic import __version__, resources
from diagnostic import text as text_fr
from diagnostic._fs import write_atomic
from diagnostic.analysis.indicators.cache import compute
from diagnostic.io.reference import indicator_table
from diagnostic.io.territory import TerritoryData
from diagnostic.options import BAND_M, INDICATOR
from diagnostic.report.export import TEMPLATE_DIR, fr_number

#: The page's file name in a batch's output folder, and how it says each outcome.
INDEX = "index.html"
STATUS_LABELS = {"ok": "produit", "ignore": "inchangé", "echec": "échec"}


def _indicator_by_commune(data: TerritoryData, key: str, **indicators: Any) -> tuple[pd.Series, str]:
    """``key`` per commune for the overview map: the commune's value, or else its QPVs' weighted mean."""
    ind = compute(data, band_m=indicators.get("band_m", BAND_M), rules_path=indicators.get("needs_rules"),
                  reco_path=indicators.get("reco_rules"))
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
    """True for None and NaN: the table sorts them as empty."""
    return value is None or (isinstance(value, float) and value != value)  # noqa: PLR0124 — NaN test


def _read_results(folder: Path) -> dict[str, Any]:
    """A commune's ``resultats.json``, or nothing when it has none (a failed commune)."""
    try:
        return json.loads((folder / "resultats.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _import_map_modules() -> None:
    import mapclassify  # noqa: F401 — imported ahead, see preload

    import diagnostic.report.maps  # noqa: F401


def preload() -> None:
    """Import the page's map modules (folium, mapclassify with scipy: about 2 s) in a thread started now, so that
    a batch does it while its reports run rather than after the last one."""
    threading.Thread(target=_import_map_modules, name="diagnostic-index-imports", daemon=True).start()


def write_index(output: Path, data: TerritoryData, manifest: dict[str, Any], *, indicator: str = INDICATOR,
                **indicators: Any) -> Path:
    """The regional page: key figures, overview map coloured by ``indicator``, sortable table, failures.

    ``indicators`` are the options of the indicator tables (``band_m``, ``needs_rules``, ``reco_rules``).
    The page is ``diagnostic/resources/batch/index.html.j2`` rendered with autoescaping: names, errors and paths
    from data are escaped; only the project's CSS and map are marked safe (the page's own style and
    script are included from the same folder).
    """
    from diagnostic.report.maps import map_assets, map_fragment, overview_map

    known = set(data.communes["insee_com"])
    entries = {c: e for c, e in sorted(manifest["communes"].items()) if c in known}
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
