"""The needs method on hand-made territories whose order is obvious, and on the real extracts.

Hand-made cases go through :func:`unmet_needs` itself (no geometry): two QPVs
equal but for one thing, and the method must order them the way anyone would.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pandas as pd
import pytest

from diagnostic import text
from diagnostic.analysis.indicators.needs import (
    LEVEL_ORDER,
    describe,
    load_rules,
    robustness,
    unmet_needs,
)
from diagnostic.analysis.recommend import load_rules as reco_rules
from diagnostic.io.reference import DOMAINS
from diagnostic.report.method import annex

RULES = load_rules()
INDICATORS = {"poverty_rate": ("Taux de pauvreté (seuil 60 %)", "%"), "median_income": ("Revenu médian", "€"),
              "jobseekers": ("Demandeurs d'emploi", "personnes"), "population": ("Population", "habitants"),
              "youth_index": ("Indice de jeunesse", "ratio"), "employment_rate": ("Taux d'emploi", "%")}


def _background(n: int = 20) -> dict[str, dict[str, float]]:
    """A reference of ``n`` QPVs spread evenly, so that positions are easy to read."""
    return {f"QPR{i:02d}": {"population": 3000, "poverty_rate": 25 + i, "median_income": 16000 - 150 * i,
                            "jobseekers": 300 + 10 * i, "employment_rate": 60 - i, "youth_index": 1.0}
            for i in range(n)}


def _social(values: dict[str, dict[str, float]]) -> pd.DataFrame:
    rows = [{"code_qp": code, "indicator": k, "label": INDICATORS[k][0], "unit": INDICATORS[k][1], "value": v,
             "status": "" if not np.isnan(v) else "non disponible", "source": "INSEE (test)", "vintage": "2021"}
            for code, ind in values.items() for k, v in ind.items()]
    return pd.DataFrame(rows)


def _coverage(codes: list[str], responses: dict[tuple[str, str], int] | None = None) -> pd.DataFrame:
    responses = responses or {}
    known = {d for _, d in responses}
    rows = [{"level": "qpv", "code": c, "domain": d, "domain_label": DOMAINS[d], "services_inside": 0,
             "services_band": responses.get((c, d), 0), "responses_band": responses.get((c, d), 0),
             "common_band": np.nan, "places_band": 0, "responses_known": d in known, "nearest_m": np.nan,
             "nearest_response_m": np.nan, "per_1000": np.nan, "population": np.nan, "method": "test"}
            for c in codes for d in RULES["domains"]]
    return pd.DataFrame(rows)


def _needs(values, responses=None, posts=None, observations=None, rules=RULES):
    social = _social(values)
    pop = pd.Series({c: v["population"] for c, v in values.items()})
    needs, evidence = unmet_needs(social, _coverage(list(values), responses), observations, rules, code="code_qp",
                                  population=pop, mediation_posts=pd.Series(posts) if posts is not None else None)
    return describe(needs, evidence, rules), evidence


def _pair(**changes) -> dict[str, dict[str, float]]:
    values = _background()
    base = {"population": 5000, "poverty_rate": 40, "median_income": 13500, "jobseekers": 700,
            "employment_rate": 45, "youth_index": 1.0}
    for code in ("QPA", "QPB"):
        values[code] = {**base, **changes.get(code, {})}
    return values


def log_row(needs: pd.DataFrame, code: str, domain: str) -> pd.Series:
    return needs[(needs["code"] == code) & (needs["domain"] == domain)].iloc[0]


def _first(needs: pd.DataFrame, codes: set[str]) -> str:
    return needs[needs["code"].isin(codes)].iloc[0]["code"]


# --------------------------------------------------------------------------- obvious orders


def test_equal_but_for_poverty_the_poorer_comes_first():
    needs, _ = _needs(_pair(QPA={"poverty_rate": 48}, QPB={"poverty_rate": 30}))
    for domain in ("acces_droits", "habitat", "sante"):
        assert log_row(needs, "QPA", domain)["need"] > log_row(needs, "QPB", domain)["need"]
    assert _first(needs, {"QPA", "QPB"}) == "QPA"


def test_equal_but_for_population_the_larger_comes_first():
    values = _pair(QPB={"population": 1500})
    values["QPB"]["jobseekers"] = 700 * 1500 / 5000  # same rate of job seekers: only the size differs
    needs, _ = _needs(values)
    a, b = log_row(needs, "QPA", "habitat"), log_row(needs, "QPB", "habitat")
    assert a["need"] == b["need"] and a["level"] == b["level"]
    assert a["priority"] > b["priority"] and a["rank"] < b["rank"]


def test_equal_but_for_a_mediation_post_the_one_without_comes_first():
    needs, _ = _needs(_pair(), posts={"QPA": 0.0, "QPB": 5.0})
    a, b = log_row(needs, "QPA", "espace_public"), log_row(needs, "QPB", "espace_public")
    assert a["need"] == b["need"] and a["unmet"] > b["unmet"] and a["rank"] < b["rank"]
    # 5 posts shared by the 5 mediation domains: 1 post-equivalent for a target of 5,000 / 10,000 × 2.5 = 1.25.
    assert b["posts_counted"] == 1.0 and b["response"] == pytest.approx(0.8)
    assert f"postes adultes-relais comptés pour {text.number(1, 2)}" in b["reason"]
    # Emploi is not a mediation domain: posts do not answer it.
    assert log_row(needs, "QPB", "emploi")["unmet"] == log_row(needs, "QPA", "emploi")["unmet"]


def test_a_domain_without_data_is_undetermined_and_named():
    values = _pair()
    for code in values:
        values[code] = {"population": values[code]["population"], "youth_index": 3.0 if code == "QPA" else 1.0}
    needs, _ = _needs(values)
    # Every domain of the rules appears for every QPV.
    assert len(needs) == len(values) * len(RULES["domains"])
    edu = log_row(needs, "QPA", "education")
    # The youth index alone (a student area?) never drives a level.
    assert edu["level"] == "indéterminé" and np.isnan(edu["need"]) and np.isnan(edu["unmet"])
    assert "ambigu" in edu["reason"] and "Taux de pauvreté" in edu["missing"]
    assert (needs["level"] == "indéterminé").all()


def test_youth_index_alone_cannot_lift_a_well_off_qpv():
    needs, _ = _needs(_pair(QPA={"poverty_rate": 26, "median_income": 15800, "youth_index": 4.3}))
    assert log_row(needs, "QPA", "education")["level"] == "faible"
    assert log_row(needs, "QPB", "education")["rank"] < log_row(needs, "QPA", "education")["rank"]


# --------------------------------------------------------------------------- monotonicity


@pytest.mark.parametrize("indicator,step", [("poverty_rate", 3), ("median_income", -400), ("jobseekers", 150)])
def test_raising_deprivation_never_lowers_need(indicator, step):
    before, _ = _needs(_pair())
    worse = _pair()
    worse["QPA"][indicator] += step
    after, _ = _needs(worse)
    for domain in RULES["domains"]:
        b, a = log_row(before, "QPA", domain), log_row(after, "QPA", domain)
        assert a["need"] >= b["need"] and LEVEL_ORDER[a["level"]] <= LEVEL_ORDER[b["level"]], domain


def test_adding_a_response_never_raises_an_unmet_need():
    base = {("QPA", "acces_droits"): 0, ("QPB", "acces_droits"): 0}
    before, _ = _needs(_pair(), responses=base)
    after, _ = _needs(_pair(), responses={**base, ("QPA", "acces_droits"): 1})
    b, a = log_row(before, "QPA", "acces_droits"), log_row(after, "QPA", "acces_droits")
    assert a["unmet"] <= b["unmet"] and a["response"] > b["response"]
    a_all = after.set_index(["code", "domain"])["unmet"].sort_index().fillna(-1)
    b_all = before.set_index(["code", "domain"])["unmet"].sort_index().fillna(-1)
    assert (a_all <= b_all).all()


def test_reason_arithmetic_equals_the_figures():
    needs, _ = _needs(_pair(), posts={"QPA": 2.0, "QPB": 0.0})
    for r in needs.itertuples():
        m = re.search(r"non couvert (\d+) × \(1 − ([\d,]+)\) = (\d+) sur 100", r.reason)
        if m:
            need, resp, unmet = int(m[1]), float(m[2].replace(",", ".")), int(m[3])
            assert need == round(100 * r.need) and resp == r.response and unmet == round(100 * r.unmet)
            assert abs(need * (1 - resp) - unmet) <= 0.5 + 1e-9


# --------------------------------------------------------------------------- robustness


def _habitat_flag(rules: dict) -> tuple[str, pd.Series]:
    values = _pair(QPA={"poverty_rate": 44, "median_income": 15000})  # very poor, but a middling income
    needs, evidence = _needs(values, rules=rules)
    needs = needs.assign(robustness=robustness(needs, evidence, rules).to_numpy())
    row = log_row(needs, "QPA", "habitat")
    return row["robustness"], row


def test_robustness_flag_moves_with_a_weight():
    rules = copy.deepcopy(RULES)
    _, row = _habitat_flag(rules)
    # Put the « fort » threshold just above the need: 50 % more weight on poverty crosses it.
    rules["levels"] = {"fort": round(row["need"] + 0.01, 2), "moyen": 0.3}
    flag, row = _habitat_flag(rules)
    assert row["level"] == "moyen"
    assert flag.startswith("dépend des hypothèses") and "Taux de pauvreté" in flag and "+50" in flag
    # With no weight on income, the need is poverty's position alone: no weight can move it any more.
    rules["domains"]["habitat"]["indicators"]["median_income"]["weight"] = 0
    flag, row = _habitat_flag(rules)
    assert row["level"] in ("fort", "moyen") and flag == "robuste"


def test_method_annex_states_thresholds_without_tool_words():
    text_ = annex(RULES, reco_rules(), "méthode 2")
    assert "65 sur 100" in text_ and "45" in text_ and "2,5" in text_ and "22" in text_
    for word in (".yaml", ".csv", "templates/", "diagnostic ", "--", "weight", "min_observations"):
        assert word not in text_, word


# --------------------------------------------------------------------------- real extracts and the demo


@pytest.fixture(scope="module")
def toulouse(occitanie):
    from diagnostic.analysis.commune import build

    return build(occitanie, "31555")


@pytest.fixture(scope="module")
def lille():
    from diagnostic.analysis.commune import build
    from diagnostic.io.catalog import DEFAULT_DATA_DIR, PROJECT_ROOT

    if not (DEFAULT_DATA_DIR / "PROVENANCE.md").exists():
        pytest.skip(f"extraits réels absents ({DEFAULT_DATA_DIR})")
    return build(PROJECT_ROOT / "data" / "catalogues" / "hauts-de-france.yaml", "59350")


def test_toulouse_first_priority_is_grand_mirail(toulouse):
    needs = toulouse.needs
    assert needs.iloc[0]["code"] == "QP031007" and toulouse.framing["codes"][0] == "QP031007"
    assert list(needs["rank"]) == list(range(1, len(needs) + 1))
    # Every domain of the rules, for every QPV of Toulouse, with a level or « indéterminé ».
    assert set(needs["code"]) == set(toulouse.territories["code"]) and len(toulouse.territories) == 12
    assert (needs.groupby("code")["domain"].nunique() == len(RULES["domains"])).all()
    assert set(needs["level"]) <= set(LEVEL_ORDER)
    # Rangueil, a student area with a youth index of 4.3 and 37.9 % poverty, is not a « fort » need.
    assert not (needs[needs["code"] == "QP031015"]["level"] == "fort").any()


def test_toulouse_top_three_below_median_poverty_say_why(toulouse):
    needs, ev = toulouse.needs, toulouse.evidence
    poverty = ev[ev["indicator"] == "poverty_rate"].drop_duplicates("code").set_index("code")
    median = float(poverty["reference_median"].iloc[0])
    top = list(dict.fromkeys(needs["code"]))[:3]
    for code in top:
        first = needs[needs["code"] == code].iloc[0]
        if poverty.loc[code, "value"] < median:
            assert "sous la médiane de référence" in first["reason"], code
    assert "QP031007" in top


def _team_check(diag) -> int:
    rec = next(r for r in diag.recommendations if r["id"] == "equipe")
    size = rec["team_size"]
    if not size:
        assert "Pas d'équipe" in rec["title"]
        return 0
    t = diag.decision["equipe"]
    m = re.search(r"([\d\u202f]+) × ([\d,]+) ÷ 10\u202f000 = ([\d,]+), arrondi à (\d+)\u00a0médiateurs?", rec["text"])
    assert m, rec["text"]
    population, ratio = float(m[1].replace("\u202f", "")), float(m[2].replace(",", "."))
    assert population == t["population"] <= diag.framing["population"]  # the commune's own territories
    assert float(m[3].replace(",", ".")) == round(population * ratio / 10000, 1)
    assert int(m[4]) == t["arrondi"] == int(population * ratio / 10000 + 0.5)
    if size < t["arrondi"]:
        assert f"plafonnée à {size}" in rec["text"]
    elif size > t["arrondi"]:
        assert f"au moins {size}" in rec["text"]
    else:
        assert size == t["arrondi"]
    assert diag.framing["equipe"] == size and text.count(size, "médiateur") in rec["title"]
    return size


def test_team_text_equals_the_number_demo(demo):
    from diagnostic.analysis.commune import build

    # Les Hauts de Lys (6,840 inhabitants): 1.7 → 2; La Garenne – Les Tilleuls, intercommunal, has a joint service.
    assert _team_check(build(demo, "99101")) == 2


def test_team_text_equals_the_number_toulouse(toulouse):
    size = _team_check(toulouse)
    pop = toulouse.territories.set_index("code")["population"]
    assert toulouse.framing["population"] == pop.reindex(toulouse.framing["codes"]).sum()
    assert 2 <= size <= 12


def test_team_text_equals_the_number_lille(lille):
    _team_check(lille)
    assert list(lille.needs["rank"]) == list(range(1, len(lille.needs) + 1))
