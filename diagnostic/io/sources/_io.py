"""Shared reading and checking helpers for the loaders."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import io
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from diagnostic import text
from diagnostic.errors import (
    CatalogError,
    CRSError,
    DiagnosticError,
    DuplicateCodeError,
    EmptyFileError,
    GeometryError,
    UnknownFormatError,
    ValueFormatError,
    closest,
    missing_column,
)
from diagnostic.io.catalog import Source
from diagnostic.io.confined import DATA_LIMIT, decode_text, read_confined, require_file

L93 = "EPSG:2154"
GEO_SUFFIXES = {".geojson", ".json", ".shp", ".gpkg", ".zip", ".parquet", ".fgb"}
TABLE_SUFFIXES = {".csv", ".txt", ".tsv"}
WORKBOOK_SUFFIXES = {".xlsx", ".xlsm"}
#: Markers INSEE and others use for values under statistical secrecy.
SECRET_MARKERS = {"s", "S", "secret"}
#: Markers of a value not available (« nd » is not statistical secrecy: it is labelled « non disponible »).
MISSING_MARKERS = {"", "NA", "N/A", "nan", "NaN", "-", "null", "None", "nd", "ND", "n.d.", "n.d"}


@dataclass
class LoadReport:
    """What a loader read, kept and set aside, to show the officer."""

    role: str
    path: Path
    rows_read: int = 0
    rows_kept: int = 0
    #: Distinct records read, where a loader counts exact duplicates once (the same counting as ``rows_kept``).
    rows_distinct: int | None = None
    crs: str | None = None
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def check_exists(path: Path, role: str) -> None:
    """A source's file: present, a regular file (never a named pipe), not empty."""
    require_file(path, role)


def file_kind(path: Path, declared: str | None) -> str:
    """'geo' or 'table', from the declared format or the file suffix."""
    fmt = (declared or path.suffix.lstrip(".")).lower()
    if f".{fmt}" in GEO_SUFFIXES or fmt in {"geojson", "shapefile", "geopackage", "geoparquet"}:
        return "geo"
    if f".{fmt}" in TABLE_SUFFIXES or fmt == "csv":
        return "table"
    raise UnknownFormatError(
        f"format « {fmt or '(aucun)'} » non pris en charge.",
        path=path,
        hint="formats acceptés : GeoJSON, Shapefile (ou .zip), GeoPackage, GeoParquet pour les "
        "contours ; CSV pour les tableaux. Précisez « format: » dans le catalogue si "
        "l'extension est trompeuse.",
    )


def read_geo(path: Path, role: str, declared_crs: str | None = None, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read a vector file with pyogrio, check its CRS and return it in Lambert-93."""
    check_exists(path, role)
    file_kind(path, None)
    try:
        if path.suffix.lower() == ".parquet":
            gdf = gpd.read_parquet(path)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gdf = pyogrio.read_dataframe(path, layer=layer)
    except Exception as exc:  # noqa: BLE001 — pyogrio and pyarrow raise many unrelated types for unreadable files
        raise UnknownFormatError(
            f"le fichier ne peut pas être lu comme données géographiques ({exc}).",
            path=path,
        ) from None
    if not isinstance(gdf, gpd.GeoDataFrame):  # a table (CSV…) read by GDAL has no geometry
        raise UnknownFormatError(
            f"le fichier de la source « {role} » n'a pas de géométries : un fichier de contours est attendu.",
            path=path,
            hint="donnez un GeoJSON, un Shapefile, un GeoPackage ou un GeoParquet.",
        )
    if len(gdf) == 0:
        raise EmptyFileError("le fichier ne contient aucune entité géographique.", path=path)
    return to_l93(gdf, path, declared_crs)


def to_l93(gdf: gpd.GeoDataFrame, path: Path, declared_crs: str | None) -> gpd.GeoDataFrame:
    """Check the file's CRS against the catalogue's and the coordinates, then project."""
    file_crs = gdf.crs
    if declared_crs:
        want = CRS.from_user_input(declared_crs)
        if file_crs is None:
            gdf = gdf.set_crs(want)
        elif not CRS.from_user_input(file_crs).equals(want, ignore_axis_order=True):
            raise CRSError(
                f"le fichier déclare {CRS.from_user_input(file_crs).to_string()} alors que le "
                f"catalogue attend {want.to_string()}.",
                path=path,
                hint="corrigez « crs: » dans le catalogue ou reprojetez le fichier.",
            )
    elif file_crs is None:
        raise CRSError(
            "le fichier ne déclare aucun système de coordonnées.",
            path=path,
            hint="ajoutez « crs: EPSG:2154 » (Lambert-93) ou « crs: EPSG:4326 » (WGS84) "
            "à cette source dans le catalogue, ou joignez le fichier .prj du Shapefile.",
        )
    check_coordinates_match_crs(gdf.total_bounds, gdf.crs, path)
    return gdf.to_crs(L93)


def check_coordinates_match_crs(bounds: np.ndarray, crs, path: Path) -> None:
    """Refuse coordinates that cannot be in the declared CRS (metres declared as degrees)."""
    crs = CRS.from_user_input(crs)
    minx, miny, maxx, maxy = bounds
    if crs.is_geographic and (abs(minx) > 180 or abs(maxx) > 180 or abs(miny) > 90 or abs(maxy) > 90):
        raise CRSError(
            f"les coordonnées (jusqu'à {maxx:.0f}, {maxy:.0f}) sont en mètres, mais le système "
            f"déclaré ({crs.to_string()}) est en degrés.",
            path=path,
            hint="déclarez « crs: EPSG:2154 » si les coordonnées sont en Lambert-93.",
        )
    if crs.is_projected and max(abs(minx), abs(maxx), abs(miny), abs(maxy)) < 1000:
        raise CRSError(
            f"les coordonnées (vers {minx:.3f}, {miny:.3f}) ressemblent à des degrés, mais le "
            f"système déclaré ({crs.to_string()}) est en mètres.",
            path=path,
            hint="déclarez « crs: EPSG:4326 » si les coordonnées sont des longitudes/latitudes.",
        )


def read_source_text(path: Path, role: str, roots: list[Path] | None = None) -> str:
    """A text source (Markdown, GPX, JSON) read through the confined opener (inside ``roots`` when given, for the
    files of a folder source): UTF-8, UTF-16 with BOM, or Windows-1252."""
    return decode_text(read_confined(path, f"le fichier de la source « {role} »", roots=roots, limit=DATA_LIMIT,
                                     folders="du dossier de la source"))


def sniff_separator(header: str) -> str:
    counts = {sep: header.count(sep) for sep in (";", ",", "\t", "|")}
    return max(counts, key=counts.get)


def read_table(
    path: Path, role: str, sep: str | None = None, encoding: str | None = None, sheet: str | None = None
) -> pd.DataFrame:
    """Read a CSV as published (any separator, UTF-8 with or without BOM, or Latin-1), as text.

    A spreadsheet (``.xlsx``) is read from ``sheet``, else its first sheet, by :func:`read_sheet`.
    """
    check_exists(path, role)
    if is_workbook(path):
        return read_sheet(path, sheet)
    raw = read_confined(path, f"le fichier de la source « {role} »", limit=DATA_LIMIT)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) and encoding is None:  # UTF-16, as some spreadsheets save
        encoding = "utf-16"
    elif _looks_geojson(raw):
        raise UnknownFormatError(
            f"le fichier est un GeoJSON (contours), pas un tableau CSV, malgré son extension « {path.suffix} ».",
            path=path, hint="renommez-le en .geojson et déclarez-le comme contours, ou donnez le tableau CSV attendu.")
    if (b"\x00" in raw[:4096] and not str(encoding).lower().startswith("utf-16")) or raw.startswith(b"PK\x03\x04") \
            or path.suffix.lower() in GEO_SUFFIXES:
        raise UnknownFormatError(
            f"le fichier n'est pas un tableau CSV (format « {path.suffix.lstrip('.') or 'inconnu'} »).",
            path=path,
            hint="enregistrez-le au format CSV (séparateur « ; » ou « , », UTF-8) depuis le tableur.",
        )
    try:
        if encoding is None:
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                text = raw.decode("cp1252")
        else:
            text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise UnknownFormatError(
            f"le fichier CSV n'est pas lisible comme texte ({exc}).",
            path=path,
            hint="enregistrez-le en CSV UTF-8, ou précisez « encoding: » dans le catalogue.",
        ) from None
    if not text.strip():
        raise EmptyFileError("le fichier ne contient que des espaces.", path=path)
    header = text.splitlines()[0]
    sep = sep or sniff_separator(header)
    try:
        df = pd.read_csv(
            io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, quoting=csv.QUOTE_MINIMAL
        )
    except pd.errors.ParserError as exc:
        raise UnknownFormatError(f"le fichier CSV est mal formé ({exc}).", path=path) from None
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        raise EmptyFileError("le fichier n'a qu'une ligne d'en-tête, aucune donnée.", path=path)
    return df


def _looks_geojson(raw: bytes) -> bool:
    """Whether a file's first bytes are those of a GeoJSON (a ``.txt`` that is in fact a map layer)."""
    head = raw[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{") and b'"type"' in head and (b"FeatureCollection" in head or b'"Feature"' in head)


def is_workbook(path: Path) -> bool:
    return path.suffix.lower() in WORKBOOK_SUFFIXES


#: Largest workbook read (bytes on disk), total uncompressed size of its parts, and compression ratio: a real
#: spreadsheet compresses 5 to 30 times; a « zip bomb » hundreds of times.
WORKBOOK_LIMIT = 50 * 1024 * 1024
WORKBOOK_UNPACKED_LIMIT = 200 * 1024 * 1024
WORKBOOK_RATIO = 100


def check_workbook(path: Path) -> None:
    """Refuse a workbook too large, or one that would unpack to too much (zip bomb), before reading any cell.

    The sizes are those the archive declares: Python's zip reader never inflates an
    entry past its declared size, so memory stays bounded by these limits.
    """
    import zipfile

    hint = "enregistrez la feuille utile seule au format .xlsx ou en CSV."
    if path.stat().st_size > WORKBOOK_LIMIT:
        raise UnknownFormatError(f"le classeur dépasse {WORKBOOK_LIMIT // 2**20} Mo : il n'est pas lu.", path=path,
                                 hint=hint)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise UnknownFormatError("le classeur ne peut pas être lu (ce n'est pas un fichier .xlsx valide).", path=path,
                                 hint="enregistrez-le au format .xlsx (Excel, LibreOffice) ou en CSV.") from None
    unpacked = sum(i.file_size for i in infos)
    packed = max(sum(i.compress_size for i in infos), 1)
    if unpacked > WORKBOOK_UNPACKED_LIMIT or unpacked / packed > WORKBOOK_RATIO:
        raise UnknownFormatError(
            f"le classeur se décompresse en {unpacked // 2**20} Mo (taux {unpacked / packed:.0f} pour 1) : au-delà de "
            f"{WORKBOOK_UNPACKED_LIMIT // 2**20} Mo ou d'un taux de {WORKBOOK_RATIO} pour 1, il n'est pas lu "
            "(archive piégée ou anormale).", path=path, hint=hint)


def sheet_name(path: Path, sheet: str | None) -> str:
    """The sheet a source reads: the one named in the catalogue, else the workbook's first."""
    import openpyxl

    check_workbook(path)
    try:
        book = openpyxl.load_workbook(path, read_only=True)
    except Exception as exc:  # noqa: BLE001 — zipfile, XML and openpyxl errors all mean « not a workbook »
        raise UnknownFormatError(f"le classeur ne peut pas être lu ({type(exc).__name__}).", path=path,
                                 hint="enregistrez-le au format .xlsx (Excel, LibreOffice) ou en CSV.") from None
    names = book.sheetnames
    book.close()
    if sheet is None:
        return names[0]
    if sheet not in names:
        near = closest(sheet, names)
        raise CatalogError(
            f"la feuille « {sheet} » n'existe pas dans le classeur"
            + (f" (vouliez-vous dire « {near} » ?)" if near else "") + ".",
            path=path,
            hint=f"feuilles du classeur : {', '.join(names)} ; corrigez « sheet: » dans le catalogue.",
        )
    return sheet


def _cell_text(value) -> str:
    """A spreadsheet cell as the text a CSV export would hold (dates ISO, whole numbers without « .0 »)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d") if value.time() == dt.time() else value.strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _sheet_values(path: Path, name: str, *, data_only: bool) -> list[list]:
    """The raw cell values of one sheet: formulas as written (« =A1+1 »), or the values last computed."""
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True, data_only=data_only)
    try:
        return [list(row) for row in book[name].iter_rows(values_only=True)]
    finally:
        book.close()


def read_sheet(path: Path, sheet: str | None = None) -> pd.DataFrame:
    """One sheet of an ``.xlsx`` workbook as a text table: header on the first filled row, as a CSV would be.

    Cells become the text a CSV export holds, so every loader checks a workbook exactly
    as it checks a CSV; line numbers in errors are the spreadsheet's row numbers. A formula
    whose value was never computed is an error, not an empty cell.
    """
    name = sheet_name(path, sheet)
    rows = _sheet_values(path, name, data_only=False)
    formulas = [(r, c) for r, row in enumerate(rows) for c, v in enumerate(row) if isinstance(v, str) and v[:1] == "="]
    if formulas:  # the values the spreadsheet computed, saved beside its formulas
        rows = _sheet_values(path, name, data_only=True)
        uncomputed = sorted({r + 1 for r, c in formulas if rows[r][c] is None})
        if uncomputed:
            raise ValueFormatError(
                f"{len([1 for r, c in formulas if rows[r][c] is None])} cellule(s) contiennent une formule dont "
                "la valeur n'a jamais été calculée (classeur produit par un programme, pas par un tableur).",
                path=path, sheet=name, rows=uncomputed,
                hint="ouvrez le classeur dans un tableur et enregistrez-le (les valeurs sont alors calculées), ou "
                "remplacez les formules par leurs valeurs (collage spécial « valeurs »).")
    rows = [[_cell_text(v) for v in row] for row in rows]
    while rows and not any(rows[-1]):
        rows.pop()
    skipped = 0
    while rows and not any(rows[0]):
        rows.pop(0)
        skipped += 1
    if skipped:
        raise ValueFormatError(
            f"la feuille commence par {skipped} ligne(s) vide(s) : l'en-tête doit être sur la première ligne.",
            path=path, sheet=name, rows=list(range(1, skipped + 1)),
            hint="supprimez les lignes vides au-dessus de l'en-tête.")
    if len(rows) < 2:
        raise EmptyFileError("la feuille n'a aucune ligne de données sous son en-tête.", path=path, sheet=name)
    header = rows[0]
    keep = [i for i, h in enumerate(header) if h or any(len(r) > i and r[i] for r in rows[1:])]
    width = len(header)
    table = [(r + [""] * width)[:width] for r in rows[1:]]
    df = pd.DataFrame([[r[i] for i in keep] for r in table], columns=[header[i] for i in keep], dtype=str)
    df.attrs["sheet"] = name
    return df


@contextlib.contextmanager
def sheet_errors(path: Path, sheet: str | None) -> Iterator[None]:
    """Errors raised inside about the workbook ``path`` name the sheet read."""
    try:
        yield
    except DiagnosticError as exc:
        if exc.sheet is None and exc.path == path and is_workbook(path):
            exc.sheet = sheet_name(path, sheet)
        raise


F = TypeVar("F", bound=Callable)


def names_sheet(loader: F) -> F:
    """Make a loader's errors about a workbook name its sheet (the loader's first argument is the source)."""

    @functools.wraps(loader)
    def wrapped(source, *args, **kwargs):
        with sheet_errors(source.path, source.options.get("sheet")):
            return loader(source, *args, **kwargs)

    return wrapped  # type: ignore[return-value]


def require_columns(df: pd.DataFrame, columns: Iterable[str], path: Path, role: str) -> None:
    """Raise a suggestion-bearing error for the first of ``columns`` that is absent."""
    for column in columns:
        if column not in df.columns:
            raise missing_column(path, column, df.columns, role)


def require_keys(df: pd.DataFrame, cols: Mapping[str, str], keys: Iterable[str], source: Source) -> None:
    """Refuse a source's file lacking the column that ``cols`` (key → file column) gives any of ``keys``."""
    require_columns(df, (cols[k] for k in keys), source.path, source.label)


def line_numbers(mask: pd.Series | np.ndarray, offset: int = 2) -> list[int]:
    """1-based file line numbers of the rows where ``mask`` is true (header is line 1)."""
    return [int(i) + offset for i in np.flatnonzero(np.asarray(mask))]


def refuse(
    bad: pd.Series | np.ndarray | list[bool],
    message: str,
    path: Path,
    column: str | None = None,
    *,
    hint: str | None = None,
    error: type[DiagnosticError] = ValueFormatError,
    offset: int = 2,
    lines: pd.Series | np.ndarray | None = None,
) -> None:
    """Raise ``error`` naming the file, the column and the lines where ``bad`` holds; nothing when none does.

    Lines are counted as :func:`line_numbers` does (``offset`` 2: first data row under
    the header; 1 for a geographic file); ``lines`` gives each row's line instead when
    rows were set aside since reading.
    """
    bad = np.asarray(bad, dtype=bool)
    if not bad.any():
        return
    rows = [int(n) for n in np.asarray(lines)[bad]] if lines is not None else line_numbers(bad, offset)
    raise error(message, path=path, column=column, rows=rows, hint=hint)


def examples(values: pd.Series, bad: pd.Series | np.ndarray | list[bool], n: int = 3, quote: bool = False) -> str:
    """The first ``n`` values where ``bad`` holds, comma-separated (``repr`` when ``quote``), for a message."""
    shown = values[np.asarray(bad, dtype=bool)].head(n)
    return ", ".join(repr(v) if quote else str(v) for v in shown)


def check_codes(
    codes: pd.Series, pattern: re.Pattern[str], path: Path, column: str, what: str, hint: str, offset: int = 2
) -> None:
    """Refuse codes not matching ``pattern`` (« codes QPV mal formés (…) »), naming their lines."""
    bad = ~codes.str.match(pattern)
    refuse(bad, f"codes {what} mal formés ({examples(codes, bad)}).", path, column, hint=hint, offset=offset)


def to_number(values: pd.Series, path: Path, column: str) -> tuple[pd.Series, pd.Series]:
    """Parse numbers written the French way or not; return values and a secrecy mask.

    ``s`` (statistical secrecy) and empty cells become missing, never zero; the
    second series says which were secret. Anything else unreadable is an error.
    """
    text = values.astype(str).str.strip()
    secret = text.isin(SECRET_MARKERS)
    missing = text.isin(MISSING_MARKERS) | secret
    cleaned = text.str.replace("\u202f", "", regex=False).str.replace("\xa0", "", regex=False)
    cleaned = cleaned.str.replace(" ", "", regex=False).str.replace(",", ".", regex=False)
    numbers = pd.to_numeric(cleaned.where(~missing), errors="coerce").astype(float)
    bad = (numbers.isna() | ~np.isfinite(numbers)) & ~missing
    refuse(bad, f"valeurs non numériques ou infinies ({examples(text, bad, quote=True)}).", path, column,
           hint="attendu : un nombre fini (virgule ou point décimal), « s » pour le secret statistique, ou une "
           "cellule vide.")
    return numbers, secret


def check_range(
    numbers: pd.Series,
    path: Path,
    column: str,
    bounds: tuple[float | None, float | None, str],
    report: LoadReport,
) -> None:
    """Refuse values below the possible minimum; above the plausible maximum, refuse or warn.

    ``bounds`` is ``(min, max, hors_bornes)`` from ``diagnostic/resources/tables/indicateurs.csv``: a value
    below ``min`` is impossible (a negative count, rate or income); one above ``max``
    is refused when ``hors_bornes`` is ``erreur``, kept with a warning otherwise
    (official data can exceed a naive bound, e.g. a CAF rate over a census base).
    """
    low, high, severity = bounds
    below = numbers < low if low is not None else pd.Series(False, index=numbers.index)
    above = numbers > high if high is not None else pd.Series(False, index=numbers.index)
    bad = (below | above) & (below.any() or (above.any() and severity != "avertissement"))
    shown = ", ".join(text.number(v, 0 if float(v).is_integer() else 2) for v in numbers[bad].head(3))
    expected = " et ".join(
        part for part in (f"au moins {text.number(low)}" if low is not None else "",
                          f"au plus {text.number(high)}" if high is not None else "") if part
    )
    refuse(bad, f"valeurs hors des bornes possibles ({shown}).", path, column,
           hint=f"attendu : {expected} (bornes de diagnostic/resources/tables/indicateurs.csv).")
    if above.any():
        report.warn(
            f"colonne « {column} » : {text.count(int(above.sum()), 'valeur')} au-dessus de {text.number(high)}, "
            f"gardée(s) mais à vérifier (lignes {', '.join(map(str, line_numbers(above)[:10]))})."
        )


def parse_dates(values: pd.Series, path: Path, column: str, required: bool = False) -> pd.Series:
    """Dates written ``AAAA-MM-JJ`` or ``JJ/MM/AAAA``; an impossible date is an error naming its line."""
    empty = values == ""
    iso = pd.to_datetime(values.where(values.str.match(r"^\d{4}-\d{2}-\d{2}$")), format="%Y-%m-%d", errors="coerce")
    fr = pd.to_datetime(values.where(values.str.match(r"^\d{2}/\d{2}/\d{4}$")), format="%d/%m/%Y", errors="coerce")
    dates = iso.fillna(fr)
    bad = dates.isna() & (~empty | required)
    refuse(bad, f"dates absentes ou impossibles ({examples(values, bad, quote=True)}).", path, column,
           hint="attendu : une date réelle au format AAAA-MM-JJ (ex. 2025-03-14) ou JJ/MM/AAAA.")
    return dates


def check_known(
    values: pd.Series, allowed, path: Path, column: str, what: str, hint: str | None = None, required: bool = False
) -> None:
    """Refuse values outside ``allowed``, naming the lines; empty cells too when ``required``."""
    bad = ((values != "") | required) & ~values.isin(allowed)
    refuse(bad, f"{what} inconnu(s) : {', '.join(sorted(set(values[bad]))[:5])}.", path, column,
           hint=hint or f"valeurs possibles : {', '.join(sorted(allowed)[:20])}.")


def check_unique(values: pd.Series, path: Path, column: str) -> None:
    """Refuse codes that appear more than once, naming every line that holds one."""
    dup = values.duplicated(keep=False) & values.notna()
    refuse(dup, f"des codes apparaissent plusieurs fois ({', '.join(sorted(set(values[dup].astype(str)))[:5])}).",
           path, column, error=DuplicateCodeError,
           hint="chaque code doit être unique : supprimez ou fusionnez les doublons.")


def check_geometries(gdf: gpd.GeoDataFrame, path: Path, id_column: str, report: LoadReport) -> gpd.GeoDataFrame:
    """Refuse empty geometries and points or lines; repair invalid ones only when the repair keeps the area.

    A repair is taken as lossless when the area changes by less than 0.1 % (rounded
    coordinates make tiny self-intersections and zero-area spikes); a bow-tie whose
    lobes cancel out, or a polygon that collapses, is refused.
    """
    geom = gdf.geometry
    empty = geom.isna() | geom.is_empty
    if empty.any():
        ids = ", ".join(gdf.loc[empty, id_column].astype(str).head(5))
        raise GeometryError(
            f"géométrie vide ou absente pour : {ids}.",
            path=path,
            rows=[int(i) + 1 for i in np.flatnonzero(empty.to_numpy())],
            hint="chaque entité doit avoir un contour ; corrigez le fichier source.",
        )
    kinds = geom.geom_type
    not_polygon = ~kinds.isin(["Polygon", "MultiPolygon"])
    if not_polygon.any():
        found = ", ".join(sorted(set(kinds[not_polygon])))
        raise GeometryError(
            f"{int(not_polygon.sum())} géométrie(s) de type {found} ({', '.join(gdf.loc[not_polygon, id_column].astype(str).head(5))}) : "
            "des contours (polygones) sont attendus, pas des points ou des lignes.",
            path=path, rows=[int(i) + 1 for i in np.flatnonzero(not_polygon.to_numpy())],
            hint="donnez le fichier des contours (IGN Admin Express, ANCT) et non celui des chefs-lieux ou des centroïdes.")
    invalid = ~geom.is_valid
    if invalid.any():
        fixed = shapely.make_valid(geom[invalid].to_numpy())
        fixed = np.array([_polygonal_part(g) for g in fixed], dtype=object)
        before = shapely.area(geom[invalid].to_numpy())
        after = shapely.area(fixed)
        lossless = np.isclose(before, after, rtol=1e-3, atol=1.0) & ~shapely.is_empty(fixed)
        if not lossless.all():
            bad_ids = gdf.loc[invalid, id_column].to_numpy()[~lossless]
            reasons = [shapely.is_valid_reason(g) for g in geom[invalid].to_numpy()[~lossless]]
            raise GeometryError(
                "géométrie invalide qui ne peut pas être réparée sans perte : "
                + "; ".join(f"{i} ({r})" for i, r in list(zip(bad_ids, reasons))[:5]),
                path=path,
                hint="corrigez le contour dans un SIG (QGIS : « Réparer les géométries »).",
            )
        gdf = gdf.copy()
        gdf.loc[invalid, gdf.geometry.name] = fixed
        report.warn(
            f"{int(invalid.sum())} géométrie(s) invalide(s) réparée(s) sans perte : "
            + ", ".join(gdf.loc[invalid, id_column].astype(str).head(5))
        )
    return gdf


def _polygonal_part(geom):
    """Keep the polygonal part of a repaired geometry (make_valid may add lines)."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    polys = [g for g in getattr(geom, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(polys) if polys else shapely.Polygon()


def points_from_columns(
    df: pd.DataFrame, x: str, y: str, crs: str, path: Path, role: str
) -> gpd.GeoDataFrame:
    """Build Lambert-93 points from coordinate columns; rows without coordinates are an error."""
    xs, _ = to_number(df[x], path, x)
    ys, _ = to_number(df[y], path, y)
    refuse(xs.isna() | ys.isna(), "coordonnées absentes.", path, f"{x}/{y}",
           hint="chaque ligne doit avoir des coordonnées, ou être retirée du fichier.")
    gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(xs, ys), crs=crs)
    return to_l93(gdf, path, None)
