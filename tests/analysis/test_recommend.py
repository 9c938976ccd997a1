"""Recommendations on a hand-made case whose triggers are known, and the officer's local overrides."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from diagnostic.analysis.recommend import Context, load_rules, recommend
from diagnostic.errors import CatalogError


def _need(code, domain, level, unmet, population, rank):
    return {"code": code, "domain": domain, "domain_label": domain.replace("_", " "), "level": level,
            "level_measured": level, "raised": False, "unmet": unmet, "need": unmet, "response": 0.0,
            "population": population, "priority": unmet * population, "rank": rank, "method": "test",
            "services_band": 0, "responses_band": 0, "responses_known": True, "nearest_m": 900.0,
            "nearest_response_m": np.nan, "mediation_posts": 1.0 if code == "QPA" else 0.0, "posts_known": True, "obs_count": 0,
            "obs_weight": 0.0, "obs_sources": "", "reason": f"raison {code} {domain}", "robustness": "robuste"}


@pytest.fixture
def context() -> Context:
    needs = pd.DataFrame([
        _need("QPA", "espace_public", "fort", 0.8, 21000.0, 1),
        _need("QPB", "education", "fort", 0.78, 5000.0, 2),
        _need("QPA", "sante", "moyen", 0.6, 21000.0, 3),
        _need("QPB", "sante", "moyen", 0.55, 5000.0, 4),
        _need("QPB", "habitat", "faible", 0.1, 5000.0, 5),
    ])
    social = pd.DataFrame({"code": ["QPA", "QPB"], "indicator": ["poverty_rate"] * 2, "value": [48.0, 40.0]})
    observations = pd.DataFrame({"problem": ["nuisances"] * 3 + ["conflits_usage"] * 2 + ["isolement"],
                                 "code_qp": ["QPA"] * 6})
    return Context(
        commune_code="00001", commune_name="Testville",
        territories=pd.DataFrame({"code": ["QPA", "QPB"], "name": ["Quartier A", "Quartier B"],
                                  "population": [21000.0, 5000.0], "communes": ["00001", "00001"]}),
        needs=needs, evidence=pd.DataFrame(columns=["code", "domain"]), social=social,
        observations=observations, actor_types={"bailleur social", "commune / services municipaux"},
    )


def by_id(recs):
    return {r["id"]: r for r in recs}


def test_triggers_on_hand_made_case(context):
    recs = by_id(recommend(context))
    assert recs["domaine_espace_public"]["priority"] == 1 and recs["domaine_sante"]["priority"] == 2
    assert "au Quartier A (niveau moyen) et au Quartier B (niveau moyen)" in recs["domaine_sante"]["text"]
    assert not any("(QP" in r["text"] or "(QP" in r["reason"] for r in recs.values())  # names, not codes
    assert "domaine_habitat" not in recs
    # Intervention territories: both have a « fort » need, in the order of the ranking.
    first = recs["territoires_prioritaires"]["text"]
    assert first.index("Quartier A") < first.index("Quartier B") and "26\u202f000 habitants" in first
    # Team: 26,000 × 2.5 / 10,000 = 6.5 → 7 (half up), a coordinator from 5; 1 post in place → 6 to create.
    team = recs["equipe"]
    assert team["team_size"] == 7 and context.decision["postes_a_creer"] == 6
    assert "26\u202f000 × 2,5 ÷ 10\u202f000 = 6,5, arrondi à 7\u00a0médiateurs" in team["text"]
    assert "6 × 36\u202f000\u00a0€ = 216\u202f000\u00a0€" in team["text"]
    assert "6 × 22\u202f810,61\u00a0€ = 136\u202f863,66\u00a0€" in team["text"]  # the 2024 reference amount
    # Publics: the public of the first need of the ranking, the others as alternatives.
    assert recs["publics"]["public"] == "les habitants et usagers des espaces publics"
    assert "les élèves et leurs familles" in recs["publics"]["text"]
    # Hours: 5 evening-type observations reach the threshold; school option listed as an alternative.
    assert "soirée" in recs["horaires"]["title"] and "sortie d'école" in recs["horaires"]["text"]
    # Funding: one recommended, the others listed with why.
    funding = recs["financements"]
    assert "adultes-relais" in funding["title"] and "FIPD" in funding["text"] and "TFPB" in funding["text"]
    assert "Non retenus" in funding["text"] and "opérateur de transport (" in funding["text"]
    assert recs["gouvernance"]["choice"] == "municipal"
    for r in recs.values():
        assert r["type"] in {"stratégique", "opérationnelle"} and r["reason"]
    assert recs["domaine_espace_public"]["evidence"][0]["territoire"] == "QPA"


def test_cap_and_floor_are_stated(context):
    context.territories["population"] = [80000.0, 1000.0]
    context.needs.loc[context.needs["code"] == "QPB", "level"] = "moyen"
    team = by_id(recommend(context))["equipe"]
    assert team["team_size"] == 12 and "= 20,0, arrondi à 20\u00a0médiateurs" in team["text"]
    assert "plafonnée à 12" in team["text"]
    context.territories["population"] = [2000.0, 1000.0]
    team = by_id(recommend(context))["equipe"]
    assert team["team_size"] == 2 and "arrondi à 1\u00a0médiateur." in team["text"] and "au moins 2" in team["text"]


def test_no_unmet_need_no_team_but_a_light_option(context):
    context.needs["level"] = "faible"
    recs = by_id(recommend(context))
    assert recs["equipe"]["team_size"] == 0 and "Pas d'équipe" in recs["equipe"]["title"]
    assert "À réexaminer si" in recs["equipe"]["text"] and "permanence" in recs["equipe"]["text"]
    assert "gouvernance" not in recs and "financements" not in recs and "territoires_prioritaires" not in recs


def test_daytime_hours_without_evening_demand(context):
    context.observations = context.observations.head(4)
    context.needs = context.needs[context.needs["domain"] != "education"]
    assert by_id(recommend(context))["horaires"]["hours"].startswith("en journée")


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
    from diagnostic.analysis.recommend import DAYTIME, framing

    recs = recommend(context)
    frame = framing(context, recs)
    assert frame["territoires"] == ["Quartier A", "Quartier B"] and frame["population"] == 26000
    assert frame["equipe"] == 7 and frame["horaires"].startswith("en soirée")
    assert frame["objectifs"][0] == ("Réduire le besoin non couvert « Espace public et tranquillité » (niveau fort) "
                                     "au Quartier A")
    local = tmp_path / "recommandations_locales.yaml"
    local.write_text("retirer: [horaires, equipe]\n", encoding="utf-8")
    frame = framing(context, recommend(context, local=local))
    assert frame["horaires"] == DAYTIME and frame["equipe"] is None


def test_posts_in_place_are_the_first_funding_lead(context):
    """3 adultes-relais at 22,810.61 € (= 68,431.83 €) and 1 FONJEP post at 7,164 €: 75,595.83 € in all."""
    context.posts_in_place = {"year": 2024, "posts": {"adulte-relais": 3, "fonjep": 1},
                              "amounts": {"adulte-relais": 68431.83, "fonjep": 7164.0},
                              "contracts": [{"code": "CN00001M", "label": "Testville"}],
                              "later_partial": {2025: "montant médian par poste adulte-relais de 7 164 € en 2025"}}
    funding = by_id(recommend(context))["financements"]
    assert funding["choice"] == "postes_en_place" and "déjà des postes adultes-relais et FONJEP" in funding["title"]
    sentence = ("3\u00a0postes adultes-relais et 1\u00a0poste FONJEP sont déjà financés par l'État en 2024, dernière "
                "année complète des fichiers de l'ANCT, sur le contrat de ville «\u00a0Testville\u00a0» (CN00001M), pour "
                "75\u202f595,83\u00a0€, dont 68\u202f431,83\u00a0€ pour les postes adultes-relais et 7\u202f164\u00a0€ "
                "pour les postes FONJEP : c'est dans ce contrat que se demandent les postes nouveaux")
    assert sentence in funding["text"] and funding["in_place"].startswith(sentence)
    assert funding["leads"][:2] == ["le contrat de ville, qui finance déjà des postes adultes-relais et FONJEP",
                                    "postes adultes-relais de l'État, pour des habitants des QPV"]
    figures = {e["libelle"]: e["valeur"] for e in funding["evidence"]}
    assert figures["Postes adultes-relais financés en 2024 sur le contrat de ville (CN00001M)"] == 3
    assert figures["Montant de l'État pour les postes FONJEP en 2024 (€)"] == 7164.0
    assert "Année 2025 partielle dans les fichiers des postes" in figures
    # The team says where its posts in place come from.
    assert "(leur part des 3\u00a0postes adultes-relais du contrat de ville en 2024)" in by_id(recommend(context))["equipe"]["text"]
    # Without posts in place, the State's adultes-relais posts come first, as before.
    context.posts_in_place = None
    funding = by_id(recommend(context))["financements"]
    assert funding["choice"] == "adultes_relais" and "in_place" not in funding and not funding["evidence"]


def test_one_ratio_sizes_the_needs_and_the_team_from_the_run_reco_rules(tmp_path, capsys):
    """A ratio changed in the run's recommendation rules is the needs' response target and the team's ratio;
    a second target written in the needs rules is refused (code 10) before any work."""
    import yaml

    from diagnostic import cli
    from diagnostic.analysis.commune import build, results
    from diagnostic.analysis.indicators.needs import RULES_FILE
    from diagnostic.analysis.indicators.posts import RATIO_FILE
    from tests.util import DEMO_CATALOG, cache_in

    raw = yaml.safe_load(RATIO_FILE.read_text(encoding="utf-8"))
    raw["team"]["mediators_per_10000_inhabitants"] = 5
    reco = tmp_path / "recommandations.yaml"
    reco.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with cache_in(tmp_path / "cache"):
        d = build(DEMO_CATALOG, "99101", reco_rules=reco)
    saved = results(d)
    assert saved["decision"]["ratio"] == saved["decision"]["cible"]["ratio"] == 5
    whole = d.territories.loc[d.territories["share"] == 1, "code"]  # the target is sized on the whole quartier
    known = d.needs[d.needs["population"].notna() & d.needs["code"].isin(whole)]
    assert len(known) and (known["response_target"] == (known["population"] / 10_000 * 5).round(1)).all()
    answered = [r for r in d.needs["reason"] if "Réponse :" in r]
    assert answered and all("(5,0 pour 10 000 habitants)" in r for r in answered), answered[:1]

    needs = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    needs.setdefault("response", {})["target_per_10000"] = 4
    (tmp_path / "besoins.yaml").write_text(yaml.safe_dump(needs, allow_unicode=True), encoding="utf-8")
    code = cli.main(["run", "--catalog", str(DEMO_CATALOG), "--commune", "99101", "--output", str(tmp_path / "out"),
                     "--needs-rules", str(tmp_path / "besoins.yaml")])
    assert code == 10 and "ratio unique" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
