"""The council note (note_conseil.docx): opens with python-docx, two pages at most, page one's numbers."""

from __future__ import annotations

import pytest
from docx import Document

from diagnostic import text
from diagnostic.analysis.commune import build
from diagnostic.report import note, summary
from tests.util import DEMO_CATALOG, OCCITANIE, REAL

#: Two printed pages of 11-point text: at most this many paragraphs (headings, sentences, list items).
MAX_PARAGRAPHS = 30


def _read(path) -> tuple[str, list[list[str]], int]:
    doc = Document(path)
    paragraphs = [p.text for p in doc.paragraphs if p.text.strip()]
    rows = [[c.text for c in r.cells] for t in doc.tables for r in t.rows]
    return "\n".join(paragraphs), rows, len(paragraphs)


@pytest.mark.parametrize("catalog, code", [(DEMO_CATALOG, "99101"), (DEMO_CATALOG, "99102"), (OCCITANIE, "31555")])
def test_note_opens_is_short_and_carries_page_one(tmp_path, report_cache, catalog, code):
    if catalog == OCCITANIE and not (REAL / "PROVENANCE.md").exists():
        pytest.skip(f"extraits réels absents ({REAL})")
    d = build(catalog, code)
    path = note.write_note(d, tmp_path / note.NOTE_FILE)
    body, rows, n_paragraphs = _read(path)
    words = len(body.split()) + sum(len(c.split()) for r in rows for c in r)
    assert words <= note.MAX_WORDS and n_paragraphs <= MAX_PARAGRAPHS, (words, n_paragraphs)
    assert "Note de synthèse pour le conseil municipal" in body.split("\n")[1 if d.fictional else 0]
    # The same five sentences as page one, and the same figures in the table.
    for sentence in summary.page_one(d):
        assert sentence["texte"] in body
    dec = summary.decision(d)
    table = dict(rows)
    assert table["Médiateurs nécessaires"] == summary._number(dec["mediateurs_necessaires"])
    assert table["Postes à créer par la commune"] == text.number(dec["postes_a_creer"])
    assert table["Coût annuel pour la commune"] == summary._euros(dec["total_commune"]["cout_annuel"])
    paid = 0.0
    for who, amount in summary.funders(dec, d.name):
        assert table[f"Financé par {who}"] == summary._euros(amount)
        paid += amount
    assert paid == pytest.approx(dec["total_commune"]["cout_annuel"], abs=0.02)  # the funders pay the whole cost
    assert table["Portage recommandé"] == dec["gouvernance"]["libelle"]
    assert ".csv" not in body and ".json" not in body and "docx" not in body
    assert ("Données fictives" in body) == d.fictional


def test_toulouse_note_figures(tmp_path, report_cache):
    """Hand-checked: 8 mediators to create × 36 000 € = 288 000 €; the State pays 8 × 22 810,61 € = 182 484,88 €."""
    if not (REAL / "PROVENANCE.md").exists():
        pytest.skip(f"extraits réels absents ({REAL})")
    d = build(OCCITANIE, "31555")
    _, rows, _ = _read(note.write_note(d, tmp_path / note.NOTE_FILE))
    table = dict(rows)
    assert table["Coût annuel pour la commune"] == "288\u202f000\u00a0€"
    assert table["Financé par l'État (postes d'adultes-relais)"] == "182\u202f484,88\u00a0€"
    assert table["Financé par la commune (Toulouse)"] == "105\u202f515,12\u00a0€"
    assert table["Postes d'adultes-relais déjà en place"] == "non connus (absents des données)"
