"""Security and confidentiality: hostile data in every page, personal data, disclosure control, paths."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from diagnostic import cli
from diagnostic.analysis import disclosure
from diagnostic.analysis import evaluation as ev
from diagnostic.errors import ConfidentialityError
from diagnostic.io.catalog import Source
from diagnostic.io.sources.activity import load_activity
from tests.util import DEMO_CATALOG, cache_in

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
    root = tmp_path_factory.mktemp("hostile")
    with cache_in(root / "cache"):
        catalog = str(hostile_demo(root / "demo"))
        out = root / "out"
        assert cli.main(["run", "--catalog", catalog, "--commune", "99101", "--output", str(out / "run")]) == 0
        assert cli.main(["evaluate", "--catalog", catalog, "--commune", "99101", "--from", "2025-01-01",
                         "--to", "2025-06-30", "--output", str(out / "eval")]) == 0
        assert cli.main(["batch", "--catalog", catalog, "--communes", "99102", "--workers", "1", "--quiet",
                         "--output", str(out / "batch")]) == 0
    return out


def test_hostile_text_is_inert_in_every_page(hostile_outputs, offline_page):
    pages = sorted(hostile_outputs.rglob("*.html"))
    names = {p.name for p in pages}
    assert {"rapport.html", "evaluation.html", "index.html"} <= names
    for path in pages:
        _assert_inert(path, offline_page)
    report = (hostile_outputs / "run" / "99101" / "rapport.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;" in report  # the payload is shown as text, not dropped


def test_local_recommendation_of_a_new_id_is_in_the_report(hostile_outputs):
    """The officer's « local_x » (a new id, like the README's « local_marche ») is a card of rapport.html."""
    report = (hostile_outputs / "run" / "99101" / "rapport.html").read_text(encoding="utf-8")
    assert "Organiser &lt;script&gt;" in report and "ajout local" in report


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


# --- 2. personal data and free text in the publishable evaluation ----------------------------------------


@pytest.mark.parametrize("phone", ["06/12/34/56/78", "06-12-34-56-78", "+33 (0)6 12 34 56 78", "0033 6 12 34 56 78"])
def test_phone_numbers_however_written_refused(tmp_path, demo, phone):
    from tests.util import log_row, write_log

    path = write_log(tmp_path / "journal.csv", [log_row("2025-03-01", "presence"),
                                               log_row("2025-03-02", "veille", service_signale=f"Appeler {phone}")])
    with pytest.raises(ConfidentialityError) as err:
        load_activity(Source("activity", path), demo.communes, demo.qpv, demo.partners)
    assert err.value.exit_code == 21 and err.value.column == "service_signale" and err.value.rows == [3]
    assert phone not in str(err.value)


@pytest.mark.parametrize("column", ["contact", "usager", "name", "identite", "beneficiaire", "adresse_usager"])
def test_personal_columns_refused(tmp_path, demo, column):
    from tests.util import HEADER, log_row, write_log

    path = write_log(tmp_path / "journal.csv", [log_row("2025-03-01", "presence", **{column: "x"})], [*HEADER, column])
    with pytest.raises(ConfidentialityError) as err:
        load_activity(Source("activity", path), demo.communes, demo.qpv, demo.partners)
    assert err.value.exit_code == 21 and err.value.column == column


def test_role_contact_of_the_registry_is_not_personal():
    from diagnostic.io.sources.personal import personal_header

    assert not personal_header("role_contact") and not personal_header("nom_partenaire")


def _evaluation(demo, tmp_path, rows, mode="publication", threshold=5):
    """The evaluation of March 2025 in 99101 over a hand-made log (demo territory and registry)."""
    from tests.util import write_log

    path = write_log(tmp_path / "journal.csv", rows)
    log, report = load_activity(Source("activity", path), demo.communes, demo.qpv, demo.partners)
    data = dataclasses.replace(demo, activity=log, reports=[report])
    return ev.evaluate(data, "99101", "2025-03-01", "2025-03-31", mode=mode, threshold=threshold)


def test_free_text_never_verbatim_in_publication(demo, tmp_path):
    from tests.util import log_row

    rows = [log_row(f"2025-03-{d:02d}", "veille", service_signale="Mme Dupont, 3 rue des Lilas") for d in range(1, 8)]
    rows += [log_row(f"2025-03-{d:02d}", "veille", service_signale="éclairage public") for d in range(1, 8)]
    rows += [log_row(f"2025-03-{d:02d}", "mise_en_relation", partenaire="Z99 Mme Durand") for d in range(1, 8)]
    public = json.dumps(ev.evaluation_json(_evaluation(demo, tmp_path, rows)), ensure_ascii=False)
    assert "Dupont" not in public and "Lilas" not in public and "Durand" not in public and "Z99" not in public
    assert "Autre service" in public and "Éclairage public" in public  # declared in the demo catalogue
    internal = json.dumps(ev.evaluation_json(_evaluation(demo, tmp_path, rows, "interne")), ensure_ascii=False)
    assert "Mme Dupont, 3 rue des Lilas" in internal


# --- 3. disclosure control: each route of recomputation, on a small log -------------------------------------


def _cells(demo, tmp_path, rows):
    from tests.util import write_log

    path = write_log(tmp_path / "journal.csv", rows)
    log, _ = load_activity(Source("activity", path), demo.communes, demo.qpv, demo.partners)
    qpv = demo.qpv_in("99101").sort_values("code_qp")
    tables = ev.compute(log, ev.Period.parse("2025-03-01", "2025-03-31"), qpv)
    tables.pop("signalements_en_attente")
    return ev.cells(tables, ev.key_sets(tables))


def _closed(demo, tmp_path, rows) -> None:
    """Primary suppression alone leaks (the audit recomputes a masked count); protection closes it."""
    cells = _cells(demo, tmp_path, rows)
    primary = {c.location for c in cells if 0 < len(c.records) < 5}
    assert disclosure.audit(cells, primary, 5), "the route should be open with primary suppression only"
    with pytest.raises(ConfidentialityError):
        disclosure.check(cells, primary, 5)
    masked = disclosure.protect(cells, 5)
    assert disclosure.audit(cells, masked, 5) == []


def _conflicts(resolved: int, total: int) -> list[dict]:
    from tests.util import log_row

    return [log_row(f"2025-03-{d:02d}", "conflit", sous_type="temps_reel", issue="resolu" if d <= resolved else "en cours")
            for d in range(1, total + 1)]


def test_route_a_warnings_give_no_count(demo, tmp_path):
    from tests.util import log_row

    rows = [log_row(f"2025-03-{d:02d}", "presence") for d in range(1, 10)]
    rows.append(log_row("2025-03-12", "mise_en_relation", partenaire="Z99"))
    e = _evaluation(demo, tmp_path, rows)
    assert e.warnings and not any(ch.isdigit() for w in e.warnings for ch in w)
    internal = _evaluation(demo, tmp_path, rows, "interne")
    assert any("1 intervention" in w for w in internal.warnings)


def test_route_b_key_figure_minus_published_cells(demo, tmp_path):
    from tests.util import log_row

    # 5 conflicts in real time, 1 « navette »: « conflits traités : 6 » − 5 gives the masked 1.
    rows = _conflicts(5, 5) + [log_row("2025-03-20", "conflit", sous_type="navette", issue="resolu")]
    rows += [log_row(f"2025-03-{d:02d}", "presence") for d in range(1, 10)]
    _closed(demo, tmp_path, rows)
    e = _evaluation(demo, tmp_path, rows)
    conflicts = e.tables["conflits"].frame.set_index("Type de conflit")["Conflits"]
    assert conflicts["Navette"] is None
    assert e.headline["conflits"] is None or conflicts["En temps réel"] is None


def test_route_c_share_over_a_small_base(demo, tmp_path):
    from tests.util import log_row

    # 1 resolved conflict of 6: « 16,7 % of 6 » gives 1.
    rows = _conflicts(1, 6) + [log_row(f"2025-03-{d:02d}", "presence") for d in range(1, 10)]
    _closed(demo, tmp_path, rows)
    e = _evaluation(demo, tmp_path, rows)
    util = e.tables["utilite_sociale"].frame.set_index("Indicateur")
    assert util.loc["Part des conflits résolus (%)", "Valeur"] is None
    assert e.headline["part_conflits_resolus_pct"] is None
    assert e.tables["conflits"].frame.set_index("Type de conflit").loc["En temps réel", "Part résolue (%)"] is None


def test_route_d_row_difference(demo, tmp_path):
    from tests.util import log_row

    # Éclairage public: 6 reports, 5 resolved: « Signalements 6 − Résolus 5 » gives the 1 still open.
    rows = [log_row(f"2025-03-{d:02d}", "veille", service_signale="Éclairage public",
                 date_resolution="2025-03-25" if d <= 5 else "") for d in range(1, 7)]
    rows += [log_row(f"2025-03-{d:02d}", "presence") for d in range(1, 10)]
    _closed(demo, tmp_path, rows)
    e = _evaluation(demo, tmp_path, rows)
    watch = e.tables["veille"].frame.set_index("Service signalé").loc["Éclairage public"]
    assert watch["En attente"] is None and watch["Part résolue (%)"] is None
    assert watch["Signalements"] is None or watch["Résolus"] is None


def test_route_e_masked_count_is_never_total_minus_other_rows():
    from diagnostic.analysis.disclosure import Cell

    rows = [frozenset((k, i) for i in range(n)) for k, n in (("a", 12), ("b", 20), ("c", 30))]
    cells = [Cell(("veille", r, "Signalements"), s) for r, s in enumerate(rows)]
    cells.append(Cell(("utilite_sociale", 9, "Valeur"), frozenset().union(*rows)))  # the total, 62
    masked = {("veille", 0, "Signalements")}  # 12: not small, masked to protect another cell
    assert disclosure.audit(cells, masked, 5) == ["case masquée de 12 enregistrement(s)"]  # 62 − 20 − 30
    protected = disclosure.protect(cells, 5, close=lambda m: m | masked)
    assert len(protected) == 2 and disclosure.audit(cells, protected, 5) == []


def test_route_f_masked_figure_never_printed_elsewhere():
    from diagnostic.analysis.disclosure import Cell

    reports = frozenset(range(8))
    cells = [Cell(("chiffres_cles", "signalements"), reports), Cell(("utilite_sociale", 9, "Valeur"), reports)]
    assert disclosure.audit(cells, {("chiffres_cles", "signalements")}, 5)
    assert disclosure.protect(cells, 5, close=lambda m: m | {("chiffres_cles", "signalements")}) == {
        ("chiffres_cles", "signalements"), ("utilite_sociale", 9, "Valeur")}


def test_masked_median_delay_not_reprinted_in_the_utility_table(demo, tmp_path):
    from tests.util import log_row

    # 7 reports, 2 resolved: the median delay rests on 2 reports.
    rows = [log_row(f"2025-03-{d:02d}", "veille", service_signale="Éclairage public",
                    date_resolution="2025-03-20" if d <= 2 else "") for d in range(1, 8)]
    rows += [log_row(f"2025-03-{d:02d}", "presence") for d in range(1, 10)]
    e = _evaluation(demo, tmp_path, rows)
    util = e.tables["utilite_sociale"].frame.set_index("Indicateur")
    assert e.headline["delai_median_jours"] is None and "delai_median_jours" in e.masked_figures
    assert util.loc["Délai médian de résolution (jours)", "Valeur"] is None


def test_demo_watch_total_gives_no_masked_row(demo):
    """The issue's case: « Propreté urbaine » masked, the total 142 published and the other rows summing to 130."""
    e = ev.evaluate(demo, "99101", "2025-01-01", "2025-06-30")
    watch = e.tables["veille"].frame.set_index("Service signalé")["Signalements"]
    total = e.tables["utilite_sociale"].frame.set_index("Indicateur").loc["Dysfonctionnements signalés aux services",
                                                                          "Valeur"]
    assert watch["Propreté urbaine"] is None
    assert total is None or watch.isna().sum() != 1  # never « total − the other rows »


def test_route_g_overlapping_publications(demo, tmp_path):
    """1–30 March then 1–31 March: the two documents must not differ by the one intervention of Monday 31."""
    from tests.util import log_row, write_log

    rows = [log_row(f"2025-03-{d:02d}", "presence") for d in range(1, 31) for _ in range(6)]
    rows.append(log_row("2025-03-31", "presence"))
    path = write_log(tmp_path / "journal.csv", rows)
    log, report = load_activity(Source("activity", path), demo.communes, demo.qpv, demo.partners)
    data = dataclasses.replace(demo, activity=log, reports=[report])
    history = tmp_path / ev.PUBLICATIONS
    first = ev.evaluate(data, "99101", "2025-03-01", "2025-03-30", history=history)
    ev.write_json(first, tmp_path)
    assert first.headline["interventions"] == 180 and first.tables["jours"].frame.loc[0, "Interventions"] == 24
    alone = ev.evaluate(data, "99101", "2025-03-01", "2025-03-31")
    assert alone.headline["interventions"] == 181  # on its own, nothing small: the route runs through March 30
    second = ev.evaluate(data, "99101", "2025-03-01", "2025-03-31", history=history)
    assert second.headline["interventions"] is None
    assert second.tables["jours"].frame.loc[0, "Interventions"] is None  # Mondays: 25 − 24
    from diagnostic.report.evaluation_sections import confidentiality_note

    assert "autre évaluation publiée de ce service" in confidentiality_note(second)
    ev.write_json(second, tmp_path)
    periods = [r["periode"]["fin"] for r in json.loads(history.read_text(encoding="utf-8"))]
    assert periods == ["2025-03-30", "2025-03-31"]


def test_demo_publication_passes_the_audit(demo):
    e = ev.evaluate(demo, "99101", "2025-07-01", "2025-12-31")
    assert e.masked > 0 and e.headline["interventions"] > 1000  # large totals stay published


@pytest.mark.parametrize("threshold", ["1", "2"])
def test_low_threshold_refused_for_publication(tmp_path, capsys, threshold):
    code = cli.main(["evaluate", "--catalog", str(DEMO_CATALOG), "--commune", "99101", "--from", "2025-03-01",
                     "--to", "2025-03-31", "--output", str(tmp_path), "--threshold", threshold])
    assert code == 22 and "seuil" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


# --- 9. determinism and traces ----------------------------------------------------------------------------------


def test_kernels_keep_no_history(tmp_path, monkeypatch):
    """Neither papermill's kernel (run) nor a warm kernel (batch) writes IPython's history of cells and paths."""
    import nbformat

    from diagnostic.pipeline.execution import execute
    from diagnostic.pipeline.warm import WarmKernel

    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    notebook = tmp_path / "carnet.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("catalogue = '/donnees/catalogue.yaml'")]),
                   notebook)
    execute(notebook, tmp_path / "execute.ipynb", {}, cwd=tmp_path)
    kernel = WarmKernel()
    try:
        kernel.execute(notebook, tmp_path / "chaud.ipynb", {}, cwd=tmp_path)
        kernel.execute(notebook, tmp_path / "chaud.ipynb", {}, cwd=tmp_path)
    finally:
        kernel.shutdown()
    assert (tmp_path / "chaud.ipynb").exists()
    assert list((tmp_path / "ipython").rglob("history.sqlite")) == []


#: Files that carry the date or timings of their run (the report's date, the executed notebook, GeoPackage times, the
#: council note's date and its Word properties).
DATED = {"rapport.html", "diagnostic.ipynb", "territoire.gpkg", "note_conseil.docx"}


def test_outputs_identical_cold_and_warm_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIAGNOSTIC_CACHE", str(tmp_path / "cache"))
    for out in ("froid", "chaud"):  # the first run fills the empty cache, the second reads it
        assert cli.main(["run", "--catalog", str(DEMO_CATALOG), "--commune", "99101", "--output",
                         str(tmp_path / out)]) == 0
    cold, warm = tmp_path / "froid" / "99101", tmp_path / "chaud" / "99101"
    names = sorted(p.name for p in cold.iterdir())
    assert names == sorted(p.name for p in warm.iterdir())
    differ = [n for n in names if n not in DATED and (cold / n).read_bytes() != (warm / n).read_bytes()]
    assert differ == []


def test_csv_decimals_do_not_depend_on_how_the_table_was_made(tmp_path):
    from diagnostic.report.exports import _csv

    fresh = pd.DataFrame({"rank": [1, 2], "unmet": pd.Series([0.5, None], dtype=object), "note": ["a", ""]})
    cached = pd.DataFrame({"rank": [1, 2], "unmet": [0.5, float("nan")], "note": ["a", ""]})
    headers = {"rank": "rang", "unmet": "score_non_couvert", "note": "remarque"}
    a, b = _csv(fresh, headers, tmp_path / "a.csv").read_bytes(), _csv(cached, headers, tmp_path / "b.csv").read_bytes()
    assert a == b and b"0,5" in a


# --- 6. files outside what the catalogue may read -----------------------------------------------------------


def _catalog_with(demo: Path, edit) -> str:
    path = demo / "catalogue.yaml"
    catalog = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(catalog)
    path.write_text(yaml.safe_dump(catalog, allow_unicode=True), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../../../../etc/passwd"])
def test_paths_outside_the_catalogue_refused(demo_copy, capsys, target, monkeypatch):
    monkeypatch.delenv("DIAGNOSTIC_ALLOW_OUTSIDE", raising=False)
    catalog = _catalog_with(demo_copy, lambda c: c["sources"]["observations"][0].update(path=target))
    assert cli.main(["data", "check", "--catalog", catalog]) == 10
    err = capsys.readouterr().err
    assert "hors du dossier du catalogue" in err and "--allow-outside" in err and "root:" not in err


def test_symlink_out_of_the_folder_refused(demo_copy, capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("DIAGNOSTIC_ALLOW_OUTSIDE", raising=False)
    outside = tmp_path / "ailleurs.csv"
    shutil.copy(demo_copy / "observations.csv", outside)
    (demo_copy / "lien.csv").symlink_to(outside)
    catalog = _catalog_with(demo_copy, lambda c: c["sources"]["observations"][0].update(path="lien.csv"))
    assert cli.main(["data", "check", "--catalog", catalog]) == 10
    capsys.readouterr()
    monkeypatch.setenv("DIAGNOSTIC_ALLOW_OUTSIDE", "0")
    try:
        assert cli.main(["data", "check", "--catalog", catalog, "--allow-outside"]) == 0
    finally:
        os.environ.pop("DIAGNOSTIC_ALLOW_OUTSIDE", None)


# --- 8. tracebacks and wrong exit codes ------------------------------------------------------------------------


@pytest.mark.parametrize(("edit", "code", "words"), [
    (lambda c: c["sources"]["services"][2].update(crs="EPSG:99999"), 17, "EPSG:99999"),
    (lambda c: c["sources"]["communes"].update(path="bpe.csv"), 12, "bpe.csv"),
    (lambda c: c["sources"]["qpv_indicators"].update(indicators={}), 10, "indicators"),
    (lambda c: c["sources"]["qpv_indicators"]["indicators"].update(poverty_rate=12), 10, "poverty_rate"),
    (lambda c: c["sources"]["services"][2].update(tolerance_m="beaucoup"), 10, "tolerance_m"),
    (lambda c: c["sources"]["qpv"].update(colums=c["sources"]["qpv"].pop("columns")), 10, "« columns »"),
    (lambda c: c.update(nmae="x"), 10, "« name »"),
])
def test_catalogue_mistakes_give_french_errors(demo_copy, capsys, edit, code, words):
    catalog = _catalog_with(demo_copy, edit)
    assert cli.main(["data", "check", "--catalog", catalog]) == code
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_command_line_mistakes_give_french_errors(demo_copy, tmp_path, capsys):
    catalog = str(demo_copy / "catalogue.yaml")
    run = ["run", "--catalog", catalog, "--commune", "99101"]
    assert cli.main(["data", "check", "--catalog", str(demo_copy)]) == 10  # a folder
    assert "catalogue.yaml" in capsys.readouterr().err
    assert cli.main([*run, "--output", str(tmp_path), "--indicator", "foo"]) == 22
    assert "poverty_rate" in capsys.readouterr().err
    (tmp_path / "fichier").write_text("x")
    assert cli.main([*run, "--output", str(tmp_path / "fichier")]) == 22
    assert cli.main([*run, "--output", str(tmp_path), "--needs-rules", str(tmp_path / "absent.yaml")]) == 11
    (tmp_path / "casse.yaml").write_text("poids: [", encoding="utf-8")
    assert cli.main([*run, "--output", str(tmp_path), "--needs-rules", str(tmp_path / "casse.yaml")]) == 10
    locked = tmp_path / "lecture_seule"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if not os.access(locked, os.W_OK):  # root writes anywhere
            assert cli.main([*run, "--output", str(locked / "sortie")]) == 22
    finally:
        locked.chmod(0o755)
    assert "Traceback" not in capsys.readouterr().err


def test_nd_is_not_statistical_secrecy():
    from diagnostic.io.sources._io import to_number

    values, secret = to_number(pd.Series(["12,5", "nd", "s"]), Path("x.csv"), "tp60")
    assert values.isna().tolist() == [False, True, True] and secret.tolist() == [False, False, True]


def test_latin1_officer_text_read(tmp_path):
    from diagnostic.report.export import officer_text

    (tmp_path / "contexte.md").write_bytes("Élus et habitants réunis à l'école".encode("cp1252"))
    assert "Élus et habitants réunis" in officer_text(tmp_path, "contexte").data
