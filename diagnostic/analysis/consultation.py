"""What residents and partners said: questionnaires, marches exploratoires, meetings, gathered for the report.

Every consultation source of the catalogue's ``observations`` role (``format:``
``questionnaire``, ``marche``, ``reunion``; a plain observations table
otherwise) gives observations in one table shape — the one the needs method
reads — and what the report needs to say who was heard: respondents,
walks with their route and stops, meetings with participants counted by type,
and the quotations the officer selected.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import geopandas as gpd
import pandas as pd

from diagnostic.errors import CatalogError
from diagnostic.io.catalog import Source
from diagnostic.io.sources._io import LoadReport
from diagnostic.io.sources.marches import STOP_COLUMNS, Walk, load_marche
from diagnostic.io.sources.meetings import MEETING_COLUMNS, load_meetings
from diagnostic.io.sources.observations import load_observations
from diagnostic.io.sources.places import OUTSIDE, UNKNOWN
from diagnostic.io.sources.questionnaires import RESPONDENT_COLUMNS, load_questionnaire
from diagnostic.text import fold

FORMATS = {"questionnaire": "questionnaire", "marche": "marche", "marche exploratoire": "marche",
           "reunion": "reunion", "entretien": "reunion", "reunions": "reunion", "csv": "csv"}


@dataclass
class Consultation:
    """Who was heard: questionnaire respondents, marches exploratoires, meetings (all places checked)."""

    respondents: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=RESPONDENT_COLUMNS))
    walks: list[Walk] = field(default_factory=list)
    meetings: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=MEETING_COLUMNS))

    def __add__(self, other: Consultation) -> Consultation:
        return Consultation(
            respondents=_concat(self.respondents, other.respondents, RESPONDENT_COLUMNS),
            walks=self.walks + other.walks,
            meetings=_concat(self.meetings, other.meetings, MEETING_COLUMNS),
        )

    @property
    def empty(self) -> bool:
        return self.respondents.empty and not self.walks and self.meetings.empty

    def for_places(self, insee: str, qpv_codes: set[str], shape=None) -> Consultation:
        """What concerns one commune: answers, walks (a stop there, or the route crossing ``shape``), meetings."""
        here = lambda t: (t["insee_com"] == insee) | t["code_qp"].isin(qpv_codes)
        walks = []
        for w in self.walks:
            crosses = shape is not None and w.route is not None and w.route.intersects(shape)
            if crosses or here(w.stops).any():
                walks.append(w)
        return replace(self, respondents=self.respondents[here(self.respondents)], walks=walks,
                       meetings=self.meetings[here(self.meetings)])


def _concat(a: pd.DataFrame, b: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    frames = [f for f in (a, b) if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def load_expressed(
    source: Source, communes: gpd.GeoDataFrame, qpv: gpd.GeoDataFrame
) -> tuple[pd.DataFrame, Consultation, LoadReport]:
    """Read one source of the ``observations`` role by its ``format:``; observations, consultation, report."""
    kind = FORMATS.get(fold(source.format or "csv").replace("_", " ").strip())
    if kind is None:
        raise CatalogError(f"format « {source.format} » inconnu pour les besoins exprimés ({source.path.name}).",
                           path=source.path, hint="formats possibles : csv (observations), questionnaire, marche, "
                           "reunion.")
    if kind == "questionnaire":
        obs, respondents, report = load_questionnaire(source, communes, qpv)
        return obs, Consultation(respondents=respondents), report
    if kind == "marche":
        obs, walk, report = load_marche(source, communes, qpv)
        return obs, Consultation(walks=[walk]), report
    if kind == "reunion":
        obs, meetings, report = load_meetings(source, communes, qpv)
        return obs, Consultation(meetings=meetings), report
    obs, report = load_observations(source, communes, qpv)
    return obs, Consultation(), report


def heard(c: Consultation, observations: pd.DataFrame | None = None) -> dict:
    """Residents and partners consulted, and one row per method (count, dates, people heard)."""
    rows = []
    r = c.respondents
    for public in ("habitants", "partenaires"):
        part = r[r["public"] == public]
        if len(part):
            rows.append({"method": f"Questionnaire aux {public}", "count": len(part), "unit": "réponse",
                         "first": part["date"].min(), "last": part["date"].max(),
                         "residents": len(part) if public == "habitants" else 0,
                         "partners": len(part) if public == "partenaires" else 0,
                         "outside": int((part["status"] == OUTSIDE).sum()),
                         "unplaced": int((part["status"] == UNKNOWN).sum())})
    if c.walks:
        dates = [w.date for w in c.walks]
        people = [w.participants for w in c.walks]
        rows.append({"method": "Marches exploratoires", "count": len(c.walks), "unit": "marche",
                     "first": min(dates), "last": max(dates),
                     "residents": sum(p.get("habitants", 0) for p in people),
                     "partners": sum(v for p in people for k, v in p.items() if k != "habitants"),
                     "stops": sum(len(w.stops) for w in c.walks),
                     "outside": sum(int((w.stops["status"] == OUTSIDE).sum()) for w in c.walks), "unplaced": 0})
    for kind, label, unit in (("réunion", "Réunions", "réunion"), ("entretien", "Entretiens", "entretien")):
        part = c.meetings[c.meetings["kind"] == kind]
        if len(part):
            rows.append({"method": label, "count": len(part), "unit": unit, "first": part["date"].min(),
                         "last": part["date"].max(), "residents": int(part["residents"].sum()),
                         "partners": int(part["partners"].sum()), "outside": 0, "unplaced": 0})
    if observations is not None and len(observations):
        plain = observations[observations["origin"].isna()] if "origin" in observations else observations
        if len(plain):
            rows.append({"method": "Observations saisies par l'équipe", "count": len(plain), "unit": "observation",
                         "first": plain["date"].min(), "last": plain["date"].max(), "residents": 0, "partners": 0,
                         "outside": 0, "unplaced": 0})
    methods = pd.DataFrame(rows)
    return {
        "residents": int(methods["residents"].sum()) if len(methods) else 0,
        "partners": int(methods["partners"].sum()) if len(methods) else 0,
        "methods": methods,
    }


def survey_answers(observations: pd.DataFrame | None) -> pd.DataFrame:
    """Questionnaire answers per QPV (or commune), domain and problem type, with the number of respondents."""
    cols = ["public", "code_qp", "insee_com", "domain", "problem", "respondents"]
    if observations is None or "respondent" not in observations:
        return pd.DataFrame(columns=cols)
    answers = observations[observations["source_type"] == "questionnaire"].dropna(subset=["respondent"])
    grouped = answers.groupby(["public", "code_qp", "insee_com", "domain", "problem"])["respondent"].nunique()
    return grouped.rename("respondents").reset_index().sort_values(
        ["public", "code_qp", "respondents"], ascending=[True, True, False], kind="stable")[cols]


def expressed_effects(needs: pd.DataFrame) -> pd.DataFrame:
    """The needs someone spoke of, in ranking order: what was said raised the level, or why it did not."""
    return needs[needs["obs_count"] > 0]


def quotations(c: Consultation) -> pd.DataFrame:
    """The quotations the officer selected, with where and how they were said (never who)."""
    rows = []
    r = c.respondents[c.respondents["quoted"].astype(bool) & (c.respondents["comment"].astype(str) != "")]
    rows += [{"text": q.comment, "method": f"questionnaire aux {q.public}", "date": q.date, "code_qp": q.code_qp,
              "insee_com": q.insee_com} for q in r.itertuples()]
    for w in c.walks:
        s = w.stops[w.stops["quoted"] & (w.stops["comment"] != "")]
        rows += [{"text": q.comment, "method": f"marche exploratoire, étape {q.stop}", "date": q.date,
                  "code_qp": q.code_qp, "insee_com": q.insee_com} for q in s.itertuples()]
    for m in c.meetings.itertuples():
        rows += [{"text": q, "method": m.kind, "date": m.date, "code_qp": m.code_qp, "insee_com": m.insee_com}
                 for q in m.quotes]
    return pd.DataFrame(rows, columns=["text", "method", "date", "code_qp", "insee_com"])


def stops(c: Consultation) -> gpd.GeoDataFrame:
    """Every stop of every walk, with its walk's name (for the list per QPV and the map)."""
    frames = [w.stops for w in c.walks if len(w.stops)]
    if not frames:
        return gpd.GeoDataFrame(columns=STOP_COLUMNS, geometry="geometry", crs="EPSG:2154")
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs="EPSG:2154")

