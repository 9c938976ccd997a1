"""INSEE Base permanente des équipements (``TYPEQU``, ``LAMBERT_X``, ``LAMBERT_Y``, ``DEPCOM``, ``EPSG``).

INSEE recast its equipment codes with the BPE 2023–2024 (C101 → C107, D201 →
D265, D301 → D307…) and again in 2025 (police A101 → A140): each file is read
with the code list of its vintage (:func:`code_list`), and its equipment is
tagged ``bpe_<liste>`` so that ``diagnostic/resources/tables/domaines_mediation.csv``
gives each code its role in that list. A code its list does not hold is counted
and reported, never silently left out. The arrondissements of Paris, Lyon and
Marseille are set in their commune when the catalogue's communes hold the
commune; BPE 2023 and later say which quartier (``QP2024``) each equipment lies in.
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyproj import CRS
from pyproj.exceptions import CRSError as ProjCRSError

from diagnostic import text
from diagnostic.errors import CatalogError, EmptyFileError, UnknownFormatError
from diagnostic.io.catalog import Source
from diagnostic.io.reference import bpe_types
from diagnostic.io.sources._io import (
    LoadReport,
    check_exists,
    points_from_columns,
    read_table,
    require_keys,
    to_number,
)
from diagnostic.io.sources.communes import PLM, plm_commune
from diagnostic.io.sources.services import finish, text_column

#: INSEE's TYPEQU code lists (``liste`` of ``types_bpe.csv``) and the first BPE vintage read with each.
CODE_LISTS = {"2018": 2018, "2024": 2023, "2025": 2025}
#: Columns where a BPE file gives its own year (detail, counts, long layout).
YEAR_COLUMNS = ("AN", "REF_YEAR", "TIME_PERIOD")
#: The quartier (QPV 2024 generation) INSEE places each equipment in, from BPE 2023 on; empty outside any.
QPV_COLUMN = "QP2024"
#: Long-layout count files (INSEE's « DS_BPE » tables): one row per territory, type and measure.
LONG_COLUMNS = {"geo": "GEO", "level": "GEO_OBJECT", "type_code": "FACILITY_TYPE", "measure": "BPE_MEASURE",
                "count": "OBS_VALUE", "year": "TIME_PERIOD"}
#: Territory levels of the long layout kept, and the measure counted (the others are totals or capacities).
LONG_LEVELS = {"COM": "commune", "ARM": "arrondissement", "IRIS": "iris"}
LONG_MEASURE = "FACILITIES"
#: The code of a total (all domains, all types…) in the long layout.
TOTAL = "_T"


def load_bpe(source: Source, communes: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """Read a BPE extract; coordinates are Lambert-93 unless the catalogue says otherwise.

    Rows without coordinates (BPE ``QUALITE_XY`` « non géolocalisé ») are set
    aside and counted: they cannot enter distances. Since the 2023 files each
    row gives its own coordinate system (``EPSG``: Lambert-93 in metropolitan
    France, a local UTM overseas); each is then converted from its own. The
    file may be the CSV or the parquet INSEE publishes (``BPE25.parquet``).
    The quartier INSEE gives (``QP2024``) is kept as ``code_qp``.
    """
    report = LoadReport(source.role, source.path)
    cols = {"type_code": "TYPEQU", "x": "LAMBERT_X", "y": "LAMBERT_Y", "insee_com": "DEPCOM",
            "name": "NOMRS", "address": "ADRESSE", "service_id": "", "epsg": "EPSG", "code_qp": QPV_COLUMN,
            **source.columns}
    if source.path.suffix.lower() == ".parquet":
        df = read_parquet_text(source.path, source.role)
    else:
        df = read_table(source.path, source.role, source.options.get("sep"))
    report.rows_read = len(df)
    require_keys(df, cols, ("type_code", "x", "y", "insee_com"), source)
    liste = code_list(source, df, df[cols["type_code"]].str.strip(), report)
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
            "source_kind": source_kind(liste),
            "type_code": df[cols["type_code"]].str.strip(),
            "insee_com": in_communes(df[cols["insee_com"]].str.strip().str.zfill(5), communes, report),
            "address": text_column(df, cols["address"]),
            "hours": "",
        },
        geometry=pts.geometry.values,
        crs=pts.crs,
    )
    if cols["code_qp"] in df.columns:
        gdf["code_qp"] = text_column(df, cols["code_qp"]).str.upper().to_numpy()
    return finish(gdf, source, communes, report), report


def code_list(source: Source, df: pd.DataFrame, codes: pd.Series, report: LoadReport,
              counts: pd.Series | None = None) -> str:
    """The TYPEQU code list a BPE file is read with, its unknown codes counted and reported.

    The catalogue's ``nomenclature:`` wins; else the vintage (the catalogue's,
    else the file's own ``AN``/``REF_YEAR``/``TIME_PERIOD``) picks the list in
    force that year; a file with no year at all is read with the list that
    knows most of its codes. ``counts`` weighs each row (count files).
    """
    known = bpe_types().groupby("liste")["type"].agg(set)
    weights = pd.Series(1, index=codes.index) if counts is None else counts
    explicit = str(source.options.get("nomenclature", "")).strip()
    if explicit and explicit not in CODE_LISTS:
        raise CatalogError(f"« nomenclature: {explicit} » inconnue pour « {source.label} ».", path=source.path,
                           hint=f"listes possibles : {', '.join(CODE_LISTS)} (diagnostic/resources/tables/types_bpe.csv).")
    year = _year(source.vintage) or _year(_most_common(df, YEAR_COLUMNS))
    if explicit:
        liste = explicit
    elif year:
        liste = max((name for name, first in CODE_LISTS.items() if year >= first), key=CODE_LISTS.get,
                    default="2018")
    else:
        liste = max(CODE_LISTS, key=lambda name: weights[codes.isin(known[name])].sum())
    unknown = ~codes.isin(known[liste]) & (weights > 0)
    if unknown.any():
        by_code = weights[unknown].groupby(codes[unknown]).sum().sort_values(ascending=False)
        shown = ", ".join(by_code.index[:8]) + (" …" if len(by_code) > 8 else "")
        other = [name for name in CODE_LISTS if name != liste and set(by_code.index) <= known[name]]
        advice = (f" ; ce sont des codes de la liste {other[-1]} : précisez « nomenclature: {other[-1]} » dans le "
                  "catalogue" if other else " ; ajoutez-les à diagnostic/resources/tables/types_bpe.csv et "
                  "domaines_mediation.csv")
        report.warn(f"{text.count(by_code.sum(), 'équipement')} de types inconnus de la table (liste BPE {liste}) : "
                    f"{shown} — gardés, rangés dans aucun domaine{advice}.")
    return liste


def source_kind(liste: str) -> str:
    """The ``source`` of the domain table for equipment read with code list ``liste`` (``bpe_2024``)."""
    return f"bpe_{liste}"


def in_communes(codes: pd.Series, communes: gpd.GeoDataFrame, report: LoadReport) -> pd.Series:
    """Commune codes, PLM arrondissements (75101…, 69381…, 13201…) set in their commune when the catalogue holds it.

    With ``plm: commune`` (the default) the communes are Paris, Lyon and
    Marseille as a whole; with ``plm: arrondissements`` they are kept apart and
    so are the equipment codes.
    """
    present = set(communes["insee_com"])
    parent = codes.map(plm_commune)
    moved = parent.notna() & parent.isin(present) & ~codes.isin(present)
    if not moved.any():
        return codes
    for code, n in parent[moved].value_counts().sort_index().items():
        report.warn(f"{PLM[code][0]} ({code}) : {text.count(n, 'ligne')} d'arrondissements municipaux "
                    "rattachée(s) à la commune (« plm: commune »).")
    return codes.where(~moved, parent)


def _year(value: object) -> int | None:
    match = re.search(r"(19|20)\d{2}", str(value or ""))
    return int(match.group(0)) if match else None


def _most_common(df: pd.DataFrame, columns: tuple[str, ...]) -> str:
    """The most frequent value of the first of ``columns`` the file has, or ``""``."""
    column = next((c for c in columns if c in df.columns), None)
    if column is None or df.empty:
        return ""
    return str(df[column].astype(str).str.strip().mode().iloc[0])


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
    """BPE « ensemble » counts per commune or IRIS and type, without coordinates.

    Two layouts are read: the wide one (``DEPCOM``, ``DCIRIS``, ``TYPEQU``,
    ``NB_EQUIP``) and INSEE's long one (``GEO``, ``GEO_OBJECT``,
    ``FACILITY_TYPE``, ``BPE_MEASURE``, ``OBS_VALUE``), per commune or per IRIS
    (:func:`long_counts`). They give how many equipments of each type a commune
    (and each IRIS) has, never where. Communes outside the catalogue are left
    out and counted; PLM arrondissements are set in their commune.
    """
    report = LoadReport(source.role, source.path)
    df = read_table(source.path, source.role, source.options.get("sep"), source.options.get("encoding"))
    report.rows_read = len(df)
    if LONG_COLUMNS["type_code"] in df.columns and "TYPEQU" not in df.columns:
        df = long_counts(df, source, report, set(communes["insee_com"]))
    cols = {"insee_com": "DEPCOM", "iris": "DCIRIS", "type_code": "TYPEQU", "count": "NB_EQUIP", **source.columns}
    require_keys(df, cols, ("insee_com", "type_code", "count"), source)
    out = pd.DataFrame({
        "insee_com": df[cols["insee_com"]].str.strip().str.zfill(5),
        "iris": df[cols["iris"]].str.strip() if cols["iris"] in df else "",
        "type_code": df[cols["type_code"]].str.strip(),
        "count": to_number(df[cols["count"]], source.path, cols["count"])[0],
    })
    liste = code_list(source, df, out["type_code"], report, out["count"])
    out.insert(2, "source_kind", source_kind(liste))
    out["insee_com"] = in_communes(out["insee_com"], communes, report)
    outside = ~out["insee_com"].isin(set(communes["insee_com"]))
    if outside.any():
        report.warn(f"{int(outside.sum())} ligne(s) de communes absentes du catalogue mises de côté "
                    f"({out.loc[outside, 'count'].sum():.0f} équipements).")
    out = out[~outside].reset_index(drop=True)
    report.rows_kept = len(out)
    return out, report


def long_counts(df: pd.DataFrame, source: Source, report: LoadReport, present: set[str]) -> pd.DataFrame:
    """INSEE's long layout in the wide columns (``DEPCOM``, ``DCIRIS``, ``TYPEQU``, ``NB_EQUIP``).

    Only the number of equipments (``BPE_MEASURE`` ``FACILITIES``) of each type
    counts: totals (``_T``) of a domain, sub-domain or type would count an
    equipment twice. A file holding several years keeps the latest; a file with
    both commune and IRIS rows keeps the IRIS ones (their sum is the commune's).
    Paris, Lyon and Marseille come as a commune (``COM``) and as arrondissements
    (``ARM``): the one the catalogue's communes hold (``present``) is kept.
    """
    cols = {**LONG_COLUMNS, **source.columns}
    require_keys(df, cols, ("geo", "type_code", "count"), source)
    keep = df[cols["type_code"]].str.strip() != TOTAL
    for dimension in ("FACILITY_DOM", "FACILITY_SDOM"):
        if dimension in df.columns:
            keep &= df[dimension].str.strip() != TOTAL
    if cols["measure"] in df.columns:
        keep &= df[cols["measure"]].str.strip() == LONG_MEASURE
    if cols["year"] in df.columns:
        years = df[cols["year"]].str.strip()
        latest = years[keep].max() if keep.any() else ""
        if years[keep].nunique() > 1:
            report.warn(f"plusieurs années dans le fichier : seule la plus récente ({latest}) est gardée.")
        keep &= years == latest
    levels = df[cols["level"]].str.strip().map(LONG_LEVELS) if cols["level"] in df.columns else \
        pd.Series("commune", index=df.index)
    if (levels[keep] == "iris").any():
        keep &= levels == "iris"
    else:
        geo = df[cols["geo"]].str.strip()
        parent = geo.map(plm_commune)
        communes_rows = set(geo[keep & levels.eq("commune")])
        arrondissements_of = set(parent[keep & levels.eq("arrondissement")])
        by_commune = levels.eq("arrondissement") & parent.isin(present & communes_rows)
        by_arrondissements = levels.eq("commune") & geo.isin(arrondissements_of - present)
        if (keep & by_commune).any():
            report.warn("lignes des arrondissements municipaux (ARM) laissées de côté : la ligne de leur commune "
                        "(COM) les compte déjà (« plm: commune »).")
        keep &= levels.isin(["commune", "arrondissement"]) & ~by_commune & ~by_arrondissements
    rows = df[keep]
    geo = rows[cols["geo"]].str.strip()
    iris = levels[keep] == "iris"
    return pd.DataFrame({
        "DEPCOM": geo.where(~iris, geo.str[:5]),
        "DCIRIS": geo.where(iris, ""),
        "TYPEQU": rows[cols["type_code"]].str.strip(),
        "NB_EQUIP": rows[cols["count"]].str.strip(),
        **({cols["year"]: rows[cols["year"]]} if cols["year"] in rows else {}),
    })


def typequ_labels(path: Path) -> pd.Series:
    """TYPEQU → label from INSEE's list of modalities (``COD_VAR``, ``COD_MOD``, ``LIB_MOD``)."""
    df = read_table(path, "libellés TYPEQU")
    df = df[df.get("COD_VAR", pd.Series("TYPEQU", index=df.index)) == "TYPEQU"]
    return df.set_index(df["COD_MOD"].str.strip())["LIB_MOD"].str.strip()
