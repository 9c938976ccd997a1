"""Hauts-de-France on real data: the figures of PROVENANCE.md sections 7–11 read back through the loaders."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest

from diagnostic.io.catalog import Source, load_catalog
from diagnostic.io.sources.communes import department_of
from diagnostic.io.sources.qpv import load_qpv
from diagnostic.io.sources.sigville import load_history, load_sigville, note_columns
from diagnostic.io.territory import load_territory
from tests.util import HDF, REAL

SIG = REAL / "sigville_qpv2015"
LILLE_QPV = ["QP059073", "QP059074", "QP059075", "QP059076", "QP059080"]
HDF_PREFIXES = ("QP002", "QP059", "QP060", "QP062", "QP080")


@pytest.fixture(scope="module")
def hdf():
    if not (REAL / "PROVENANCE.md").exists():
        pytest.skip(f"extraits réels absents ({REAL}) : ce test nécessite ../shared/data/real")
    return load_territory(HDF)


def _source(path: Path, vintage: str, indicators: dict, earlier: tuple = ()) -> Source:
    return Source("qpv_indicators", path, "sigville", {}, indicators, vintage=vintage, earlier=earlier)


def test_sigville_export_read_as_published(real_dir):
    raw = (SIG / "DEMO_2017.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw and "5\u202f019\u202f573".encode() in raw
    one, rep = load_sigville(_source(SIG / "DEMO_2017.csv", "2017", {"population": "POP_MUN"}))
    pop = one.table.values["population"]
    assert len(pop) == 1345 and rep.rows_read == 1346  # the « Ensemble des QPV » row is the reference
    hdf = pop[pop.index.str.startswith(HDF_PREFIXES)]
    assert len(hdf) == 199 and hdf.sum() == 667_970
    assert hdf.index.str[:5].value_counts().to_dict() == {"QP059": 91, "QP062": 64, "QP060": 18, "QP002": 17, "QP080": 9}
    assert one.reference.set_index("indicator").loc["population", "value"] == 5_019_573
    assert "Ensemble" in one.reference.set_index("indicator").loc["population", "method"]
    assert pop[LILLE_QPV].sum() == 74_222
    # No trailing empty column survives.
    assert not [c for c in one.national.columns if c.startswith("Unnamed")]


def test_sigville_2022_poverty_and_computed_national_reference(real_dir):
    one, _ = load_sigville(_source(SIG / "REVN_2022.csv", "2022", {"poverty_rate": "TP60"}))
    tp60 = one.table.values["poverty_rate"]
    assert tp60["QP059073"] == 52.1 and tp60["QP059074"] == 47.6
    ref = one.reference.set_index("indicator").loc["poverty_rate"]
    assert "calculée" in ref["method"]  # no « Ensemble » row in the 2022 export
    assert ref["value"] == pytest.approx(tp60.mean(), abs=1e-9)  # no population column in REVN: plain mean
    demo, _ = load_sigville(_source(SIG / "DEMO_2022.csv", "2022", {"population": "POP_MUN"}))
    pop = demo.table.values["population"]
    assert pop[pop.index.str.startswith(HDF_PREFIXES)].sum() == 653_409
    assert pop[LILLE_QPV].sum() == 72_512


def test_quality_notes_qualify_their_block():
    cols = ["CODGEO", "POP_MUN", "TX_TOT_ET", "NOTE_RP", "A", "AM", "NOTE_CNAF"]
    assert note_columns(cols) == {"POP_MUN": "NOTE_RP", "TX_TOT_ET": "NOTE_RP", "A": "NOTE_CNAF", "AM": "NOTE_CNAF",
                                  "CODGEO": "NOTE_RP"}
    # 2017 has no NOTE_RP: census columns get no flag rather than the CNAF one.
    old = ["CODGEO", "POP_MUN", "A", "NOTE_CNAF"]
    assert note_columns(old) == {"CODGEO": "NOTE_CNAF", "A": "NOTE_CNAF"}


def test_reliability_mark_carried(real_dir):
    one, _ = load_sigville(_source(SIG / "IPRO_2022.csv", "2022", {"jobseekers": "ABCDE"}))
    marks = one.table.reliability["jobseekers"]
    assert marks["QP062036"] == "note de qualité France Travail : 5"
    assert marks["QP059073"] == ""


def test_two_vintages_with_a_column_missing_in_one(real_dir):
    """IPRO 2017 has no TX_TOT_EDLIM (precarious jobs were TX_TOT_EPREC then): that vintage simply lacks it."""
    earlier = _source(SIG / "IPRO_2017.csv", "2017", {"employment_rate": "TX_TOT_EMPL",
                                                      "precarious_employment_rate": "TX_TOT_EDLIM"})
    latest = _source(SIG / "IPRO_2022.csv", "2022", {"employment_rate": "TX_TOT_EMPL",
                                                     "precarious_employment_rate": "TX_TOT_EDLIM"}, (earlier,))
    history, reports = load_history(latest)
    lille = history[history["code_qp"] == "QP059073"].set_index(["indicator", "vintage"])["value"]
    assert set(lille.index) == {("employment_rate", "2017"), ("employment_rate", "2022"),
                                ("precarious_employment_rate", "2022")}
    assert lille[("precarious_employment_rate", "2022")] == 29.8
    assert any("2017" in w and "precarious_employment_rate" in w for w in reports[0].warnings)


def test_hdf_catalogue_qpv_as_tables(hdf):
    assert len(hdf.qpv) == 199 and not hdf.has_qpv_outlines
    assert hdf.qpv["geometry"].isna().all()
    lille = hdf.qpv_in("59350")
    assert sorted(lille["code_qp"]) == LILLE_QPV
    # Multi-commune QPVs belong to each of their communes (names resolved to codes).
    sud = set(hdf.qpv_communes.loc[hdf.qpv_communes["code_qp"] == "QP059074", "insee_com"])
    assert {"59220", "59350", "59360"} <= sud  # Faches-Thumesnil, Lille, Loos (+ Lezennes in 2022)
    assert "QP059074" in set(hdf.qpv_in("59220")["code_qp"])
    # Ostricourt (Nord) holds QP062040, a Pas-de-Calais code: found across the department line.
    assert "QP062040" in set(hdf.qpv_in("59452")["code_qp"])
    values = hdf.qpv_indicators.values
    assert values.loc[LILLE_QPV, "population"].sum() == 72_512
    assert values.loc["QP059073", "poverty_rate"] == 52.1
    # The national distribution (issue 15's reference): every QPV of France, latest vintage.
    assert len(hdf.qpv_national) == 1400 and hdf.qpv_national["population"].notna().sum() == 1400
    ref = hdf.qpv_indicators.national_reference.set_index("indicator")
    assert ref.loc["population", "value"] == hdf.qpv_national["population"].sum()


def test_hdf_history_lille(hdf):
    h = hdf.qpv_indicators.history
    pop = h[(h["indicator"] == "population") & h["code_qp"].isin(LILLE_QPV)].groupby("vintage")["value"].sum()
    assert pop["2017"] == 74_222 and pop["2022"] == 72_512
    assert sorted(h["vintage"].unique()) == ["2017", "2018", "2019", "2020", "2021", "2022"]


def test_hdf_catalogue_declares_vintages(real_dir):
    cat = load_catalog(HDF)
    revn = next(s for s in cat.all("qpv_indicators") if s.path.name == "REVN_2022.csv")
    assert [e.vintage for e in revn.earlier] == ["2017", "2018", "2019", "2021"]
    assert all(e.indicators["poverty_rate"] == "TP60" for e in revn.earlier)
    assert {p.name for p in cat.files()} >= {"REVN_2017.csv", "IPRO_2020.csv"}


def test_hdf_posts_json_both_generations(hdf):
    posts = hdf.adultes_relais
    ar = posts[posts["programme"] == "adulte-relais"].groupby("year").size().to_dict()
    assert ar == {2020: 668, 2021: 765, 2022: 782, 2023: 730, 2024: 648, 2025: 592}  # PROVENANCE.md § 8
    nord = posts[(posts["programme"] == "adulte-relais") & (posts["insee_dep"] == "59")].groupby("year").size()
    assert nord.to_dict() == {2020: 413, 2021: 461, 2022: 466, 2023: 424, 2024: 373, 2025: 348}
    assert (posts["year"] == 2024).sum() > 648  # FONJEP posts beside them
    lille = hdf.posts_of("59350")
    by = lille[lille["programme"] == "adulte-relais"].groupby(["year", "code_cv"]).size()
    assert by[(2023, "CV192")] == 270 and by[(2024, "CN05911M")] == 214
    # Posts are one flat State amount each: 22,810.61 € in 2024.
    assert lille.loc[(lille["year"] == 2024) & (lille["programme"] == "adulte-relais"), "amount"].eq(22810.61).all()


def test_hdf_epci_workbook_and_outlines(hdf):
    assert hdf.epci_of("59350") == {"siren": "200093201", "nom": "Métropole Européenne de Lille",
                                    "nature": "métropole", "nombre_communes": 95}
    assert len(hdf.epci.epci) == 92 and hdf.epci.epci.geometry.notna().all()  # 95 features, 3 split by department
    assert hdf.epci.membership["siren_epci"].eq("200093201").sum() == 95
    assert hdf.epci.membership["insee_com"].nunique() == 3808 - 20  # 2018 outlines vs the 2024 composition


def test_insee_workbook_title_block(real_dir):
    from diagnostic.io.sources.epci import read_sheet

    epci = read_sheet(REAL / "epci" / "EPCI_au_01-01-2024.xlsx", "EPCI", ["EPCI", "LIBEPCI", "NATURE_EPCI", "NB_COM"])
    comp = read_sheet(REAL / "epci" / "EPCI_au_01-01-2024.xlsx", "Composition_communale", ["CODGEO", "EPCI"])
    assert len(epci) == 1256 and len(comp) == 34_935  # PROVENANCE.md § 9
    assert (comp["REG"] == "32").sum() == 3788 and comp.loc[comp["REG"] == "32", "EPCI"].nunique() == 92


def test_rouen_2024_outlines_with_commune_names(real_dir):
    """The 16 real Rouen outlines: commune NAMES (COMMUNE_AG) resolved to codes, multi-commune QPVs included."""
    listed, _, _ = load_qpv(Source("qpv", REAL / "qpv2024" / "qpv2024_par_commune_anct.geojson",
                                   options={"outlines": False}))
    assert len(listed) == 1493  # every 2024 QPV of France, from comma-separated lists
    # No Normandie commune file here: the ANCT list per commune (824 communes) gives the codes; its lib_com
    # joins the names of a multi-commune QPV (« Bihorel; Rouen » on 76095), so those four are named from the COG.
    # (points, not outlines: read as a plain table, since the communes loader rightly refuses points)
    com = gpd.read_file(REAL / "qpv2024" / "qpv2024_par_commune_anct.geojson")[["insee_com", "lib_com", "geometry"]]
    com["insee_dep"] = com["insee_com"].map(department_of)
    assert len(com) == 824
    cog = {"76095": "Bihorel", "76178": "Cléon", "76561": "Saint-Aubin-lès-Elbeuf", "76681": "Sotteville-lès-Rouen"}
    com["lib_com"] = com["insee_com"].map(cog).fillna(com["lib_com"])
    qpv, pairs, rep = load_qpv(Source("qpv", REAL / "qpv2024" / "rouen_qpv2024_contours.geojson",
                                      columns={"code_qp": "IDENTIFIAN", "lib_qp": "LIBELLE", "lib_com": "COMMUNE_AG"}),
                               com)
    assert len(qpv) == 16 and qpv.geometry.notna().all() and (qpv["generation"] == "2024").all()
    multi = qpv.set_index("code_qp")["communes"]
    assert multi["QN07620M"] == "76095,76540"  # Bihorel, Rouen
    assert multi["QN07611M"] == "76178,76561"  # Cléon, Saint-Aubin-lès-Elbeuf
    assert multi["QN07624M"] == "76575,76681"  # Saint-Étienne-du-Rouvray, Sotteville-lès-Rouen
    assert not [w for w in rep.warnings if "sans code" in w]
    assert set(pairs.loc[pairs["insee_com"] == "76575", "code_qp"]) == {"QN07621M", "QN07622M", "QN07623M", "QN07624M"}


def test_lille_report_qpv_level(lille_report):
    saved = json.loads((lille_report / "resultats.json").read_text(encoding="utf-8"))
    assert saved["niveau_d_analyse"] == "qpv"
    assert sorted(q["code"] for q in saved["qpv"]) == LILLE_QPV
    values = {(i["territoire"], i["indicateur"]): i["valeur"] for i in saved["indicateurs"]}
    assert values[("QP059073", "poverty_rate")] == 52.1
    page = (lille_report / "rapport.html").read_text(encoding="utf-8")
    assert "Secteur Ouest" in page and "contours non fournis" in page
    # The five QPVs with their 2022 figures and their 2017 → 2022 change, INSEE's caution beside.
    evol = {(e["territoire"], e["indicateur"]): e for e in saved["evolutions"]}
    pop = evol[("QP059073", "population")]
    assert (pop["premier_millesime"], pop["premiere_valeur"], pop["dernier_millesime"], pop["derniere_valeur"]) == (
        "2017", 1778, "2022", 1733)
    assert sum(evol[(q, "population")]["premiere_valeur"] for q in LILLE_QPV) == 74_222
    assert sum(evol[(q, "population")]["derniere_valeur"] for q in LILLE_QPV) == 72_512
    tp = evol[("QP059073", "poverty_rate")]
    assert tp["derniere_valeur"] == 52.1 and tp["dernier_millesime"] == "2022"
    assert "en 2017 → 52,1\u202f% en 2022" in page and "à lire avec prudence" in page
    # The EPCI named, its reference column, and the MEL posts.
    assert saved["commune"]["epci"]["nom"] == "Métropole Européenne de Lille"
    assert "appartient à l&#39;intercommunalité Métropole Européenne de Lille (métropole, 95" in page
    assert "<td>Métropole Européenne de Lille</td>" in page  # the EPCI as a reference row
    posts = {(p["annee"], p["programme"], p["contrat_de_ville"]): p["postes"] for p in saved["postes"]}
    assert posts[(2024, "adulte-relais", "CN05911M")] == 214 and posts[(2023, "adulte-relais", "CV192")] == 270
    assert "Postes adultes-relais et FONJEP par année" in page
    # 2025 shown as partial (7,164 € per adulte-relais post against 22,810.61 € in 2024); employers of 2024.
    import html

    text = html.unescape(page)
    assert "<th scope=\"row\">2025 (année partielle)</th>" in text
    assert "Année partielle dans les fichiers de l'ANCT" in text and "Principaux employeurs du contrat de ville en 2024" in text
    assert "214\u00a0postes adultes-relais et 64\u00a0postes FONJEP sont déjà financés par l'État en 2024" in text


def test_hdf_2024_generation_with_2015_predecessors(real_dir):
    """PROVENANCE.md § 11: 204 QPVs of 2024 on 161 communes; Lille QN05971M–74M ← QP059073–76, QN05978M ← QP059080."""
    data = load_territory(HDF.with_name("hauts-de-france-2024.yaml"))
    assert len(data.qpv) == 204 and (data.communes["qpv_count"] > 0).sum() == 161
    assert (data.qpv["generation"] == "2024").all() and data.qpv.geometry.isna().all()
    lille = data.qpv_in("59350").set_index("code_qp")["predecessors"].to_dict()
    assert lille == {"QN05971M": "QP059073", "QN05972M": "QP059074", "QN05973M": "QP059075",
                     "QN05974M": "QP059076", "QN05978M": "QP059080"}
    values = data.qpv_indicators.values
    assert values.loc["QN05971M", "poverty_rate"] == 52.1 and values.loc["QN05971M", "population"] == 1733
    assert "prédécesseurs" in data.qpv_indicators.definitions.loc["poverty_rate", "source"]
    new = data.qpv.loc[data.qpv["predecessors"].isna(), "code_qp"]
    assert len(new) == 8 and not set(new) & set(values.index)  # NOUVEAU: no indicator
    # No HdF 2024 QPV has several predecessors; combining two (as elsewhere in France): counts summed, rates weighted.
    import pandas as pd

    from diagnostic.io.sources.correspondence import carry_forward

    hdf15 = load_territory(HDF).qpv_indicators
    merged = carry_forward(hdf15, pd.DataFrame({"code_qp": ["QN05999Z", "QN05999Z"],
                                                 "predecessor": ["QP059073", "QP059075"]})).values.loc["QN05999Z"]
    assert merged["population"] == 1733 + 12_828
    tp = hdf15.values.loc[["QP059073", "QP059075"], "poverty_rate"]
    assert merged["poverty_rate"] == pytest.approx((tp.iloc[0] * 1733 + tp.iloc[1] * 12_828) / (1733 + 12_828))


def test_territories_with_qpv_counts_hdf(capsys, real_dir):
    from diagnostic.cli import main

    assert main(["territories", "--catalog", str(HDF), "--with-qpv"]) == 0
    out = capsys.readouterr().out
    assert "\n157\u00a0communes." in out
    assert any(line.split()[:2] == ["59350", "Lille"] and line.split()[2] == "5" for line in out.splitlines())


def test_report_of_a_qpv_without_outline(tmp_path, hdf, indicator_cache):
    """Roubaix: its QPVs are known as tables only; needs still computed, geometry said missing."""
    from diagnostic.pipeline.run import run_commune

    result = run_commune(HDF, "59512", tmp_path)
    saved = json.loads((result.folder / "resultats.json").read_text(encoding="utf-8"))
    assert saved["niveau_d_analyse"] == "qpv" and saved["commune"]["nombre_qpv"] == 3
    assert {n["territoire"] for n in saved["besoins_non_couverts"]} <= {q["code"] for q in saved["qpv"]}
    assert saved["besoins_non_couverts"]
    page = (result.folder / "rapport.html").read_text(encoding="utf-8")
    assert "contours non fournis" in page and "contours des QPV publié par l'ANCT" in page


def test_partial_year_and_posts_in_place_on_a_hand_made_file():
    """2 posts at 20,000 € then 1 at 21,000 € (complete), then 2 at 7,000 € (< half of 21,000 €: partial)."""
    import pandas as pd

    from diagnostic.io.sources.postes import funded, partial_years

    posts = pd.DataFrame({
        "year": [2023, 2023, 2024, 2024, 2024, 2025, 2025], "programme": ["adulte-relais"] * 3 + ["fonjep"] * 2 + ["adulte-relais"] * 2,
        "post_id": ["A", "B", "A", "F", "F", "A", "B"], "amount": [20000.0, 20000.0, 21000.0, 3000.0, 4164.0, 7000.0, 7000.0],
        "code_cv": ["CV1", "CV1", "CN1", "CN1", "CN1", "CN1", "CN1"], "lib_cv": ["59 - Agglo"] * 7,
    })
    partial = partial_years(posts)
    assert list(partial) == [2025] and "7\u202f000\u00a0€ en 2025, contre 21\u202f000\u00a0€ en 2024" in partial[2025]
    # The FONJEP post paid in two records counts once; its amounts add up.
    assert funded(posts, partial) == {"year": 2024, "posts": {"adulte-relais": 1, "fonjep": 1},
                                      "amounts": {"adulte-relais": 21000.0, "fonjep": 7164.0},
                                      "contracts": [{"code": "CN1", "label": "Agglo"}], "later_partial": partial}
    assert funded(posts, {})["year"] == 2025 and funded(posts.iloc[0:0], {}) is None


@pytest.mark.parametrize("code", ["59512", "80021"])
def test_roubaix_and_amiens_qpv_diagnostic(hdf, indicator_cache, code):
    """Figures read by hand in the real files.

    DEMO_2022.csv: POP_COM_QP, the QPV population of a QPV's communes, is 72,813 for Nouveau Roubaix
    (QP059083, Roubaix only) and 30,279 for every Amiens QPV (all in Amiens, POP_MUN summing to 30,279);
    REVN_2017/2022.csv TP60: QP059083 45,0 → 50,4, QP080001 (Étouvie) 56,8 → 58,1. Ci.Ville 2024:
    CN05911M 214 adultes-relais (× 22,810.61 € = 4,881,470.54 €) and 64 FONJEP posts (65 records, D01781 paid
    in two: 443,571 €); CN08001I 33 adultes-relais (752,750.13 €) and 19 FONJEP posts (20 records, 130,743 €).
    """
    from diagnostic.analysis import commune
    from diagnostic.report import summary
    expected = {
        "59512": {"qpv": 3, "in_qpv": 72_813, "epci": "Métropole Européenne de Lille", "evol": ("QP059083", 45.0, 50.4),
                      "sentence": "214\u00a0postes adultes-relais et 64\u00a0postes FONJEP sont déjà financés par l'État "
                               "en 2024, dernière année complète des fichiers de l'ANCT, sur le contrat de ville "
                               "«\u00a0Métropole Européenne de Lille\u00a0» (CN05911M), pour 5\u202f325\u202f041,54\u00a0€, "
                               "dont 4\u202f881\u202f470,54\u00a0€ pour les postes adultes-relais et 443\u202f571\u00a0€ "
                               "pour les postes FONJEP"},
        "80021": {"qpv": 6, "in_qpv": 30_279, "epci": "Communauté d'agglomération Amiens Métropole", "evol": ("QP080001", 56.8, 58.1),
                      "sentence": "33\u00a0postes adultes-relais et 19\u00a0postes FONJEP sont déjà financés par l'État "
                               "en 2024, dernière année complète des fichiers de l'ANCT, sur le contrat de ville "
                               "«\u00a0CA Amiens Métropole\u00a0» (CN08001I), pour 883\u202f493,13\u00a0€, "
                               "dont 752\u202f750,13\u00a0€ pour les postes adultes-relais et 130\u202f743\u00a0€ "
                               "pour les postes FONJEP"},
    }[code]
    d = commune.build(hdf, code)
    saved = commune.results(d)
    assert saved["niveau_d_analyse"] == "qpv" and len(d.qpv) == expected["qpv"] and len(d.needs)
    assert d.share["qpv_population"] == pytest.approx(expected["in_qpv"])
    assert d.epci["nom"] == expected["epci"] and "ref_epci" in d.social
    qp, first, last = expected["evol"]
    tp = next(e for e in saved["evolutions"] if e["territoire"] == qp and e["indicateur"] == "poverty_rate")
    assert (tp["premier_millesime"], tp["premiere_valeur"], tp["dernier_millesime"], tp["derniere_valeur"]) == (
        "2017", first, "2022", last)
    # 2025 is partial (7,164 € per adulte-relais post against 22,810.61 € in 2024): marked, never used for sentences.
    assert list(d.posts_partial) == [2025] and d.posts_funded["year"] == 2024
    assert {p["annee_partielle"] for p in saved["postes"] if p["annee"] == 2025} == {True}
    funding = next(r for r in d.recommendations if r["id"] == "financements")
    assert funding["choice"] == "postes_en_place" and expected["sentence"] in funding["text"]
    # Said once, in the funding card: page one gives the decision's figures, not the posts sentence again.
    assert not any(expected["sentence"] in s["texte"] for s in summary.essentials(d)["decision"])
    assert "Pour un poste adulte-relais nouveau, l'État verse 22\u202f810,61\u00a0€ par an (2024)" in funding["text"]
