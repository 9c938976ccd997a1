"""Questionnaire exports (Framaforms, LimeSurvey, KoboToolbox) as expressed needs.

An export is a CSV or an ``.xlsx`` with one row per answer and one column per
question, as the form tools write it. The catalogue says how to read it
(``format: questionnaire`` in the ``observations`` role)::

    - path: questionnaire_habitants.csv
      format: questionnaire
      public: habitants            # habitants ou partenaires
      questions:                   # rôle → colonne de l'export
        date: _submission_time     # obligatoire : heure de la réponse
        qpv: quartier              # code ou nom du QPV (facultatif)
        commune: commune           # code ou nom de la commune (facultatif)
        comment: commentaire       # remarque libre (facultatif)
        id: _id                    # identifiant de la réponse (défaut : numéro de ligne)
      answers:                     # colonne → réponses → domaine et type de problème
        problemes:                 # choix (unique ou multiple, séparés par espace, « ; », « , » ou « | »)
          bruit: {domaine: espace_public, type_probleme: nuisances}
        "probleme[SQ002]": {domaine: habitat, type_probleme: degradations}   # case à cocher (oui / 1 / Y)
      citations: [12, 47]          # réponses dont la remarque est citée dans le rapport

Coordinates, when the form asked for them, are read from ``questions:
latitude/longitude``, a ``geolocation`` column (« lat, lon » or KoboToolbox's
« lat lon altitude précision »), or found as KoboToolbox writes them
(``_geolocation``, ``_<question>_latitude`` / ``_<question>_longitude``); they
take precedence over the QPV and commune answers. Each answer is one respondent;
each mapped answer one observation (source « questionnaire », weight
``poids:``, 1 by default). Answers outside the territory are counted and kept
aside; answers without a place are counted as « lieu non précisé ». Personal
data (a name, phone or e-mail column, a phone number or e-mail in any cell)
refuses the file (code 21).
"""

from __future__ import annotations

import re
from typing import Any

import geopandas as gpd
import pandas as pd

from diagnostic.errors import CatalogError, missing_column
from diagnostic.io.catalog import Source
from diagnostic.io.reference import DOMAINS
from diagnostic.io.sources._io import (
    LoadReport,
    line_numbers,
    names_sheet,
    parse_dates,
    read_table,
    refuse,
    to_number,
)
from diagnostic.io.sources.observations import problem_types
from diagnostic.io.sources.personal import check_confidentiality
from diagnostic.io.sources.places import INSIDE, OUTSIDE, UNKNOWN, locate_points, place_names
from diagnostic.io.sources.services import DEFAULT_TOLERANCE_M
from diagnostic.text import fold

PUBLICS = {"habitants": "habitants", "partenaires": "partenaires"}
#: Metadata columns the form tools add; their cells are not read for contact details.
TOOL_COLUMNS = {"_id", "_uuid", "_index", "_submission_time", "_version_", "__version__", "_xform_id_string",
                "meta/instanceid", "start", "end", "today", "deviceid", "id", "submitdate", "startdate",
                "datestamp", "lastpage", "seed", "_validation_status", "_status"}
CHECKED = {"1", "oui", "o", "yes", "y", "x", "true", "vrai", "coche"}
_SPLIT = re.compile(r"[\s;,|]+")
#: Columns of the respondents table.
RESPONDENT_COLUMNS = ["survey", "public", "respondent", "line", "date", "code_qp", "insee_com", "status", "comment",
                      "quoted"]


@names_sheet
def load_questionnaire(
    source: Source, communes: gpd.GeoDataFrame, qpv: gpd.GeoDataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, LoadReport]:
    """Read a questionnaire export through its mapping: observations, one row per respondent, and the report."""
    report = LoadReport(source.role, source.path)
    questions, answers = _mapping(source)
    public = _public(source)
    df = read_table(source.path, source.role, source.options.get("sep"), sheet=source.options.get("sheet"))
    report.rows_read = len(df)
    for column in [*questions.values(), *answers]:
        if column not in df.columns:
            raise missing_column(source.path, column, df.columns, "questionnaire (correspondance du catalogue)")
    coords = _coordinate_columns(df, questions)
    technical = {c for c in df.columns if fold(c) in TOOL_COLUMNS} | set(coords) | {questions["date"]}
    check_confidentiality(df, source.path, what="un export de questionnaire", skip=technical,
                          hint="retirez du formulaire et de l'export toute question sur l'identité ou les "
                          "coordonnées des personnes ; le lieu se demande par le quartier.")
    dates = parse_dates(_day(df[questions["date"]]), source.path, questions["date"], required=True)
    place = _places(df, questions, coords, source, communes, qpv)
    ids = df[questions["id"]].astype(str).str.strip() if "id" in questions else pd.Series(
        [str(n) for n in line_numbers(pd.Series(True, index=df.index))], index=df.index)
    comment = df[questions["comment"]].astype(str).str.strip() if "comment" in questions else ""
    quoted = ids.isin({str(q) for q in source.options.get("citations") or []})
    respondents = pd.DataFrame({
        "survey": source.path.name, "public": public, "respondent": ids, "line": line_numbers(
            pd.Series(True, index=df.index)), "date": dates, **place, "comment": comment, "quoted": quoted,
    })[RESPONDENT_COLUMNS]
    unknown_quotes = {str(q) for q in source.options.get("citations") or []} - set(ids)
    if unknown_quotes:
        report.warn(f"citation(s) de réponses absentes de l'export : {', '.join(sorted(unknown_quotes))}.")
    weight = float(source.options.get("poids", 1))
    obs, unmatched = _observations(df, answers, respondents, weight)
    for column, values in unmatched.items():
        report.warn(f"{len(values)} réponse(s) de « {column} » sans correspondance dans le catalogue "
                    f"({', '.join(sorted(set(values))[:5])}) : non comptées comme besoin.")
    outside = int((respondents["status"] == OUTSIDE).sum())
    if outside:
        report.warn(f"{outside} réponse(s) hors du territoire du catalogue (lignes "
                    f"{', '.join(map(str, respondents.loc[respondents['status'] == OUTSIDE, 'line'].head(8)))}) : "
                    "comptées à part, sans besoin exprimé.")
    nowhere = int((respondents["status"] == UNKNOWN).sum())
    if nowhere:
        report.warn(f"{nowhere} réponse(s) sans lieu : comptées parmi les répondants, sans besoin localisé.")
    report.rows_kept = int((respondents["status"] == INSIDE).sum())
    return obs, respondents, report


def _mapping(source: Source) -> tuple[dict[str, str], dict[str, Any]]:
    """The questions and answers of the catalogue, checked against the domains and problem types."""
    questions = {str(k): str(v) for k, v in (source.options.get("questions") or {}).items()}
    allowed = {"date", "qpv", "commune", "comment", "id", "latitude", "longitude", "geolocation"}
    if "date" not in questions or set(questions) - allowed:
        raise CatalogError(
            f"« questions » du questionnaire {source.path.name} : la date est obligatoire et les rôles possibles "
            f"sont {', '.join(sorted(allowed))}" + (f" (inconnu : {', '.join(sorted(set(questions) - allowed))})"
                                                    if set(questions) - allowed else "") + ".",
            path=source.path, hint="voir l'exemple templates/questionnaires_catalogue_exemple.yaml.")
    answers = source.options.get("answers") or {}
    if not isinstance(answers, dict) or not answers:
        raise CatalogError(f"« answers » du questionnaire {source.path.name} doit dire quelles réponses "
                           "correspondent à quel domaine et type de problème.", path=source.path,
                           hint="voir l'exemple templates/questionnaires_catalogue_exemple.yaml.")
    problems = set(problem_types().index)
    for column, spec in answers.items():
        targets = [spec] if isinstance(spec, dict) and "domaine" in spec else list((spec or {}).values())
        for t in targets:
            if not isinstance(t, dict) or t.get("domaine") not in DOMAINS or t.get("type_probleme") not in problems:
                raise CatalogError(
                    f"correspondance invalide pour la question « {column} » : {t!r}.", path=source.path,
                    hint=f"chaque réponse donne {{domaine: …, type_probleme: …}} ; domaines : {', '.join(DOMAINS)} ; "
                    f"types de problème : {', '.join(sorted(problems))}.")
    return questions, {str(k): v for k, v in answers.items()}


def _public(source: Source) -> str:
    public = fold(str(source.options.get("public", "habitants")))
    if public not in PUBLICS:
        raise CatalogError(f"« public » du questionnaire {source.path.name} vaut « {public} ».", path=source.path,
                           hint="attendu : habitants ou partenaires.")
    return PUBLICS[public]


def _day(values: pd.Series) -> pd.Series:
    """The day of a submission time (« 2025-03-14T18:02:11.000+01:00 », « 14/03/2025 18:02 »)."""
    text = values.astype(str).str.strip()
    day = text.str.extract(r"^(\d{4}-\d{2}-\d{2}|\d{2}/\d{2}/\d{4})")[0]
    return day.fillna(text)


def _coordinate_columns(df: pd.DataFrame, questions: dict[str, str]) -> list[str]:
    """The columns holding coordinates: declared, or KoboToolbox's ``_geolocation`` / ``_<q>_latitude``."""
    if "latitude" in questions and "longitude" in questions:
        return [questions["latitude"], questions["longitude"]]
    if "geolocation" in questions:
        return [questions["geolocation"]]
    pairs = [c for c in df.columns if c.startswith("_") and c.endswith("_latitude")
             and f"{c[:-len('_latitude')]}_longitude" in df.columns]
    if pairs:
        return [pairs[0], f"{pairs[0][:-len('_latitude')]}_longitude"]
    return ["_geolocation"] if "_geolocation" in df.columns else []


def _points(df: pd.DataFrame, coords: list[str], source: Source) -> gpd.GeoSeries:
    """WGS84 points from the coordinate columns (missing where the answer has none)."""
    if len(coords) == 2:
        lat, _ = to_number(df[coords[0]], source.path, coords[0])
        lon, _ = to_number(df[coords[1]], source.path, coords[1])
        column = coords[0]
    else:
        column = coords[0]
        parts = df[column].astype(str).str.findall(r"-?\d+(?:[.,]\d+)?")
        lat = pd.to_numeric(parts.str[0].str.replace(",", "."), errors="coerce")
        lon = pd.to_numeric(parts.str[1].str.replace(",", "."), errors="coerce")
        refuse(~df[column].astype(str).str.strip().isin(["", "[]", "None", "[None, None]"]) & lon.isna(),
               "coordonnées illisibles.", source.path, column, hint="attendu : « latitude, longitude » en degrés (WGS84).")
    refuse((lat.abs() > 90) | (lon.abs() > 180), "latitudes ou longitudes impossibles.", source.path, column,
           hint="attendu : des degrés WGS84 (latitude puis longitude).")
    ok = lat.notna() & lon.notna()
    return gpd.GeoSeries(gpd.points_from_xy(lon.where(ok), lat.where(ok)), index=df.index, crs="EPSG:4326").where(ok)


def _places(df, questions, coords, source, communes, qpv) -> dict[str, pd.Series]:
    """QPV, commune and status of each answer: coordinates first, then the QPV, then the commune answer."""
    tolerance = float(source.options.get("tolerance_m", DEFAULT_TOLERANCE_M))
    blank = pd.Series("", index=df.index)
    default = str(source.options.get("commune", ""))
    by_name = place_names(df[questions["qpv"]] if "qpv" in questions else blank, qpv, communes)
    by_commune = place_names(df[questions["commune"]] if "commune" in questions else blank + default, qpv, communes)
    place = by_name.where(by_name["status"] != UNKNOWN, by_commune, axis=0)
    if coords:
        located = locate_points(_points(df, coords, source), communes, qpv, tolerance)
        place = located.where(located["status"] != UNKNOWN, place, axis=0)
    return {k: place[k] for k in ("code_qp", "insee_com", "status")}


def _observations(
    df: pd.DataFrame, answers: dict[str, Any], respondents: pd.DataFrame, weight: float
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """One observation per mapped answer of a respondent placed in the territory."""
    rows, unmatched = [], {}
    inside = respondents["status"] == INSIDE
    for column, spec in answers.items():
        cells = df[column].astype(str).str.strip()
        if isinstance(spec, dict) and "domaine" in spec:
            picked = [(i, spec) for i, v in cells.items() if fold(v) in CHECKED]
        else:
            lookup = {fold(str(k)): v for k, v in spec.items()}
            picked = []
            for i, v in cells.items():
                tokens = [v] if fold(v) in lookup else [t for t in _SPLIT.split(v) if t]
                picked += [(i, lookup[fold(t)]) for t in tokens if fold(t) in lookup]
                missed = [t for t in tokens if fold(t) not in lookup]
                if missed:
                    unmatched.setdefault(column, []).extend(missed)
        rows += [(i, t["domaine"], t["type_probleme"]) for i, t in picked if inside[i]]
    index = [i for i, _, _ in rows]
    r = respondents.loc[index]
    obs = pd.DataFrame({
        "date": r["date"].to_numpy(), "domain": [d for _, d, _ in rows], "problem": [p for _, _, p in rows],
        "source_type": "questionnaire", "weight": weight, "comment": "", "code_qp": r["code_qp"].to_numpy(),
        "insee_com": r["insee_com"].to_numpy(), "public": r["public"].to_numpy(),
        "respondent": r["respondent"].to_numpy(), "origin": r["survey"].to_numpy(),
    })
    obs = obs.drop_duplicates(["respondent", "domain", "problem"]).reset_index(drop=True)
    return obs, unmatched
