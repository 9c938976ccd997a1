"""The ANCT list of France Services sites (latitude/longitude in WGS84, opening hours)."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from diagnostic.io.catalog import Source
from diagnostic.io.sources._io import LoadReport, points_from_columns, read_table, require_keys
from diagnostic.io.sources.services import finish, text_column

DAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"]


def opening_hours(df: pd.DataFrame) -> pd.Series:
    """« lundi 09:00 - 12:00 ; mardi … » from the ``h_<jour>`` columns present."""
    parts = []
    for day in DAYS:
        col = f"h_{day}"
        if col in df.columns:
            parts.append(df[col].astype(str).str.strip().map(lambda v, d=day: f"{d} {v}" if v else ""))
    if not parts:
        return pd.Series([""] * len(df), index=df.index)
    joined = pd.concat(parts, axis=1)
    return joined.apply(lambda r: " ; ".join(v for v in r if v), axis=1)


def load_france_services(source: Source, communes: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, LoadReport]:
    report = LoadReport(source.role, source.path)
    cols = {"service_id": "id_fs", "name": "lib_fs", "insee_com": "insee_com", "x": "longitude",
            "y": "latitude", "address": "adresse", **source.columns}
    df = read_table(source.path, source.role, source.options.get("sep"))
    report.rows_read = len(df)
    require_keys(df, cols, ("service_id", "name", "insee_com", "x", "y"), source)
    pts = points_from_columns(df, cols["x"], cols["y"], source.options.get("crs", "EPSG:4326"), source.path, source.label)
    address = text_column(df, cols["address"]) + " " + text_column(df, "code_postal") + " " + text_column(df, "lib_com")
    gdf = gpd.GeoDataFrame(
        {
            "service_id": "FS-" + df[cols["service_id"]].str.strip(),
            "name": df[cols["name"]].str.strip(),
            "source_kind": "france_services",
            "type_code": "FS",
            "insee_com": df[cols["insee_com"]].str.strip().str.zfill(5),
            "address": address.str.strip(),
            "hours": opening_hours(df),
        },
        geometry=pts.geometry.values,
        crs=pts.crs,
    )
    return finish(gdf, source, communes, report), report
