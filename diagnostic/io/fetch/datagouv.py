"""The data.gouv.fr catalogue API: a source given by its dataset resolved to its most recent matching file.

A source whose file address changes with each upload is given by its dataset
(``jeu_de_donnees``) and a ``ressource`` pattern on the title or file name; only
``main`` resources count. Behind a mirror the API is not called.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import requests

from diagnostic.errors import FetchError
from diagnostic.io.fetch.sources import TIMEOUT_S, OfficialSource, basename

#: The data.gouv.fr catalogue API that resolves the sources given by their dataset.
DATAGOUV_API_ENV = "DIAGNOSTIC_DATAGOUV_API"
DATAGOUV_API = "https://www.data.gouv.fr/api/1"
#: Checksum types of the data.gouv.fr API that pooch can verify.
API_HASHES = {"md5", "sha1", "sha256"}
LISTED_TITLES = 20
#: data.gouv.fr resource types that hold the data (not documentation, API or update notes).
DATA_RESOURCE_TYPE = "main"


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
    names = (str(resource.get("title") or "").lower(), basename(resource["url"]).lower())
    return any(fnmatch.fnmatch(name, pattern.lower()) for pattern in source.resource.split("|") for name in names)


def _modified(resource: dict[str, Any]) -> datetime:
    """A resource's last modification (oldest possible when absent or unreadable)."""
    try:
        moment = datetime.fromisoformat(str(resource.get("last_modified") or ""))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _no_resource_error(source: OfficialSource, address: str, resources: list[dict[str, Any]]) -> FetchError:
    titles = [f"{r.get('title') or basename(r['url'])} ({r.get('format') or '?'})" for r in resources]
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
