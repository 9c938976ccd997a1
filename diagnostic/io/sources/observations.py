"""Expressed needs: observations and consultation answers from partners and residents.

A CSV with French headers, one row per observation: ``date``, where (``qpv``
code, ``code_commune`` or ``x``/``y`` with ``crs:`` in the catalogue), ``domaine``
(a key of the mediation domains), ``type_probleme`` (``diagnostic/resources/tables/types_problemes.csv``),
``source`` (questionnaire, marche exploratoire, réunion, entretien), ``poids``
(default 1, from 0 to 100) and an optional ``commentaire``. Problem types and sources are
checked; nothing is dropped silently.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from diagnostic import resources
from diagnostic.errors import UnknownCommuneError
from diagnostic.io.catalog import Source
from diagnostic.io.reference import DOMAINS
from diagnostic.io.sources._io import (
    LoadReport,
    check_known,
    check_range,
    names_sheet,
    parse_dates,
    points_from_columns,
    read_table,
    refuse,
    require_keys,
    to_number,
)
from diagnostic.io.sources.personal import check_confidentiality
from diagnostic.text import fold

PROBLEMS_FILE = resources.path("tables/types_problemes.csv")
#: Largest weight an observation may carry (a walk of 100 residents counted as one line, at most).
MAX_WEIGHT = 100.0
SOURCE_TYPES = {
    "questionnaire": "questionnaire",
    "marche exploratoire": "marche exploratoire",
    "reunion": "réunion",
    "entretien": "entretien",
}
COLUMNS = {"date": "date", "qpv": "qpv", "insee_com": "code_commune", "x": "x", "y": "y", "domain": "domaine",
           "problem": "type_probleme", "source_type": "source", "weight": "poids", "comment": "commentaire"}


def _plain(text: str) -> str:
    """Lower case without accents, underscores as spaces: « Marche_exploratoire » → « marche exploratoire »."""
    return fold(text).replace("_", " ").strip()


def problem_types() -> pd.DataFrame:
    return pd.read_csv(PROBLEMS_FILE, sep=";", dtype=str).set_index("cle")


@names_sheet
def load_observations(
    source: Source, communes: gpd.GeoDataFrame, qpv: gpd.GeoDataFrame
) -> tuple[pd.DataFrame, LoadReport]:
    report = LoadReport(source.role, source.path)
    cols = {**COLUMNS, **source.columns}
    df = read_table(source.path, source.role, source.options.get("sep"), sheet=source.options.get("sheet"))
    report.rows_read = len(df)
    check_confidentiality(df, source.path, what="un fichier d'observations", skip={cols["x"], cols["y"]},
                          hint="les observations décrivent un lieu et un problème : supprimez cette colonne.")
    require_keys(df, cols, ("date", "domain", "problem", "source_type"), source)
    dates = parse_dates(df[cols["date"]].str.strip(), source.path, cols["date"], required=True)
    domain = df[cols["domain"]].str.strip()
    check_known(domain, set(DOMAINS), source.path, cols["domain"], "domaine(s)", required=True)
    problem = df[cols["problem"]].str.strip()
    check_known(problem, set(problem_types().index), source.path, cols["problem"], "type(s) de problème", required=True)
    kind = df[cols["source_type"]].map(_plain)
    check_known(kind, set(SOURCE_TYPES), source.path, cols["source_type"], "type(s) de source", required=True)
    weight = 1.0
    if cols["weight"] in df:
        weight = to_number(df[cols["weight"]], source.path, cols["weight"])[0]
        check_range(weight, source.path, cols["weight"], (0.0, MAX_WEIGHT, "erreur"), report)
        weight = weight.fillna(1.0)
    out = pd.DataFrame({
        "date": dates,
        "domain": domain,
        "problem": problem,
        "source_type": kind.map(SOURCE_TYPES),
        "weight": weight,
        "comment": df[cols["comment"]].fillna("") if cols["comment"] in df else "",
        "code_qp": df[cols["qpv"]].str.strip() if cols["qpv"] in df else "",
        "insee_com": df[cols["insee_com"]].str.strip() if cols["insee_com"] in df else "",
    })
    known_qpv = set(qpv["code_qp"])
    given = out["code_qp"] != ""
    check_known(out["code_qp"], known_qpv, source.path, cols["qpv"], "QPV",
                hint="le code doit être celui d'un QPV du catalogue.")
    has_xy = cols["x"] in df and cols["y"] in df
    if has_xy:
        located = ~given & (df[cols["x"]].str.strip() != "")
        if located.any():
            pts = points_from_columns(df[located], cols["x"], cols["y"], source.options.get("crs", "EPSG:4326"),
                                      source.path, source.label)
            in_qpv = gpd.sjoin(pts[["geometry"]], qpv[["code_qp", "geometry"]], predicate="within", how="left")
            out.loc[located, "code_qp"] = in_qpv.groupby(level=0)["code_qp"].first().fillna("")
            in_com = gpd.sjoin(pts[["geometry"]], communes[["insee_com", "geometry"]], predicate="within", how="left")
            com = in_com.groupby(level=0)["insee_com"].first()
            refuse(com.isna(), "coordonnées hors du territoire du catalogue.", source.path, f"{cols['x']}/{cols['y']}",
                   lines=com.index + 2)
            out.loc[located, "insee_com"] = com
    qpv_commune = qpv.set_index("code_qp")["insee_com"]
    fill = (out["insee_com"] == "") & (out["code_qp"] != "")
    out.loc[fill, "insee_com"] = out.loc[fill, "code_qp"].map(qpv_commune)
    refuse(~out["insee_com"].isin(set(communes["insee_com"])),
           "observations sans lieu reconnu (ni QPV, ni commune du catalogue, ni coordonnées).", source.path,
           error=UnknownCommuneError)
    report.rows_kept = len(out)
    return out, report
