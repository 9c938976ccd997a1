"""The list of official sources (``diagnostic/resources/tables/sources_officielles.csv``) and where each is downloaded.

Each line gives a data set's address (or its data.gouv.fr dataset), format, columns,
vintage, licence and optional SHA-256, so that a new vintage is a one-line change. A
mirror (``DIAGNOSTIC_SOURCES_URL``) serving every file under its published name
replaces the official hosts.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from diagnostic import resources
from diagnostic.errors import CatalogError, MissingFileError
from diagnostic.io.catalog import ROLES

SOURCES_FILE = resources.path("tables/sources_officielles.csv")
#: A mirror serving every official file under its published name replaces the official hosts.
SOURCES_URL_ENV = "DIAGNOSTIC_SOURCES_URL"
SOURCE_FIELDS = ["cle", "role", "libelle", "producteur", "millesime", "licence", "format", "membre",
                 "filtre", "colonnes", "indicateurs", "chargeur", "url", "page", "fichier", "sha256"]
#: Columns a sources file may leave out (files written before they existed stay valid).
OPTIONAL_FIELDS = ["jeu_de_donnees", "ressource", "format_ressource", "note"]
GEO_FORMATS = {"geojson", "geojson-zip", "shapefile-zip", "geopackage", "geoparquet"}
#: Seconds every request (data.gouv.fr API, download, check) waits for an answer.
TIMEOUT_S = 30


@dataclass(frozen=True)
class OfficialSource:
    """One row of the sources file: where an official data set is and how to read it."""

    key: str
    role: str
    label: str
    producer: str
    vintage: str
    licence: str
    format: str
    member: str
    filters: dict[str, str]
    columns: dict[str, str]
    indicators: dict[str, str]
    loader: str
    url: str
    page: str
    patterns: list[str]
    sha256: str
    dataset: str = ""
    resource: str = ""
    resource_format: str = ""
    note: str = ""
    #: ``type:value`` checksum announced by data.gouv.fr for the resolved file.
    checksum: str = ""

    @property
    def is_geo(self) -> bool:
        return self.format in GEO_FORMATS


def _pairs(text: str, path: Path, column: str) -> dict[str, str]:
    """``a=b c=d`` into a dict."""
    out = {}
    for item in text.split():
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise CatalogError(f"« {item} » n'est pas de la forme clé=valeur.", path=path, column=column)
        out[key] = value
    return out


def read_sources(path: str | Path | None = None) -> list[OfficialSource]:
    """Read and check the sources file (``;``-separated, one official data set per line)."""
    path = Path(path) if path else SOURCES_FILE
    if not path.exists():
        raise MissingFileError("la liste des sources officielles est introuvable.", path=path,
                               hint="passez un fichier existant avec --sources.")
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    missing = [c for c in SOURCE_FIELDS if rows and c not in rows[0]]
    if not rows or missing:
        raise CatalogError(f"colonnes attendues absentes : {', '.join(missing) or 'aucune ligne'}.", path=path,
                           hint=f"en-tête attendu : {';'.join(SOURCE_FIELDS)}.")
    sources = []
    for row in rows:
        row = {**dict.fromkeys(OPTIONAL_FIELDS, ""), **{k: (v or "").strip() for k, v in row.items() if k}}
        if row["role"] not in ROLES:
            raise CatalogError(f"rôle « {row['role']} » inconnu pour la source « {row['cle']} ».", path=path,
                               column="role", hint=f"rôles possibles : {', '.join(ROLES)}.")
        if row["jeu_de_donnees"] and not row["ressource"]:
            raise CatalogError(f"la source « {row['cle']} » donne un jeu de données sans motif de ressource.",
                               path=path, column="ressource",
                               hint="indiquez un motif sur le titre ou le nom du fichier, par exemple *adulte*relais*.")
        sources.append(OfficialSource(
            key=row["cle"], role=row["role"], label=row["libelle"], producer=row["producteur"],
            vintage=row["millesime"], licence=row["licence"], format=row["format"].lower(), member=row["membre"],
            filters=_pairs(row["filtre"], path, "filtre"), columns=_pairs(row["colonnes"], path, "colonnes"),
            indicators=_pairs(row["indicateurs"], path, "indicateurs"), loader=row["chargeur"], url=row["url"],
            page=row["page"], patterns=[p for p in row["fichier"].split("|") if p], sha256=row["sha256"].lower(),
            dataset=row["jeu_de_donnees"], resource=row["ressource"], resource_format=row["format_ressource"].lower(),
            note=row["note"],
        ))
    if [s.role for s in sources].count("communes") != 1:
        raise CatalogError("la liste doit contenir exactement une source de rôle « communes ».", path=path)
    return sources


def describe_sources(sources: list[OfficialSource]) -> str:
    """The sources as French text, one block per source (for ``diagnostic data sources``)."""
    blocks = []
    for s in sources:
        lines = [f"{s.key} — {s.label}",
                 f"  rôle : {s.role} ; producteur : {s.producer} ; millésime : {s.vintage or '—'}",
                 f"  licence : {s.licence}",
                 f"  format : {s.format}{' (' + s.member + ')' if s.member else ''} ; adresse : {_where(s)}"]
        if (s.url or s.dataset) and s.page:
            lines.append(f"  page : {s.page}")
        if s.sha256:
            lines.append(f"  SHA-256 attendu : {s.sha256}")
        if s.note:
            lines.append(f"  note : {s.note}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _where(source: OfficialSource) -> str:
    """Where a source is downloaded from, in French (the mirror's address when one is set)."""
    if mirror_url() and (source.url or source.dataset):
        return f"{source_url(source)} (miroir {SOURCES_URL_ENV})"
    if source.url:
        return source.url
    if source.dataset:
        kind = f", format {source.resource_format}" if source.resource_format else ""
        return (f"jeu de données data.gouv.fr « {source.dataset} », ressource la plus récente « {source.resource} »"
                f"{kind} (adresse obtenue au téléchargement par l'API)")
    return f"pas de téléchargement automatique : à récupérer sur {source.page or '(page non renseignée)'}"


def mirror_url() -> str:
    """The mirror given by ``DIAGNOSTIC_SOURCES_URL``, or an empty string."""
    return os.environ.get(SOURCES_URL_ENV, "").strip().rstrip("/")


def mirror_name(source: OfficialSource) -> str:
    """The file name a mirror serves a source under.

    A fixed address keeps its published name; a data.gouv.fr dataset, whose file
    names change with each upload, is served under its slug and format
    (``liste-des-structures-france-services.csv``).
    """
    if source.url and not source.dataset:
        return basename(source.url)
    return f"{source.dataset}.{source.resource_format or 'csv'}"


def source_url(source: OfficialSource) -> str:
    """The address to download: the official one, or its name under ``DIAGNOSTIC_SOURCES_URL``."""
    mirror = mirror_url()
    if mirror and (source.url or source.dataset):
        return f"{mirror}/{mirror_name(source)}"
    return source.url


def basename(url: str) -> str:
    return Path(urlsplit(url).path).name or "fichier"
