"""`diagnostic run`: files, resultats.json against the library, report sections, offline browser, safety."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from diagnostic._fs import LOCK_FILE
from diagnostic.analysis.commune import build, results
from diagnostic.cli import main
from diagnostic.errors import NotebookExecutionError, UnknownCommuneError
from diagnostic.pipeline.run import NOTEBOOK, run_commune
from tests.util import DEMO_CATALOG

SECTIONS = [
    "L'essentiel", "Territoire et contexte", "Diagnostic d'opportunité : les besoins", "Réponses existantes et complémentarité",
    "Besoins non couverts", "Maillage partenarial", "Préconisations stratégiques et opérationnelles",
    "Cadrage du projet", "Financements", "Portage et gouvernance", "Annexes",
]
EXPECTED_FILES = {"rapport.html", "diagnostic.ipynb", "resultats.json", "parametres.json", "indicateurs.csv", "note_conseil.docx",
                  "couverture.csv", "besoins_non_couverts.csv", "recommandations.csv", "territoire.gpkg", "carte.png"}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, indicator_cache):
    out = tmp_path_factory.mktemp("out")
    assert main(["run", "--catalog", str(DEMO_CATALOG), "--commune", "99101", "--output", str(out)]) == 0
    return out / "99101"


def test_demo_run_files(demo_run):
    names = {p.name for p in demo_run.iterdir()}
    assert EXPECTED_FILES | {"reseau_partenaires.png"} <= names
    assert not [p for p in demo_run.parent.iterdir() if p.name.startswith(".") and p.name != LOCK_FILE], \
        "temporary folder left behind"
    csv = (demo_run / "besoins_non_couverts.csv").read_bytes()
    assert csv.startswith(b"\xef\xbb\xbf") and b"rang;territoire;territoire_nom;domaine;niveau" in csv.splitlines()[0]
    import pyogrio

    layers = {name for name, _ in pyogrio.list_layers(demo_run / "territoire.gpkg")}
    assert layers == {"commune", "qpv", "services"}
    nb = nbformat.read(demo_run / "diagnostic.ipynb", as_version=4)
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]


def test_demo_results_equal_library(demo_run, indicator_cache):
    saved = json.loads((demo_run / "resultats.json").read_text(encoding="utf-8"))
    expected = json.loads(json.dumps(results(build(DEMO_CATALOG, "99101")), ensure_ascii=False))
    assert saved == expected
    assert saved["commune"]["nom"] == "Villeneuve-sur-Lys"
    assert saved["donnees_fictives"] is True
    assert [q["code"] for q in saved["qpv"]] == ["QN09901A", "QN09902B", "QN09903C"]
    assert [q["population_quartier"] for q in saved["qpv"]] == [6840, 2310, 4105]
    # La Garenne – Les Tilleuls is intercommunal: the commune's part is its own inhabitants in it.
    garenne = saved["qpv"][2]
    assert garenne["intercommunal"] is True and 0 < garenne["part_commune"] < 1
    assert garenne["population"] == pytest.approx(4105 * garenne["part_commune"])
    assert [q["population"] for q in saved["qpv"][:2]] == [6840, 2310]
    assert saved["qpv"][2]["communes"] == ["99101", "99103"]
    assert saved["besoins_non_couverts"][0]["preuves"], "each unmet need carries its evidence"
    kinds = {r["id"] for r in saved["recommandations"]}
    assert {"territoires_prioritaires", "horaires", "equipe", "financements", "gouvernance", "evaluation"} <= kinds
    assert saved["parametres"]["band_m"] == 300.0
    assert len(saved["versions"]["donnees"]) == 64


def test_demo_report_sections_and_banner(demo_run):
    page = (demo_run / "rapport.html").read_text(encoding="utf-8")
    for title in SECTIONS:
        assert f">{title}<" in page.replace("&#x27;", "'").replace("&#39;", "'"), title
    assert "Données fictives" in page
    assert "<pre" not in page and "from diagnostic" not in page, "no code in the report"
    assert 'lang="fr"' in page and 'alt="' in page
    assert "@media print" in page and "print-only" in page
    # The officer's own texts sit under the figures of their section, as escaped Markdown.
    context = page.index('<div class="officer-text">')
    assert page.index('<h2 id="Territoire-et-contexte"') < context < page.index('<h2 id="Diagnostic-d')
    assert "<strong>fictive</strong>" in page[context:context + 400]
    assert "Aucune contribution locale" not in page, "no instruction to the officer in the report"


@pytest.mark.browser
def test_demo_report_offline_in_browser(demo_run, offline_page):
    page, log = offline_page(demo_run / "rapport.html", wait_ms=1500)
    assert page.evaluate("typeof window.L") == "object", "Leaflet loaded from the page itself"
    assert page.locator(".diag-carte .leaflet-container").count() == 1
    assert page.locator(".leaflet-overlay-pane path").count() >= 3
    network = page.locator('svg[aria-label^="Réseau des partenaires"]')
    assert network.count() == 1
    assert network.locator("circle").count() >= 10
    toc = page.locator("nav.toc a")
    assert toc.count() == len(SECTIONS) + 0
    for i in range(toc.count()):
        target = toc.nth(i).get_attribute("href")[1:]
        assert page.evaluate("id => document.getElementById(decodeURIComponent(id)) !== null "
                             "|| document.getElementById(id) !== null", target), target
    assert log.external_requests == []
    assert log.console_errors == [] and log.page_errors == []
    # Readable on a phone: nothing wider than the screen (wide tables scroll inside themselves).
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_toulouse_report(toulouse_report):
    saved = json.loads((toulouse_report / "resultats.json").read_text(encoding="utf-8"))
    assert saved["commune"]["nom"] == "Toulouse" and saved["donnees_fictives"] is False
    assert len(saved["qpv"]) == 12
    assert sum(q["population"] for q in saved["qpv"]) == 55543  # PROVENANCE.md
    mirail = next(q for q in saved["qpv"] if q["code"] == "QP031007")
    assert mirail["population"] == 31691
    rate = next(i for i in saved["indicateurs"] if i["territoire"] == "QP031007" and i["indicateur"] == "poverty_rate")
    assert rate["valeur"] == 48.5
    # Optional sources absent from this catalogue are named with how to add them.
    assert {m["role"] for m in saved["sources_manquantes"]} >= {"services", "partners", "observations"}
    page = (toulouse_report / "rapport.html").read_text(encoding="utf-8")
    assert "Donnée non disponible" in page and "Données fictives" not in page


@pytest.mark.browser
def test_toulouse_report_offline(toulouse_report, offline_page):
    page, log = offline_page(toulouse_report / "rapport.html", wait_ms=1500)
    assert page.locator(".diag-carte .leaflet-container").count() == 1
    assert log.external_requests == [] and log.page_errors == [] and log.console_errors == []


def test_commune_without_qpv_runs_at_commune_level(tmp_path, indicator_cache):
    result = run_commune(DEMO_CATALOG, "99102", tmp_path)
    saved = json.loads((result.folder / "resultats.json").read_text(encoding="utf-8"))
    assert saved["qpv"] == [] and saved["niveau_d_analyse"] == "commune"
    assert {n["territoire"] for n in saved["besoins_non_couverts"]} == {"99102"}
    assert "aucun quartier prioritaire" in (result.folder / "rapport.html").read_text(encoding="utf-8")


def test_unknown_commune_is_refused_before_the_notebook(tmp_path, capsys):
    with pytest.raises(UnknownCommuneError):
        run_commune(DEMO_CATALOG, "75056", tmp_path)
    assert main(["run", "--catalog", str(DEMO_CATALOG), "--commune", "75056", "--output", str(tmp_path)]) == 19
    err = capsys.readouterr().err
    assert "75056" in err and "diagnostic territories" in err
    assert main(["run", "--catalog", str(DEMO_CATALOG), "--commune", "99101; rm -rf /", "--output", str(tmp_path)]) == 19
    assert list(tmp_path.iterdir()) == []


def test_failing_cell_keeps_notebook_and_previous_report(tmp_path, demo_run, indicator_cache):
    out = tmp_path / "out"
    shutil.copytree(demo_run, out / "99101")
    before = (out / "99101" / "rapport.html").read_bytes()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("## Financements"))
    nb.cells[index + 1].source = "raise RuntimeError('panne simulée')"
    broken = tmp_path / "broken.ipynb"
    nbformat.write(nb, broken)
    with pytest.raises(NotebookExecutionError) as info:
        run_commune(DEMO_CATALOG, "99101", out, notebook=broken)
    message = str(info.value)
    assert "Financements" in message and "panne simulée" in message
    kept = out / "_echecs" / "99101" / "diagnostic.ipynb"
    assert kept.exists() and str(kept) in message
    assert "panne simulée" in kept.read_text(encoding="utf-8")
    assert (out / "99101" / "rapport.html").read_bytes() == before, "previous report untouched"
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != LOCK_FILE]


def test_names_from_data_are_escaped(tmp_path, indicator_cache):
    data = tmp_path / "demo"
    shutil.copytree(Path(DEMO_CATALOG).parent, data)
    actors = data / "partenaires.csv"
    text = actors.read_text(encoding="utf-8").replace("Habitat Lys;", "<script>alert(1)</script>;", 1)
    actors.write_text(text, encoding="utf-8")
    qpv = data / "qpv_2024.geojson"
    qpv.write_text(qpv.read_text(encoding="utf-8").replace("Centre Ancien", "<img src=x onerror=alert(2)>"), encoding="utf-8")
    result = run_commune(data / "catalogue.yaml", "99101", tmp_path / "out")
    page = (result.folder / "rapport.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x onerror" not in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page


def test_lille_without_qpv_outlines(lille_report):
    """Hauts-de-France QPVs are tables without outlines: QPV level all the same, geometry said missing."""
    saved = json.loads((lille_report / "resultats.json").read_text(encoding="utf-8"))
    assert saved["commune"]["population"] == 236710  # PROVENANCE.md, populations légales 2021
    assert saved["niveau_d_analyse"] == "qpv" and saved["commune"]["nombre_qpv"] == 5
    values = {(i["territoire"], i["indicateur"]): i["valeur"] for i in saved["indicateurs"]}
    assert values[("QP059073", "poverty_rate")] == 52.1
    page = (lille_report / "rapport.html").read_text(encoding="utf-8")
    note = page[page.index("Quartiers prioritaires aux contours non fournis"):]
    note = note[:note.index("</p>")]
    assert "Secteur Ouest" in note and "contours des QPV publié par l'ANCT" in note  # QP059073, named not coded
    assert "QP059073" not in note
    assert "aucun quartier prioritaire dans les données" not in page


def test_run_refused_while_a_batch_writes(tmp_path, capsys):
    from diagnostic._fs import output_lock

    with output_lock(tmp_path, exclusive=True):
        code = main(["run", "--catalog", str(DEMO_CATALOG), "--commune", "99101", "--output", str(tmp_path)])
    assert code == 22 and "un traitement par lot écrit déjà dans ce dossier de sortie" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == [LOCK_FILE]


def test_run_keeps_the_evaluations(tmp_path):
    """A new diagnostic replaces the commune's folder whole, but its evaluations (and their failures) stay."""
    out = tmp_path / "out"
    evaluation = out / "99101" / "evaluation" / "evaluation.html"
    evaluation.parent.mkdir(parents=True)
    evaluation.write_text("évaluation publiée", encoding="utf-8")
    (out / "99101" / "ancien.csv").write_text("a\n", encoding="utf-8")
    failed = {name: out / "_echecs" / "99101" / name for name in ("diagnostic.ipynb", "evaluation/evaluation.ipynb")}
    for path in failed.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}", encoding="utf-8")
    inode = evaluation.stat().st_ino
    tiny = tmp_path / "carnet.ipynb"
    nbformat.write(nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("## Essai"), nbformat.v4.new_code_cell("print(commune)")],
        metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}), tiny)
    result = run_commune(DEMO_CATALOG, "99101", out, notebook=tiny)
    assert result.files == ["diagnostic.ipynb", "parametres.json", "rapport.html"]
    assert sorted(p.name for p in result.folder.iterdir()) == ["diagnostic.ipynb", "evaluation", "parametres.json",
                                                              "rapport.html"]
    assert evaluation.read_text(encoding="utf-8") == "évaluation publiée" and evaluation.stat().st_ino == inode
    assert not failed["diagnostic.ipynb"].exists() and failed["evaluation/evaluation.ipynb"].exists()
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE, "99101", "_echecs"]


def test_clean_leftovers_removes_what_fs_names(tmp_path, monkeypatch):
    """What a killed run, evaluation or batch leaves, named by diagnostic._fs, and nothing else."""
    from diagnostic import _fs
    from diagnostic.pipeline.batch import clean_leftovers

    with _fs.output_lock(tmp_path):
        pass
    (tmp_path / ".notes").write_text("à garder", encoding="utf-8")
    report = _fs.write_atomic(tmp_path / "99101" / "rapport.html", "ancien")
    left = {_fs.temp_dir(tmp_path, "99102"), _fs.temp_dir(tmp_path, "99102.evaluation"),
            _fs.temp_dir(tmp_path / _fs.FAILED_DIR, "99103")}
    new = _fs.temp_dir(tmp_path, "99101")
    (new / "rapport.html").write_text("nouveau", encoding="utf-8")
    with monkeypatch.context() as m:  # killed before the previous version was deleted
        m.setattr(_fs.shutil, "rmtree", lambda *a, **k: None)
        _fs.swap_in(new, tmp_path / "99101")
    with monkeypatch.context() as m:  # killed before the manifest's rename
        m.setattr(_fs.os, "replace", lambda *a: None)
        _fs.write_atomic(tmp_path / "manifest.json", "{}")
    left |= {p for p in tmp_path.iterdir() if p.name.startswith((".99101.", ".manifest.json."))}
    assert len(left) == 5
    assert set(clean_leftovers(tmp_path)) == left
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_FILE, ".notes", "99101", "_echecs"]
    assert report.read_text(encoding="utf-8") == "nouveau"


def test_notebook_parameters_default_to_the_run_options():
    """The notebook opened by hand in JupyterLab uses the same band and map indicator as ``diagnostic run``."""
    import papermill

    from diagnostic import options
    from diagnostic.pipeline.run import NOTEBOOK

    defaults = {name: p["default"] for name, p in papermill.inspect_notebook(str(NOTEBOOK)).items()}
    assert float(defaults["band_m"]) == options.BAND_M
    assert defaults["indicator"].strip("\"'") == options.INDICATOR
