"""INSEE Base permanente des équipements (``TYPEQU``, ``LAMBERT_X``, ``LAMBERT_Y``, ``DEPCOM``)."""

from __future__ import annotations

import geopandas as gpd

from diagnostic.catalog import Source
from diagnostic.sources._io import LoadReport, points_from_columns, read_table, require_columns
from diagnostic.sources.services import finish, text_column


def load_bpe(source: Source, communes: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """Read a BPE extract; coordinates are Lambert-93 unless the catalogue says otherwise.

    Rows without coordinates (BPE ``QUALITE_XY`` « non géolocalisé ») are set
    aside and counted: they cannot enter distances.
    """
    report = LoadReport(source.role, source.path)
    cols = {"type_code": "TYPEQU", "x": "LAMBERT_X", "y": "LAMBERT_Y", "insee_com": "DEPCOM",
            "name": "NOMRS", "address": "ADRESSE", "service_id": "", **source.columns}
    df = read_table(source.path, source.role, source.options.get("sep"))
    report.rows_read = len(df)
    require_columns(df, {k: cols[k] for k in ("type_code", "x", "y", "insee_com")}, source.path, source.label)
    no_xy = (df[cols["x"]].str.strip() == "") | (df[cols["y"]].str.strip() == "")
    if no_xy.any():
        report.warn(f"{int(no_xy.sum())} équipement(s) sans coordonnées mis de côté (non géolocalisés).")
        df = df[~no_xy]
    pts = points_from_columns(df, cols["x"], cols["y"], source.options.get("crs", "EPSG:2154"), source.path, source.label)
    ids = text_column(df, cols["service_id"])
    if (ids == "").all():
        ids = "BPE-" + df.index.astype(str)
    gdf = gpd.GeoDataFrame(
        {
            "service_id": ids,
            "name": text_column(df, cols["name"]),
            "source_kind": "bpe",
            "type_code": df[cols["type_code"]].str.strip(),
            "insee_com": df[cols["insee_com"]].str.strip().str.zfill(5),
            "address": text_column(df, cols["address"]),
            "hours": "",
        },
        geometry=pts.geometry.values,
        crs=pts.crs,
    )
    return finish(gdf, source, communes, report), report
