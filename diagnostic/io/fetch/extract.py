"""Publications read as they come (plain, gzipped or zipped; CSV, parquet, vector or workbook), keeping the territory's rows.

National files are read chunk by chunk (or batch by batch) so that only the
territory's rows stay in memory; an archive's member is chosen by name among several.
A workbook (INSEE's « Intercommunalités au 1er janvier ») is copied as published:
the loader keeps the catalogue's communes.
"""

from __future__ import annotations

import codecs
import gzip
import io
import shutil
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
from pyogrio.errors import DataLayerError, DataSourceError

from diagnostic.errors import DiagnosticError, FetchError
from diagnostic.io.fetch.sources import OfficialSource
from diagnostic.io.sources._io import sniff_separator
from diagnostic.io.sources.bpe import as_text
from diagnostic.io.sources.epci import COMPOSITION_SHEET, read_sheet

CHUNK_ROWS = 100_000
#: Formats of the sources file read as workbooks, plain or zipped.
WORKBOOK_FORMATS = {"xlsx", "xlsx-zip"}
#: Rows of a workbook's sheet within which its table's header must be (INSEE puts a title block above it).
HEADER_ROWS = 20


def _container(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    return "plain"


def _zip_member(archive: zipfile.ZipFile, wanted: str, suffixes: tuple[str, ...], path: Path) -> str:
    names = [n for n in archive.namelist() if not n.endswith("/")]
    if wanted:
        hits = [n for n in names if Path(n).name.lower() == wanted.lower()]
    else:
        hits = [n for n in names if n.lower().endswith(suffixes)]
    if len(hits) != 1:
        raise FetchError(
            f"l'archive ne contient pas {'« ' + wanted + ' »' if wanted else 'un seul fichier ' + '/'.join(suffixes)}"
            f" (contenu : {', '.join(names[:8])}).",
            path=path,
            hint="le producteur a peut-être renommé le fichier : corrigez la colonne « membre » de "
            "diagnostic/resources/tables/sources_officielles.csv.",
        )
    return hits[0]


@contextmanager
def _open_binary(path: Path, member: str) -> Iterator[IO[bytes]]:
    """The bytes of a table, whether plain, gzipped or inside a zip archive."""
    kind = _container(path)
    if kind == "zip":
        with zipfile.ZipFile(path) as archive, archive.open(
            _zip_member(archive, member, (".csv", ".txt"), path)
        ) as fh:
            yield fh
    elif kind == "gzip":
        with gzip.open(path, "rb") as fh:
            yield fh
    else:
        with open(path, "rb") as fh:
            yield fh


def _encoding_and_separator(path: Path, member: str) -> tuple[str, str]:
    with _open_binary(path, member) as fh:
        head = fh.read(1 << 16)
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
        encoding = "utf-8-sig"
    except UnicodeDecodeError:
        text, encoding = head.decode("cp1252"), "cp1252"
    if not text.strip():
        raise FetchError("le fichier téléchargé est vide.", path=path)
    return encoding, sniff_separator(text.splitlines()[0])


def read_table_filtered(path: Path, source: OfficialSource, keep: Callable[[pd.DataFrame], pd.Series]) -> tuple[pd.DataFrame, str]:
    """Read a (possibly national, large) CSV chunk by chunk, keeping the territory's rows, as text."""
    encoding, sep = _encoding_and_separator(path, source.member)
    for attempt in (encoding, "cp1252"):
        try:
            with _open_binary(path, source.member) as fh:
                text = io.TextIOWrapper(fh, encoding=attempt, newline="")
                chunks = pd.read_csv(text, sep=sep, dtype=str, keep_default_na=False, chunksize=CHUNK_ROWS)
                frames = [chunk[keep(chunk)] for chunk in chunks]
            return pd.concat(frames, ignore_index=True), sep
        except UnicodeDecodeError:
            continue
    raise FetchError("le fichier n'est ni en UTF-8 ni en Windows-1252.", path=path)


def is_parquet(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"


def read_parquet_filtered(path: Path, source: OfficialSource, keep: Callable[[pd.DataFrame], pd.Series]) -> pd.DataFrame:
    """Read a (national) parquet table batch by batch, keeping the territory's rows, as text.

    Every column is cast to text as Arrow writes it (``2154``, ``704000.25``), so the
    CSV written next has the published values, and missing cells stay empty.
    """
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise FetchError(f"le fichier téléchargé n'est pas un parquet lisible ({exc}).", path=path,
                         hint="vérifiez la colonne « format » de diagnostic/resources/tables/sources_officielles.csv.") from None
    frames = []
    for batch in parquet.iter_batches(batch_size=CHUNK_ROWS):
        chunk = as_text(batch)
        frames.append(chunk[keep(chunk)])
    if not frames:
        raise FetchError("le fichier parquet téléchargé ne contient aucune ligne.", path=path)
    return pd.concat(frames, ignore_index=True)


def read_geo_filtered(path: Path, source: OfficialSource, keep: Callable[[pd.DataFrame], pd.Series]) -> gpd.GeoDataFrame:
    """Read a vector file (GeoJSON, zipped Shapefile, gzipped GeoJSON…) and keep the territory."""
    kind = _container(path)
    target = str(path)
    if kind == "zip":
        with zipfile.ZipFile(path) as archive:
            member = _zip_member(archive, source.member, (".shp", ".geojson", ".json", ".gpkg"), path)
        target = f"/vsizip/{{{path}}}/{member}"
    elif kind == "gzip":
        target = f"/vsigzip/{path}"
    try:
        gdf = pyogrio.read_dataframe(target)
    except (DataSourceError, DataLayerError) as exc:
        raise FetchError(f"le fichier téléchargé n'est pas lisible comme données géographiques ({exc}).",
                         path=path, hint="vérifiez la colonne « format » de diagnostic/resources/tables/sources_officielles.csv.") from None
    return gdf[keep(gdf).to_numpy()].reset_index(drop=True)


def write_workbook(path: Path, source: OfficialSource, folder: Path) -> Path:
    """Copy a workbook (plain, or a zip's ``.xlsx`` member) into ``folder``, its layout checked.

    The whole of France is kept (the loader keeps the catalogue's communes);
    the first rows of its commune composition sheet must hold the column the
    source's filter names (``com=CODGEO``).
    """
    out = folder / f"{source.key}.xlsx"
    if _container(path) == "zip":
        with zipfile.ZipFile(path) as archive, archive.open(_zip_member(archive, source.member, (".xlsx",), path)) as fh, \
                open(out, "wb") as copy:
            shutil.copyfileobj(fh, copy)
    else:
        shutil.copyfile(path, out)
    try:
        read_sheet(out, COMPOSITION_SHEET, [source.filters.get("com", "CODGEO")], max_rows=HEADER_ROWS)
    except DiagnosticError as exc:
        out.unlink()
        raise FetchError(f"le classeur téléchargé ne se lit pas comme attendu ({exc.message})", path=path,
                         hint=exc.hint or "vérifiez les colonnes « membre » et « filtre » de "
                         "diagnostic/resources/tables/sources_officielles.csv.") from None
    return out
