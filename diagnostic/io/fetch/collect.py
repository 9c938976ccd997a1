"""``fetch``: every official source of a territory into a folder, with a ready ``catalogue.yaml``.

The communes come first: they define the territory's communes and departments used
to filter every other file, and the fetch stops if they cannot be had. Every other
source succeeds or fails on its own: the files fetched are moved into place and the
catalogue is written with them, the failures listed with their French reason (the
fetch is then « partiel »). ``only`` and ``skip`` retry or leave out sources by key;
a source not attempted, or failed, keeps the file and entry an earlier fetch of the
same territory wrote in ``dest``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from diagnostic._fs import temp_dir
from diagnostic.errors import DiagnosticError, FetchError, MissingFileError, ParameterError
from diagnostic.io.fetch.datagouv import resolve_dataset
from diagnostic.io.fetch.download import cache_dir, download, find_in_dir, published_date
from diagnostic.io.fetch.extract import (
    WORKBOOK_FORMATS,
    is_parquet,
    read_geo_filtered,
    read_parquet_filtered,
    read_table_filtered,
    write_workbook,
)
from diagnostic.io.fetch.sources import (
    OfficialSource,
    basename,
    mirror_url,
    read_sources,
    source_url,
)
from diagnostic.io.fetch.territory import Territory, padded_codes, territory_filter
from diagnostic.io.fetch.write import catalog_entry, recorded, write_catalog, write_frame

#: Roles left out when the sources file gives no indicator mapping.
INDICATOR_ROLES = {"qpv_indicators", "commune_indicators"}


@dataclass
class FetchResult:
    """What ``fetch`` wrote, the sources it left out (with why), those that failed and those kept from before."""

    catalog: Path
    #: File written → its number of rows (None for a workbook copied whole).
    written: dict[str, int | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Source key → French reason of its failure.
    failed: dict[str, str] = field(default_factory=dict)
    #: Source keys whose file and entry come from an earlier fetch into the same folder.
    kept: list[str] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        """True when at least one source failed: the catalogue holds the others."""
        return bool(self.failed)


def fetch(
    territory: Territory,
    dest: str | Path,
    *,
    sources_file: str | Path | None = None,
    from_dir: str | Path | None = None,
    cache: str | Path | None = None,
    geo_format: str = "parquet",
    progress: bool = True,
    retries: int = 2,
    only: list[str] | None = None,
    skip: list[str] | None = None,
) -> FetchResult:
    """Get the official sources of ``territory`` into ``dest`` with a ready ``catalogue.yaml``.

    Sources come from the sources file, downloaded (``from_dir`` None) or found in
    ``from_dir`` under their published names. The communes come first (always,
    even with ``only``): they define the territory's communes and departments used
    to filter every other file. Any other source that fails is listed in
    :attr:`FetchResult.failed` and the others are written.
    """
    listed = read_sources(sources_file)
    chosen = _chosen(listed, only, skip)
    sources = sorted((s for s in listed if s.role == "communes" or s.key in chosen), key=lambda s: s.role != "communes")
    dest = Path(dest).expanduser().resolve()
    folder = Path(from_dir).expanduser().resolve() if from_dir else None
    if folder is not None and not folder.is_dir():
        raise MissingFileError("le dossier des fichiers téléchargés à la main est introuvable.", path=folder)
    store = cache_dir(cache)
    dest.parent.mkdir(parents=True, exist_ok=True)
    before = recorded(dest / "catalogue.yaml", territory)
    staging = temp_dir(dest.parent, dest.name)
    result = FetchResult(catalog=dest / "catalogue.yaml")
    entries: dict[str, dict[str, Any]] = {}
    communes: set[str] | None = None
    try:
        for source in sources:
            if source.role == "communes":
                entries[source.key], communes = _communes(source, territory, folder, store, progress, retries,
                                                          staging, geo_format, result)
                continue
            try:
                entry = _one(source, territory, communes, folder, store, progress, retries, staging, geo_format,
                             result)
            except DiagnosticError as exc:
                result.failed[source.key] = _reason(exc)
                continue
            if entry is not None:
                entries[source.key] = entry
        for source in listed:  # not attempted, or failed: what an earlier fetch wrote stays
            if source.key not in entries and source.key in before and (dest / before[source.key]["path"]).exists():
                entries[source.key] = before[source.key]
                result.kept.append(source.key)
        by_role: dict[str, list[dict[str, Any]]] = {}
        for source in listed:
            if source.key in entries:
                by_role.setdefault(source.role, []).append(entries[source.key])
        write_catalog(staging / "catalogue.yaml", territory, by_role, result.notes, result.failed)
        dest.mkdir(parents=True, exist_ok=True)
        for item in sorted(staging.iterdir(), key=lambda p: p.name == "catalogue.yaml"):
            os.replace(item, dest / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def _chosen(sources: list[OfficialSource], only: list[str] | None, skip: list[str] | None) -> set[str]:
    """The keys to fetch: all, or ``only`` those, less ``skip``; an unknown key is refused with the list."""
    keys = [s.key for s in sources]
    unknown = [k for k in (only or []) + (skip or []) if k not in keys]
    if unknown:
        raise ParameterError(f"source(s) inconnue(s) : {', '.join(unknown)}.",
                             hint=f"sources de la liste : {', '.join(keys)} (« diagnostic data sources » les décrit).")
    return set(only or keys) - set(skip or [])


def _reason(exc: DiagnosticError) -> str:
    """A failure in French: what went wrong (with the address asked) and what to do."""
    reason = f"{exc.title} : {exc.message}"
    return f"{reason}\n  Que faire : {exc.hint}" if exc.hint else reason


def _communes(source: OfficialSource, territory: Territory, folder: Path | None, store: Path, progress: bool,
              retries: int, staging: Path, geo_format: str, result: FetchResult) -> tuple[dict[str, Any], set[str]]:
    """The communes' entry and codes: without them nothing can be filtered, so any failure stops the fetch."""
    source, origin, note = _origin(source, folder, store, progress, retries)
    if origin is None:
        raise FetchError(f"les contours des communes n'ont pas pu être obtenus : {note}")
    frame = read_geo_filtered(origin, source, territory_filter(source, territory, None))
    if frame.empty:
        raise FetchError(f"aucune commune trouvée pour le {territory.label}.",
                         hint="vérifiez le code (exemples : région 32, département 59).")
    codes = set(padded_codes(frame[source.columns.get("insee_com", "code")], 5))
    return _written(source, frame, origin, folder, staging, geo_format, ";", result), codes


def _one(source: OfficialSource, territory: Territory, communes: set[str] | None, folder: Path | None, store: Path,
         progress: bool, retries: int, staging: Path, geo_format: str, result: FetchResult) -> dict[str, Any] | None:
    """Fetch, filter and write one source; its catalogue entry, or None when it is left out (said in the notes)."""
    source, origin, note = _origin(source, folder, store, progress, retries)
    if origin is None:
        result.notes.append(note)
        return None
    if source.format in WORKBOOK_FORMATS:
        out = write_workbook(origin, source, staging)
        result.written[out.name] = None
        return _entry(source, out, origin, folder)
    keep = territory_filter(source, territory, communes)
    sep = ";"
    if source.is_geo:
        frame = read_geo_filtered(origin, source, keep)
    elif is_parquet(origin):
        frame = read_parquet_filtered(origin, source, keep)
    else:
        frame, sep = read_table_filtered(origin, source, keep)
    if frame.empty:
        result.notes.append(f"{source.key} : aucune ligne pour le {territory.label}, source omise.")
        return None
    return _written(source, frame, origin, folder, staging, geo_format, sep, result)


def _written(source: OfficialSource, frame: Any, origin: Path, folder: Path | None, staging: Path, geo_format: str,
             sep: str, result: FetchResult) -> dict[str, Any]:
    """Write a source's rows in the staging folder; its catalogue entry."""
    out = write_frame(frame, source, staging, geo_format, sep)
    result.written[out.name] = len(frame)
    return _entry(source, out, origin, folder)


def _entry(source: OfficialSource, out: Path, origin: Path, folder: Path | None) -> dict[str, Any]:
    published = origin.name if folder else basename(source_url(source))
    return catalog_entry(source, out, origin, published, source_url(source))


def _origin(
    source: OfficialSource, folder: Path | None, store: Path, progress: bool, retries: int
) -> tuple[OfficialSource, Path | None, str]:
    """The source (its dataset resolved) and its raw file, downloaded or found by hand; or None and why not."""
    if source.role in INDICATOR_ROLES and not source.indicators:
        why = f" ({source.note})" if source.note else ""
        return source, None, (f"{source.key} : correspondance des indicateurs non renseignée dans la liste des "
                              f"sources (voir {source.page or 'le producteur'}), source omise{why}.")
    if folder is not None:
        found = find_in_dir(source, folder)
        if found is None and source.role == "communes":
            raise MissingFileError(
                f"le fichier des contours des communes est absent (noms attendus : {', '.join(source.patterns)}).",
                path=folder, hint=f"téléchargez-le depuis {source.url or source.page}.")
        return source, found, (f"{source.key} : aucun fichier {' ou '.join(source.patterns)} dans {folder}, source omise "
                       f"(à télécharger depuis {source.url or source.page}).")
    if not source.url and source.dataset and not mirror_url():
        source = resolve_dataset(source)
    if not source_url(source):
        return source, None, (f"{source.key} : pas d'adresse de téléchargement stable ; téléchargez le fichier "
                              f"depuis {source.page} puis relancez avec --from-dir, source omise.")
    origin = download(source, store, progress=progress, retries=retries)
    if not source.vintage:
        source = replace(source, vintage=published_date(origin))
    return source, origin, ""
