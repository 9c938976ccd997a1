"""What an officer's own files can still do (issue 27): local files, personal data, formulas, bombs, wrong values.

Each test is one hostile or careless case, run on the pure loaders or on ``data check`` over a copy of the demo.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from diagnostic import cli
from diagnostic.errors import (
    CatalogError,
    ParameterError,
    UnknownFormatError,
    ValueFormatError,
)
from tests.util import DEMO_CATALOG

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture
def demo_copy(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("DIAGNOSTIC_ALLOW_OUTSIDE", raising=False)
    dest = tmp_path / "demo"
    shutil.copytree(DEMO_CATALOG.parent, dest)
    return dest


def _check(demo: Path, capsys, *extra: str) -> tuple[int, str]:
    code = cli.main(["data", "check", "--catalog", str(demo / "catalogue.yaml"), *extra])
    out = capsys.readouterr()
    return code, out.out + out.err


def _edit_catalog(demo: Path, edit) -> None:
    path = demo / "catalogue.yaml"
    catalog = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(catalog)
    path.write_text(yaml.safe_dump(catalog, allow_unicode=True), encoding="utf-8")


# --- 1. local files: one confined opener ------------------------------------------------------------------------


def test_symlinked_officer_text_is_not_published(demo_copy, capsys):
    from diagnostic.report.export import officer_text

    (demo_copy / "textes" / "reponses.md").symlink_to("/etc/passwd")
    with pytest.raises(CatalogError) as err:
        officer_text(demo_copy / "textes", "reponses")
    assert "hors du dossier des textes" in str(err.value) and "root:" not in str(err.value)
    code, message = _check(demo_copy, capsys)
    assert code == 10 and "reponses.md" in message and "root:" not in message


@pytest.mark.parametrize("address", ["/some/secret.png", "../../outside/x.png", "https://example.org/x.png",
                                     "//hote/partage/x.png", "file:///etc/passwd", "data:image/svg+xml,<svg/>"])
def test_image_from_outside_the_texts_folder_refused(demo_copy, capsys, address):
    from diagnostic.report.export import markdown

    (demo_copy / "textes" / "contexte.md").write_text(f"Le quartier.\n\n![plan]({address})\n", encoding="utf-8")
    code, message = _check(demo_copy, capsys)
    assert code == 10 and "contexte.md" in message and "Ligne(s) : 3" in message, message
    html = markdown(f"![plan]({address})", images=demo_copy / "textes").data
    assert "<img" not in html and "image non insérée : plan" in html


def test_image_of_the_texts_folder_embedded(demo_copy):
    from diagnostic.report.export import officer_text

    (demo_copy / "textes" / "plan.png").write_bytes(PNG)
    (demo_copy / "textes" / "contexte.md").write_text("![plan du quartier](plan.png)", encoding="utf-8")
    html = officer_text(demo_copy / "textes", "contexte").data
    assert '<img src="data:image/png;base64,iVBORw0KGgo' in html and 'alt="plan du quartier"' in html


def test_symlinked_local_recommendations_refused(demo_copy, capsys, tmp_path):
    outside = tmp_path / "ailleurs.yaml"
    outside.write_text(yaml.safe_dump({"ajouter": [{"id": "x", "title": "Secret", "text": "Secret"}]}), encoding="utf-8")
    (demo_copy / "recommandations_locales.yaml").symlink_to(outside)
    code, message = _check(demo_copy, capsys)
    assert code == 10 and "hors du dossier du catalogue" in message


def test_keyword_list_outside_refused_and_etc_passwd_a_clear_error(demo_copy, capsys):
    def point(catalog):
        walks = [s for s in catalog["sources"]["observations"] if str(s["path"]).endswith(".gpx")]
        walks[0]["mots_cles"] = "/etc/passwd"

    _edit_catalog(demo_copy, point)
    code, message = _check(demo_copy, capsys)
    assert code == 10 and "mots_cles" in message and "hors du dossier" in message
    try:
        code, message = _check(demo_copy, capsys, "--allow-outside")
    finally:
        os.environ.pop("DIAGNOSTIC_ALLOW_OUTSIDE", None)
    assert code == 14 and "« mot »" in message and "Erreur inattendue" not in message, message


# --- 6. a pipe, YAML and zip bombs ------------------------------------------------------------------------------


def test_named_pipe_instead_of_a_data_file_refused_at_once(demo_copy, capsys):
    (demo_copy / "observations.csv").unlink()
    os.mkfifo(demo_copy / "observations.csv")
    start = time.monotonic()
    code, message = _check(demo_copy, capsys)
    assert code == 12 and "n'est pas un fichier ordinaire" in message and time.monotonic() - start < 30


def test_named_pipe_as_officer_text_refused(demo_copy):
    from diagnostic.io.officer import read_text

    os.mkfifo(demo_copy / "textes" / "cadrage.md")
    with pytest.raises(UnknownFormatError, match="pas un fichier ordinaire"):
        read_text(demo_copy / "textes", "cadrage")


def test_yaml_alias_bomb_refused_before_any_work(demo_copy, capsys):
    levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, name in zip("abcdefgh", "bcdefghi"):
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    bomb = "{" + ", ".join(levels) + "}"  # 9**9 « lol » once expanded
    text = (demo_copy / "catalogue.yaml").read_text(encoding="utf-8")
    text = text.replace("producer: Données fictives (format IGN Admin Express)", f"producer: {bomb}", 1)
    (demo_copy / "catalogue.yaml").write_text(text, encoding="utf-8")
    assert len(bomb) < 2000
    code, message = _check(demo_copy, capsys)
    assert code == 10 and "trop d'éléments" in message, message


def test_yaml_anchors_of_a_normal_file_still_read(tmp_path):
    from diagnostic.io.confined import read_yaml

    path = tmp_path / "r.yaml"
    path.write_text("base: &b {poids: 1}\nun: *b\ndeux: {<<: *b, seuil: 2}\n", encoding="utf-8")
    assert read_yaml(path, "règles") == {"base": {"poids": 1}, "un": {"poids": 1}, "deux": {"poids": 1, "seuil": 2}}


def _workbook_bomb(path: Path, megabytes: int) -> None:
    """An .xlsx whose sheet unpacks to ``megabytes`` MB of blanks (a few kB on disk)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            block = b" " * (1 << 20)
            for _ in range(megabytes):
                fh.write(block)


def test_workbook_zip_bomb_refused_quickly(tmp_path):
    from diagnostic.io.sources._io import read_table

    bomb = tmp_path / "journal.xlsx"
    _workbook_bomb(bomb, 300)
    assert bomb.stat().st_size < 2_000_000
    start = time.monotonic()
    with pytest.raises(UnknownFormatError, match="archive piégée"):
        read_table(bomb, "activity")
    assert time.monotonic() - start < 5


def test_workbook_formulas_without_values_named_as_formulas(tmp_path):
    import openpyxl

    from diagnostic.io.sources._io import read_table

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["identifiant", "nom", "effectif"])
    sheet.append(["A1", "Centre social", "=2+3"])
    book.save(tmp_path / "t.xlsx")
    with pytest.raises(ValueFormatError) as err:
        read_table(tmp_path / "t.xlsx", "partners")
    assert "formule" in str(err.value) and err.value.rows == [2] and "vide" not in str(err.value)


def test_geojson_renamed_txt_named_as_such(demo_copy, tmp_path):
    from diagnostic.io.sources._io import read_table

    shutil.copy(demo_copy / "communes.geojson", tmp_path / "communes.txt")
    with pytest.raises(UnknownFormatError) as err:
        read_table(tmp_path / "communes.txt", "communes")
    assert "GeoJSON" in str(err.value) and "vide" not in str(err.value)


# --- 7. texts saved in UTF-16, strict booleans ----------------------------------------------------------------------


def test_utf16_text_and_table_read_as_text(tmp_path):
    from diagnostic.io.sources._io import read_table
    from diagnostic.report.export import officer_text

    (tmp_path / "contexte.md").write_bytes("Villeneuve-sur-Lys, élus réunis".encode("utf-16"))
    assert "Villeneuve-sur-Lys, élus réunis" in officer_text(tmp_path, "contexte").data
    (tmp_path / "t.csv").write_bytes("code;libellé\n99101;Villeneuve\n".encode("utf-16"))
    assert read_table(tmp_path / "t.csv", "t").to_dict("records") == [{"code": "99101", "libellé": "Villeneuve"}]


@pytest.mark.parametrize("value", ["non", "oui", "false", 0])
def test_fictional_must_be_a_boolean(demo_copy, capsys, value):
    _edit_catalog(demo_copy, lambda c: c.update(fictional=value))
    code, message = _check(demo_copy, capsys)
    assert code == 10 and "fictional" in message and "true ou false" in message


# --- 4. spreadsheet formulas in output CSVs ----------------------------------------------------------------------


def test_output_csv_cells_neutralised_numbers_kept(tmp_path):
    from diagnostic.report.exports import _csv

    df = pd.DataFrame({"title": ['=HYPERLINK("http://evil.example","Voir")', "-2+3+cmd|x", "@SUM(A1)", "\tx", "Marche",
                                 "-2,5"],
                       "priority": [1, -2, 3, 4, 5, 6], "score": [0.5, -1.25, None, 2.0, 3.0, 4.0]})
    raw = _csv(df, {"title": "titre", "priority": "priorite", "score": "score"}, tmp_path / "r.csv")
    back = pd.read_csv(raw, sep=";", dtype=str, encoding="utf-8-sig", keep_default_na=False)
    assert back["titre"].tolist() == ["'=HYPERLINK(\"http://evil.example\",\"Voir\")", "'-2+3+cmd|x", "'@SUM(A1)",
                                      "'\tx", "Marche", "-2,5"]
    assert back["priorite"].tolist() == ["1", "-2", "3", "4", "5", "6"]
    assert back["score"].tolist() == ["0,5", "-1,25", "", "2,0", "3,0", "4,0"]


# --- 5. output folders that cannot be written ---------------------------------------------------------------------


def test_output_under_a_file_gives_code_22(tmp_path, capsys):
    code = cli.main(["run", "--catalog", str(DEMO_CATALOG), "--commune", "99101", "--output", "/dev/null/x"])
    err = capsys.readouterr().err
    assert code == 22 and "n'est pas un dossier" in err and "Erreur inattendue" not in err


def test_output_on_a_read_only_file_system_gives_code_22(tmp_path, monkeypatch):
    from diagnostic import _fs

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(_fs, "open", read_only, raising=False)
    with pytest.raises(ParameterError) as err, _fs.output_lock(tmp_path / "sortie"):
        pass
    assert err.value.exit_code == 22 and "lecture seule" in str(err.value)


# --- 2. one personal-data detector ------------------------------------------------------------------------------

PERSONAL = ["06–12–34–56–78", "(+33) 6 12 34 56 78", "06_12_34_56_78", "06,12,34,56,78", "0 6 1 2 3 4 5 6 7 8",
            "+212 6 12 34 56 78", "+32 475 12 34 56", "jean[at]example.fr", "jean (at) example (dot) fr",
            "jean.dupont @ example.fr", "jean＠example.fr", "NIR 1 85 05 78 006 084 91", "185057800608491",
            "06 12 34 56 78", "+33 (0)6 12 34 56 78"]
NOT_PERSONAL = ["2025-03-14", "14/03/2025", "du 01/03/2025 au 31/03/2025", "SIRET 123 456 789 00012",
                "21991010000015", "SIREN 123 456 789", "code INSEE 99101", "1 234 567,89 €", "12 345 678 habitants",
                "31000 Toulouse", "+12,5 %", "08:30 - 12:00 / 13:30 - 17:30", "QN09901A", "4,5 ; 6,2 ; 7,8"]


@pytest.mark.parametrize("value", PERSONAL)
def test_contact_details_however_written_detected(value):
    from diagnostic.io.sources.personal import contact_text

    assert contact_text(f"Voir {value} pour la suite")


@pytest.mark.parametrize("value", NOT_PERSONAL)
def test_dates_codes_amounts_are_not_contact_details(value):
    from diagnostic.io.sources.personal import contact_text

    assert not contact_text(value)


@pytest.mark.parametrize("header", ["firstname", "lastname", "surname", "num_ss", "beneficiary", "Phone"])
def test_personal_headers_detected(header):
    from diagnostic.io.sources.personal import personal_header

    assert personal_header(header)


def _set(path: Path, column: str, value: str, sep: str, row: int = 0) -> None:
    df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    df.loc[row, column] = value
    df.to_csv(path, sep=sep, index=False)


@pytest.mark.parametrize(("file", "column", "sep", "value"), [
    ("partenaires.csv", "role_contact", ";", "Mme Martine Dupont, 06 12 34 56 78, m.dupont@habitat-lys.fr"),
    ("partenaires_relations.csv", "commentaire", ";", "Appeler Mme Durand au 06.12.34.56.78"),
    ("services_locaux.csv", "horaires", ",", "Sur rendez-vous : 06 12 34 56 78"),
    ("journal_activite.csv", "service_signale", ";", "jean (at) example (dot) fr"),
    ("questionnaire_habitants.csv", "commentaire", ";", "rappeler le +32 475 12 34 56"),
])
def test_contact_details_refused_in_every_free_text(demo_copy, capsys, file, column, sep, value):
    _set(demo_copy / file, column, value, sep)
    code, message = _check(demo_copy, capsys)
    assert code == 21 and file in message and column in message and "06 12" not in message, message


def test_contact_details_refused_in_officer_texts_and_local_recommendations(demo_copy, capsys):
    (demo_copy / "textes" / "contexte.md").write_text("Contact : 06 12 34 56 78\n", encoding="utf-8")
    code, message = _check(demo_copy, capsys)
    assert code == 21 and "contexte.md" in message
    (demo_copy / "textes" / "contexte.md").unlink()
    local = {"ajouter": [{"id": "local_x", "title": "Marche", "text": "Écrire à jean.dupont @ example.fr"}]}
    (demo_copy / "recommandations_locales.yaml").write_text(yaml.safe_dump(local, allow_unicode=True), encoding="utf-8")
    code, message = _check(demo_copy, capsys)
    assert code == 21 and "recommandations_locales.yaml" in message


# --- 8. local recommendations checked by data check ------------------------------------------------------------


@pytest.mark.parametrize(("local", "words"), [
    ({"ajouter": [{"id": "x", "title": "T"}]}, "sans text"),
    ({"ajouter": [{"id": "x", "title": "T", "text": "t", "type": "urgente"}]}, "urgente"),
    ({"ajouter": [{"id": "x", "title": "T", "text": "t", "priority": 9}]}, "priorité"),
    ({"ajouter": [{"id": "x", "title": "T", "text": "t", "domain": "sante_mentale"}]}, "sante_mentale"),
    ({"modifier": {"horaires": {"prioriter": 1}}}, "prioriter"),
    ({"retier": ["gouvernance"]}, "retier"),
    ({"par_commune": {"99101": {"ajouter": "x"}}}, "liste"),
])
def test_invalid_local_recommendations_fail_data_check(demo_copy, capsys, local, words):
    (demo_copy / "recommandations_locales.yaml").write_text(yaml.safe_dump(local, allow_unicode=True), encoding="utf-8")
    code, message = _check(demo_copy, capsys)
    assert code == 10 and words in message and "recommandations_locales.yaml" in message, message


def test_readme_local_recommendations_example_passes(demo_copy, capsys):
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    example = readme.split("```yaml\najouter:", 1)[1].split("```", 1)[0]
    (demo_copy / "recommandations_locales.yaml").write_text("ajouter:" + example, encoding="utf-8")
    code, message = _check(demo_copy, capsys)
    assert code == 0, message


# --- 7. wrong values refused or handled -------------------------------------------------------------------------


def test_implausible_commune_population_refused(demo_copy, capsys):
    _set(demo_copy / "populations_legales.csv", "PMUN", "1000000000000", ";")
    code, message = _check(demo_copy, capsys)
    assert code == 15 and "PMUN" in message and "au plus 3" in message and "Ligne(s) : 2" in message, message


def test_commune_of_no_inhabitant_has_no_qpv_share(demo):
    import dataclasses
    import math

    from diagnostic.analysis.indicators.social import qpv_share

    communes = demo.communes.assign(population=demo.communes["population"].where(demo.communes["insee_com"] != "99101", 0))
    share = qpv_share(dataclasses.replace(demo, communes=communes)).set_index("insee_com")["qpv_share"]
    assert math.isnan(share["99101"]) and math.isfinite(share["99102"])


def test_negative_adultes_relais_amount_refused(demo_copy, capsys):
    _set(demo_copy / "adultes_relais.csv", "montant", "-21059.40", ",", row=1)
    code, message = _check(demo_copy, capsys)
    assert code == 15 and "montant" in message and "négatifs" in message and "Ligne(s) : 3" in message, message


@pytest.mark.parametrize(("option", "words"), [(["--domains", ""], "--domains"), (["--domains", " , "], "--domains")])
def test_empty_domains_refused(tmp_path, capsys, option, words):
    code = cli.main(["run", "--catalog", str(DEMO_CATALOG), "--commune", "99101", "--output", str(tmp_path), *option])
    assert code == 22 and words in capsys.readouterr().err and not any(tmp_path.iterdir())


@pytest.mark.parametrize("workers", ["0", "-3"])
def test_no_worker_refused(tmp_path, capsys, workers):
    code = cli.main(["batch", "--catalog", str(DEMO_CATALOG), "--communes", "99101", "--output", str(tmp_path),
                     "--workers", workers])
    assert code == 22 and "--workers" in capsys.readouterr().err and not any(tmp_path.iterdir())


def test_wrong_chromium_refused_not_replaced(tmp_path, capsys, monkeypatch):
    from diagnostic.report.pdf import chromium_path

    monkeypatch.setenv("DIAGNOSTIC_CHROMIUM", "/nonexistent")
    with pytest.raises(ParameterError, match="DIAGNOSTIC_CHROMIUM"):
        chromium_path()
    code = cli.main(["run", "--catalog", str(DEMO_CATALOG), "--commune", "99101", "--output", str(tmp_path), "--pdf"])
    assert code == 22 and "DIAGNOSTIC_CHROMIUM" in capsys.readouterr().err and not any(tmp_path.iterdir())


# --- 8. caught at validation, with clear messages ---------------------------------------------------------------


@pytest.mark.parametrize("edit", [
    lambda r: r["response"].update(post_weight=-1),
    lambda r: r["domains"]["habitat"]["indicators"]["poverty_rate"].update(weight=-3),
    lambda r: r["robustness"].update(factor="beaucoup"),
])
def test_negative_weights_in_needs_rules_refused_before_the_notebook(tmp_path, capsys, edit):
    from diagnostic.analysis.indicators.needs import RULES_FILE

    rules = yaml.safe_load(Path(RULES_FILE).read_text(encoding="utf-8"))
    edit(rules)
    (tmp_path / "besoins.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    code = cli.main(["run", "--catalog", str(DEMO_CATALOG), "--commune", "99101", "--output", str(tmp_path / "out"),
                     "--needs-rules", str(tmp_path / "besoins.yaml")])
    assert code == 10, capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unknown_operator_refused_before_the_notebook(tmp_path, capsys):
    code = cli.main(["evaluate", "--catalog", str(DEMO_CATALOG), "--commune", "99101", "--from", "2025-01-01",
                     "--to", "2025-03-31", "--operator", "Inconnu", "--output", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 22 and "Inconnu" in err and "opérateurs de la commune" in err
    assert not any(tmp_path.iterdir())


def test_point_geometries_for_communes_named_as_points(demo_copy, capsys):
    import geopandas as gpd

    communes = gpd.read_file(demo_copy / "communes.geojson")
    communes.geometry = communes.geometry.representative_point()
    communes.to_file(demo_copy / "communes.geojson", driver="GeoJSON")
    code, message = _check(demo_copy, capsys)
    assert code == 16 and "Point" in message and "polygones" in message and "loin" not in message, message


def test_needs_without_any_common_law_offer():
    """« --domains » without « santé » left no common-law offer: the need is measured without it (was KeyError)."""
    from diagnostic.analysis.indicators.needs import load_rules, measured_need

    social = pd.DataFrame({"code_qp": ["QN09901A"], "indicator": ["poverty_rate"], "label": ["Taux de pauvreté"],
                           "unit": ["%"], "value": [30.0], "status": [""], "source": [""], "vintage": [""]})
    coverage = pd.DataFrame({"code": ["QN09901A"], "domain": ["habitat"], "common_band": [2.0],
                             "population": [1000.0], "method": [""]})
    evidence = measured_need(social, load_rules(), coverage=coverage)
    assert set(evidence["indicator"]) == {"poverty_rate"} and evidence["position"].notna().all()


def test_default_relations_file_linked_outside_refused(demo_copy, capsys, tmp_path):
    shutil.copy(demo_copy / "partenaires_relations.csv", tmp_path / "ailleurs.csv")
    (demo_copy / "partenaires_relations.csv").unlink()
    (demo_copy / "partenaires_relations.csv").symlink_to(tmp_path / "ailleurs.csv")
    _edit_catalog(demo_copy, lambda c: c["sources"]["partners"].pop("relations"))
    code, message = _check(demo_copy, capsys)
    assert code == 10 and "hors du dossier du registre" in message, message


def test_file_linked_outside_after_a_good_load_refused(demo_copy, capsys, tmp_path, monkeypatch):
    """A catalogue read once is kept (by content), yet the same bytes through a link outside are read and refused."""
    monkeypatch.setenv("DIAGNOSTIC_CACHE", str(tmp_path / "cache"))
    _edit_catalog(demo_copy, lambda c: c["sources"]["partners"].pop("relations"))
    assert _check(demo_copy, capsys)[0] == 0
    assert len(list((tmp_path / "cache" / "territoires").glob("*.pickle"))) == 1
    shutil.copy(demo_copy / "partenaires_relations.csv", tmp_path / "ailleurs.csv")
    (demo_copy / "partenaires_relations.csv").unlink()
    (demo_copy / "partenaires_relations.csv").symlink_to(tmp_path / "ailleurs.csv")
    code, message = _check(demo_copy, capsys)
    assert code == 10 and "hors du dossier du registre" in message, message


def test_meeting_record_in_latin1_read(demo_copy, capsys):
    path = demo_copy / "reunion_conseil_citoyen.md"
    path.write_bytes(path.read_text(encoding="utf-8").encode("cp1252", errors="replace"))
    code, message = _check(demo_copy, capsys)
    assert code == 0, message


def test_deeply_nested_yaml_refused_in_french(tmp_path):
    from diagnostic.io.confined import read_yaml

    path = tmp_path / "r.yaml"
    path.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="imbriqué"):
        read_yaml(path, "règles")


def test_meeting_folder_with_a_link_out_refused(demo, tmp_path):
    from diagnostic.io.catalog import Source
    from diagnostic.io.sources.meetings import load_meetings

    folder = tmp_path / "reunions"
    folder.mkdir()
    (tmp_path / "secret.md").write_text("---\ndate: 2025-05-06\ntype: réunion\ntitre: x\ncommune: 99101\n---\nx\n",
                                        encoding="utf-8")
    (folder / "lien.md").symlink_to(tmp_path / "secret.md")
    with pytest.raises(CatalogError, match="hors du dossier de la source"):
        load_meetings(Source("observations", folder), demo.communes, demo.qpv)
