"""``diagnostic data sources --check``: does each official source still answer where the list says?

For an officer with internet, before a fetch: each line of the sources file is asked
with a ``HEAD`` request (a one-byte ``Range`` request when the server refuses ``HEAD``),
redirections followed one by one so that a permanent move (301, 308) is told with its
new address; a data.gouv.fr dataset is asked through the API for its most recent data
file. With a catalogue written by ``data fetch``, the size and date of each file are
compared with those recorded then. Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from diagnostic import text
from diagnostic.errors import FetchError
from diagnostic.io.fetch.datagouv import dataset_address, latest_resource
from diagnostic.io.fetch.sources import TIMEOUT_S, OfficialSource, mirror_url, source_url
from diagnostic.io.fetch.write import recorded

PERMANENT = {301, 308}
TEMPORARY = {302, 303, 307}
MAX_REDIRECTS = 8
#: Labels of each state, in French, in the order of the summary.
STATES = {
    "ok": ("répond", "répondent"),
    "moved": ("a changé d'adresse", "ont changé d'adresse"),
    "changed": ("a changé depuis le catalogue", "ont changé depuis le catalogue"),
    "gone": ("ne répond plus", "ne répondent plus"),
    "unreachable": ("injoignable", "injoignables"),
    "no_address": ("sans adresse à vérifier", "sans adresse à vérifier"),
}


@dataclass
class SourceStatus:
    """What the server (or the data.gouv.fr API) said about one line of the sources file."""

    key: str
    state: str
    url: str = ""
    new_url: str = ""
    size: int | None = None
    modified: str = ""
    status: int | None = None
    detail: str = ""
    changes: list[str] = field(default_factory=list)


@dataclass
class Answer:
    """The end of a chain of redirections: status, final address, first permanent move, headers."""

    status: int
    url: str
    moved_to: str
    headers: dict[str, str]


def ask(url: str) -> Answer:
    """``HEAD`` the address (falling back to a one-byte ``GET``), following redirections one by one."""
    moved_to = ""
    for _ in range(MAX_REDIRECTS):
        response = requests.head(url, allow_redirects=False, timeout=TIMEOUT_S)
        if response.status_code in (403, 405, 501):
            response = requests.get(url, headers={"Range": "bytes=0-0"}, allow_redirects=False, stream=True,
                                    timeout=TIMEOUT_S)
            response.close()
        if response.status_code in PERMANENT | TEMPORARY and response.headers.get("Location"):
            target = urljoin(url, response.headers["Location"])
            if response.status_code in PERMANENT and not moved_to:
                moved_to = target
            url = target
            continue
        return Answer(response.status_code, url, moved_to, dict(response.headers))
    return Answer(0, url, moved_to, {})


def _size(headers: dict[str, str]) -> int | None:
    """The file's size from ``Content-Range`` (one-byte request) or ``Content-Length``."""
    whole = headers.get("Content-Range", "").rpartition("/")[2]
    value = whole if whole.isdigit() else headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


def _date(stamp: str) -> str:
    try:
        return parsedate_to_datetime(stamp).date().isoformat() if stamp else ""
    except (TypeError, ValueError):
        return ""


def check_source(source: OfficialSource, before: dict[str, Any] | None = None) -> SourceStatus:
    """Ask where one source is, and compare with what a catalogue recorded."""
    url = source_url(source)
    status = SourceStatus(source.key, "no_address", url=url)
    api_size, api_date = None, ""
    try:
        if not url and source.dataset and not mirror_url():
            resource, _ = latest_resource(source, dataset_address(source))
            url = status.url = resource["url"]
            api_size = int(resource["filesize"]) if str(resource.get("filesize") or "").isdigit() else None
            api_date = str(resource.get("last_modified") or "")[:10]
        if not url:
            status.detail = f"à récupérer sur {source.page or 'le site du producteur'}"
            return status
        answer = ask(url)
    except requests.RequestException:
        status.state, status.detail = "unreachable", "pas de réponse (pas de connexion, proxy ou serveur arrêté)"
        return status
    except FetchError as exc:
        unreachable = "injoignable" in str(exc)
        status.state = "unreachable" if unreachable else "gone"
        status.detail = str(exc).splitlines()[0]
        return status
    status.status = answer.status
    status.size = _size(answer.headers) or api_size
    # A dataset's file: the date data.gouv.fr gives is its vintage in the catalogue.
    status.modified = api_date or _date(answer.headers.get("Last-Modified", ""))
    if answer.status not in (200, 206):
        status.state = "gone"
        status.detail = f"cherchez la nouvelle adresse sur {source.page}" if source.page else ""
        return status
    status.state = "moved" if answer.moved_to else "ok"
    status.new_url = answer.moved_to
    if before:
        _compare(status, before, "vintage" if api_date else "source_modified")
    return status


def _compare(status: SourceStatus, before: dict[str, Any], date_key: str) -> None:
    """Record what differs from the catalogue: address, size, date (``date_key`` of the entry)."""
    if before.get("url") and before["url"] != status.url:
        status.changes.append(f"nouveau fichier publié (catalogue : {before['url']})")
    if before.get("source_size") is not None and status.size is not None and int(before["source_size"]) != status.size:
        status.changes.append(f"taille {text.number(int(before['source_size']))} → {text.number(status.size)} octets")
    if before.get(date_key) and status.modified and str(before[date_key]) != status.modified:
        status.changes.append(f"date {before[date_key]} → {status.modified}")
    if status.changes and status.state == "ok":
        status.state = "changed"


def check_sources(sources: list[OfficialSource], catalog: str | Path | None = None) -> list[SourceStatus]:
    """The status of every line, in the order of the sources file."""
    before = recorded(catalog) if catalog is not None else {}
    return [check_source(s, before.get(s.key)) for s in sources]


def describe_check(statuses: list[SourceStatus], catalog: str | Path | None = None) -> str:
    """The statuses as French text: one line per source, then a summary."""
    lines = [f"Vérification des sources officielles ({text.count(len(statuses), 'ligne')})"
             + (f", comparées au catalogue {catalog}" if catalog else "") + " :"]
    for s in statuses:
        label = STATES[s.state][0]
        where = f" : {s.url}" if s.url else ""
        http = f" (HTTP {s.status})" if s.status else ""
        line = f"  {s.key} — {label}{http}{where}"
        facts = []
        if s.size is not None:
            facts.append(f"{text.number(s.size)} octets")
        if s.modified:
            facts.append(f"mis à jour le {s.modified}")
        if facts:
            line += f" ({', '.join(facts)})"
        lines.append(line)
        if s.new_url:
            lines.append(f"      nouvelle adresse : {s.new_url} (corrigez « url » dans diagnostic/resources/tables/sources_officielles.csv)")
        lines += [f"      {change}" for change in s.changes]
        if s.detail:
            lines.append(f"      {s.detail}")
    counts = {state: sum(1 for s in statuses if s.state == state) for state in STATES}
    summary = [f"{n} {STATES[state][0 if n == 1 else 1]}" for state, n in counts.items() if n]
    lines.append(f"Bilan : {text.join(summary)}.")
    return "\n".join(lines)


def offline(statuses: list[SourceStatus]) -> bool:
    """True when no source with an address could be reached at all."""
    asked = [s for s in statuses if s.state != "no_address"]
    return bool(asked) and all(s.state == "unreachable" for s in asked)


def run_check(sources: list[OfficialSource], catalog: str | Path | None) -> int:
    """Print the check; exit code 40 when offline or when a line no longer answers, else 0."""
    statuses = check_sources(sources, catalog)
    if offline(statuses):
        print("Hors connexion : aucune source n'a répondu (pas de connexion, proxy ou serveurs arrêtés) ; "
              "rien n'a pu être vérifié.\nVérifiez la connexion puis relancez « diagnostic data sources --check ».")
        return FetchError.exit_code
    print(describe_check(statuses, catalog))
    failed = any(s.state in ("gone", "unreachable") for s in statuses)
    return FetchError.exit_code if failed else 0
