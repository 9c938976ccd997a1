"""Recommendations on a hand-made case whose triggers are known, and the officer's local overrides."""

from __future__ import annotations

import pandas as pd
import pytest

from diagnostic.errors import CatalogError
from diagnostic.recommend import Context, load_rules, recommend


def _need(code, domain, level, unmet):
    return {"code": code, "domain": domain, "domain_label": domain.replace("_", " "), "level": level,
            "unmet": unmet, "need": unmet + 0.2, "response": 0.2, "method": "test", "services_band": 0,
            "per_1000": 0.0, "nearest_m": 900.0, "mediation_posts": 0.0, "obs_count": 0, "obs_weight": 0.0,
            "obs_sources": ""}


@pytest.fixture
def context() -> Context:
    needs = pd.DataFrame([
        _need("QPA", "espace_public", "fort", 0.5),
        _need("QPA", "sante", "moyen", 0.25),
        _need("QPB", "habitat", "faible", 0.1),
        _need("QPB", "sante", "moyen", 0.22),
    ])
    social = pd.DataFrame({
        "code": ["QPA", "QPB", "QPA", "QPB"],
        "indicator": ["youth_index", "youth_index", "poverty_rate", "poverty_rate"],
        "value": [1.6, 0.9, 41.0, 25.0],
    })
    observations = pd.DataFrame({"problem": ["nuisances"] * 3 + ["conflits_usage"] * 2 + ["isolement"],
                                 "code_qp": ["QPA"] * 6})
    return Context(
        commune_code="00001", commune_name="Testville",
        territories=pd.DataFrame({"code": ["QPA", "QPB"], "name": ["Quartier A", "Quartier B"],
                                  "population": [5000.0, 3000.0], "communes": ["00001", "00001"]}),
        needs=needs, evidence=pd.DataFrame(columns=["code", "domain"]), social=social,
        observations=observations, actor_types={"bailleur social", "commune / services municipaux"},
        adulte_relais_posts=2.0,
    )


def by_id(recs):
    return {r["id"]: r for r in recs}


def test_triggers_on_hand_made_case(context):
    recs = by_id(recommend(context))
    # Domains: only fort / moyen needs open an axis; fort gives priority 1.
    assert recs["domaine_espace_public"]["priority"] == 1
    assert recs["domaine_sante"]["priority"] == 2
    assert "Quartier A (QPA)" in recs["domaine_sante"]["text"] and "Quartier B (QPB)" in recs["domaine_sante"]["text"]
    assert "domaine_habitat" not in recs
    # Priority territories: A (0.5 + 0.25) before B (0.22); publics from youth index, isolation and poverty.
    first = recs["territoires_prioritaires"]["text"]
    assert first.index("Quartier A") < first.index("Quartier B")
    assert "3 besoins non couverts" in first
    assert "jeunes" in first and "isolées" in first and "bas revenus" in first
    # Team: 8,000 inhabitants × 2.5 / 10,000 × 1.3 (a need is « fort ») = 2.6 → 3 mediators.
    assert recs["equipe"]["team_size"] == 3
    # Hours: 5 evening-type observations reach the threshold of 5; youth index 1.6 ≥ 1.5.
    assert "soirée" in recs["horaires"]["title"] and "mercredi" in recs["horaires"]["title"]
    # Funding leads follow the needs and the actors present.
    funding = recs["financements"]["text"]
    assert "adultes-relais" in funding and "2,0 poste(s)" in funding
    assert "FIPD" in funding and "TFPB" in funding and "contrat de ville" in funding
    assert "opérateur de transport" not in funding  # no transport need, no transport operator
    assert {"gouvernance", "evaluation"} <= set(recs)
    for r in recs.values():
        assert r["type"] in {"stratégique", "opérationnelle"}
    assert recs["domaine_espace_public"]["evidence"][0]["territoire"] == "QPA"


def test_no_evening_hours_below_threshold(context):
    context.observations = context.observations.head(4)
    context.social.loc[context.social["indicator"] == "youth_index", "value"] = 1.0
    assert "horaires" not in by_id(recommend(context))


def test_local_file_adds_changes_and_removes(context, tmp_path):
    local = tmp_path / "recommandations_locales.yaml"
    local.write_text(
        "retirer: [gouvernance]\n"
        "modifier:\n  horaires: {priority: 1}\n"
        "ajouter:\n  - {id: local_marche, type: opérationnelle, domain: espace_public, priority: 1,\n"
        "     title: Marche de restitution, text: Organiser une marche en juin.}\n"
        "par_commune:\n  '00001': {retirer: [evaluation]}\n  '99999': {retirer: [equipe]}\n",
        encoding="utf-8",
    )
    recs = by_id(recommend(context, local=local))
    assert "gouvernance" not in recs and "evaluation" not in recs and "equipe" in recs
    assert recs["horaires"]["priority"] == 1 and recs["horaires"]["origin"] == "règle modifiée localement"
    assert recs["local_marche"]["origin"] == "ajout local"
    assert recs["local_marche"]["domain_label"] == "Espace public et tranquillité"


def test_local_file_errors(context, tmp_path):
    local = tmp_path / "recommandations_locales.yaml"
    local.write_text("ajouter:\n  - {id: x, title: t, text: y, type: urgente}\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="stratégique ou opérationnelle"):
        recommend(context, local=local)
    local.write_text("ajouter:\n  - {id: x}\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="text, title"):
        recommend(context, local=local)


def test_rule_file_with_unknown_trigger(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("rules:\n  - {id: x, kind: astrologie}\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="astrologie"):
        load_rules(bad)
    bad.write_text("rules: [\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="YAML illisible"):
        load_rules(bad)


def test_framing_follows_the_recommendations(context, tmp_path):
    from diagnostic.recommend import DAYTIME, framing

    recs = recommend(context)
    frame = framing(context, recs)
    assert frame["territoires"] == ["Quartier A (QPA)", "Quartier B (QPB)"]
    assert frame["equipe"] == 3
    assert frame["horaires"].startswith("en soirée")
    assert frame["objectifs"] == [
        "Réduire le besoin non couvert « Espace public et tranquillité » (niveau fort) dans Quartier A (QPA)",
        "Réduire le besoin non couvert « Santé » (niveau moyen) dans Quartier A (QPA) et Quartier B (QPB)",
    ]
    local = tmp_path / "recommandations_locales.yaml"
    local.write_text("retirer: [horaires, equipe]\n", encoding="utf-8")
    frame = framing(context, recommend(context, local=local))
    assert frame["horaires"] == DAYTIME and frame["equipe"] is None
