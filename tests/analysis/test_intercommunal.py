"""Intercommunal quartiers: each commune its own part, one joint service, one value for each quantity.

A hand-made territory (one QPV over two communes, 70 % / 30 % of its area) checks every per-commune figure;
the Hauts-de-France extract (skipped without ../shared/data/real) checks the real cases of the issue and that
the commune decisions and the regional synthesis agree, commune by commune.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from diagnostic.analysis.commune import build, commune_decision, commune_slice, results
from diagnostic.analysis.decision import decide, rows, size
from diagnostic.analysis.indicators.cache import compute
from diagnostic.analysis.indicators.needs import LEVEL_ORDER
from diagnostic.analysis.indicators.needs import load_rules as need_rules
from diagnostic.analysis.recommend import load_rules as reco_rules
from diagnostic.io.territory import load_territory
from tests.util import HDF, REAL

A, B, QPV = "99001", "99002", "QP099001"


def _square(x0: float, x1: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[x0, 50.60], [x1, 50.60], [x1, 50.61], [x0, 50.61], [x0, 50.60]]]}


def _write(path: Path, features: list[tuple[dict, dict]]) -> None:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": p, "geometry": g} for p, g in features]}), encoding="utf-8")


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    """Two communes side by side (3.00–3.02 and 3.02–3.04 °E) and one QPV over 3.006–3.026 °E: 70 % of its area in A."""
    folder = tmp_path_factory.mktemp("intercommunal")
    _write(folder / "communes.geojson", [({"code": A, "nom": "Amont"}, _square(3.00, 3.02)),
                                         ({"code": B, "nom": "Bourg"}, _square(3.02, 3.04))])
    _write(folder / "qpv.geojson", [({"code_qp": QPV, "lib_qp": "Les Deux Rives", "insee_com": f"{A},{B}",
                                      "siren_epci": "200000001"}, _square(3.006, 3.026))])
    (folder / "qpv.csv").write_text(f"code_qp,pop_mun,tp60,disp_q2\n{QPV},10000,45.0,11000\n", encoding="utf-8")
    (folder / "pop.csv").write_text(f"COM;PMUN\n{A};50000\n{B};20000\n", encoding="utf-8")
    (folder / "filosofi.csv").write_text(f"CODGEO;MED21;TP6021\n{A};15000;40,0\n{B};22000;12,0\n", encoding="utf-8")
    catalogue = {"name": "Deux communes (fictif)", "fictional": True, "sources": {
        "communes": {"path": "communes.geojson", "columns": {"insee_com": "code", "lib_com": "nom"}},
        "qpv": {"path": "qpv.geojson"},
        "qpv_indicators": {"path": "qpv.csv", "columns": {"code_qp": "code_qp"},
                           "indicators": {"population": "pop_mun", "poverty_rate": "tp60", "median_income": "disp_q2"}},
        "commune_indicators": [
            {"path": "pop.csv", "columns": {"insee_com": "COM"}, "indicators": {"population": "PMUN"}},
            {"path": "filosofi.csv", "columns": {"insee_com": "CODGEO"},
             "indicators": {"median_income": "MED21", "poverty_rate": "TP6021"}}]}}
    (folder / "catalogue.yaml").write_text(yaml.safe_dump(catalogue, allow_unicode=True), encoding="utf-8")
    data = load_territory(folder / "catalogue.yaml")
    return data, compute(data, use_cache=False)


def test_each_commune_has_its_own_part_and_its_own_references(hand):
    data, indicators = hand
    share = indicators.qpv_share.set_index("insee_com")
    assert share.loc[A, "qpv_population"] == pytest.approx(7000, rel=0.01)
    assert share.loc[B, "qpv_population"] == pytest.approx(3000, rel=0.01)
    for code, name, part, rate, income in ((A, "Amont", 7000, 40.0, 15000), (B, "Bourg", 3000, 12.0, 22000)):
        d = build(data, code, indicators=indicators)
        terr = d.territories.set_index("code").loc[QPV]
        assert terr["population"] == pytest.approx(part, rel=0.01) and terr["population_total"] == 10000
        assert bool(terr["intercommunal"])
        res = results(d)
        assert res["commune"]["population_qpv"] == pytest.approx(part, rel=0.01)
        assert res["qpv"][0]["intercommunal"] and res["qpv"][0]["part_commune"] == pytest.approx(part / 10000, rel=0.01)
        refs = d.social.set_index("indicator")
        # The reference column is the viewing commune's, not the first commune of the QPV's list.
        assert refs.loc["poverty_rate", "ref_commune"] == rate and refs.loc["median_income", "ref_commune"] == income
        assert refs.loc["poverty_rate", "lib_com"] == name


def test_one_joint_service_sized_on_the_whole_quartier(hand):
    """With the quartier's needs at « fort », each commune shows the same joint service and pays its own share."""
    data, indicators = hand
    needs_conf, reco = need_rules(), reco_rules()
    decisions = {}
    for code in (A, B):
        cut = commune_slice(data, indicators, code, needs_conf)
        assert len(cut.needs)
        cut.needs["level"] = "fort"
        decisions[code] = decide(cut.context(data, indicators, needs_conf), reco)
    joint = {code: d["services_communs"] for code, d in decisions.items()}
    assert all(len(j) == 1 for j in joint.values())
    whole = [{k: v for k, v in j[0].items() if not k.startswith("part")} for j in joint.values()]
    assert whole[0] == whole[1]  # one service, the same in both reports
    service = whole[0]
    # 10,000 × 2.5 ÷ 10,000 = 2.5, rounded half up to 3 mediators; 3 × 36,000 € = 108,000 €.
    assert service["population"] == 10000 and service["equipe"]["taille"] == 3 == size(10000, reco)["taille"]
    assert service["cout_annuel"] == 108000 and service["porteur"]["type"] == "epci"
    for code, part in ((A, 0.7), (B, 0.3)):
        d = decisions[code]
        j = joint[code][0]
        assert d["equipe"]["taille"] == 0  # no full team of its own
        assert d["population"] == pytest.approx(10000 * part, rel=0.01)
        assert j["part_commune"] == pytest.approx(part, rel=0.01)
        assert j["part_equipe"] == pytest.approx(3 * j["part_commune"], abs=0.01)
        assert d["total_commune"]["cout_annuel"] == pytest.approx(108000 * j["part_commune"], abs=0.01)
        assert d["mediateurs_necessaires"] == pytest.approx(j["part_equipe"])
        funders = sum(m["montant"] for m in d["financement"]["repartition"])
        assert funders == pytest.approx(d["total_commune"]["cout_annuel"], abs=0.02)
        # decision.csv renders the same object, figure by figure.
        table = rows(d).set_index(["perimetre", "element"])["valeur"]
        joint_scope = f"service commun Les Deux Rives ({QPV})"
        assert table[(joint_scope, "équipe")] == "3" and table[(joint_scope, "coût annuel")] == "108000"
        cost = f"{d['total_commune']['cout_annuel']:.2f}".rstrip("0").rstrip(".").replace(".", ",")
        assert table[("commune", "coût annuel total pour la commune")] == cost


# --------------------------------------------------------------------------- Hauts-de-France (real extracts)


@pytest.fixture(scope="module")
def hdf():
    if not (REAL / "PROVENANCE.md").exists():
        pytest.skip(f"extraits réels absents ({REAL}) : ce test nécessite ../shared/data/real à côté du dépôt")
    data = load_territory(HDF)
    return data, compute(data)


@pytest.fixture(scope="module")
def hdf_decisions(hdf):
    """Every HdF commune with a QPV: its slice and decision, by the functions of its report."""
    data, indicators = hdf
    needs_conf, reco = need_rules(), reco_rules()
    codes = list(data.communes.loc[data.communes["qpv_count"] > 0, "insee_com"])
    return {code: commune_decision(data, indicators, code, needs_conf, reco) for code in codes}


def test_a_quartier_need_has_one_robustness_in_each_member_report(hdf):
    """Robustness is the quartier's, on its whole population: Lens, Loison-sous-Lens and Vendin-le-Vieil, which share
    QP062025, say the same of each of its needs. Set against the whole quartier's responses, a commune's share of
    its people used to make a smaller weight of the responses lower a level, which no figure can do."""
    data, indicators = hdf
    said = {}
    for code in ("62498", "62523", "62842"):
        d = build(data, code, indicators=indicators)
        rows = d.needs[d.needs["code"] == "QP062025"]
        assert len(rows), code
        said[code] = dict(zip(rows["domain"], rows["robustness"]))
        for r in rows.itertuples():
            for moved in re.findall(r"poids des réponses existantes −\S+\s*% → (\S+)", r.robustness):
                assert LEVEL_ORDER[moved] <= LEVEL_ORDER[r.level], (code, r.domain, r.robustness)
    assert said["62498"] == said["62523"] == said["62842"]
    assert any(v.startswith("dépend des hypothèses") for v in said["62498"].values())


def test_roubaix_reference_column_is_roubaix(hdf):
    data, indicators = hdf
    d = build(data, "59512", indicators=indicators)
    refs = d.social.set_index(["code", "indicator"])
    for code in d.territories["code"]:
        assert refs.loc[(code, "poverty_rate"), "ref_commune"] == 46.0
        assert refs.loc[(code, "median_income"), "ref_commune"] == 14580
        assert refs.loc[(code, "population"), "ref_commune"] == 98892
        assert refs.loc[(code, "poverty_rate"), "lib_com"] == "Roubaix"


def test_no_team_sized_beyond_the_commune_own_quartiers(hdf, hdf_decisions):
    _, indicators = hdf
    own = indicators.qpv_share.set_index("insee_com")["qpv_population"]
    for code, (_, dec) in hdf_decisions.items():
        assert dec["equipe"]["population"] <= own[code] + 1e-6, code
        for j in dec["services_communs"]:  # a basis beyond the commune's own is a joint intercommunal service
            assert len(j["communes"]) > 1 and j["population"] > j["population"] * j["part_commune"]


def test_every_member_shows_the_same_joint_service(hdf_decisions):
    """A joint service appears in the decision of each of its member communes, sized the same (Douai's two
    intercommunal quartiers rank after its first three: they are still shown, as in Sin-le-Noble and Waziers)."""
    seen: dict[str, list[dict]] = {}
    for _, dec in hdf_decisions.values():
        for j in dec["services_communs"]:
            seen.setdefault(j["code"], []).append(j)
    assert seen
    for code, services in seen.items():
        members = {c["code"] for c in services[0]["communes"]}
        assert len(services) == len(members & set(hdf_decisions)), code
        whole = [{k: v for k, v in j.items() if not k.startswith("part")} for j in services]
        assert all(w == whole[0] for w in whole), code
        assert sum(j["part_commune"] for j in services) == pytest.approx(1.0, abs=0.01), code


@pytest.mark.parametrize("code", ["59346", "59163", "59220"])  # Lezennes, Croix, Faches-Thumesnil
def test_small_members_show_their_share_of_a_joint_service(hdf_decisions, code):
    _, dec = hdf_decisions[code]
    assert dec["services_communs"], "un QPV intercommunal est territoire d'intervention"
    for j in dec["services_communs"]:
        assert 0 < j["part_commune"] < 0.5 and j["part_equipe"] < j["equipe"]["taille"]
    assert dec["equipe"]["population"] == 0 or dec["equipe"]["taille"] <= 12


def test_commune_decisions_and_regional_synthesis_agree(hdf, hdf_decisions, tmp_path):
    """Posts in place, the target and missing posts are the same numbers in each commune's decision and in
    ``synthese_regionale.json``, and the fast synthesis equals the per-commune figures."""
    from diagnostic.analysis.region.synthesis import build_synthesis
    from diagnostic.analysis.region.synthesis import results as region_results

    data, _ = hdf
    synth = region_results(build_synthesis(data, tmp_path))
    rows = {r["code"]: r for r in synth["communes"]}
    assert set(rows) == set(hdf_decisions)
    for code, (cut, dec) in hdf_decisions.items():
        row, target = rows[code], dec["cible"]
        assert row["postes"]["total"] == pytest.approx(target["postes_en_place"]), code
        assert synth["regles"]["cible_postes_pour_10000"] == target["ratio"] == dec["ratio"]
        assert row["population_qpv"] == pytest.approx(target["population_qpv"]), code
        assert row["postes_manquants"] == pytest.approx(target["postes_manquants"], nan_ok=True), code
        assert row["equipe_preconisee"] == dec["equipe"]["taille"] and row["mediateurs_necessaires"] == dec["mediateurs_necessaires"]
        levels = set(cut.needs["level"]) if len(cut.needs) else set()
        assert row["niveau_besoin"] == next((lv for lv in ("fort", "moyen", "faible") if lv in levels), "indéterminé")
    # The full report of a few communes gives the same figures as the fast synthesis.
    for code in ("59512", "59350", "62498", "59346"):
        res = results(build(data, code, indicators=hdf[1]))
        row = rows[code]
        assert res["decision"]["cible"] == hdf_decisions[code][1]["cible"]
        assert res["decision"]["equipe"] == hdf_decisions[code][1]["equipe"]
        strong = {n["territoire"]: n["population"] for n in res["besoins_non_couverts"] if n["niveau"] in ("fort", "moyen")}
        assert row["habitants_concernes"] == pytest.approx(sum(strong.values()))
        assert row["domaines_forts"] == list(dict.fromkeys(
            n["domaine_libelle"] for n in res["besoins_non_couverts"] if n["niveau"] == "fort"))


def test_locate_without_outlines_names_only_the_commune_quartiers(hdf):
    """No HdF outlines: a point in Lille-Sud is answered with Lille and Lille's QPVs, never the Aisne's Europe."""
    from diagnostic.analysis.locate import locate
    from diagnostic.explorer import location_html

    data, _ = hdf
    answer = locate(data, 3.0470, 50.6129)
    assert answer["commune"]["code"] == "59350" and not answer["outlines"]
    assert {q["code"] for q in answer["commune_qpv"]} == set(data.qpv_in("59350")["code_qp"])
    assert answer["nearest_qpv"] is None and answer["qpv"] == []
    assert "contours des QPV ne sont pas fournis" in answer["note"] and "impossible de dire" in answer["note"]
    html = location_html(answer)
    assert "Europe" not in html and "Hors des QPV" not in html and "Secteur Sud" in html
    # Any commune with QPVs: the QPVs named are its own.
    with_qpv = data.communes[data.communes["qpv_count"] > 0]
    for row in with_qpv.itertuples():
        point = row.geometry.representative_point()
        found = locate(data, point.x, point.y, crs="EPSG:2154", per_domain=0)
        assert found["nearest_qpv"] is None and found["commune"]["code"] == row.insee_com
        assert {q["code"] for q in found["commune_qpv"]} <= set(data.qpv_in(row.insee_com)["code_qp"])
