"""The report for elected officials: display helpers for notebooks and the HTML export.

Notebooks call the helpers to show tables, figures, key figures and the
officer's own texts; :func:`export_html` turns an executed notebook into a
self-contained, code-free French HTML page with ``diagnostic/resources/report/``. Every
text coming from data is HTML-escaped by the templates of ``resources/fragments/``, so a
notebook cannot forget to.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import io
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mistune
import pandas as pd
from IPython.display import HTML
from markupsafe import Markup

from diagnostic import __version__, resources, text
from diagnostic._fs import write_atomic
from diagnostic.io.officer import image_data, image_refusal, read_text
from diagnostic.report import fragments

if TYPE_CHECKING:  # nbformat and nbconvert are imported by the export only: the notebook's kernel never needs them
    import nbformat

TEMPLATE_DIR = resources.path("report")


def fr_number(value: Any, digits: int = 0, unit: str = "") -> str:
    """A number the French way (narrow no-break space for thousands, decimal comma); « non disponible » if missing."""
    return text.number(value, digits, unit)


def html_table(
    df: pd.DataFrame,
    caption: str | None = None,
    numbers: Mapping[str, int | Callable[[Any], str]] | None = None,
    index: bool = False,
    source: str | None = None,
) -> HTML:
    """An accessible, escaped HTML table in a keyboard-reachable scroll box.

    ``numbers`` maps columns to decimal places (0 for counts) or to a formatter
    taking the value; ``source`` is said once under the table.
    """
    numbers = dict(numbers or {})
    columns = ([df.index.name or ""] if index else []) + list(df.columns)
    head = [{"text": str(c), "num": c in numbers} for c in columns]
    rows = []
    for idx, row in df.iterrows():
        cells = []
        for c in df.columns:
            v = row[c]
            if c in numbers:
                fmt = numbers[c]
                cells.append({"text": fmt(v) if callable(fmt) else fr_number(v, fmt), "num": True})
            else:
                cells.append({"text": "" if _isna(v) else str(v), "num": False})
        rows.append({"head": str(idx) if index else None, "cells": cells})
    return HTML(fragments.render("table.html.j2", caption=caption, head=head, rows=rows, source=source))


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def key_figures(items: Iterable[tuple[str, str]]) -> HTML:
    """Large key figures up front: (value already formatted, French label)."""
    return HTML(fragments.render("key_figures.html.j2", items=list(items)))


def figure(fig, alt: str, caption: str | None = None, print_only: bool = False) -> HTML:
    """A matplotlib figure as an inline PNG with an alt text.

    A figure with a layout engine (``layout="constrained"``) already fits its labels and legend and is saved as
    it is; any other is cropped to what it draws (``bbox_inches="tight"``, which costs a second drawing).
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, bbox_inches=None if fig.get_layout_engine() else "tight")
    return image(buf.getvalue(), alt, caption, print_only)


def image(png: bytes, alt: str, caption: str | None = None, print_only: bool = False) -> HTML:
    """A PNG inline (base64) with its alt text, optionally captioned or shown in print only."""
    return HTML(fragments.render("figure.html.j2", data=base64.b64encode(png).decode(), alt=alt, caption=caption,
                                 print_only=print_only))


def paragraph(text: str, css_class: str = "note") -> HTML:
    """A short French paragraph built from data (escaped)."""
    return HTML(fragments.render("paragraph.html.j2", text=text, css_class=css_class))


class _Renderer(mistune.HTMLRenderer):
    """Markdown to HTML where an image is embedded from ``images`` (the officer's texts folder) or not shown.

    Only an image :func:`diagnostic.io.officer.image_refusal` accepts becomes a ``data:``
    URI; any other (remote, protocol-relative, absolute, ``..``, or no folder given) is
    replaced by its description in brackets, so a report never requests a file or the network.
    """

    def __init__(self, images: Path | None = None) -> None:
        super().__init__(escape=True)
        self.images = images

    def image(self, text: str, url: str, title: str | None = None) -> str:
        if self.images is not None and image_refusal(self.images, url) is None:
            kind, raw = image_data(self.images, url)
            return str(fragments.render("inline_image.html.j2", data=f"data:{kind};base64,{base64.b64encode(raw).decode()}",
                                        alt=mistune.util.striptags(text)))
        return str(fragments.render("inline_image.html.j2", data=None, alt=mistune.util.striptags(text) or "image"))


_markdown = mistune.create_markdown(renderer=_Renderer(), plugins=["table", "strikethrough"])


def markdown(text: str, css_class: str | None = None, images: Path | None = None) -> HTML:
    """Markdown with raw HTML escaped (officers' texts, templated recommendation texts); images as :class:`_Renderer`."""
    render = _markdown if images is None else mistune.create_markdown(
        renderer=_Renderer(images), plugins=["table", "strikethrough"])
    return HTML(fragments.render("markdown.html.j2", body=Markup(render(text)), css_class=css_class))


def officer_text(texts_dir: Path, section: str) -> HTML | None:
    """The officer's Markdown for ``section`` (``<texts_dir>/<section>.md``), if written (read by :mod:`diagnostic.io.officer`)."""
    text = read_text(Path(texts_dir), section)
    return None if text is None else markdown(text, "officer-text", images=Path(texts_dir))


def _heading_id(text: str) -> str:
    """The id nbconvert gives a Markdown heading, so table-of-contents links resolve."""
    from nbconvert.filters.strings import _convert_header_id

    return _convert_header_id(text.strip())


#: Cells tagged so are for the officer in JupyterLab (instructions, parameters) and never reach the report.
OFFICER_TAG = "officier"


def table_of_contents(nb: nbformat.NotebookNode) -> list[dict[str, str]]:
    """Level-2 headings of the notebook's Markdown cells, in order (officer-only cells left out)."""
    toc = []
    for cell in nb.cells:
        if cell.cell_type != "markdown" or OFFICER_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        for line in cell.source.splitlines():
            m = re.match(r"^##\s+(.+?)\s*$", line)
            if m:
                toc.append({"id": _heading_id(m.group(1)), "title": m.group(1)})
    return toc


@functools.lru_cache(maxsize=1)
def _exporter() -> Any:
    """nbconvert's HTML exporter on ``diagnostic/resources/report/``, without its last pass; one per process.

    That pass re-reads the whole page with BeautifulSoup to give an alt text to images that lack one and a
    tab stop to JupyterLab's cell classes: the report's images all have their own alt text, its scrolling
    tables their own tab stop, and it has no JupyterLab class. On a 1 MB report the pass cost 0.2 s.
    Kept for the process, the exporter compiles its templates once (25 ms a report in a batch), and it
    validates the notebook once after its preprocessors rather than after each (``optimistic_validation``).
    """
    from nbconvert import HTMLExporter
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

    class ReportExporter(HTMLExporter):
        def from_notebook_node(self, nb: Any, resources: dict | None = None, **kw: Any) -> tuple[str, dict]:
            resources = self._init_resources(resources)
            self.register_filter("filter_data_type", WidgetsDataTypeFilter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources))
            return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

    return ReportExporter(extra_template_basedirs=[str(TEMPLATE_DIR.parent)], template_name=TEMPLATE_DIR.name,
                          exclude_input=True, optimistic_validation=True)


def export_html(
    notebook: nbformat.NotebookNode | str | Path,
    out_path: str | Path,
    *,
    title: str,
    subtitle: str = "",
    kind: str = "Diagnostic territorial partagé",
    vintages: str = "",
    fictional: bool = False,
    internal: bool = False,
    date: str | None = None,
    place: str = "",
    meta: Iterable[tuple[str, str]] = (),
    head_scripts: Iterable[str] = (),
    head_styles: Iterable[str] = (),
    mark: str | None = None,
) -> Path:
    """Export an executed notebook to ``out_path`` (written to a temporary file, then moved).

    ``place`` (the commune) and the date head every printed page, with the fictional or
    internal mark; cells tagged :data:`OFFICER_TAG` are left out.
    """
    import nbformat

    nb = notebook if isinstance(notebook, nbformat.NotebookNode) else nbformat.read(notebook, as_version=4)
    nb = nbformat.from_dict(nb)
    nb.cells = [c for c in nb.cells if OFFICER_TAG not in c.get("metadata", {}).get("tags", [])]
    exporter = _exporter()
    date = date or text.date(dt.date.today())
    # The running mark of every printed page (``mark`` overrides it: a commune's report on real data is internal
    # until the council adopts it, without being the evaluation's unmasked internal version).
    mark = mark if mark is not None and not fictional else "Données fictives" if fictional else "Document interne" if internal else ""
    resources = {
        "diagnostic": {
            "title": title,
            "subtitle": subtitle,
            "kind": kind,
            "date": date,
            "vintages": vintages,
            "meta": list(meta),
            "fictional": fictional,
            "internal": internal,
            "version": __version__,
            "css": (TEMPLATE_DIR / "report.css").read_text(encoding="utf-8"),
            "page_css": page_css(" — ".join(p for p in (place or title, date) if p), mark),
            "head_scripts": list(head_scripts),
            "head_styles": list(head_styles),
            "toc": table_of_contents(nb),
            "footer": (
                f"Produit avec l'atelier de diagnostic territorial (version {__version__}) le {date}."
                + (" Données fictives." if fictional else "")
            ),
        }
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return write_atomic(Path(out_path), body)


def css_string(value: str) -> str:
    """``value`` as a quoted CSS string: quotes, backslashes, line breaks and « < » escaped."""
    out = []
    for ch in str(value):
        if ch in '"\\<>' or ord(ch) < 32:
            out.append(f"\\{ord(ch):x} ")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def page_css(header: str, mark: str = "") -> str:
    """Running header (place and date, fictional or internal mark) and page numbers of the printed pages."""
    right = f"@top-right {{ content: {css_string(mark)}; }}" if mark else ""
    return (
        "@page { @top-left { content: " + css_string(header) + "; } " + right
        + ' @bottom-right { content: "Page " counter(page) " sur " counter(pages); } }'
        + " @page :first { @top-left { content: none; } @top-right { content: none; } }"
    )
