"""Meetings and interviews (réunions, entretiens): who took part, by type, and the themes raised.

A record is a Markdown file with a YAML front matter (one meeting; a folder
holds one file per meeting) or a CSV row (one meeting per row)::

    ---
    date: 2025-04-10
    type: réunion                 # réunion ou entretien
    titre: Conseil citoyen des Hauts de Lys
    qpv: QN09901A                 # ou commune: 99101 (code ou nom)
    participants: {habitants: 14, bailleur: 1, association: 2}
    themes:
      - {domaine: habitat, type_probleme: degradations}
    ---
    Compte rendu libre. Les lignes commençant par « > » sont les citations retenues.

In CSV: ``date``, ``type``, ``titre``, ``qpv`` or ``commune``, ``participants``
(« habitants: 14 | bailleur: 1 »), ``themes`` (« habitat/degradations |
espace_public/nuisances »), ``citations`` (separated by « | »). Participants are
counted by type (residents, or an actor type of ``diagnostic/resources/tables/types_acteurs.csv``),
never named: a list of names, a phone number or an e-mail anywhere refuses the
record (code 21). Each theme becomes an observation of source « réunion » or
« entretien » at the meeting's place.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import yaml

from diagnostic.errors import ConfidentialityError, UnknownFormatError, ValueFormatError
from diagnostic.io.catalog import Source
from diagnostic.io.reference import DOMAINS
from diagnostic.io.sources._io import (
    LoadReport,
    check_exists,
    names_sheet,
    parse_dates,
    read_source_text,
    read_table,
)
from diagnostic.io.sources.observations import problem_types
from diagnostic.io.sources.partners import actor_types
from diagnostic.io.sources.personal import contact_in
from diagnostic.io.sources.places import UNKNOWN, place_names
from diagnostic.text import fold

KINDS = {"reunion": "réunion", "entretien": "entretien"}
#: Participant types that count as residents.
RESIDENTS = {"habitants", "habitant", "habitantes", "jeunes", "parents", "locataires", "commercants", "usagers",
             "seniors", "conseil citoyen"}
MEETING_COLUMNS = ["origin", "date", "kind", "title", "code_qp", "insee_com", "residents", "partners",
                   "participants", "themes", "quotes"]
_FRONT = re.compile(r"\A\ufeff?---\s*\n(.*?)\n---\s*(?:\n|\Z)(.*)\Z", re.DOTALL)
_SPLIT = re.compile(r"\s*\|\s*")


def load_meetings(
    source: Source, communes: gpd.GeoDataFrame, qpv: gpd.GeoDataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, LoadReport]:
    """Read meeting records (a Markdown file, a folder of them, or a CSV / xlsx): observations, meetings, report."""
    check_exists(source.path, source.role)
    report = LoadReport(source.role, source.path)
    if source.path.is_dir():
        files = sorted(source.path.glob("*.md"))
        if not files:
            raise UnknownFormatError("le dossier ne contient aucun compte rendu Markdown (.md).", path=source.path)
        records = [_markdown(f, [source.path]) for f in files]  # a link out of the folder is refused
    elif source.path.suffix.lower() == ".md":
        records = [_markdown(source.path)]
    else:
        records = _table(source)
    meetings = pd.DataFrame([_meeting(r, communes, qpv) for r in records], columns=MEETING_COLUMNS)
    report.rows_read = report.rows_kept = len(meetings)
    rows = [
        {"date": m.date, "domain": d, "problem": p, "source_type": m.kind, "weight": w, "comment": m.title,
         "code_qp": m.code_qp, "insee_com": m.insee_com, "public": _public(m.residents, m.partners),
         "respondent": "", "origin": m.origin}
        for m in meetings.itertuples() for d, p, w in m.themes
    ]
    obs = pd.DataFrame(rows, columns=["date", "domain", "problem", "source_type", "weight", "comment", "code_qp",
                                      "insee_com", "public", "respondent", "origin"])
    return obs, meetings, report


def _public(residents: int, partners: int) -> str:
    if residents and partners:
        return "habitants et partenaires"
    return "partenaires" if partners else "habitants"


def _markdown(path: Path, roots: list[Path] | None = None) -> dict[str, Any]:
    text = read_source_text(path, "compte rendu", roots)
    match = _FRONT.match(text)
    if not match:
        raise UnknownFormatError("le compte rendu doit commencer par un en-tête YAML entre deux lignes « --- ».",
                                 path=path, hint="voir l'exemple dans le README (réunions et entretiens).")
    try:
        head = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise UnknownFormatError(f"en-tête YAML illisible ({exc}).", path=path) from None
    if not isinstance(head, dict):
        raise UnknownFormatError("l'en-tête YAML doit être une liste de clés (date, type, participants…).", path=path)
    body = match.group(2)
    _refuse_contacts([body, *map(str, head.values())], path, None)
    quotes = [ln.lstrip("> ").strip() for ln in body.splitlines() if ln.startswith(">") and ln.lstrip("> ").strip()]
    themes = [(t.get("domaine"), t.get("type_probleme"), t.get("poids", 1)) if isinstance(t, dict) else
              (*str(t).partition("/")[::2], 1) for t in head.get("themes") or []]
    return {"path": path, "line": None, "date": head.get("date"), "type": head.get("type", "réunion"),
            "title": head.get("titre", path.stem), "qpv": head.get("qpv", ""), "commune": head.get("commune", ""),
            "participants": head.get("participants") or {}, "themes": themes,
            "quotes": quotes + [str(q) for q in head.get("citations") or []]}


@names_sheet
def _table(source: Source) -> list[dict[str, Any]]:
    df = read_table(source.path, source.role, source.options.get("sep"), sheet=source.options.get("sheet"))
    for column in df.columns:
        found = contact_in(df[column])
        if found.any():
            _refuse_contacts(list(df.loc[found, column]), source.path, [int(i) + 2 for i in df.index[found]])
    records = []
    for i, row in df.iterrows():
        cell = {fold(k): str(v).strip() for k, v in row.items()}
        participants = {}
        for item in _SPLIT.split(cell.get("participants", "")):
            if item:
                key, sep, value = item.partition(":")
                participants[key.strip()] = value.strip() if sep else item
        themes = [(*t.partition("/")[::2], 1) for t in _SPLIT.split(cell.get("themes", "")) if t]
        records.append({"path": source.path, "line": int(i) + 2, "date": cell.get("date", ""),
                        "type": cell.get("type", "réunion"), "title": cell.get("titre", ""),
                        "qpv": cell.get("qpv", ""), "commune": cell.get("commune", cell.get("code_commune", "")),
                        "participants": participants, "themes": themes,
                        "quotes": [q for q in _SPLIT.split(cell.get("citations", "")) if q]})
    return records


def _refuse_contacts(texts: list[str], path: Path, rows: list[int] | None) -> None:
    if contact_in(pd.Series(texts, dtype=str)).any():
        raise ConfidentialityError("le compte rendu contient un numéro de téléphone ou une adresse électronique.",
                                   path=path, rows=rows, hint="effacez ces coordonnées personnelles du compte rendu.")


def _participant_types() -> dict[str, str]:
    """Folded participant word → « habitants » or the actor type key."""
    lookup = {fold(w): "habitants" for w in RESIDENTS} | {"partenaires": "partenaires"}
    for key, row in actor_types().iterrows():
        for name in [key, row["libelle"], *_SPLIT.split(str(row.get("synonymes", "") or "").replace("|", " | "))]:
            if name:
                lookup.setdefault(fold(name).strip(), key)
    return lookup


def _meeting(record: dict[str, Any], communes: gpd.GeoDataFrame, qpv: gpd.GeoDataFrame) -> dict[str, Any]:
    """Check one record and place it: date, kind, participants counted by type, themes, place."""
    path, rows = record["path"], [record["line"]] if record["line"] else None
    day = parse_dates(pd.Series([str(record["date"] or "")]), path, "date", required=True).iloc[0]
    kind = KINDS.get(fold(str(record["type"])).strip())
    if kind is None:
        raise ValueFormatError(f"type de rencontre inconnu « {record['type']} ».", path=path, column="type", rows=rows,
                               hint="attendu : réunion ou entretien.")
    people = record["participants"]
    if not isinstance(people, dict):
        raise ConfidentialityError("les participants sont une liste de personnes : ils se comptent par type, "
                                   "jamais par nom.", path=path, column="participants", rows=rows,
                                   hint="écrivez par exemple « participants: {habitants: 12, bailleur: 1} ».")
    types = _participant_types()
    counts: dict[str, int] = {}
    for key, value in people.items():
        kind_key = types.get(fold(str(key)).strip())
        if kind_key is None:
            raise ValueFormatError(f"type de participant inconnu « {key} ».", path=path, column="participants",
                                   rows=rows, hint="habitants, ou un type d'acteur de diagnostic/resources/tables/types_acteurs.csv "
                                   "(bailleur, association, commune…).")
        if not re.fullmatch(r"\d+", str(value).strip()):
            raise ConfidentialityError(f"participants « {key} » : un nombre est attendu, pas une liste de noms.",
                                       path=path, column="participants", rows=rows,
                                       hint="les participants se comptent par type, jamais par nom.")
        counts[kind_key] = counts.get(kind_key, 0) + int(str(value).strip())
    problems = set(problem_types().index)
    themes = []
    for domain, problem, weight in record["themes"]:
        domain, problem = str(domain or "").strip(), str(problem or "").strip()
        if domain not in DOMAINS or problem not in problems:
            raise ValueFormatError(f"thème inconnu « {domain}/{problem} ».", path=path, column="themes", rows=rows,
                                   hint=f"chaque thème est domaine/type_probleme ; domaines : {', '.join(DOMAINS)} ; "
                                   f"types : {', '.join(sorted(problems))}.")
        themes.append((domain, problem, float(weight)))
    place = place_names(pd.Series([str(record["qpv"] or record["commune"] or "")]), qpv, communes).iloc[0]
    if place["status"] != "territoire":
        raise ValueFormatError(
            "lieu de la rencontre " + ("absent" if place["status"] == UNKNOWN else "hors du territoire du catalogue")
            + f" (« {record['qpv'] or record['commune']} »).", path=path, column="qpv", rows=rows,
            hint="indiquez le code ou le nom d'un QPV (qpv:) ou d'une commune (commune:) du catalogue.")
    residents = counts.get("habitants", 0)
    return {"origin": path.name, "date": day, "kind": kind, "title": str(record["title"]).strip(),
            "code_qp": place["code_qp"], "insee_com": place["insee_com"], "residents": residents,
            "partners": sum(v for k, v in counts.items() if k != "habitants"), "participants": counts,
            "themes": themes, "quotes": record["quotes"]}
