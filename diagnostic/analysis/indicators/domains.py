"""Mediation domains of equipment and services, from the editable ``diagnostic/resources/tables/domaines_mediation.csv``."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from diagnostic.io.reference import DOMAINS, equipment_domains

OUTSIDE = "hors champ de la médiation"


def service_domains(services: gpd.GeoDataFrame, table: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
    """One row per (service, domain), with the role of the type in that domain; unknown types are left out.

    A centre social counts for several domains, so coverage is computed on
    these pairs, not on a single domain per service. Rows of published counts
    (``comptage_qpv``) never match a service.
    """
    table = equipment_domains() if table is None else table
    pairs = services.merge(
        table.rename(columns={"source": "source_kind", "type": "type_code", "libelle": "type_label", "domaine": "domain"}),
        on=["source_kind", "type_code"],
        how="inner",
    )
    pairs["domain_label"] = pairs["domain"].map(DOMAINS)
    return gpd.GeoDataFrame(pairs, geometry="geometry", crs=services.crs)


def label_services(services: gpd.GeoDataFrame, table: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
    """Each service once, with its type label, first (main) domain and all its domains."""
    pairs = service_domains(services, table)
    grouped = pairs.groupby("service_id").agg(
        type_label=("type_label", "first"),
        domain=("domain", "first"),
        domains=("domain", lambda s: "|".join(s)),
    )
    out = services.merge(grouped, left_on="service_id", right_index=True, how="left")
    out["type_label"] = out["type_label"].fillna(out["type_code"])
    out["domain_label"] = out["domain"].map(DOMAINS).fillna(OUTSIDE)
    out["domains"] = out["domains"].fillna("")
    return out
