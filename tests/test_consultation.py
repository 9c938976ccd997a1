"""What residents and partners said: spreadsheets, questionnaires, marches exploratoires, meetings, the report."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from diagnostic.catalog import Source
from diagnostic.errors import CatalogError, ConfidentialityError, ValueFormatError
from diagnostic.sources._io import read_table
from diagnostic.sources.activity import load_activity
from diagnostic.sources.partners import load_partners

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


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
    return read_table(DEMO / name, name)


# --- Spreadsheets -------------------------------------------------------------------------------------------


def test_xlsx_and_csv_registry_give_identical_results(tmp_path, demo):
    book = _to_xlsx({"Relations": _csv("partenaires_relations.csv"), "Acteurs": _csv("partenaires.csv")},
                    tmp_path / "registre.xlsx")
    from_csv, _ = load_partners(Source("partners", DEMO / "partenaires.csv",
                                       options={"relations": str(DEMO / "partenaires_relations.csv")}),
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
        load_partners(Source("partners", book, options={"relations": str(DEMO / "partenaires_relations.csv")}),
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
