"""Indicators: hand-computed cases on small geometries, the real Occitanie extract, needs, cache."""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from shapely.geometry import box

from diagnostic.analysis.indicators import cache as cache_mod
from diagnostic.analysis.indicators.cache import compute
from diagnostic.analysis.indicators.needs import (
    LEVEL_ORDER,
    RULES_FILE,
    describe,
    explain,
    load_rules,
)
from diagnostic.analysis.indicators.social import SECRET, aggregate
from diagnostic.io.territory import load_territory
from tests.util import DEMO_DIR


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIAGNOSTIC_CACHE", str(tmp_path / "cache"))


# --------------------------------------------------------------------------- hand-made territory
#   communes (4 km squares): 99001 [699000, 703000], 99002 [703000, 707000], 99003 [707000, 711000]
#   QN09901A: 1 km square in 99001; QN09902B: 800 m × 500 m over 99001 (200 m) and 99002 (600 m);
#   QN09903C: 500 m square in 99002. 99003 has no QPV.
Y0, Y1 = 6_599_000, 6_603_000
SERVICES = [
    # id, category (domain), x, y — distances from QN09901A's outline (box 700000-701000 × 6600000-6601000)
    ("S1", "ccas", 701_300, 6_600_500),          # acces_droits, exactly 300 m east of the edge
    ("S2", "caf", 700_500, 6_599_699.5),         # acces_droits, 300.5 m south of the edge
    ("S3", "mission_locale", 700_500, 6_600_500),  # emploi, inside
    ("S4", "arret_transport", 709_000, 6_601_000),  # transports, in 99003 (no QPV)
    ("S5", "police_municipale", 701_450, 6_601_000),  # espace_public, 450 m east of the edge
]


def write_hand(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    gpd.GeoDataFrame(
        {"code": ["99001", "99002", "99003"], "nom": ["Alpha", "Bêta", "Gamma"]},
        geometry=[box(699_000, Y0, 703_000, Y1), box(703_000, Y0, 707_000, Y1), box(707_000, Y0, 711_000, Y1)],
        crs="EPSG:2154",
    ).to_file(d / "communes.gpkg")
    gpd.GeoDataFrame(
        {"code_qp": ["QN09901A", "QN09902B", "QN09903C"], "lib_qp": ["Un", "Deux", "Trois"],
         "insee_com": ["99001", "99001,99002", "99002"]},
        geometry=[box(700_000, 6_600_000, 701_000, 6_601_000), box(702_800, 6_601_500, 703_600, 6_602_000),
                  box(704_000, 6_600_000, 704_500, 6_600_500)],
        crs="EPSG:2154",
    ).to_file(d / "qpv.gpkg")
    (d / "qpv_ind.csv").write_text(
        "code_qp;pop_mun;tp60;ind_jeune\nQN09901A;1200;45,0;1,5\nQN09902B;2000;s;1,0\nQN09903C;800;30,0;0,5\n",
        encoding="utf-8")
    (d / "pop.csv").write_text("COM;PMUN\n99001;10000\n99002;30000\n99003;5000\n", encoding="utf-8")
    (d / "filo.csv").write_text("CODGEO;TP6021;NBMENFISC21\n99001;20,0;4000\n99002;s;s\n99003;40,0;2000\n",
                                encoding="utf-8")
    lines = ["identifiant,nom,categorie,code_commune,x,y"]
    lines += [f"{i},{c},{c},,{x},{y}" for i, c, x, y in SERVICES]
    (d / "services.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    catalog = {
        "name": "cas calculés à la main",
        "sources": {
            "communes": {"path": "communes.gpkg", "columns": {"insee_com": "code", "lib_com": "nom"}},
            "qpv": {"path": "qpv.gpkg"},
            "qpv_indicators": {"path": "qpv_ind.csv", "vintage": "2021", "producer": "INSEE (test)",
                               "indicators": {"population": "pop_mun", "poverty_rate": "tp60",
                                              "youth_index": "ind_jeune"}},
            "commune_indicators": [
                {"path": "pop.csv", "columns": {"insee_com": "COM"}, "indicators": {"population": "PMUN"}},
                {"path": "filo.csv", "columns": {"insee_com": "CODGEO"}, "vintage": "2021",
                 "indicators": {"poverty_rate": "TP6021", "menages_fiscaux": "NBMENFISC21"}},
            ],
            "services": [{"path": "services.csv", "format": "csv", "crs": "EPSG:2154"}],
        },
    }
    (d / "catalogue.yaml").write_text(yaml.safe_dump(catalog, allow_unicode=True), encoding="utf-8")
    return d / "catalogue.yaml"


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    data = load_territory(write_hand(tmp_path_factory.mktemp("hand")))
    return data, compute(data, use_cache=False)


def _cov(result, code: str, domain: str) -> pd.Series:
    cov = result.coverage
    return cov[(cov["code"] == code) & (cov["domain"] == domain)].iloc[0]


def test_band_edge_exactly_300_m_counts_and_300_5_does_not(hand):
    _, res = hand
    row = _cov(res, "QN09901A", "acces_droits")
    assert row["services_inside"] == 0
    assert row["services_band"] == 1  # S1 at 300 m is in; S2 at 300.5 m is out
    assert row["nearest_m"] == pytest.approx(300.0, abs=1e-9)
    assert row["per_1000"] == pytest.approx(1000 * 1 / 1200)
    assert row["population"] == 1200


def test_band_width_is_a_parameter(hand):
    data, _ = hand
    wider = compute(data, band_m=301, use_cache=False)
    assert _cov(wider, "QN09901A", "acces_droits")["services_band"] == 2
    assert wider.params["band_m"] == 301.0
    narrow = compute(data, band_m=200, use_cache=False)
    assert _cov(narrow, "QN09901A", "acces_droits")["services_band"] == 0


def test_distance_edge_to_point(hand):
    _, res = hand
    assert _cov(res, "QN09901A", "emploi")[["services_inside", "services_band", "nearest_m"]].tolist() == [1, 1, 0.0]
    assert _cov(res, "QN09901A", "espace_public")["nearest_m"] == pytest.approx(450.0)
    assert _cov(res, "QN09901A", "espace_public")["services_band"] == 0
    # QN09902B (x ≥ 702800, y ≥ 6601500) to S1 (701300, 6600500): a corner-to-point distance.
    assert _cov(res, "QN09902B", "acces_droits")["nearest_m"] == pytest.approx(math.hypot(1500, 1000))
    # QN09903C (704000-704500 × 6600000-6600500) to S4 (709000, 6601000).
    assert _cov(res, "QN09903C", "transports")["nearest_m"] == pytest.approx(math.hypot(4500, 500))
    # A domain without any service has no distance, not zero.
    assert np.isnan(_cov(res, "QN09901A", "sante")["nearest_m"])


def test_qpv_over_two_communes(hand):
    data, res = hand
    assert data.qpv.set_index("code_qp").loc["QN09902B", "communes"] == "99001,99002"
    assert "QN09902B" in set(data.qpv_in("99001")["code_qp"]) and "QN09902B" in set(data.qpv_in("99002")["code_qp"])
    share = res.qpv_share.set_index("insee_com")
    # 200 m of its 800 m width lie in 99001: 25 % of 2,000 inhabitants.
    assert share.loc["99001", "qpv_population"] == pytest.approx(1200 + 500)
    assert share.loc["99002", "qpv_population"] == pytest.approx(1500 + 800)
    assert share.loc["99001", "qpv_share"] == pytest.approx(17.0)
    assert share.loc["99002", "qpv_share"] == pytest.approx(100 * 2300 / 30000)
    assert bool(share.loc["99001", "split"]) and bool(share.loc["99002", "split"])
    assert share["qpv_population"].sum() == pytest.approx(4000)  # the split conserves population


def test_secret_value_stays_missing(hand):
    _, res = hand
    social = res.qpv_social.set_index(["code_qp", "indicator"])
    secret = social.loc[("QN09902B", "poverty_rate")]
    assert np.isnan(secret["value"]) and secret["status"] == SECRET
    assert np.isnan(secret["gap_all_qpv"])
    # Mean of all QPVs, weighted by population, over QPVs with a value: the secret is left out, not 0.
    expected = (45.0 * 1200 + 30.0 * 800) / (1200 + 800)
    assert secret["ref_all_qpv"] == pytest.approx(expected) == pytest.approx(39.0)
    assert social.loc[("QN09901A", "poverty_rate"), "gap_all_qpv"] == pytest.approx(6.0)
    ev = res.evidence[(res.evidence["code"] == "QN09902B") & (res.evidence["indicator"] == "poverty_rate")]
    assert len(ev) and ev["status"].eq(SECRET).all() and ev["position"].isna().all()
    # Commune level: department reference weighted by population, secret 99002 left out.
    com = res.commune_social.set_index(["insee_com", "indicator"])
    assert com.loc[("99002", "poverty_rate"), "status"] == SECRET
    assert com.loc[("99001", "poverty_rate"), "ref_department"] == pytest.approx((20 * 10000 + 40 * 5000) / 15000)
    # A count with a secret cell has no total rather than a false one.
    assert np.isnan(com.loc[("99001", "menages_fiscaux"), "ref_department"])


def test_secret_alone_gives_undetermined_need_not_zero(hand):
    _, res = hand
    needs = res.needs[res.needs["level_territory"] == "commune"].set_index(["code", "domain"])
    # Commune 99002: poverty rate secret, no youth index at commune level → « santé » cannot be measured.
    row = needs.loc[("99002", "sante")]
    assert np.isnan(row["need"]) and row["level"] == "indéterminé"


def test_commune_without_qpv_has_coverage_and_needs(hand):
    data, res = hand
    assert data.communes.set_index("insee_com").loc["99003", "qpv_count"] == 0
    cov = res.coverage[(res.coverage["level"] == "commune") & (res.coverage["code"] == "99003")]
    assert len(cov) == 8
    t = cov.set_index("domain").loc["transports"]
    assert (t["services_inside"], t["nearest_m"], t["population"]) == (1, 0.0, 5000)
    assert t["per_1000"] == pytest.approx(0.2)
    assert cov.set_index("domain").loc["acces_droits", "nearest_m"] == pytest.approx(707_000 - 701_300)
    needs = res.needs[(res.needs["level_territory"] == "commune") & (res.needs["code"] == "99003")]
    assert set(needs["domain"]) == set(cov["domain"])
    # Poverty 40 % among the communes with a value (20 % and 40 %): mid-rank percentile (1 + 0.5) / 2 = 0.75,
    # the only indicator of access to rights here; no réponse of the domain in 99003 → unmet 0.75, « fort ».
    row = needs.set_index("domain").loc["acces_droits"]
    assert row["need"] == pytest.approx(0.75) and row["response"] == 0 and row["level"] == "fort"
    assert res.qpv_share.set_index("insee_com").loc["99003", "qpv_share"] == 0.0


def test_population_weighted_aggregate_by_hand():
    values = pd.Series({"a": 10.0, "b": np.nan, "c": 40.0})
    weights = pd.Series({"a": 3000.0, "b": 5000.0, "c": 1000.0})
    value, covered = aggregate(values, weights, "taux")
    assert value == pytest.approx((10 * 3000 + 40 * 1000) / 4000)  # 17.5, not (10 + 40) / 2
    assert covered == pytest.approx(4000 / 9000)
    total, _ = aggregate(pd.Series({"a": 1.0, "b": np.nan}), pd.Series({"a": 1.0, "b": 1.0}), "effectif")
    assert np.isnan(total)
    assert aggregate(pd.Series({"a": 2.0, "b": 3.0}), pd.Series({"a": 1.0, "b": 1.0}), "effectif")[0] == 5.0


# --------------------------------------------------------------------------- Occitanie (real)
@pytest.fixture(scope="module")
def occ_result(occitanie):
    return compute(occitanie, use_cache=False)


def _occ_csv(real_dir: Path) -> dict[str, dict[str, str]]:
    with open(real_dir / "occitanie_qpv2015_indicateurs.csv", encoding="utf-8-sig", newline="") as fh:
        return {r["code_qp"]: r for r in csv.DictReader(fh)}


def test_toulouse_population_and_poverty_per_qpv(occ_result, real_dir):
    rows = _occ_csv(real_dir)
    toulouse = {c: r for c, r in rows.items() if "Toulouse" in r["nom_commune"]}
    share = occ_result.qpv_share.set_index("insee_com").loc["31555"]
    assert share["qpv_population"] == 55_543 == sum(int(r["pop_mun"]) for r in toulouse.values())
    assert share["qpv_count"] == 12
    assert share["qpv_share"] == pytest.approx(100 * 55_543 / int(toulouse["QP031007"]["pop_com"]))
    social = occ_result.qpv_social
    pov = social[(social["indicator"] == "poverty_rate") & (social["insee_com"] == "31555")].set_index("code_qp")
    assert sorted(pov.index) == sorted(toulouse)
    for code, r in toulouse.items():
        assert pov.loc[code, "value"] == float(r["tp60"]), code
    assert pov.loc["QP031007", "value"] == 48.5
    # The mean of all QPVs is weighted by population, computed here from the file.
    num = sum(float(r["tp60"]) * float(r["pop_mun"]) for r in rows.values())
    den = sum(float(r["pop_mun"]) for r in rows.values())
    assert pov["ref_all_qpv"].iloc[0] == pytest.approx(num / den)
    assert pov.loc["QP031007", "gap_all_qpv"] == pytest.approx(48.5 - num / den)


def test_occitanie_counted_coverage_equals_csv(occ_result, real_dir):
    rows = _occ_csv(real_dir)
    cov = occ_result.coverage[occ_result.coverage["level"] == "qpv"].set_index(["code", "domain"])
    assert len(cov.xs("education", level="domain")) == 83
    for code, r in rows.items():
        expected = int(r["ec_mat"]) + int(r["ec_elem"]) + int(r["coll"])
        assert cov.loc[(code, "education"), "services_band"] == expected, code
        assert cov.loc[(code, "sante"), "services_band"] == int(r["ens_sante"]), code
    gm = cov.loc[("QP031007", "education")]
    assert gm["services_band"] == 38 and gm["per_1000"] == pytest.approx(1000 * 38 / 31_691)
    assert "comptages publiés" in gm["method"] and np.isnan(gm["nearest_m"])


def test_occitanie_needs_carry_evidence(occ_result):
    needs = occ_result.needs[occ_result.needs["level_territory"] == "qpv"]
    assert (needs["rank"] == np.arange(1, len(needs) + 1)).all()
    assert needs["level"].map(LEVEL_ORDER).is_monotonic_increasing
    top = needs.iloc[0]
    items = explain(needs.iloc[[0]], occ_result.evidence)[0]
    indicators = [i for i in items if i["type"] == "indicateur"]
    assert indicators, "a need without figures"
    for item in indicators:
        assert item["valeur"] is not None or item["statut"]
        assert item["reference"] is not None and item["reference_libelle"].startswith("médiane des")
        assert "INSEE" in item["source"] and item["millesime"] == "2017"
    # Occitanie has no services: the response is unknown, never a 0 count.
    cover = next(i for i in items if i["type"] == "couverture")
    assert cover["connue"] is False and cover["valeur"] is None
    assert np.isnan(top["response"]) and "non mesurée" in top["note"]
    # Every evidence figure is the one of the source table.
    pov = [i for i in indicators if i["indicateur"] == "poverty_rate"]
    value = occ_result.qpv_social.set_index(["code_qp", "indicator"]).loc[(top["code"], "poverty_rate"), "value"]
    assert pov[0]["valeur"] == round(float(value), 2)


# --------------------------------------------------------------------------- demo: expressed needs
@pytest.fixture(scope="module")
def demo_result(demo):
    return compute(demo, use_cache=False)


def test_expressed_needs_raise_a_level_or_say_why_not(demo_result, demo):
    needs = demo_result.needs[demo_result.needs["level_territory"] == "qpv"].set_index(["code", "domain"])
    row = needs.loc[("QN09901A", "espace_public")]
    obs = demo.observations
    mask = (obs["code_qp"] == "QN09901A") & (obs["domain"] == "espace_public")
    assert row["obs_count"] == mask.sum() == 11  # 6 marches exploratoires + 5 questionnaires
    assert row["obs_source_count"] == 2 and row["raised"]
    assert row["level"] == "fort" and LEVEL_ORDER[row["level"]] <= LEVEL_ORDER[row["level_measured"]]
    assert "marche exploratoire : 6" in row["obs_sources"]
    flat = demo_result.needs
    flat_rows = flat[(flat["level_territory"] == "qpv") & (flat["code"] == "QN09901A")
                     & (flat["domain"] == "espace_public")]
    expressed_items = [i for i in explain(flat_rows, demo_result.evidence)[0] if i["type"] == "besoin exprime"]
    assert expressed_items and expressed_items[0]["valeur"] == 11 and expressed_items[0]["poids"] == 11.0
    described = describe(demo_result.needs[demo_result.needs["level_territory"] == "qpv"], demo_result.evidence,
                         load_rules()).set_index(["code", "domain"])
    # The request that started the diagnostic (tensions at the bus stops of La Garenne): low on the figures,
    # raised by the survey, the exploratory walk and a meeting — and the reason says so.
    bus = described.loc[("QN09903C", "transports")]
    assert bus["level_measured"] == "faible" and bus["raised"] and bus["level"] == "moyen"
    assert bus["obs_source_count"] == 3 and "relevé à moyen par les besoins exprimés" in bus["reason"]
    assert bus["expressed_reason"].startswith("Demande exprimée retenue")
    # Answers to one questionnaire only: not raised, and the reason says what is missing.
    single = described[(described["obs_source_count"] == 1) & (described["obs_weight"] >= 5)
                       & (described["level_measured"] != "fort")]
    assert len(single) and not single["raised"].any()
    for reason in single["expressed_reason"]:
        assert reason.startswith("Demande exprimée non retenue") and "2\u00a0types de source" in reason
    # Nobody raised anything: no expressed reason, level from the figures alone.
    quiet = described.loc[("QN09902B", "habitat")]
    assert quiet["obs_count"] == 0 and quiet["expressed_reason"] == "" and quiet["level"] == quiet["level_measured"]
    assert "retenue" in described.loc[("QN09901A", "espace_public"), "expressed_reason"]
    assert row["obs_weight"] == 11


def test_demo_secret_commune_need_is_undetermined(demo_result):
    """Saint-Aubin (99102): poverty rate secret; a domain resting on it alone is « indéterminé » and says why."""
    needs = demo_result.needs[demo_result.needs["level_territory"] == "commune"].set_index(["code", "domain"])
    public = needs.loc[("99102", "espace_public")]
    assert np.isnan(public["need"]) and public["level"] == "indéterminé" and np.isnan(public["priority"])
    public = describe(needs.reset_index().query("code == '99102'"), demo_result.evidence, load_rules()).set_index("domain").loc["espace_public"]
    assert "secret statistique" in public["missing"] and "indéterminé" in public["reason"]
    droits = needs.loc[("99102", "acces_droits")]
    assert droits["obs_count"] == 1 and not droits["raised"]


def test_cache_second_call_reads_from_disk(demo, monkeypatch, tmp_path):
    first = compute(demo)
    folder = tmp_path / "cache" / "indicateurs" / first.key
    assert (folder / "done").exists()
    assert {p.name for p in folder.glob("*.parquet")} == {f"{t}.parquet" for t in cache_mod.TABLES} | {"qpv.parquet"}

    def boom(*a, **k):
        raise AssertionError("recomputed instead of reading the cache")

    monkeypatch.setattr(cache_mod, "_compute", boom)
    monkeypatch.setattr(cache_mod, "_RECENT", {})  # a new process: nothing in memory yet
    second = compute(demo)
    assert second.key == first.key and second is not first
    # In the same process (a warm kernel, a batch worker), the tables read are kept: not read again.
    monkeypatch.setattr(cache_mod, "_read", boom)
    assert compute(demo) is second
    pd.testing.assert_frame_equal(second.needs.reset_index(drop=True), first.needs.reset_index(drop=True),
                                  check_dtype=False)
    pd.testing.assert_frame_equal(second.coverage, first.coverage, check_dtype=False)
    assert second.qpv.crs.to_epsg() == 2154


def test_cache_invalidated_when_a_data_file_changes(demo, tmp_path):
    first = compute(demo)
    shutil.copytree(DEMO_DIR, tmp_path / "demo")
    path = tmp_path / "demo" / "qpv_indicateurs.csv"
    text = path.read_text(encoding="utf-8")
    assert ",44.6," in text
    path.write_text(text.replace(",44.6,", ",60.0,", 1), encoding="utf-8")
    changed = compute(load_territory(tmp_path / "demo" / "catalogue.yaml"))
    assert changed.key != first.key
    get = lambda r: r.qpv_social.set_index(["code_qp", "indicator"]).loc[("QN09901A", "poverty_rate"), "value"]
    assert (get(first), get(changed)) == (44.6, 60.0)
    assert (tmp_path / "cache" / "indicateurs" / changed.key / "done").exists()


def test_cache_invalidated_when_rules_or_parameters_change(demo, tmp_path):
    first = compute(demo)
    rules = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    rules["levels"] = {"fort": 0.05, "moyen": 0.01}
    rules_path = tmp_path / "besoins.yaml"  # same file name, other content
    rules_path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    other = compute(demo, rules_path=rules_path)
    assert other.key != first.key
    assert (other.needs["level"] == "fort").sum() > (first.needs["level"] == "fort").sum()
    assert compute(demo, band_m=500).key not in (first.key, other.key)


def test_cache_invalidated_when_the_code_changes(demo, tmp_path, monkeypatch):
    """Tables cached by another version of the package's code are not reused (a fix must reach the report)."""
    import diagnostic
    from diagnostic.analysis.indicators import cache

    package = Path(diagnostic.__file__).parent
    copy = shutil.copytree(package, tmp_path / "diagnostic", ignore=shutil.ignore_patterns("__pycache__"))
    assert cache.code_fingerprint(copy) == cache.code_fingerprint()
    with open(copy / "text.py", "a", encoding="utf-8") as f:
        f.write("\n# une correction\n")
    assert cache.code_fingerprint.__wrapped__(copy) != cache.code_fingerprint()  # uncached: the file changed
    first = compute(demo)
    monkeypatch.setattr(cache, "code_fingerprint", lambda: "une autre version du code")
    assert compute(demo).key != first.key


def test_region_and_department_references_on_hauts_de_france(real_dir):
    """Lille's poverty rate beside its department and region, weighted by PMUN, recomputed with csv."""
    import csv

    from diagnostic.analysis.indicators.social import commune_social
    from diagnostic.io.territory import load_territory
    from tests.util import HDF

    data = load_territory(HDF)
    with open(real_dir / "hdf_populations_legales_communes.csv", encoding="utf-8") as fh:
        pop = {r["COM"]: float(r["PMUN"]) for r in csv.DictReader(fh, delimiter=";")}
    with open(real_dir / "hdf_filosofi_2021_communes.csv", encoding="utf-8") as fh:
        rate = {r["CODGEO"]: float(r["TP6021"].replace(",", ".")) for r in csv.DictReader(fh, delimiter=";")
                if r["TP6021"] not in ("s", "nd", "")}
    communes = set(data.communes["insee_com"])
    both = [c for c in rate if c in pop and c in communes]

    def weighted(codes):
        return sum(pop[c] * rate[c] for c in codes) / sum(pop[c] for c in codes)

    lille = commune_social(data).query("insee_com == '59350' and indicator == 'poverty_rate'").iloc[0]
    assert lille["value"] == 27.0
    assert lille["ref_region"] == pytest.approx(weighted(both))
    assert lille["ref_department"] == pytest.approx(weighted([c for c in both if c.startswith("59")]))
    assert set(data.communes["insee_reg"]) == {"32"}
