"""BPE files of each code list, built small here in the layouts INSEE publishes, read into the same domains.

Where each shape comes from:

- detail files: ``AN;DEPCOM;TYPEQU;LAMBERT_X;LAMBERT_Y;QUALITE_XY`` up to BPE 2022 (the shared BPE 2021 detail
  sample, PROVENANCE.md § 10); BPE 2023 onward add ``DOM``, ``SDOM``, ``EPSG`` and ``QP2024`` (INSEE's
  variable list of the BPE detail file, as transcribed in public code reading BPE 2023), in the recast codes
  (C107 maternelle, C109 élémentaire, D265 généraliste, D307 pharmacie, F121 gymnases, A128 France Services);
- per-IRIS counts, wide: ``REG;DEP;DEPCOM;DCIRIS;AN;TYPEQU;NB_EQUIP`` (BPE « ensemble » 2018, PROVENANCE.md § 10);
- counts, long: ``GEO;GEO_OBJECT;FACILITY_DOM;FACILITY_SDOM;FACILITY_TYPE;BPE_MEASURE;TIME_PERIOD;OBS_VALUE``
  (INSEE's « DS_BPE » tables, as public scripts read ``DS_BPE_2025_data.csv``: ``GEO_OBJECT`` COM, ARM or IRIS,
  ``_T`` for totals, ``BPE_MEASURE`` ``FACILITIES`` for the number of equipments).

The communes are the demo's (fictional department 99) or a square standing for Paris.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

from diagnostic import cli
from diagnostic.analysis.indicators.cache import with_counted_equipment
from diagnostic.analysis.indicators.domains import service_domains
from diagnostic.errors import CatalogError
from diagnostic.io.catalog import Source
from diagnostic.io.sources.bpe import load_bpe, load_bpe_counts
from diagnostic.io.sources.communes import load_communes
from diagnostic.io.sources.france_services import (
    counted_once,
    load_france_services,
    without_bpe_duplicates,
)
from tests.util import DEMO_CATALOG

DEMO = DEMO_CATALOG.parent
#: The same equipment in the two code lists: meaning → (code up to BPE 2022, code from BPE 2023–2024).
SAME = {"maternelle": ("C101", "C107"), "élémentaire": ("C104", "C109"), "généraliste": ("D201", "D265"),
        "pharmacie": ("D301", "D307"), "gymnase": ("F121", "F121"), "police": ("A101", "A101"),
        "collège": ("C201", "C201"), "maison de justice": ("A124", "A124"), "poste": ("A206", "A206")}


@pytest.fixture(scope="module")
def communes() -> gpd.GeoDataFrame:
    return load_communes(Source("communes", DEMO / "communes.geojson", columns={"insee_com": "code",
                                                                              "lib_com": "nom"}))[0]


def points(communes: gpd.GeoDataFrame, n: int) -> list[tuple[str, float, float]]:
    """``n`` points inside the demo communes (commune, x, y in Lambert-93), spread over the three."""
    out = []
    for i in range(n):
        shape = communes.iloc[i % len(communes)]
        centre = shape.geometry.representative_point()
        out.append((shape["insee_com"], centre.x + 10 * i, centre.y))
    return out


def detail_2018(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"AN": "2018", "DEPCOM": r["com"], "TYPEQU": r["code"], "LAMBERT_X": r["x"],
                          "LAMBERT_Y": r["y"], "QUALITE_XY": "Bonne"} for r in rows])


def detail_2024(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"AN": "2024", "NOMRS": "", "DEPCOM": r["com"], "DEP": "99", "REG": "99",
                          "DOM": r["code"][0], "SDOM": r["code"][:2], "TYPEQU": r["code"], "LAMBERT_X": r["x"],
                          "LAMBERT_Y": r["y"], "EPSG": "2154", "QUALITE_XY": "Bonne",
                          "QP2024": r.get("qp", "")} for r in rows])


def equipment(communes: gpd.GeoDataFrame, vintage: int) -> list[dict]:
    """Each meaning of :data:`SAME` twice, at the same places in both vintages."""
    where = points(communes, 2 * len(SAME))
    return [{"com": com, "x": f"{x:.1f}", "y": f"{y:.1f}", "code": codes[vintage]}
            for (com, x, y), codes in zip(where, [c for c in SAME.values() for _ in range(2)])]


def read(path: Path, frame: pd.DataFrame, communes: gpd.GeoDataFrame, vintage: str | None, **options):
    frame.to_csv(path, sep=";", index=False)
    return load_bpe(Source("services", path, format="bpe", vintage=vintage, options=options), communes)


def by_domain(services: gpd.GeoDataFrame) -> dict:
    return service_domains(services).groupby(["domain", "role"]).size().to_dict()


def test_2018_and_2024_files_give_the_same_domains(tmp_path: Path, communes) -> None:
    old, rep_old = read(tmp_path / "bpe18.csv", detail_2018(equipment(communes, 0)), communes, "2018")
    new, rep_new = read(tmp_path / "BPE24.csv", detail_2024(equipment(communes, 1)), communes, "2024")
    assert set(old["source_kind"]) == {"bpe_2018"} and set(new["source_kind"]) == {"bpe_2024"}
    assert by_domain(old) == by_domain(new)
    # Hand count: 2 × (maternelle, élémentaire, collège) places of education; 2 × (généraliste, pharmacie) health;
    # 2 maisons de justice answer access to rights, 2 post offices are its common offer.
    assert by_domain(new) == {("education", "lieu"): 6, ("sante", "droit_commun"): 4, ("jeunesse", "lieu"): 2,
                              ("espace_public", "contexte"): 2, ("acces_droits", "reponse"): 2,
                              ("acces_droits", "droit_commun"): 2}
    assert not [w for w in rep_old.warnings + rep_new.warnings if "inconnus" in w]


def test_vintage_picks_the_list_and_the_file_year_stands_in_for_it(tmp_path: Path, communes) -> None:
    rows = equipment(communes, 1)
    services, _ = read(tmp_path / "BPE24.csv", detail_2024(rows), communes, None)  # AN 2024 in the file
    assert set(services["source_kind"]) == {"bpe_2024"}
    services, _ = read(tmp_path / "BPE25.csv", detail_2024(rows), communes, "2025")
    assert set(services["source_kind"]) == {"bpe_2025"}
    with pytest.raises(CatalogError, match="nomenclature: 2019"):
        read(tmp_path / "BPE24.csv", detail_2024(rows), communes, None, nomenclature="2019")


def test_unknown_codes_are_counted_and_reported_not_dropped(tmp_path: Path, communes) -> None:
    rows = equipment(communes, 1)
    rows[0]["code"] = rows[1]["code"] = "C101"  # an old code in a 2024 file
    rows[2]["code"] = "Z999"
    services, report = read(tmp_path / "BPE24.csv", detail_2024(rows), communes, "2024")
    assert len(services) == len(rows)  # kept
    said = [w for w in report.warnings if "inconnus de la table" in w]
    assert said == [("3\xa0équipements de types inconnus de la table (liste BPE 2024) : C101, Z999 — gardés, "
                    "rangés dans aucun domaine ; ajoutez-les à diagnostic/resources/tables/types_bpe.csv et "
                    "domaines_mediation.csv.")]
    only_old = equipment(communes, 0)
    _, report = read(tmp_path / "bpe.csv", detail_2018(only_old), communes, "2024")
    assert any("précisez « nomenclature: 2018 »" in w for w in report.warnings)  # the list that fits is named


def test_unknown_codes_said_by_data_check(tmp_path: Path, communes, capsys) -> None:
    rows = equipment(communes, 1)
    rows[0]["code"] = "Z999"
    detail_2024(rows).to_csv(tmp_path / "BPE24.csv", sep=";", index=False)
    (tmp_path / "catalogue.yaml").write_text(
        f"name: essai\nfictional: true\nsources:\n  communes:\n    path: {DEMO / 'communes.geojson'}\n"
        "    columns: {insee_com: code, lib_com: nom}\n  services:\n    - path: BPE24.csv\n      format: bpe\n"
        "      vintage: '2024'\n", encoding="utf-8")
    assert cli.main(["data", "check", "--catalog", str(tmp_path / "catalogue.yaml"), "--allow-outside"]) == 0
    assert "1\xa0équipement de types inconnus de la table (liste BPE 2024) : Z999" in capsys.readouterr().out


def test_qp2024_kept_as_the_quartier_of_each_equipment(tmp_path: Path, communes) -> None:
    rows = equipment(communes, 1)[:3]
    rows[0]["qp"] = "qn09901a"
    services, _ = read(tmp_path / "BPE24.csv", detail_2024(rows), communes, "2024")
    assert list(services["code_qp"]) == ["QN09901A", "", ""]


def test_france_services_counted_once(tmp_path: Path, communes) -> None:
    listed, _ = load_france_services(Source("services", DEMO / "france_services.csv", format="france_services"),
                                     communes)
    rows = [{"com": s.insee_com, "x": f"{s.geometry.x + 80:.1f}", "y": f"{s.geometry.y:.1f}", "code": "A128"}
            for s in listed.itertuples()]
    far = listed.iloc[0]
    rows.append({"com": far.insee_com, "x": f"{far.geometry.x:.1f}", "y": f"{far.geometry.y + 2000:.1f}",
                 "code": "A128"})  # 2 km from any site of the list: another site, kept
    bpe, _ = read(tmp_path / "BPE24.csv", detail_2024(rows), communes, "2024")
    services, note = without_bpe_duplicates(gpd.GeoDataFrame(pd.concat([bpe, listed], ignore_index=True),
                                                             crs=bpe.crs))
    assert (services["type_code"] == "A128").sum() == 1
    assert by_domain(services)[("acces_droits", "reponse")] == len(listed) + 1
    assert note.startswith(f"{len(listed)} implantation(s) France Services de la BPE (A128) comptée(s) une seule fois")
    assert "1 autre(s) gardée(s)" in note
    counts = pd.DataFrame({"insee_com": [listed.iloc[0]["insee_com"], "99999"], "iris": "",
                           "source_kind": "bpe_2024", "type_code": "A128", "count": [2.0, 1.0]})
    kept, note = counted_once(counts, listed)
    assert list(kept["insee_com"]) == ["99999"] and note.startswith("2 implantation(s)")


@pytest.fixture
def paris() -> gpd.GeoDataFrame:
    """Paris as one commune (``plm: commune``): a square around the centre of Paris in Lambert-93."""
    return gpd.GeoDataFrame({"insee_com": ["75056"], "lib_com": ["Paris"]},
                            geometry=[box(645_000, 6_855_000, 660_000, 6_870_000)], crs="EPSG:2154")


def test_paris_arrondissement_row_lands_in_75056(tmp_path: Path, paris) -> None:
    rows = [{"com": "75108", "x": "650000.0", "y": "6863000.0", "code": "D265"},
            {"com": "75120", "x": "656000.0", "y": "6862000.0", "code": "C107"}]
    services, report = read(tmp_path / "BPE24.csv", detail_2024(rows), paris, "2024")
    assert list(services["insee_com"]) == ["75056", "75056"]
    assert "Paris (75056) : 2\xa0lignes d'arrondissements municipaux rattachée(s) à la commune (« plm: commune »)." \
        in report.warnings
    arrondissements = gpd.GeoDataFrame({"insee_com": ["75108", "75120"], "lib_com": ["Paris 8e", "Paris 20e"]},
                                       geometry=[box(645_000, 6_855_000, 652_500, 6_870_000),
                                                 box(652_500, 6_855_000, 660_000, 6_870_000)], crs="EPSG:2154")
    kept, _ = read(tmp_path / "BPE24.csv", detail_2024(rows), arrondissements, "2024")  # plm: arrondissements
    assert list(kept["insee_com"]) == ["75108", "75120"]


# --------------------------------------------------------------------------------------------- counts
WIDE = pd.DataFrame({  # REG;DEP;DEPCOM;DCIRIS;AN;TYPEQU;NB_EQUIP, per IRIS
    "REG": "99", "DEP": "99", "DEPCOM": ["99101", "99101", "99101", "99102", "99103"],
    "DCIRIS": ["991010101", "991010102", "991010102", "99102", "99103"], "AN": "2024",
    "TYPEQU": ["C107", "C107", "D265", "A128", "F121"], "NB_EQUIP": ["3", "2", "7", "1", "4"],
})


def long_layout(wide: pd.DataFrame, level: str) -> pd.DataFrame:
    """The same counts in INSEE's long layout, with the totals and other measures a real file holds."""
    rows = []
    geo = wide["DCIRIS"].where(wide["DCIRIS"].str.len() == 9, wide["DCIRIS"] + "0000") if level == "IRIS" \
        else wide["DEPCOM"]
    for g, code, n in zip(geo, wide["TYPEQU"], wide["NB_EQUIP"]):
        rows.append({"GEO": g, "GEO_OBJECT": level, "FACILITY_DOM": code[0], "FACILITY_SDOM": code[:2],
                     "FACILITY_TYPE": code, "BPE_MEASURE": "FACILITIES", "TIME_PERIOD": "2024", "OBS_VALUE": n})
    frame = pd.DataFrame(rows).groupby(["GEO", "GEO_OBJECT", "FACILITY_DOM", "FACILITY_SDOM", "FACILITY_TYPE",
                                         "BPE_MEASURE", "TIME_PERIOD"], as_index=False)["OBS_VALUE"].agg(
        lambda s: str(sum(int(v) for v in s)))
    totals = frame.assign(FACILITY_TYPE="_T")  # a sub-domain total per row: to leave out
    other = frame.assign(BPE_MEASURE="PRES")  # another measure: to leave out
    older = frame.assign(TIME_PERIOD="2023", OBS_VALUE="99")  # an earlier year: to leave out
    return pd.concat([frame, totals, other, older], ignore_index=True)


def counts_of(path: Path, frame: pd.DataFrame, communes, vintage: str | None = "2024") -> pd.DataFrame:
    frame.to_csv(path, sep=";", index=False)
    out, report = load_bpe_counts(Source("equipment_counts", path, vintage=vintage), communes)
    assert not [w for w in report.warnings if "inconnus" in w]
    return out


def test_long_layout_counts_equal_the_wide_ones(tmp_path: Path, communes) -> None:
    wide = counts_of(tmp_path / "wide.csv", WIDE, communes)
    per_iris = counts_of(tmp_path / "DS_BPE_IRIS_data.csv", long_layout(WIDE, "IRIS"), communes, None)
    pd.testing.assert_frame_equal(
        wide.assign(iris=wide["iris"].where(wide["iris"].str.len() == 9, wide["iris"] + "0000")), per_iris)
    per_commune = counts_of(tmp_path / "DS_BPE_data.csv", long_layout(WIDE, "COM"), communes, None)
    by_commune = wide.groupby(["insee_com", "source_kind", "type_code"])["count"].sum()
    assert per_commune.set_index(["insee_com", "source_kind", "type_code"])["count"].to_dict() == by_commune.to_dict()
    assert per_commune["count"].sum() == 17


def test_counts_of_both_lists_enter_the_same_domains(tmp_path: Path, communes) -> None:
    old_codes = {"C107": "C101", "D265": "D201", "A128": "A206", "F121": "F121"}
    old = counts_of(tmp_path / "bpe18.csv", WIDE.assign(AN="2018", TYPEQU=WIDE["TYPEQU"].map(old_codes)),
                    communes, "2018")
    new = counts_of(tmp_path / "bpe24.csv", WIDE.assign(TYPEQU=WIDE["TYPEQU"].replace({"A128": "A206"})),
                    communes, "2024")
    cov = pd.DataFrame({"code": ["99101", "99101", "99103"], "domain": ["education", "sante", "jeunesse"],
                        "services_inside": 0, "services_band": 0, "population": 1000.0})
    left, right = with_counted_equipment(cov, old), with_counted_equipment(cov, new)
    assert list(left["services_inside"]) == list(right["services_inside"]) == [5, 7, 4]


def test_arrondissement_counts_land_in_their_commune(tmp_path: Path, paris) -> None:
    long = pd.DataFrame({"GEO": ["75108", "75120", "75056"], "GEO_OBJECT": ["ARM", "ARM", "COM"],
                         "FACILITY_DOM": "D", "FACILITY_SDOM": "D2", "FACILITY_TYPE": "D265",
                         "BPE_MEASURE": "FACILITIES", "TIME_PERIOD": "2024", "OBS_VALUE": ["4", "6", "10"]})

    def read_counts(frame: pd.DataFrame, communes: gpd.GeoDataFrame) -> tuple[dict, list[str]]:
        frame.to_csv(tmp_path / "DS_BPE_data.csv", sep=";", index=False)
        counts, report = load_bpe_counts(Source("equipment_counts", tmp_path / "DS_BPE_data.csv"), communes)
        return counts.groupby("insee_com")["count"].sum().to_dict(), report.warnings

    # Paris's own row counts its arrondissements: they are not added a second time.
    counts, said = read_counts(long, paris)
    assert counts == {"75056": 10.0} and any("(COM) les compte déjà" in w for w in said)
    counts, said = read_counts(long[long["GEO_OBJECT"] == "ARM"], paris)  # arrondissements only: summed into Paris
    assert counts == {"75056": 10.0} and any(w.startswith("Paris (75056) : 2\xa0lignes") for w in said)
    arrondissements = gpd.GeoDataFrame({"insee_com": ["75108", "75120"]}, geometry=[paris.geometry.iloc[0]] * 2,
                                       crs="EPSG:2154")
    counts, _ = read_counts(long, arrondissements)  # plm: arrondissements
    assert counts == {"75108": 4.0, "75120": 6.0}


def test_equipment_the_bpe_places_in_a_quartier_counts_there_without_outlines(tmp_path: Path, communes) -> None:
    """Three schools of 99101 in a 2024 file, two in QN09901A by ``QP2024``, one outside every quartier: the QPV
    (drawn without outline, 1,000 of the commune's 10,000 inhabitants) has those two, not a tenth of three; the France
    Services of the commune, with no quartier said, stay shared pro rata."""
    from diagnostic.analysis.indicators.cache import commune_coverage_for_qpv
    from diagnostic.analysis.indicators.coverage import coverage
    from diagnostic.analysis.indicators.placed import placed_pairs, with_placed, without_placed

    centre = communes.set_index("insee_com").geometry["99101"].representative_point()
    rows = [{"com": "99101", "x": f"{centre.x + 20 * i:.1f}", "y": f"{centre.y:.1f}", "code": "C107", "qp": qp}
            for i, qp in enumerate(["QN09901A", "QN09901A", ""])]
    bpe, _ = read(tmp_path / "BPE24.csv", detail_2024(rows), communes, "2024")
    listed, _ = load_france_services(Source("services", DEMO / "france_services.csv", format="france_services"),
                                     communes)
    pairs = service_domains(gpd.GeoDataFrame(pd.concat([bpe, listed], ignore_index=True), crs=bpe.crs))
    com_pop = pd.Series({"99101": 10_000.0, "99102": 1.0, "99103": 1.0})
    cov_com = coverage(communes, pairs, com_pop, code="insee_com", level="commune", band_m=0.0)
    parts = pd.DataFrame({"code_qp": ["QN09901A"], "insee_com": ["99101"], "population": [1_000.0]})
    placed = placed_pairs(pairs)
    assert len(placed) == 3  # the France Services list says no quartier
    cov = with_placed(commune_coverage_for_qpv(parts, without_placed(cov_com, placed), com_pop,
                                               pd.Series({"QN09901A": 1_000.0})), placed).set_index("domain")
    assert cov.at["education", "services_inside"] == 2 and cov.at["education", "places_band"] == 2
    fs = int(((listed["insee_com"] == "99101")).sum())
    assert cov.at["acces_droits", "responses_band"] == round(fs / 10, 1)
    assert "QP2024" in cov.at["education", "method"]
    assert with_placed(commune_coverage_for_qpv(parts, cov_com, com_pop, pd.Series({"QN09901A": 1_000.0})),
                       placed_pairs(pairs.drop(columns="code_qp"))).set_index("domain").at[
        "education", "services_inside"] == 0.3  # without QP2024: a tenth of the commune's three schools


def test_france_services_once_through_the_catalogue(tmp_path: Path, communes, capsys) -> None:
    """The same rule when a catalogue loads both the BPE (points and counts) and the ANCT list: data check says it."""
    listed, _ = load_france_services(Source("services", DEMO / "france_services.csv", format="france_services"),
                                     communes)
    site = listed.iloc[0]
    rows = [{"com": site.insee_com, "x": f"{site.geometry.x + 50:.1f}", "y": f"{site.geometry.y:.1f}", "code": "A128"}]
    detail_2024(rows).to_csv(tmp_path / "BPE24.csv", sep=";", index=False)
    WIDE.to_csv(tmp_path / "comptes.csv", sep=";", index=False)  # its one A128 is in 99102
    (tmp_path / "catalogue.yaml").write_text(
        f"name: essai\nfictional: true\nsources:\n  communes:\n    path: {DEMO / 'communes.geojson'}\n"
        "    columns: {insee_com: code, lib_com: nom}\n  services:\n    - path: BPE24.csv\n      format: bpe\n"
        f"      vintage: '2024'\n    - path: {DEMO / 'france_services.csv'}\n      format: france_services\n"
        "  equipment_counts:\n    - path: comptes.csv\n      vintage: '2024'\n", encoding="utf-8")
    assert cli.main(["data", "check", "--catalog", str(tmp_path / "catalogue.yaml"), "--allow-outside"]) == 0
    out = capsys.readouterr().out
    assert "1 implantation(s) France Services de la BPE (A128) comptée(s) une seule fois" in out
    assert "99102" in set(listed["insee_com"])  # the demo's bus France Services: its A128 count is left aside
    assert "1 implantation(s) France Services comptée(s) par la BPE (A128) dans 1 commune(s)" in out
