"""« Accompagner »: the roadmap of the demo commune's service and the shared diagnostic of a mediation structure.

The roadmap reads the session's demo diagnostic (``demo_report``); the structure is the demo's
(1 director, 2 supervisors, 7 mediators and 4 partners in 2025, the same a year later), each
assessment run once for the module. Levels are recomputed here from the raw answers by hand.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from diagnostic import text
from diagnostic.cli import main
from diagnostic.demo import DEMO_DIR
from diagnostic.io.reference import DOMAINS
from tests.report.test_report import BAD_TEXT, TOOL_WORDS

ANSWERS = {year: DEMO_DIR / f"structure_{year}_reponses.csv" for year in (2025, 2026)}
STAFF = {year: DEMO_DIR / f"structure_{year}_personnel.csv" for year in (2025, 2026)}
THEMES = {"ETH": 3, "ACT": 5, "REC": 3, "FOR": 3, "SUP": 3, "PAR": 3, "SEC": 3, "SUI": 3, "GOU": 3}


@pytest.fixture(scope="module")
def roadmap(demo_report, tmp_path_factory) -> Path:
    from diagnostic.pipeline.roadmap import run_roadmap

    return run_roadmap(demo_report / "resultats.json", tmp_path_factory.mktemp("feuille"), decision="2026-01-01")


@pytest.fixture(scope="module")
def assessments(tmp_path_factory) -> dict[int, Path]:
    """The 2025 assessment, its plan updated by the structure in the spreadsheet, then the 2026 assessment."""
    import openpyxl

    from diagnostic.pipeline.structure import run_structure

    out = tmp_path_factory.mktemp("structure")
    first = run_structure([ANSWERS[2025]], STAFF[2025], out / "2025", structure="Lys Médiation", day="2025-11-15",
                          fictional=True)
    book = openpyxl.load_workbook(first.parent / "plan_actions.xlsx")
    sheet = book["Plan d'actions"]
    header = [c.value for c in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        number = row[header.index("N°")].value
        row[header.index("État")].value = {"SUP-1": "réalisée", "FOR-1": "en cours", "ETH-D": "abandonnée"}.get(number)
    book.save(first.parent / "plan_actions.xlsx")
    second = run_structure([ANSWERS[2026]], STAFF[2026], out / "2026", structure="Lys Médiation", day="2026-11-16",
                           fictional=True, previous=out / "2025")
    return {2025: first, 2026: second}


def _saved(html: Path) -> dict:
    return json.loads(html.with_suffix(".json").read_text(encoding="utf-8"))


# --- roadmap -------------------------------------------------------------------------------


def test_roadmap_follows_the_demo_diagnostic(demo_report, roadmap):
    """Team, profiles, territories, domains, hours and calendar as the commune's resultats.json decides them."""
    results = json.loads((demo_report / "resultats.json").read_text(encoding="utf-8"))
    frame, road = results["cadrage"], _saved(roadmap)
    team = road["equipe"]
    # The commune's own team, as the decision sizes it (its share of the joint intercommunal service is apart).
    assert team["total"] == frame["equipe"] == results["decision"]["equipe"]["taille"] == 2
    assert team["mediateurs"] + int(team["coordinateur"]) == frame["equipe"]
    assert team["coordinateur"] is (frame["equipe"] >= team["coordinateur_a_partir_de"])
    profiles = {p["id"]: p for p in road["profils"]}
    assert profiles["mediateur"]["postes"] == team["mediateurs"] and ("coordinateur" in profiles) is team["coordinateur"]
    recommended = [r["domaine"] for r in sorted(results["recommandations"], key=lambda r: r["priorite"])
                   if r["domaine"] in DOMAINS]
    assert road["domaines"] == recommended and len(recommended) >= 3
    mediator = profiles["mediateur"]
    assert mediator["domaines"] == [DOMAINS[d] for d in recommended]
    assert all(t in mediator["mission"] for t in frame["territoires"]) and frame["horaires"] in mediator["mission"]
    assert road["territoires"] == frame["territoires"] and road["horaires"] == frame["horaires"]
    assert len(mediator["activites"]) == 5 and "navette" in mediator["activites"][1] and "table ronde" in mediator["activites"][1]
    assert "26 ans" in mediator["adulte_relais"]
    steps = {s["id"]: s for s in road["calendrier"]}
    assert steps["accord"]["debut"] == "2026-01-01"
    start, first = dt.date.fromisoformat(steps["demarrage"]["debut"]), dt.date.fromisoformat(steps["evaluation"]["debut"])
    assert (first.year - start.year) * 12 + first.month - start.month == 12
    assert steps["recrutement"]["debut"] >= steps["adultes_relais"]["fin"]
    assert dt.date.fromisoformat(steps["fipd"]["debut"]).month in (1, 2, 3)
    assert dt.date.fromisoformat(steps["tfpb"]["debut"]).month in (9, 10, 11, 12)
    assert len(road["conventions"]) == len(results["partenariat"]["liens_a_creer"])
    modules = {m["id"]: m for m in road["formation"]}
    assert {"posture", "conflits", "sante", "habitat"} <= set(modules) and "coordination" not in modules
    assert modules["conflits"]["heures_total"] == 35 * team["mediateurs"]
    # The share of the joint service of the intercommunal quartier is said beside the commune's own team.
    joint = results["decision"]["services_communs"][0]
    page = html.unescape(roadmap.read_text(encoding="utf-8"))
    assert (f"participe aussi au service commun du quartier intercommunal {joint['nom']}" in page
            and f"pour une part de {text.number(joint['part_equipe'], 1)} médiateur" in page)


def test_roadmap_targets_are_the_evaluation_indicators(roadmap, evaluation_report):
    """The framework lists exactly the indicators the evaluation computes, with targets from the diagnostic."""
    road = _saved(roadmap)
    evaluated = [row["Indicateur"] for row in _saved(evaluation_report)["tableaux"]["utilite_sociale"]["lignes"]]
    targets = {row["Indicateur"]: row for row in road["evaluation"]}
    assert list(targets) == evaluated
    assert targets["Heures de présence active de proximité"]["cible"] == 700 * road["equipe"]["mediateurs"]
    # 2 of the commune's 3 QPVs are intervention territories: each one covered every month.
    assert targets["QPV couverts chaque mois par la présence (%, moyenne)"]["cible"] == pytest.approx(66.7)
    assert targets["Conflits traités"]["cible"] is None


def test_a_new_diagnostic_keeps_the_roadmap(tmp_path):
    """``diagnostic run`` replaces the commune's folder whole but carries its roadmap over, like its evaluations."""
    import nbformat

    from diagnostic.pipeline.run import run_commune
    from tests.util import DEMO_CATALOG

    page = tmp_path / "out" / "99101" / "feuille_de_route" / "feuille_de_route.html"
    page.parent.mkdir(parents=True)
    page.write_text("feuille de route", encoding="utf-8")
    tiny = tmp_path / "carnet.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(commune)")], metadata={
        "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}), tiny)
    result = run_commune(DEMO_CATALOG, "99101", tmp_path / "out", notebook=tiny)
    assert "feuille_de_route" in {p.name for p in result.folder.iterdir()}
    assert page.read_text(encoding="utf-8") == "feuille de route"


def test_a_team_of_six_has_a_coordinator_partly_on_the_ground(demo_report):
    """From team.supervisor_from (5) of the recommendation rules, one of the team coordinates and is 30 % on the ground."""
    from diagnostic.analysis import roadmap as rm

    results = rm.read_results(demo_report)
    results["cadrage"]["equipe"] = 6
    r = rm.build(results, dt.date(2026, 1, 1))
    assert (r.team, r.mediators, r.coordinator) == (6, 5, True)
    assert [(p["id"], p["postes"]) for p in r.profiles] == [("mediateur", 5), ("coordinateur", 1)]
    assert r.profiles[1]["part_terrain"] == 30
    hours = r.indicators.set_index("Indicateur").loc["Heures de présence active de proximité", "cible"]
    assert hours == round(700 * 5.3)
    training = r.training.set_index("id")
    assert training.loc["coordination", "personnes"] == 1 and training.loc["posture", "personnes"] == 6


# --- structure -----------------------------------------------------------------------------


def _by_hand(path: Path) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Theme levels per published group and shared, from the raw export: direction and encadrement (1 + 2) merged;
    a group's criterion level counts only when at least 3 of its members answered."""
    raw = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
    groups = raw["point_de_vue"].map({"direction": "Direction et encadrement", "encadrement": "Direction et encadrement",
                                      "mediateurs": "Médiateurs", "partenaires": "Partenaires"})
    per_group: dict[str, dict[str, float]] = {}
    for theme, n in THEMES.items():
        for label in ("Direction et encadrement", "Médiateurs", "Partenaires"):
            means = []
            for k in range(1, n + 1):
                answered = pd.to_numeric(raw.loc[groups == label, f"{theme}{k}"], errors="coerce").dropna()
                if len(answered) >= 3:
                    means.append(answered.mean())
            per_group.setdefault(theme, {})[label] = float(np.mean(means)) if means else np.nan
    shared = {t: float(np.nanmean(list(v.values()))) for t, v in per_group.items()}
    return per_group, shared


def test_levels_per_theme_equal_the_hand_computation(assessments):
    saved = _saved(assessments[2025])
    per_group, shared = _by_hand(ANSWERS[2025])
    assert saved["points_de_vue"] == ["Direction et encadrement", "Médiateurs", "Partenaires"]
    for theme in saved["themes"]:
        assert theme["niveau"] == pytest.approx(shared[theme["theme"]], abs=1e-9), theme["theme"]
        for group, value in theme["par_point_de_vue"].items():
            expected = per_group[theme["theme"]][group]
            assert (value is None) if np.isnan(expected) else value == pytest.approx(expected, abs=1e-9)
    # Supervision is the weakest theme, ethics the one viewpoints disagree on.
    assert [g["theme"] for g in saved["constats"]["manques"]] == ["FOR", "SUP", "SEC", "SUI"]
    assert [d["theme"] for d in saved["constats"]["desaccords"]] == ["ETH"]


def test_two_supervisors_are_never_published_as_a_group_of_two(assessments):
    """Every published level rests on at least 3 people; the supervisors appear only with the director."""
    saved = _saved(assessments[2025])
    page = assessments[2025].read_text(encoding="utf-8")
    assert '<th scope="col">Direction et encadrement</th>' in page
    assert '<th scope="col">Encadrement</th>' not in page and '<th scope="col">Direction</th>' not in page
    raw = pd.read_csv(ANSWERS[2025], sep=";", dtype=str, keep_default_na=False)
    merged = raw["point_de_vue"].isin(["direction", "encadrement"])
    small = 0
    for row in saved["tableaux"]["criteres"]["lignes"]:
        answered = int(pd.to_numeric(raw.loc[merged, row["N°"]], errors="coerce").notna().sum())
        assert (row["Direction et encadrement"] is None) is (answered < 3), row["N°"]
        small += answered < 3
    assert small >= 3  # some criteria were left blank by one of the three: their level is not published
    assert saved["secret"]["seuil"] == 3
    for row in saved["tableaux"]["personnel"]["lignes"]:  # director, head of service, coordinator: one person each
        if row["Effectif"] < 3:
            assert [v for k, v in row.items() if k not in ("Poste", "Effectif")] == [None] * 5, row["Poste"]
    respondents = {r["Point de vue"]: r["Réponses"] for r in saved["tableaux"]["repondants"]["lignes"]}
    assert respondents == {"Direction et encadrement": 3, "Médiateurs": 7, "Partenaires": 4}


def test_follow_up_a_year_later(assessments):
    """Progress per theme is the change of the published shared levels; each action's state is right."""
    before, after = _saved(assessments[2025]), _saved(assessments[2026])
    then = {t["theme"]: t["niveau"] for t in before["themes"]}
    now = {t["theme"]: t["niveau"] for t in after["themes"]}
    progress = {p["theme"]: p["Évolution"] for p in after["suivi"]["progression"]}
    assert progress == {t: pytest.approx(round(now[t] - then[t], 2)) for t in then}
    assert progress["SUP"] > 0.9 and progress["FOR"] > 0.8
    states = {a["N°"]: a["Constat"] for a in after["suivi"]["actions"]}
    # Every deadline (3 to 6 months after 15 November 2025) has passed by November 2026.
    assert states == {"SUP-1": "Réalisée", "FOR-1": "En retard (en cours)", "SUI-1": "En retard (à faire)",
                      "SEC-1": "En retard (à faire)", "ETH-D": "Abandonnée"}


@pytest.mark.parametrize(("change", "code", "words"), [
    ("criterion", 15, "n'est pas un critère de la grille"),
    ("level", 15, "niveaux hors de l'échelle"),
    ("name", 21, "donnée personnelle"),
])
def test_bad_input_is_refused_in_french_and_publishes_nothing(tmp_path, capsys, change, code, words):
    answers, staff = tmp_path / "reponses.csv", tmp_path / "personnel.csv"
    raw = pd.read_csv(ANSWERS[2025], sep=";", dtype=str, keep_default_na=False)
    people = pd.read_csv(STAFF[2025], sep=";", dtype=str, keep_default_na=False)
    if change == "criterion":
        raw["ETH9"] = "3"
    elif change == "level":
        raw.loc[4, "SUP2"] = "7"
    else:
        people.insert(0, "nom", [f"Personne {i}" for i in range(len(people))])
    raw.to_csv(answers, sep=";", index=False)
    people.to_csv(staff, sep=";", index=False)
    out = tmp_path / "sortie" / "structure"
    status = main(["structure", "--reponses", str(answers), "--personnel", str(staff), "--output", str(out)])
    err = capsys.readouterr().err
    assert status == code and words in err
    assert ("Ligne(s) : 6" in err) if change == "level" else True
    assert "Colonne : " in err and not out.exists()


@pytest.mark.browser
@pytest.mark.parametrize("which", ["roadmap", "structure"])
def test_reports_open_in_a_browser_with_no_axe_violation(request, offline_page, which):
    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
    html = request.getfixturevalue("roadmap") if which == "roadmap" else request.getfixturevalue("assessments")[2026]
    page, log = offline_page(html)
    assert log.external_requests == [] and log.page_errors == []
    visible = page.evaluate("document.body.innerText")
    assert not TOOL_WORDS.search(visible), TOOL_WORDS.search(visible)
    assert not [w for w, p in BAD_TEXT.items() if p.search(visible)]
    assert page.locator("main img[alt]").count() >= 1
    result = axe_module.Axe().run(page, options={"runOnly": {"type": "tag", "values": [
        "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}})
    assert [(v["id"], [n["target"] for n in v["nodes"][:3]]) for v in result.response["violations"]] == []


def test_action_plan_opens_in_openpyxl(assessments):
    import openpyxl

    from diagnostic.analysis.structure import PLAN_COLUMNS, STATES

    saved = _saved(assessments[2025])
    book = openpyxl.load_workbook(assessments[2025].parent / "plan_actions.xlsx")
    sheet = book["Plan d'actions"]
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == PLAN_COLUMNS
    assert [r[0] for r in rows[1:]] == [a["N°"] for a in saved["plan"]] == ["FOR-1", "SUP-1", "SEC-1", "SUI-1", "ETH-D"]
    assert all(r[PLAN_COLUMNS.index("Porteur")] and r[PLAN_COLUMNS.index("Indicateur de réalisation")] for r in rows[1:])
    assert rows[1][PLAN_COLUMNS.index("Échéance")] == "2026-05-01" and rows[1][PLAN_COLUMNS.index("Priorité")] == 1
    validation = sheet.data_validations.dataValidation[0]
    assert validation.formula1 == '"' + ",".join(STATES) + '"' and "H2" in str(validation.sqref)
    csv = pd.read_csv(assessments[2025].parent / "plan_actions.csv", sep=";")
    assert list(csv.columns) == PLAN_COLUMNS and len(csv) == len(rows) - 1
