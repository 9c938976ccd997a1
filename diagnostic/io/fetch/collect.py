"""``fetch``: every official source of a territory into a folder, with a ready ``catalogue.yaml``.

The communes come first: they define the territory's communes and departments used
to filter every other file. Everything is first written in a temporary folder and
moved into place only when all sources succeeded.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from diagnostic._fs import temp_dir
from diagnostic.errors import FetchError, MissingFileError
from diagnostic.io.fetch.datagouv import resolve_dataset
from diagnostic.io.fetch.download import cache_dir, download, find_in_dir, published_date
from diagnostic.io.fetch.extract import (
    is_parquet,
    read_geo_filtered,
    read_parquet_filtered,
    read_table_filtered,
)
from diagnostic.io.fetch.sources import (
    OfficialSource,
    basename,
    mirror_url,
    read_sources,
    source_url,
)
from diagnostic.io.fetch.territory import Territory, padded_codes, territory_filter
from diagnostic.io.fetch.write import catalog_entry, write_catalog, write_frame

#: Roles left out when the sources file gives no indicator mapping.
INDICATOR_ROLES = {"qpv_indicators", "commune_indicators"}


@dataclass
class FetchResult:
    """What ``fetch`` wrote, and the sources it had to leave out (with why)."""

    catalog: Path
    written: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


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
) -> FetchResult:
    """Get every official source of ``territory`` into ``dest`` with a ready ``catalogue.yaml``.

    Sources come from the sources file, downloaded (``from_dir`` None) or found in
    ``from_dir`` under their published names. The communes come first: they define
    the territory's communes and departments used to filter every other file.
    """
    sources = sorted(read_sources(sources_file), key=lambda s: s.role != "communes")
    dest = Path(dest).expanduser().resolve()
    folder = Path(from_dir).expanduser().resolve() if from_dir else None
    if folder is not None and not folder.is_dir():
        raise MissingFileError("le dossier des fichiers téléchargés à la main est introuvable.", path=folder)
    store = cache_dir(cache)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = temp_dir(dest.parent, dest.name)
    result = FetchResult(catalog=dest / "catalogue.yaml")
    entries: dict[str, list[dict[str, Any]]] = {}
    communes: set[str] | None = None
    try:
        for source in sources:
            source, origin, note = _origin(source, folder, store, progress, retries)
            if origin is None:
                result.notes.append(note)
                continue
            keep = territory_filter(source, territory, communes)
            sep = ";"
            if source.is_geo:
                frame = read_geo_filtered(origin, source, keep)
            elif is_parquet(origin):
                frame = read_parquet_filtered(origin, source, keep)
            else:
                frame, sep = read_table_filtered(origin, source, keep)
            if source.role == "communes":
                if frame.empty:
                    raise FetchError(f"aucune commune trouvée pour le {territory.label}.",
                                     hint="vérifiez le code (exemples : région 32, département 59).")
                communes = set(padded_codes(frame[source.columns.get("insee_com", "code")], 5))
            if frame.empty:
                result.notes.append(f"{source.key} : aucune ligne pour le {territory.label}, source omise.")
                continue
            out = write_frame(frame, source, staging, geo_format, sep)
            published = origin.name if folder else basename(source_url(source))
            entries.setdefault(source.role, []).append(catalog_entry(source, out, origin, published, source_url(source)))
            result.written[out.name] = len(frame)
        write_catalog(staging / "catalogue.yaml", territory, entries, result.notes)
        dest.mkdir(parents=True, exist_ok=True)
        for item in sorted(staging.iterdir(), key=lambda p: p.name == "catalogue.yaml"):
            os.replace(item, dest / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


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
