"""Evaluation of a mediation service: activity log checks, indicators with known answers, report offline."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pandas as pd
import pytest

from diagnostic.analysis.evaluation import STEMS, Period, Table, compute, key_values, suppress
from diagnostic.errors import (
    ConfidentialityError,
    OutOfTerritoryError,
    ParameterError,
    UnknownCommuneError,
    ValueFormatError,
)
from diagnostic.io.catalog import PROJECT_ROOT, Source
from diagnostic.io.sources.activity import DEFAULT_COLUMNS, load_activity
from tests.util import DEMO_CATALOG, HEADER, log_row, write_log

# A hand-made log: March 2025 (evaluated) and February 2025 (previous period).
MARCH = (
    [log_row(f"2025-03-{d:02d}", "presence") for d in (1, 3, 8, 10, 15, 22)]
    + [log_row("2025-03-04", "presence", "QN09902B"), log_row("2025-03-18", "presence", "QN09902B")]
    + [log_row("2025-03-05", "conflit", sous_type="temps_reel", issue="résolu"),
       log_row("2025-03-06", "conflit", sous_type="navette", issue="resolu"),
       log_row("2025-03-07", "conflit", sous_type="table ronde", issue="en cours")]
    + [log_row("2025-03-02", "veille", sous_type="technique", service_signale="Éclairage public",
            date_resolution="2025-03-06"),
       log_row("2025-03-10", "veille", sous_type="technique", service_signale="Éclairage public",
            date_signalement="10/03/2025", date_resolution="2025-03-20"),
       log_row("2025-03-25", "veille", sous_type="technique", service_signale="Propreté urbaine"),
       log_row("2025-03-28", "veille", sous_type="technique", service_signale="Propreté urbaine",
            date_resolution="2025-04-05")]
    + [log_row("2025-03-12", "mise en relation", partenaire="A07", domaine="acces_droits", issue="orienté"),
       log_row("2025-03-13", "mise_en_relation", partenaire="Z99", domaine="sante", issue="orienté")]
)
FEBRUARY = [log_row(f"2025-02-{d:02d}", "presence") for d in (3, 10, 17, 24)] + [
    log_row("2025-02-12", "conflit", sous_type="temps_reel", issue="sans suite")]


@pytest.fixture
def load(demo, tmp_path):
    """Write rows to a CSV and load it against the demo territory and its partner registry."""

    def run(rows, header=HEADER, **options):
        path = write_log(tmp_path / "journal.csv", rows, header)
        return load_activity(Source("activity", path, options=options), demo.communes, demo.qpv, demo.partners)

    return run


@pytest.fixture
def march(load, demo):
    log, report = load(MARCH + FEBRUARY)
    return log, report, demo.qpv_in("99101").sort_values("code_qp")


# --- the loader ----------------------------------------------------------------------------------


def test_template_headers_are_the_loader_defaults():
    header = (PROJECT_ROOT / "templates" / "journal_activite_modele.csv").read_text(encoding="utf-8").strip()
    assert set(header.split(";")) == set(DEFAULT_COLUMNS.values())


def test_log_read_with_codes_labels_and_accents(march):
    log, report, _ = march
    assert len(log) == len(MARCH) + len(FEBRUARY) == report.rows_kept
    assert set(log["activity"]) == {"presence", "conflit", "veille", "mise_en_relation"}
    assert set(log.loc[log["activity"] == "conflit", "subtype"]) == {"temps_reel", "navette", "table_ronde"}
    assert (log["weekday"].iloc[0], log["hour"].iloc[0]) == (5, 18)  # 1 March 2025 was a Saturday
    assert log.loc[log["service"] != "", "reported_on"].notna().all()  # defaults to the intervention date


def test_unknown_partner_is_kept_and_counted(march):
    log, report, _ = march
    row = log[log["partner_id"] == "Z99"]
    assert len(row) == 1 and not row["partner_known"].iloc[0]
    assert any("1 intervention(s)" in w and "Z99" in w for w in report.warnings)


def test_impossible_date(load):
    with pytest.raises(ValueFormatError) as err:
        load([log_row("2025-03-01", "presence"), log_row("2025-02-30", "presence")])
    assert err.value.column == "date" and err.value.rows == [3]


def test_impossible_hour(load):
    with pytest.raises(ValueFormatError) as err:
        load([log_row("2025-03-01", "presence", heure="25:10")])
    assert err.value.column == "heure"


def test_resolution_before_notification(load):
    with pytest.raises(ValueFormatError) as err:
        load([log_row("2025-03-10", "veille", service_signale="Éclairage public", date_resolution="2025-03-01")])
    assert err.value.column == "date_resolution" and err.value.rows == [2]


def test_unknown_qpv(load):
    with pytest.raises(ValueFormatError) as err:
        load([log_row("2025-03-01", "presence", qpv="QN09999Z")])
    assert err.value.column == "qpv" and "QN09999Z" in err.value.message


def test_unknown_activity(load):
    with pytest.raises(ValueFormatError) as err:
        load([log_row("2025-03-01", "animation")])
    assert err.value.column == "activite"


def test_coordinates_outside_the_territory(load, demo):
    inside = demo.qpv.set_index("code_qp").geometry["QN09901A"].representative_point()
    rows = [log_row("2025-03-01", "presence", "", x=f"{inside.x:.1f}", y=f"{inside.y:.1f}"),
            log_row("2025-03-02", "presence", "", x="650000", y="6860000")]
    with pytest.raises(OutOfTerritoryError) as err:
        load(rows)
    assert err.value.rows == [3]
    log, _ = load(rows[:1])
    assert log["code_qp"].iloc[0] == "QN09901A" and log["insee_com"].iloc[0] == "99101"


@pytest.mark.parametrize("column", ["nom", "Prénom", "téléphone", "e-mail", "Courriel", "adresse_personnelle",
                                    "date de naissance"])
def test_personal_data_column_refused(load, column):
    with pytest.raises(ConfidentialityError) as err:
        load([log_row("2025-03-01", "presence", **{column: "x"})], header=HEADER + [column])
    assert err.value.column == column


def test_partner_name_column_is_not_personal(load):
    log, _ = load([log_row("2025-03-01", "presence", nom_partenaire="CAF")], header=HEADER + ["nom_partenaire"])
    assert len(log) == 1


@pytest.mark.parametrize("text", ["rappeler au 06 12 34 56 78", "tél. +33 6.12.34.56.78", "ecrire a jean.d@example.fr"])
def test_phone_or_email_in_a_comment_refused(load, text):
    rows = [log_row("2025-03-01", "presence", commentaire="RAS"), log_row("2025-03-02", "presence", commentaire=text)]
    with pytest.raises(ConfidentialityError) as err:
        load(rows, header=HEADER + ["commentaire"])
    assert err.value.column == "commentaire" and err.value.rows == [3]
    assert "12 34" not in str(err.value) and "@" not in str(err.value)


# --- indicators on the hand-made log -------------------------------------------------------------


def test_previous_period():
    assert Period.parse("2025-03-01", "2025-03-31").previous() == Period(dt.date(2025, 2, 1), dt.date(2025, 2, 28))
    assert Period.parse("2025-07-01", "2025-12-31").previous() == Period(dt.date(2025, 1, 1), dt.date(2025, 6, 30))
    assert Period.parse("2025-03-10", "2025-03-19").previous() == Period(dt.date(2025, 2, 28), dt.date(2025, 3, 9))
    with pytest.raises(ParameterError):
        Period.parse("2025-03-10", "2025-03-01")
    with pytest.raises(ParameterError):
        Period.parse("2025-02-30", "2025-03-01")


def test_activity_and_period_comparison(march):
    log, _, qpv = march
    tables = compute(log, Period.parse("2025-03-01", "2025-03-31"), qpv)
    act = tables["activite"].frame.set_index("Activité")
    assert act.loc["Présence active de proximité", ["Interventions", "Période précédente"]].tolist() == [8, 4]
    assert act.loc["Présence active de proximité", "Évolution (%)"] == 100.0
    assert act.loc["Gestion de conflits", "Évolution (%)"] == 200.0
    assert act.loc["Présence active de proximité", "Heures"] == 8
    values = key_values(tables)
    assert values["interventions"] == (17, 17) and values["interventions_periode_precedente"] == (5, 5)
    assert values["evolution_pct"][0] == 240.0


def test_conflicts_watch_delays_and_coverage(march):
    log, _, qpv = march
    tables = compute(log, Period.parse("2025-03-01", "2025-03-31"), qpv, {"A07": "France services"})
    conflicts = tables["conflits"].frame.set_index("Type de conflit")
    assert conflicts["Conflits"].sum() == 3 and conflicts["Résolu"].sum() == 2
    assert conflicts.loc["Table ronde", "En cours"] == 1
    watch = tables["veille"].frame.set_index("Service signalé")
    assert watch.loc["Éclairage public"].tolist()[:4] == [2, 2, 100.0, 7.0]  # delays 4 and 10 days
    # Resolved on 5 April: still open on 31 March, 3 days after its report.
    assert watch.loc["Propreté urbaine", ["Résolus", "En attente", "Plus ancienne attente (jours)"]].tolist() == [0, 2, 6]
    util = tables["utilite_sociale"].frame.set_index("Indicateur")
    assert util.loc["Part des signalements résolus (%)", "Valeur"] == 50.0
    assert util.loc["Délai médian de résolution (jours)", "Valeur"] == 7.0
    assert util.loc["Part des conflits résolus (%)", ["Valeur", "Période précédente"]].tolist() == [66.7, 0.0]
    assert util.loc["Part vers un partenaire du registre (%)", "Valeur"] == 50.0
    cover = tables["couverture"].frame
    assert cover[["QPV couverts", "Part couverte (%)"]].iloc[0].tolist() == [2, 66.7]
    handoffs = tables["mises_en_relation"].frame["Partenaire"].tolist()
    assert set(handoffs) == {"France services", "Z99 (hors registre)"}
    assert len(tables["signalements_en_attente"].frame) == 2


def test_suppression_below_threshold():
    counts = [12, 3, 0, 7]
    records = [frozenset(range(i * 100, i * 100 + n)) for i, n in enumerate(counts)]
    sets = {(i, "n"): (r,) for i, r in enumerate(records)} | {(4, "n"): (frozenset().union(*records),)}
    table = Table("t", "T", pd.DataFrame({"lieu": [*"abcd", "total"], "n": [*counts, 22],
                                          "part": [54.5, 13.6, 0, 31.8, 100]}),
                  ("n",), {"part": ("n",)}, sets=sets)
    out = suppress(table, 5)
    # 3 is under the threshold; the total would give it back (22 − 12 − 7), so the smallest other (7) goes too;
    # 0 stays.
    assert out.frame["n"].tolist() == [12, None, 0, None, 22]
    assert out.masked["part"].tolist() == [False, True, False, True, False]
    assert suppress(table, 2).frame["n"].tolist() == [12, 3, 0, 7, 22]


def test_suppression_on_the_hand_made_log(march):
    log, _, qpv = march
    tables = compute(log, Period.parse("2025-03-01", "2025-03-31"), qpv)
    act = suppress(tables["activite"], 5).frame.set_index("Activité")
    assert act.loc["Présence active de proximité", "Interventions"] == 8
    assert act.loc["Gestion de conflits", ["Interventions", "Évolution (%)", "Heures"]].isna().all()
    assert act.loc["Concertation et projets collectifs", "Interventions"] == 0


# --- the demo and the report ---------------------------------------------------------------------


def test_demo_log_has_realistic_patterns(demo):
    log = demo.activity
    assert 1500 <= len(log) <= 3000
    days = log["weekday"].value_counts()
    assert days[5] > days[0] > days[6]  # Saturdays busiest, Sundays quietest
    months = log["date"].dt.month.value_counts()
    assert months[7] > months[2] and months[12] > months[11]
    assert (log["hour"] >= 17).mean() > 0.5
    presence = log[log["activity"] == "presence"]["code_qp"].value_counts()
    assert presence.idxmax() == "QN09901A"
    assert log["partner_known"].sum() > 100 and log["partner_known"][log["partner_id"] != ""].all()


def test_parameters_checked_before_the_notebook(tmp_path):
    from diagnostic.pipeline.evaluate import run_evaluation

    with pytest.raises(UnknownCommuneError):
        run_evaluation(DEMO_CATALOG, "99999", "2025-01-01", "2025-01-31", tmp_path)
    with pytest.raises(ParameterError):
        run_evaluation(DEMO_CATALOG, "99101", "2025-13-01", "2025-12-31", tmp_path)
    with pytest.raises(ParameterError):
        run_evaluation(DEMO_CATALOG, "99101", "2025-02-01", "2025-01-01", tmp_path)
    with pytest.raises(ParameterError):
        run_evaluation(DEMO_CATALOG, "99101", "2025-01-01", "2025-01-31", tmp_path, mode="public")
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """The demo evaluation in both modes into one output folder (internal first), each executed once and exported."""
    from diagnostic.pipeline.evaluate import run_evaluation

    out = tmp_path_factory.mktemp("evaluation")
    return {mode: run_evaluation(DEMO_CATALOG, "99101", "2025-07-01", "2025-12-31", out, mode=mode)
            for mode in ("interne", "publication")}


def test_internal_and_publication_have_their_own_files(reports):
    folder = reports["publication"].parent
    assert folder == reports["interne"].parent and folder.name == "evaluation" and folder.parent.name == "99101"
    assert sorted(p.name for p in folder.iterdir()) == [
        "evaluation.html", "evaluation.ipynb", "evaluation.json",
        "evaluation_interne.html", "evaluation_interne.ipynb", "evaluation_interne.json", "publications.json"]
    assert sorted(p.name for p in folder.parents[1].iterdir()) == [".diagnostic.lock", "99101"], "no leftover, no failure"
    internal = (folder / "evaluation_interne.html").read_text(encoding="utf-8")
    public = (folder / "evaluation.html").read_text(encoding="utf-8")
    assert "Document interne" in internal and "Document interne" not in public


def test_outputs_and_json_match_the_report(reports):
    for mode, html in reports.items():
        data = json.loads(html.with_suffix(".json").read_text(encoding="utf-8"))
        assert data["mode"] == mode and data["periode_precedente"] == {"debut": "2025-01-01", "fin": "2025-06-30"}
        assert data["secret"]["applique"] == (mode == "publication")
        assert html.with_suffix(".ipynb").is_file()
        total = data["chiffres_cles"]["interventions"]
        assert f"{total:,}".replace(",", "\u202f") in html.read_text(encoding="utf-8")
    public = json.loads((reports["publication"].parent / "evaluation.json").read_text(encoding="utf-8"))
    assert public["secret"]["cellules_masquees"] > 0 and "signalements_en_attente" not in public["tableaux"]
    counted = {"Interventions", "Période précédente", "Conflits", "Résolu", "Signalements", "En attente"}
    for table in public["tableaux"].values():
        for line in table["lignes"]:
            for column in counted & set(line):
                assert line[column] is None or line[column] == 0 or line[column] >= 5, (table["titre"], line)


def test_heat_map_has_a_legend_and_a_text_alternative(reports):
    """Screen and print maps share one legend: each cell's count falls in exactly one class and has its colour;
    the classes, QPV outlines and commune limit are named in the legend, the PNG's alt and the map's description."""
    import html as html_module
    import re
    from itertools import pairwise

    from diagnostic.report.evaluation_sections import HEAT_RAMP

    page = reports["publication"].read_text(encoding="utf-8")
    legend = re.search(r'<div class="diag-legende heat-legende">(.*?)</div></div>', page).group(1)
    assert "Interventions par maille de 250\u00a0m" in legend
    rows = re.findall(r'<i [^>]*background:(#\w+|transparent)[^>]*></i>([^<]+)', legend)
    classes = [(colour, html_module.unescape(label)) for colour, label in rows if colour != "transparent"]
    assert [label for colour, label in rows if colour == "transparent"] == ["Quartier prioritaire", "Limite de la commune"]
    assert 2 <= len(classes) <= 5 and {c for c, _ in classes} <= set(HEAT_RAMP)
    bounds = [tuple(int(v) for v in label.split(" – ")) if " – " in label else (int(label), int(label))
              for _, label in classes]
    assert all(a <= b < c for (a, b), (c, _) in pairwise(bounds))
    cells = [(colour, int(n)) for colour, n in re.findall(r'"colour": "(#\w+)", "tip": "(\d+) interventions', page)]
    assert len(cells) > 10 and min(n for _, n in cells) >= 5  # publication: cells under the threshold are left out
    for colour, n in cells:
        held = [c for (c, _), (low, high) in zip(classes, bounds) if low <= n <= high]
        assert held == [colour], (n, colour)
    alt = re.search(r'<img [^>]*alt="(Carte de chaleur[^"]+)"', page).group(1)
    described = re.search(r'<p [^>]*id="carte-chaleur-texte"[^>]*>([^<]+)</p>', page).group(1)
    assert alt == described and re.search(r'<div [^>]*aria-describedby="carte-chaleur-texte"', page)
    assert ", ".join(label for _, label in classes[:-1]) + " et " + classes[-1][1] in html_module.unescape(alt)
    assert f"La maille la plus fréquentée ({max(n for _, n in cells)} interventions)" in alt


@pytest.mark.browser
@pytest.mark.parametrize("mode", ["publication", "interne"])
def test_report_renders_offline(reports, offline_page, mode):
    page, log = offline_page(reports[mode])
    assert log.external_requests == []
    assert log.console_errors == [] and log.page_errors == []
    assert page.locator(".banner.fictional").count() == 1
    assert page.locator(".banner.internal").count() == (1 if mode == "interne" else 0)
    assert page.locator(".cell-error").count() == 0
    assert page.locator(".interactive .leaflet-container").count() == 1
    assert page.locator(".leaflet-interactive").count() > 10  # grid cells drawn by Leaflet
    images = page.locator("main img")
    assert images.count() == 3
    assert all(images.nth(i).get_attribute("alt") for i in range(3))
    assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    masked = page.get_by_text("masqué", exact=True).count()
    assert (masked > 0) == (mode == "publication")


def test_failed_evaluation_keeps_the_good_one(reports, tmp_path, monkeypatch, capsys):
    """A failing section: code 30 naming it, the notebook kept in _echecs/, every earlier file byte-identical."""
    import nbformat

    from diagnostic import cli
    from diagnostic.pipeline import evaluate as evaluate_cli
    out = tmp_path / "out"
    shutil.copytree(reports["publication"].parents[1], out / "99101")
    before = {p.name: p.read_bytes() for p in (out / "99101" / "evaluation").iterdir()}
    nb = nbformat.read(evaluate_cli.NOTEBOOK, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("## Activité"))
    nb.cells[index + 1].source = "raise RuntimeError('panne simulée')"
    nbformat.write(nb, tmp_path / "broken.ipynb")
    monkeypatch.setattr(evaluate_cli, "NOTEBOOK", tmp_path / "broken.ipynb")
    for mode in ("publication", "interne"):
        code = cli.main(["evaluate", "--catalog", str(DEMO_CATALOG), "--commune", "99101", "--from", "2025-07-01",
                         "--to", "2025-12-31", "--output", str(out), "--mode", mode])
        err = capsys.readouterr().err
        kept = out / "_echecs" / "99101" / "evaluation" / f"{STEMS[mode]}.ipynb"
        assert code == 30 and "la section « Activité par type » a échoué" in err and "panne simulée" in err
        assert str(kept) in err and "panne simulée" in kept.read_text(encoding="utf-8")
    assert sorted(p.name for p in kept.parent.iterdir()) == ["evaluation.ipynb", "evaluation_interne.ipynb"]
    assert {p.name: p.read_bytes() for p in (out / "99101" / "evaluation").iterdir()} == before
    assert sorted(p.name for p in out.iterdir()) == [".diagnostic.lock", "99101", "_echecs"], "no leftover"


def test_evaluation_refused_while_a_batch_writes(tmp_path, capsys):
    from diagnostic import cli
    from diagnostic._fs import output_lock

    with output_lock(tmp_path, exclusive=True):
        code = cli.main(["evaluate", "--catalog", str(DEMO_CATALOG), "--commune", "99101", "--from", "2025-07-01",
                         "--to", "2025-12-31", "--output", str(tmp_path)])
    assert code == 22 and "un traitement par lot écrit déjà dans ce dossier de sortie" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == [".diagnostic.lock"]
