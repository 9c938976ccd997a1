"""What residents and partners said: spreadsheets, questionnaires, marches exploratoires, meetings, the report."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from diagnostic.errors import CatalogError, ConfidentialityError, ValueFormatError
from diagnostic.io.catalog import Source
from diagnostic.io.sources._io import read_table
from diagnostic.io.sources.activity import load_activity
from diagnostic.io.sources.partners import load_partners
from tests.util import DEMO_DIR


def _to_xlsx(frames: dict[str, pd.DataFrame], path: Path, numbers: bool = True) -> Path:
    """Write text tables as a workbook the way a spreadsheet holds them (numbers as numbers)."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, frame in frames.items():
        sheet = book.create_sheet(name)
        sheet.append(list(frame.columns))
        for row in frame.itertuples(index=False):
            cells = []
            for v in row:
                try:
                    cells.append(float(v) if numbers and v not in ("", None) and not str(v).startswith("0") else v)
                except ValueError:
                    cells.append(v)
            sheet.append(cells)
    book.save(path)
    return path


def _csv(name: str) -> pd.DataFrame:
    return read_table(DEMO_DIR / name, name)


# --- Spreadsheets -------------------------------------------------------------------------------------------


def test_xlsx_and_csv_registry_give_identical_results(tmp_path, demo):
    book = _to_xlsx({"Relations": _csv("partenaires_relations.csv"), "Acteurs": _csv("partenaires.csv")},
                    tmp_path / "registre.xlsx")
    from_csv, _ = load_partners(Source("partners", DEMO_DIR / "partenaires.csv",
                                       options={"relations": str(DEMO_DIR / "partenaires_relations.csv")}),
                                demo.communes, demo.qpv)
    from_xlsx, report = load_partners(Source("partners", book, options={
        "sheet": "Acteurs", "relations": str(book), "relations_sheet": "Relations"}), demo.communes, demo.qpv)
    assert report.rows_read == 16 and len(from_xlsx.relations) == 25
    pd.testing.assert_frame_equal(from_csv.actors.drop(columns="geometry"), from_xlsx.actors.drop(columns="geometry"))
    a, b = from_csv.actors.geometry, from_xlsx.actors.geometry
    assert (a.geom_equals_exact(b, 1e-6) | (a.isna() & b.isna())).all() and a.notna().sum() == 13
    pd.testing.assert_frame_equal(from_csv.relations, from_xlsx.relations)


def test_xlsx_first_sheet_by_default_and_errors_name_the_sheet(tmp_path, demo):
    actors = _csv("partenaires.csv")
    actors.loc[3, "type"] = "boulangerie"
    book = _to_xlsx({"Feuil1": actors}, tmp_path / "acteurs.xlsx")
    with pytest.raises(ValueFormatError) as err:
        load_partners(Source("partners", book, options={"relations": str(DEMO_DIR / "partenaires_relations.csv")}),
                      demo.communes, demo.qpv)
    assert err.value.sheet == "Feuil1" and err.value.column == "type" and err.value.rows == [5]
    assert "Feuille : Feuil1" in str(err.value)
    with pytest.raises(CatalogError, match="Feuil1"):
        load_partners(Source("partners", book, options={"sheet": "Feuil2"}), demo.communes, demo.qpv)


def test_activity_log_from_xlsx_equals_csv(tmp_path, demo):
    log = _csv("journal_activite.csv").head(300)
    csv_path = tmp_path / "journal.csv"
    log.to_csv(csv_path, sep=";", index=False)
    book = _to_xlsx({"Journal": log}, tmp_path / "journal.xlsx")
    a, _ = load_activity(Source("activity", csv_path), demo.communes, demo.qpv, demo.partners)
    b, _ = load_activity(Source("activity", book), demo.communes, demo.qpv, demo.partners)
    assert len(a) == len(b) == 300
    pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))


def test_activity_xlsx_phone_number_refused_with_sheet(tmp_path, demo):
    log = _csv("journal_activite.csv").head(20)
    log.loc[6, "public"] = "rappeler au 06 12 34 56 78"
    book = _to_xlsx({"Journal": log}, tmp_path / "journal.xlsx")
    with pytest.raises(ConfidentialityError) as err:
        load_activity(Source("activity", book), demo.communes, demo.qpv)
    assert err.value.exit_code == 21 and err.value.rows == [8] and err.value.sheet == "Journal"


# --- Questionnaires ------------------------------------------------------------------------------------------

KOBO_HEADER = "quartier;_lieu_latitude;_lieu_longitude;problemes;commentaire;_id;_submission_time\n"
MAPPING = {
    "public": "habitants",
    "questions": {"date": "_submission_time", "qpv": "quartier", "comment": "commentaire", "id": "_id"},
    "answers": {"problemes": {
        "bruit": {"domaine": "espace_public", "type_probleme": "nuisances"},
        "bus": {"domaine": "transports", "type_probleme": "incivilites_transports"},
        "demarches": {"domaine": "acces_droits", "type_probleme": "non_recours_droits"},
    }},
    "citations": [3],
}


def _point_in(demo, code: str) -> tuple[str, str]:
    p = demo.qpv[demo.qpv["code_qp"] == code].to_crs("EPSG:4326").geometry.iloc[0].representative_point()
    return f"{p.y:.6f}", f"{p.x:.6f}"


def _survey(tmp_path, demo, rows: list[str], **options):
    from diagnostic.io.sources.questionnaires import load_questionnaire

    path = tmp_path / "export.csv"
    path.write_text(KOBO_HEADER + "".join(rows), encoding="utf-8")
    return load_questionnaire(Source("observations", path, format="questionnaire", options={**MAPPING, **options}),
                              demo.communes, demo.qpv)


def test_questionnaire_counts_by_hand(tmp_path, demo):
    lat, lon = _point_in(demo, "QN09903C")
    rows = [
        "QN09901A;;;bruit bus;;1;2025-03-14T18:02:11.000+01:00\n",        # 2 observations in Les Hauts de Lys
        "Centre Ancien;;;demarches;;2;2025-03-15T10:00:00\n",              # QPV given by its name
        f"QN09901A;{lat};{lon};bus;Le bus du soir ne passe plus;3;14/03/2025 09:12\n",  # the point wins: QN09903C
        "autre;;;bruit;;4;2025-03-16T10:00:00\n",                           # outside the territory
        ";48.8566;2.3522;bus;;5;2025-03-16T11:00:00\n",                     # recorded in Paris: outside
        ";;;demarches aucun;;6;2025-03-17T11:00:00\n",                      # no place
    ]
    obs, respondents, report = _survey(tmp_path, demo, rows)
    assert report.rows_read == 6 and report.rows_kept == 3
    assert respondents["status"].value_counts().to_dict() == {"territoire": 3, "hors territoire": 2,
                                                              "lieu non précisé": 1}
    assert list(respondents["code_qp"][:3]) == ["QN09901A", "QN09902B", "QN09903C"]
    assert len(obs) == 4 and set(obs["source_type"]) == {"questionnaire"}
    by = obs.groupby(["code_qp", "domain", "problem"])["respondent"].nunique()
    assert by.to_dict() == {("QN09901A", "espace_public", "nuisances"): 1,
                            ("QN09901A", "transports", "incivilites_transports"): 1,
                            ("QN09902B", "acces_droits", "non_recours_droits"): 1,
                            ("QN09903C", "transports", "incivilites_transports"): 1}
    assert respondents.loc[respondents["quoted"], "comment"].tolist() == ["Le bus du soir ne passe plus"]
    assert any("« problemes » sans correspondance" in w and "aucun" in w for w in report.warnings)
    assert any("2 réponse(s) hors du territoire" in w and "lignes 5, 6" in w for w in report.warnings)


def test_questionnaire_xlsx_equals_csv_and_kobo_geolocation(tmp_path, demo):
    from diagnostic.io.sources.questionnaires import load_questionnaire

    lat, lon = _point_in(demo, "QN09902B")
    frame = pd.DataFrame({"quartier": ["", "QN09901A"], "_geolocation": [f"[{lat}, {lon}]", "[None, None]"],
                          "problemes": ["bruit", "demarches bus"], "commentaire": ["", ""], "_id": ["10", "11"],
                          "_submission_time": ["2025-04-01T10:00:00", "2025-04-02T10:00:00"]})
    csv_path = tmp_path / "kobo.csv"
    frame.to_csv(csv_path, sep=";", index=False)
    book = _to_xlsx({"Réponses": frame}, tmp_path / "kobo.xlsx", numbers=False)
    a = load_questionnaire(Source("observations", csv_path, options=MAPPING), demo.communes, demo.qpv)
    b = load_questionnaire(Source("observations", book, options=MAPPING), demo.communes, demo.qpv)
    pd.testing.assert_frame_equal(a[0].drop(columns="origin"), b[0].drop(columns="origin"))
    assert list(a[1]["code_qp"]) == ["QN09902B", "QN09901A"] and len(a[0]) == 3


def test_questionnaire_with_a_phone_number_in_a_comment_is_refused(tmp_path, demo):
    rows = ["QN09901A;;;bruit;;1;2025-03-14T18:02:11\n",
            "QN09901A;;;bus;appelez-moi au 06.12.34.56.78 le soir;2;2025-03-14T18:05:11\n"]
    with pytest.raises(ConfidentialityError) as err:
        _survey(tmp_path, demo, rows)
    assert err.value.exit_code == 21 and err.value.column == "commentaire" and err.value.rows == [3]
    assert "34.56" not in str(err.value)  # the number itself is never repeated (the path may hold « 06 »)


def test_questionnaire_column_named_by_the_mapping_but_absent(tmp_path, demo):
    from diagnostic.errors import MissingColumnError

    rows = ["QN09901A;;;bruit;;1;2025-03-14T18:02:11\n"]
    answers = {"probleme": MAPPING["answers"]["problemes"]}
    with pytest.raises(MissingColumnError) as err:
        _survey(tmp_path, demo, rows, answers=answers)
    assert err.value.exit_code == 14 and err.value.column == "probleme" and "« problemes » existe" in err.value.hint


def test_questionnaire_mapping_to_unknown_problem_is_a_catalogue_error(tmp_path, demo):
    answers = {"problemes": {"bruit": {"domaine": "espace_public", "type_probleme": "tapage"}}}
    with pytest.raises(CatalogError, match="tapage"):
        _survey(tmp_path, demo, ["QN09901A;;;bruit;;1;2025-03-14T18:02:11\n"], answers=answers)


def test_questionnaire_models_match_the_catalogue_example():
    """Every question and choice the example mapping names exists in the shipped XLSForm models."""
    import yaml

    root = Path(__file__).resolve().parents[2] / "templates"
    example = yaml.safe_load((root / "questionnaires_catalogue_exemple.yaml").read_text(encoding="utf-8"))
    for entry, model in zip(example["observations"], ("questionnaire_habitants.xlsx", "questionnaire_partenaires.xlsx")):
        book = openpyxl.load_workbook(root / model, read_only=True)
        assert {"survey", "choices", "settings"} <= set(book.sheetnames)
        survey = {r[1]: r[0] for r in book["survey"].iter_rows(min_row=2, values_only=True) if r[1]}
        choices = {(r[0], r[1]) for r in book["choices"].iter_rows(min_row=2, values_only=True)}
        for role, column in entry["questions"].items():
            assert column.startswith("_") or column in survey, (model, role, column)
        for column, answers in entry["answers"].items():
            list_name = survey[column].split()[1]
            assert {(list_name, a) for a in answers} <= choices, (model, column)
        assert all(t.split()[0] in {"note", "select_one", "select_multiple", "geopoint", "text"}
                   for t in survey.values())


# --- Marches exploratoires -----------------------------------------------------------------------------------

def _gpx(tmp_path, demo, waypoints: str, name: str = "marche.gpx") -> Path:
    lat, lon = _point_in(demo, "QN09901A")
    lat2, lon2 = float(lat) + 0.001, float(lon) + 0.001
    path = tmp_path / name
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="OsmAnd" xmlns="http://www.topografix.com/GPX/1/1">
 <metadata><name>Marche des Hauts</name><time>2025-04-17T18:00:00Z</time></metadata>
 {waypoints.format(lat=lat, lon=lon)}
 <trk><name>Trace</name><trkseg>
  <trkpt lat="{lat}" lon="{lon}"><time>2025-04-17T18:00:00Z</time></trkpt>
  <trkpt lat="{lat2}" lon="{lon2}"><time>2025-04-17T18:20:00Z</time></trkpt>
 </trkseg></trk>
</gpx>""", encoding="utf-8")
    return path


def test_gpx_walk_counts_by_hand(tmp_path, demo):
    from diagnostic.io.sources.marches import load_marche

    stops = ('<wpt lat="{lat}" lon="{lon}"><name>Square du 12</name><cmt>Lampadaires en panne, sentiment de peur</cmt></wpt>'
             '<wpt lat="{lat}" lon="{lon}"><name>Abribus</name><type>transports/incivilites_transports</type></wpt>'
             '<wpt lat="{lat}" lon="{lon}"><name>Jardin</name><cmt>Un lieu agréable</cmt></wpt>'
             '<wpt lat="48.8566" lon="2.3522"><name>Ailleurs</name><cmt>bruit</cmt></wpt>')
    obs, walk, report = load_marche(Source("observations", _gpx(tmp_path, demo, stops), format="marche",
                                           options={"citations": [1]}), demo.communes, demo.qpv)
    assert walk.name == "Marche des Hauts" and walk.date == pd.Timestamp("2025-04-17")
    assert walk.route is not None and walk.route.length > 100  # metres, Lambert-93
    assert report.rows_read == 4 and report.rows_kept == 3
    assert list(walk.stops["status"]) == ["territoire"] * 3 + ["hors territoire"]
    assert list(walk.stops["code_qp"][:3]) == ["QN09901A"] * 3
    # « lampadaires » → dégradations, « peur » → insécurité ressentie; the declared type; « Jardin »: no keyword.
    assert sorted(zip(obs["stop"], obs["problem"])) == [(1, "degradations"), (1, "insecurite_ressentie"),
                                                        (2, "incivilites_transports")]
    assert set(obs["source_type"]) == {"marche exploratoire"}
    assert any("étapes 3" in w for w in report.warnings) and any("hors du territoire" in w for w in report.warnings)
    assert walk.stops["quoted"].tolist() == [True, False, False, False]


def test_gpx_without_waypoints_draws_the_route_only(tmp_path, demo):
    from diagnostic.io.sources.marches import load_marche

    obs, walk, report = load_marche(Source("observations", _gpx(tmp_path, demo, "")), demo.communes, demo.qpv)
    assert obs.empty and walk.stops.empty and walk.route is not None
    assert any("aucune étape" in w for w in report.warnings)
    from diagnostic.report import maps
    html = maps.add_walks(_blank_map(), [walk]).get_root().render()
    assert "diag-marche" in html and "diag-etape" not in html


def _blank_map():
    import folium

    return folium.Map(location=[46.5, -3.0], tiles=None)


def test_gpx_with_a_phone_number_or_an_author_is_refused(tmp_path, demo):
    from diagnostic.io.sources.marches import load_marche

    phone = '<wpt lat="{lat}" lon="{lon}"><name>Hall</name><cmt>gardien : 06 12 34 56 78</cmt></wpt>'
    with pytest.raises(ConfidentialityError) as err:
        load_marche(Source("observations", _gpx(tmp_path, demo, phone)), demo.communes, demo.qpv)
    assert err.value.exit_code == 21 and err.value.rows == [1]
    author = tmp_path / "auteur.gpx"
    author.write_text(_gpx(tmp_path, demo, "").read_text(encoding="utf-8").replace(
        "<metadata>", "<metadata><author><name>Jeanne Martin</name></author>"), encoding="utf-8")
    with pytest.raises(ConfidentialityError, match="auteur"):
        load_marche(Source("observations", author), demo.communes, demo.qpv)


def test_geojson_walk(tmp_path, demo):
    import json

    from diagnostic.io.sources.marches import load_marche

    lat, lon = (float(v) for v in _point_in(demo, "QN09902B"))
    features = [
        {"type": "Feature", "properties": {"nom": "Marche du Centre Ancien", "date": "2025-05-02"},
         "geometry": {"type": "LineString", "coordinates": [[lon, lat], [lon + 0.001, lat]]}},
        {"type": "Feature", "properties": {"nom": "Place", "commentaire": "Dépôts sauvages <b>partout</b>"},
         "geometry": {"type": "Point", "coordinates": [lon, lat]}},
        {"type": "Feature", "properties": {"nom": "Rue", "domaine": "sante", "type_probleme": "isolement"},
         "geometry": {"type": "Point", "coordinates": [lon, lat]}},
    ]
    path = tmp_path / "umap.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    obs, walk, _ = load_marche(Source("observations", path), demo.communes, demo.qpv)
    assert walk.name == "Marche du Centre Ancien" and walk.date == pd.Timestamp("2025-05-02")
    assert sorted(zip(obs["stop"], obs["domain"], obs["problem"])) == [
        (1, "espace_public", "degradations"), (2, "sante", "isolement")]
    html = _blank_map()
    from diagnostic.report import maps
    page = maps.add_walks(html, [walk]).get_root().render()
    assert "<b>partout</b>" not in page and "&lt;b&gt;partout" in page.replace("\\u0026", "&").replace(
        "\\u003c", "<").replace("\\u003e", ">")


# --- Meetings ------------------------------------------------------------------------------------------------

MEETING = """---
date: 2025-04-10
type: réunion
titre: Conseil citoyen
qpv: Centre Ancien
participants: {habitants: 9, bailleur social: 1, association: 2}
themes:
  - {domaine: espace_public, type_probleme: conflits_usage}
  - sante/isolement
---
Compte rendu.

> Les anciens restent chez eux.
"""


def test_meeting_markdown_and_csv_counts(tmp_path, demo):
    from diagnostic.io.sources.meetings import load_meetings

    note = tmp_path / "reunion.md"
    note.write_text(MEETING, encoding="utf-8")
    obs, meetings, _ = load_meetings(Source("observations", note), demo.communes, demo.qpv)
    m = meetings.iloc[0]
    assert (m["residents"], m["partners"], m["code_qp"], m["kind"]) == (9, 3, "QN09902B", "réunion")
    assert m["participants"] == {"habitants": 9, "bailleur": 1, "association": 2}
    assert m["quotes"] == ["Les anciens restent chez eux."]
    assert sorted(obs["problem"]) == ["conflits_usage", "isolement"] and set(obs["source_type"]) == {"réunion"}
    table = tmp_path / "entretiens.csv"
    table.write_text("date;type;titre;commune;participants;themes;citations\n"
                     "2025-05-06;entretien;Bailleur;Mont-Clair;bailleur: 1;habitat/degradations;\n"
                     "06/05/2025;réunion;CLSPD;99101;police: 1 | commune: 2;transports/incivilites_transports | "
                     "jeunesse/conflits_usage;Trois chauffeurs ont demandé à changer de ligne.\n", encoding="utf-8")
    obs, meetings, report = load_meetings(Source("observations", table), demo.communes, demo.qpv)
    assert report.rows_read == 2 and list(meetings["partners"]) == [1, 3] and list(meetings["residents"]) == [0, 0]
    assert list(meetings["insee_com"]) == ["99103", "99101"] and len(obs) == 3
    assert list(obs["source_type"]) == ["entretien", "réunion", "réunion"]


@pytest.mark.parametrize(("change", "error"), [
    ("participants: {habitants: 9, bailleur social: 1, association: 2}", None),
    ("participants: [Jeanne Martin, Paul Durand]", ConfidentialityError),
    ("participants: {habitants: Jeanne et Paul}", ConfidentialityError),
    ("participants: {boulangers: 2}", ValueFormatError),
])
def test_meeting_participants_are_counted_never_named(tmp_path, demo, change, error):
    from diagnostic.io.sources.meetings import load_meetings

    note = tmp_path / "reunion.md"
    note.write_text(MEETING.replace("participants: {habitants: 9, bailleur social: 1, association: 2}", change),
                    encoding="utf-8")
    source = Source("observations", note)
    if error is None:
        load_meetings(source, demo.communes, demo.qpv)
    else:
        with pytest.raises(error):
            load_meetings(source, demo.communes, demo.qpv)


def test_meeting_with_an_e_mail_is_refused(tmp_path, demo):
    from diagnostic.io.sources.meetings import load_meetings

    note = tmp_path / "reunion.md"
    note.write_text(MEETING + "Contact : jeanne.martin@exemple.fr\n", encoding="utf-8")
    with pytest.raises(ConfidentialityError):
        load_meetings(Source("observations", note), demo.communes, demo.qpv)


# --- The demo ------------------------------------------------------------------------------------------------

def test_demo_consultation_figures(demo):
    from diagnostic.analysis.consultation import heard, quotations, stops

    c = demo.consultation
    assert len(c.respondents) == 118  # 42 + 28 + 40 in the three QPVs, 5 « autre », 3 without a quarter
    assert c.respondents["status"].value_counts().to_dict() == {"territoire": 110, "hors territoire": 7,
                                                                "lieu non précisé": 1}
    assert len(c.walks) == 1 and len(c.walks[0].stops) == 10 and len(c.meetings) == 2
    assert set(stops(c)["code_qp"]) == {"QN09903C"}
    who = heard(c)
    # Every answer counts as heard, in the territory or not; walk and meeting participants by type.
    assert (who["residents"], who["partners"]) == (118 + 11 + 9, 2 + 3 + 6)
    quotes = quotations(c)
    assert len(quotes) == 3 + 2 + 2 + 1  # questionnaire, walk stops, the two meetings' quotes
    assert quotes["text"].iloc[2] == "Les halls sont occupés tous les soirs, on n'ose plus rentrer tard."
    obs = demo.observations
    assert obs.loc[obs["source_type"] == "marche exploratoire", "origin"].eq("marche_garenne_tilleuls.gpx").sum() == 12
    # by hand: 10 stops, « Jardin partagé » matches no keyword, « Passage sous la voie » two problems,
    # « Chemin du collège » three: 1 + 1 + 2 + 1 + 1 + 1 + 0 + 3 + 1 + 1


def test_demo_report_shows_who_was_heard_and_the_route(demo_report):
    html = (demo_report / "rapport.html").read_text(encoding="utf-8")
    assert "Qui a été entendu" in html
    assert ">130</span><span class=\"label\">habitants consultés" in html
    assert ">11</span><span class=\"label\">partenaires consultés" in html
    assert "Questionnaire aux habitants" in html and "110\u00a0réponses" in html
    assert "Effet de ce qui a été dit" in html and "Étapes des marches exploratoires" in html
    assert "diag-marche" in html and "diag-etape" in html  # the route and its stops on the commune map
    assert "Abribus cassé" in html and "On se parle moins qu&#39;avant" in html  # as escaped from the data
    assert "Paroles retenues" in html


def test_quotations_and_stops_are_escaped_and_never_named(tmp_path):
    import shutil

    from diagnostic.analysis.commune import build
    from diagnostic.report import sections

    folder = tmp_path / "demo"
    shutil.copytree(DEMO_DIR, folder)
    note = (folder / "reunion_conseil_citoyen.md").read_text(encoding="utf-8")
    (folder / "reunion_conseil_citoyen.md").write_text(
        note + "> <script>alert(1)</script> <img src=x onerror=alert(2)>\n", encoding="utf-8")
    d = build(folder / "catalogue.yaml", "99101")
    html = sections.consultation(d).data
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "réunion, Centre Ancien, 10/04/2025" in html  # a quotation says how, where and when, never who


@pytest.mark.browser
def test_demo_map_draws_the_walk_in_a_browser(demo, offline_page, tmp_path):
    from diagnostic.analysis.commune import build
    from diagnostic.report import maps, sections

    m = sections.interactive_map(build(demo, "99101"))
    page, log = offline_page(maps.save_map(m, tmp_path / "carte.html"))
    assert not log.page_errors and not log.console_errors and not log.external_requests
    assert page.locator("path.diag-marche").count() == 1 and page.locator("path.diag-etape").count() == 10
    assert "Marche exploratoire La Garenne – Les Tilleuls (10\u00a0étapes)" in page.locator(
        ".leaflet-control-layers").inner_text()


def test_survey_answers_aggregated_with_respondents(tmp_path, demo):
    from diagnostic.analysis.consultation import survey_answers

    rows = ["QN09901A;;;bruit bus;;1;2025-03-14T18:02:11\n", "QN09901A;;;bus;;2;2025-03-14T18:05:11\n",
            "QN09902B;;;bus bus;;3;2025-03-14T18:06:11\n"]
    obs, _, _ = _survey(tmp_path, demo, rows)
    table = survey_answers(obs).set_index(["code_qp", "problem"])["respondents"].to_dict()
    assert table == {("QN09901A", "incivilites_transports"): 2, ("QN09901A", "nuisances"): 1,
                     ("QN09902B", "incivilites_transports"): 1}  # a choice ticked twice counts one respondent
    demo_table = survey_answers(demo.observations)
    from_export = demo.observations[demo.observations["origin"] == "questionnaire_habitants.csv"]
    assert demo_table["respondents"].sum() == len(from_export) == 218  # one row per respondent and problem
