"""The roadmap of a new mediation service (« accompagner »), from a commune's diagnostic.

Everything is read from the run's ``resultats.json`` — the framing (territories, publics,
objectives, hours, team), the recommended domains, funding and governance, the partner gaps
(« liens à créer ») — and from the editable rules of ``rules/feuille_de_route.yaml``: the calendar
from the decision to the first evaluation at 12 months, the job profiles, the first-year
training plan, the conventions to sign and the evaluation framework, whose indicators are the
ones :mod:`diagnostic.analysis.evaluation` computes (read from it, never listed twice). The
roadmap never re-decides what the diagnostic decided: the team size is ``cadrage.equipe``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from diagnostic import __version__, resources, text
from diagnostic._fs import write_atomic
from diagnostic.errors import CatalogError, MissingFileError, ValueFormatError
from diagnostic.io.catalog import read_yaml
from diagnostic.io.reference import DOMAINS

RULES = resources.path("rules/feuille_de_route.yaml")
RECOMMENDATION_RULES = resources.path("rules/recommandations.yaml")
#: The roadmap's folder inside the commune's folder: ``<output>/<code>/feuille_de_route/``.
FOLDER = "feuille_de_route"
STEM = "feuille_de_route"
#: The keys of ``resultats.json`` the roadmap reads.
NEEDED = ("commune", "cadrage", "recommandations")
AUDIENCES = {"mediateurs": "Médiateurs", "coordinateur": "Coordination", "equipe": "Toute l'équipe"}


@dataclass
class Roadmap:
    """The roadmap of one commune's new service: every table the report and the JSON show."""

    code: str
    commune: str
    fictional: bool
    decision: dt.date
    team: int
    mediators: int
    coordinator: bool
    coordinator_from: int
    territories: list[str]
    territory_codes: list[str]
    qpv_count: int
    population: float | None
    publics: str
    hours: str
    objectives: list[str]
    domains: list[str]
    funding: str
    governance: str
    calendar: pd.DataFrame
    profiles: list[dict[str, Any]]
    training: pd.DataFrame
    conventions: pd.DataFrame
    indicators: pd.DataFrame
    method: str
    warnings: list[str] = field(default_factory=list)
    #: The joint services of intercommunal quartiers the commune takes a share of (``decision.services_communs``).
    joint: list[dict[str, Any]] = field(default_factory=list)

    @property
    def start(self) -> dt.date:
        """The month the team starts on the ground."""
        return self.calendar.loc[self.calendar["jalon"] == "demarrage", "debut"].iloc[0]


# --- inputs --------------------------------------------------------------------------------


def results_path(value: str | Path) -> Path:
    """The ``resultats.json`` given, or the one inside the commune folder given (code 11 when absent)."""
    path = Path(value).expanduser()
    if path.is_dir():
        path = path / "resultats.json"
    if not path.is_file():
        raise MissingFileError("les résultats du diagnostic de la commune sont introuvables.", path=path,
                               hint="donnez le fichier resultats.json écrit par « diagnostic run » "
                                    "(DOSSIER/CODE/resultats.json) ou son dossier.")
    return path.resolve()


def read_results(path: str | Path) -> dict[str, Any]:
    """A run's ``resultats.json``, checked for the keys the roadmap reads (code 15 otherwise)."""
    path = results_path(path)
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueFormatError(f"le fichier de résultats n'est pas un JSON lisible ({exc}).", path=path,
                               hint="donnez le resultats.json tel que « diagnostic run » l'a écrit.") from None
    missing = [k for k in NEEDED if not isinstance(saved, dict) or k not in saved]
    if missing:
        raise ValueFormatError(f"le fichier de résultats n'a pas les rubriques {', '.join(missing)}.", path=path,
                               hint="donnez le resultats.json d'un diagnostic de commune (« diagnostic run »).")
    return saved


def load_rules(path: str | Path | None = None) -> dict[str, Any]:
    """The roadmap rules (code 10 when a required section is missing)."""
    path = Path(path) if path else RULES
    rules = read_yaml(path, "règles de la feuille de route")
    for key in ("calendrier", "profils", "formation", "conventions", "evaluation"):
        if not isinstance(rules, dict) or key not in rules:
            raise CatalogError(f"règles de la feuille de route : la rubrique « {key} » manque.", path=path,
                               hint="partez d'une copie de diagnostic/resources/rules/feuille_de_route.yaml.")
    ids = [s.get("id") for s in rules["calendrier"]]
    for step in rules["calendrier"]:
        unknown = set(step.get("apres") or []) - set(ids)
        if unknown:
            raise CatalogError(f"étape « {step.get('id')} » du calendrier : « apres » cite {', '.join(sorted(unknown))}, "
                               "qui n'est pas une étape.", path=path, hint=f"étapes : {', '.join(map(str, ids))}.")
        if any(not 1 <= int(m) <= 12 for m in step.get("fenetre") or []) or step.get("fenetre") == []:
            raise CatalogError(f"étape « {step.get('id')} » du calendrier : « fenetre » donne des mois de 1 à 12.",
                               path=path)
    if sum(1 for s in rules["calendrier"] if s.get("jalon") == "demarrage") != 1:
        raise CatalogError("le calendrier doit avoir exactement une étape « jalon: demarrage ».", path=path)
    evaluated = list(evaluation_indicators()["Indicateur"])
    unknown = set(rules["evaluation"].get("cibles") or {}) - set(evaluated)
    if unknown:
        raise CatalogError(f"règles de la feuille de route : cible pour un indicateur que l'évaluation ne calcule pas "
                           f"({', '.join(sorted(unknown))}).", path=path,
                           hint=f"indicateurs de l'évaluation : {', '.join(evaluated)}.")
    return rules


def coordinator_from(path: Path = RECOMMENDATION_RULES) -> int:
    """The team size from which one of the team is a coordinator (``team.supervisor_from`` of the recommendations)."""
    return int((read_yaml(path, "règles des préconisations").get("team") or {}).get("supervisor_from", 5))


def module_ids(rules: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The training modules by id (the structure's diagnostic names its training needs by them)."""
    rules = rules or load_rules()
    return {m["id"]: m for m in rules["formation"]["modules"]}


# --- calendar ------------------------------------------------------------------------------


def add_months(day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` after ``day``'s month."""
    index = day.year * 12 + day.month - 1 + int(months)
    return dt.date(index // 12, index % 12 + 1, 1)


def _in_window(day: dt.date, window: list[int]) -> dt.date:
    """The first month on or after ``day`` that falls inside ``window`` (months of the year)."""
    return next(add_months(day, k) for k in range(12) if add_months(day, k).month in window)


def calendar(steps: list[dict[str, Any]], decision: dt.date) -> pd.DataFrame:
    """Each step's start and end (first days of months), from the decision, dependencies and windows."""
    start0 = dt.date(decision.year, decision.month, 1)
    ends: dict[str, dt.date] = {}
    rows = []
    begun = None
    for step in steps:
        if "depuis_demarrage" in step:
            if begun is None:
                raise CatalogError(f"l'étape « {step['id']} » compte depuis le démarrage, qui doit la précéder.",
                                   path=RULES)
            start = add_months(begun, int(step["depuis_demarrage"]))
        else:
            start = add_months(start0, int(step.get("debut", 0)))
            for before in step.get("apres") or []:
                start = max(start, ends[before])
            if step.get("fenetre"):
                start = _in_window(start, [int(m) for m in step["fenetre"]])
        end = add_months(start, int(step.get("duree", 1)))
        ends[step["id"]] = end
        if step.get("jalon") == "demarrage":
            begun = start
        rows.append({"id": step["id"], "etape": step["libelle"], "qui": step.get("qui", ""), "debut": start,
                     "fin": end, "mois": _months_between(start0, start), "duree": int(step.get("duree", 1)),
                     "jalon": step.get("jalon", ""), "fenetre": list(step.get("fenetre") or []),
                     "detail": step.get("detail", "")})
    return pd.DataFrame(rows)


def _months_between(a: dt.date, b: dt.date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre")


def month_label(day: dt.date) -> str:
    """« mars 2026 »."""
    return f"{MONTHS[day.month - 1]} {day.year}"


def window_label(window: list[int]) -> str:
    """« de janvier à mars »; empty without a window."""
    if not window:
        return ""
    first = MONTHS[window[0] - 1]
    return f"{text.de(first)} à {MONTHS[window[-1] - 1]}" if len(window) > 1 else first


# --- the team and its profiles -------------------------------------------------------------


def recommended_domains(results: dict[str, Any]) -> list[str]:
    """The domains the diagnostic recommends an axis for, in its order of priority."""
    recs = sorted((r for r in results["recommandations"] if r.get("domaine") in DOMAINS),
                  key=lambda r: int(r.get("priorite") or 9))
    out: list[str] = []
    for r in recs:
        if r["domaine"] not in out:
            out.append(r["domaine"])
    return out


def _recommendation(results: dict[str, Any], rec_id: str) -> str:
    rec = next((r for r in results["recommandations"] if r.get("id") == rec_id), None)
    return str(rec["titre"]) if rec else ""


def _fill(template: str, context: dict[str, str]) -> str:
    return str(template).format(**context)


def profiles(rules: dict[str, Any], context: dict[str, str], mediators: int, coordinator: bool,
             domains: list[str]) -> list[dict[str, Any]]:
    """The job profiles of the team: mediators, and the coordinator when the team has one."""
    out = []
    wanted = [("mediateur", mediators)] + ([("coordinateur", 1)] if coordinator else [])
    for key, count in wanted:
        spec = rules["profils"][key]
        out.append({
            "id": key, "intitule": spec["intitule"], "postes": count,
            "mission": _fill(spec["mission"], context),
            "domaines": [DOMAINS[d] for d in domains],
            "territoires": context["territoires_liste"], "publics": context["publics"], "horaires": context["horaires"],
            "activites": [_fill(a, context) for a in spec["activites"]],
            "qualifications": spec["qualifications"], "contrat": spec["contrat"],
            "adulte_relais": spec.get("adulte_relais", ""),
            "part_terrain": spec.get("part_terrain"),
        })
    return out


def training_plan(rules: dict[str, Any], domains: list[str], mediators: int, coordinator: bool) -> pd.DataFrame:
    """First-year modules for this team: hours, who, when, and hours for everyone concerned."""
    people = {"mediateurs": mediators, "coordinateur": int(coordinator), "equipe": mediators + int(coordinator)}
    rows = []
    for m in rules["formation"]["modules"]:
        if m.get("domaines") and not set(m["domaines"]) & set(domains):
            continue
        who = people[m["pour"]]
        if not who:
            continue
        rows.append({"id": m["id"], "module": m["libelle"], "heures": int(m["heures"]),
                     "pour": AUDIENCES[m["pour"]], "quand": m.get("quand", ""), "personnes": who,
                     "heures_total": int(m["heures"]) * who})
    return pd.DataFrame(rows, columns=["id", "module", "heures", "pour", "quand", "personnes", "heures_total"])


def conventions(results: dict[str, Any], rules: dict[str, Any], due: dt.date) -> pd.DataFrame:
    """One convention per link to create of the diagnostic, with its object, the reason the diagnostic gives
    and the month it is signed by (``due``)."""
    links = ((results.get("partenariat") or {}).get("liens_a_creer")) or []
    texts = rules["conventions"]
    rows = []
    for link in links:
        parties = [p for p in (link.get("acteur"), link.get("partenaire")) if p]
        who = " et ".join(parties) or "à identifier"
        rows.append({"partenaires": who[:1].upper() + who[1:], "categorie": link.get("categorie", ""),
                     "objet": texts.get(link.get("motif"), texts.get("autre", "")),
                     "pourquoi": text.sentence(link.get("pourquoi", "")), "echeance": due})
    return pd.DataFrame(rows, columns=["partenaires", "categorie", "objet", "pourquoi", "echeance"])


# --- evaluation framework ------------------------------------------------------------------


def evaluation_indicators() -> pd.DataFrame:
    """The social-utility indicators the evaluation computes, read from the evaluation on an empty log."""
    from diagnostic.analysis.evaluation import Period, utility_table

    dates = ("date", "reported_on", "resolved_on")
    columns = ["activity", "outcome", "domain", "partner_id", "service", "code_qp"]
    log = pd.DataFrame({**{c: pd.Series(dtype="datetime64[ns]") for c in dates},
                        **{c: pd.Series(dtype=object) for c in columns},
                        "duration_min": pd.Series(dtype=float), "partner_known": pd.Series(dtype=bool)})
    period = Period.parse("2025-01-01", "2025-12-31")
    table = utility_table(log, log, period, period.previous(), pd.DataFrame({"code_qp": [], "lib_qp": []}))
    return table.frame[["Dimension", "Indicateur", "Calcul"]].reset_index(drop=True)


def targets(rules: dict[str, Any], ground: float, territories: tuple[int, int] | None, partners: int) -> pd.DataFrame:
    """Each evaluated indicator with its first-year target and the reason (no target: the first year is the reference)."""
    indicators = evaluation_indicators()
    spec = rules["evaluation"].get("cibles") or {}
    rows = []
    for row in indicators.itertuples(index=False):
        s = spec.get(row.Indicateur)
        value, sign, reason = None, "", "année de référence : le premier bilan fixe le niveau à suivre ensuite"
        if s:
            reason = s.get("regle", "")
            if "par_mediateur" in s and ground:
                value, sign = round(float(s["par_mediateur"]) * ground), "au moins"
                reason = (f"{text.number(s['par_mediateur'])} heures par an pour chacun des "
                          f"{text.number(ground, 0 if float(ground).is_integer() else 1)} équivalents temps plein "
                          f"sur le terrain ({reason})")
            elif "territoires" in s and territories:
                value, sign = round(float(s["territoires"]) * territories[0] / territories[1], 1), "au moins"
                reason = (f"{reason} : {territories[0]} des {territories[1]} QPV de la commune sont territoires "
                          "d'intervention")
            elif s.get("conventions"):
                value, sign = (partners, "au moins") if partners else (None, "")
            elif "plafond" in s:
                value, sign = float(s["plafond"]), "au plus"
            elif "valeur" in s:
                value, sign = float(s["valeur"]), "au moins"
        rows.append({"Dimension": row.Dimension, "Indicateur": row.Indicateur, "sens": sign, "cible": value,
                     "Fondement": text.sentence(reason), "Calcul": row.Calcul})
    return pd.DataFrame(rows)


# --- the roadmap ---------------------------------------------------------------------------


def build(results: dict[str, Any], decision: dt.date, rules: dict[str, Any] | None = None) -> Roadmap:
    """The roadmap of the service the diagnostic recommends, from its results and the decision date."""
    rules = rules or load_rules()
    frame = results["cadrage"] or {}
    team = int(frame.get("equipe") or 0)
    threshold = coordinator_from()
    coordinator = team >= threshold
    mediators = team - int(coordinator)
    domains = recommended_domains(results)
    territories = list(frame.get("territoires") or [])
    context = {"territoires": text.join(territories) or "les territoires d'intervention",
               "territoires_liste": text.join(territories), "publics": frame.get("publics") or "les habitants",
               "de_publics": text.de(frame.get("publics") or "les habitants"),
               "horaires": frame.get("horaires") or "", "domaines": text.join(text.quoted([DOMAINS[d] for d in domains]))}
    steps = calendar(rules["calendrier"], decision)
    due = steps.loc[steps["id"] == "conventions", "fin"]
    agreements = conventions(results, rules, add_months(due.iloc[0] if len(due) else steps["fin"].max(), -1))
    links = ((results.get("partenariat") or {}).get("liens_a_creer")) or []
    named = {link["acteur_id"] for link in links if link.get("acteur_id")}
    qpv_count = int((results["commune"] or {}).get("nombre_qpv") or 0)
    codes = list(frame.get("codes") or [])
    share = (len(codes), qpv_count) if qpv_count and results.get("niveau_d_analyse") == "qpv" else None
    part = rules["profils"]["coordinateur"].get("part_terrain", 0) if coordinator else 0
    warnings = []
    if team == 0:
        warnings.append("Le diagnostic ne justifie pas d'équipe de médiation pour l'instant : la feuille de route "
                        "décrit les étapes, sans profil de poste ni plan de formation.")
    return Roadmap(
        code=str(results["commune"]["code"]), commune=str(results["commune"]["nom"]),
        fictional=bool(results.get("donnees_fictives")), decision=decision, team=team, mediators=mediators,
        coordinator=coordinator, coordinator_from=threshold, territories=territories, territory_codes=codes,
        qpv_count=qpv_count, population=frame.get("population"), publics=context["publics"], hours=context["horaires"],
        objectives=list(frame.get("objectifs") or []), domains=domains,
        funding=_recommendation(results, "financements"), governance=_recommendation(results, "gouvernance"),
        calendar=steps,
        profiles=profiles(rules, context, mediators, coordinator, domains) if team else [],
        training=training_plan(rules, domains, mediators, coordinator) if team else training_plan(rules, [], 0, False),
        conventions=agreements,
        indicators=targets(rules, mediators + part / 100, share, len(named)),
        method=f"feuille de route {rules.get('version', '?')} · {(results.get('versions') or {}).get('methode', '')}".strip(" ·"),
        warnings=warnings, joint=list((results.get("decision") or {}).get("services_communs") or []),
    )


def roadmap_json(r: Roadmap) -> dict[str, Any]:
    """What ``feuille_de_route.json`` holds: the same objects the report shows."""
    def plain(frame: pd.DataFrame) -> list[dict[str, Any]]:
        return json.loads(frame.to_json(orient="records", date_format="iso", force_ascii=False))

    cal = r.calendar.assign(debut=r.calendar["debut"].map(dt.date.isoformat), fin=r.calendar["fin"].map(dt.date.isoformat))
    conv = r.conventions.assign(echeance=r.conventions["echeance"].map(dt.date.isoformat))
    return {
        "type": "feuille_de_route", "version": __version__, "methode": r.method,
        "commune": {"code": r.code, "nom": r.commune}, "donnees_fictives": r.fictional,
        "decision": r.decision.isoformat(),
        "equipe": {"total": r.team, "mediateurs": r.mediators, "coordinateur": r.coordinator,
                   "coordinateur_a_partir_de": r.coordinator_from},
        "territoires": r.territories, "codes": r.territory_codes, "population": r.population, "publics": r.publics,
        "horaires": r.hours,
        "domaines": r.domains, "objectifs": r.objectives, "financement": r.funding, "portage": r.governance,
        "calendrier": plain(cal), "profils": r.profiles, "formation": plain(r.training),
        "conventions": plain(conv), "evaluation": plain(r.indicators), "avertissements": r.warnings,
    }


def write_json(r: Roadmap, output_dir: str | Path) -> Path:
    """Write ``feuille_de_route.json`` into ``output_dir``."""
    return write_atomic(Path(output_dir) / f"{STEM}.json",
                        json.dumps(roadmap_json(r), ensure_ascii=False, indent=1, default=str) + "\n")
