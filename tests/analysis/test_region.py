"""The regional synthesis: posts counted, attributed and ranked by the documented rule; the page and its JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from diagnostic import cli
from diagnostic.analysis.indicators.posts import attribute_posts
from diagnostic.analysis.region import posts as pt
from diagnostic.analysis.region.rules import load_rules
from diagnostic.analysis.region.synthesis import build_synthesis, results
from diagnostic.analysis.region.territories import assess, rank, reason, strongest
from diagnostic.io.sources.employers import employer_type
from diagnostic.report.region.page import (
    CSV_NAME,
    HTML_NAME,
    JSON_NAME,
    PDF_NAME,
    PNG_NAME,
    write_synthesis,
)
from tests.util import DEMO_CATALOG


@pytest.fixture(scope="module")
def rules():
    return load_rules()


def _territories(**columns) -> pd.DataFrame:
    base = {"code": ["A", "B", "C", "D", "E"], "name": ["Alpha", "Bravo", "Charlie", "Delta", "Echo"],
            "qpv_count": [1, 1, 1, 1, 1], "strong_domains": [[]] * 5, "medium_domains": [[]] * 5,
            "posts_adulte-relais": [0.0] * 5, "posts_fonjep": [0.0] * 5, "posts_shared": [0.0] * 5}
    return pd.DataFrame({**base, **columns})


def test_ranking_follows_the_documented_rule(rules):
    # Target: the one ratio, 2.5 per 10,000. A: fort, 20,000 inh., 1 post → 4 missing. B: fort, 10,000 inh., 1 post
    # → 1.5 missing. C: moyen, 40,000 inh., 0 post → 10 missing (but moyen comes after fort). D: fort, well equipped
    # (4 per 10,000). E: faible need, below target → not a prospect.
    assert rules["target_per_10000"] == 2.5
    table = _territories(qpv_population=[20_000, 10_000, 40_000, 10_000, 10_000],
                         need_level=["fort", "fort", "moyen", "fort", "faible"],
                         posts=[1.0, 1.0, 0.0, 4.0, 1.0])
    assessed = assess(table, rules)
    assert list(assessed["status"]) == ["a_prospecter", "a_prospecter", "a_prospecter", "bien_dote", "sous_cible"]
    assert assessed.loc[0, "ratio"] == pytest.approx(0.5)
    assert assessed.loc[0, "missing_posts"] == pytest.approx(4.0)
    assert assessed.loc[3, "gap"] == pytest.approx(1.5)
    ranked = rank(assessed, rules)
    assert list(ranked["code"]) == ["A", "B", "C"]
    assert list(ranked["rank"]) == [1, 2, 3]
    # The rule is the file's: population first puts C (40,000) ahead, then A (20,000), then B.
    by_population = rank(assessed, {**rules, "ranking": ["qpv_population"]})
    assert list(by_population["code"]) == ["C", "A", "B"]
    sentence = reason(ranked.iloc[0], rules).replace("\u202f", " ").replace("\xa0", " ")
    assert "Besoin fort ; 20 000 habitants en QPV (1 QPV) ; 1 poste adulte-relais en place" in sentence
    assert "soit 0,5 pour 10 000 habitants des QPV" in sentence
    assert "sous la cible de 2,5 : 4 postes manquants" in sentence


def test_unknown_population_is_undetermined_not_zero(rules):
    table = _territories(qpv_population=[None, 0, 1, 1, 1], need_level=["fort"] * 5, posts=[3.0, 3.0, 0, 0, 0])
    assessed = assess(table, rules)
    assert list(assessed["status"][:2]) == ["indetermine", "indetermine"]
    assert assessed["ratio"][:2].isna().all()
    assert "ratio incalculable" in reason(assessed.iloc[0], rules)


def test_strongest_level():
    assert strongest(["faible", "moyen", "indéterminé"]) == "moyen"
    assert strongest(["fort", "faible"]) == "fort"
    assert strongest([]) == "indéterminé"


def test_intercommunal_posts_shared_by_qpv_population():
    communes = pd.DataFrame({"insee_com": ["59001", "59002", "59003"], "siren_epci": ["200000001"] * 2 + ["200000002"],
                             "qpv_population": [3000.0, 1000.0, 500.0], "qpv_count": [2, 1, 1]})
    posts = pd.DataFrame({
        "programme": ["adulte-relais"] * 10 + ["fonjep"] * 2 + ["adulte-relais"] * 3,
        "holder_commune": [pd.NA] * 12 + ["59003"] * 3,
        "siren_epci": ["200000001"] * 12 + ["200000002"] * 3,
    })
    out = attribute_posts(communes, posts, ["adulte-relais", "fonjep"]).set_index("insee_com")
    assert out.loc["59001", "posts_adulte-relais"] == pytest.approx(7.5)
    assert out.loc["59002", "posts_adulte-relais"] == pytest.approx(2.5)
    assert out.loc["59001", "posts_fonjep"] == pytest.approx(1.5)
    assert out.loc["59001", "posts"] == pytest.approx(7.5)  # FONJEP posts are shown, not counted against the target
    assert out.loc["59003", "posts"] == 3 and out.loc["59003", "posts_shared"] == 0


def test_posts_count_once_per_programme_and_year():
    ar = pd.DataFrame({"year": [2024, 2024, 2025], "post_id": ["P1", "P1", "P1"], "employer": ["X"] * 3,
                       "code_cv": ["CN1"] * 3, "insee_dep": ["59"] * 3})
    fonjep = pd.DataFrame({"year": ["2024"], "post_id": ["P1"], "employer": ["Y"], "code_cv": ["CN1"],
                           "insee_dep": ["59"]})
    stacked = pt.stack({"adulte-relais": ar, "fonjep": fonjep})
    counted = pt.counts(stacked, ["insee_dep"]).set_index(["programme", "year"])["posts"]
    assert counted.to_dict() == {("adulte-relais", 2024): 1, ("adulte-relais", 2025): 1, ("fonjep", 2024): 1}


@pytest.mark.parametrize(("name", "siret", "expected"), [
    ("CENTRE SOCIAL EST - ASSOCIATION ALFA 3A", "77554402601284", "centre_social"),
    ("BOURG HABITAT", "27010003500012", "bailleur"),
    ("Commune de Roubaix", None, "commune"),
    ("CCAS DE DENAIN", "26590000000017", "commune"),
    ("ASSOCIATION LYS MEDIATION", "77812345600017", "mediation"),
    ("SIVOM DU VAL", "21590000000000", "commune"),
    ("XYZ", "21590350100017", "commune"),
    ("XYZ", "27590000000000", "bailleur"),
    ("ASSOCIATION DES HABITANTS", None, "association"),
    ("ZEBRE", "44444444400000", "autre"),
])
def test_employer_type_rule(rules, name, siret, expected):
    """Names first (whole words, accents ignored: « habitants » is not « habitat »), then the SIREN prefix."""
    assert employer_type(name, siret, rules) == expected


def test_rules_file_errors_are_french(tmp_path):
    from diagnostic.errors import CatalogError

    bad = tmp_path / "region.yaml"
    bad.write_text(yaml.safe_dump({"ranking": ["hasard"]}), encoding="utf-8")
    with pytest.raises(CatalogError, match="clé\\(s\\) de classement inconnue\\(s\\) : hasard"):
        load_rules(bad)
    # The target is the one ratio of recommandations.yaml: a second number here is refused, not silently used.
    bad.write_text(yaml.safe_dump({"target_per_10000": 10, "ranking": ["ratio"]}), encoding="utf-8")
    with pytest.raises(CatalogError, match="ratio unique de recommandations.yaml"):
        load_rules(bad)


@pytest.fixture(scope="module")
def demo_region(tmp_path_factory):
    """The demo's synthesis with its PDF, by the command line in its own process (Chromium prints the PDF
    through playwright's sync API, which cannot run beside the tests' open browser)."""
    pytest.importorskip("playwright.sync_api")
    out = tmp_path_factory.mktemp("region")
    done = subprocess.run([sys.executable, "-m", "diagnostic", "region", "--catalog", str(DEMO_CATALOG),
                           "--output", str(out), "--pdf"], check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Synthèse régionale : 1 EPCI, 2\u00a0communes avec QPV" in done.stdout
    return out


def test_demo_synthesis_files_and_json(demo_region):
    for name in (HTML_NAME, JSON_NAME, PNG_NAME):
        assert (demo_region / name).is_file()
    data = json.loads((demo_region / JSON_NAME).read_text(encoding="utf-8"))
    assert data["schema"] == "diagnostic-synthese-regionale/1"
    assert data["donnees_fictives"] is True
    assert data["annee_de_reference"] == 2023
    # The demo's one contract (CV999, held by its CA) has 4 posts in 2023 for the 13,255 inhabitants of its QPVs.
    (epci,) = data["epci"]
    assert epci["postes"]["total"] == 4 and epci["population_qpv"] == pytest.approx(13_255)
    assert epci["postes_pour_10000"] == pytest.approx(4 / 13_255 * 10_000)
    assert sum(c["postes"]["total"] for c in data["communes"]) == pytest.approx(4)
    assert [c["rang"] for c in data["a_prospecter"]["communes"]] == list(range(1, len(data["a_prospecter"]["communes"]) + 1))
    years = {(r["programme"], r["year"]): r["posts"] for r in data["evolution_des_postes"]["departements"]}
    assert years == {("adulte-relais", 2022): 3, ("adulte-relais", 2023): 4}
    assert any("FONJEP" in m for m in data["sources_manquantes"])
    page = (demo_region / HTML_NAME).read_text(encoding="utf-8")
    assert "Données fictives" in page and "Communes à prospecter" in page


def test_pdf_of_the_synthesis(demo_region):
    from diagnostic.report.pdf import page_texts

    pdf = (demo_region / PDF_NAME).read_bytes()
    assert pdf.startswith(b"%PDF")
    text = " ".join(" ".join(page_texts(pdf)).split())
    assert "Communes à prospecter" in text and "Villeneuve-sur-Lys" in text


def test_pdf_of_the_synthesis_is_a_document(demo_region):
    """Every printed page says « Page n sur N »; the contents give pages; the static map is printed, not the
    Leaflet map with its zoom buttons and attribution; no file name for the reader."""
    from diagnostic.report.pdf import page_texts

    pages = page_texts((demo_region / PDF_NAME).read_bytes())
    for n, page in enumerate(pages, 1):
        assert f"Page {n} sur {len(pages)}" in page, n
    joined = " ".join(" ".join(pages).split())
    assert "Leaflet" not in joined and "Zoom in" not in joined and "+ −" not in joined
    assert "Carte imprimable" in joined
    contents = " ".join(pages[0].split())
    assert "p. 2" in contents  # « En bref » starts on page 2, after the cover and contents
    for name in ("synthese_regionale.json", "region.yaml", ".csv", "--rules", "rôle «"):
        assert name not in joined, name
    assert (demo_region / CSV_NAME).read_text(encoding="utf-8-sig").startswith("commune;commune_nom;")


@pytest.mark.browser
def test_synthesis_fits_a_phone(demo_region, offline_page):
    """At 390 px nothing overflows sideways: every table scrolls inside its own container."""
    page, _ = offline_page(demo_region / HTML_NAME)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    assert page.evaluate("Array.from(document.querySelectorAll('table')).every(t => t.closest('.table-wrap'))")


def test_links_to_commune_reports_of_a_batch(tmp_path):
    """A report and a current manifest in the folder: the page links to the report and reuses its results when
    their fingerprint is the current one, and computes them again when it is not."""
    from diagnostic.analysis.commune import build
    from diagnostic.analysis.commune import results as commune_results
    from diagnostic.pipeline.manifest import input_hashes
    from diagnostic.pipeline.run import run_parameters

    first = build_synthesis(DEMO_CATALOG, tmp_path)
    code = first.communes.iloc[0]["code"]
    digest = input_hashes(first.data, {code: run_parameters(first.data, code)})[code]

    res = commune_results(build(first.data, code))
    res["besoins_non_couverts"] = [{"niveau": "fort", "domaine": "transports", "domaine_libelle": "Transports"}]
    (tmp_path / code).mkdir()
    (tmp_path / code / "resultats.json").write_text(json.dumps(res), encoding="utf-8")
    (tmp_path / code / "rapport.html").write_text("<html lang='fr'></html>", encoding="utf-8")
    (tmp_path / "manifest.json").write_text(json.dumps({"communes": {code: {"statut": "ok", "empreinte": "ancienne"}}}),
                                            encoding="utf-8")
    stale = build_synthesis(first.data, tmp_path).communes.set_index("code").loc[code]
    assert stale["results_origin"] == "calculé" and stale["strong_domains"] != ["Transports"]
    (tmp_path / "manifest.json").write_text(json.dumps({"communes": {code: {"statut": "ok", "empreinte": digest}}}),
                                            encoding="utf-8")
    synth = build_synthesis(first.data, tmp_path)
    row = synth.communes.set_index("code").loc[code]
    assert row["report"] == f"{code}/rapport.html" and row["results_origin"] == "lot"
    assert row["strong_domains"] == ["Transports"]
    write_synthesis(synth, tmp_path)
    assert f'href="{code}/rapport.html"' in (tmp_path / HTML_NAME).read_text(encoding="utf-8")


def _catalogue_without(tmp_path: Path, *roles: str) -> Path:
    """The demo catalogue without some roles, its paths read from the demo folder (given as data folder)."""
    raw = yaml.safe_load(DEMO_CATALOG.read_text(encoding="utf-8"))
    for role in roles:
        raw["sources"].pop(role)
    raw["paths_relative_to"] = "data_dir"
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_catalogue_without_posts_says_so(tmp_path):
    synth = build_synthesis(_catalogue_without(tmp_path, "adultes_relais"), tmp_path / "out",
                            data_dir=DEMO_CATALOG.parent)
    assert any("pas de postes adultes-relais ni FONJEP" in m for m in synth.missing)
    # Unknown, never 0: no ratio, no missing posts, no territory « à prospecter » or « bien doté » on posts unseen.
    assert synth.reference_year is None and synth.communes["posts"].isna().all() and synth.epci["posts"].isna().all()
    assert (synth.communes["status"] == "postes_inconnus").all() and synth.communes["missing_posts"].isna().all()
    assert all("postes adultes-relais en place inconnus" in r and "ratio incalculable sans les postes en place" in r
               for r in synth.communes["reason"])
    data = results(synth)
    assert all(c["postes"]["total"] is None and c["postes_manquants"] is None for c in data["communes"])
    assert data["evolution_des_postes"]["departements"] == []
    write_synthesis(synth, tmp_path / "out")
    page = (tmp_path / "out" / HTML_NAME).read_text(encoding="utf-8")
    assert "Aucun poste adultes-relais ni FONJEP" in page and "aucun territoire ne peut être classé" in page
    assert "Postes en place (None)" not in page and "Postes en place inconnus (aucun fichier de postes)" in page


def test_catalogue_without_qpv_says_so(tmp_path):
    catalog = _catalogue_without(tmp_path, "qpv", "qpv_indicators", "observations", "activity", "partners")
    synth = build_synthesis(catalog, tmp_path / "out", data_dir=DEMO_CATALOG.parent)
    assert any("pas de QPV" in m for m in synth.missing)
    assert synth.communes.empty
    write_synthesis(synth, tmp_path / "out")
    page = (tmp_path / "out" / HTML_NAME).read_text(encoding="utf-8")
    assert "Aucune commune avec QPV dans le catalogue" in page
    assert json.loads((tmp_path / "out" / JSON_NAME).read_text(encoding="utf-8"))["communes"] == []


def test_unknown_department_refused_with_code_22(tmp_path, capsys):
    assert cli.main(["region", "--catalog", str(DEMO_CATALOG), "--output", str(tmp_path), "--department", "59"]) == 22
    assert "le département « 59 » n'est pas dans le catalogue" in capsys.readouterr().err
    assert not (tmp_path / HTML_NAME).exists()


def test_employers_on_several_territories(tmp_path):
    """An employer known by its SIREN on two contracts (a commune's and the EPCI's) since 2022; names alone never match."""
    from diagnostic.analysis.region.synthesis import _opportunities, epci_membership

    synth = build_synthesis(DEMO_CATALOG, tmp_path)
    posts = pd.DataFrame({
        "year": [2022, 2024, 2024, 2024, 2024], "employer": ["ASSO A", "ASSO A (antenne)", "ASSO A", "CCAS", "CCAS"],
        "employer_siret": ["77812345600017", "77812345600025", "77812345600017", None, None],
        "employer_type": ["association"] * 3 + ["commune"] * 2,
        "holder_commune": ["99101", pd.NA, pd.NA, "99101", "99103"],
        "siren_epci": ["299000001"] * 5, "code_cv": ["CV1", "CV999", "CV999", "CV1", "CV3"],
    })
    found = _opportunities(synth.data, posts, 2024, synth.communes, epci_membership(synth.data))
    posts_found = [e for e in found["employeurs_plusieurs_territoires"] if e["origine"] == "postes"]
    assert posts_found == [{"employeur": "ASSO A", "type": "association", "postes": 2,
                            "territoires": ["CA du Val de Lys (fictif)", "Villeneuve-sur-Lys"],
                            "contrats": ["CV1", "CV999"], "origine": "postes"}]
    synth.opportunities = found
    write_synthesis(synth, tmp_path)
    page = " ".join((tmp_path / HTML_NAME).read_text(encoding="utf-8").split())
    assert "<strong>ASSO A</strong> (association) : 2" in page


def test_data_is_escaped(tmp_path, rules):
    synth = build_synthesis(DEMO_CATALOG, tmp_path)
    synth.communes.loc[0, "name"] = "<script>alert(1)</script>"
    synth.communes.loc[0, "report"] = 'x"y/rapport.html'
    write_synthesis(synth, tmp_path)
    page = (tmp_path / HTML_NAME).read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # The map's tooltips and popups (JSON in the page's script, with \uXXXX escapes) hold the name and the link escaped.
    script = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)
    assert script.count("<b>&lt;script&gt;alert(1)&lt;/script&gt;</b><br>") == 2
    assert '<br><a href=\\"x&#34;y/rapport.html\\">Ouvrir le rapport</a>' in script
    assert script.count("<br>Rapport non produit") == len(synth.communes) - 1


@pytest.mark.browser
def test_page_opens_offline_without_error(demo_region, offline_page):
    page, log = offline_page(demo_region / HTML_NAME)
    assert log.external_requests == [] and log.console_errors == [] and log.page_errors == []
    assert page.locator(".leaflet-container").count() == 1
    assert page.locator("path.leaflet-interactive").count() >= 2  # one circle per commune with QPVs



@pytest.mark.browser
@pytest.mark.parametrize("width", [1366, 390])
def test_axe_finds_no_violation(demo_region, offline_page, width):
    """The accessibility checks of the commune report (axe-core, WCAG 2.1 A/AA and best practices)."""
    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
    page, _ = offline_page(demo_region / HTML_NAME)
    page.set_viewport_size({"width": width, "height": 900})
    page.wait_for_timeout(400)
    result = axe_module.Axe().run(page, options={"runOnly": {"type": "tag", "values": [
        "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}})
    violations = [(v["id"], [n["target"] for n in v["nodes"][:3]]) for v in result.response["violations"]]
    assert violations == []


@pytest.mark.browser
def test_page_with_epci_outlines_opens_offline(tmp_path, offline_page):
    """EPCI outlines coloured by gap: one outline drawn from the demo communes, its class in the tooltip."""
    import geopandas as gpd

    synth = build_synthesis(DEMO_CATALOG, tmp_path)
    outline = synth.data.communes.geometry.union_all()
    synth.epci_shapes = gpd.GeoDataFrame({"siren_epci": ["299000001"], "lib_epci": ["CA du Val de Lys (fictif)"]},
                                         geometry=[outline], crs=synth.data.communes.crs)
    write_synthesis(synth, tmp_path)
    page, log = offline_page(tmp_path / HTML_NAME)
    assert log.external_requests == [] and log.console_errors == [] and log.page_errors == []
    # The EPCI and its two communes (3.0 posts per 10,000 against the one target of 2.5: ratio 1.2) are in the
    # class « de la cible à 1,5 fois la cible », light blue.
    assert page.locator('path.leaflet-interactive[fill="#67a9cf"]').count() == 3  # the EPCI and its 2 communes
    assert page.locator('path.leaflet-interactive[fill="#b2182b"]').count() == 0


@pytest.fixture(scope="module")
def hdf_posts():
    """Posts of the real Hauts-de-France catalogue as the synthesis counts them, and their trends."""
    from tests.util import HDF, REAL

    if not (REAL / "PROVENANCE.md").exists():
        pytest.skip(f"extraits réels absents ({REAL}) : ce test nécessite ../shared/data/real à côté du dépôt")
    from diagnostic.analysis.region.synthesis import (
        epci_membership,
        epci_names,
        post_trends,
        region_posts,
    )
    from diagnostic.io.territory import load_territory

    data = load_territory(HDF)
    membership = epci_membership(data)
    posts = region_posts(data, load_rules(), membership)
    return data, posts, post_trends(data, posts, epci_names(membership))


def test_hdf_posts_per_year_and_department_match_provenance(hdf_posts):
    """PROVENANCE.md section 8: adultes-relais records 2020–2025, Hauts-de-France and Nord."""
    _, _, trends = hdf_posts
    table = pd.DataFrame(trends["departements"])
    ar = table[table["programme"] == "adulte-relais"]
    assert ar.groupby("year")["posts"].sum().to_dict() == {2020: 668, 2021: 765, 2022: 782, 2023: 730,
                                                           2024: 648, 2025: 592}
    assert ar[ar["insee_dep"] == "59"].set_index("year")["posts"].to_dict() == {
        2020: 413, 2021: 461, 2022: 466, 2023: 424, 2024: 373, 2025: 348}
    france = pd.DataFrame(trends["region_france"]).set_index(["programme", "year"])
    assert france.loc[("adulte-relais", 2024), "france"] == 4949
    assert france.loc[("adulte-relais", 2024), "region"] == 648


def test_hdf_mel_posts_on_its_2024_contract(hdf_posts):
    """The Métropole Européenne de Lille: 214 adultes-relais posts in 2024 on CN05911M, all on the MEL (200093201)."""
    _, posts, trends = hdf_posts
    contracts = pd.DataFrame(trends["contrats"])
    mel = contracts[(contracts["code_cv"] == "CN05911M") & (contracts["programme"] == "adulte-relais")]
    assert mel.set_index("year")["posts"].to_dict()[2024] == 214
    on_mel = posts[(posts["year"] == 2024) & (posts["programme"] == "adulte-relais") & (posts["siren_epci"] == "200093201")]
    assert len(on_mel) == 214 and set(on_mel["code_cv"]) == {"CN05911M"}
