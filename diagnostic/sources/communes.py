"""Commune boundaries (IGN Admin Express / INSEE COG codes)."""

from __future__ import annotations

import re

import geopandas as gpd

from diagnostic.catalog import Source
from diagnostic.errors import ValueFormatError
from diagnostic.reference import department_regions
from diagnostic.sources._io import (
    LoadReport,
    check_geometries,
    check_unique,
    line_numbers,
    read_geo,
    require_columns,
)

COMMUNE_CODE = re.compile(r"^(\d{5}|2[AB]\d{3})$")
DEFAULT_COLUMNS = {"insee_com": "code", "lib_com": "nom"}


def department_of(code: str) -> str:
    """INSEE department of a commune code (three digits overseas)."""
    return code[:3] if code.startswith("97") else code[:2]


def load_communes(source: Source) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """Read commune outlines; also accepts a file holding one bare GeoJSON Feature."""
    report = LoadReport(source.role, source.path)
    columns = {**DEFAULT_COLUMNS, **source.columns}
    gdf = read_geo(source.path, source.role, source.options.get("crs"), source.options.get("layer"))
    report.rows_read = len(gdf)
    require_columns(gdf, {k: v for k, v in columns.items() if k in ("insee_com", "lib_com")}, source.path, source.label)
    out = gpd.GeoDataFrame(
        {
            "insee_com": gdf[columns["insee_com"]].astype(str).str.strip().str.zfill(5),
            "lib_com": gdf[columns["lib_com"]].astype(str).str.strip(),
        },
        geometry=gdf.geometry.values,
        crs=gdf.crs,
    )
    bad = ~out["insee_com"].str.match(COMMUNE_CODE)
    if bad.any():
        raise ValueFormatError(
            f"codes commune mal formés ({', '.join(out.loc[bad, 'insee_com'].head(3))}).",
            path=source.path,
            column=columns["insee_com"],
            rows=line_numbers(bad, offset=1),
            hint="attendu : le code INSEE à 5 caractères (ex. 59350, 2A004).",
        )
    if "insee_dep" in columns and columns["insee_dep"] in gdf.columns:
        out["insee_dep"] = gdf[columns["insee_dep"]].astype(str).str.strip().to_numpy()
    else:
        out["insee_dep"] = out["insee_com"].map(department_of)
    check_unique(out["insee_com"], source.path, columns["insee_com"])
    out = check_geometries(out, source.path, "insee_com", report)
    report.rows_kept = len(out)
    report.crs = "EPSG:2154"
    if "insee_reg" in columns and columns["insee_reg"] in gdf.columns:
        out["insee_reg"] = gdf[columns["insee_reg"]].astype(str).str.strip().to_numpy()
    else:
        out["insee_reg"] = out["insee_dep"].map(department_regions()["reg"])
    return out[["insee_com", "lib_com", "insee_dep", "insee_reg", "geometry"]], report
