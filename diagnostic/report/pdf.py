"""``rapport.pdf`` / ``evaluation.pdf``: a report printed by headless Chromium from its print stylesheet.

Chromium (through playwright, already used by the tests) prints exactly what
a reader's browser prints: same fonts, same print stylesheet, the running
header and page numbers of its ``@page`` rules, and a tagged PDF with an
outline. The table of contents gets its page numbers in two passes: a first
print tells on which page each section heading falls (the PDF outline, read
back with pypdf), the numbers are written into the page, and the final print follows.
Nothing is fetched: the page is opened offline, as the reports are.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

from diagnostic.errors import MissingFileError, ParameterError

#: Chromium binaries tried in order (``DIAGNOSTIC_CHROMIUM`` first when set).
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
_PDF_OPTIONS = {"format": "A4", "print_background": True, "prefer_css_page_size": True,
                "tagged": True, "outline": True}
_SET_PAGES = """pages => {
  for (const el of document.querySelectorAll('[data-target]')) {
    const n = pages[el.dataset.target];
    el.textContent = n ? String(n) : '';
  }
}"""
_TARGETS = """() => Array.from(document.querySelectorAll('nav.toc a')).map(a => [
  a.getAttribute('href').slice(1), a.textContent.trim()])"""


def chromium_path() -> str:
    """The Chromium executable, or a French error saying how to install it."""
    chosen = os.environ.get("DIAGNOSTIC_CHROMIUM", "")
    if chosen:  # the officer's choice, or nothing: never another browser in its place
        if not (Path(chosen).is_file() and os.access(chosen, os.X_OK)):
            raise ParameterError("DIAGNOSTIC_CHROMIUM ne désigne pas un programme exécutable : le PDF ne peut pas "
                                 "être imprimé.", path=chosen,
                                 hint="corrigez le chemin (ex. /usr/bin/chromium) ou retirez la variable pour "
                                 "utiliser le Chromium du PATH.")
        return chosen
    candidates = [shutil.which(n) or "" for n in CHROMIUM_NAMES]
    for path in candidates:
        if path and Path(path).exists():
            return path
    raise MissingFileError("navigateur Chromium introuvable : il imprime le rapport en PDF.",
                           hint="« make demo » l'installe (paquet Debian chromium), ou indiquez son chemin dans "
                                "la variable DIAGNOSTIC_CHROMIUM.")


def page_texts(pdf: bytes) -> list[str]:
    """The text of each page of a PDF."""
    from pypdf import PdfReader

    return [p.extract_text() or "" for p in PdfReader(io.BytesIO(pdf)).pages]


def outline_pages(pdf: bytes) -> list[tuple[str, int]]:
    """The PDF's outline (Chromium makes it from the headings) as (title, 1-based page), in order."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    out: list[tuple[str, int]] = []

    def walk(items) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
            else:
                out.append((" ".join(str(item.title).split()), reader.get_destination_page_number(item) + 1))

    walk(reader.outline)
    return out


def heading_pages(pdf: bytes, titles: list[str]) -> list[int | None]:
    """The page of each title (in order) by the outline: the first entry of that title after the previous one."""
    outline = outline_pages(pdf)
    out: list[int | None] = []
    pos = 0
    for title in titles:
        want = " ".join(title.split())
        found = next((i for i in range(pos, len(outline)) if outline[i][0] == want), None)
        out.append(None if found is None else outline[found][1])
        pos = found + 1 if found is not None else pos
    return out


def write_pdf(html_path: str | Path, pdf_path: str | Path) -> Path:
    """Print ``html_path`` to ``pdf_path`` with its print stylesheet and a paginated table of contents.

    Chromium is driven from a thread of its own, so that this works as well from a
    Jupyter kernel or any caller already running an event loop.
    """
    from concurrent.futures import ThreadPoolExecutor

    from diagnostic._fs import write_atomic_bytes

    executable = chromium_path()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pdf = pool.submit(_print, Path(html_path), executable).result()
    return write_atomic_bytes(Path(pdf_path), pdf)


#: Printings at most to settle the page numbers of the contents and the cross-references (two suffice almost always).
MAX_PASSES = 4


def _print(html_path: Path, executable: str) -> bytes:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()
            page.goto(html_path.resolve().as_uri(), wait_until="load")
            page.emulate_media(media="print")
            targets = page.evaluate(_TARGETS)
            titles = [t for _, t in targets]
            pdf, written = page.pdf(**_PDF_OPTIONS), None
            # Writing the numbers lengthens the text they stand in, which can push a heading to the next page:
            # print again until the numbers written are the pages where the headings stand.
            for _ in range(MAX_PASSES):
                numbers = heading_pages(pdf, titles)
                if numbers == written:
                    break
                page.evaluate(_SET_PAGES, {target: n for (target, _), n in zip(targets, numbers) if n})
                pdf, written = page.pdf(**_PDF_OPTIONS), numbers
        finally:
            browser.close()
    return pdf
