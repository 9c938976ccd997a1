"""The report an elected official reads: « L'essentiel » first, French numbers, no tool words, phone, print, PDF, axe.

Reports are rendered once per session (demo and Toulouse with their PDF, Lille when the real
extracts are there, the demo evaluation with its PDF and a batch index) and shared by every test here.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from diagnostic import text
from diagnostic.analysis.commune import build, results
from diagnostic.report import summary
from tests.util import DEMO_CATALOG, OCCITANIE, REAL

_HAS_REAL = (REAL / "PROVENANCE.md").exists()
_SPACE = r"[\s\u00a0\u202f]"
#: What a French page never shows: English decimals, « .0 » counts, missing-value leaks, broken plurals.
BAD_TEXT = {
    "décimale anglaise": re.compile(r"(?<![\w.,/-])\d+\.\d+(?![\w.]*\.\d)(?!\w)"),
    "nombre entier écrit avec ,0": re.compile(
        rf"\d,0{_SPACE}(?:habitants?|personnes?|postes?|besoins?|observations?|services?|médiateurs?|acteurs?|"
        r"liens?|interventions?|quartiers?|ménages?)\b"),
    "nan": re.compile(r"\b(?:nan|NaN|NaT|<NA>)\b"),
    "None": re.compile(r"\bNone\b"),
    "n.d.": re.compile(r"\bn\.\s?d\.", re.IGNORECASE),
    "pluriel entre parenthèses": re.compile(r"\w\(s\)"),
    "pluriel après 0 ou 1": re.compile(
        rf"(?<![\d,\u202f]){_SPACE}?\b[01]{_SPACE}(?:besoins|postes|observations|services|quartiers|acteurs|"
        r"médiateurs|liens|interventions|habitants|préconisations)\b"),
    "singulier après 2 ou plus": re.compile(
        rf"(?<![\d,\u202f])\b(?:[2-9]|\d{{2,}}){_SPACE}(?:besoin|poste|observation|service|quartier|acteur|médiateur|lien|"
        r"intervention|préconisation)\b(?!s)"),
}
#: Words of the tool that an elected official's document never shows.
TOOL_WORDS = re.compile(
    r"\.ya?ml\b|\.csv\b|\.ipynb\b|templates/|band_m|\bdiagnostic (?:run|batch|evaluate|data)\b|modifiable dans|"
    r"\bpapermill\b|\bexécutez\b|\bChangez les paramètres\b|Ce carnet|\bQ[NP]\d{3}\w{3,4}\b")
#: Names that carry a dot legitimately: the software version, licence versions.
_SOFTWARE_VERSION = re.compile(r"version \d+\.\d+\.\d+|(?:Licence Ouverte|Etalab|ODbL)[\s/-]*v?\d\.\d")
_TEXT_NODES = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const n = walker.currentNode, p = n.parentElement;
    if (p && !['SCRIPT', 'STYLE', 'NOSCRIPT'].includes(p.tagName) && n.textContent.trim()) out.push(n.textContent);
  }
  return out;
}"""


def _page(request, name: str) -> Path:
    """The HTML page of a rendered report by its fixture name."""
    value = request.getfixturevalue(name)
    return value if value.suffix == ".html" else value / "rapport.html"


REPORTS = ["demo_report", "toulouse_report", "lille_report"]
PAGES = REPORTS + ["evaluation_report", "batch_index"]


@pytest.fixture(scope="session")
def browser_page(_browser):
    """A function opening a local page offline at a given width, shared contexts closed at the end."""
    contexts = []

    def open_page(path: Path, width: int = 1366):
        context = _browser.new_context(offline=True, viewport={"width": width, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.goto(Path(path).resolve().as_uri(), wait_until="load")
        page.wait_for_timeout(400)
        return page

    yield open_page
    for c in contexts:
        c.close()


def test_essentials_from_the_diagnostic_objects(report_cache):
    """« L'essentiel » is computed from the objects of resultats.json: same territories, same team, same needs."""
    d = build(DEMO_CATALOG, "99101")
    e = summary.essentials(d)
    saved = results(d)
    assert 3 <= len(e["messages"]) <= 5
    # The intervention territories of the framing: QPVs with a « fort » need, in the order of the needs ranking.
    ranked = [n["territoire"] for n in saved["besoins_non_couverts"] if n["niveau"] == "fort"]
    assert [t["code"] for t in e["territoires"]] == saved["cadrage"]["codes"] == list(dict.fromkeys(ranked))[:3]
    assert [t["nom"] for t in e["territoires"]] == ["Les Hauts de Lys", "La Garenne – Les Tilleuls"]
    # Hand-checked against the demo data: 6 840 inhabitants, 44,6 % poor against 42,1 % in the 3 QPVs.
    hauts = next(t["texte"] for t in e["territoires"] if t["nom"] == "Les Hauts de Lys")
    assert hauts.startswith("Les Hauts de Lys : 6\u202f840\u00a0habitants, dont 44,6\u202f% sous le seuil de pauvreté, "
                            "contre 42,1\u202f% en moyenne dans les 3\u00a0QPV")
    assert any(f"{saved['cadrage']['equipe']}\u00a0médiateurs" in s["texte"] for s in e["decision"])
    assert all(m["section"] in summary.SECTIONS for m in e["messages"])


def test_essentiel_is_the_first_section_and_links_to_sections(demo_report):
    page = (demo_report / "rapport.html").read_text(encoding="utf-8")
    main = page[page.index('<main id="contenu">'):]
    first = re.search(r"<h2 id=\"([^\"]+)\"", main)
    assert first and first.group(1) == "L'essentiel"
    ids = {html.unescape(i) for i in re.findall(r'\sid="([^"]+)"', page)}  # attributes as the browser reads them
    essentiel = main[main.index('<div class="essentiel">'):main.index("Territoire-et-contexte")]
    links = [html.unescape(link) for link in re.findall(r'<a href="#([^"]+)"', essentiel)]
    assert len(links) >= 6 and set(links) <= ids, set(links) - ids
    assert len(re.findall(r"<li>", essentiel)) >= 5


@pytest.mark.browser
@pytest.mark.parametrize("name", REPORTS)
def test_first_screen_says_where_and_what(request, name, browser_page):
    """The first 1,500 characters name the commune and a priority territory, and give no instruction."""
    folder = request.getfixturevalue(name)
    saved = json.loads((folder / "resultats.json").read_text(encoding="utf-8"))
    page = browser_page(folder / "rapport.html")
    start = page.evaluate("document.body.innerText")[:1500]
    assert saved["commune"]["nom"] in start
    d_names = [q["nom"] for q in saved["qpv"]] or [saved["commune"]["nom"]]
    assert any(n in start.split("L'essentiel", 1)[-1] for n in d_names), start
    assert not TOOL_WORDS.search(start), TOOL_WORDS.search(start)
    assert not re.search(r"exécut|lancez|relancez|ajoutez le fichier", start, re.IGNORECASE)


@pytest.mark.browser
@pytest.mark.parametrize("name", PAGES)
def test_every_text_node_is_french(request, name, browser_page):
    """Every text node of the page: no English decimal, « .0 » count, nan / None / n.d., broken plural."""
    page = browser_page(_page(request, name))
    nodes = page.evaluate(_TEXT_NODES)
    assert len(nodes) > 20
    problems = []
    for node in nodes:
        node = _SOFTWARE_VERSION.sub("", node)
        for what, pattern in BAD_TEXT.items():
            m = pattern.search(node)
            if m:
                problems.append(f"{what}: « {node.strip()[:120]} »")
    assert problems == []


@pytest.mark.browser
@pytest.mark.parametrize("name", REPORTS)
def test_no_tool_vocabulary(request, name, browser_page):
    page = browser_page(_page(request, name))
    visible = page.evaluate("document.body.innerText")
    found = sorted({m.group(0) for m in TOOL_WORDS.finditer(visible)})
    assert found == []


@pytest.mark.browser
def test_phone_layout(demo_report, browser_page):
    """At 390 px: folded legend and layer control, network replaced by the actors' list, keyboard-reachable tables."""
    page = browser_page(demo_report / "rapport.html", width=390)
    page.wait_for_timeout(800)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator(".leaflet-control-layers").count() == 1
    assert page.locator(".leaflet-control-layers-expanded").count() == 0
    assert page.evaluate("document.querySelector('details.diag-legende').open") is False
    assert not page.locator(".network").is_visible()
    assert page.locator("caption", has_text="Acteurs du territoire").is_visible()
    assert page.locator(".chart-list").first.is_visible() and not page.locator(".chart figure").first.is_visible()
    wraps = page.locator(".table-wrap")
    assert wraps.count() >= 8
    for i in range(wraps.count()):
        w = wraps.nth(i)
        assert w.get_attribute("tabindex") == "0" and w.get_attribute("role") == "region" and w.get_attribute("aria-label")
    wide = browser_page(demo_report / "rapport.html", width=1366)
    assert wide.locator(".leaflet-control-layers-expanded").count() == 1
    assert wide.evaluate("document.querySelector('details.diag-legende').open") is True
    assert wide.locator(".network").is_visible()


def _content_lines(page_text: str) -> list[str]:
    """Lines of a printed page, without its running header, page number and watermark."""
    skip = re.compile(r"^Page \d+ sur \d+$|— \d{1,2}(?:er)? \w+ \d{4}|^Données fictives|démonstration, aucun chiffre")
    return [line for line in page_text.splitlines() if line.strip() and not skip.search(line.strip())]


def _toc_titles(page: Path) -> list[str]:
    """The titles of the page's table of contents, in order, as the reader sees them."""
    import html as html_module

    nav = re.search(r'<nav[^>]*class="toc"[^>]*>(.*?)</nav>', page.read_text(encoding="utf-8"), re.DOTALL)
    return [html_module.unescape(t) for t in re.findall(r"<a [^>]*>([^<]+)</a>", nav.group(1))]


#: The PDF of each printed document, its place name in the running header, and whether it is fictional.
PDFS = {"demo_report": ("Villeneuve-sur-Lys", True), "toulouse_report": ("Toulouse", False),
        "evaluation_report": ("Villeneuve-sur-Lys", True)}


@pytest.mark.parametrize("name", list(PDFS))
def test_pdf_pages(request, name):
    """The PDF beside the HTML: numbered pages, running header, a paginated contents whose numbers are the pages
    of the headings, no near-empty page; a diagnostic has « L'essentiel » on page 1 or 2."""
    from diagnostic.report.pdf import heading_pages, page_texts

    page = _page(request, name)
    place, fictional = PDFS[name]
    pdf = page.with_suffix(".pdf") if page.name != "rapport.html" else page.parent / "rapport.pdf"
    assert pdf.exists() and pdf.read_bytes().startswith(b"%PDF")
    texts = page_texts(pdf.read_bytes())
    total = len(texts)
    assert (4 if name == "evaluation_report" else 8) <= total <= 60, total
    if name != "evaluation_report":
        assert _toc_titles(page) == list(summary.SECTIONS.values())
        assert any(line.strip() == "L'essentiel" for p in texts[:2] for line in _content_lines(p))
    for i, t in enumerate(texts, start=1):
        assert f"Page {i} sur {total}" in t, i
    for i, t in enumerate(texts[1:], start=2):
        assert len(_content_lines(t)) >= 3, (i, t)
    assert all(f"{place} — " in t for t in texts[1:])
    assert all(("Données fictives" in t) == fictional for t in texts)
    titles = _toc_titles(page)
    numbers = [int(n) for n in re.findall(r"p\. (\d+)", texts[0])]
    assert len(numbers) == len(titles) and numbers == sorted(numbers) and numbers[0] == 2, texts[0]
    # Each number is the page where its section's heading stands, read in the page's text.
    norm = lambda line: " ".join(line.replace("\u2019", "'").split())
    for title, n in zip(titles, numbers):
        assert title in [norm(line) for line in texts[n - 1].splitlines()], (title, n)
    assert heading_pages(pdf.read_bytes(), titles) == numbers


@pytest.mark.browser
@pytest.mark.parametrize("width", [1366, 390])
@pytest.mark.parametrize("name", PAGES)
def test_axe_finds_no_violation(request, name, width, browser_page):
    """axe-core (WCAG 2.1 A/AA and best practices: heading-order, region, scrollable-region-focusable…)."""
    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright")
    page = browser_page(_page(request, name), width=width)
    page.wait_for_timeout(600)
    result = axe_module.Axe().run(page, options={"runOnly": {"type": "tag", "values": [
        "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}})
    violations = [(v["id"], [n["target"] for n in v["nodes"][:3]]) for v in result.response["violations"]]
    assert violations == []


def test_department_table_is_cog_2024():
    """101 departments (COG 2024) and the demo's: official name, INSEE's article type and matching phrases."""
    from diagnostic.io.reference import department_regions, in_department

    table = department_regions()
    real = table.drop(index="99")
    assert len(real) == 101 and real.index.is_unique and {"2A", "2B", "974", "976"} <= set(real.index)
    assert "20" not in table.index and "975" not in table.index
    # The article type decides the words before the name: « dans le Nord », « dans les Hauts-de-Seine »…
    allowed = {"0": {"en", "à"}, "1": {"en"}, "2": {"dans le"}, "3": {"en", "dans la"}, "4": {"dans les"},
               "5": {"dans l'", "en"}}
    assert all(loc in allowed[t] for t, loc in zip(real["tncc"], real["locatif"])), real[["tncc", "locatif"]]
    assert (in_department("31"), in_department("59"), in_department("92"), in_department("974"),
            in_department("01"), in_department("75")) == (
        "en Haute-Garonne", "dans le Nord", "dans les Hauts-de-Seine", "à La Réunion", "dans l'Ain", "à Paris")
    assert in_department("2A") == "en Corse-du-Sud" and in_department("00") is None


def test_department_table_matches_the_real_extracts(real_dir):
    """Where the real extracts overlap the table: names of the five Hauts-de-France departments, and the
    region of every department of the COG 2024 communes."""
    import pandas as pd

    from diagnostic.io.reference import department_regions

    table = department_regions()
    shapes = json.loads((real_dir / "hdf_departements_2018.geojson").read_text(encoding="utf-8"))
    names = {f["properties"]["code"]: f["properties"]["nom"] for f in shapes["features"]}
    assert names == {c: table.at[c, "libelle"] for c in names} and len(names) == 5
    cog = pd.read_csv(real_dir / "hdf_cog_communes_2024.csv", dtype=str)
    regions = cog.groupby("DEP")["REG"].unique().map(list).to_dict()
    assert regions == {dep: [table.at[dep, "reg"]] for dep in regions}
    assert set(table.loc[list(regions), "libelle_region"]) == {"Hauts-de-France"}


def test_references_name_the_department(report_cache):
    """The key-figures table names its references (« Haute-Garonne », not « département 31 ») and a sentence
    compared with the department says where (« en Haute-Garonne »)."""
    if not _HAS_REAL:
        pytest.skip(f"extraits réels absents ({REAL})")
    d = build(OCCITANIE, "31555")
    names = summary.reference_names(d)
    assert names["ref_department"] == "Haute-Garonne" and names["ref_commune"] == "Toulouse"
    assert summary.department_name(d) == "Haute-Garonne"
    assert summary.reference_phrase(d, "ref_department") == "en Haute-Garonne"
    assert summary.reference_phrase(d, "ref_commune") == "à Toulouse"
    assert summary.reference_phrase(d, "ref_commune", "Le Cateau-Cambrésis") == "au Cateau-Cambrésis"


def test_french_formatter_measures():
    assert text.measure(31691.0, "habitants") == "31\u202f691\u00a0habitants"
    assert text.measure(48.5, "%") == "48,5\u202f%"
    assert text.measure(13150.0, "€") == "13\u202f150\u00a0€"
    assert text.measure(1.94, "ratio") == "1,9"
    assert text.measure(None, "%", "s") == "secret statistique"
    assert text.measure(float("nan"), "%", "") == "non disponible"
    assert text.at("Les Hauts de Lys") == "aux Hauts de Lys" and text.at("Toulouse") == "à Toulouse"
    assert text.of("Occitanie") == "d'Occitanie" and text.of("Hauts-de-France") == "des Hauts-de-France"
    import datetime as dt

    assert text.date(dt.date(2025, 3, 1)) == "1er mars 2025"
