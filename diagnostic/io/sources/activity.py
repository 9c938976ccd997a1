"""The activity log of a mediation service (« journal d'activité », role ``activity``).

One row per intervention, French headers (blank model in
``templates/journal_activite_modele.csv``): date, heure, duree_min, a place
(``qpv`` code, or ``x``/``y`` in Lambert-93, or ``latitude``/``longitude``),
activite and sous_type, domaine, public, partenaire, issue, and for technical
watch service_signale, date_signalement, date_resolution; ``operateur`` is
optional. Other columns are read only to be checked for personal data.

Checks: impossible dates or hours, resolution before notification, unknown
codes (activity, domain, outcome, QPV), coordinates outside the territory are
errors naming the lines. A partner absent from the registry is a counted
warning: the intervention happened and is kept, its partner is flagged
(``partner_known``) and shown as « hors registre ». Rows without any place are
kept and counted (« lieu non précisé »). Columns that look like personal data,
and phone numbers or e-mail addresses in any cell, are refused outright.
"""

from __future__ import annotations

import re
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from diagnostic.errors import OutOfTerritoryError
from diagnostic.io.catalog import Source
from diagnostic.io.reference import DOMAINS
from diagnostic.io.sources._io import (
    L93,
    LoadReport,
    check_known,
    examples,
    names_sheet,
    parse_dates,
    read_table,
    refuse,
    require_keys,
    to_l93,
    to_number,
)
from diagnostic.io.sources.personal import check_confidentiality
from diagnostic.io.sources.services import DEFAULT_TOLERANCE_M, text_column
from diagnostic.text import fold

DEFAULT_COLUMNS = {
    "date": "date", "time": "heure", "duration_min": "duree_min", "code_qp": "qpv",
    "x": "x", "y": "y", "latitude": "latitude", "longitude": "longitude",
    "activity": "activite", "subtype": "sous_type", "domain": "domaine", "public": "public",
    "partner_id": "partenaire", "outcome": "issue", "service": "service_signale",
    "reported_on": "date_signalement", "resolved_on": "date_resolution", "operator": "operateur",
}
REQUIRED = ("date", "time", "activity")

#: The five activities of social mediators: key → French label.
ACTIVITIES: dict[str, str] = {
    "presence": "Présence active de proximité",
    "conflit": "Gestion de conflits",
    "veille": "Veille sociale et technique",
    "mise_en_relation": "Mise en relation avec les partenaires",
    "concertation": "Concertation et projets collectifs",
}
#: Sub-types checked for the activities that have a closed list.
SUBTYPES: dict[str, dict[str, str]] = {
    "conflit": {"temps_reel": "En temps réel", "navette": "Navette", "table_ronde": "Table ronde"},
    "veille": {"technique": "Veille technique", "sociale": "Veille sociale"},
}
OUTCOMES: dict[str, str] = {
    "resolu": "Résolu", "oriente": "Orienté", "en_cours": "En cours", "sans_suite": "Sans suite",
}
_ALIASES = {
    "presence_active": "presence", "gestion_de_conflit": "conflit", "gestion_des_conflits": "conflit",
    "veille_technique": "veille", "veille_sociale": "veille", "orientation": "mise_en_relation",
    "projet_collectif": "concertation", "projets_collectifs": "concertation", "temps_reel": "temps_reel",
}



@names_sheet
def load_activity(
    source: Source,
    communes: gpd.GeoDataFrame,
    qpv: gpd.GeoDataFrame,
    partners: Any = None,
) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """Read, check and locate an activity log; return one row per intervention in Lambert-93.

    ``partners`` is the partner registry (:class:`~diagnostic.io.sources.partners.Partners`,
    a frame of actors, or bare identifiers); without it identifiers are kept unchecked.
    """
    report = LoadReport(source.role, source.path)
    cols = {**DEFAULT_COLUMNS, **source.columns}
    df = read_table(source.path, source.role, source.options.get("sep"), sheet=source.options.get("sheet"))
    report.rows_read = len(df)
    check_confidentiality(
        df, source.path, what="le journal d'activité", skip={cols[k] for k in ("x", "y", "latitude", "longitude")},
        hint="supprimez cette colonne du fichier ; le lieu s'indique par le code QPV ou des "
        "coordonnées, et l'orientation par l'identifiant du partenaire.",
    )
    require_keys(df, cols, REQUIRED, source)
    path = source.path

    def text(key: str) -> pd.Series:
        return text_column(df, cols[key])

    day = parse_dates(text("date"), path, cols["date"], required=True)
    hour = _parse_hours(text("time"), path, cols["time"])
    out = pd.DataFrame({
        "date": day,
        "hour": hour,
        "weekday": day.dt.day_of_week,
        "duration_min": _durations(df, cols["duration_min"], path),
        "activity": _lookup(text("activity"), ACTIVITIES, path, cols["activity"], required=True),
    })
    out["subtype"] = _subtypes(text("subtype"), out["activity"], path, cols["subtype"])
    out["domain"] = _lookup(text("domain"), DOMAINS, path, cols["domain"])
    out["public"] = text("public")
    out["outcome"] = _lookup(text("outcome"), OUTCOMES, path, cols["outcome"])
    out["operator"] = text("operator")
    out["service"] = text("service")
    reported = parse_dates(text("reported_on"), path, cols["reported_on"])
    is_watch = (out["activity"] == "veille") & (out["service"] != "")
    out["reported_on"] = reported.where(reported.notna() | ~is_watch, day)
    out["resolved_on"] = parse_dates(text("resolved_on"), path, cols["resolved_on"])
    early = out["resolved_on"] < out["reported_on"]
    refuse(early, f"{int(early.sum())} signalement(s) résolu(s) avant d'avoir été signalé(s).", path,
           cols["resolved_on"], hint=f"« {cols['resolved_on']} » doit être postérieure ou égale à "
           f"« {cols['reported_on']} » (ou à la date de l'intervention si elle est vide).")
    out["partner_id"] = text("partner_id")
    out["partner_known"] = _check_partners(out["partner_id"], partners, report)
    gdf = _locate(df, out, cols, source, communes, qpv, report)
    report.rows_kept = len(gdf)
    report.crs = L93
    return gdf, report


def normalise(value: str) -> str:
    """Lower-case, accent-free, underscore-separated form used to compare codes and labels."""
    return re.sub(r"[^a-z0-9]+", "_", fold(value)).strip("_")


def _parse_hours(values: pd.Series, path, column: str) -> pd.Series:
    """The starting hour of ``HH:MM`` (or ``18h30``, ``18h``); an impossible time is an error."""
    parts = values.str.extract(r"^(\d{1,2})\s*[:hH]\s*(\d{2})?$")
    hour = pd.to_numeric(parts[0], errors="coerce")
    minute = pd.to_numeric(parts[1], errors="coerce").fillna(0)
    bad = hour.isna() | (hour > 23) | (minute > 59)
    refuse(bad, f"heures absentes ou impossibles ({examples(values, bad, quote=True)}).", path, column,
           hint="attendu : l'heure de début au format HH:MM (ex. 18:30).")
    return hour.astype(int)


def _durations(df: pd.DataFrame, column: str, path) -> pd.Series:
    if column not in df.columns:
        return pd.Series(np.nan, index=df.index)
    minutes, _ = to_number(df[column], path, column)
    refuse(minutes < 0, "durées négatives.", path, column, hint="attendu : une durée en minutes, positive.")
    return minutes


def _lookup(values: pd.Series, table: dict[str, str], path, column: str, required: bool = False) -> pd.Series:
    """Map codes or French labels (any case, with or without accents) to the table's keys."""
    known = {normalise(k): k for k in table} | {normalise(v): k for k, v in table.items()}
    known |= {a: k for a, k in _ALIASES.items() if k in table}
    keys = values.map(lambda v: known.get(normalise(v), None) if v else "")
    bad = keys.isna() | ((keys == "") if required else False)
    refuse(bad, f"valeurs absentes ou inconnues ({', '.join(sorted({repr(v) for v in values[bad]})[:3])}).",
           path, column, hint="valeurs possibles : " + " ; ".join(f"{k} ({v})" for k, v in table.items()) + ".")
    return keys.astype(str)


def _subtypes(values: pd.Series, activity: pd.Series, path, column: str) -> pd.Series:
    """Check sub-types of the activities with a closed list; others keep their free text."""
    out = values.copy()
    for act, table in SUBTYPES.items():
        rows = activity == act
        if rows.any():
            out[rows] = _lookup(values[rows], table, path, column)
    return out


def partner_names(partners: Any) -> dict[str, str]:
    """Identifier → name from the partner registry (its ``actors``), a frame, or bare identifiers."""
    actors = getattr(partners, "actors", partners)
    if isinstance(actors, pd.DataFrame):
        ids = next((c for c in ("actor_id", "identifiant") if c in actors.columns), None)
        names = next((c for c in ("name", "nom") if c in actors.columns), ids)
        if ids is None:
            return {}
        return dict(zip(actors[ids].astype(str), actors[names].astype(str)))
    return {str(p): str(p) for p in actors}


def _check_partners(ids: pd.Series, partners, report: LoadReport) -> pd.Series:
    """Flag partners absent from the registry (kept, counted in a warning)."""
    if partners is None:
        return ids != ""
    known = ids.isin(set(partner_names(partners)))
    unknown = (ids != "") & ~known
    if unknown.any():
        report.warn(
            f"{int(unknown.sum())} intervention(s) citent un partenaire absent du registre "
            f"({', '.join(sorted(set(ids[unknown]))[:5])}) : gardées, comptées « hors registre »."
        )
    return known


def _locate(
    df: pd.DataFrame,
    out: pd.DataFrame,
    cols: dict[str, str],
    source: Source,
    communes: gpd.GeoDataFrame,
    qpv: gpd.GeoDataFrame,
    report: LoadReport,
) -> gpd.GeoDataFrame:
    """Points from x/y or latitude/longitude, QPV codes checked, QPV and commune found for each row."""
    path = source.path
    geometry = gpd.GeoSeries([None] * len(df), index=df.index, crs=L93)
    for xk, yk, crs in (("x", "y", source.options.get("crs", L93)), ("longitude", "latitude", "EPSG:4326")):
        x, y = cols[xk], cols[yk]
        if x not in df.columns or y not in df.columns:
            continue
        xs, _ = to_number(df[x], path, x)
        ys, _ = to_number(df[y], path, y)
        todo = xs.notna() & ys.notna() & geometry.isna()
        if todo.any():
            pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(xs[todo], ys[todo]), index=xs[todo].index, crs=crs)
            geometry[todo] = to_l93(pts, path, None).geometry
    located = geometry.notna()
    tolerance = float(source.options.get("tolerance_m", DEFAULT_TOLERANCE_M))
    if located.any():
        far = located & ~geometry.within(communes.union_all().buffer(tolerance))
        refuse(far, f"{int(far.sum())} intervention(s) situées hors du territoire du catalogue.", path,
               error=OutOfTerritoryError, hint="vérifiez les coordonnées (inversion latitude/longitude ; « x »/« y » "
               "sont en Lambert-93, sinon précisez « crs: » dans le catalogue).")
    codes = text_column(df, cols["code_qp"]).str.upper()
    check_known(codes, set(qpv["code_qp"]), path, cols["code_qp"], "code(s) QPV",
                hint=f"QPV du catalogue : {', '.join(sorted(qpv['code_qp'])[:20])}.")
    gdf = gpd.GeoDataFrame(out, geometry=geometry, crs=L93)
    from_point = _join(gdf[located & (codes == "")], qpv, "code_qp")
    gdf["code_qp"] = codes.mask((codes == "") & located, from_point.reindex(gdf.index).fillna(""))
    commune_of_qpv = qpv.set_index("code_qp")["insee_com"]
    gdf["insee_com"] = _join(gdf[located], communes, "insee_com").reindex(gdf.index)
    gdf["insee_com"] = gdf["insee_com"].fillna(gdf["code_qp"].map(commune_of_qpv)).fillna("")
    nowhere = ~located & (codes == "")
    if nowhere.any():
        report.warn(f"{int(nowhere.sum())} intervention(s) sans lieu (ni QPV ni coordonnées) : "
                    "gardées, comptées « lieu non précisé ».")
    return gdf


def _join(points: gpd.GeoDataFrame, areas: gpd.GeoDataFrame, column: str) -> pd.Series:
    """The ``column`` of the area holding each point (the nearest within the tolerance at borders)."""
    if points.empty:
        return pd.Series(dtype=str)
    joined = gpd.sjoin(points[["geometry"]], areas[[column, "geometry"]], how="left", predicate="within")
    found = joined.groupby(level=0)[column].first()
    if column == "insee_com" and found.isna().any():
        missing = points.loc[found[found.isna()].index, ["geometry"]]
        near = gpd.sjoin_nearest(missing, areas[[column, "geometry"]], how="left")
        found = found.fillna(near.groupby(level=0)[column].first())
    return found
