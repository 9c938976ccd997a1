"""INSEE Base permanente des équipements (``TYPEQU``, ``LAMBERT_X``, ``LAMBERT_Y``, ``DEPCOM``, ``EPSG``)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyproj import CRS
from pyproj.exceptions import CRSError as ProjCRSError

from diagnostic.errors import EmptyFileError, UnknownFormatError
from diagnostic.io.catalog import Source
from diagnostic.io.sources._io import (
    LoadReport,
    check_exists,
    points_from_columns,
    read_table,
    require_keys,
    to_number,
)
from diagnostic.io.sources.services import finish, text_column


def load_bpe(source: Source, communes: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """Read a BPE extract; coordinates are Lambert-93 unless the catalogue says otherwise.

    Rows without coordinates (BPE ``QUALITE_XY`` « non géolocalisé ») are set
    aside and counted: they cannot enter distances. Since the 2023 files each
    row gives its own coordinate system (``EPSG``: Lambert-93 in metropolitan
    France, a local UTM overseas); each is then converted from its own. The
    file may be the CSV or the parquet INSEE publishes (``BPE25.parquet``).
    """
    report = LoadReport(source.role, source.path)
    cols = {"type_code": "TYPEQU", "x": "LAMBERT_X", "y": "LAMBERT_Y", "insee_com": "DEPCOM",
            "name": "NOMRS", "address": "ADRESSE", "service_id": "", "epsg": "EPSG", **source.columns}
    if source.path.suffix.lower() == ".parquet":
        df = read_parquet_text(source.path, source.role)
    else:
        df = read_table(source.path, source.role, source.options.get("sep"))
    report.rows_read = len(df)
    require_keys(df, cols, ("type_code", "x", "y", "insee_com"), source)
    no_xy = (df[cols["x"]].str.strip() == "") | (df[cols["y"]].str.strip() == "")
    if no_xy.any():
        report.warn(f"{int(no_xy.sum())} équipement(s) sans coordonnées mis de côté (non géolocalisés).")
        df = df[~no_xy]
    if cols["epsg"] in df.columns and "crs" not in source.options:
        df, pts = _points_in_own_crs(df, cols, source, report)
    else:
        pts = points_from_columns(df, cols["x"], cols["y"], source.options.get("crs", "EPSG:2154"), source.path,
                                  source.label)
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


def as_text(table: pa.Table | pa.RecordBatch) -> pd.DataFrame:
    """A parquet table with every column as the text Arrow writes (``2154``, ``704000.25``), empty when missing."""
    columns = [pc.cast(column, pa.string()) for column in table.columns]
    return pa.table(columns, names=table.schema.names).to_pandas().fillna("")


def read_parquet_text(path: Path, role: str) -> pd.DataFrame:
    """Read a parquet table as text, like a CSV, with French errors."""
    check_exists(path, role)
    try:
        df = as_text(pq.read_table(path))
    except (pa.ArrowException, OSError) as exc:
        raise UnknownFormatError(f"le fichier n'est pas un parquet lisible ({exc}).", path=path) from None
    if df.empty:
        raise EmptyFileError("le fichier parquet ne contient aucune ligne.", path=path)
    return df


def _points_in_own_crs(
    df: pd.DataFrame, cols: dict[str, str], source: Source, report: LoadReport
) -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    """Lambert-93 points, each row converted from the system its ``EPSG`` column names.

    Rows whose code is empty or unknown are set aside and counted, never placed
    in a guessed system.
    """
    codes = df[cols["epsg"]].str.strip().str.upper().str.removeprefix("EPSG:")
    known = {code for code in codes.unique() if _is_epsg(code)}
    unknown = ~codes.isin(known)
    if unknown.any():
        shown = ", ".join(sorted({c or "vide" for c in codes[unknown]})[:5])
        report.warn(f"{int(unknown.sum())} équipement(s) mis de côté : système de coordonnées inconnu "
                    f"(colonne {cols['epsg']} : {shown}).")
        df, codes = df[~unknown], codes[~unknown]
    parts = [points_from_columns(df[codes == code], cols["x"], cols["y"], f"EPSG:{code}", source.path, source.label)
             for code in sorted(known)]
    if len(known) > 1:
        counts = codes.value_counts()
        report.warn("coordonnées converties en Lambert-93 depuis le système de chaque ligne : "
                    + " ; ".join(f"EPSG:{code} ({int(counts[code])})" for code in sorted(known)) + ".")
    if not parts:
        return df, gpd.GeoDataFrame(geometry=[], crs="EPSG:2154")
    points = pd.concat(parts).loc[df.index]
    return df, gpd.GeoDataFrame(points, geometry=points.geometry, crs="EPSG:2154")


def _is_epsg(code: str) -> bool:
    if not code.isdigit():
        return False
    try:
        CRS.from_epsg(int(code))
    except ProjCRSError:
        return False
    return True


def load_bpe_counts(source: Source, communes: gpd.GeoDataFrame) -> tuple[pd.DataFrame, LoadReport]:
    """BPE « ensemble » counts per IRIS and type (``DEPCOM``, ``DCIRIS``, ``TYPEQU``, ``NB_EQUIP``), as published.

    A services source without coordinates: it gives how many equipments of each
    type a commune (and each IRIS) has, never where. Communes outside the
    catalogue are left out and counted.
    """
    report = LoadReport(source.role, source.path)
    cols = {"insee_com": "DEPCOM", "iris": "DCIRIS", "type_code": "TYPEQU", "count": "NB_EQUIP", **source.columns}
    df = read_table(source.path, source.role, source.options.get("sep"), source.options.get("encoding"))
    report.rows_read = len(df)
    require_keys(df, cols, ("insee_com", "type_code", "count"), source)
    out = pd.DataFrame({
        "insee_com": df[cols["insee_com"]].str.strip().str.zfill(5),
        "iris": df[cols["iris"]].str.strip() if cols["iris"] in df else "",
        "type_code": df[cols["type_code"]].str.strip(),
        "count": to_number(df[cols["count"]], source.path, cols["count"])[0],
    })
    outside = ~out["insee_com"].isin(set(communes["insee_com"]))
    if outside.any():
        report.warn(f"{int(outside.sum())} ligne(s) de communes absentes du catalogue mises de côté "
                    f"({out.loc[outside, 'count'].sum():.0f} équipements).")
    out = out[~outside].reset_index(drop=True)
    report.rows_kept = len(out)
    return out, report


def typequ_labels(path: Path) -> pd.Series:
    """TYPEQU → label from INSEE's list of modalities (``COD_VAR``, ``COD_MOD``, ``LIB_MOD``)."""
    df = read_table(path, "libellés TYPEQU")
    df = df[df.get("COD_VAR", pd.Series("TYPEQU", index=df.index)) == "TYPEQU"]
    return df.set_index(df["COD_MOD"].str.strip())["LIB_MOD"].str.strip()
