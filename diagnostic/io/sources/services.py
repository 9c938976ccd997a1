"""Equipment and services: the common output and the generic CSV of services.

Every services loader returns the same columns (:data:`COLUMNS`) so that
coverage indicators do not care where a service came from. Rows whose commune
is outside the catalogue are set aside and counted; a point far from its
declared commune is refused.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from diagnostic.errors import OutOfTerritoryError
from diagnostic.io.catalog import Source
from diagnostic.io.sources._io import (
    LoadReport,
    check_unique,
    points_from_columns,
    read_table,
    refuse,
    require_keys,
)
from diagnostic.io.sources.personal import refuse_contacts

COLUMNS = ["service_id", "name", "source_kind", "type_code", "insee_com", "address", "hours", "geometry"]
#: Columns a loader may add: the quartier the producer places the service in (BPE ``QP2024``).
OPTIONAL_COLUMNS = ["code_qp"]
#: A point this far (metres) from its declared commune is taken as wrongly located.
DEFAULT_TOLERANCE_M = 1000.0


def finish(
    gdf: gpd.GeoDataFrame,
    source: Source,
    communes: gpd.GeoDataFrame,
    report: LoadReport,
) -> gpd.GeoDataFrame:
    """Keep the catalogue's communes (counting the rest) and check locations."""
    check_unique(gdf["service_id"], source.path, source.columns.get("service_id", "identifiant"))
    gdf = gdf.assign(_line=np.arange(len(gdf)) + 2)
    known = set(communes["insee_com"])
    has_commune = gdf["insee_com"].notna() & (gdf["insee_com"] != "")
    outside = has_commune & ~gdf["insee_com"].isin(known)
    if outside.any():
        report.warn(
            f"{int(outside.sum())} ligne(s) mises de côté : commune hors du territoire du catalogue "
            f"(ex. {', '.join(sorted(set(gdf.loc[outside, 'insee_com']))[:5])})."
        )
        gdf = gdf[~outside]
    tolerance = float(source.options.get("tolerance_m", DEFAULT_TOLERANCE_M))
    located = gdf[gdf["insee_com"].isin(known)]
    if len(located):
        shapes = communes.set_index("insee_com").geometry.loc[located["insee_com"]]
        dist = located.geometry.distance(gpd.GeoSeries(shapes.to_numpy(), index=located.index, crs=communes.crs))
        far = dist > tolerance
        first = far.idxmax()  # the first point too far (any point when none is)
        refuse(far, f"{int(far.sum())} point(s) à plus de {tolerance:.0f} m de leur commune déclarée "
               f"(ex. {located.at[first, 'service_id']} à {dist[first] / 1000:.1f} km).", source.path,
               error=OutOfTerritoryError, lines=located["_line"],
               hint="vérifiez les coordonnées (inversion latitude/longitude, mauvais système) ou le code commune ; "
               "« tolerance_m: » dans le catalogue règle la tolérance.")
    unlocated = gdf[~has_commune.loc[gdf.index]]
    if len(unlocated):
        territory = communes.union_all().buffer(tolerance)
        far = ~unlocated.geometry.within(territory)
        refuse(far, f"{int(far.sum())} point(s) hors du territoire du catalogue.", source.path,
               error=OutOfTerritoryError, lines=unlocated["_line"],
               hint="vérifiez les coordonnées et leur système (« crs: » dans le catalogue).")
        joined = gpd.sjoin(unlocated[["geometry"]], communes[["insee_com", "geometry"]], how="left", predicate="intersects")
        gdf.loc[unlocated.index, "insee_com"] = joined.groupby(level=0)["insee_com"].first()
    report.rows_kept = len(gdf)
    report.crs = "EPSG:2154"
    return gdf[COLUMNS + [c for c in OPTIONAL_COLUMNS if c in gdf]].reset_index(drop=True)


def text_column(df: pd.DataFrame, column: str | None) -> pd.Series:
    """A stripped text column, or empty strings when the file has no such column."""
    if column and column in df.columns:
        return df[column].astype(str).str.strip()
    return pd.Series([""] * len(df), index=df.index)


def load_services_csv(source: Source, communes: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """A generic services CSV: identifier, name, category, coordinates (``crs:`` in the catalogue)."""
    report = LoadReport(source.role, source.path)
    cols = {"service_id": "identifiant", "name": "nom", "type_code": "categorie", "x": "x", "y": "y",
            "insee_com": "code_commune", "address": "adresse", "hours": "horaires", **source.columns}
    df = read_table(source.path, source.role, source.options.get("sep"))
    report.rows_read = len(df)
    require_keys(df, cols, ("service_id", "name", "type_code", "x", "y"), source)
    refuse_contacts(df, source.path, [cols[k] for k in ("name", "address", "hours")],
                    hint="un service est décrit par son nom, son adresse et ses horaires : effacez les coordonnées "
                    "personnelles (le numéro d'accueil du service se consulte à sa source).")
    gdf = points_from_columns(df, cols["x"], cols["y"], source.options.get("crs", "EPSG:4326"), source.path, source.label)
    gdf = gpd.GeoDataFrame(
        {
            "service_id": text_column(df, cols["service_id"]),
            "name": text_column(df, cols["name"]),
            "source_kind": source.options.get("kind", "catalogue"),
            "type_code": text_column(df, cols["type_code"]),
            "insee_com": text_column(df, cols["insee_com"]).where(lambda s: s == "", lambda s: s.str.zfill(5)),
            "address": text_column(df, cols["address"]),
            "hours": text_column(df, cols["hours"]),
        },
        geometry=gdf.geometry.values,
        crs=gdf.crs,
    )
    return finish(gdf, source, communes, report), report


