"""The explorer: widget callbacks driven in Python, export = `diagnostic run`, locate(), JupyterLab in Chromium."""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import geopandas as gpd
import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from shapely.geometry import Point

from diagnostic import cli, resources
from diagnostic.analysis.indicators.domains import service_domains
from diagnostic.analysis.locate import find_place, locate, locate_text, parse_coordinates
from diagnostic.errors import ParameterError
from diagnostic.explorer import DEMO_CATALOG, Explorer, failure_message, location_html
from diagnostic.pipeline.run import PARAMETERS_FILE
from tests.util import cache_in

NOTEBOOKS = resources.path("notebooks")
EXPLORER_NB = NOTEBOOKS / "explorateur.ipynb"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    """A private indicator cache, inherited by the kernels that `diagnostic run` starts."""
    with cache_in(tmp_path_factory.mktemp("cache")):
        yield


@pytest.fixture
def ex(demo, tmp_path):
    return Explorer(demo, "99101", output=tmp_path / "sorties")


def _map_page(ex: Explorer) -> str:
    """The map page held by the iframe's srcdoc, unescaped, with its JSON string escapes decoded."""
    match = re.search(r'srcdoc="([^"]*)"', ex.map.value)
    assert match and 'sandbox="allow-scripts"' in ex.map.value
    page = html.unescape(match.group(1))
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page).replace('\\"', '"')


def _in_band(ex: Explorer) -> int:
    cov = ex.diagnostic.coverage
    return int(cov.loc[cov["level"] == "qpv", "services_band"].sum())


# Widget callbacks -------------------------------------------------------------------------------------------------

def test_initial_state(ex):
    assert ex.commune.value == "99101" and set(ex.qpv.value) == {"QN09901A", "QN09902B", "QN09903C"}
    assert ex.indicator.value == "poverty_rate" and ex.band.value == 300
    assert ex.options() == {"band_m": 300.0, "domains": None, "needs_rules": None, "indicator": "poverty_rate",
                            "qpv_codes": None}
    page = _map_page(ex)
    assert "Les Hauts de Lys" in page and "QN09901A" in page and "QN09903C" in page
    assert "QPV – Taux de pauvreté" in page and "Bande de 300 m autour des QPV" in page
    assert "<script>" in page and "leaflet" in page.lower()
    assert "Villeneuve-sur-Lys (99101)" in ex.figures.value and "Dans la bande de 300\u00a0m" in ex.figures.value
    assert "<table>" in ex.needs.value and "Rang" in ex.needs.value
    assert 'class="reco"' in ex.recommendations.value
    assert "mis à jour" in ex.status.value


def test_band_width(ex):
    wide = _in_band(ex)
    served = re.search(r"bande de 300\u00a0m</td><td>(\d+)<", ex.figures.value)
    ex.band.value = 0
    assert ex.diagnostic.params["band_m"] == 0
    assert _in_band(ex) < wide
    qpv = ex.diagnostic.qpv.geometry.union_all()
    services = ex.diagnostic.services
    by_hand = sum(qpv.intersects(g) for g in services.loc[services["domains"] != ""].geometry)
    assert f"Services de médiation dans les QPV et leur bande de 0\u00a0m</td><td>{by_hand}<" in ex.figures.value
    assert by_hand < int(served.group(1))
    assert "Dans la bande de 0\u00a0m" in ex.figures.value
    assert "Bande de 0 m autour des QPV" in _map_page(ex)
    ex.band.value = 300
    assert _in_band(ex) == wide


def test_commune_and_search(ex):
    ex.commune.value = "99103"
    assert ex.diagnostic.code == "99103" and ex.qpv.value == ("QN09903C",)
    page = _map_page(ex)
    assert "QN09903C" in page and "QN09901A" not in page and "Mont-Clair" in page
    assert "Mont-Clair (99103)" in ex.figures.value and "La Garenne" in ex.needs.value
    ex.search.value = "aubin saint"
    assert not ex.commune.options and "Aucune commune ne correspond" in ex.status.value
    assert ex.diagnostic.code == "99103"  # the outputs stay on the last commune
    ex.search.value = "saint aubin les pres"
    assert [v for _, v in ex.commune.options] == ["99102"] and ex.diagnostic.code == "99102"
    assert "0 sur 0" in ex.figures.value  # no QPV: the diagnostic runs at commune level
    assert "Commune sans QPV" in ex.status.value and "Aucun QPV coché" not in ex.status.value
    assert "Saint-Aubin-les-Prés" in ex.needs.value and "QPV –" not in _map_page(ex)
    ex.search.value = "9910"
    assert len(ex.commune.options) == 3 and ex.diagnostic.code == "99102"  # the selection is kept
    ex.search.value = "villeneuve"
    assert ex.diagnostic.code == "99101"


def test_qpv_selection(ex):
    ex.qpv.value = ("QN09902B",)
    assert list(ex.diagnostic.territories["code"]) == ["QN09902B"]
    assert ex.options()["qpv_codes"] == ["QN09902B"]
    assert set(ex.diagnostic.needs["code"]) == {"QN09902B"}
    assert list(ex.diagnostic.needs["rank"]) == list(range(1, len(ex.diagnostic.needs) + 1))  # within the subset
    assert re.search(r"<td[^>]*>1</td><td>Centre Ancien</td>", ex.needs.value)  # the table starts at 1
    page = _map_page(ex)
    assert "QN09902B" in page and "QN09901A" not in page
    assert "1 sur 3" in ex.figures.value
    ex.qpv.value = ()
    assert len(ex.diagnostic.territories) == 3 and "Aucun QPV coché" in ex.status.value


def test_domains_and_indicator(ex):
    ex.set_domains(["sante", "habitat"])
    assert set(ex.diagnostic.needs["domain"]) == {"sante", "habitat"}
    assert ex.options()["domains"] == ["sante", "habitat"]
    ex.domains["habitat"].value = False  # a click on a box updates too
    assert set(ex.diagnostic.needs["domain"]) == {"sante"}
    ex.domains["sante"].value = False
    assert "cochez au moins un domaine" in ex.status.value and 'class="erreur"' in ex.status.value
    assert ex.diagnostic is None and ex.map.value == ex.needs.value == ex.figures.value == ""  # nothing stale
    assert ex.export() is None and "Rien à exporter" in ex.export_status.value
    ex.domains["emploi"].value = True
    assert set(ex.diagnostic.needs["domain"]) == {"emploi"}
    ex.indicator.value = "median_income"
    assert "QPV – Revenu disponible médian" in _map_page(ex)


def _ranking_by_hand(base: pd.DataFrame, evidence: pd.DataFrame, rules: dict, domain: str, indicator: str) -> list:
    """The needs ranking with ``indicator``'s weight in ``domain`` set to 0, from the baseline's evidence."""
    ev = evidence[(evidence["domain"] == domain) & (evidence["indicator"] != indicator) & evidence["position"].notna()]
    measured = ((ev["position"] * ev["weight"]).groupby(ev["code"]).sum() / ev["weight"].groupby(ev["code"]).sum()).round(2)
    out = base.copy()
    rows = out["domain"] == domain
    out.loc[rows, "need"] = out.loc[rows, "code"].map(measured)
    out["unmet"] = (out["need"] * (1 - out["response"].fillna(0))).round(2)
    fort, moyen = rules["levels"]["fort"], rules["levels"]["moyen"]
    level = np.select([out["unmet"] >= fort, out["unmet"] >= moyen], ["fort", "moyen"], "faible")
    up = {"faible": "moyen", "moyen": "fort", "fort": "fort"}
    out["level"] = [up[lv] if r else lv for lv, r in zip(level, out["raised"])]
    out["priority"] = (out["unmet"] * out["population"]).round(0)
    out["_o"] = out["level"].map({"fort": 0, "moyen": 1, "faible": 2})
    out = out.sort_values(["_o", "priority", "unmet", "code", "domain"], ascending=[True, False, False, True, True])
    return list(zip(out["code"], out["domain"], out["unmet"].round(9)))


def test_weight_to_zero_changes_ranking_as_by_hand(ex):
    base = ex.diagnostic.needs.copy()
    evidence = ex.diagnostic.evidence
    assert (base.iloc[0]["code"], base.iloc[0]["domain"]) == ("QN09901A", "emploi")
    expected = _ranking_by_hand(base, evidence, ex.base_rules, "emploi", "jobseekers_rate")
    before_table = ex.needs.value
    ex.weights[("emploi", "jobseekers_rate")].value = 0
    got = ex.diagnostic.needs
    assert list(zip(got["code"], got["domain"], got["unmet"].round(9))) == expected
    assert [r[:2] for r in expected] != list(zip(base["code"], base["domain"]))  # the ranking did move
    assert ex.needs.value != before_table
    rules_path = Path(ex.options()["needs_rules"])
    written = yaml.safe_load(rules_path.read_text(encoding="utf-8"))
    assert written["domains"]["emploi"]["indicators"]["jobseekers_rate"]["weight"] == 0
    assert "Poids modifiés" in ex.status.value
    ex.weights[("emploi", "jobseekers_rate")].value = 2
    assert ex.options()["needs_rules"] is None  # back to the shipped besoins.yaml


def test_expressed_threshold_slider(ex):
    assert ex.diagnostic.needs["raised"].any()
    ex.expressed_weight.value = 100
    needs = ex.diagnostic.needs
    assert not needs["raised"].any() and (needs["level"] == needs["level_measured"]).all()
    assert yaml.safe_load(Path(ex.options()["needs_rules"]).read_text(encoding="utf-8"))["expressed"]["min_observations"] == 100


def test_export_is_diagnostic_run(ex, demo, tmp_path):
    from diagnostic.analysis.indicators.needs import load_rules as need_rules

    ex.band.value = 250
    ex.qpv.value = ("QN09901A", "QN09903C")
    ex.weights[("espace_public", "youth_index")].value = 0
    result = ex.export()
    assert result is not None and "Rapport exporté" in ex.export_status.value, ex.export_status.value
    folder = tmp_path / "sorties" / "99101"
    params = json.loads((folder / PARAMETERS_FILE).read_text(encoding="utf-8"))
    rules = tmp_path / "sorties" / "besoins_99101.yaml"
    assert params["needs_rules"] == str(rules) and rules.exists()
    assert params["band_m"] == 250 and params["qpv_codes"] == ["QN09901A", "QN09903C"]
    assert yaml.safe_load(rules.read_text(encoding="utf-8")) == ex.rules()
    # No second ratio in the file: the loader takes the one of the recommendation rules.
    assert "target_per_10000" not in yaml.safe_load(rules.read_text(encoding="utf-8"))["response"]
    assert need_rules(rules)["response"]["target_per_10000"] == 2.5
    # The same report from the command line, with the QPV selection as `--qpv`.
    argv = ["run", "--catalog", params["catalog"], "--data-dir", params["data_dir"], "--commune", "99101",
            "--output", str(tmp_path / "regeneration"), "--band-m", "250", "--qpv", "qn09903c,QN09901A",
            "--needs-rules", params["needs_rules"]]
    assert cli.main(argv) == 0
    rerun = tmp_path / "regeneration" / "99101"
    exported = json.loads((folder / "resultats.json").read_text(encoding="utf-8"))
    assert json.loads((rerun / "resultats.json").read_text(encoding="utf-8")) == exported
    assert json.loads((rerun / PARAMETERS_FILE).read_text(encoding="utf-8")) == params
    assert [q["code"] for q in exported["qpv"]] == ["QN09901A", "QN09903C"]
    shown = ex.diagnostic.needs
    assert [(n["territoire"], n["domaine"]) for n in exported["besoins_non_couverts"]] == list(
        zip(shown["code"], shown["domain"]))


def _readout(ex: Explorer, slider) -> str:
    """The French readout shown beside ``slider``."""
    boxes = [ex.widget]
    while boxes:
        box = boxes.pop()
        children = list(getattr(box, "children", ()))
        if children and children[0] is slider:
            return children[1].value
        boxes.extend(children)
    raise AssertionError(f"no readout beside {slider.description}")


def test_labels_and_numbers_in_french(ex):
    assert ex.catalog.options[0] == ("Territoire de démonstration — Val de Lys (fictif)", str(DEMO_CATALOG))
    assert all("/" not in label and ".yaml" not in label for label, _ in ex.catalog.options)
    poverty, income = ex.weights[("acces_droits", "poverty_rate")], ex.weights[("acces_droits", "median_income")]
    assert poverty.description == "Taux de pauvreté (seuil 60 %)" and not poverty.readout
    assert income.description == "Revenu disponible médian par unité de consommation"
    assert _readout(ex, ex.expressed_weight) == "5" and _readout(ex, poverty) == "3,00"
    ex.expressed_weight.value = 8
    assert _readout(ex, ex.expressed_weight) == "8"
    assert _readout(ex, ex.band) == "300\u00a0m"
    ex.band.value = 1000
    assert _readout(ex, ex.band) == "1\u202f000\u00a0m" and "bande de 1\u202f000\u00a0m" in ex.figures.value
    assert ex.commune.options[0][0] == "Villeneuve-sur-Lys (99101) — 3\u00a0QPV"


def test_settings_already_seen_are_redrawn_from_memory(ex):
    first = ex.diagnostic
    ex.band.value = 200
    assert ex.diagnostic is not first and ex.diagnostic.params["band_m"] == 200
    ex.band.value = 300
    assert ex.diagnostic is first and ex.last_update_s < 0.05
    assert "Bande de 300 m autour des QPV" in _map_page(ex)


def test_unexpected_failure_replaces_the_outputs(ex, monkeypatch):
    from diagnostic import explorer
    def broken(*args, **kwargs):
        raise KeyError("poverty_rate")

    monkeypatch.setattr(explorer, "build", broken)
    ex.band.value = 200
    status = html.unescape(ex.status.value)
    assert "Erreur inattendue : la mise à jour du diagnostic a échoué (KeyError : 'poverty_rate')" in status
    assert "Que faire : " in status and 'class="erreur"' in status
    assert ex.diagnostic is None and ex.map.value == ex.figures.value == ex.needs.value == ex.recommendations.value == ""
    monkeypatch.undo()
    ex.band.value = 250
    assert ex.diagnostic.params["band_m"] == 250 and "mis à jour" in ex.status.value


def test_export_to_a_file_and_a_failed_catalogue(ex, tmp_path):
    target = tmp_path / "rapport.txt"
    target.write_text("pas un dossier", encoding="utf-8")
    ex.output.value = str(target)
    ex.export_button.click()
    shown = html.unescape(ex.export_status.value)
    assert f"l'export du rapport a échoué : le chemin « {target} » existe déjà et n'est pas un dossier" in shown
    assert "Que faire : choisissez un dossier" in shown and "en cours" not in shown and not ex.export_button.disabled
    ex.export(target / "sous-dossier")
    assert "est un fichier, pas un dossier" in html.unescape(ex.export_status.value)
    ex.locate("S03")
    assert "Lieu trouvé" in ex.location.value
    ex.select_catalog(tmp_path / "absent.yaml")
    status = html.unescape(ex.status.value)
    assert "Fichier introuvable : le catalogue demandé n'existe pas." in status and "autre catalogue" in status
    assert ex.location.value == ex.export_status.value == ex.map.value == ""  # no answer about the old catalogue
    assert ex.diagnostic is None and ex.commune.options == ()
    ex.locate("S03")
    assert "Aucun catalogue chargé" in ex.location.value
    ex.select_catalog(str(DEMO_CATALOG.resolve()))
    assert ex.diagnostic.code == "99101" and "mis à jour" in ex.status.value


def test_failure_messages_are_french():
    assert failure_message(NotADirectoryError(20, "Not a directory", "/tmp/x/y"), "l'export", "un dossier.") == (
        "Erreur : l'export a échoué : un élément du chemin « /tmp/x/y » est un fichier, pas un dossier.\n"
        "  Que faire : un dossier.")
    denied = failure_message(PermissionError(13, "Permission denied", "/racine"), "le chargement du catalogue")
    assert "accès refusé à « /racine »" in denied and "le droit de le lire" in denied
    assert failure_message(ParameterError("bande trop large.", hint="300 m."), "x") == (
        "Paramètre invalide : bande trop large.\n  Que faire : 300 m.")


# Locate a point ---------------------------------------------------------------------------------------------------

def _check_nearest(data, point: Point, services: list[dict]) -> None:
    pairs = service_domains(data.services)
    for s in services:
        geom = data.services.set_index("service_id").geometry[s["service_id"]]
        assert s["distance_m"] == pytest.approx(point.distance(geom), abs=0.06)
        same = pairs[pairs["domain"] == s["domain"]]
        rank = sum(point.distance(g) < s["distance_m"] - 0.06 for g in same.geometry)
        assert rank < 3  # among the three nearest of its domain
    firsts = {}
    for s in services:
        firsts.setdefault(s["domain"], s["distance_m"])
    for domain, first in firsts.items():
        same = pairs[pairs["domain"] == domain]
        assert first == pytest.approx(min(point.distance(g) for g in same.geometry), abs=0.06)


def test_locate_inside_band_outside(demo):
    qpv = demo.qpv.set_index("code_qp").geometry
    others = qpv.drop("QN09901A")
    inside = qpv["QN09901A"].representative_point()
    lonlat = gpd.GeoSeries([inside], crs="EPSG:2154").to_crs("EPSG:4326").iloc[0]
    r = locate(demo, lonlat.x, lonlat.y)
    assert r["inside_qpv"] and r["qpv"][0] == {"code": "QN09901A", "name": "Les Hauts de Lys", "distance_m": 0.0,
                                               "position": "inside"}
    assert r["commune"]["code"] == "99101"
    assert (r["x_l93"], r["y_l93"]) == pytest.approx((inside.x, inside.y), abs=0.1)
    _check_nearest(demo, inside, r["services"])
    assert {s["domain"] for s in r["services"]} == set(service_domains(demo.services)["domain"])

    ring = qpv["QN09901A"].buffer(150).exterior
    band = next(Point(c) for c in ring.coords if min(Point(c).distance(g) for g in others) > 400)
    r = locate(demo, band.x, band.y, crs="EPSG:2154")
    assert not r["inside_qpv"] and r["in_band"]
    assert [q["code"] for q in r["qpv"]] == ["QN09901A"]
    assert r["qpv"][0]["distance_m"] == pytest.approx(band.distance(qpv["QN09901A"]), abs=0.06)
    assert 140 < r["qpv"][0]["distance_m"] <= 150
    assert not locate(demo, band.x, band.y, crs="EPSG:2154", band_m=100)["in_band"]
    _check_nearest(demo, band, r["services"])

    far = Point(ring.bounds[0] - 2500, ring.bounds[1] - 2500)
    r = locate(demo, far.x, far.y, crs="EPSG:2154")
    assert not r["inside_qpv"] and not r["in_band"] and r["qpv"] == []
    nearest = min(qpv.items(), key=lambda kv: far.distance(kv[1]))
    assert r["nearest_qpv"]["code"] == nearest[0]
    assert r["nearest_qpv"]["distance_m"] == pytest.approx(far.distance(nearest[1]), abs=0.06)
    _check_nearest(demo, far, r["services"])


def test_locate_by_name_or_coordinates(demo):
    assert parse_coordinates("43,6045, 1,444") == (1.444, 43.6045, "EPSG:4326")
    assert parse_coordinates("43.6045 1.444") == (1.444, 43.6045, "EPSG:4326")
    assert parse_coordinates("239100 6620965") == (239100.0, 6620965.0, "EPSG:2154")
    assert parse_coordinates("Centre social") is None
    assert parse_coordinates("-21.1151, 55.5364") == (55.5364, -21.1151, "EPSG:4326")  # La Réunion
    for outside in ("5000 5000", "0, 0", "48.85, 20.0"):
        with pytest.raises(ParameterError) as refused:
            parse_coordinates(outside)
        assert refused.value.message == f"coordonnées « {outside} » hors de France."
    with pytest.raises(ParameterError, match="hors de France : latitude et longitude semblent inversées") as swapped:
        parse_coordinates("1.444, 43.6045")
    assert swapped.value.hint == "saisissez d'abord la latitude, puis la longitude : « 43.6045 ; 1.444 »."
    found = find_place(demo, "centre social les hauts")
    assert set(found["kind"]) == {"service", "partenaire"}
    r = locate_text(demo, "S03")
    assert r["place"] == {"id": "S03", "name": "Centre social Les Hauts", "kind": "service"} and r["inside_qpv"]
    assert locate_text(demo, "ECOLE elementaire les tilleuls")["place"]["kind"] == "partenaire"
    with pytest.raises(ParameterError, match="aucun lieu"):
        locate_text(demo, "Tour Eiffel")


def test_locate_widget(ex, demo):
    inside = demo.qpv.set_index("code_qp").geometry["QN09902B"].representative_point()
    lonlat = gpd.GeoSeries([inside], crs="EPSG:2154").to_crs("EPSG:4326").iloc[0]
    ex.place.value = f"{lonlat.y:.6f}, {lonlat.x:.6f}"
    ex.locate_button.click()
    assert "Dans le QPV Centre Ancien (QN09902B)" in ex.location.value
    assert "Services les plus proches par domaine" in ex.location.value
    swapped = f"{lonlat.x:.6f}, {lonlat.y:.6f}"
    ex.place.value = swapped
    ex.locate_button.click()
    assert f"coordonnées « {swapped} » hors de France" in ex.location.value
    assert "Dans le QPV" not in ex.location.value and "Services les plus proches" not in ex.location.value
    ex.place.value = "nulle part"
    ex.locate_button.click()
    assert "aucun lieu" in ex.location.value and 'class="erreur"' in ex.location.value
    ex.place.value = "  "
    ex.locate_button.click()
    assert "Saisissez un lieu" in ex.location.value
    evil = {"place": {"id": "X", "name": "<script>alert(1)</script>", "kind": "service"}, "other_matches": 0,
            "commune": None, "qpv": [], "nearest_qpv": None, "band_m": 300.0, "services": []}
    assert "<script>alert" not in location_html(evil) and "&lt;script&gt;" in location_html(evil)


def test_locate_on_a_catalogue_without_places(occitanie):
    """Occitanie geolocates no service: a name is refused in French, coordinates still work."""
    with pytest.raises(ParameterError, match="ne géolocalise aucun service ni partenaire") as refused:
        locate_text(occitanie, "France Services")
    assert "latitude, longitude" in refused.value.hint
    r = locate_text(occitanie, "43.6045, 1.4440")  # place du Capitole
    assert r["commune"] == {"code": "31555", "name": "Toulouse"} and r["services"] == []


def test_notebook_committed_without_outputs():
    nb = nbformat.read(EXPLORER_NB, as_version=4)
    assert nb.metadata.kernelspec.name == "diagnostic"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert "Explorer(" in "".join(c.source for c in code)


# JupyterLab in headless Chromium ----------------------------------------------------------------------------------

def _kernel() -> None:
    """The notebook's kernel « diagnostic », registered into the venv as `make` does, if missing."""
    from jupyter_client.kernelspec import KernelSpecManager

    if "diagnostic" not in KernelSpecManager().find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", "diagnostic",
                        "--display-name", "Diagnostic territorial (diagnostic)"], check=True, capture_output=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A real JupyterLab on 127.0.0.1 with a token, serving the notebooks; stopped at the end of the module."""
    _kernel()
    tmp_path = tmp_path_factory.mktemp("lab")
    port, token = _free_port(), secrets.token_hex(16)
    settings = tmp_path / "settings" / "@jupyterlab" / "docmanager-extension"
    settings.mkdir(parents=True)
    (settings / "plugin.jupyterlab-settings").write_text('{"autosave": false}')  # never rewrite the notebook
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")}
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "jupyter"), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--ServerApp.token={token}", f"--ServerApp.root_dir={NOTEBOOKS}",
         f"--FileCheckpoints.checkpoint_dir={tmp_path / 'checkpoints'}",  # nothing written under notebooks/
         *(["--allow-root"] if os.getuid() == 0 else [])],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    assert r.status == 200
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "lab.log").read_text()
                time.sleep(0.3)
        with pytest.raises(urllib.error.HTTPError) as denied:  # the token is required
            urllib.request.urlopen(f"{base}/api/contents", timeout=5)
        assert denied.value.code == 403
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _run_all_cells(page) -> None:
    """Menu Run › Run All Cells, once the kernel is connected (a click before that runs nothing: retry)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.locator("#jp-main-statusbar", has_text="Idle").wait_for(timeout=60_000)
    started = page.locator(".jp-InputPrompt", has_text=re.compile(r"\[(\*|\d+)\]"))
    for _ in range(4):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        try:
            started.first.wait_for(timeout=20_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError("JupyterLab did not run the cells")


#: The map's view once Leaflet has laid it out: its bounds, its zoom, and the zoom that would fit ``around``.
_MAP_VIEW = """around => {
    const map = window[Object.keys(window).find(k => /^map_[0-9a-f]+$/.test(k))];
    const size = map.getSize(), b = map.getBounds();
    return {width: size.x, height: size.y, zoom: map.getZoom(), around_zoom: map.getBoundsZoom(around),
            west: b.getWest(), south: b.getSouth(), east: b.getEast(), north: b.getNorth()};
}"""


def _map_view(page, title: str, around: list[list[float]]) -> dict:
    """:data:`_MAP_VIEW` in the map frame titled ``title``, once its size is settled."""
    frame = page.locator(f"iframe[title='{title}']").element_handle(timeout=30_000).content_frame()
    frame.locator(".leaflet-interactive").first.wait_for(state="attached", timeout=30_000)
    frame.wait_for_function("() => Object.keys(window).some(k => /^map_[0-9a-f]+$/.test(k))", timeout=30_000)
    page.wait_for_timeout(500)  # a layout after the page ran resizes the frame
    return frame.evaluate(_MAP_VIEW, around)


def _wgs84_box(gdf) -> list[list[float]]:
    west, south, east, north = gdf.to_crs("EPSG:4326").total_bounds
    return [[float(south), float(west)], [float(north), float(east)]]


class Lab:
    """The explorer notebook run in JupyterLab in headless Chromium, with what the page logged."""

    def __init__(self, page, base: str) -> None:
        self.page, self.base = page, base
        self.blocked: list[str] = []
        self.page_errors: list[str] = []
        self.console_errors: list[str] = []
        self.first_map: dict = {}

    def html(self, contains: str | re.Pattern):
        return self.page.locator(".jupyter-widgets .widget-html-content", has_text=contains)

    def wait_html(self, contains: str | re.Pattern, timeout: int = 30_000):
        found = self.html(contains).first
        found.wait_for(timeout=timeout)
        return found.inner_text()

    def tab(self, title: str) -> None:
        self.page.locator(".widget-tab .lm-TabBar-tab", has_text=title).click()

    def field(self, label: str):
        return self.page.locator(".widget-text", has_text=label).locator("input")

    def button(self, label: str):
        return self.page.locator("button.jupyter-button", has_text=label)

    def check_clean(self) -> None:
        """No page or console error, no request outside JupyterLab: each fails the test."""
        # Offline, JupyterLab 4.6 logs no error of its own (news are opt-in, no extension manager listing is
        # asked for at start-up): nothing needs ignoring.
        assert self.page_errors == [], self.page_errors
        assert self.console_errors == [], self.console_errors
        assert self.blocked == [], self.blocked


@pytest.fixture(scope="module")
def explorer_lab(lab, _browser, demo, tmp_path_factory):
    """One JupyterLab session for the browser tests: the notebook run with Run All, its first map measured."""
    base, token = lab
    shots = tmp_path_factory.mktemp("pages")
    before = hashlib.sha256(EXPLORER_NB.read_bytes()).hexdigest()
    context = _browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    session = Lab(page, base)

    def route(r):
        url = r.request.url
        if url.startswith((f"{base}/", "data:", "blob:", "about:")):
            return r.continue_()
        session.blocked.append(url)
        return r.abort()

    context.route("**/*", route)
    page.on("pageerror", lambda e: session.page_errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and session.console_errors.append(m.text))
    try:
        page.goto(f"{base}/lab/tree/explorateur.ipynb?token={token}", wait_until="domcontentloaded")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        _run_all_cells(page)
        page.locator(".jp-InputPrompt", has_text="[2]:").wait_for(timeout=90_000)
        assert "Villeneuve-sur-Lys (99101)" in session.wait_html("mis à jour", timeout=60_000)
        communes = demo.communes
        session.first_map = _map_view(page, "Carte interactive de Villeneuve-sur-Lys",
                                      _wgs84_box(communes[communes["insee_dep"] == "99"]))
    except Exception:
        page.screenshot(path=shots / "echec.png")
        context.close()
        raise
    yield session
    page.screenshot(path=shots / "fin.png")
    print(f"Pages of the JupyterLab session: {shots}")
    context.close()
    assert hashlib.sha256(EXPLORER_NB.read_bytes()).hexdigest() == before, "the committed notebook was rewritten"


@pytest.mark.browser
def test_jupyterlab_first_map_fits_the_commune(explorer_lab, demo):
    """After Run All, the map shows the commune whole, not France nor the whole department."""
    view = explorer_lab.first_map
    (south, west), (north, east) = _wgs84_box(demo.communes[demo.communes["insee_com"] == "99101"])
    assert view["width"] > 500 and view["height"] > 400, view
    assert view["west"] <= west and view["east"] >= east and view["south"] <= south and view["north"] >= north, view
    assert view["zoom"] >= view["around_zoom"], view  # zoomed in at least as far as the department would be
    assert view["north"] - view["south"] < 2 * (north - south), view
    explorer_lab.check_clean()


@pytest.mark.browser
def test_jupyterlab_changes_locate_and_export(explorer_lab, demo, tmp_path):
    """Controls reach the kernel; swapped coordinates and an export to a file replace the previous answer."""
    lab, page = explorer_lab, explorer_lab.page
    assert page.locator(".widget-select select").count() >= 1 and page.locator(".widget-slider").count() >= 2
    assert page.locator(".widget-label", has_text="3,00").count() >= 1  # French readout of a weight (poverty, 3)
    page.locator(".widget-select select").first.select_option(index=1)  # Mont-Clair (99103)
    lab.wait_html("Mont-Clair (99103) — mis à jour")
    frame = page.frame_locator("iframe[title='Carte interactive de Mont-Clair']")
    frame.locator(".leaflet-interactive").first.wait_for(state="attached", timeout=30_000)

    lab.tab("Localiser un lieu")
    inside = demo.qpv.set_index("code_qp").geometry["QN09902B"].representative_point()
    lonlat = gpd.GeoSeries([inside], crs="EPSG:2154").to_crs("EPSG:4326").iloc[0]
    lab.field("Lieu").fill(f"{lonlat.y:.6f}, {lonlat.x:.6f}")
    lab.button("Localiser").click()
    lab.wait_html("Dans le QPV Centre Ancien (QN09902B)")
    lab.field("Lieu").fill(f"{lonlat.x:.6f}, {lonlat.y:.6f}")
    lab.button("Localiser").click()
    assert "latitude et longitude semblent inversées" in lab.wait_html("hors de France")
    assert lab.html("Dans le QPV").count() == 0

    lab.tab("Exporter")
    lab.field("Dossier de sortie").fill(str(tmp_path / "sorties"))
    lab.button("Exporter le rapport").click()
    assert str(tmp_path / "sorties" / "99103" / "rapport.html") in lab.wait_html("Rapport exporté", timeout=120_000)
    target = tmp_path / "un-fichier.txt"
    target.write_text("pas un dossier", encoding="utf-8")
    lab.field("Dossier de sortie").fill(str(target))
    lab.button("Exporter le rapport").click()
    shown = lab.wait_html("l'export du rapport a échoué", timeout=60_000)
    assert "n'est pas un dossier" in shown and "Que faire" in shown
    assert lab.html("Rapport exporté").count() == 0 and lab.html("Export en cours").count() == 0
    lab.check_clean()


@pytest.mark.browser
def test_jupyterlab_locate_by_name_on_occitanie(explorer_lab, real_dir):
    """Occitanie geolocates no service: a name gets a French message in place of the earlier answer."""
    lab, page = explorer_lab, explorer_lab.page
    lab.tab("Localiser un lieu")
    lab.field("Lieu").fill("S03")
    lab.button("Localiser").click()
    lab.wait_html("Lieu trouvé : Centre social Les Hauts")
    page.locator(".widget-dropdown select").first.select_option(label="Occitanie — QPV 2015 et indicateurs INSEE")
    lab.wait_html("Toulouse (31555) — mis à jour", timeout=120_000)
    assert lab.html("Lieu trouvé").count() == 0  # the answer about the demo went with its catalogue
    lab.tab("Localiser un lieu")
    lab.field("Lieu").fill("43.6045, 1.4440")
    lab.button("Localiser").click()
    lab.wait_html("Commune : Toulouse (31555)")
    lab.field("Lieu").fill("France Services")
    lab.button("Localiser").click()
    shown = lab.wait_html("aucun lieu ne correspond à « France Services »")
    assert "ne géolocalise aucun service ni partenaire" in shown and "Que faire" in shown
    assert lab.html("Commune : Toulouse").count() == 0
    lab.check_clean()


# Issue #27.10 and #29.4 -------------------------------------------------------------------------------------------


def test_map_indicator_alone_redraws_the_map_only(ex, monkeypatch):
    from diagnostic import explorer

    shown, figures, needs = ex.diagnostic, ex.figures.value, ex.needs.value
    monkeypatch.setattr(explorer, "build", lambda *a, **k: pytest.fail("the diagnostic was rebuilt"))
    ex.indicator.value = "median_income"
    assert ex.diagnostic is shown and ex.figures.value == figures and ex.needs.value == needs
    assert "QPV – Revenu disponible médian" in _map_page(ex)
    ex.indicator.value = "poverty_rate"
    assert "QPV – Taux de pauvreté" in _map_page(ex) and ex.diagnostic is shown


def test_empty_output_folder_is_refused(ex, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where Path("") would export
    ex.output.value = "  "
    assert ex.export() is None
    shown = html.unescape(ex.export_status.value)
    assert "le champ « Dossier de sortie » est vide" in shown and "Que faire" in shown
    assert list(tmp_path.iterdir()) == []


def test_answers_computed_with_other_settings_are_cleared(ex, tmp_path):
    ex.export_status.value = "<p>Rapport exporté : …</p>"  # as left by a successful export
    ex.commune.value = "99103"
    assert ex.export_status.value == "" and ex.diagnostic.code == "99103"
    ex.locate("S03")
    assert "Lieu trouvé" in ex.location.value
    ex.qpv.value = ex.qpv.value[:1]
    assert "Lieu trouvé" in ex.location.value  # the band did not change: the answer still holds
    ex.band.value = 500
    assert ex.location.value == ""


def test_weight_sliders_and_titles_in_french(ex):
    from diagnostic.analysis.indicators.needs import OFFER_LABEL

    labels = {key: slider.description for key, slider in ex.weights.items()}
    assert labels[("acces_droits", "caf_coverage_rate")] == "Part des habitants couverts par une prestation CAF"
    assert labels[("emploi", "jobseekers_rate")] == "Demandeurs d'emploi pour 100 habitants"
    assert labels[("sante", "offre_droit_commun")] == OFFER_LABEL
    assert not [label for label in labels.values() if re.search(r"[a-z]_[a-z]", label)]
    boxes, titles = [ex.widget], []
    while boxes:
        box = boxes.pop()
        titles += list(getattr(box, "titles", ()))
        boxes.extend(getattr(box, "children", ()))
    assert "Poids des règles des besoins" in titles
    assert not [t for t in titles if "/" in t or ".yaml" in t]


def test_unexpected_failure_gives_the_command_line(ex, monkeypatch):
    from diagnostic import explorer

    monkeypatch.setattr(explorer, "build", lambda *a, **k: (_ for _ in ()).throw(KeyError("value")))
    ex.set_domains(["habitat", "emploi"])
    status = html.unescape(ex.status.value)
    assert "Erreur inattendue : la mise à jour du diagnostic a échoué (KeyError : 'value')" in status
    assert "Exporter" not in status and "onglet" not in status
    assert "diagnostic --debug run --catalog" in status and "--commune 99101" in status
    assert "--domains habitat,emploi" in status


#: Controls of the explorer that stick out of its box on the right, and elements scrolled or scrollable sideways.
_LAYOUT = """() => {
    const root = document.querySelector('.diag-explorateur');
    const panel = root.closest('.jp-NotebookPanel-notebook') || root.closest('.jp-Notebook');
    const right = Math.min(root.getBoundingClientRect().right, panel.getBoundingClientRect().right);
    const controls = root.querySelectorAll('.widget-dropdown, .widget-text, .widget-select, .widget-select-multiple,'
                                           + ' .widget-slider, .widget-checkbox, .widget-button');
    const cut = [...controls].filter(e => e.offsetParent && e.getBoundingClientRect().right
                                                            > Math.min(right, e.parentElement.getBoundingClientRect().right) + 0.5)
                             .map(e => e.textContent.trim().slice(0, 40) || e.className);
    const sideways = [root, ...root.querySelectorAll('*')].filter(e => e.offsetParent && !e.closest('iframe')
        && (e.scrollLeft > 0 || (['auto', 'scroll'].includes(getComputedStyle(e).overflowX)
                                 && e.scrollWidth > e.clientWidth + 1)))
        .filter(e => !e.matches('select, select *, .widget-html-content *, .leaflet-container *'))
        .map(e => e.className);
    return {cut, sideways, panel: panel.scrollWidth - panel.clientWidth};
}"""


@pytest.mark.browser
def test_jupyterlab_controls_fit_beside_the_file_browser(explorer_lab):
    """At 1,400 px with the file browser open, no control is cut and typing a search scrolls nothing sideways."""
    lab, page = explorer_lab, explorer_lab.page
    browser = page.locator("#filebrowser")
    if not browser.is_visible():
        page.locator(".jp-SideBar [data-id='filebrowser']").click()
    browser.wait_for(state="visible")
    assert browser.bounding_box()["width"] > 150
    page.wait_for_timeout(500)
    assert page.evaluate(_LAYOUT) == {"cut": [], "sideways": [], "panel": 0}
    lab.field("Rechercher").fill("Mont")  # the demo's Mont-Clair, or Montauban if Occitanie was chosen before
    lab.wait_html(re.compile(r"Mont\S* \(\d{5}\) — mis à jour"), timeout=60_000)
    assert page.evaluate(_LAYOUT) == {"cut": [], "sideways": [], "panel": 0}
    lab.field("Rechercher").fill("")
    lab.check_clean()


def test_without_outlines_the_map_says_so_and_the_band_is_off(tmp_path):
    """QPVs known by a list only: the map names them as not drawn, the band slider is disabled and the status says why."""
    import shutil

    shutil.copytree(DEMO_CATALOG.parent, tmp_path / "demo")
    catalog = tmp_path / "demo" / "catalogue.yaml"
    conf = yaml.safe_load(catalog.read_text(encoding="utf-8"))
    conf["sources"]["qpv"]["outlines"] = False
    catalog.write_text(yaml.safe_dump(conf, allow_unicode=True), encoding="utf-8")
    ex = Explorer(catalog, "99101", output=tmp_path / "sorties")
    assert ex.diagnostic is not None and ex.diagnostic.qpv.geometry.isna().all()
    assert ex.band.disabled
    assert "Contours des QPV non fournis : Les Hauts de Lys" in html.unescape(ex.map.value.split("<iframe")[0])
    assert "la bande autour d'eux ne s'applique pas" in html.unescape(ex.status.value)
