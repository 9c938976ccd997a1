"""Service coverage per QPV and per commune, by mediation domain.

One vectorised pass over all territories and all services of a catalogue:
spatial joins and nearest-neighbour queries use the spatial index, never a
Python loop over features. Distances are edge-to-point in metres (Lambert-93);
a service inside the territory is at 0 m. A service counts « in the band »
when it lies within ``band_m`` of the territory's edge, boundary included.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from diagnostic.io.reference import DOMAINS, equipment_domains
from diagnostic.io.sources.insee import IndicatorTable
from diagnostic.options import BAND_M

#: Counts per role (see ``diagnostic/resources/tables/domaines_mediation.csv``): réponses, offre de droit commun, lieux d'intervention.
ROLE_COLUMNS = {"reponse": "responses_band", "droit_commun": "common_band", "lieu": "places_band"}
COLUMNS = ["level", "code", "domain", "domain_label", "services_inside", "services_band", "responses_band",
           "common_band", "places_band", "responses_known", "nearest_m", "nearest_response_m", "per_1000",
           "population", "method"]


def coverage(
    territories: gpd.GeoDataFrame,
    pairs: gpd.GeoDataFrame,
    population: pd.Series,
    *,
    code: str,
    level: str,
    band_m: float = BAND_M,
    domains: list[str] | None = None,
) -> pd.DataFrame:
    """Coverage of ``territories`` (indexed by ``code``) by service–domain ``pairs``.

    Returns one row per (territory, domain): services inside, services within
    the band (all, and by role: réponses, offre de droit commun, lieux), the
    distance to the nearest service and to the nearest réponse of the domain,
    and services in the band per 1,000 inhabitants. ``responses_known`` says
    whether the catalogue has any réponse of the domain at all: without one,
    « 0 réponse » would mean « not in the data », not « none on the ground ».
    """
    domains = list(domains or DOMAINS)
    terr = territories[[code, "geometry"]].reset_index(drop=True)
    if "role" not in pairs:
        pairs = pairs.assign(role="reponse")
    pairs = pairs[pairs["domain"].isin(domains)][["service_id", "domain", "role", "geometry"]].reset_index(drop=True)
    grid = pd.MultiIndex.from_product([terr[code], domains], names=["code", "domain"])
    out = pd.DataFrame(index=grid)
    responses = pairs[pairs["role"] == "reponse"]
    if len(pairs) and len(terr):
        inside = gpd.sjoin(pairs, terr, predicate="intersects", how="inner")
        band = gpd.sjoin(pairs, terr, predicate="dwithin", distance=band_m, how="inner")
        out["services_inside"] = inside.groupby([code, "domain"])["service_id"].nunique()
        out["services_band"] = band.groupby([code, "domain"])["service_id"].nunique()
        by_role = band.groupby([code, "domain", "role"])["service_id"].nunique().unstack("role")
        for role, column in ROLE_COLUMNS.items():
            out[column] = by_role.get(role, 0)
        out["nearest_m"] = _nearest(terr, pairs, code, domains)
        out["nearest_response_m"] = _nearest(terr, responses, code, domains)
    else:
        out["services_inside"] = out["services_band"] = 0
        for column in ROLE_COLUMNS.values():
            out[column] = 0
        out["nearest_m"] = out["nearest_response_m"] = np.nan
    counts = ["services_inside", "services_band", *ROLE_COLUMNS.values()]
    out[counts] = out[counts].fillna(0).astype(int)
    out = out.reset_index()
    out["responses_known"] = out["domain"].isin(set(responses["domain"]))
    out["population"] = out["code"].map(population)
    out["per_1000"] = 1000 * out["services_band"] / out["population"].where(out["population"] > 0)
    out["level"] = level
    out["domain_label"] = out["domain"].map(DOMAINS)
    out["method"] = f"services géolocalisés, bande de {band_m:.0f} m"
    return out[COLUMNS]


def _nearest(terr: gpd.GeoDataFrame, pairs: gpd.GeoDataFrame, code: str, domains: list[str]) -> pd.Series:
    """Edge-to-point distance from each territory to the nearest service of each domain."""
    parts = []
    for domain in domains:  # a handful of domains; each query is vectorised over all territories
        pts = pairs[pairs["domain"] == domain]
        if pts.empty:
            continue
        near = gpd.sjoin_nearest(terr, pts[["geometry"]], how="left", distance_col="nearest_m")
        parts.append(near.groupby(code)["nearest_m"].min().to_frame().assign(domain=domain))
    if not parts:
        return pd.Series(dtype=float)
    return pd.concat(parts).reset_index().rename(columns={code: "code"}).set_index(["code", "domain"])["nearest_m"]


def counted_coverage(table: IndicatorTable, population: pd.Series, roles: pd.DataFrame | None = None) -> pd.DataFrame:
    """Coverage from counts published per QPV (e.g. INSEE « écoles à moins de 100 m »).

    Used where the data give counts rather than points; distances are then
    unknown. Each counted column takes its role and its true definition (for
    instance « à moins de 100 m », not « dans la bande ») from the rows
    ``comptage_qpv`` of ``diagnostic/resources/tables/domaines_mediation.csv``; a role no column
    counts stays unknown, never 0.
    """
    if not table.extra_counts:
        return pd.DataFrame(columns=COLUMNS)
    roles = equipment_domains() if roles is None else roles
    counted = roles[roles["source"] == "comptage_qpv"].set_index("type")
    rows = []
    for column, domain in table.extra_counts.items():
        counts = table.values[column]
        role = counted["role"].get(column, "contexte") if column in counted.index else "contexte"
        label = counted["libelle"].get(column, column) if column in counted.index else column
        rows.append(pd.DataFrame({"code": counts.index, "domain": domain, "services_band": counts.to_numpy(),
                                  "role": role, "column": f"{label} [{column}]"}))
    long = pd.concat(rows)

    def total(s: pd.Series) -> float:
        return s.sum() if s.notna().all() else np.nan  # partial ≠ total

    summed = long.groupby(["code", "domain"]).agg(
        services_band=("services_band", total), columns=("column", lambda s: " ; ".join(s)),
    )
    for role, column in ROLE_COLUMNS.items():
        part = long[long["role"] == role].groupby(["code", "domain"])["services_band"].agg(total)
        summed[column] = part.reindex(summed.index)  # NaN where no published count has this role
    summed = summed.reset_index()
    summed["responses_known"] = False
    summed["services_inside"] = np.nan
    summed["nearest_m"] = summed["nearest_response_m"] = np.nan
    summed["population"] = summed["code"].map(population)
    summed["per_1000"] = 1000 * summed["services_band"] / summed["population"].where(summed["population"] > 0)
    summed["level"] = "qpv"
    summed["domain_label"] = summed["domain"].map(DOMAINS)
    summed["method"] = "comptages publiés par QPV : " + summed.pop("columns")
    return summed[COLUMNS]
