"""Loaders: the real extracts checked against PROVENANCE.md, and every bad-input class on broken copies.

Figures from the real files are recomputed here with the ``csv`` module, independently of the
loaders, or taken from ``../shared/data/real/PROVENANCE.md``.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import yaml
from shapely.geometry import Polygon, box

from diagnostic.errors import (
    CatalogError,
    CRSError,
    DuplicateCodeError,
    EmptyFileError,
    GeometryError,
    MissingColumnError,
    MissingFileError,
    OutOfTerritoryError,
    UnknownCommuneError,
    UnknownFormatError,
    ValueFormatError,
)
from diagnostic.io.catalog import PROJECT_ROOT, load_catalog
from diagnostic.io.sources._io import to_number
from diagnostic.io.territory import load_territory
from tests.util import HDF, OCCITANIE


def _csv_rows(path: Path, sep: str = ",") -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=sep))


# --------------------------------------------------------------------------- mini territory
def write_mini(d: Path) -> Path:
    """Three square communes, two QPVs (one over two communes), small tables; Lambert-93 GeoPackages."""
    d.mkdir(parents=True, exist_ok=True)
    communes = gpd.GeoDataFrame(
        {"code": ["99001", "99002", "99003"], "nom": ["Alpha", "Bêta", "Gamma"]},
        geometry=[box(700000, 6600000, 702000, 6602000), box(702000, 6600000, 704000, 6602000),
                  box(704000, 6600000, 706000, 6602000)],
        crs="EPSG:2154",
    )
    communes.to_file(d / "communes.gpkg")
    qpv = gpd.GeoDataFrame(
        {"code_qp": ["QN09901A", "QN09902B"], "lib_qp": ["Un", "Deux"], "insee_com": ["99001", "99001,99002"]},
        geometry=[box(700500, 6600500, 701500, 6601500), box(701800, 6601000, 702600, 6601400)],
        crs="EPSG:2154",
    )
    qpv.to_file(d / "qpv.gpkg")
    (d / "qpv_ind.csv").write_text("code_qp;pop_mun;tp60\nQN09901A;1000;40,0\nQN09902B;4000;20,0\n", encoding="utf-8")
    (d / "pop.csv").write_text("COM;PMUN\n99001;10000\n99002;30000\n99003;5000\n", encoding="utf-8")
    (d / "filo.csv").write_text("CODGEO;TP6021;NBMENFISC21\n99001;20,0;4000\n99002;s;s\n99003;40,0;2000\n",
                                encoding="utf-8")
    (d / "services.csv").write_text(
        "identifiant,nom,categorie,code_commune,x,y\nS1,Centre social,centre_social,99001,701000,6601000\n",
        encoding="utf-8",
    )
    catalog = {
        "name": "mini",
        "sources": {
            "communes": {"path": "communes.gpkg", "columns": {"insee_com": "code", "lib_com": "nom"}},
            "qpv": {"path": "qpv.gpkg"},
            "qpv_indicators": {"path": "qpv_ind.csv", "indicators": {"population": "pop_mun", "poverty_rate": "tp60"}},
            "commune_indicators": [
                {"path": "pop.csv", "columns": {"insee_com": "COM"}, "indicators": {"population": "PMUN"}},
                {"path": "filo.csv", "columns": {"insee_com": "CODGEO"},
                 "indicators": {"poverty_rate": "TP6021", "menages_fiscaux": "NBMENFISC21"}},
            ],
            "services": [{"path": "services.csv", "format": "csv", "crs": "EPSG:2154"}],
        },
    }
    (d / "catalogue.yaml").write_text(yaml.safe_dump(catalog, allow_unicode=True), encoding="utf-8")
    return d / "catalogue.yaml"


def edit_catalog(d: Path, change) -> None:
    path = d / "catalogue.yaml"
    cat = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(cat["sources"])
    path.write_text(yaml.safe_dump(cat, allow_unicode=True), encoding="utf-8")


@pytest.fixture
def mini(tmp_path) -> Path:
    write_mini(tmp_path / "mini")
    return tmp_path / "mini"


def test_mini_territory_loads(mini):
    data = load_territory(mini / "catalogue.yaml")
    assert list(data.communes["insee_com"]) == ["99001", "99002", "99003"]
    assert data.communes.crs.to_epsg() == 2154
    assert dict(zip(data.communes["insee_com"], data.communes["qpv_count"])) == {"99001": 2, "99002": 1, "99003": 0}
    # A QPV over two communes belongs to each of them.
    assert set(data.qpv_in("99001")["code_qp"]) == {"QN09901A", "QN09902B"}
    assert set(data.qpv_in("99002")["code_qp"]) == {"QN09902B"}
    assert data.qpv.set_index("code_qp").loc["QN09902B", "communes"] == "99001,99002"
    assert data.qpv["generation"].unique().tolist() == ["2024"]


# --------------------------------------------------------------------------- number parsing
def test_to_number_french_comma_secret_and_missing():
    values, secret = to_number(pd.Series(["27,0", "s", "", "1\u202f234,5", "12.5", "nd"]), Path("x.csv"), "TP")
    assert values[0] == 27.0 and values[3] == 1234.5 and values[4] == 12.5
    assert np.isnan(values[1]) and np.isnan(values[2]) and np.isnan(values[5])
    assert secret.tolist() == [False, True, False, False, False, False]  # « nd » is not available, not secret


def test_to_number_rejects_text_with_line_number():
    with pytest.raises(ValueFormatError) as exc:
        to_number(pd.Series(["1", "2", "deux"]), Path("t.csv"), "col")
    assert exc.value.rows == [4]  # header is line 1
    assert "deux" in str(exc.value) and "Ligne(s) : 4" in str(exc.value)


# --------------------------------------------------------------------------- Occitanie (real)
def test_occitanie_qpv_count_and_departments(occitanie):
    assert len(occitanie.qpv) == 83
    per_dep = Counter(occitanie.qpv["insee_dep"])
    assert per_dep == {"31": 19, "30": 18, "81": 11, "66": 10, "11": 10, "82": 4, "65": 4,
                       "09": 3, "12": 2, "46": 1, "32": 1}
    # The code says the same as the department column: QPdddnnn.
    assert Counter(occitanie.qpv["code_qp"].str[3:5]) == per_dep
    assert (occitanie.qpv["generation"] == "2015").all()
    assert occitanie.qpv.crs.to_epsg() == 2154
    assert occitanie.qpv.is_valid.all()
    assert len(occitanie.communes) == 40


def test_occitanie_repairs_are_reported(occitanie, real_dir):
    rep = next(r for r in occitanie.reports if r.role == "qpv")
    assert rep.rows_read == 83 and rep.rows_kept == 83
    assert any("réparée(s) sans perte" in w for w in rep.warnings)
    # Lossless: the repaired outline keeps the published area (within 0.1 %).
    raw = gpd.read_file(real_dir / "occitanie_qpv2015_contours.geojson").to_crs(2154).set_index("code_qp")
    loaded = occitanie.qpv.set_index("code_qp")
    ratio = loaded.area / raw.area.reindex(loaded.index)
    assert ratio.between(0.999, 1.001).all()


def test_toulouse_qpvs_and_population(occitanie, real_dir):
    rows = _csv_rows(real_dir / "occitanie_qpv2015_indicateurs.csv")
    toulouse_csv = {r["code_qp"]: int(r["pop_mun"]) for r in rows if "Toulouse" in r["nom_commune"]}
    assert len(toulouse_csv) == 12 and sum(toulouse_csv.values()) == 55_543
    qpvs = occitanie.qpv_in("31555")
    assert sorted(qpvs["code_qp"]) == sorted(toulouse_csv)
    assert sorted(qpvs["code_qp"]) == [f"QP0310{n:02d}" for n in (6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 18, 19)]
    values = occitanie.qpv_indicators.values
    assert values.loc[sorted(toulouse_csv), "population"].sum() == 55_543
    assert values.loc["QP031007", "population"] == 31_691
    assert values.loc["QP031007", "poverty_rate"] == 48.5
    assert occitanie.qpv.set_index("code_qp").loc["QP031007", "lib_qp"] == "Grand Mirail"
    toulouse = occitanie.communes.set_index("insee_com").loc["31555"]
    assert toulouse["qpv_count"] == 12
    assert toulouse["population"] == int(rows[[r["code_qp"] for r in rows].index("QP031007")]["pop_com"])


def test_occitanie_totals_and_empty_cells(occitanie, real_dir):
    rows = _csv_rows(real_dir / "occitanie_qpv2015_indicateurs.csv")
    values = occitanie.qpv_indicators.values
    assert values["population"].sum() == 255_874
    assert sum(1 for r in rows for v in r.values() if v == "") == 170
    # Every empty cell of a mapped column is missing, never zero.
    mapped = occitanie.qpv_indicators.definitions["column"]
    for key, column in mapped.items():
        empty = {r["code_qp"] for r in rows if r[column] == ""}
        assert set(values.index[values[key].isna()]) == empty, key
    assert values["youth_index"].isna().sum() == 9  # ind_jeune: 9 empty cells in the file


# --------------------------------------------------------------------------- Hauts-de-France (real)
@pytest.fixture(scope="module")
def hdf_data():
    from diagnostic.io.catalog import DEFAULT_DATA_DIR

    if not (DEFAULT_DATA_DIR / "PROVENANCE.md").exists():
        pytest.skip(f"extraits réels absents ({DEFAULT_DATA_DIR}) : ce test nécessite ../shared/data/real")
    return load_territory(HDF)


def test_hdf_communes_and_populations(hdf_data, real_dir):
    assert len(hdf_data.communes) == 3808
    assert Counter(hdf_data.communes["insee_dep"]) == {"02": 804, "59": 648, "60": 686, "62": 891, "80": 779}
    pop = hdf_data.commune_indicators.values["population"]
    assert pop["59350"] == 236_710
    by_dep = pop.groupby(pop.index.str[:2]).sum()
    assert by_dep.to_dict() == {"02": 527_468, "59": 2_611_293, "60": 828_838, "62": 1_461_441, "80": 566_252}
    assert pop.sum() == 5_995_292
    for code, expected in {"59512": 98_892, "59599": 99_011, "80021": 133_625, "62041": 42_600,
                           "02691": 52_958, "60057": 56_677}.items():
        assert pop[code] == expected, code


def test_hdf_filosofi_decimal_comma_and_secret(hdf_data, real_dir):
    values = hdf_data.commune_indicators.values
    secret = hdf_data.commune_indicators.secret
    lille = values.loc["59350"]
    assert lille["poverty_rate"] == 27.0  # written « 27,0 » in the file
    assert lille["median_income"] == 20_520
    assert lille["menages_fiscaux"] == 96_579
    for code, (med, rate) in {"59512": (14_580, 46.0), "59599": (18_300, 29.0), "80021": (19_650, 26.0),
                              "62041": (20_230, 25.0), "02691": (18_400, 29.0)}.items():
        assert (values.loc[code, "median_income"], values.loc[code, "poverty_rate"]) == (med, rate)
    rows = _csv_rows(real_dir / "hdf_filosofi_2021_communes.csv", sep=";")
    marked = {r["CODGEO"] for r in rows if r["TP6021"] == "s"}
    assert len(rows) == 3788 and len(marked) == 3322  # 3,322 « s »; one « nd » (60694) is « non disponible »
    assert set(secret.index[secret["poverty_rate"]]) == marked
    assert np.isnan(values.loc["60694", "poverty_rate"]) and not secret.loc["60694", "poverty_rate"]
    # Secret values are missing, never zero, and flagged.
    assert values.loc[sorted(marked), "poverty_rate"].isna().all()
    assert (values["poverty_rate"] == 0).sum() == 0
    assert values["poverty_rate"].notna().sum() == 465
    rep = next(r for r in hdf_data.reports if r.path.name == "hdf_filosofi_2021_communes.csv")
    assert any("secret statistique" in w for w in rep.warnings)


def test_hdf_france_services(hdf_data, real_dir):
    rows = _csv_rows(real_dir / "france_services_hdf_20240801.csv")
    services = hdf_data.services
    fs = services[services["source_kind"] == "france_services"]
    # All 205 rows are kept: every insee_com of the 2024 list exists in the 2018 commune outlines,
    # and every point lies within 1 km of its commune, so the loader sets nothing aside.
    rep = next(r for r in hdf_data.reports if r.role == "services")
    assert (rep.rows_read, rep.rows_kept, rep.warnings) == (205, 205, [])
    assert {r["insee_com"] for r in rows} <= set(hdf_data.communes["insee_com"])
    assert Counter(fs["insee_com"].str[:2]) == {"02": 35, "59": 52, "60": 40, "62": 50, "80": 28}
    lille = fs[fs["insee_com"] == "59350"]
    assert len(lille) == 2
    assert any("Faubourg de Béthune" in n for n in lille["name"])
    assert any("Bois Blancs" in n for n in lille["name"])
    assert (fs["insee_com"] == "80021").sum() == 3
    assert (fs["insee_com"] == "59512").sum() == 2
    # Opening hours are kept from the h_<jour> columns; the Guise bus opens Monday 09:30 - 16:30.
    guise = fs.set_index("service_id").loc["FS-3"]
    assert "lundi 09:30 - 16:30" in guise["hours"]
    # WGS84 → Lambert-93: Lille sites lie inside Lille's outline.
    lille_shape = hdf_data.communes.set_index("insee_com").geometry["59350"]
    assert lille.geometry.within(lille_shape.buffer(1)).all()


def test_hdf_adultes_relais(real_dir):
    """The CSV extract of 2020–2023 through its own loader (the catalogue now reads ANCT's JSON of 2020–2025)."""
    from diagnostic.io.catalog import Source
    from diagnostic.io.sources.adultes_relais import load_contrats_de_ville
    from diagnostic.io.sources.postes import load_posts

    contrats, _ = load_contrats_de_ville(Source("contrats_de_ville", real_dir / "contrats_de_ville_centroides_hdf.geojson"))
    posts, reps = load_posts(Source("adultes_relais", real_dir / "adultes_relais_postes_hdf_2020_2023.csv"),
                             contrats, {"02", "59", "60", "62", "80"})
    rep = reps[0]
    assert len(posts) == 2945 and set(posts["programme"]) == {"adulte-relais"}
    assert posts.groupby("year").size().to_dict() == {2020: 668, 2021: 765, 2022: 782, 2023: 730}
    dep59 = posts[posts["insee_dep"] == "59"].groupby("year").size().to_dict()
    assert dep59 == {2020: 413, 2021: 461, 2022: 466, 2023: 424}
    rows = _csv_rows(real_dir / "adultes_relais_postes_hdf_2020_2023.csv")
    no_cv = sum(1 for r in rows if r["code_cv"] == "")
    assert any(w.startswith(f"{no_cv} poste(s)") for w in rep.warnings)
    assert posts["lib_cv"].isna().sum() == no_cv
    assert abs(posts["amount"].sum() - sum(float(r["montant"]) for r in rows)) < 0.01
    assert len(contrats) == 43


def test_hdf_region_bare_feature_as_communes(real_dir, tmp_path):
    text = (real_dir / "hdf_region_2018.geojson").read_text(encoding="utf-8")
    assert json.loads(text)["type"] == "Feature"  # not a FeatureCollection
    cat = tmp_path / "region.yaml"
    cat.write_text(yaml.safe_dump({
        "name": "région",
        "paths_relative_to": "data_dir",
        "sources": {"communes": {"path": "hdf_region_2018.geojson", "columns": {"insee_com": "code", "lib_com": "nom"}}},
    }), encoding="utf-8")
    data = load_territory(cat, data_dir=real_dir)
    assert len(data.communes) == 1
    row = data.communes.iloc[0]
    assert row["lib_com"] == "Hauts-de-France"
    assert data.communes.crs.to_epsg() == 2154
    area_km2 = data.communes.area.iloc[0] / 1e6
    assert 31_000 < area_km2 < 32_500  # the region covers about 31,800 km²


# --------------------------------------------------------------------------- unseen department
def test_unseen_department_through_catalogue_paths_only(real_dir, tmp_path):
    """Department 66 files cut from the Occitanie extract, same formats, read via a copied catalogue."""
    dep = "66"
    for name in ("occitanie_qpv2015_contours.geojson", "occitanie_communes_avec_qpv.geojson"):
        doc = json.loads((real_dir / name).read_text(encoding="utf-8"))
        doc["features"] = [f for f in doc["features"] if f["properties"]["code_departement"] == dep]
        (tmp_path / name.replace("occitanie", f"pyrenees_orientales_{dep}")).write_text(
            json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    raw = (real_dir / "occitanie_qpv2015_indicateurs.csv").read_bytes()
    lines = raw.split(b"\n")
    kept = [lines[0]] + [ln for ln in lines[1:] if ln.startswith(b"QP066")]
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM kept, as published
    (tmp_path / f"pyrenees_orientales_{dep}_qpv2015_indicateurs.csv").write_bytes(b"\n".join(kept) + b"\n")
    text = OCCITANIE.read_text(encoding="utf-8").replace("path: occitanie_", f"path: pyrenees_orientales_{dep}_")
    assert text.count(f"pyrenees_orientales_{dep}_") == 3
    cat = tmp_path / "pyrenees-orientales.yaml"
    cat.write_text(text, encoding="utf-8")
    data = load_territory(cat, data_dir=tmp_path)
    assert len(data.qpv) == 10
    assert set(data.qpv["insee_dep"]) == {dep}
    assert data.qpv_indicators.values.shape[0] == 10
    expected = sum(int(ln.split(b",")[3]) for ln in kept[1:])
    assert data.qpv_indicators.values["population"].sum() == expected
    perpignan = data.qpv_in("66136")
    assert len(perpignan) >= 1 and perpignan["code_qp"].str.startswith("QP066").all()


# --------------------------------------------------------------------------- bad inputs
def _load(d: Path):
    return load_territory(d / "catalogue.yaml")


def test_missing_file(mini):
    (mini / "qpv_ind.csv").unlink()
    with pytest.raises(MissingFileError) as exc:
        _load(mini)
    assert exc.value.path.name == "qpv_ind.csv" and exc.value.exit_code == 11
    assert "introuvable" in str(exc.value)


def test_unknown_geo_format(mini):
    (mini / "communes.xlsx").write_bytes(b"PK\x03\x04 not a vector file")
    edit_catalog(mini, lambda s: s["communes"].update(path="communes.xlsx"))
    with pytest.raises(UnknownFormatError) as exc:
        _load(mini)
    assert "xlsx" in str(exc.value) and exc.value.path.name == "communes.xlsx"


def test_unknown_table_format(mini):
    """A spreadsheet given where a CSV is expected is an unknown format, not an « empty file »."""
    (mini / "ind.xlsx").write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4)
    edit_catalog(mini, lambda s: s["qpv_indicators"].update(path="ind.xlsx"))
    with pytest.raises(UnknownFormatError) as exc:
        _load(mini)
    assert exc.value.path.name == "ind.xlsx"


def test_unreadable_vector_file(mini):
    (mini / "communes.geojson").write_text("{ ceci n'est pas du GeoJSON", encoding="utf-8")
    edit_catalog(mini, lambda s: s["communes"].update(path="communes.geojson"))
    with pytest.raises(UnknownFormatError):
        _load(mini)


def test_unknown_services_format(mini):
    edit_catalog(mini, lambda s: s["services"][0].update(format="excel"))
    with pytest.raises(UnknownFormatError) as exc:
        _load(mini)
    assert "excel" in str(exc.value) and "bpe" in exc.value.hint


def test_misnamed_column_suggests_closest(mini):
    (mini / "qpv_ind.csv").write_text("code_qp;pop_mun;tp_60\nQN09901A;1000;40,0\nQN09902B;4000;20,0\n",
                                      encoding="utf-8")
    with pytest.raises(MissingColumnError) as exc:
        _load(mini)
    err = exc.value
    assert err.column == "tp60" and err.path.name == "qpv_ind.csv"
    assert "« tp_60 »" in err.hint


def test_catalogue_mapping_names_absent_column(mini):
    edit_catalog(mini, lambda s: s["communes"].update(columns={"insee_com": "cdoe", "lib_com": "nom"}))
    with pytest.raises(MissingColumnError) as exc:
        _load(mini)
    assert exc.value.column == "cdoe"
    assert "« code »" in exc.value.hint


def test_missing_column_without_close_name_lists_columns(mini):
    (mini / "pop.csv").write_text("COM;XYZ\n99001;1\n99002;2\n99003;3\n", encoding="utf-8")
    with pytest.raises(MissingColumnError) as exc:
        _load(mini)
    assert exc.value.column == "PMUN" and "colonnes présentes : COM, XYZ" in exc.value.hint


def _replace_qpv_geometry(d: Path, geom) -> None:
    q = gpd.read_file(d / "qpv.gpkg")
    q.loc[0, "geometry"] = geom
    q.to_file(d / "qpv.gpkg")


def test_invalid_geometry_repaired_losslessly(mini):
    # A zero-area spike on the top edge: invalid, and make_valid keeps the area exactly.
    spike = Polygon([(700500, 6600500), (701500, 6600500), (701500, 6601500), (701000, 6601500),
                     (701000, 6601700), (701000, 6601500), (700500, 6601500)])
    assert not spike.is_valid and spike.area == 1_000_000
    _replace_qpv_geometry(mini, spike)
    data = _load(mini)
    qpv = data.qpv.set_index("code_qp")
    assert qpv.geometry["QN09901A"].is_valid
    assert qpv.geometry["QN09901A"].area == pytest.approx(1_000_000)
    rep = next(r for r in data.reports if r.role == "qpv")
    assert rep.warnings == ["1 géométrie(s) invalide(s) réparée(s) sans perte : QN09901A"]


def test_bow_tie_refused(mini):
    bow = Polygon([(700500, 6600500), (701500, 6601500), (701500, 6600500), (700500, 6601500)])
    assert not bow.is_valid and bow.area == 0  # lobes cancel out: a repair would invent area
    _replace_qpv_geometry(mini, bow)
    with pytest.raises(GeometryError) as exc:
        _load(mini)
    assert "QN09901A" in str(exc.value) and "Self-intersection" in str(exc.value)
    assert exc.value.path.name == "qpv.gpkg"


def test_empty_geometry_refused(mini):
    _replace_qpv_geometry(mini, Polygon())
    with pytest.raises(GeometryError) as exc:
        _load(mini)
    assert "vide" in exc.value.message and "QN09901A" in exc.value.message
    assert exc.value.rows == [1]


def test_shapefile_without_prj(mini):
    gpd.read_file(mini / "communes.gpkg").to_file(mini / "communes.shp")
    (mini / "communes.prj").unlink()
    edit_catalog(mini, lambda s: s["communes"].update(path="communes.shp"))
    with pytest.raises(CRSError) as exc:
        _load(mini)
    assert "aucun système de coordonnées" in exc.value.message and exc.value.path.name == "communes.shp"
    # Declaring the CRS in the catalogue is the documented way out.
    edit_catalog(mini, lambda s: s["communes"].update(crs="EPSG:2154"))
    data = _load(mini)
    assert data.communes.area.round().tolist() == [4_000_000.0] * 3


def test_unexpected_crs(mini):
    gpd.read_file(mini / "communes.gpkg").to_crs(4326).to_file(mini / "communes.geojson")
    edit_catalog(mini, lambda s: s["communes"].update(path="communes.geojson", crs="EPSG:2154"))
    with pytest.raises(CRSError) as exc:
        _load(mini)
    assert "EPSG:4326" in exc.value.message and "EPSG:2154" in exc.value.message


def test_metres_declared_as_degrees(mini):
    edit_catalog(mini, lambda s: s["services"][0].update(crs="EPSG:4326"))
    with pytest.raises(CRSError) as exc:
        _load(mini)
    assert "en mètres" in exc.value.message and exc.value.path.name == "services.csv"


def test_degrees_declared_as_metres(mini):
    (mini / "services.csv").write_text(
        "identifiant,nom,categorie,code_commune,x,y\nS1,Centre social,centre_social,99001,2.35,48.85\n",
        encoding="utf-8")
    with pytest.raises(CRSError) as exc:
        _load(mini)
    assert "ressemblent à des degrés" in exc.value.message


def test_duplicate_codes_in_table(mini):
    (mini / "qpv_ind.csv").write_text("code_qp;pop_mun;tp60\nQN09901A;1000;40,0\nQN09901A;4000;20,0\n",
                                      encoding="utf-8")
    with pytest.raises(DuplicateCodeError) as exc:
        _load(mini)
    assert exc.value.rows == [2, 3] and exc.value.column == "code_qp" and "QN09901A" in exc.value.message


def test_duplicate_commune_codes(mini):
    c = gpd.read_file(mini / "communes.gpkg")
    c.loc[2, "code"] = "99001"
    c.to_file(mini / "communes.gpkg")
    with pytest.raises(DuplicateCodeError) as exc:
        _load(mini)
    assert exc.value.column == "code" and "99001" in exc.value.message


def test_duplicate_service_ids(mini):
    (mini / "services.csv").write_text(
        "identifiant,nom,categorie,code_commune,x,y\n"
        "S1,Centre social,centre_social,99001,701000,6601000\nS1,CCAS,ccas,99001,701100,6601000\n",
        encoding="utf-8")
    with pytest.raises(DuplicateCodeError) as exc:
        _load(mini)
    assert exc.value.rows == [2, 3]


def test_qpv_pointing_to_unknown_commune(mini):
    q = gpd.read_file(mini / "qpv.gpkg")
    q.loc[0, "insee_com"] = "99009"
    q.to_file(mini / "qpv.gpkg")
    with pytest.raises(UnknownCommuneError) as exc:
        _load(mini)
    assert "99009" in exc.value.message and "QN09901A" in exc.value.message
    assert exc.value.path.name == "qpv.gpkg"


def test_territory_commune_unknown_code(mini):
    data = _load(mini)
    assert data.commune("99002")["lib_com"] == "Bêta"
    with pytest.raises(UnknownCommuneError) as exc:
        data.commune("00000")
    assert "00000" in exc.value.message and "mini" in exc.value.message
    assert exc.value.exit_code == 19


def test_service_far_from_its_commune(mini):
    (mini / "services.csv").write_text(
        "identifiant,nom,categorie,code_commune,x,y\n"
        "S1,Centre social,centre_social,99001,701000,6601000\nS2,CCAS,ccas,99001,750000,6650000\n",
        encoding="utf-8")
    with pytest.raises(OutOfTerritoryError) as exc:
        _load(mini)
    assert exc.value.rows == [3] and "S2" in exc.value.message
    assert "67.9 km" in exc.value.message  # hypot(750000 - 702000, 6650000 - 6602000)


def test_service_without_commune_outside_territory(mini):
    (mini / "services.csv").write_text(
        "identifiant,nom,categorie,code_commune,x,y\n"
        "S1,Centre social,centre_social,,701000,6601000\nS2,CCAS,ccas,,750000,6650000\n",
        encoding="utf-8")
    with pytest.raises(OutOfTerritoryError) as exc:
        _load(mini)
    assert exc.value.rows == [3]


def test_service_without_commune_gets_one_by_location(mini):
    (mini / "services.csv").write_text(
        "identifiant,nom,categorie,code_commune,x,y\nS1,Centre social,centre_social,,705000,6601000\n",
        encoding="utf-8")
    data = _load(mini)
    assert data.services["insee_com"].tolist() == ["99003"]


def test_service_of_another_territory_is_set_aside_and_counted(mini):
    (mini / "services.csv").write_text(
        "identifiant,nom,categorie,code_commune,x,y\n"
        "S1,Centre social,centre_social,99001,701000,6601000\nS2,CCAS,ccas,59350,750000,6650000\n",
        encoding="utf-8")
    data = _load(mini)
    rep = next(r for r in data.reports if r.role == "services")
    assert (rep.rows_read, rep.rows_kept) == (2, 1)
    assert rep.warnings == ["1 ligne(s) mises de côté : commune hors du territoire du catalogue (ex. 59350)."]


def test_empty_file_zero_bytes(mini):
    (mini / "filo.csv").write_bytes(b"")
    with pytest.raises(EmptyFileError) as exc:
        _load(mini)
    assert "0 octet" in exc.value.message and exc.value.path.name == "filo.csv"


def test_empty_file_header_only(mini):
    (mini / "filo.csv").write_text("CODGEO;TP6021;NBMENFISC21\n", encoding="utf-8")
    with pytest.raises(EmptyFileError) as exc:
        _load(mini)
    assert "en-tête" in exc.value.message


def test_empty_vector_layer(mini):
    gpd.read_file(mini / "qpv.gpkg").iloc[:0].to_file(mini / "qpv.gpkg")
    with pytest.raises(EmptyFileError):
        _load(mini)


def test_non_numeric_indicator_value(mini):
    (mini / "filo.csv").write_text("CODGEO;TP6021;NBMENFISC21\n99001;20,0;4000\n99002;s;s\n99003;vingt;2000\n",
                                   encoding="utf-8")
    with pytest.raises(ValueFormatError) as exc:
        _load(mini)
    assert exc.value.column == "TP6021" and exc.value.rows == [4] and "'vingt'" in exc.value.message


def test_malformed_qpv_code(mini):
    q = gpd.read_file(mini / "qpv.gpkg")
    q.loc[1, "code_qp"] = "QPV-2"
    q.to_file(mini / "qpv.gpkg")
    with pytest.raises(ValueFormatError) as exc:
        _load(mini)
    assert "QPV-2" in exc.value.message and exc.value.rows == [2]


def test_unknown_role_in_catalogue(mini):
    edit_catalog(mini, lambda s: s.update(equipements={"path": "services.csv"}))
    with pytest.raises(CatalogError) as exc:
        _load(mini)
    assert "equipements" in exc.value.message and "services" in exc.value.hint


def test_secret_kept_missing_in_mini(mini):
    data = _load(mini)
    values, secret = data.commune_indicators.values, data.commune_indicators.secret
    assert np.isnan(values.loc["99002", "poverty_rate"]) and secret.loc["99002", "poverty_rate"]
    assert np.isnan(values.loc["99002", "menages_fiscaux"]) and secret.loc["99002", "menages_fiscaux"]
    assert not secret.loc["99001"].any() and values.loc["99001", "poverty_rate"] == 20.0


def test_demo_copy_is_fully_read(demo):
    reports = {(r.role, r.path.name): r for r in demo.reports}
    bpe = reports[("services", "bpe.csv")]
    # One BPE row has no coordinates: set aside and counted, never dropped silently.
    assert bpe.rows_read - bpe.rows_kept == 1 and "sans coordonnées" in bpe.warnings[0]
    assert len(demo.qpv) == 3 and reports[("qpv", "qpv_2024.geojson")].rows_read == 4
    assert demo.qpv.set_index("code_qp").loc["QN09903C", "communes"] == "99101,99103"
    assert demo.catalog.fictional


def test_shutil_copy_of_demo_loads_identically(tmp_path, demo):
    shutil.copytree(PROJECT_ROOT / "data" / "demo", tmp_path / "demo")
    copy = load_territory(tmp_path / "demo" / "catalogue.yaml")
    assert len(copy.services) == len(demo.services)
    assert shapely.equals_exact(copy.qpv.geometry.values, demo.qpv.geometry.values, 1e-6).all()
    assert load_catalog(tmp_path / "demo" / "catalogue.yaml").fingerprint() == demo.catalog.fingerprint()


# --------------------------------------------------------------------------- BPE counts per IRIS, detail sample
def test_bpe_counts_per_iris_hdf(hdf_data):
    """PROVENANCE.md § 10: 87,897 rows, 3,637 communes, 175,859 equipments; Lille 9,496 and 303 GPs (D201)."""
    counts = hdf_data.equipment_counts
    assert len(counts) == 87_897 and counts["insee_com"].nunique() == 3637
    assert counts["count"].sum() == 175_859
    by_dep = counts.groupby(counts["insee_com"].str[:2])["count"].sum().to_dict()
    assert by_dep == {"02": 15_534, "59": 76_125, "60": 24_972, "62": 41_493, "80": 17_735}
    lille = counts[counts["insee_com"] == "59350"]
    assert lille["count"].sum() == 9_496 and lille.loc[lille["type_code"] == "D201", "count"].sum() == 303
    assert len(hdf_data.equipment_labels) == 106 and hdf_data.equipment_labels["A104"] == "Gendarmerie"


def test_bpe_counts_enter_commune_coverage(hdf_data, indicator_cache):
    from diagnostic.analysis.indicators.cache import compute

    cov = compute(hdf_data).coverage
    lille = cov[(cov["level"] == "commune") & (cov["code"] == "59350")].set_index("domain")
    counts = hdf_data.equipment_counts
    gps = counts[(counts["insee_com"] == "59350") & counts["type_code"].isin(["D106", "D108", "D113", "D201", "D301"])]
    assert lille.at["sante", "services_inside"] == gps["count"].sum()  # no geolocated health service otherwise
    assert "comptés par IRIS" in lille.at["sante", "method"]


def test_bpe21_detail_sample_through_the_bpe_loader(hdf_data, real_dir):
    from diagnostic.io.catalog import Source
    from diagnostic.io.sources.bpe import load_bpe

    gdf, rep = load_bpe(Source("services", real_dir / "bpe" / "bpe21_detail_echantillon_hdf.csv", "bpe",
                               columns={"service_id": "ID_EQUIPEMENT"}, options={"tolerance_m": 1500}),
                      hdf_data.communes)  # one point (EQ0015879) lies 1.1 km from its 2018 commune outline
    assert rep.rows_read == 1906
    assert gdf["insee_com"].str[:2].value_counts().to_dict() == {"80": 541, "60": 500, "02": 388, "62": 249, "59": 228}
    assert gdf["type_code"].nunique() == 30 and gdf.crs.to_epsg() == 2154  # 30 of the sample's 32 types in HdF
