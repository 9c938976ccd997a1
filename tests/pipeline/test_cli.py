"""``diagnostic data check`` and ``diagnostic territories``: summaries, exit codes, French messages."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
import yaml
from shapely.geometry import Polygon

from diagnostic import cli, errors
from tests.util import DEMO_DIR, HDF, OCCITANIE


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def demo_copy(tmp_path) -> Path:
    shutil.copytree(DEMO_DIR, tmp_path / "demo")
    return tmp_path / "demo"


def _edit_catalog(d: Path, change) -> None:
    path = d / "catalogue.yaml"
    cat = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(cat)
    path.write_text(yaml.safe_dump(cat, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_data_check_demo(capsys):
    code, out, err = run(capsys, "data", "check", "--catalog", str(DEMO_DIR / "catalogue.yaml"))
    assert code == 0, err
    assert "DONNÉES FICTIVES" in out
    assert "Communes : 3 ; dont avec QPV : 2" in out
    assert "QPV : 3 (génération 2024 : 3)" in out
    assert "EPSG:2154" in out
    assert "sans coordonnées mis de côté" in out  # the BPE row without coordinates is shown
    assert "Contrôle réussi" in out
    # Each row names its role with its own file.
    assert re.search(r"contours des QPV\s+4\s+3\s+2024\s+qpv_2024\.geojson", out)
    assert re.search(r"équipements et services\s+82\s+81\s+2024\s+bpe\.csv", out)


def test_data_check_reports_each_source_against_its_file(capsys, demo_copy):
    """Rows of the summary follow the loaded sources, whatever order the catalogue lists them in."""
    _edit_catalog(demo_copy, lambda c: c.update(sources=dict(reversed(list(c["sources"].items())))))
    code, out, err = run(capsys, "data", "check", "--catalog", str(demo_copy / "catalogue.yaml"))
    assert code == 0, err
    assert re.search(r"contours des communes\s+3\s+3\s+2024\s+communes\.geojson", out)
    assert re.search(r"contours des QPV\s+4\s+3\s+2024\s+qpv_2024\.geojson", out)
    assert re.search(r"postes adultes-relais et FONJEP\s+7\s+7\s+\S+\s+adultes_relais\.csv", out)


def test_territories_demo(capsys):
    code, out, _ = run(capsys, "territories", "--catalog", str(DEMO_DIR / "catalogue.yaml"))
    assert code == 0
    lines = [ln for ln in out.splitlines() if re.match(r"^99\d{3}\s", ln)]
    assert [ln.split()[0] for ln in lines] == ["99101", "99103", "99102"]  # by QPV count, then population
    assert re.search(r"^99101\s+Villeneuve-sur-Lys\s+3\s+48\u202f212$", out, re.MULTILINE)
    assert re.search(r"^99102\s+Saint-Aubin-les-Prés\s+0\s+6\u202f480$", out, re.MULTILINE)
    assert "\n3\u00a0communes." in out
    code, out, _ = run(capsys, "territories", "--catalog", str(DEMO_DIR / "catalogue.yaml"), "--with-qpv")
    assert "\n2\u00a0communes." in out and "99102" not in out


def test_data_check_real_catalogues(capsys, real_dir):
    code, out, err = run(capsys, "data", "check", "--catalog", str(OCCITANIE))
    assert code == 0, err
    assert "QPV : 83 (génération 2015 : 83)" in out and "Communes : 40 ; dont avec QPV : 40" in out
    assert "réparée(s) sans perte" in out
    code, out, err = run(capsys, "data", "check", "--catalog", str(HDF), "--data-dir", str(real_dir))
    assert code == 0, err
    assert "Communes : 3808 ; dont avec QPV : 157" in out and "QPV : 199 (génération 2015 : 199)" in out
    assert "Services géolocalisés : 205" in out
    assert "5 poste(s) sans contrat de ville connu (code vide)" in out  # 2023: records without code_cv


def test_territories_real_toulouse(capsys, real_dir):
    code, out, _ = run(capsys, "territories", "--catalog", str(OCCITANIE), "--with-qpv")
    assert code == 0
    first = next(ln for ln in out.splitlines() if re.match(r"^\d{5} ", ln))
    assert first.split()[:3] == ["31555", "Toulouse", "12"]  # the most QPVs of the extract
    assert re.search(r"^31555\s+Toulouse\s+12\s+458\u202f298$", out, re.MULTILINE)
    assert "\n40\u00a0communes." in out


# --------------------------------------------------------------------------- each broken input
def _bow_tie(d: Path) -> None:
    q = gpd.read_file(d / "qpv_2024.geojson")
    x0, y0, x1, y1 = q.total_bounds
    q.loc[0, "geometry"] = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    q.to_file(d / "qpv_2024.geojson", driver="GeoJSON")


def _metres_as_degrees(d: Path) -> None:
    _edit_catalog(d, lambda c: c["sources"]["services"][2].update(crs="EPSG:4326"))


def _unexpected_crs(d: Path) -> None:
    _edit_catalog(d, lambda c: c["sources"]["communes"].update(crs="EPSG:2154"))


def _no_prj(d: Path) -> None:
    gpd.read_file(d / "communes.geojson").to_file(d / "communes.shp")
    (d / "communes.prj").unlink()
    _edit_catalog(d, lambda c: c["sources"]["communes"].update(path="communes.shp"))


def _replace(name: str, old: str, new: str):
    def change(d: Path) -> None:
        text = (d / name).read_text(encoding="utf-8")
        assert old in text, (name, old)
        (d / name).write_text(text.replace(old, new, 1), encoding="utf-8")
    return change


def _spreadsheet(d: Path) -> None:
    (d / "bpe.ods").write_bytes(b"PK\x03\x04\x14\x00\x00\x00mimetypeapplication/vnd.oasis.opendocument")
    _edit_catalog(d, lambda c: c["sources"]["services"][0].update(path="bpe.ods"))


def _far_service(d: Path) -> None:
    # S10 (Police municipale, 99101) moved 60 km east, Lambert-93.
    _replace("services_locaux.csv", "S10,Police municipale,police_municipale,99101,",
             "S10,Police municipale,police_municipale,99101,3")(d)


CASES = {
    # name: (change to the demo copy, error class, words the message must hold)
    "missing file": (lambda d: (d / "bpe.csv").unlink(), errors.MissingFileError, ["bpe.csv"]),
    "unknown format": (_spreadsheet, errors.UnknownFormatError, ["bpe.ods"]),
    "misnamed column": (_replace("bpe.csv", "TYPEQU", "TYPE_EQU"), errors.MissingColumnError,
                        ["bpe.csv", "Colonne : TYPEQU", "« TYPE_EQU »"]),
    "bow-tie geometry": (_bow_tie, errors.GeometryError, ["qpv_2024.geojson", "QN09901A"]),
    "missing CRS": (_no_prj, errors.CRSError, ["communes.shp", "aucun système"]),
    "unexpected CRS": (_unexpected_crs, errors.CRSError, ["communes.geojson", "EPSG:4326", "EPSG:2154"]),
    "metres as degrees": (_metres_as_degrees, errors.CRSError, ["services_locaux.csv", "en mètres"]),
    "duplicate codes": (_replace("populations_legales.csv", ";99102;", ";99101;"), errors.DuplicateCodeError,
                        ["populations_legales.csv", "Colonne : COM", "Ligne(s) : 2, 3"]),
    "unknown commune": (_replace("qpv_2024.geojson", '"insee_com": "99103"', '"insee_com": "99109"'),
                        errors.UnknownCommuneError, ["qpv_2024.geojson", "99109"]),
    "outside territory": (_far_service, errors.OutOfTerritoryError, ["services_locaux.csv", "S10", "Ligne(s) : 11"]),
    "empty file": (lambda d: (d / "filosofi_communes.csv").write_bytes(b""), errors.EmptyFileError,
                   ["filosofi_communes.csv", "0 octet"]),
    "non-numeric value": (_replace("qpv_indicateurs.csv", ",44.6,", ",quarante,"), errors.ValueFormatError,
                          ["qpv_indicateurs.csv", "Colonne : tp60", "Ligne(s) : 2", "'quarante'"]),
    "unknown role": (lambda d: _edit_catalog(d, lambda c: c["sources"].update(equipements={"path": "bpe.csv"})),
                     errors.CatalogError, ["catalogue.yaml", "equipements"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_data_check_broken_input(capsys, demo_copy, name):
    change, error, words = CASES[name]
    change(demo_copy)
    code, out, err = run(capsys, "data", "check", "--catalog", str(demo_copy / "catalogue.yaml"))
    assert code == error.exit_code, err
    assert err.startswith(f"{error.title} : ")
    for w in words:
        assert w in err, (w, err)
    assert "Traceback" not in err and "Contrôle réussi" not in out


def test_exit_codes_are_distinct():
    classes = [c for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, errors.DiagnosticError) and c is not errors.DiagnosticError]
    codes = [c.exit_code for c in classes]
    assert len(codes) == len(set(codes))
    assert all(c not in (0, 1, 2) for c in codes)  # 1 = unexpected, 2 = argparse usage
    tested = {CASES[n][1] for n in CASES}
    assert len({c.exit_code for c in tested}) == len(tested) == 11  # 11 classes, 11 codes


def test_subprocess_french_error_no_traceback(tmp_path):
    """The installed entry point prints the French message only, with the class's exit code."""
    shutil.copytree(DEMO_DIR, tmp_path / "demo")
    (tmp_path / "demo" / "observations.csv").write_text("date;qpv\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "diagnostic", "data", "check", "--catalog",
                           str(tmp_path / "demo" / "catalogue.yaml")], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == errors.EmptyFileError.exit_code
    assert proc.stderr.startswith("Fichier vide : le fichier n'a qu'une ligne d'en-tête")
    assert "observations.csv" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_missing_catalogue_and_usage(capsys, tmp_path):
    code, _, err = run(capsys, "territories", "--catalog", str(tmp_path / "absent.yaml"))
    assert code == 11 and "Fichier introuvable : le catalogue demandé n'existe pas." in err
    with pytest.raises(SystemExit) as exc:
        cli.main(["data", "check"])  # --catalog is required
    assert exc.value.code == 2


def test_debug_flag_shows_the_exception(tmp_path):
    with pytest.raises(errors.MissingFileError):
        cli.main(["--debug", "territories", "--catalog", str(tmp_path / "absent.yaml")])


def test_help_and_version_import_no_heavy_module():
    """``--help`` and ``--version`` answer without loading the geospatial and notebook stack (instant start)."""
    probe = ("import sys, runpy\n"
             "for arg in ('--help', '--version'):\n"
             "    sys.argv = ['diagnostic', arg]\n"
             "    try:\n"
             "        runpy.run_module('diagnostic', run_name='__main__')\n"
             "    except SystemExit:\n"
             "        pass\n"
             "heavy = ('pandas', 'geopandas', 'papermill', 'nbconvert', 'nbformat', 'dask', 'folium', 'matplotlib')\n"
             "print('LOURDS', [m for m in heavy if m in sys.modules])\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "LOURDS []" in done.stdout, done.stdout[-300:]
    assert "region" in done.stdout and "evaluate" in done.stdout and "diagnostic " in done.stdout
