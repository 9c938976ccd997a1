"""Downloads through pooch into a cache shared between runs, resumed where they stopped; or files found by hand.

An interrupted download resumes with HTTP ``Range``; the server's headers are kept
beside each cached file (its date is the vintage when the sources file gives none).
Every failure is a French error saying what to do.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import sys
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pooch
import requests
from tqdm import tqdm

from diagnostic._fs import write_atomic
from diagnostic.errors import FetchError
from diagnostic.io.fetch.sources import TIMEOUT_S, OfficialSource, basename, source_url

CACHE_ENV = "DIAGNOSTIC_CACHE"
#: Where the downloader keeps the answer's headers beside each cached file (size and date).
HEADERS_SUFFIX = ".entetes.json"


def cache_dir(cache: str | Path | None = None) -> Path:
    """The download cache: argument, then ``DIAGNOSTIC_CACHE``, then the user's cache folder."""
    chosen = cache or os.environ.get(CACHE_ENV)
    return Path(chosen).expanduser() if chosen else Path(pooch.os_cache("diagnostic-territorial"))


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
                desc=basename(url)[:40], disable=not self.progress, leave=False,
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
    name = f"{source.key}-{hashlib.sha256(url.encode()).hexdigest()[:12]}-{basename(url)}"
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
    patterns = source.patterns or ([basename(source.url)] if source.url else [])
    names = sorted(p for p in folder.iterdir() if p.is_file())
    for pattern in patterns:
        hits = [p for p in names if fnmatch.fnmatch(p.name.lower(), pattern.lower())]
        if hits:
            return hits[-1]
    return None
