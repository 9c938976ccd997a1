"""Three states for every statement: measured, a true zero, or unknown because a source is absent.

The sentences of « L'essentiel » and of the needs' evidence never assert an absence (of services, of posts, of
a nearby service) that the data cannot show: without the source, they name it.
"""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from diagnostic import text
from diagnostic.analysis.commune import build
from diagnostic.report import summary
from tests.util import DEMO_CATALOG, HDF, OCCITANIE, REAL

_HAS_REAL = (REAL / "PROVENANCE.md").exists()
#: What a sentence may only say when the data can show it.
NO_SERVICE = re.compile(r"aucun service|ni à moins de|services? de ce domaine à moins de|concernent surtout")
NO_POST = re.compile(r"aucun poste|postes? d'adulte-relais (?:déjà )?rattaché")
NO_DISTANCE = re.compile(r"ni à moins de|le plus proche à|à leurs abords")


def _sentences(d) -> list[str]:
    """Every sentence of « L'essentiel » and every evidence sentence of the strong and medium needs."""
    e = summary.essentials(d)
    rows = d.needs[d.needs["level"].isin(summary.STRONG)]
    return ([m["texte"] for m in e["messages"]] + [t["texte"] for t in e["territoires"]]
            + [summary.services_phrase(d, r) for _, r in rows.iterrows()]
            + [summary.need_sentence(d, r.drop("reason")) for _, r in rows.head(4).iterrows()])


@pytest.fixture(scope="module")
def bare_demo(tmp_path_factory, report_cache):
    """The demo catalogue without its equipment files and without its posts file."""
    folder = tmp_path_factory.mktemp("demo-sans-sources") / "demo"
    shutil.copytree(DEMO_CATALOG.parent, folder)
    catalog = yaml.safe_load((folder / "catalogue.yaml").read_text(encoding="utf-8"))
    for role in ("services", "adultes_relais"):
        catalog["sources"].pop(role)
    (folder / "catalogue.yaml").write_text(yaml.safe_dump(catalog, allow_unicode=True), encoding="utf-8")
    return build(folder / "catalogue.yaml", "99101")


def test_without_equipment_nor_posts_each_sentence_names_the_missing_source(bare_demo):
    d = bare_demo
    assert {"services", "adultes_relais"} <= set(d.missing)
    said = _sentences(d)
    for s in said:
        assert not NO_SERVICE.search(s), s
        assert not NO_POST.search(s), s
    joined = " ".join(said)
    assert "les équipements et services ne figurent pas dans les données" in joined.lower()
    assert "postes d'adultes-relais ne figurent" in joined


def test_with_every_source_the_demo_states_measured_zeros(report_cache):
    """The same sentences with the sources: counted services, true zeros around an outline, posts in place."""
    d = build(DEMO_CATALOG, "99101")
    joined = " ".join(_sentences(d))
    assert "ni à moins de 300\u00a0m" in joined and "postes d'adulte-relais" in joined
    assert "ne figurent pas" not in joined
    # The answers message counts réponses (France Services, médiation…), not schools or pharmacies.
    answers = next(m["texte"] for m in summary.essentials(d)["messages"] if m["section"] == "reponses")
    counted = d.coverage[d.coverage["responses_known"] & (d.coverage["level"] != "commune")]
    top = counted.groupby("domain_label")["responses_band"].sum().sort_values(ascending=False)
    assert f"concernent surtout «\u00a0{top.index[0]}\u00a0»" in answers


def test_toulouse_without_equipment_nor_posts(report_cache):
    if not _HAS_REAL:
        pytest.skip(f"extraits réels absents ({REAL})")
    d = build(OCCITANIE, "31555")
    said = _sentences(d)
    for s in said:
        assert not NO_POST.search(s), s
        assert "« Habitat et bailleurs » au" not in s, s  # no source covers the domain: unknown, not absent
    assert any("ne figurent" in s for s in said)
    # The catalogue's QPVs are some departments of Occitanie: its average is not called « d'Occitanie ».
    assert summary.reference_names(d)["ref_all_qpv"] == "Moyenne des 83\u00a0QPV des données"


def test_lille_without_outlines_asserts_no_distance(report_cache):
    """Lille's QPVs are a list without outlines: services are counted per commune, no band, no distance."""
    if not _HAS_REAL:
        pytest.skip(f"extraits réels absents ({REAL})")
    d = build(HDF, "59350")
    assert not any(summary.distances_known(d, c) for c in d.territories["code"])
    said = _sentences(d)
    for s in said:
        assert not NO_DISTANCE.search(s), s
    # « Santé » has no réponse in the data (its needs row says so): it is not called an existing response.
    answers = next(m["texte"] for m in summary.essentials(d)["messages"] if m["section"] == "reponses")
    assert not re.search(r"concernent surtout[^;]*Santé", answers), answers
    assert "«\u00a0Santé\u00a0»" in answers and "pas mesurée" in answers
    # The regional catalogue compares with all the QPVs of France when it has the national tables.
    assert summary.references(d)[0] == ("ref_national", "Ensemble des QPV de France")


def test_reference_is_named_by_what_it_averages():
    assert summary._department_of("Nord", 2) == "du Nord"
    assert summary._department_of("Haute-Garonne", 3) == "de la Haute-Garonne"
    assert summary._department_of("Ain", 5) == "de l'Ain"
    assert summary._department_of("Hauts-de-Seine", 4) == "des Hauts-de-Seine"
    assert text.of("Secteur Sud") == "du Secteur Sud" and text.at("Grande Résidence") == "à la Grande Résidence"


def test_evaluation_without_previous_period_in_the_log(demo):
    """The demo log starts on 1 January 2025: evaluating its first half has no previous period to compare with,
    which is unknown, not « Période précédente 0 »."""
    from diagnostic.analysis.evaluation import evaluate
    from diagnostic.report import evaluation_sections as er

    first = evaluate(demo, "99101", "2025-01-01", "2025-06-30")
    assert not first.previous_logged
    assert er.key_figures(first)[1] == ("—", er.NO_PREVIOUS)
    assert er.NO_PREVIOUS in er.period_note(first)
    for key in ("activite", "heures", "jours"):
        assert not set(er.PREVIOUS_COLUMNS) & set(er.display(first.tables[key], first.previous_logged).columns)
    _, alt = er.hour_chart(first)
    assert "période précédente" not in alt.replace(er.NO_PREVIOUS, "")
    second = evaluate(demo, "99101", "2025-07-01", "2025-12-31")
    assert second.previous_logged and "Période précédente" in er.display(second.tables["activite"]).columns
