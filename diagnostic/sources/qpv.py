"""QPV boundaries, 2015 (``QPdddnnn``) and 2024 (``QNdddnnL``) generations (ANCT)."""

from __future__ import annotations

import re

import geopandas as gpd
import pandas as pd

from diagnostic.catalog import Source
from diagnostic.errors import DuplicateCodeError, ValueFormatError
from diagnostic.sources._io import (
    LoadReport,
    check_geometries,
    line_numbers,
    read_geo,
    require_columns,
)

QPV_CODE = re.compile(r"^(QP(\d{3}|2[AB]\d|97\d)\d{3}|QN(\d{3}|02[AB]|97\d)\d{2}[A-Z])$")
DEFAULT_COLUMNS = {"code_qp": "code_qp", "lib_qp": "lib_qp", "insee_com": "insee_com"}
_SPLIT = re.compile(r"[,;/ ]+")


def generation_of(code: str) -> str:
    """'2015' for QP codes, '2024' for QN codes."""
    return "2024" if code.startswith("QN") else "2015"


def load_qpv(source: Source, communes: gpd.GeoDataFrame | None = None) -> tuple[gpd.GeoDataFrame, pd.DataFrame, LoadReport]:
    """Read QPV outlines; return one row per QPV and the QPV–commune pairs.

    A QPV spanning several communes may come as one feature listing the codes
    or as one feature per commune; both give one QPV belonging to each commune.
    Without a commune column, communes are found by overlap with ``communes``.
    """
    report = LoadReport(source.role, source.path)
    columns = {**DEFAULT_COLUMNS, **source.columns}
    gdf = read_geo(source.path, source.role, source.options.get("crs"), source.options.get("layer"))
    report.rows_read = len(gdf)
    has_commune = columns["insee_com"] in gdf.columns
    needed = {k: columns[k] for k in ("code_qp", "lib_qp")}
    if not has_commune and communes is None:
        needed["insee_com"] = columns["insee_com"]
    require_columns(gdf, needed, source.path, source.label)
    codes = gdf[columns["code_qp"]].astype(str).str.strip()
    bad = ~codes.str.match(QPV_CODE)
    if bad.any():
        raise ValueFormatError(
            f"codes QPV mal formés ({', '.join(codes[bad].head(3))}).",
            path=source.path,
            column=columns["code_qp"],
            rows=line_numbers(bad, offset=1),
            hint="attendu : QPdddnnn (génération 2015, ex. QP031007) ou QNdddnnL "
            "(génération 2024, ex. QN04901M).",
        )
    raw = gpd.GeoDataFrame(
        {"code_qp": codes, "lib_qp": gdf[columns["lib_qp"]].astype(str).str.strip()},
        geometry=gdf.geometry.values,
        crs=gdf.crs,
    )
    for optional in ("siren_epci", "insee_dep"):
        if columns.get(optional, optional) in gdf.columns:
            raw[optional] = gdf[columns.get(optional, optional)].astype(str).to_numpy()
    raw = check_geometries(raw, source.path, "code_qp", report)
    if has_commune:
        raw["insee_com"] = gdf[columns["insee_com"]].astype(str)
        pairs = (
            raw[["code_qp", "insee_com"]]
            .assign(insee_com=lambda d: d["insee_com"].map(lambda v: [c.zfill(5) for c in _SPLIT.split(v.strip()) if c]))
            .explode("insee_com")
        )
    else:
        pairs = _pairs_by_overlap(raw, communes)
        report.warn("communes des QPV déduites du recoupement des contours (pas de colonne commune).")
    dup_pairs = pairs.duplicated(keep=False)
    if dup_pairs.any():
        raise DuplicateCodeError(
            "le même QPV apparaît plusieurs fois pour la même commune "
            f"({', '.join(pairs.loc[dup_pairs, 'code_qp'].unique()[:5])}).",
            path=source.path,
            column=columns["code_qp"],
            rows=line_numbers(dup_pairs.groupby(level=0).any(), offset=1),
            hint="un QPV ne doit figurer qu'une fois par commune.",
        )
    qpv = raw.drop(columns=["insee_com"], errors="ignore").dissolve(by="code_qp", aggfunc="first", as_index=False)
    communes_of = pairs.groupby("code_qp")["insee_com"].agg(lambda s: ",".join(sorted(set(s))))
    qpv["communes"] = qpv["code_qp"].map(communes_of)
    qpv["insee_com"] = qpv["communes"].str.split(",").str[0]
    qpv["generation"] = qpv["code_qp"].map(generation_of)
    if qpv["generation"].nunique() > 1:
        report.warn("le fichier mélange des QPV des générations 2015 et 2024.")
    report.rows_kept = len(qpv)
    report.crs = "EPSG:2154"
    return qpv, pairs.reset_index(drop=True), report


def _pairs_by_overlap(qpv: gpd.GeoDataFrame, communes: gpd.GeoDataFrame) -> pd.DataFrame:
    """QPV–commune pairs where at least 1 % of the QPV lies in the commune."""
    inter = gpd.overlay(qpv[["code_qp", "geometry"]], communes[["insee_com", "geometry"]], how="intersection")
    area = qpv.set_index("code_qp").area
    inter = inter[inter.area >= 0.01 * inter["code_qp"].map(area)]
    return inter[["code_qp", "insee_com"]].drop_duplicates()
