"""Services a producer placed in a quartier (BPE 2023 on: ``QP2024``), counted where QPV outlines are missing.

Without outlines, a QPV's services are its communes' services pro rata of their inhabitants living in it
(:func:`~diagnostic.analysis.indicators.cache.commune_coverage_for_qpv`). The BPE says which quartier each
equipment lies in (``code_qp``; empty outside every quartier): those equipment are counted in their quartier
as placed, and left out of the pool shared pro rata, so that none is counted twice or guessed where its
place is known. Services of other sources (no ``code_qp``) stay shared pro rata.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from diagnostic.analysis.indicators.coverage import ROLE_COLUMNS

COUNTS = ["services_inside", "services_band", *ROLE_COLUMNS.values()]
METHOD = " ; équipements de la BPE placés dans le quartier par l'INSEE (QP2024) comptés tels quels"


def placed_pairs(pairs: gpd.GeoDataFrame) -> pd.DataFrame:
    """The service–domain pairs whose source says which quartier the service is in (``code_qp``, maybe empty)."""
    if "code_qp" not in pairs:
        return pd.DataFrame(columns=["service_id", "insee_com", "code_qp", "domain", "role"])
    known = pairs[pairs["code_qp"].notna()]
    return pd.DataFrame(known[["service_id", "insee_com", "code_qp", "domain", "role"]])


def _counts(placed: pd.DataFrame, key: str) -> pd.DataFrame:
    """Per (``key``, domain): the placed services, in all and by role, as coverage count columns."""
    grouped = placed.groupby([key, "domain"])
    out = pd.DataFrame({"services_inside": grouped["service_id"].nunique()})
    out["services_band"] = out["services_inside"]
    by_role = placed.groupby([key, "domain", "role"])["service_id"].nunique().unstack("role")
    for role, column in ROLE_COLUMNS.items():
        out[column] = by_role.get(role, 0)
    return out.fillna(0).rename_axis(["code", "domain"])


def without_placed(cov_com: pd.DataFrame, placed: pd.DataFrame) -> pd.DataFrame:
    """Commune coverage less the services placed in a quartier or outside every one: what is left to share."""
    if placed.empty:
        return cov_com
    taken = _counts(placed, "insee_com")
    out = cov_com.set_index(["code", "domain"])
    out[COUNTS] = out[COUNTS].sub(taken.reindex(out.index).fillna(0)).clip(lower=0)
    return out.reset_index()[cov_com.columns]


def with_placed(cov_qpv: pd.DataFrame, placed: pd.DataFrame) -> pd.DataFrame:
    """QPV coverage (from the communes' shared pool) plus the services placed in each quartier, said in the method."""
    inside = placed[placed["code_qp"].isin(set(cov_qpv["code"]))]
    if inside.empty:
        return cov_qpv
    out = cov_qpv.set_index(["code", "domain"])
    out[COUNTS] = out[COUNTS].add(_counts(inside, "code_qp").reindex(out.index).fillna(0))
    out = out.reset_index()
    out["per_1000"] = 1000 * out["services_band"] / out["population"].where(out["population"] > 0)
    out["method"] = out["method"] + METHOD
    return out[cov_qpv.columns]
