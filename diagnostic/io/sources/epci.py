"""Intercommunalities (EPCI): INSEE's workbook « Intercommunalités au 1er janvier » and EPCI outlines.

The workbook is read as published: each sheet has a title block of several
lines, then a row of labels and a row of variable codes above its table. The
header row is found by its codes (``EPCI``, ``LIBEPCI``… on sheet « EPCI »,
``CODGEO``, ``EPCI`` on « Composition_communale »). Contrats de ville are signed
at this level, so the EPCI is a reference territory beside the commune.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import pandas as pd

from diagnostic.errors import MissingColumnError, UnknownFormatError
from diagnostic.io.catalog import Source
from diagnostic.io.sources._io import LoadReport, check_exists, check_geometries, read_geo

EPCI_SHEET, COMPOSITION_SHEET = "EPCI", "Composition_communale"
NATURES = {"METRO": "métropole", "ME": "métropole", "CU": "communauté urbaine", "CA": "communauté d'agglomération",
           "CC": "communauté de communes", "EPT": "établissement public territorial"}


@dataclass
class EpciData:
    """EPCI of the catalogue's communes: one row per EPCI, the commune → EPCI link, outlines if given."""

    epci: gpd.GeoDataFrame
    membership: pd.DataFrame


def read_sheet(path: Path, sheet: str, codes: list[str], max_rows: int | None = None) -> pd.DataFrame:
    """One sheet of an INSEE workbook as text, its table starting at the row holding ``codes``.

    ``max_rows`` reads only that many rows (enough to check the layout of a
    national workbook without reading its 35,000 communes). A workbook takes seconds to
    read: the table is kept for the process while the file keeps its size and date.
    """
    stat = Path(path).stat()
    return _read_sheet(Path(path), stat.st_size, stat.st_mtime_ns, sheet, tuple(codes), max_rows).copy()


@lru_cache(maxsize=8)
def _read_sheet(path: Path, _size: int, _mtime_ns: int, sheet: str, codes: tuple[str, ...],
                max_rows: int | None) -> pd.DataFrame:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 — openpyxl raises zipfile, KeyError, InvalidFileException…
        raise UnknownFormatError(f"le classeur ne peut pas être lu ({exc}).", path=path) from None
    if sheet not in wb.sheetnames:
        raise UnknownFormatError(f"feuille « {sheet} » absente du classeur (feuilles : {', '.join(wb.sheetnames)}).",
                                 path=path, hint="attendu : le classeur de l'INSEE « Intercommunalités au 1er janvier ».")
    rows = wb[sheet].iter_rows(max_row=max_rows, values_only=True)
    for header in rows:
        names = ["" if v is None else str(v).strip() for v in header]
        if set(codes) <= set(names):
            break
    else:
        wb.close()
        raise MissingColumnError(f"feuille « {sheet} » : aucune ligne d'en-tête avec {', '.join(codes)}.",
                                 path=path, column=codes[0])
    data = [["" if v is None else str(v).strip() for v in r[:len(names)]] for r in rows]
    wb.close()
    df = pd.DataFrame(data, columns=names)
    return df[df[codes[0]] != ""].reset_index(drop=True)


def load_epci(source: Source, communes: gpd.GeoDataFrame) -> tuple[EpciData, LoadReport]:
    """The EPCI of the catalogue's communes, with their nature and number of communes (all of France).

    ``outlines_file`` (catalogue option) adds the outlines; an EPCI cut by a
    department line in that file is merged into one shape.
    """
    report = LoadReport(source.role, source.path)
    check_exists(source.path, source.role)
    epci = read_sheet(source.path, EPCI_SHEET, ["EPCI", "LIBEPCI", "NATURE_EPCI", "NB_COM"])
    comp = read_sheet(source.path, COMPOSITION_SHEET, ["CODGEO", "EPCI"])
    report.rows_read = len(comp)
    member = comp[comp["CODGEO"].isin(set(communes["insee_com"]))][["CODGEO", "EPCI"]]
    member = member.rename(columns={"CODGEO": "insee_com", "EPCI": "siren_epci"}).reset_index(drop=True)
    missing = len(communes) - member["insee_com"].nunique()
    if missing:
        report.warn(f"{missing} commune(s) du catalogue absente(s) de la composition communale des EPCI.")
    mine = epci[epci["EPCI"].isin(set(member["siren_epci"]))]
    table = pd.DataFrame({
        "siren_epci": mine["EPCI"], "lib_epci": mine["LIBEPCI"], "nature": mine["NATURE_EPCI"],
        "nature_label": mine["NATURE_EPCI"].map(NATURES).fillna(mine["NATURE_EPCI"]),
        "communes_count": pd.to_numeric(mine["NB_COM"], errors="coerce").astype("Int64"),
    }).reset_index(drop=True)
    geometry = None
    if outlines := source.options.get("outlines_file"):
        shapes = read_geo(Path(outlines), source.role, source.options.get("crs"))
        shapes = check_geometries(shapes, Path(outlines), "siren_epci", report)
        shapes = shapes.assign(siren_epci=shapes["siren_epci"].astype(str)).dissolve(by="siren_epci")
        geometry = table["siren_epci"].map(shapes.geometry)
        absent = int(geometry.isna().sum())
        if absent:
            report.warn(f"{absent} EPCI sans contour dans {Path(outlines).name}.")
    gdf = gpd.GeoDataFrame(table, geometry=list(geometry) if geometry is not None else [None] * len(table),
                           crs="EPSG:2154")
    report.rows_kept = len(member)
    report.crs = "EPSG:2154"
    return EpciData(gdf, member), report
