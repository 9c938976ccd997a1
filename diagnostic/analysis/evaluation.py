"""Evaluation of a running mediation service (« évaluer ») from its activity log.

Indicators for a period, each beside the previous period: a run of whole
months is compared with the same number of months just before, any other
span with the same number of days just before. All tables are built here;
the notebook, the CLI and ``evaluation.json`` read the same objects.

Social utility (tradition of the CIV 2009 evaluation guide and of France
Médiation), from the fields of the log:

* tranquillité publique — conflicts handled (``activite`` = conflit) and the
  share resolved (``issue`` = résolu); présence active in the espace public
  and transports domains;
* lien social — concertation and collective projects; hours of présence
  active (``duree_min``); monthly coverage of the QPVs by présence;
* accès aux droits — hand-offs (mise en relation); the share towards a partner
  of the registry (``partenaire``); interventions in the accès aux droits,
  santé and emploi domains;
* relations avec les institutions — technical-watch reports
  (``service_signale``), share resolved and median delay
  (``date_signalement`` → ``date_resolution``), distinct partners and services.

Publication mode (statistical secrecy) masks every count from 1 to
``threshold - 1`` interventions and everything computed from it (shares,
delays, changes), then masks more cells until no small count can be recomputed
from what is published — every table, key figure, share and sentence, with
row, column and cross-table differences (:mod:`diagnostic.analysis.disclosure`); the
document is refused if the final audit still recomputes one. Zero is shown: it
identifies no one. Places are never finer than a 250 m grid cell holding at
least ``threshold`` interventions, the list of open reports is left out, a
service signalled is named only when it is a partner of the registry (the
others are counted under « autre service »), and data-quality warnings give
no count. A threshold below 3 is refused. Internal mode shows everything (100 m
grid) and the report says « document interne » on every page.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from diagnostic import __version__
from diagnostic._fs import write_atomic
from diagnostic.analysis import disclosure
from diagnostic.analysis.disclosure import Cell
from diagnostic.errors import CatalogError, ParameterError
from diagnostic.io.reference import DOMAINS
from diagnostic.io.sources.activity import ACTIVITIES, OUTCOMES, SUBTYPES, partner_names
from diagnostic.options import DEFAULT_THRESHOLD, EVALUATION_MODES
from diagnostic.text import fold

MODES = EVALUATION_MODES
#: The folder of a commune's evaluations, inside its diagnostic folder: ``<output>/<code>/evaluation/``.
FOLDER = "evaluation"
#: The name (before ``.html``, ``.json``, ``.ipynb``, ``.pdf``) of each mode's files: the internal
#: edition never overwrites the publication one.
STEMS = {"publication": "evaluation", "interne": "evaluation_interne"}
#: Smallest threshold a publishable document may use: below it, counts of one or two people are shown.
MIN_THRESHOLD = 3
OTHER_SERVICE = "Autre service"
#: What a publishable document says of the log's data-quality warnings (theirs quote raw counts).
QUALITY_NOTE = ("Le journal d'activité comporte des remarques sur la qualité des données, détaillées dans la "
                "version interne (leurs effectifs ne sont pas publiés).")
GRID_M = {"publication": 250.0, "interne": 100.0}
WEEKDAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
MONTHS = ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."]
MASKED = "masqué"
RIGHTS_DOMAINS = ("acces_droits", "sante", "emploi")
TRANQUILLITY_DOMAINS = ("espace_public", "transports")


def other_editions(mode: str) -> list[str]:
    """The files of the other modes' evaluations, which an evaluation in ``mode`` leaves in place."""
    return [f"{stem}{suffix}" for other, stem in STEMS.items() if other != mode
            for suffix in (".html", ".json", ".ipynb", ".pdf")]


@dataclass(frozen=True)
class Period:
    """An inclusive span of days."""

    start: dt.date
    end: dt.date

    @classmethod
    def parse(cls, date_from: str | dt.date, date_to: str | dt.date) -> Period:
        """From ISO dates (``AAAA-MM-JJ``); a French error if unreadable or reversed."""
        days = []
        for name, value in (("--from", date_from), ("--to", date_to)):
            try:
                days.append(value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)))
            except ValueError:
                raise ParameterError(
                    f"la date {name} « {value} » n'est pas une date ISO valide.",
                    hint="écrivez-la AAAA-MM-JJ, par exemple 2025-01-01.",
                ) from None
        if days[0] > days[1]:
            raise ParameterError(
                f"la période commence ({days[0]:%d/%m/%Y}) après sa fin ({days[1]:%d/%m/%Y}).",
                hint="--from doit précéder ou égaler --to.",
            )
        return cls(days[0], days[1])

    @property
    def whole_months(self) -> int:
        """Number of calendar months covered exactly, 0 if the span is not whole months."""
        last = calendar.monthrange(self.end.year, self.end.month)[1]
        if self.start.day != 1 or self.end.day != last:
            return 0
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month + 1

    def previous(self) -> Period:
        """The span of the same length just before (same number of months when whole months)."""
        end = self.start - dt.timedelta(days=1)
        if months := self.whole_months:
            index = self.start.year * 12 + self.start.month - 1 - months
            return Period(dt.date(index // 12, index % 12 + 1, 1), end)
        return Period(self.start - (self.end - self.start) - dt.timedelta(days=1), end)

    def contains(self, dates: pd.Series) -> pd.Series:
        return (dates >= pd.Timestamp(self.start)) & (dates <= pd.Timestamp(self.end))

    def months(self) -> list[pd.Period]:
        return list(pd.period_range(self.start, self.end, freq="M"))

    def label(self) -> str:
        return f"du {self.start:%d/%m/%Y} au {self.end:%d/%m/%Y}"

    def as_dict(self) -> dict[str, str]:
        return {"debut": self.start.isoformat(), "fin": self.end.isoformat()}


@dataclass
class Table:
    """A French table, with the count columns subject to secrecy and what derives from them."""

    key: str
    title: str
    frame: pd.DataFrame
    counts: tuple[str, ...] = ()
    derived: dict[str, tuple[str, ...]] = field(default_factory=dict)
    masked: pd.DataFrame | None = None
    #: The records each published figure rests on: (row position, column) → sets (two for a share).
    sets: dict[tuple[int, str], tuple[frozenset, ...]] = field(default_factory=dict)

    def is_masked(self) -> pd.DataFrame:
        if self.masked is None:
            return pd.DataFrame(False, index=self.frame.index, columns=self.frame.columns)
        return self.masked


# --- slicing -----------------------------------------------------------------------------


def slice_log(log: pd.DataFrame, qpv_codes: list[str], commune: str, operator: str | None = None) -> pd.DataFrame:
    """Interventions in ``commune`` or one of its QPVs (a QPV may span communes), for one operator."""
    keep = (log["insee_com"] == commune) | log["code_qp"].isin(qpv_codes)
    if operator:
        wanted = operator.strip().casefold()
        keep &= log["operator"].str.casefold() == wanted
    return log[keep]


# --- tables --------------------------------------------------------------------------------


def _groups(log: pd.DataFrame, key: str) -> dict[Any, frozenset]:
    """The records (log index labels) of each value of ``key``."""
    return {k: frozenset(v) for k, v in log.groupby(key).groups.items()} if len(log) else {}


_NONE: frozenset = frozenset()


def _keep_rows(table: Table, keep: pd.Series) -> Table:
    """The rows of ``table`` where ``keep`` holds, renumbered, with their record sets."""
    positions = [i for i, k in enumerate(keep.to_numpy()) if k]
    new = {old: i for i, old in enumerate(positions)}
    table.frame = table.frame[keep.to_numpy()].reset_index(drop=True)
    table.sets = {(new[r], c): v for (r, c), v in table.sets.items() if r in new}
    return table


def _change(current: pd.Series, previous: pd.Series) -> pd.Series:
    """Change in percent; missing when the previous count is zero."""
    return ((current - previous) / previous.where(previous > 0) * 100).round(1)


def _compare(cur: pd.DataFrame, prev: pd.DataFrame, key: str, labels: dict[str, str], title: str,
             table_key: str, first: str) -> Table:
    """Counts per category in both periods, with the change."""
    now = cur[key].value_counts().reindex(list(labels), fill_value=0)
    before = prev[key].value_counts().reindex(list(labels), fill_value=0)
    frame = pd.DataFrame({
        first: list(labels.values()),
        "Interventions": now.to_numpy(),
        "Période précédente": before.to_numpy(),
        "Évolution (%)": _change(now, before).to_numpy(),
    })
    sets_now, sets_before = _groups(cur, key), _groups(prev, key)
    sets = {}
    for i, label in enumerate(labels):
        a, b = sets_now.get(label, _NONE), sets_before.get(label, _NONE)
        sets |= {(i, "Interventions"): (a,), (i, "Période précédente"): (b,), (i, "Évolution (%)"): (a, b)}
    return Table(table_key, title, frame, ("Interventions", "Période précédente"),
                 {"Évolution (%)": ("Interventions", "Période précédente")}, sets=sets)


def activity_table(cur: pd.DataFrame, prev: pd.DataFrame) -> Table:
    """Interventions by activity, with total hours."""
    table = _compare(cur, prev, "activity", ACTIVITIES, "Interventions par activité", "activite", "Activité")
    hours = (cur.groupby("activity")["duration_min"].sum() / 60).reindex(list(ACTIVITIES), fill_value=0)
    table.frame["Heures"] = hours.round(0).to_numpy()
    table.derived["Heures"] = ("Interventions",)
    return table


def place_table(cur: pd.DataFrame, prev: pd.DataFrame, qpv: pd.DataFrame) -> Table:
    """Interventions by QPV, outside the QPVs, and without a place."""
    twice = set(qpv["lib_qp"][qpv["lib_qp"].duplicated()])
    labels = {code: f"{name} ({code})" if name in twice else name for code, name in zip(qpv["code_qp"], qpv["lib_qp"])}
    labels |= {"hors_qpv": "Hors QPV", "sans_lieu": "Lieu non précisé"}

    def place(log: pd.DataFrame) -> pd.DataFrame:
        located = log.geometry.notna() if isinstance(log, gpd.GeoDataFrame) else pd.Series(False, index=log.index)
        where = log["code_qp"].where(log["code_qp"] != "", np.where(located, "hors_qpv", "sans_lieu"))
        return pd.DataFrame({"place": where})

    table = _compare(place(cur).set_index(cur.index), place(prev).set_index(prev.index), "place", labels,
                     "Interventions par lieu", "lieux", "Lieu")
    total = table.frame["Interventions"].sum()
    table.frame["Part (%)"] = (table.frame["Interventions"] / total * 100).round(1) if total else np.nan
    table.derived["Part (%)"] = ("Interventions",)
    everything = frozenset(cur.index)
    for i in range(len(table.frame)):
        table.sets[(i, "Part (%)")] = (table.sets[(i, "Interventions")][0], everything)
    if not table.frame.loc[table.frame["Lieu"] == "Lieu non précisé", ["Interventions", "Période précédente"]].any(axis=None):
        table = _keep_rows(table, table.frame["Lieu"] != "Lieu non précisé")
    return table


def hour_table(cur: pd.DataFrame, prev: pd.DataFrame) -> Table:
    """Interventions by starting hour, from the first to the last hour worked in either period."""
    hours = pd.concat([cur["hour"], prev["hour"]])
    span = range(int(hours.min()), int(hours.max()) + 1) if len(hours) else range(0)
    labels = {h: f"{h:02d} h" for h in span}
    return _compare(cur, prev, "hour", labels, "Interventions par heure de début", "heures", "Heure")


def weekday_table(cur: pd.DataFrame, prev: pd.DataFrame) -> Table:
    """Interventions by day of the week."""
    labels = dict(enumerate(WEEKDAYS))
    return _compare(cur, prev, "weekday", labels, "Interventions par jour de la semaine", "jours", "Jour")


def conflict_table(cur: pd.DataFrame, prev: pd.DataFrame) -> Table:
    """Conflicts by kind (temps réel, navette, table ronde) and outcome."""
    kinds = SUBTYPES["conflit"] | {"": "Non précisé"}
    now, before = cur[cur["activity"] == "conflit"], prev[prev["activity"] == "conflit"]
    outcomes = OUTCOMES | {"": "Issue non renseignée"}
    grid = pd.crosstab(now["subtype"], now["outcome"]).reindex(index=list(kinds), columns=list(outcomes), fill_value=0)
    frame = pd.DataFrame({"Type de conflit": list(kinds.values()), "Conflits": grid.sum(axis=1).to_numpy()})
    for key, label in outcomes.items():
        frame[label] = grid[key].to_numpy()
    frame["Part résolue (%)"] = (frame["Résolu"] / frame["Conflits"].where(frame["Conflits"] > 0) * 100).round(1)
    frame["Période précédente"] = before["subtype"].value_counts().reindex(list(kinds), fill_value=0).to_numpy()
    by_kind, by_cell, by_kind_before = _groups(now, "subtype"), _groups(now, ["subtype", "outcome"]), _groups(before, "subtype")
    sets = {}
    for i, kind in enumerate(kinds):
        every = by_kind.get(kind, _NONE)
        sets |= {(i, "Conflits"): (every,), (i, "Période précédente"): (by_kind_before.get(kind, _NONE),)}
        for key, label in outcomes.items():
            sets[(i, label)] = (by_cell.get((kind, key), _NONE),)
        sets[(i, "Part résolue (%)")] = (by_cell.get((kind, "resolu"), _NONE), every)
    table = Table("conflits", "Conflits traités et leur issue", frame, (), {"Part résolue (%)": ("Conflits", "Résolu")},
                  sets=sets)
    keep = frame[["Conflits", "Période précédente"]].sum(axis=1) > 0
    table = _keep_rows(table, keep | (frame["Type de conflit"] != "Non précisé"))
    if not table.frame["Issue non renseignée"].any():
        table.frame = table.frame.drop(columns="Issue non renseignée")
        table.sets = {k: v for k, v in table.sets.items() if k[1] != "Issue non renseignée"}
    table.counts = tuple(c for c in table.frame.columns if c not in ("Type de conflit", "Part résolue (%)"))
    return table


def _partner_label(ids: pd.Series, known: pd.Series, names: dict[str, str]) -> pd.Series:
    label = ids.map(lambda i: names.get(i, i))
    label = label.where(known | (ids == ""), ids + " (hors registre)")
    return label.where(ids != "", "Partenaire non précisé")


def handoff_table(cur: pd.DataFrame, prev: pd.DataFrame, names: dict[str, str]) -> Table:
    """Hand-offs (mise en relation) by partner, with the main domain."""
    now, before = (log[log["activity"] == "mise_en_relation"] for log in (cur, prev))
    now = now.assign(partner=_partner_label(now["partner_id"], now["partner_known"], names))
    before = before.assign(partner=_partner_label(before["partner_id"], before["partner_known"], names))
    order = now["partner"].value_counts()
    labels = {p: p for p in list(order.index) + sorted(set(before["partner"]) - set(order.index))}
    table = _compare(now, before, "partner", labels, "Mises en relation par partenaire", "mises_en_relation",
                     "Partenaire")
    main = now[now["domain"] != ""].groupby("partner")["domain"].agg(lambda s: s.mode().iloc[0])
    table.frame["Domaine principal"] = table.frame["Partenaire"].map(main).map(DOMAINS).fillna("")
    table.frame = table.frame.rename(columns={"Interventions": "Mises en relation"})
    table.counts = ("Mises en relation", "Période précédente")
    table.derived = {"Évolution (%)": table.counts}
    table.sets = {(r, "Mises en relation" if c == "Interventions" else c): v for (r, c), v in table.sets.items()}
    return table


def public_log(log: pd.DataFrame, names: dict[str, str], declared: list[str] = ()) -> pd.DataFrame:
    """The log as a publishable document may show it: no free text verbatim.

    A service signalled is named only when it is declared in the catalogue
    (``services_signales:`` of the activity source) or is a partner of the
    registry (by identifier or name, a trailing « (…) » ignored); any other is
    counted under « Autre service ». A partner identifier outside the registry
    is shown as « Partenaire (hors registre) », never as typed.
    """
    known = {fold(v): v for v in names.values()} | {fold(k): names[k] for k in names}
    known |= {fold(v): str(v) for v in declared}

    def service(value: str) -> str:
        if value == "":
            return ""
        return known.get(fold(value)) or known.get(fold(value.split(" (")[0])) or OTHER_SERVICE

    partner = log["partner_id"].where(log["partner_known"] | (log["partner_id"] == ""), "Partenaire")
    return log.assign(service=log["service"].map(service), partner_id=partner)


def watch_reports(log: pd.DataFrame, end: dt.date) -> pd.DataFrame:
    """Technical-watch reports with their state at the end of the period and delays in days."""
    reports = log[(log["activity"] == "veille") & (log["service"] != "")]
    stop = pd.Timestamp(end)
    resolved = reports["resolved_on"].notna() & (reports["resolved_on"] <= stop)
    dropped = ~resolved & (reports["outcome"] == "sans_suite")
    return pd.DataFrame({
        "service": reports["service"],
        "code_qp": reports["code_qp"],
        "reported_on": reports["reported_on"],
        "resolved": resolved,
        "open": ~resolved & ~dropped,
        "delay_days": (reports["resolved_on"] - reports["reported_on"]).dt.days.where(resolved),
        "age_days": (stop - reports["reported_on"]).dt.days.clip(lower=0),
    }, index=reports.index)


def watch_table(cur: pd.DataFrame, end: dt.date) -> Table:
    """Technical-watch follow-up by service notified: reports, resolved, delays, still open."""
    reports = watch_reports(cur, end)
    groups = reports.groupby("service")
    frame = pd.DataFrame({
        "Signalements": groups.size(),
        "Résolus": groups["resolved"].sum(),
        "Délai médian (jours)": groups["delay_days"].median(),
        "En attente": groups["open"].sum(),
        "Plus ancienne attente (jours)": reports[reports["open"]].groupby("service")["age_days"].max(),
    })
    frame = frame.sort_values("Signalements", ascending=False, kind="stable")
    frame.insert(2, "Part résolue (%)", (frame["Résolus"] / frame["Signalements"] * 100).round(1))
    frame = frame.rename_axis("Service signalé").reset_index()
    frame["En attente"] = frame["En attente"].astype(int)
    every, resolved = _groups(reports, "service"), _groups(reports[reports["resolved"]], "service")
    waiting = _groups(reports[reports["open"]], "service")
    sets = {}
    for i, service in enumerate(frame["Service signalé"]):
        a, b = every.get(service, _NONE), resolved.get(service, _NONE)
        sets |= {(i, "Signalements"): (a,), (i, "Résolus"): (b,), (i, "Part résolue (%)"): (b, a),
                 (i, "En attente"): (waiting.get(service, _NONE),)}
    return Table("veille", "Suivi des signalements de veille technique", frame,
                 ("Signalements", "Résolus", "En attente"),
                 {"Part résolue (%)": ("Signalements", "Résolus"), "Délai médian (jours)": ("Résolus",),
                  "Plus ancienne attente (jours)": ("En attente",)}, sets=sets)


def open_reports_table(cur: pd.DataFrame, end: dt.date, qpv: pd.DataFrame) -> Table:
    """Reports still open at the end of the period, oldest first (internal mode only)."""
    reports = watch_reports(cur, end)
    reports = reports[reports["open"]].sort_values("reported_on")
    names = dict(zip(qpv["code_qp"], qpv["lib_qp"]))
    frame = pd.DataFrame({
        "Signalé le": reports["reported_on"].dt.strftime("%d/%m/%Y"),
        "Service signalé": reports["service"],
        "Lieu": reports["code_qp"].map(names).fillna("Hors QPV"),
        "Attente (jours)": reports["age_days"],
    }).reset_index(drop=True)
    return Table("signalements_en_attente", "Signalements en attente à la fin de la période", frame)


def coverage_table(cur: pd.DataFrame, period: Period, qpv: pd.DataFrame) -> Table:
    """For each month, the QPVs with at least one présence active, and the share covered."""
    presence = cur[(cur["activity"] == "presence") & cur["code_qp"].isin(qpv["code_qp"])]
    months = presence["date"].dt.to_period("M")
    covered = presence.groupby(months)["code_qp"].nunique().reindex(period.months(), fill_value=0)
    total = len(qpv)
    frame = pd.DataFrame({
        "Mois": [f"{MONTHS[m.month - 1]} {m.year}" for m in covered.index],
        "QPV couverts": covered.to_numpy(),
        "QPV de la commune": total,
        "Part couverte (%)": (covered / total * 100).round(1).to_numpy() if total else np.nan,
    })
    return Table("couverture", "Couverture des QPV par la présence active, mois par mois", frame)


def presence_table(cur: pd.DataFrame, period: Period, qpv: pd.DataFrame) -> Table:
    """Présence active per QPV and month."""
    presence = cur[(cur["activity"] == "presence") & cur["code_qp"].isin(qpv["code_qp"])]
    grid = pd.crosstab(presence["code_qp"], presence["date"].dt.to_period("M"))
    grid = grid.reindex(index=list(qpv["code_qp"]), columns=period.months(), fill_value=0)
    grid.columns = [f"{MONTHS[m.month - 1]} {m.year}" for m in grid.columns]
    frame = grid.reset_index(drop=True)
    frame.insert(0, "QPV", list(qpv["lib_qp"]))
    cells = _groups(presence.assign(month=presence["date"].dt.to_period("M")), ["code_qp", "month"])
    sets = {(i, label): (cells.get((code, month), _NONE),)
            for i, code in enumerate(qpv["code_qp"]) for month, label in zip(period.months(), grid.columns)}
    return Table("presence_par_qpv", "Présences actives par QPV et par mois", frame, tuple(grid.columns), sets=sets)


def utility_table(cur: pd.DataFrame, prev: pd.DataFrame, period: Period, previous: Period,
                  qpv: pd.DataFrame) -> Table:
    """Social-utility indicators in four dimensions, from the fields of the log (see module doc)."""
    rows = []
    for log, span, suffix in ((cur, period, ""), (prev, previous, "_prec")):
        rows.append(_utility_values(log, span, qpv, suffix))
    frame = pd.DataFrame(rows[0]).merge(pd.DataFrame(rows[1]), on=["Dimension", "Indicateur", "Calcul"])
    sets = {}
    for i, (now, before) in enumerate(zip(frame["_sets"], frame["_sets_prec"])):
        if now is not None:
            sets |= {(i, "Valeur"): now, (i, "Période précédente"): before}
    frame = frame[["Dimension", "Indicateur", "Valeur", "Période précédente", "Calcul", "_base", "_base_prec"]]
    return Table("utilite_sociale", "Indicateurs d'utilité sociale", frame, ("_base", "_base_prec"),
                 {"Valeur": ("_base",), "Période précédente": ("_base_prec",)}, sets=sets)


def _share(part: float, whole: float) -> float:
    return round(part / whole * 100, 1) if whole else np.nan


def _utility_values(log: pd.DataFrame, span: Period, qpv: pd.DataFrame, suffix: str) -> list[dict[str, Any]]:
    act = log["activity"]
    conflicts = log[act == "conflit"]
    presence = log[act == "presence"]
    handoffs = log[act == "mise_en_relation"]
    reports = watch_reports(log, span.end)
    resolved_conflicts = int((conflicts["outcome"] == "resolu").sum())
    street = presence["domain"].isin(TRANQUILLITY_DOMAINS)
    rights = log["domain"].isin(RIGHTS_DOMAINS)
    cover = coverage_table(log, span, qpv).frame["Part couverte (%)"]
    partners = set(log.loc[log["partner_id"] != "", "partner_id"]) | set(reports["service"])
    value, previous = "Valeur" if not suffix else "Période précédente", f"_base{suffix}"

    def ids(frame: pd.DataFrame) -> frozenset:
        return frozenset(frame.index)

    sets = {
        "Conflits traités": (ids(conflicts),),
        "Part des conflits résolus (%)": (ids(conflicts[conflicts["outcome"] == "resolu"]), ids(conflicts)),
        "Présences actives dans l'espace public et les transports": (ids(presence[street]),),
        "Actions de concertation et projets collectifs": (ids(log[act == "concertation"]),),
        "Mises en relation avec un partenaire": (ids(handoffs),),
        "Part vers un partenaire du registre (%)": (ids(handoffs[handoffs["partner_known"]]), ids(handoffs)),
        "Interventions en accès aux droits, santé, emploi": (ids(log[rights]),),
        "Dysfonctionnements signalés aux services": (ids(reports),),
        "Part des signalements résolus (%)": (ids(reports[reports["resolved"]]), ids(reports)),
    }
    items = [
        ("Tranquillité publique", "Conflits traités", len(conflicts), len(conflicts), "interventions de type conflit"),
        ("Tranquillité publique", "Part des conflits résolus (%)", _share(resolved_conflicts, len(conflicts)),
         len(conflicts), "conflits dont l'issue est « résolu », parmi les conflits traités"),
        ("Tranquillité publique", "Présences actives dans l'espace public et les transports", int(street.sum()),
         int(street.sum()), "présences actives dans l'espace public ou les transports"),
        ("Lien social", "Actions de concertation et projets collectifs", int((act == "concertation").sum()),
         int((act == "concertation").sum()), "interventions de concertation ou de projet collectif"),
        ("Lien social", "Heures de présence active de proximité", round(presence["duration_min"].sum() / 60),
         len(presence), "somme des durées des présences actives, en heures"),
        ("Lien social", "QPV couverts chaque mois par la présence (%, moyenne)",
         round(float(cover.mean()), 1) if len(cover) else np.nan, len(presence),
         "part des QPV ayant au moins une présence active dans le mois"),
        ("Accès aux droits", "Mises en relation avec un partenaire", len(handoffs), len(handoffs),
         "interventions de mise en relation avec un partenaire"),
        ("Accès aux droits", "Part vers un partenaire du registre (%)",
         _share(int(handoffs["partner_known"].sum()), len(handoffs)), len(handoffs),
         "partenaire présent dans le registre des partenaires"),
        ("Accès aux droits", "Interventions en accès aux droits, santé, emploi", int(rights.sum()), int(rights.sum()),
         "interventions en accès aux droits, santé ou emploi"),
        ("Relations avec les institutions", "Dysfonctionnements signalés aux services", len(reports), len(reports),
         "veilles techniques signalées à un service"),
        ("Relations avec les institutions", "Part des signalements résolus (%)",
         _share(int(reports["resolved"].sum()), len(reports)), len(reports),
         "signalements résolus au plus tard à la fin de la période"),
        ("Relations avec les institutions", "Délai médian de résolution (jours)",
         float(reports["delay_days"].median()) if reports["resolved"].any() else np.nan,
         int(reports["resolved"].sum()), "jours entre le signalement et sa résolution"),
        ("Relations avec les institutions", "Partenaires et services mobilisés", len(partners),
         len(handoffs) + len(reports), "partenaires et services distincts mobilisés"),
    ]
    return [{"Dimension": d, "Indicateur": i, value: v, previous: b, "Calcul": c, f"_sets{suffix}": sets.get(i)}
            for d, i, v, b, c in items]


# --- secrecy -------------------------------------------------------------------------------


def cells(tables: dict[str, Table], headline: dict[str, tuple[frozenset, ...]]) -> list[Cell]:
    """Every published count of the tables and key figures, as disclosure cells."""
    out = [Cell((key, row, column), records) for key, t in tables.items()
           for (row, column), sets in t.sets.items() for records in sets]
    return out + [Cell(("chiffres_cles", key), records) for key, sets in headline.items() for records in sets]


def apply_masks(table: Table, locations: set) -> Table:
    """``table`` with the cells at ``locations`` masked, and every cell derived from a masked count."""
    frame = table.frame.copy()
    masked = pd.DataFrame(False, index=frame.index, columns=frame.columns)
    for location in locations:
        if len(location) == 3 and location[0] == table.key and location[2] in masked.columns:
            masked.loc[location[1], location[2]] = True
    for column, sources in table.derived.items():
        masked[column] |= masked[list(sources)].any(axis=1)
    frame = frame.astype(object).where(~masked, None)
    return replace(table, frame=frame, masked=masked)


def suppress(table: Table, threshold: int) -> Table:
    """One table protected on its own: primary and secondary suppression over its record sets."""
    return apply_masks(table, disclosure.protect(cells({table.key: table}, {}), threshold))


def masked_count(tables: dict[str, Table]) -> int:
    """How many visible cells were masked (hidden helper columns excluded)."""
    return int(sum(t.is_masked()[[c for c in t.frame.columns if not c.startswith("_")]].to_numpy().sum()
                   for t in tables.values()))


# --- heat map grid -------------------------------------------------------------------------


def heat_cells(log: gpd.GeoDataFrame, cell_m: float) -> tuple[gpd.GeoDataFrame, list[frozenset]]:
    """Counts of geolocated interventions on square cells, and the records of each cell."""
    points = log[log.geometry.notna()] if len(log) else log
    if not len(points):
        return gpd.GeoDataFrame({"count": []}, geometry=[], crs=log.crs), []
    ix = np.floor(points.geometry.x / cell_m).astype(int)
    iy = np.floor(points.geometry.y / cell_m).astype(int)
    groups = pd.DataFrame({"ix": ix, "iy": iy}, index=points.index).groupby(["ix", "iy"]).groups
    keys = sorted(groups, key=lambda k: (-len(groups[k]), k))
    xs, ys = np.array([k[0] for k in keys]), np.array([k[1] for k in keys])
    cells = shapely.box(xs * cell_m, ys * cell_m, (xs + 1) * cell_m, (ys + 1) * cell_m)
    grid = gpd.GeoDataFrame({"count": [len(groups[k]) for k in keys]}, geometry=cells, crs=log.crs)
    return grid, [frozenset(groups[k]) for k in keys]


def heat_grid(log: gpd.GeoDataFrame, cell_m: float, threshold: int = 0) -> gpd.GeoDataFrame:
    """Counts of geolocated interventions on square cells; cells under ``threshold`` left out."""
    grid, _ = heat_cells(log, cell_m)
    return grid[grid["count"] >= threshold].reset_index(drop=True)


# --- the evaluation ------------------------------------------------------------------------


@dataclass
class Evaluation:
    """Every table and figure of one evaluation, already published or internal."""

    commune: str
    commune_name: str
    operator: str | None
    period: Period
    previous: Period
    mode: str
    threshold: int
    tables: dict[str, Table]
    headline: dict[str, Any]
    masked_figures: list[str]
    grid: gpd.GeoDataFrame
    cell_m: float
    area: gpd.GeoDataFrame
    qpv: gpd.GeoDataFrame
    geolocated: int | None
    total: int | None
    fictional: bool = False
    source: str = ""
    warnings: list[str] = field(default_factory=list)
    #: The earlier publications taken into account, and this one's record (publication mode).
    history: list[dict[str, Any]] = field(default_factory=list)
    record: dict[str, Any] | None = None
    earlier: int = 0
    #: False when the log holds no intervention of the previous period (it starts in the evaluated one):
    #: the previous period is then unknown, not zero.
    previous_logged: bool = True

    @property
    def internal(self) -> bool:
        return self.mode == "interne"

    @property
    def masked(self) -> int:
        return masked_count(self.tables)


def compute(log: gpd.GeoDataFrame, period: Period, qpv: pd.DataFrame,
            names: dict[str, str] | None = None) -> dict[str, Table]:
    """Every indicator table of ``period`` against the previous one, before any secrecy."""
    previous = period.previous()
    cur, prev = log[period.contains(log["date"])], log[previous.contains(log["date"])]
    tables = [
        activity_table(cur, prev), place_table(cur, prev, qpv), hour_table(cur, prev),
        weekday_table(cur, prev), conflict_table(cur, prev), handoff_table(cur, prev, names or {}),
        watch_table(cur, period.end), open_reports_table(cur, period.end, qpv),
        coverage_table(cur, period, qpv), presence_table(cur, period, qpv),
        utility_table(cur, prev, period, previous, qpv),
    ]
    return {t.key: t for t in tables}


def key_values(tables: dict[str, Table]) -> dict[str, tuple[Any, int]]:
    """The headline figures, each with the count it rests on, from the tables before secrecy."""
    act = tables["activite"].frame
    util = tables["utilite_sociale"].frame.set_index("Indicateur")
    now, before = int(act["Interventions"].sum()), int(act["Période précédente"].sum())
    still_open = int(tables["veille"].frame["En attente"].sum())

    def indicator(label: str) -> tuple[Any, int]:
        return util.loc[label, "Valeur"], int(util.loc[label, "_base"])

    return {
        "interventions": (now, now),
        "interventions_periode_precedente": (before, before),
        "evolution_pct": (round((now - before) / before * 100, 1) if before else None, min(now, before)),
        "heures_presence": indicator("Heures de présence active de proximité"),
        "couverture_qpv_pct": indicator("QPV couverts chaque mois par la présence (%, moyenne)"),
        "conflits": indicator("Conflits traités"),
        "part_conflits_resolus_pct": indicator("Part des conflits résolus (%)"),
        "mises_en_relation": indicator("Mises en relation avec un partenaire"),
        "signalements": indicator("Dysfonctionnements signalés aux services"),
        "delai_median_jours": indicator("Délai médian de résolution (jours)"),
        "signalements_en_attente": (still_open, still_open),
    }


#: Key figures read from a row of the social-utility table (masked with it).
UTILITY_FIGURES = {
    "heures_presence": "Heures de présence active de proximité",
    "couverture_qpv_pct": "QPV couverts chaque mois par la présence (%, moyenne)",
    "conflits": "Conflits traités",
    "part_conflits_resolus_pct": "Part des conflits résolus (%)",
    "mises_en_relation": "Mises en relation avec un partenaire",
    "signalements": "Dysfonctionnements signalés aux services",
    "delai_median_jours": "Délai médian de résolution (jours)",
}


def key_sets(tables: dict[str, Table]) -> dict[str, tuple[frozenset, ...]]:
    """The records each key figure counts (a change: both periods), from the tables before secrecy."""
    def union(table: str, column: str) -> frozenset:
        return frozenset().union(*(v[0] for (_, c), v in tables[table].sets.items() if c == column))

    now, before = union("activite", "Interventions"), union("activite", "Période précédente")
    util = tables["utilite_sociale"]
    rows = {label: i for i, label in enumerate(util.frame["Indicateur"])}
    out = {"interventions": (now,), "interventions_periode_precedente": (before,), "evolution_pct": (now, before),
           "signalements_en_attente": (union("veille", "En attente"),)}
    for key, label in UTILITY_FIGURES.items():
        if (rows[label], "Valeur") in util.sets:
            out[key] = util.sets[(rows[label], "Valeur")]
    return out


def mask_values(values: dict[str, tuple[Any, int]], threshold: int) -> tuple[dict[str, Any], list[str]]:
    """Headline figures, ``None`` where masked (base count from 1 to threshold − 1) or not computable.

    Also returns the names of the masked ones, to tell « masqué » from « non calculable ».
    """
    masked = [k for k, (_, base) in values.items() if 0 < base < threshold]
    return {k: None if k in masked else _plain(v) for k, (v, _) in values.items()}, masked


def commune_log(data: Any, commune: str, operator: str | None = None) -> gpd.GeoDataFrame:
    """The log of ``commune`` (and its QPVs), for one operator; an operator with no intervention there is refused."""
    qpv = data.qpv_in(commune)
    log = slice_log(data.activity, list(qpv["code_qp"]), commune, operator)
    if operator and log.empty:
        known = sorted({o for o in slice_log(data.activity, list(qpv["code_qp"]), commune)["operator"] if o})
        raise ParameterError(f"aucune intervention de l'opérateur « {operator} » dans cette commune.",
                             hint="vérifiez la colonne « operateur » du journal d'activité"
                             + (f" ; opérateurs de la commune : {', '.join(known[:10])}." if known else "."))
    return log


def check_threshold(mode: str, threshold: int) -> None:
    """A publishable document needs a threshold of at least :data:`MIN_THRESHOLD` (code 22 otherwise)."""
    if int(threshold) < 1 or (mode == "publication" and int(threshold) < MIN_THRESHOLD):
        raise ParameterError(
            f"le seuil de secret {threshold} ne protège pas les petits effectifs : une version publiable demande "
            f"un seuil d'au moins {MIN_THRESHOLD} (défaut : {DEFAULT_THRESHOLD}).",
            hint="gardez le seuil par défaut, ou produisez un document interne (--mode interne), jamais diffusé.",
        )


def evaluate(
    data: Any,
    commune: str,
    date_from: str | dt.date,
    date_to: str | dt.date,
    *,
    operator: str | None = None,
    mode: str = "publication",
    threshold: int = DEFAULT_THRESHOLD,
    history: str | Path | None = None,
) -> Evaluation:
    """The evaluation of ``commune`` over a period, from a loaded :class:`TerritoryData`.

    ``history``: the record of the earlier publications (:data:`PUBLICATIONS`), which a
    publishable evaluation takes into account and extends.
    """
    if mode not in MODES:
        raise ParameterError(f"mode « {mode} » inconnu.", hint=f"modes possibles : {', '.join(MODES)}.")
    check_threshold(mode, threshold)
    if data.activity is None:
        raise CatalogError("le catalogue n'a pas de journal d'activité (rôle « activity »).",
                           path=data.catalog.path,
                           hint="ajoutez la source « activity: » (modèle : templates/journal_activite_modele.csv).")
    period = Period.parse(date_from, date_to)
    row = data.commune(commune)
    qpv = data.qpv_in(row["insee_com"]).sort_values("code_qp")
    log = commune_log(data, row["insee_com"], operator)
    history = read_history(history) if mode == "publication" else []
    masked: set | None = None
    threshold = int(threshold)
    names = partner_names(data.partners) if data.partners is not None else {}
    src = data.catalog.get("activity")
    if mode == "publication":
        log = public_log(log, names, list(src.options.get("services_signales") or []))
    tables = compute(log, period, qpv, names)
    cell = GRID_M[mode]
    cur = log[period.contains(log["date"])]
    report = next((r for r in data.reports if r.role == "activity"), None)
    warnings = list(report.warnings) if report else []
    geolocated, total = int(cur.geometry.notna().sum()), len(cur)
    if mode == "publication":
        tables.pop("signalements_en_attente")
        earlier = earlier_publications(log, qpv, names, period, operator, cell, history)
        tables, headline, masked_figures, grid, shown, masked = publish(tables, cur, cell, threshold, earlier)
        geolocated, total = (geolocated, total) if shown else (None, None)
        if warnings:
            warnings = [QUALITY_NOTE]
    else:
        headline, masked_figures = mask_values(key_values(tables), 0)
        grid = heat_grid(cur, cell)
    ev = Evaluation(
        commune=row["insee_com"], commune_name=row["lib_com"], operator=operator or None,
        period=period, previous=period.previous(), mode=mode, threshold=threshold,
        tables=tables, headline=headline, masked_figures=masked_figures,
        grid=grid, cell_m=cell,
        area=data.communes[data.communes["insee_com"] == row["insee_com"]], qpv=qpv,
        geolocated=geolocated, total=total,
        fictional=data.catalog.fictional, source=src.citation() if src else "",
        warnings=warnings, history=history,
        previous_logged=bool(period.previous().contains(log["date"]).any()),
    )
    if masked is not None:
        ev.record, ev.earlier = publication_record(ev, masked), len(earlier)
    return ev


def implied_masks(tables: dict[str, Table], masked: set, threshold: int) -> set:
    """``masked`` with everything masking implies: each figure computed from a masked count (a share, a delay, a
    change), a figure resting on 1 to ``threshold`` − 1 interventions even when it is not a count (an hours total,
    a median delay), and a key figure with the social-utility row that prints the same figure, both ways."""
    out = set(masked)
    util = tables["utilite_sociale"]
    rows = {label: i for i, label in enumerate(util.frame["Indicateur"])}
    for i, (now, before) in enumerate(zip(util.frame["_base"], util.frame["_base_prec"])):
        for base, column in ((now, "Valeur"), (before, "Période précédente")):
            if 0 < base < threshold:
                out.add(("utilite_sociale", i, column))
    out |= {("chiffres_cles", k) for k, (_, base) in key_values(tables).items() if 0 < base < threshold}
    for key, label in UTILITY_FIGURES.items():
        pair = {("chiffres_cles", key), ("utilite_sociale", rows[label], "Valeur")}
        if out & pair:
            out |= pair
    for key, t in tables.items():
        rows_, columns = np.nonzero(apply_masks(t, out).masked.to_numpy())
        out |= {(key, int(r), t.frame.columns[c]) for r, c in zip(rows_, columns)}
    return out


def document_cells(tables: dict[str, Table], cur: gpd.GeoDataFrame, cell_m: float, threshold: int
                   ) -> tuple[list[Cell], list[frozenset], list[int], gpd.GeoDataFrame]:
    """Every count a publishable document prints (tables, key figures, map cells, the map's sentence) as cells,
    the map cells left out (secret, never printed), the map cells shown and the grid."""
    grid, grid_sets = heat_cells(cur, cell_m)
    shown = [i for i, records in enumerate(grid_sets) if len(records) >= threshold]
    hidden = [records for i, records in enumerate(grid_sets) if i not in shown]
    published = cells(tables, key_sets(tables)) + [Cell(("carte", i), grid_sets[i]) for i in shown]
    published += [Cell(("texte", "carte"), frozenset(cur.index[cur.geometry.notna()])),
                  Cell(("texte", "carte"), frozenset(cur.index))]
    return published, hidden, shown, grid


#: An earlier publication of the same service, as the audit sees it: its cells, its masked locations, its secrets.
Earlier = tuple[list[Cell], set, list[frozenset]]


def publish(tables: dict[str, Table], cur: gpd.GeoDataFrame, cell_m: float, threshold: int,
            earlier: list[Earlier] = ()
            ) -> tuple[dict[str, Table], dict[str, Any], list[str], gpd.GeoDataFrame, bool, set]:
    """Disclosure control over everything the publishable document prints, checked by the audit.

    ``earlier`` publications of the same service are printed already: their figures are
    published for good (never masked now), so this document masks what would let a
    reader recompute a small or masked count from both (two overlapping periods that
    differ by one intervention). Returns the masked tables, the key figures and those
    masked, the map grid (cells of at least ``threshold`` interventions that stay
    published), whether the map's sentence may give the geolocated and total counts,
    and the masked locations of this document (what its record keeps).
    """
    published, hidden, shown, grid = document_cells(tables, cur, cell_m, threshold)
    before = [c for cells_, _, _ in earlier for c in cells_]
    before_masked = set().union(*(m for _, m, _ in earlier))
    secret = hidden + [h for _, _, hs in earlier for h in hs]
    every = published + before
    fixed = {c.location for c in before}
    final = disclosure.protect(every, threshold, secret, close=lambda m: implied_masks(tables, m, threshold)
                               | before_masked, fixed=fixed)
    disclosure.check(every, final, threshold, secret, fixed)
    final = {loc for loc in final if loc not in before_masked}
    out = {key: apply_masks(t, final) for key, t in tables.items()}
    figures = {loc[1] for loc in final if loc[0] == "chiffres_cles"}
    values, _ = mask_values(key_values(tables), 0)
    headline = {k: None if k in figures else v for k, v in values.items()}
    kept = [i for i in shown if ("carte", i) not in final]
    return (out, headline, sorted(figures), grid.iloc[kept].reset_index(drop=True), ("texte", "carte") not in final,
            final)


# --- earlier publications ------------------------------------------------------------------


#: The record of a commune's publishable evaluations, kept in its evaluation folder: period, operator,
#: threshold and masked cells of each, so that a new period never undoes what an earlier one masked.
PUBLICATIONS = "publications.json"


def read_history(path: str | Path | None) -> list[dict[str, Any]]:
    """The earlier publications recorded at ``path`` (none when there is no record)."""
    if path is None or not Path(path).is_file():
        return []
    try:
        records = json.loads(Path(path).read_text(encoding="utf-8"))
        for r in records:
            Period.parse(r["periode"]["debut"], r["periode"]["fin"])
            int(r["seuil"]), list(r["masque"])
    except (ValueError, KeyError, TypeError, ParameterError):
        raise CatalogError("le registre des publications précédentes est illisible : le contrôle du secret ne peut "
                           "pas tenir compte des évaluations déjà publiées.", path=path,
                           hint="restaurez-le depuis une sauvegarde ; le supprimer fait oublier ces publications.",
                           ) from None
    return records


def earlier_publications(log: gpd.GeoDataFrame, qpv: pd.DataFrame, names: dict[str, str], period: Period,
                         operator: str | None, cell_m: float, history: list[dict[str, Any]]) -> list[Earlier]:
    """The cells of each earlier publication of the same operator (another period), recomputed from the log."""
    out = []
    for n, record in enumerate(history):
        span = Period.parse(record["periode"]["debut"], record["periode"]["fin"])
        if (record.get("operateur") or None) != (operator or None) or span == period:
            continue
        tables = compute(log, span, qpv, names)
        tables.pop("signalements_en_attente")
        published, hidden, _, _ = document_cells(tables, log[span.contains(log["date"])], cell_m, int(record["seuil"]))
        prefix = ("publication", n)
        out.append(([Cell(prefix + c.location, c.records) for c in published],
                    {prefix + tuple(loc) for loc in record["masque"]}, hidden))
    return out


def publication_record(ev: Evaluation, masked: set) -> dict[str, Any]:
    """What the record keeps of a publication: its period, operator, threshold and masked locations."""
    return {"periode": ev.period.as_dict(), "operateur": ev.operator, "seuil": ev.threshold,
            "masque": sorted(([_plain(v) for v in loc] for loc in masked), key=str)}


# --- output --------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _records(table: Table) -> list[dict[str, Any]]:
    columns = [c for c in table.frame.columns if not c.startswith("_")]
    return [{c: _plain(v) for c, v in zip(columns, row)} for row in table.frame[columns].itertuples(index=False)]


def evaluation_json(ev: Evaluation) -> dict[str, Any]:
    """What ``evaluation.json`` holds: the same tables and figures as the report (masked alike)."""
    return {
        "type": "evaluation_mediation",
        "version": __version__,
        "commune": {"code": ev.commune, "nom": ev.commune_name},
        "operateur": ev.operator,
        "periode": ev.period.as_dict(),
        "periode_precedente": ev.previous.as_dict(),
        "mode": ev.mode,
        "donnees_fictives": ev.fictional,
        "source": ev.source,
        "secret": {
            "seuil": ev.threshold,
            "applique": not ev.internal,
            "cellules_masquees": ev.masked,
            "maille_carte_m": ev.cell_m,
        },
        "chiffres_cles": ev.headline,
        "chiffres_cles_masques": ev.masked_figures,
        "interventions_geolocalisees": ev.geolocated,
        "tableaux": {k: {"titre": t.title, "lignes": _records(t)} for k, t in ev.tables.items()},
        "avertissements": ev.warnings,
    }


def write_json(ev: Evaluation, output_dir: str | Path) -> Path:
    """Write ``evaluation.json`` (``evaluation_interne.json`` in internal mode) into ``output_dir``.

    A publication also writes the record of publications (:data:`PUBLICATIONS`): the earlier
    ones and this one, which replaces an earlier record of the same period and operator.
    """
    path = Path(output_dir) / f"{STEMS[ev.mode]}.json"
    if ev.record is not None:
        same = (ev.record["periode"], ev.record["operateur"])
        records = [r for r in ev.history if (r["periode"], r.get("operateur")) != same] + [ev.record]
        write_atomic(Path(output_dir) / PUBLICATIONS, json.dumps(records, ensure_ascii=False, indent=1) + "\n")
    return write_atomic(path, json.dumps(evaluation_json(ev), ensure_ascii=False, indent=1) + "\n")
