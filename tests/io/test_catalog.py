"""The data catalogue: roles, paths resolved against the catalogue or the data folder, checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from diagnostic.errors import CatalogError, MissingFileError
from diagnostic.io.catalog import (
    DEFAULT_DATA_DIR,
    PROJECT_ROOT,
    ROLES,
    load_catalog,
    resolve_data_dir,
)
from tests.util import DEMO_CATALOG, HDF, OCCITANIE


def _write(path: Path, doc) -> Path:
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def test_demo_catalogue_roles_and_paths():
    cat = load_catalog(DEMO_CATALOG)
    assert cat.fictional is True
    assert "fictif" in cat.name
    assert set(cat.sources) <= set(ROLES)
    assert [s.path.name for s in cat.all("services")] == ["bpe.csv", "france_services.csv", "services_locaux.csv"]
    assert [s.format for s in cat.all("services")] == ["bpe", "france_services", "csv"]
    # Paths are relative to the catalogue's folder.
    assert cat.get("communes").path == (PROJECT_ROOT / "data" / "demo" / "communes.geojson").resolve()
    assert cat.get("communes").columns == {"insee_com": "code", "lib_com": "nom"}
    assert cat.get("services").options == {} and cat.all("services")[2].options["crs"] == "EPSG:2154"
    assert cat.get("qpv_indicators").indicators["poverty_rate"] == "tp60"
    # The partner relations file rides along as an option, resolved, and is hashed.
    relations = Path(cat.get("partners").options["relations"])
    assert relations.name == "partenaires_relations.csv" and relations.is_absolute()
    assert relations in cat.files()


@pytest.mark.parametrize("catalog", [OCCITANIE, HDF])
def test_real_catalogues_resolve_against_data_dir(catalog, tmp_path, monkeypatch):
    monkeypatch.delenv("DIAGNOSTIC_DATA", raising=False)
    tmp_path.joinpath("donnees").mkdir()
    # Explicit --data-dir wins.
    cat = load_catalog(catalog, data_dir=tmp_path / "donnees")
    assert cat.data_dir == (tmp_path / "donnees").resolve()
    assert all(s.path.is_relative_to(cat.data_dir) for items in cat.sources.values() for s in items)
    assert cat.fictional is False
    # Then DIAGNOSTIC_DATA.
    monkeypatch.setenv("DIAGNOSTIC_DATA", str(tmp_path / "donnees"))
    assert load_catalog(catalog).get("communes").path.parent == (tmp_path / "donnees").resolve()
    # Then ../shared/data/real beside the checkout.
    monkeypatch.delenv("DIAGNOSTIC_DATA")
    assert resolve_data_dir() == DEFAULT_DATA_DIR.resolve()
    assert DEFAULT_DATA_DIR == PROJECT_ROOT.parent / "shared" / "data" / "real"


def test_real_catalogue_files_exist(real_dir):
    for catalog in (OCCITANIE, HDF):
        cat = load_catalog(catalog)
        missing = [f for f in cat.files() if not f.exists()]
        assert missing == []
    hdf = load_catalog(HDF)
    assert [s.path.name for s in hdf.all("commune_indicators")] == [
        "hdf_populations_legales_communes.csv", "hdf_filosofi_2021_communes.csv"]
    assert hdf.get("services").citation() == (
        "ANCT, liste des structures France Services, millésime 2024-08-01, france_services_hdf_20240801.csv")


def test_missing_data_dir_is_named(tmp_path):
    with pytest.raises(MissingFileError) as exc:
        load_catalog(OCCITANIE, data_dir=tmp_path / "absent")
    assert exc.value.path == (tmp_path / "absent").resolve()
    assert "--data-dir" in exc.value.hint and "DIAGNOSTIC_DATA" in exc.value.hint


def test_missing_catalogue(tmp_path):
    with pytest.raises(MissingFileError) as exc:
        load_catalog(tmp_path / "nulle-part.yaml")
    assert exc.value.exit_code == 11 and "--catalog" in exc.value.hint


def test_invalid_yaml(tmp_path):
    path = _write(tmp_path / "c.yaml", "sources: [communes: {path: a\n")
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    assert "YAML" in exc.value.message and exc.value.exit_code == 10


@pytest.mark.parametrize(
    "doc, words",
    [
        ({"name": "x"}, "« sources: »"),
        ({"sources": {"communes": {"path": "a.geojson"}}, "paths_relative_to": "ailleurs"}, "ailleurs"),
        ({"sources": {"equipements": {"path": "a.csv"}}}, "rôle de source inconnu « equipements »"),
        ({"sources": {"communes": [{"path": "a.geojson"}, {"path": "b.geojson"}]}}, "n'accepte qu'un seul fichier"),
        ({"sources": {"communes": {"chemin": "a.geojson"}}}, "au moins « path: »"),
        ({"sources": {"communes": {"path": "a.geojson", "columns": ["code"]}}}, "« columns »"),
    ],
)
def test_catalogue_shape_errors(tmp_path, doc, words):
    with pytest.raises(CatalogError) as exc:
        load_catalog(_write(tmp_path / "c.yaml", doc))
    assert words in exc.value.message
    assert exc.value.path == (tmp_path / "c.yaml").resolve()


def test_list_roles_accept_several_files(tmp_path):
    cat = load_catalog(_write(tmp_path / "c.yaml", {"sources": {
        "communes": {"path": "c.geojson"},
        "commune_indicators": [{"path": "a.csv"}, {"path": "sous/b.csv", "vintage": 2021}],
    }}))
    assert [s.path for s in cat.all("commune_indicators")] == [tmp_path / "a.csv", tmp_path / "sous" / "b.csv"]
    assert cat.all("commune_indicators")[1].vintage == "2021"
    assert cat.name == "c"  # defaults to the file name


def test_fingerprint_follows_file_content(tmp_path):
    shutil.copytree(DEMO_CATALOG.parent, tmp_path / "demo")
    path = tmp_path / "demo" / "catalogue.yaml"
    first = load_catalog(path).fingerprint()
    assert load_catalog(path).fingerprint() == first
    csv = tmp_path / "demo" / "qpv_indicateurs.csv"
    csv.write_text(csv.read_text(encoding="utf-8").replace("44.6", "44.7"), encoding="utf-8")
    second = load_catalog(path).fingerprint()
    assert second != first
    # The relations file is an input too.
    rel = tmp_path / "demo" / "partenaires_relations.csv"
    rel.write_text(rel.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert load_catalog(path).fingerprint() not in (first, second)


def test_loaded_catalogue_kept_on_disk_by_content(tmp_path, monkeypatch):
    """A catalogue is read from its files once, then from the cache, until one byte of one file changes
    (same size and same date included): the cached territory is the one the files give."""
    import os

    import pandas as pd

    from diagnostic.io import territory

    monkeypatch.setenv("DIAGNOSTIC_CACHE", str(tmp_path / "cache"))
    shutil.copytree(DEMO_CATALOG.parent, tmp_path / "demo")
    catalog = tmp_path / "demo" / "catalogue.yaml"
    reads = []
    real_load = territory._load
    monkeypatch.setattr(territory, "_load", lambda c: reads.append(c.path) or real_load(c))
    first = territory.load_territory(catalog)
    assert len(reads) == 1 and len(list((tmp_path / "cache" / territory.STORED_FOLDER).glob("*.pickle"))) == 1
    again = territory.load_territory(catalog)
    assert len(reads) == 1 and again is not first
    pd.testing.assert_frame_equal(again.communes, first.communes)
    pd.testing.assert_frame_equal(again.qpv_indicators.values, first.qpv_indicators.values)
    path = tmp_path / "demo" / "qpv_indicateurs.csv"
    before = path.stat()
    path.write_text(path.read_text(encoding="utf-8").replace(",44.6,", ",44.7,", 1), encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    changed = territory.load_territory(catalog)
    assert len(reads) == 2
    value = changed.qpv_indicators.values.loc["QN09901A", "poverty_rate"]
    assert value == 44.7 and first.qpv_indicators.values.loc["QN09901A", "poverty_rate"] == 44.6
