"""Getting the official open data of a territory: ``diagnostic data fetch`` and ``data sources``.

The sources are listed in ``diagnostic/resources/tables/sources_officielles.csv`` (address, format, columns,
vintage, licence, optional SHA-256), so that a new vintage is a one-line change. A
source whose file address changes with each upload is given by its data.gouv.fr
dataset instead (``jeu_de_donnees`` and a ``ressource`` pattern), resolved at fetch
time through the data.gouv.fr catalogue API to its most recent matching file
(``main`` resources only; behind a mirror the API is not called). Publications are
read as they come: plain, gzipped or zipped (the archive member chosen by name among
several files), CSV or parquet. Downloads go through pooch into a cache shared between runs; an interrupted
download resumes where it stopped (HTTP ``Range``). Each file is filtered to the
territory, written as GeoParquet (or GeoPackage) or as CSV with its published
columns, and a catalogue is written beside them. Everything is first written in a
temporary folder and moved into place only when all sources succeeded.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import fnmatch
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import sys
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import geopandas as gpd
import pandas as pd
import pooch
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import requests
import yaml
from pyogrio.errors import DataLayerError, DataSourceError
from tqdm import tqdm

from diagnostic import resources
from diagnostic._fs import temp_dir, write_atomic
from diagnostic.catalog import ROLES
from diagnostic.errors import (
    CatalogError,
    FetchError,
    MissingFileError,
    ParameterError,
)
from diagnostic.sources._io import sniff_separator
from diagnostic.sources.bpe import as_text
from diagnostic.sources.communes import department_of

SOURCES_FILE = resources.path("tables/sources_officielles.csv")
#: A mirror serving every official file under its published name replaces the official hosts.
SOURCES_URL_ENV = "DIAGNOSTIC_SOURCES_URL"
CACHE_ENV = "DIAGNOSTIC_CACHE"
#: The data.gouv.fr catalogue API that resolves the sources given by their dataset.
DATAGOUV_API_ENV = "DIAGNOSTIC_DATAGOUV_API"
DATAGOUV_API = "https://www.data.gouv.fr/api/1"
SOURCE_FIELDS = ["cle", "role", "libelle", "producteur", "millesime", "licence", "format", "membre",
                 "filtre", "colonnes", "indicateurs", "chargeur", "url", "page", "fichier", "sha256"]
#: Columns a sources file may leave out (files written before they existed stay valid).
OPTIONAL_FIELDS = ["jeu_de_donnees", "ressource", "format_ressource", "note"]
#: Checksum types of the data.gouv.fr API that pooch can verify.
API_HASHES = {"md5", "sha1", "sha256"}
LISTED_TITLES = 20
GEO_FORMATS = {"geojson", "geojson-zip", "shapefile-zip", "geopackage", "geoparquet"}
#: data.gouv.fr resource types that hold the data (not documentation, API or update notes).
DATA_RESOURCE_TYPE = "main"
#: Where the downloader keeps the answer's headers beside each cached file (size and date).
HEADERS_SUFFIX = ".entetes.json"
INDICATOR_ROLES = {"qpv_indicators", "commune_indicators"}
CHUNK_ROWS = 100_000
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


@dataclass(frozen=True)
class Territory:
    """A region or a department, by its INSEE code."""

    kind: str
    code: str

    @property
    def label(self) -> str:
        return f"{'région' if self.kind == 'region' else 'département'} {self.code}"


@dataclass
class FetchResult:
    """What ``fetch`` wrote, and the sources it had to leave out (with why)."""

    catalog: Path
    written: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


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


def parse_territory(region: str | None, department: str | None) -> Territory:
    """Check a region (two digits) or department code (``59``, ``2A``, ``974``)."""
    if bool(region) == bool(department):
        raise ParameterError("indiquez soit --region CODE, soit --department CODE.")
    if region:
        code = region.strip()
        if not re.fullmatch(r"\d{2}", code):
            raise ParameterError(f"code région « {region} » invalide.", hint="exemple : 32 pour les Hauts-de-France.")
        return Territory("region", code)
    code = department.strip().upper()
    if re.fullmatch(r"\d", code):
        code = code.zfill(2)
    if not re.fullmatch(r"\d{2}|2[AB]|97\d", code):
        raise ParameterError(f"code département « {department} » invalide.", hint="exemples : 59, 2A, 974.")
    return Territory("department", code)


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
        return _basename(source.url)
    return f"{source.dataset}.{source.resource_format or 'csv'}"


def source_url(source: OfficialSource) -> str:
    """The address to download: the official one, or its name under ``DIAGNOSTIC_SOURCES_URL``."""
    mirror = mirror_url()
    if mirror and (source.url or source.dataset):
        return f"{mirror}/{mirror_name(source)}"
    return source.url


def _basename(url: str) -> str:
    return Path(urlsplit(url).path).name or "fichier"


def cache_dir(cache: str | Path | None = None) -> Path:
    """The download cache: argument, then ``DIAGNOSTIC_CACHE``, then the user's cache folder."""
    chosen = cache or os.environ.get(CACHE_ENV)
    return Path(chosen).expanduser() if chosen else Path(pooch.os_cache("diagnostic-territorial"))


def datagouv_api() -> str:
    """The data.gouv.fr API base: ``DIAGNOSTIC_DATAGOUV_API``, else the public one."""
    return (os.environ.get(DATAGOUV_API_ENV, "").strip() or DATAGOUV_API).rstrip("/")


def resolve_dataset(source: OfficialSource) -> OfficialSource:
    """The source with the address of its dataset's most recent matching file.

    The dataset page, the file's last modification date (as vintage when the
    sources file gives none) and the checksum announced by data.gouv.fr come along.
    """
    address = dataset_address(source)
    chosen, dataset = latest_resource(source, address)
    return replace(
        source, url=chosen["url"], page=dataset.get("page") or source.page,
        vintage=source.vintage or str(chosen.get("last_modified") or "")[:10],
        checksum=announced_checksum(chosen),
    )


def dataset_address(source: OfficialSource) -> str:
    """The data.gouv.fr API address describing a source's dataset."""
    return f"{datagouv_api()}/datasets/{source.dataset}/"


def latest_resource(source: OfficialSource, address: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The most recent data file of the dataset matching the source's pattern, and the dataset.

    Only ``main`` resources count: a documentation, API or update resource whose
    title happens to match is never taken for the data.
    """
    dataset = _dataset_json(source, address)
    resources = [r for r in dataset.get("resources") or [] if isinstance(r, dict) and r.get("url")]
    data_files = [r for r in resources if str(r.get("type") or DATA_RESOURCE_TYPE) == DATA_RESOURCE_TYPE]
    matching = [r for r in data_files if _matches(source, r)]
    if not matching:
        raise _no_resource_error(source, address, data_files)
    return max(matching, key=_modified), dataset


def announced_checksum(resource: dict[str, Any]) -> str:
    """``type:value`` of the checksum data.gouv.fr announces, only for a file uploaded there.

    A ``remote`` resource is a link to the producer's own server: data.gouv.fr's
    checksum is of whatever it saw once and says nothing about the file served now.
    """
    if str(resource.get("filetype") or "").lower() == "remote":
        return ""
    checksum = resource.get("checksum") or {}
    kind, value = str(checksum.get("type") or "").lower(), str(checksum.get("value") or "").lower()
    return f"{kind}:{value}" if kind in API_HASHES and value else ""


def _dataset_json(source: OfficialSource, address: str) -> dict[str, Any]:
    """The dataset's description from the API, with French errors."""
    try:
        response = requests.get(address, headers={"Accept": "application/json"}, timeout=TIMEOUT_S)
    except requests.RequestException:
        raise FetchError(
            f"source « {source.label} » ({source.key}) : l'API de data.gouv.fr est injoignable (pas de connexion, "
            f"proxy ou serveur arrêté).\n  Adresse de l'API : {address}",
            hint=f"vérifiez la connexion puis relancez la même commande ({DATAGOUV_API_ENV} donne une autre adresse "
            f"d'API). Sans connexion, téléchargez le fichier depuis {source.page or 'data.gouv.fr'} et utilisez "
            "« diagnostic data fetch --from-dir DOSSIER ».",
        ) from None
    if response.status_code in (404, 410):
        raise FetchError(
            f"le jeu de données « {source.dataset} » de la source « {source.label} » ({source.key}) est introuvable "
            f"sur data.gouv.fr (HTTP {response.status_code}) : il a sans doute été renommé ou retiré.\n"
            f"  Adresse de l'API : {address}",
            hint="cherchez-le sur https://www.data.gouv.fr/fr/datasets/ puis corrigez la colonne « jeu_de_donnees » "
            "de diagnostic/resources/tables/sources_officielles.csv (ou donnez un autre fichier avec --sources), ou téléchargez le fichier "
            "à la main et utilisez --from-dir.",
        )
    try:
        response.raise_for_status()
        data = response.json()
    except (requests.HTTPError, ValueError):
        data = None
    if not isinstance(data, dict):
        raise FetchError(
            f"l'API de data.gouv.fr n'a pas décrit le jeu de données « {source.dataset} » de la source "
            f"« {source.label} » ({source.key}) (HTTP {response.status_code}).\n  Adresse de l'API : {address}",
            hint="réessayez plus tard, ou téléchargez le fichier à la main et utilisez --from-dir.",
        )
    return data


def _matches(source: OfficialSource, resource: dict[str, Any]) -> bool:
    """Whether a resource has the wanted format and its title or file name fits the pattern."""
    if source.resource_format and str(resource.get("format") or "").lower() != source.resource_format:
        return False
    names = (str(resource.get("title") or "").lower(), _basename(resource["url"]).lower())
    return any(fnmatch.fnmatch(name, pattern.lower()) for pattern in source.resource.split("|") for name in names)


def _modified(resource: dict[str, Any]) -> datetime:
    """A resource's last modification (oldest possible when absent or unreadable)."""
    try:
        moment = datetime.fromisoformat(str(resource.get("last_modified") or ""))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _no_resource_error(source: OfficialSource, address: str, resources: list[dict[str, Any]]) -> FetchError:
    titles = [f"{r.get('title') or _basename(r['url'])} ({r.get('format') or '?'})" for r in resources]
    listed = "\n".join(f"    - {t}" for t in titles[:LISTED_TITLES])
    if len(titles) > LISTED_TITLES:
        listed += f"\n    … ({len(titles)} ressources en tout)"
    kind = f" au format {source.resource_format}" if source.resource_format else ""
    return FetchError(
        f"aucune ressource{kind} du jeu de données « {source.dataset} » ne correspond au motif « {source.resource} » "
        f"(source « {source.label} », {source.key}).\n  Ressources publiées :\n{listed or '    (aucune)'}\n"
        f"  Adresse de l'API : {address}",
        hint="le producteur a peut-être renommé le fichier : corrigez « ressource » (motif sur le titre ou le nom du "
        "fichier) ou « format_ressource » dans diagnostic/resources/tables/sources_officielles.csv, ou téléchargez le fichier à la main et "
        "utilisez --from-dir.",
    )


class ResumingDownloader:
    """A pooch downloader that keeps a ``.part`` file and resumes it with HTTP ``Range``.

    ``If-Range`` with the server's ETag or Last-Modified makes a server whose file
    changed since the interruption send the whole new file instead of the rest.
    """

    def __init__(self, partial: Path, progress: bool) -> None:
        self.partial = partial
        self.validator = partial.with_name(partial.name + ".validateur")
        self.progress = progress
        #: Headers of the last completed download (size and date, kept beside the cached file).
        self.headers: dict[str, str] | None = None

    def __call__(self, url: str, output_file: str, pooch_obj: Any, check_only: bool = False) -> None:
        done = self.partial.stat().st_size if self.partial.exists() else 0
        headers = {}
        if done and self.validator.exists():
            headers = {"Range": f"bytes={done}-", "If-Range": self.validator.read_text(encoding="utf-8")}
        with requests.get(url, headers=headers, stream=True, timeout=TIMEOUT_S) as response:
            response.raise_for_status()
            resumed = response.status_code == 206 and response.headers.get("Content-Range", "").startswith(
                f"bytes {done}-")
            if not resumed:
                done = 0
            validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
            if validator:
                self.validator.write_text(validator, encoding="utf-8")
            self.headers = {k: response.headers[k] for k in ("Last-Modified", "ETag") if k in response.headers}
            length = response.headers.get("Content-Length")
            total = done + int(length) if length else None
            with open(self.partial, "ab" if resumed else "wb") as out, tqdm(
                total=total, initial=done, unit="o", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                desc=_basename(url)[:40], disable=not self.progress, leave=False,
            ) as bar:
                for chunk in response.iter_content(chunk_size=1 << 16):
                    out.write(chunk)
                    bar.update(len(chunk))
        os.replace(self.partial, output_file)
        self.validator.unlink(missing_ok=True)


def published_date(origin: Path) -> str:
    """The ``Last-Modified`` date (AAAA-MM-JJ) the server gave for a downloaded file, or ``""``."""
    sidecar = origin.with_name(origin.name + HEADERS_SUFFIX)
    if not sidecar.exists():
        return ""
    stamp = json.loads(sidecar.read_text(encoding="utf-8")).get("Last-Modified", "")
    try:
        return parsedate_to_datetime(stamp).date().isoformat() if stamp else ""
    except (TypeError, ValueError):
        return ""


def download(source: OfficialSource, cache: Path, *, progress: bool = True, retries: int = 2) -> Path:
    """Download one source into the cache (or reuse it); French errors for every failure."""
    url = source_url(source)
    name = f"{source.key}-{hashlib.sha256(url.encode()).hexdigest()[:12]}-{_basename(url)}"
    known = f"sha256:{source.sha256}" if source.sha256 else source.checksum or None
    store = pooch.create(path=cache, base_url="", registry={name: known}, urls={name: url},
                         retry_if_failed=retries)
    downloader = ResumingDownloader(Path(cache) / f"{name}.part", progress)
    pooch.get_logger().setLevel("WARNING")  # its English notices; progress is shown by the bar
    try:
        path = Path(store.fetch(name, downloader=downloader))
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        raise _http_error(source, url, status) from None
    except requests.RequestException as exc:
        raise _network_error(source, url, exc) from None
    except ValueError as exc:
        if "hash" not in str(exc).lower():
            raise
        raise _checksum_error(source, url) from None
    if downloader.headers is not None:
        write_atomic(path.with_name(path.name + HEADERS_SUFFIX), json.dumps(downloader.headers))
    return path


def _checksum_error(source: OfficialSource, url: str) -> FetchError:
    if source.sha256:
        return FetchError(
            f"le fichier « {source.label} » ({source.key}) ne correspond pas à l'empreinte SHA-256 attendue "
            f"({source.sha256}) : il a été supprimé.\n  Adresse : {url}",
            hint="le producteur a sans doute publié une nouvelle version : vérifiez-la sur "
            f"{source.page or url}, puis mettez à jour « sha256 » et « millesime » de cette ligne dans "
            "diagnostic/resources/tables/sources_officielles.csv (ou videz « sha256 » pour accepter le fichier tel quel).",
        )
    return FetchError(
        f"le fichier « {source.label} » ({source.key}) ne correspond pas à l'empreinte annoncée par data.gouv.fr "
        f"({source.checksum}) : il a été supprimé.\n  Adresse : {url}",
        hint="le fichier a peut-être été remplacé pendant le téléchargement : relancez la commande ; si l'erreur "
        f"persiste, signalez-la au producteur sur {source.page or 'data.gouv.fr'} et utilisez --from-dir.",
    )


def _http_error(source: OfficialSource, url: str, status: int) -> FetchError:
    if status in (404, 410) and source.dataset:
        return FetchError(
            f"le fichier de la source « {source.label} » ({source.key}) annoncé par data.gouv.fr n'est plus à son "
            f"adresse (HTTP {status}).\n  Adresse : {url}",
            hint="le producteur l'a sans doute remplacé entre-temps : relancez la commande pour obtenir la nouvelle "
            f"adresse ; sinon téléchargez-le depuis {source.page} et utilisez --from-dir.",
        )
    if status in (404, 410):
        return FetchError(
            f"la source « {source.label} » ({source.key}) n'est plus à son adresse (HTTP {status}) : elle a "
            f"probablement changé d'adresse ou de millésime.\n  Adresse : {url}",
            hint=f"cherchez la nouvelle adresse sur {source.page or 'le site du producteur'}, corrigez la colonne "
            "« url » de diagnostic/resources/tables/sources_officielles.csv (ou donnez un autre fichier avec --sources), ou téléchargez "
            "les fichiers à la main et utilisez --from-dir.",
        )
    return FetchError(
        f"le serveur de la source « {source.label} » ({source.key}) a répondu HTTP {status}.\n  Adresse : {url}",
        hint="réessayez plus tard ; les fichiers déjà téléchargés sont gardés en cache.",
    )


def _network_error(source: OfficialSource, url: str, exc: Exception) -> FetchError:
    cut = isinstance(exc, requests.exceptions.ChunkedEncodingError) or "IncompleteRead" in str(exc)
    what = ("le téléchargement s'est interrompu en cours de route" if cut
            else "le serveur est injoignable (pas de connexion, proxy ou serveur arrêté)")
    return FetchError(
        f"source « {source.label} » ({source.key}) : {what}.\n  Adresse : {url}",
        hint="vérifiez la connexion puis relancez la même commande : un téléchargement interrompu reprend où il "
        "s'était arrêté. Sans connexion, téléchargez les fichiers à la main et utilisez "
        "« diagnostic data fetch --from-dir DOSSIER ».",
    )


def find_in_dir(source: OfficialSource, folder: Path) -> Path | None:
    """The file of ``folder`` matching the source's published name patterns (case-insensitive)."""
    patterns = source.patterns or ([_basename(source.url)] if source.url else [])
    names = sorted(p for p in folder.iterdir() if p.is_file())
    for pattern in patterns:
        hits = [p for p in names if fnmatch.fnmatch(p.name.lower(), pattern.lower())]
        if hits:
            return hits[-1]
    return None


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


def _is_parquet(path: Path) -> bool:
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


def _codes(values: pd.Series, width: int) -> pd.Series:
    text = values.astype(str).str.strip()
    return text.where(~text.str.fullmatch(r"\d+"), text.str.zfill(width))


def territory_filter(
    source: OfficialSource, territory: Territory, communes: set[str] | None
) -> Callable[[pd.DataFrame], pd.Series]:
    """A row filter: by commune code when known, else by department, else by the territory's own level."""
    filters = source.filters
    level = "reg" if territory.kind == "region" else "dep"

    def keep(df: pd.DataFrame) -> pd.Series:
        for key in ("com", "dep", level):
            column = filters.get(key)
            if column is None or (key != level and communes is None):
                continue
            if column not in df.columns:
                raise CatalogError(
                    f"la colonne « {column} » (filtre {key}) est absente du fichier de « {source.key} » "
                    f"(colonnes : {', '.join(map(str, df.columns[:15]))}).",
                    path=SOURCES_FILE, column="filtre",
                    hint="le format a peut-être changé : corrigez « filtre » dans diagnostic/resources/tables/sources_officielles.csv.",
                )
            if key == "com":
                return _codes(df[column], 5).isin(communes)
            if key == "dep" and communes is not None:
                return _codes(df[column], 2).isin({department_of(c) for c in communes})
            return _codes(df[column], 2) == territory.code
        raise CatalogError(f"la source « {source.key} » n'a pas de filtre utilisable pour un {territory.label}.",
                           path=SOURCES_FILE, column="filtre",
                           hint="indiquez com=COLONNE, dep=COLONNE ou reg=COLONNE.")

    return keep


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write(frame: pd.DataFrame, source: OfficialSource, folder: Path, geo_format: str, sep: str) -> Path:
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


def _entry(source: OfficialSource, out: Path, origin: Path, published: str, url: str) -> dict[str, Any]:
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
            elif _is_parquet(origin):
                frame = read_parquet_filtered(origin, source, keep)
            else:
                frame, sep = read_table_filtered(origin, source, keep)
            if source.role == "communes":
                if frame.empty:
                    raise FetchError(f"aucune commune trouvée pour le {territory.label}.",
                                     hint="vérifiez le code (exemples : région 32, département 59).")
                communes = set(_codes(frame[source.columns.get("insee_com", "code")], 5))
            if frame.empty:
                result.notes.append(f"{source.key} : aucune ligne pour le {territory.label}, source omise.")
                continue
            out = _write(frame, source, staging, geo_format, sep)
            published = origin.name if folder else _basename(source_url(source))
            entries.setdefault(source.role, []).append(_entry(source, out, origin, published, source_url(source)))
            result.written[out.name] = len(frame)
        _write_catalog(staging / "catalogue.yaml", territory, entries, result.notes)
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


def _write_catalog(path: Path, territory: Territory, entries: dict[str, list[dict[str, Any]]], notes: list[str]) -> None:
    sources = {role: items if ROLES[role] else items[0] for role, items in entries.items()}
    header = [f"# Catalogue écrit par « diagnostic data fetch » le {date.today().isoformat()}, {territory.label}.",
              "# Chaque source indique son adresse, son millésime, sa licence et l'empreinte SHA-256 du fichier",
              "# écrit (sha256) et du fichier téléchargé (source_sha256)."]
    header += [f"# Omis : {note}" for note in notes]
    body = {"name": f"Données officielles — {territory.label}", "fictional": False,
            "territory": {"kind": territory.kind, "code": territory.code}, "sources": sources}
    text = "\n".join(header) + "\n" + yaml.safe_dump(body, allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")


def run_fetch(args: argparse.Namespace) -> int:
    """CLI entry of ``diagnostic data fetch``."""
    territory = parse_territory(args.region, args.department)
    dest = args.dest or f"donnees_{territory.kind}_{territory.code}"
    result = fetch(territory, dest, sources_file=args.sources, from_dir=args.from_dir, cache=args.cache,
                   geo_format=args.geo_format, progress=not args.quiet)
    print(f"Données officielles du {territory.label} écrites dans {result.catalog.parent} :")
    for name, rows in result.written.items():
        print(f"  {name} : {rows} ligne(s)")
    for note in result.notes:
        print(f"  Omis — {note}")
    print(f"Catalogue : {result.catalog}\nVérifiez-le avec : diagnostic data check --catalog {result.catalog}")
    return 0


def run_sources(args: argparse.Namespace) -> int:
    """CLI entry of ``diagnostic data sources``."""
    sources = read_sources(args.sources)
    if args.check:
        from diagnostic.fetch_check import run_check

        return run_check(sources, args.catalog)
    print(describe_sources(sources))
    return 0


__all__ = ["describe_sources", "fetch", "parse_territory", "read_sources", "run_fetch", "run_sources"]
