"""A text scan of every shipped document for the faults a reader found: broken French, doubled sentences, file names,
raw capitals, CSV numbers with more than two decimals. Reads the session's reports (tests/conftest.py)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path

import pytest

#: What no page shows (each found once in a shipped report).
FAULTS = {
    "pluriel en -aus": re.compile(r"\b\w+aus\b"),
    "négation sans « ne »": re.compile(r"\b(?:diagnostic|rapport|il|elle) trouve aucun"),
    "article non accordé": re.compile(r"\bles (?:registre|journal|correspondance)\b"),
    "programme sans poste": re.compile(r"\b1\s(?:adultes-relais|postes)\b|\bet 0\s(?:FONJEP|adultes-relais)\b"),
    "lieu sans article": re.compile(r"\b(?:à|dans) (?:Secteur|Grand|Grande) [A-ZÉ]"),
    "« de 1er »": re.compile(r"\bde 1er\b"),
    "nombre sans séparateur": re.compile(r"(?<![\d\u202f,.])(?!19\d\d|20\d\d)\d{4,}(?=[\s\u00a0](?:QPV|valeurs|lignes|postes|habitants))"),
    "nom de fichier": re.compile(r"\b[\w-]+\.(?:ya?ml|json|csv|ipynb|docx)\b"),
    "mot de l'outil": re.compile(r"rôle «|Méthode : méthode|--\w+"),
    "choix laissé ouvert": re.compile(r"à choisir avec les partenaires entre"),
    "capitales brutes": re.compile(r"\b[A-ZÀ-Ý]{3,}(?:[\s\u00a0]+[A-ZÀ-Ý']{2,}){2,}\b"),
}


class _Text(HTMLParser):
    """The visible text of a page, block by block (scripts and styles left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[str] = [""]
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("script", "style")
        if tag in ("p", "li", "td", "th", "h1", "h2", "h3", "dd", "dt", "caption", "figcaption", "div"):
            self.blocks.append("")

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._skip:
            self.blocks[-1] += data


def _blocks(path: Path) -> list[str]:
    parser = _Text()
    parser.feed(path.read_text(encoding="utf-8"))
    return [b for b in (" ".join(x.split()) for x in parser.blocks) if b]


def _page(request, name: str) -> Path:
    value = request.getfixturevalue(name)
    return value if value.suffix == ".html" else value / ("rapport.html" if (value / "rapport.html").exists()
                                                          else "evaluation.html")


@pytest.mark.parametrize("name", ["demo_report", "toulouse_report", "lille_report", "evaluation_report", "batch_index"])
def test_shipped_pages_have_none_of_the_faults(request, name):
    blocks = _blocks(_page(request, name))
    joined = "\n".join(blocks)
    found = {label: m.group(0) for label, rx in FAULTS.items() if (m := rx.search(joined))}
    assert found == {}, found
    # No block said twice in a row (« Donnée non disponible… » twice), no long sentence said four times (the 214 posts).
    doubled = [a for a, b in pairwise(blocks) if a == b and len(a) > 40]
    assert doubled == [], doubled[:2]
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", joined) if len(s) > 150]
    repeated = {s for s in sentences if sentences.count(s) >= 4}
    assert repeated == set(), list(repeated)[:1]


@pytest.mark.parametrize("name", ["demo_report", "toulouse_report", "lille_report"])
def test_shipped_csv_round_numbers_and_name_territories(request, name):
    folder = request.getfixturevalue(name)
    for csv in folder.glob("*.csv"):
        body = csv.read_text(encoding="utf-8-sig")
        long = re.search(r"(?<![\d\u202f])\d+,\d{3,}(?!\d)", body)
        assert long is None, (csv.name, long.group(0))
        head = body.splitlines()[0].split(";")
        if "territoire" in head:
            assert "territoire_nom" in head, csv.name


def test_real_report_pages_say_internal(toulouse_report):
    """Each printed page of a report on real data carries « Document interne » (README), after the cover."""
    from diagnostic.report.pdf import page_texts

    pages = page_texts((toulouse_report / "rapport.pdf").read_bytes())
    assert all("Document interne" in p for p in pages[1:]) and "Données fictives" not in " ".join(pages)
