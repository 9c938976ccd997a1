"""Where what people said happened: points and place names placed in the catalogue's QPVs and communes.

Consultation sources (questionnaires, marches exploratoires, meetings) give a
place as coordinates, a QPV code or name, or a commune code or name. Each is
placed in a QPV (when inside one) and a commune; what falls outside the
territory is kept aside and counted, never dropped silently.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from diagnostic.io.sources._io import L93
from diagnostic.io.sources.services import DEFAULT_TOLERANCE_M
from diagnostic.text import fold

#: Status of a place: in the territory, outside it, or not given.
INSIDE, OUTSIDE, UNKNOWN = "territoire", "hors territoire", "lieu non précisé"


def _key(text: str) -> str:
    return " ".join("".join(c if c.isalnum() else " " for c in fold(str(text))).split())


def qpv_names(qpv: gpd.GeoDataFrame) -> dict[str, str]:
    """Folded QPV code or name → code (« les hauts de lys » → QN09901A)."""
    names = {_key(c): c for c in qpv["code_qp"]}
    names |= {_key(n): c for c, n in zip(qpv["code_qp"], qpv["lib_qp"])}
    return names


def commune_names(communes: gpd.GeoDataFrame) -> dict[str, str]:
    """Folded commune code or name → INSEE code."""
    names = {_key(c): c for c in communes["insee_com"]}
    names |= {_key(n): c for c, n in zip(communes["insee_com"], communes["lib_com"])}
    return names


def place_names(values: pd.Series, qpv: gpd.GeoDataFrame, communes: gpd.GeoDataFrame) -> pd.DataFrame:
    """QPV and commune of each place name (a QPV's or a commune's code or name); unknown names are outside.

    Returns ``code_qp``, ``insee_com`` and ``status`` (:data:`INSIDE`, :data:`OUTSIDE`, :data:`UNKNOWN`).
    """
    by_qpv, by_commune = qpv_names(qpv), commune_names(communes)
    commune_of = qpv.drop_duplicates("code_qp").set_index("code_qp")["insee_com"]
    keys = values.fillna("").map(_key)
    code_qp = keys.map(by_qpv).fillna("")
    insee = keys.map(by_commune).combine_first(code_qp.map(commune_of)).fillna("")
    status = np.select([keys == "", insee != ""], [UNKNOWN, INSIDE], OUTSIDE)
    return pd.DataFrame({"code_qp": code_qp, "insee_com": insee, "status": status}, index=values.index)


def locate_points(
    points: gpd.GeoSeries, communes: gpd.GeoDataFrame, qpv: gpd.GeoDataFrame,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
) -> pd.DataFrame:
    """QPV and commune of Lambert-93 points; a point farther than ``tolerance_m`` from every commune is outside.

    A point just outside the communes' outlines (within the tolerance) goes to the nearest commune.
    """
    out = pd.DataFrame({"code_qp": "", "insee_com": "", "status": UNKNOWN}, index=points.index)
    located = points.notna() & ~points.is_empty
    if not located.any():
        return out
    pts = gpd.GeoDataFrame(geometry=points[located].to_crs(L93), crs=L93)
    in_qpv = gpd.sjoin(pts, qpv[["code_qp", "geometry"]], predicate="within", how="left")
    out.loc[pts.index, "code_qp"] = in_qpv.groupby(level=0)["code_qp"].first().fillna("")
    near = gpd.sjoin_nearest(pts, communes[["insee_com", "geometry"]], how="left", max_distance=tolerance_m)
    commune = near.groupby(level=0)["insee_com"].first()
    out.loc[pts.index, "insee_com"] = commune.fillna("")
    out.loc[pts.index, "status"] = np.where(commune.isna(), OUTSIDE, INSIDE)
    out.loc[out["status"] == OUTSIDE, "code_qp"] = ""
    return out
