"""Security and confidentiality: hostile data in every page, personal data, disclosure control, paths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from diagnostic import cli
from tests.conftest import DEMO_CATALOG

#: One payload per attack: a script element, an image whose error handler runs, a javascript: link.
ATTACK = '<script>alert("x1")</script><img src=x onerror=alert("x2")><a href="javascript:alert(\'x3\')">x</a>'
JS_URL = "javascript:alert('x4')"


def _hostile(text: str) -> str:
    return f"{text} {ATTACK}"


def _edit_csv(path: Path, columns: list[str], sep: str = ";", encoding: str = "utf-8") -> None:
    df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding=encoding)
    for c in columns:
        df[c] = [_hostile(v) if v else ATTACK for v in df[c]]
    df.to_csv(path, sep=sep, index=False, encoding=encoding)


def _edit_geojson(path: Path, columns: list[str]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    for feature in data["features"]:
        for c in columns:
            feature["properties"][c] = _hostile(str(feature["properties"][c]))
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def hostile_demo(dest: Path) -> Path:
    """A copy of the demo territory where every text from data or catalogue carries the payloads."""
    shutil.copytree(DEMO_CATALOG.parent, dest)
    _edit_geojson(dest / "communes.geojson", ["nom"])
    _edit_geojson(dest / "qpv_2024.geojson", ["lib_qp"])
    _edit_csv(dest / "partenaires.csv", ["nom", "role_contact"])
    _edit_csv(dest / "partenaires_relations.csv", ["commentaire"])
    _edit_csv(dest / "bpe.csv", ["NOMRS"])
    _edit_csv(dest / "france_services.csv", ["lib_fs", "adresse"], sep=",")
    _edit_csv(dest / "services_locaux.csv", ["nom", "adresse"], sep=",")
    _edit_csv(dest / "observations.csv", ["commentaire"])
    log = pd.read_csv(dest / "journal_activite.csv", sep=";", dtype=str, keep_default_na=False)
    log["service_signale"] = [_hostile(v) if v else "" for v in log["service_signale"]]
    log["operateur"] = _hostile("Lys")
    log.to_csv(dest / "journal_activite.csv", sep=";", index=False)
    for md in (dest / "textes").glob("*.md"):
        md.write_text(md.read_text(encoding="utf-8") + f"\n\n{ATTACK}\n\n[lien]({JS_URL})\n", encoding="utf-8")
    catalog = yaml.safe_load((dest / "catalogue.yaml").read_text(encoding="utf-8"))
    catalog["name"] = _hostile("Catalogue")
    for entries in catalog["sources"].values():
        for entry in entries if isinstance(entries, list) else [entries]:
            entry.update(vintage=_hostile("2024"), producer=_hostile("INSEE"), licence=_hostile("LO"), url=JS_URL)
    (dest / "catalogue.yaml").write_text(yaml.safe_dump(catalog, allow_unicode=True), encoding="utf-8")
    local = {"ajouter": [{"id": "local_x", "type": "opérationnelle", "domain": "espace_public", "priority": 1,
                          "title": _hostile("Marche"), "text": _hostile("Organiser")}]}
    (dest / "recommandations_locales.yaml").write_text(yaml.safe_dump(local, allow_unicode=True), encoding="utf-8")
    return dest / "catalogue.yaml"


def _assert_inert(page_path: Path, offline_page) -> None:
    """The page fired no dialog, carries no script element written by data and no javascript: link."""
    from playwright.sync_api import Page

    dialogs: list[str] = []
    page: Page
    page, _ = offline_page(page_path, wait_ms=800)
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    # dialogs fired during load are caught by a listener installed before navigation:
    page.reload(wait_until="load")
    page.wait_for_timeout(800)
    assert dialogs == [], f"{page_path.name}: dialog {dialogs}"
    scripts = page.eval_on_selector_all("script", "els => els.map(e => e.textContent)")
    assert not [s for s in scripts if s.strip() == 'alert("x1")'], f"{page_path.name}: script element from data"
    hrefs = page.eval_on_selector_all("[href]", "els => els.map(e => e.getAttribute('href'))")
    assert not [h for h in hrefs if h.strip().lower().startswith("javascript:")], f"{page_path.name}: javascript: link"
    onerror = page.eval_on_selector_all("[onerror]", "els => els.length")
    assert onerror == 0, f"{page_path.name}: element with onerror"
    for frame in page.frames[1:]:
        assert not frame.eval_on_selector_all("[onerror]", "els => els.length")


@pytest.fixture(scope="module")
def hostile_outputs(tmp_path_factory):
    import os

    root = tmp_path_factory.mktemp("hostile")
    old = os.environ.get("DIAGNOSTIC_CACHE")
    os.environ["DIAGNOSTIC_CACHE"] = str(root / "cache")
    try:
        catalog = str(hostile_demo(root / "demo"))
        out = root / "out"
        assert cli.main(["run", "--catalog", catalog, "--commune", "99101", "--output", str(out / "run")]) == 0
        assert cli.main(["evaluate", "--catalog", catalog, "--commune", "99101", "--from", "2025-01-01",
                         "--to", "2025-06-30", "--output", str(out / "eval")]) == 0
        assert cli.main(["batch", "--catalog", catalog, "--communes", "99102", "--workers", "1", "--quiet",
                         "--output", str(out / "batch")]) == 0
    finally:
        if old is None:
            os.environ.pop("DIAGNOSTIC_CACHE")
        else:
            os.environ["DIAGNOSTIC_CACHE"] = old
    return out


def test_hostile_text_is_inert_in_every_page(hostile_outputs, offline_page):
    pages = sorted(hostile_outputs.rglob("*.html"))
    names = {p.name for p in pages}
    assert {"rapport.html", "evaluation.html", "index.html"} <= names
    for path in pages:
        _assert_inert(path, offline_page)
    report = (hostile_outputs / "run" / "99101" / "rapport.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;" in report  # the payload is shown as text, not dropped


def _strict_constant(name: str):
    raise ValueError(f"{name} n'est pas du JSON")


def test_results_are_strict_json(hostile_outputs):
    for path in [*hostile_outputs.rglob("resultats.json"), *hostile_outputs.rglob("evaluation.json")]:
        json.loads(path.read_text(encoding="utf-8"), parse_constant=_strict_constant)


# --- 5. implausible values ------------------------------------------------------------------------------


@pytest.fixture
def demo_copy(tmp_path) -> Path:
    dest = tmp_path / "demo"
    shutil.copytree(DEMO_CATALOG.parent, dest)
    return dest


def _set_cell(path: Path, column: str, row: int, value: str, sep: str) -> None:
    df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    df.loc[row, column] = value
    df.to_csv(path, sep=sep, index=False)


def _check(demo: Path, capsys) -> tuple[int, str]:
    code = cli.main(["data", "check", "--catalog", str(demo / "catalogue.yaml")])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize(("file", "column", "value", "sep"), [
    ("qpv_indicateurs.csv", "tp60", "250", ","),
    ("qpv_indicateurs.csv", "pop_mun", "-5", ","),
    ("qpv_indicateurs.csv", "disp_q2", "-13150", ","),
    ("qpv_indicateurs.csv", "tp60", "inf", ","),
    ("qpv_indicateurs.csv", "tp60", "1e999", ","),
    ("filosofi_communes.csv", "MED21", "-1", ";"),
    ("observations.csv", "poids", "-1000", ";"),
    ("observations.csv", "poids", "1e9", ";"),
])
def test_implausible_value_refused(demo_copy, capsys, file, column, value, sep):
    _set_cell(demo_copy / file, column, 1, value, sep)
    code, message = _check(demo_copy, capsys)
    assert code == 15, message
    assert file in message and f"Colonne : {column}" in message and "Ligne(s) : 3" in message


def test_above_plausible_maximum_kept_with_a_warning(demo_copy, capsys):
    _set_cell(demo_copy / "qpv_indicateurs.csv", "disp_q2", 1, "250000", ",")
    code, message = _check(demo_copy, capsys)
    assert code == 0, message
    assert "disp_q2" in message and "au-dessus de 200" in message and "lignes 3" in message


def test_qpv_far_from_its_commune_refused(demo_copy, capsys):
    data = json.loads((demo_copy / "qpv_2024.geojson").read_text(encoding="utf-8"))

    def shift(coords):  # 6 degrees of longitude east: about 460 km at this latitude
        return [shift(c) for c in coords] if isinstance(coords[0], list) else [coords[0] + 6, coords[1] + 2]

    geometry = data["features"][0]["geometry"]
    geometry["coordinates"] = shift(geometry["coordinates"])
    (demo_copy / "qpv_2024.geojson").write_text(json.dumps(data), encoding="utf-8")
    code, message = _check(demo_copy, capsys)
    assert code == 20, message
    assert "QN09901A / 99101" in message and "km" in message
