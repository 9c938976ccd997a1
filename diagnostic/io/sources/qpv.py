"""QPV boundaries, 2015 (``QPdddnnn``) and 2024 (``QNdddnnL``) generations (ANCT)."""

from __future__ import annotations

import re

import geopandas as gpd
import pandas as pd

from diagnostic.errors import DuplicateCodeError, ValueFormatError
from diagnostic.io.catalog import Source
from diagnostic.io.sources._io import (
    L93,
    TABLE_SUFFIXES,
    LoadReport,
    check_codes,
    check_geometries,
    read_geo,
    read_table,
    refuse,
    require_keys,
)
from diagnostic.text import fold

QPV_CODE = re.compile(r"^(QP(\d{3}|02[AB]|2[AB]\d|97\d)\d{3}|QN(\d{3}|02[AB]|97\d)\d{2}[A-Z])$")
DEFAULT_COLUMNS = {"code_qp": "code_qp", "lib_qp": "lib_qp", "insee_com": "insee_com"}
_SPLIT = re.compile(r"[,;/ ]+")
_LIST = re.compile(r"\s*,\s*")
#: What the report says where geometry is needed but the catalogue has QPVs as tables only.
NO_OUTLINES = ("contours non fournis : pour les bandes, les distances et la couche QPV de la carte, donnez sous "
               "« qpv: » du catalogue le fichier des contours des QPV de l'ANCT (« diagnostic data fetch » le "
               "télécharge) à la place de la liste")


def generation_of(code: str) -> str:
    """'2015' for QP codes, '2024' for QN codes."""
    return "2024" if code.startswith("QN") else "2015"


def load_qpv(source: Source, communes: gpd.GeoDataFrame | None = None) -> tuple[gpd.GeoDataFrame, pd.DataFrame, LoadReport]:
    """Read QPV outlines; return one row per QPV and the QPV–commune pairs.

    A QPV spanning several communes may come as one feature listing the codes
    or as one feature per commune; both give one QPV belonging to each commune.
    Without a commune column, communes are found by overlap with ``communes``.
    """
    if not has_outlines(source):
        return load_qpv_list(source, communes)
    report = LoadReport(source.role, source.path)
    columns = {**DEFAULT_COLUMNS, **source.columns}
    gdf = read_geo(source.path, source.role, source.options.get("crs"), source.options.get("layer"))
    report.rows_read = len(gdf)
    has_commune = columns["insee_com"] in gdf.columns
    needed = ["code_qp", "lib_qp"]
    by_name = not has_commune and "lib_com" in columns and communes is not None
    if by_name:
        needed.append("lib_com")
    elif not has_commune and communes is None:
        needed.append("insee_com")
    require_keys(gdf, columns, needed, source)
    codes = gdf[columns["code_qp"]].astype(str).str.strip()
    check_codes(codes, QPV_CODE, source.path, columns["code_qp"], "QPV", "attendu : QPdddnnn (génération 2015, "
                "ex. QP031007) ou QNdddnnL (génération 2024, ex. QN04901M).", offset=1)
    raw = gpd.GeoDataFrame(
        {"code_qp": codes, "lib_qp": gdf[columns["lib_qp"]].astype(str).str.strip()},
        geometry=gdf.geometry.values,
        crs=gdf.crs,
    )
    for optional in ("siren_epci", "insee_dep"):
        if columns.get(optional, optional) in gdf.columns:
            raw[optional] = gdf[columns.get(optional, optional)].astype(str).to_numpy()
    raw = check_geometries(raw, source.path, "code_qp", report)
    if by_name:
        named = pd.DataFrame({"code_qp": codes, "lib_com": gdf[columns["lib_com"]].astype(str)}, index=raw.index)
        pairs = resolve_commune_names(named, communes, report)
    elif has_commune:
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
    refuse(dup_pairs.groupby(level=0).any(), "le même QPV apparaît plusieurs fois pour la même commune "
           f"({', '.join(pairs.loc[dup_pairs, 'code_qp'].unique()[:5])}).", source.path, columns["code_qp"],
           error=DuplicateCodeError, offset=1, hint="un QPV ne doit figurer qu'une fois par commune.")
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


def has_outlines(source: Source) -> bool:
    """False for a table of QPVs (CSV, observatory export) or a list declared ``outlines: false``."""
    fmt = (source.format or "").lower()
    if fmt in ("sigville", "csv") or source.path.suffix.lower() in TABLE_SUFFIXES:
        return False
    return bool(source.options.get("outlines", True))


def department_of_qpv(code: str) -> str:
    """« 59 » for QP059074 or QN05971M, « 2A » for QP02A…, « 974 » for QP974…."""
    dep = code[2:5]
    return dep.removeprefix("0")


def _name_key(name: str) -> str:
    """A commune name for matching: no accent, case, ligature, article (IGN files drop it) or punctuation."""
    name = re.sub(r"^(les?|la|l')\s*", "", fold(name).replace("’", "'"))
    return re.sub(r"[^0-9a-z]", "", name.replace("œ", "oe").replace("æ", "ae"))


def resolve_commune_names(named: pd.DataFrame, communes: gpd.GeoDataFrame, report: LoadReport) -> pd.DataFrame:
    """QPV–commune pairs from commune NAMES (comma-separated lists), matched within the QPV's department.

    Names are compared without accents, case, ligatures, leading article or
    punctuation (« Mons-en-Baroeul » = « Mons-en-Barœul », « Le Quesnoy » =
    « Quesnoy »); a name absent from the department is looked for in the whole
    file, where it must be unique (a QPV may cross a department line); QPVs of
    other departments are skipped. A name
    still not found is counted in the report, never guessed.
    """
    known = communes.assign(key=communes["lib_com"].map(_name_key))
    lookup = known.groupby(["insee_dep", "key"])["insee_com"].agg(list)
    anywhere = known.groupby("key")["insee_com"].agg(list)
    rows, unknown = [], []
    departments = set(known["insee_dep"])
    for code, names in zip(named["code_qp"], named["lib_com"]):
        dep = department_of_qpv(code)
        if dep not in departments:
            continue
        for name in [n for n in _LIST.split(str(names).strip()) if n]:
            key = _name_key(name)
            found = lookup.get((dep, key))
            if found is None and len(anywhere.get(key, [])) == 1:
                found = anywhere[key]
            if found is None:
                unknown.append(f"{name} ({code})")
                continue
            rows += [(code, c) for c in found]
    if unknown:
        report.warn(f"{len(unknown)} nom(s) de commune sans code dans le fichier des communes : {', '.join(unknown[:5])}.")
    return pd.DataFrame(rows, columns=["code_qp", "insee_com"]).drop_duplicates()


def load_qpv_list(source: Source, communes: gpd.GeoDataFrame | None) -> tuple[gpd.GeoDataFrame, pd.DataFrame, LoadReport]:
    """QPVs known as a table only (no outlines): code, name and commune(s) of each.

    Reads a CSV (the observatory's exports: ``CODGEO``, ``LIBGEO``, ``LIB_COM``
    with commune names), or a geographic file whose points are not outlines
    (ANCT's list per commune: ``insee_com`` and comma-separated ``code_qp`` /
    ``lib_qp``). QPVs whose communes are not in the catalogue are left out and
    counted. Geometry stays empty: what needs it says « contours non fournis ».
    """
    report = LoadReport(source.role, source.path)
    sigville = (source.format or "").lower() == "sigville"
    base = {"code_qp": "CODGEO", "lib_qp": "LIBGEO", "lib_com": "LIB_COM"} if sigville else dict(DEFAULT_COLUMNS)
    columns = {**base, **source.columns}
    if source.path.suffix.lower() not in TABLE_SUFFIXES and not sigville:
        df = pd.DataFrame(read_geo(source.path, source.role, source.options.get("crs")).drop(columns="geometry"))
        df = df.astype(str)
    else:
        df = read_table(source.path, source.role, source.options.get("sep"), source.options.get("encoding"))
    report.rows_read = len(df)
    by_code = columns.get("insee_com", "") in df.columns
    require_keys(df, columns, ("code_qp", "lib_qp", "insee_com" if by_code else "lib_com"), source)
    df = df[df[columns["code_qp"]].str.strip() != "Ensemble"]
    listed = []
    for _, row in df.iterrows():
        codes = [c for c in _LIST.split(str(row[columns["code_qp"]]).strip()) if c]
        libs = _LIST.split(str(row[columns["lib_qp"]]).strip())
        libs = libs if len(libs) == len(codes) else codes
        where = row[columns["insee_com" if by_code else "lib_com"]]
        listed += [(c, lib, where) for c, lib in zip(codes, libs)]
    table = pd.DataFrame(listed, columns=["code_qp", "lib_qp", "where"])
    bad = ~table["code_qp"].str.match(QPV_CODE)
    if bad.any():
        raise ValueFormatError(
            f"codes QPV mal formés ({', '.join(table.loc[bad, 'code_qp'].head(3))}).",
            path=source.path, column=columns["code_qp"],
            hint="attendu : QPdddnnn (génération 2015) ou QNdddnnL (génération 2024).",
        )
    if by_code:
        pairs = table[["code_qp"]].assign(insee_com=table["where"].map(
            lambda v: [c.zfill(5) for c in _SPLIT.split(str(v).strip()) if c])).explode("insee_com")
    elif communes is not None:
        pairs = resolve_commune_names(table.rename(columns={"where": "lib_com"}), communes, report)
    else:
        raise ValueFormatError("les QPV sont rattachés à des noms de commune, mais aucun fichier de communes n'est fourni.",
                               path=source.path, column=columns["lib_com"])
    pairs = pairs.drop_duplicates()
    if communes is not None:
        outside = ~pairs["insee_com"].isin(set(communes["insee_com"]))
        pairs = pairs[~outside]
    names = table.drop_duplicates("code_qp").set_index("code_qp")["lib_qp"]
    kept = sorted(set(pairs["code_qp"]))
    left_out = names.index.nunique() - len(kept)
    if left_out:
        report.warn(f"{left_out} QPV hors du territoire du catalogue mis de côté.")
    communes_of = pairs.groupby("code_qp")["insee_com"].agg(lambda s: ",".join(sorted(set(s))))
    qpv = gpd.GeoDataFrame(
        {"code_qp": kept, "lib_qp": names.reindex(kept).to_numpy()}, geometry=[None] * len(kept), crs=L93)
    qpv["communes"] = qpv["code_qp"].map(communes_of)
    qpv["insee_com"] = qpv["communes"].str.split(",").str[0]
    qpv["generation"] = qpv["code_qp"].map(generation_of)
    report.warn(f"{len(qpv)} QPV connus par leur liste seulement : {NO_OUTLINES}.")
    report.rows_kept = len(qpv)
    return qpv, pairs.reset_index(drop=True), report
