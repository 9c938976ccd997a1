"""Commune boundaries (IGN Admin Express / INSEE COG codes).

The published layers may also hold the municipal arrondissements of Paris, Lyon
and Marseille on top of their commune, while INSEE tables and QPV files use the
commune's code: by default they are merged into their commune (``plm: commune``),
or kept apart in place of it (``plm: arrondissements``); ``data check`` says which.
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import pandas as pd

from diagnostic.errors import CatalogError
from diagnostic.io.catalog import Source
from diagnostic.io.reference import department_regions
from diagnostic.io.sources._io import (
    LoadReport,
    check_codes,
    check_exists,
    check_geometries,
    check_unique,
    read_geo,
    require_keys,
)

COMMUNE_CODE = re.compile(r"^(\d{5}|2[AB]\d{3})$")
DEFAULT_COLUMNS = {"insee_com": "code", "lib_com": "nom"}
#: Communes divided into municipal arrondissements: code → (name, arrondissement codes).
PLM = {
    "75056": ("Paris", {str(c) for c in range(75101, 75121)}),
    "69123": ("Lyon", {str(c) for c in range(69381, 69390)}),
    "13055": ("Marseille", {str(c) for c in range(13201, 13217)}),
}
PLM_MODES = ("commune", "arrondissements")


def plm_commune(code: str) -> str | None:
    """The commune (75056, 69123, 13055) of a municipal arrondissement code, else None."""
    return next((parent for parent, (_, arrs) in PLM.items() if code in arrs), None)


def department_of(code: str) -> str:
    """INSEE department of a commune code (three digits overseas)."""
    return code[:3] if code.startswith("97") else code[:2]


def load_communes(source: Source) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """Read commune outlines; also accepts a file holding one bare GeoJSON Feature."""
    report = LoadReport(source.role, source.path)
    columns = {**DEFAULT_COLUMNS, **source.columns}
    gdf = read_geo(source.path, source.role, source.options.get("crs"), source.options.get("layer"))
    report.rows_read = len(gdf)
    require_keys(gdf, columns, ("insee_com", "lib_com"), source)
    out = gpd.GeoDataFrame(
        {
            "insee_com": gdf[columns["insee_com"]].astype(str).str.strip().str.zfill(5),
            "lib_com": gdf[columns["lib_com"]].astype(str).str.strip(),
        },
        geometry=gdf.geometry.values,
        crs=gdf.crs,
    )
    check_codes(out["insee_com"], COMMUNE_CODE, source.path, columns["insee_com"], "commune",
                "attendu : le code INSEE à 5 caractères (ex. 59350, 2A004).", offset=1)
    if "insee_dep" in columns and columns["insee_dep"] in gdf.columns:
        out["insee_dep"] = gdf[columns["insee_dep"]].astype(str).str.strip().to_numpy()
    else:
        out["insee_dep"] = out["insee_com"].map(department_of)
    check_unique(out["insee_com"], source.path, columns["insee_com"])
    out = check_geometries(out, source.path, "insee_com", report)
    report.crs = "EPSG:2154"
    if "insee_reg" in columns and columns["insee_reg"] in gdf.columns:
        out["insee_reg"] = gdf[columns["insee_reg"]].astype(str).str.strip().to_numpy()
    else:
        out["insee_reg"] = out["insee_dep"].map(department_regions()["reg"])
    out = arrondissements(out, source, report)
    if source.options.get("labels_file"):
        out["lib_com"] = official_names(Path(source.options["labels_file"]), out["insee_com"]).fillna(out["lib_com"])
    report.rows_kept = len(out)
    return out[["insee_com", "lib_com", "insee_dep", "insee_reg", "geometry"]], report


def official_names(path: Path, codes: pd.Series) -> pd.Series:
    """The communes' names as INSEE's COG writes them (« La Fère », « Le Portel », « Le Quesnoy »), by code, from
    its commune table (columns ``COM`` and ``LIBELLE``; ``labels_file`` of the communes source): old outlines
    drop the article (« Fère »). Codes the table lacks give NaN (the outline's name is kept)."""
    check_exists(path, "communes")
    table = pd.read_csv(path, dtype=str, usecols=["COM", "LIBELLE"], encoding="utf-8-sig")
    return codes.map(table.drop_duplicates("COM").set_index("COM")["LIBELLE"])


def arrondissements(out: gpd.GeoDataFrame, source: Source, report: LoadReport) -> gpd.GeoDataFrame:
    """Merge the PLM arrondissements into their commune, or keep them in its place.

    A layer holding both the commune and its arrondissements would count every
    service and QPV twice; one holding only the arrondissements would match no
    INSEE table. Either way the choice made is said in the load report.
    """
    mode = str(source.options.get("plm", "commune"))
    if mode not in PLM_MODES:
        raise CatalogError(f"« plm: {mode} » inconnu pour la source des communes.", path=source.path,
                           hint="valeurs possibles : commune (arrondissements fusionnés, défaut) ou arrondissements.")
    parent = out["insee_com"].map(plm_commune)
    if parent.isna().all():
        return out
    arr, present = parent.notna(), set(out["insee_com"])
    if mode == "arrondissements":
        replaced = sorted(set(parent[arr]) & present)
        for code in replaced:
            report.warn(f"{PLM[code][0]} ({code}) : gardée en {int((parent == code).sum())} arrondissements "
                        "municipaux (« plm: arrondissements ») ; son contour d'ensemble est retiré.")
        return out[~out["insee_com"].isin(replaced)]
    merged = []
    for code, group in out[arr].groupby(parent[arr]):
        name = PLM[code][0]
        if code in present:
            report.warn(f"{name} ({code}) : {len(group)} arrondissements municipaux écartés, déjà couverts par le "
                        "contour de la commune (les tableaux INSEE et les QPV utilisent le code de la commune).")
            continue
        report.warn(f"{name} ({code}) : {len(group)} arrondissements municipaux réunis en une commune "
                    "(les tableaux INSEE et les QPV utilisent le code de la commune).")
        merged.append({"insee_com": code, "lib_com": name, "insee_dep": department_of(code),
                       "insee_reg": group["insee_reg"].iloc[0], "geometry": group.geometry.union_all()})
    kept = out[~arr]
    if not merged:
        return kept
    return gpd.GeoDataFrame(pd.concat([kept, gpd.GeoDataFrame(merged, crs=out.crs)], ignore_index=True),
                            crs=out.crs)
