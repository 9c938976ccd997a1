"""Page one answers the mayor and never contradicts the body nor resultats.json.

For the demo, Toulouse, Lille, Roubaix, Amiens, Lens and Hornaing: every number and choice of « Ce qui est proposé »
(team, posts to create, cost, aid, remainder, funding, governance) is a figure of the decision that resultats.json
holds, and the cards of the body (team, funding, governance) print the same ones.
"""

from __future__ import annotations

import json
import re

import pytest

from diagnostic import text
from diagnostic.analysis.commune import build, results
from diagnostic.report import summary
from tests.util import DEMO_CATALOG, HDF, OCCITANIE, REAL

_HAS_REAL = (REAL / "PROVENANCE.md").exists()
#: A French number as text.py writes it: « 13 », « 13,7 », « 288 000 », « 182 484,88 ».
_NUMBER = re.compile(r"(?<![\w,])\d{1,3}(?:\u202f\d{3})*(?:,\d+)?(?![\w,]|\u202f\d)")
CASES = [("demo", "99101"), ("demo", "99102"), ("occitanie", "31555"), ("hdf", "59350"), ("hdf", "59512"),
         ("hdf", "80021"), ("hdf", "62498"), ("hdf", "59314")]


@pytest.fixture(scope="module")
def catalogues(report_cache):
    from diagnostic.io.territory import load_territory

    loaded = {}

    def get(name: str):
        if name != "demo" and not _HAS_REAL:
            pytest.skip(f"extraits réels absents ({REAL})")
        if name not in loaded:
            loaded[name] = load_territory({"demo": DEMO_CATALOG, "occitanie": OCCITANIE, "hdf": HDF}[name])
        return loaded[name]

    return get


def _figures(dec: dict, name: str) -> set[str]:
    """Every figure of the decision as page one may print it (counts, shares, populations, years, euros)."""
    values = {text.number(dec.get("mediateurs_necessaires") or 0), summary._number(dec.get("mediateurs_necessaires")),
              text.number(dec.get("postes_a_creer") or 0), text.number((dec.get("equipe") or {}).get("taille") or 0)}
    for t in dec.get("territoires") or []:
        values |= {text.number(t["population"]), text.number(t["population_quartier"])}
    for j in dec.get("services_communs") or []:
        values |= {text.number(j["equipe"]["taille"]), text.number(j["postes_a_creer"]),
                   summary._number(j["part_equipe"]), summary._number(j["part_postes_a_creer"])}
    for _, n in summary.posts_in_place(dec) or []:
        values.add(summary._number(n))
    if (dec.get("postes_en_place") or {}).get("annee"):
        values.add(str(dec["postes_en_place"]["annee"]))
    total = dec.get("total_commune") or {}
    values |= {summary._euros(total.get(k) or 0).removesuffix("\u00a0€") for k in ("cout_annuel", "aide_etat", "reste_a_financer")}
    values |= {summary._euros(v).removesuffix("\u00a0€") for _, v in summary.funders(dec, name)}
    return values


@pytest.mark.parametrize("catalog, code", CASES)
def test_page_one_is_the_decision_and_the_body(catalogues, catalog, code):
    d = build(catalogues(catalog), code)
    dec = summary.decision(d)
    saved = json.loads(json.dumps(results(d), ensure_ascii=False))
    assert saved["decision"] == json.loads(json.dumps(results(d)["decision"]))
    assert saved["decision"]["postes_a_creer"] == dec["postes_a_creer"]
    assert saved["decision"]["total_commune"] == dec["total_commune"]
    page = [s["texte"] for s in summary.essentials(d)["decision"]]
    joined = " ".join(page)
    # Every number on page one is a figure of the decision (no figure re-derived in text).
    allowed = _figures(dec, d.name) | {"10", "12", "25", "2", "1", "0"}  # « 12 à 25 ans » in the publics
    bare = joined
    for name in [t["nom"] for t in dec.get("territoires") or []] + [j["nom"] for j in dec.get("services_communs") or []]:
        bare = bare.replace(name, "")  # « Sellier Cité 4 » is a name, not a figure
    for n in _NUMBER.findall(bare):
        assert n in allowed, (n, joined)
    cards = {r["id"]: r for r in d.recommendations}
    own, joint = dec["equipe"]["taille"], dec["services_communs"]
    if not own and not joint:
        assert len(page) == 1 and "pas d'équipe" in joined
        assert cards["equipe"]["title"].startswith("Pas d'équipe") and "gouvernance" not in cards
        assert "recommande un service" not in joined
        return
    assert len(page) == 5  # what, where, for whom, how many, what it costs and who pays
    # The team: the card's title and page one say the same mediators and posts to create.
    if own:
        assert text.count(own, "médiateur", "médiateurs") in cards["equipe"]["title"]
        assert f"de {text.count(own, 'médiateur', 'médiateurs')}" in page[0]
        assert f"{text.count(dec['postes_a_creer'], 'poste', 'postes')} à créer" in page[3]
        body = cards["equipe"]["text"].replace("\u00a0", " ").lower()
        n = dec["postes_a_creer"]
        assert f"postes à créer : {n}" in body or f"{n} {text.plural(n, 'poste')} à créer" in body, body
    for j in joint:
        assert j["nom"] in cards["equipe"]["title"] and j["nom"] in joined
        assert re.search(re.escape(text.count(j["postes_a_creer"], "poste", "postes")) + " (?:à créer )?pour le service "
                         "commun " + re.escape(text.of(j["nom"])), page[3]), page[3]
        assert f"postes à créer : {j['postes_a_creer']}" in cards["equipe"]["text"]
    # Money: the commune's cost and each funder's amount, as the funding card distributes them.
    total = dec["total_commune"]
    if total["cout_annuel"]:
        assert summary._euros(total["cout_annuel"]) in page[4]
        for who, amount in summary.funders(dec, d.name):
            assert f"{summary._euros(amount)} par {who}" in page[4]
            assert summary._euros(amount) in cards["financements"]["text"]
        assert sum(a for _, a in summary.funders(dec, d.name)) == pytest.approx(total["cout_annuel"], abs=0.02)
    # Choices: the recommended funding and governance, never « à choisir ».
    if dec.get("financement"):
        assert dec["financement"]["libelle"] in page[4] and dec["financement"]["libelle"] in cards["financements"]["title"]
    if dec.get("gouvernance"):
        assert dec["gouvernance"]["libelle"] in page[0] and dec["gouvernance"]["libelle"] in cards["gouvernance"]["title"]
    assert "à choisir" not in joined and "pistes de financement" not in joined
    # Posts in place: measured, or the absent posts file named (never « aucun » without the file).
    if "adultes_relais" in d.missing:
        assert "ne figurent pas dans les données" in page[3] and "aucun poste" not in page[3]


def test_synthesis_share_counts_alike(catalogues):
    """« Part du territoire » divides distinct records by distinct records: the 2025 FONJEP file repeats 1 204 of its
    3 162 lines (1 958 distinct), so the Hauts-de-France share is 227 ÷ 1 958 = 11,6 %, not 227 ÷ 3 162 = 7,2 %."""
    from diagnostic.analysis.region import posts as pt
    from diagnostic.analysis.region.synthesis import file_lines

    table = pt.region_and_france(file_lines(catalogues("hdf"))).set_index(["programme", "year"])
    row = table.loc[("fonjep", 2025)]
    assert (row["region"], row["france"]) == (227, 1958)
    assert row["share"] == pytest.approx(100 * 227 / 1958)
    assert all(10 < s < 15 for s in table["share"])  # every year and programme on the same counting


def test_commune_names_are_the_cog_names(catalogues):
    """The 2018 outlines write « Fère », « Portel », « Quesnoy »: the catalogue's COG table gives the official names."""
    names = catalogues("hdf").communes.set_index("insee_com")["lib_com"]
    assert (names["02304"], names["62667"], names["59481"]) == ("La Fère", "Le Portel", "Le Quesnoy")
