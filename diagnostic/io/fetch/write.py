"""What ``data fetch`` writes: each territory's file (GeoParquet, GeoPackage or CSV) and the catalogue beside them."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from diagnostic.io.catalog import ROLES, read_yaml
from diagnostic.io.fetch.download import published_date
from diagnostic.io.fetch.sources import OfficialSource
from diagnostic.io.fetch.territory import Territory


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read by blocks (national files are large)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_frame(frame: pd.DataFrame, source: OfficialSource, folder: Path, geo_format: str, sep: str) -> Path:
    """Write a source's territory rows: GeoParquet or GeoPackage for geometries, else CSV with ``sep``."""
    if source.is_geo:
        if geo_format == "gpkg":
            out = folder / f"{source.key}.gpkg"
            frame.to_file(out, driver="GPKG", layer=source.key)
        else:
            out = folder / f"{source.key}.parquet"
            frame.to_parquet(out)
        return out
    out = folder / f"{source.key}.csv"
    frame.to_csv(out, sep=sep, index=False, encoding="utf-8")
    return out


def catalog_entry(source: OfficialSource, out: Path, origin: Path, published: str, url: str) -> dict[str, Any]:
    """The catalogue entry of a written file: how to read it, where it came from, both files' SHA-256."""
    entry: dict[str, Any] = {"path": out.name}
    if source.loader:
        entry["format"] = source.loader
    if source.columns:
        entry["columns"] = dict(source.columns)
    if source.indicators:
        entry["indicators"] = dict(source.indicators)
    entry.update({"producer": source.producer, "vintage": source.vintage or None, "licence": source.licence,
                  "url": url or None, "page": source.page or None, "source_file": published,
                  "source_sha256": sha256_of(origin), "source_size": origin.stat().st_size,
                  "source_modified": published_date(origin) or None, "sha256": sha256_of(out)})
    return {k: v for k, v in entry.items() if v is not None}


def write_catalog(path: Path, territory: Territory, entries: dict[str, list[dict[str, Any]]], notes: list[str],
                  failed: dict[str, str] | None = None) -> None:
    """Write ``catalogue.yaml``: a header saying when, what was left out and what failed, then the sources by role."""
    sources = {role: items if ROLES[role] else items[0] for role, items in entries.items()}
    header = [f"# Catalogue écrit par « diagnostic data fetch » le {date.today().isoformat()}, {territory.label}.",
              "# Chaque source indique son adresse, son millésime, sa licence et l'empreinte SHA-256 du fichier",
              "# écrit (sha256) et du fichier téléchargé (source_sha256)."]
    header += [f"# Omis : {note}" for note in notes]
    header += [f"# Échec (téléchargement partiel) : {key} — {' '.join(why.split())}" for key, why in (failed or {}).items()]
    body = {"name": f"Données officielles — {territory.label}", "fictional": False,
            "territory": {"kind": territory.kind, "code": territory.code}, "sources": sources}
    text = "\n".join(header) + "\n" + yaml.safe_dump(body, allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")


def recorded(catalog: str | Path, territory: Territory | None = None) -> dict[str, dict[str, Any]]:
    """Per source key, the entry ``data fetch`` wrote in a catalogue (path, address, size, date…).

    With ``territory``, a catalogue of another territory (or none) records nothing.
    """
    if territory is not None and not Path(catalog).exists():
        return {}
    raw = read_yaml(catalog, "catalogue")
    if territory is not None and raw.get("territory") != {"kind": territory.kind, "code": territory.code}:
        return {}
    out = {}
    for entries in (raw.get("sources") or {}).values():
        for entry in entries if isinstance(entries, list) else [entries]:
            if isinstance(entry, dict) and entry.get("path"):
                out[Path(str(entry["path"])).stem] = entry
    return out
