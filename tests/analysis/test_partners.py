"""Partner registry: loading and validation, graph metrics, gaps, views, demo and real adulte-relais data."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point

from diagnostic.analysis import partners as P
from diagnostic.errors import (
    ConfidentialityError,
    DuplicateCodeError,
    UnknownCommuneError,
    ValueFormatError,
)
from diagnostic.io.catalog import Source
from diagnostic.io.sources.partners import (
    adultes_relais_relations,
    load_partners,
    with_adultes_relais,
)
from diagnostic.report.network import network_html, network_png
from tests.util import HDF

ACTOR_HEADER = ["identifiant", "nom", "type", "domaines", "communes", "qpv", "latitude", "longitude"]
# M mediation, B bailleur, S school (all on QPV QN09901A), C commune, F France Services, I isolated.
ACTORS = [
    ["M", "Médiation du Lys", "opérateur de médiation", "espace_public|habitat", "99101", "QN09901A", "", ""],
    ["B", "Habitat Test", "bailleur social", "habitat", "99101", "QN09901A", "", ""],
    ["S", "Collège Test", "établissement scolaire", "education", "99101", "QN09901A", "", ""],
    ["C", "Ville Test", "commune / services municipaux", "Accès aux droits et aux services publics", "99101",
     "", "", ""],
    ["F", "France services Test", "France Services", "acces_droits", "99101", "", "", ""],
    ["I", "Association isolée", "association", "jeunesse", "Ville B", "", "", ""],
]
RELATION_HEADER = ["de", "vers", "nature", "depuis", "intensite"]
RELATIONS = [
    ["C", "M", "convention", "2020", "forte"],
    ["M", "F", "orientation / passage de relais", "2021", "hebdomadaire"],
    ["C", "B", "convention", "", ""],
    ["C", "S", "instance commune", "2019", "2"],
]


@pytest.fixture
def territory() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    communes = gpd.GeoDataFrame(
        {"insee_com": ["99101", "99102"], "lib_com": ["Ville A", "Ville B"]},
        geometry=[Point(240_000, 6_620_000).buffer(3_000), Point(247_000, 6_620_000).buffer(3_000)],
        crs="EPSG:2154",
    )
    qpv = gpd.GeoDataFrame(
        {"code_qp": ["QN09901A"], "lib_qp": ["Les Hauts"], "communes": ["99101"], "insee_com": ["99101"]},
        geometry=[Point(240_000, 6_620_000).buffer(500)],
        crs="EPSG:2154",
    )
    return communes, qpv


def write(tmp_path, actors=ACTORS, relations=RELATIONS, sep=";", encoding="utf-8", header=ACTOR_HEADER):
    def csv(name, head, rows):
        path = tmp_path / name
        path.write_bytes(("\n".join(sep.join(r) for r in [head, *rows]) + "\n").encode(encoding))
        return path

    actors_path = csv("partenaires.csv", header, actors)
    relations_path = csv("relations.csv", RELATION_HEADER, relations)
    return Source(role="partners", path=actors_path, options={"relations": str(relations_path)})


@pytest.fixture
def registry(tmp_path, territory):
    partners, _ = load_partners(write(tmp_path), *territory)
    return partners


def test_loads_registry_with_french_names(registry):
    a = registry.actors.set_index("actor_id")
    assert list(a.index) == ["M", "B", "S", "C", "F", "I"]
    assert a.at["C", "domains"] == ["acces_droits"]  # a label, commas included, is understood
    assert a.at["I", "communes"] == ["99102"]  # a commune name is understood
    assert a.at["M", "type"] == "mediation"
    r = registry.relations
    assert r["nature"].tolist() == ["convention", "orientation", "convention", "instance"]
    assert r["weight"].tolist() == [3, 3, 2, 2]


def test_comma_separated_latin1_file_loads(tmp_path, territory):
    rows = [[c.replace("|", " | ") for c in row] for row in ACTORS]
    source = write(tmp_path, actors=[[f'"{c}"' for c in r] for r in rows], sep=",", encoding="cp1252")
    partners, report = load_partners(source, *territory)
    assert len(partners.actors) == 6
    assert partners.actors.set_index("actor_id").at["M", "domains"] == ["habitat", "espace_public"]  # in report order
    assert report.rows_kept == 6


def test_centrality_known_answers(registry):
    graph = P.build_graph(registry)
    cent = P.centrality(graph).set_index("actor_id")
    # Undirected: C–M, C–B, C–S, M–F. C lies between 5 of the 10 pairs of the 5 linked actors
    # (B-S, B-M, S-M, B-F, S-F); M between 3 (F with C, B, S). Normalised by (6-1)(6-2)/2 = 10.
    assert cent["degree"].to_dict() == {"C": 3, "M": 2, "B": 1, "S": 1, "F": 1, "I": 0}
    assert cent.at["C", "betweenness"] == pytest.approx(0.5)
    assert cent.at["M", "betweenness"] == pytest.approx(0.3)
    assert cent.loc[["B", "S", "F", "I"], "betweenness"].eq(0).all()
    assert list(cent.index[:2]) == ["C", "M"]
    assert P.centrality_table(graph).columns[3] == "Nombre de partenaires"


def test_isolated_unlinked_and_one_way(registry):
    graph = P.build_graph(registry)
    assert P.isolated(graph) == ["I"]
    assert P.without_mediation_link(graph) == ["B", "S"]
    one_way = P.one_way_relations(registry)
    assert list(zip(one_way["source"], one_way["target"])) == [("M", "F")]


def test_uncovered_domains(registry):
    needs = pd.DataFrame({
        "code_qp": ["QN09901A", "QN09901A", "QN09901A", None, "QN09901A"],
        "insee_com": [None, None, None, "99102", None],
        "domain": ["sante", "habitat", "acces_droits", "acces_droits", "transports"],
        "domain_label": ["Santé", "Habitat et bailleurs", "Accès aux droits", "Accès aux droits", "Transports"],
        "level": ["fort", "fort", "moyen", "moyen", "faible"],
    })
    out = P.uncovered_domains(registry, needs)
    # Santé: no actor; habitat: B and M on the QPV; access to rights on the QPV: C and F serve its commune;
    # in 99102 nobody does; transports is a weak need, not an unmet one.
    assert list(zip(out["domain"], out["code_qp"].fillna(out["insee_com"]))) == [
        ("sante", "QN09901A"), ("acces_droits", "99102")]
    assert "santé" in out.loc[0, "types"]


def test_gaps_say_why(registry):
    needs = pd.DataFrame({"code": ["QN09901A"], "domain": ["sante"], "level": ["fort"]})
    gaps = P.gaps(registry, needs)
    assert set(gaps["categorie"]) == {"lien à créer", "acteur à mobiliser"}
    by = {(g.motif, g.acteur_id): g for g in gaps.itertuples()}
    assert ("isole", "I") in by
    assert by[("sans_lien_mediation", "B")].partenaire_id == "M"
    assert "présent sur Les Hauts sans aucun lien" in by[("sans_lien_mediation", "B")].pourquoi
    assert by[("sens_unique", "F")].partenaire_id == "M"
    assert "« Santé » (fort) sur Les Hauts, et aucun acteur" in by[("domaine_non_couvert", "")].pourquoi
    commune = P.gaps(registry, pd.DataFrame({"code": ["99101"], "domain": ["sante"], "level": ["moyen"]}))
    assert "« Santé » (moyen) sur la commune, et aucun acteur" in commune["pourquoi"].iloc[-1]
    assert gaps["pourquoi"].str.len().gt(20).all()
    assert list(P.gaps_table(gaps).columns) == ["Catégorie", "Acteur", "Avec", "Pourquoi"]


def _broken(tmp_path, territory, actors=ACTORS, relations=RELATIONS, header=ACTOR_HEADER):
    return load_partners(write(tmp_path, actors=actors, relations=relations, header=header), *territory)


def test_relation_to_unknown_actor(tmp_path, territory):
    with pytest.raises(ValueFormatError, match="acteur inconnu « X »") as err:
        _broken(tmp_path, territory, relations=[*RELATIONS, ["C", "X", "convention", "", ""]])
    assert err.value.rows == [6] and err.value.column == "vers"


def test_unknown_type(tmp_path, territory):
    actors = [*ACTORS[:-1], ["I", "Asso", "assocation", "", "", "", "", ""]]
    with pytest.raises(ValueFormatError, match="type d'acteur inconnu « assocation ».*association") as err:
        _broken(tmp_path, territory, actors=actors)
    assert err.value.rows == [7]


def test_duplicate_identifier(tmp_path, territory):
    with pytest.raises(DuplicateCodeError, match="B") as err:
        _broken(tmp_path, territory, actors=[*ACTORS, ["B", "Autre", "CAF", "", "", "", "", ""]])
    assert err.value.rows == [3, 8]


def test_qpv_not_in_territory(tmp_path, territory):
    actors = [*ACTORS[:-1], ["I", "Asso", "association", "", "", "QN09999Z", "", ""]]
    with pytest.raises(ValueFormatError, match="QPV absent.*QN09999Z") as err:
        _broken(tmp_path, territory, actors=actors)
    assert err.value.column == "qpv"


def test_unknown_commune_and_domain_and_nature(tmp_path, territory):
    with pytest.raises(UnknownCommuneError, match="59350"):
        _broken(tmp_path, territory, actors=[*ACTORS[:-1], ["I", "A", "association", "", "59350", "", "", ""]])
    with pytest.raises(ValueFormatError, match="domaine.*logement"):
        _broken(tmp_path, territory, actors=[*ACTORS[:-1], ["I", "A", "association", "logement", "", "", "", ""]])
    with pytest.raises(ValueFormatError, match="nature de relation inconnue « amitié »"):
        _broken(tmp_path, territory, relations=[*RELATIONS, ["C", "I", "amitié", "", ""]])


def test_personal_data_refused(tmp_path, territory):
    rows = [[*r, "x@example.org" if i == 0 else ""] for i, r in enumerate(ACTORS)]
    with pytest.raises(ConfidentialityError, match="courriel"):
        _broken(tmp_path, territory, actors=rows, header=[*ACTOR_HEADER, "courriel"])


def test_coordinates_become_lambert93_points(tmp_path, territory):
    lonlat = gpd.GeoSeries([Point(240_200, 6_620_100)], crs="EPSG:2154").to_crs("EPSG:4326")[0]
    actors = [[*ACTORS[0][:6], f"{lonlat.y:.6f}", f"{lonlat.x:.6f}"], *ACTORS[1:]]
    partners, _ = _broken(tmp_path, territory, actors=actors)
    layer = P.actors_layer(partners)
    assert layer.crs.to_epsg() == 2154 and layer["actor_id"].tolist() == ["M"]
    assert layer.geometry[0].distance(Point(240_200, 6_620_100)) < 1


def _posts() -> pd.DataFrame:
    rows = [(2022, "p1", "77812345600017", "ASSOCIATION MEDIATION DU LYS", 20000.0),
            (2023, "p2", "77812345600017", "ASSOCIATION MEDIATION DU LYS", 21000.0),
            (2023, "p3", "77812345600017", "ASSOCIATION MEDIATION DU LYS", 21000.0),
            (2023, "p4", "30000000000001", "COMMUNE DE VILLE B", 21000.0),
            (2022, "p5", "40000000000001", "ASSOCIATION ANCIENNE", 20000.0)]
    return pd.DataFrame(rows, columns=["year", "post_id", "employer_siret", "employer", "amount"]).assign(
        code_cv="CV1", lib_cv="Contrat test", codgeo="299000001")


def test_adultes_relais_become_funding_relations():
    actors, relations = adultes_relais_relations(_posts())
    assert relations["nature"].eq("financement").all() and relations["source"].eq("etat-anct").all()
    by = relations.set_index("target")
    assert by.at["siret-77812345600017", "posts"] == 2
    assert by.at["siret-77812345600017", "amount"] == pytest.approx(42_000)
    assert by.at["siret-77812345600017", "since"] == "2022"
    assert by.at["siret-77812345600017", "comment"] == "2023 : 2\u00a0postes adultes-relais ; contrat de ville CV1"
    assert by.at["siret-30000000000001", "comment"] == "2023 : 1\u00a0poste adulte-relais ; contrat de ville CV1"
    assert "siret-40000000000001" not in by.index  # no post in the latest year
    types = actors.set_index("actor_id")["type"]
    assert types["siret-77812345600017"] == "mediation" and types["siret-30000000000001"] == "commune"


def test_adultes_relais_merge_into_registry(registry):
    registry.actors.loc[registry.actors["actor_id"] == "M", "siret"] = "77812345600017"
    merged = with_adultes_relais(registry, _posts())
    a = merged.actors.set_index("actor_id")
    assert a.at["M", "posts"] == 2 and "siret-77812345600017" not in a.index
    assert {"etat-anct", "siret-30000000000001"} <= set(a.index)
    funding = merged.relations[merged.relations["nature"] == "financement"]
    assert set(zip(funding["source"], funding["target"])) == {("etat-anct", "M"), ("etat-anct", "siret-30000000000001")}


def test_demo_registry(demo):
    partners = demo.partners
    assert len(partners.actors) == 16
    a = partners.actors.set_index("actor_id")
    assert a.at["A11", "posts"] == 3 and a.at["A01", "posts"] == 1  # matched by SIRET
    assert partners.relations["origin"].eq("ANCT adultes-relais").sum() == 1  # État → commune, added
    gaps = P.gaps(partners)
    assert set(zip(gaps["motif"], gaps["acteur_id"])) >= {
        ("isole", "A12"), ("sans_lien_mediation", "A16"), ("sens_unique", "A07")}
    assert len(P.actors_layer(partners)) == 13
    table = P.relations_table(partners)
    assert table.columns[:3].tolist() == ["De", "Vers", "Nature"] and table["De"].notna().all()
    assert P.actors_table(partners).iloc[0]["Acteur"] == "Lys Médiation"


def test_network_png(demo, tmp_path):
    path = network_png(demo.partners, None, tmp_path / "reseau.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000


def test_network_view_escapes_names(demo):
    from dataclasses import replace

    actors = demo.partners.actors.copy()
    actors.loc[actors["actor_id"] == "A01", "name"] = '<script>alert("x")</script> & Cie'
    fragment = network_html(replace(demo.partners, actors=actors))
    assert "<script>alert" not in fragment and fragment.count("<script>") == 1
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Cie</text>" in fragment
    assert fragment.count('class="rp-noeud"') == len(actors)


@pytest.mark.browser
def test_network_view_offline(demo, tmp_path, offline_page):
    partners = demo.partners
    fragment = network_html(partners)
    assert "http" not in fragment
    page_path = tmp_path / "reseau.html"
    page_path.write_text(f'<!doctype html><html lang="fr"><meta charset="utf-8"><body>{fragment}</body></html>',
                         encoding="utf-8")
    page, log = offline_page(page_path)
    assert page.locator(".rp-noeud").count() == len(partners.actors)
    assert page.locator(".rp-lien").count() == len(partners.relations)
    assert "Lys Médiation" in page.locator("figure > svg").text_content()
    assert page.locator("figcaption").inner_text().count("opérateur de médiation") == 1
    node = page.locator('.rp-noeud:has-text("Lys Médiation")')
    node.hover()
    assert "rp-focus" in page.locator("figure").get_attribute("class")
    before = node.get_attribute("transform")
    box = node.locator("circle").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 80, box["y"] + 60, steps=4)
    page.mouse.up()
    assert node.get_attribute("transform") != before
    assert log.external_requests == [] and log.page_errors == [] and log.console_errors == []


@pytest.mark.real
def test_hauts_de_france_adultes_relais(real_dir):
    from diagnostic.io.territory import load_territory

    partners = load_territory(HDF).partners
    funding = partners.relations
    # PROVENANCE.md: 592 adulte-relais posts in Hauts-de-France in 2025 (the latest year; FONJEP not counted).
    assert funding["posts"].sum() == 592
    assert funding["nature"].eq("financement").all() and funding["source"].eq("etat-anct").all()
    assert len(funding) == funding["target"].nunique() == len(partners.actors) - 1
    assert P.centrality(P.build_graph(partners)).iloc[0]["actor_id"] == "etat-anct"


def test_relations_file_with_header_only(tmp_path, territory):
    partners, _ = _broken(tmp_path, territory, relations=[])
    assert partners.relations.empty and P.isolated(P.build_graph(partners)) == sorted(a[0] for a in ACTORS)


def test_for_commune_keeps_local_actors_and_their_links(demo):
    saint_aubin = P.for_commune(demo.partners, "99102")
    ids = set(saint_aubin.actors["actor_id"])
    assert {"A09", "A13", "A06", "A14"} <= ids  # serve the whole territory or Saint-Aubin
    assert "A16" not in ids and "A12" not in ids  # La Garenne actors, with no link here
    assert set(saint_aubin.relations["source"]) | set(saint_aubin.relations["target"]) <= ids
    assert P.gaps(saint_aubin)["motif"].tolist() == ["sens_unique"]
