"""The report for elected officials: display helpers for notebooks and the HTML export.

Notebooks call the helpers to show tables, figures, key figures and the
officer's own texts; :func:`export_html` turns an executed notebook into a
self-contained, code-free French HTML page with ``templates/report/``. Every
text coming from data is HTML-escaped here, so a notebook cannot forget to.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import mistune
import nbformat
import pandas as pd
from IPython.display import HTML
from nbconvert import HTMLExporter
from nbconvert.filters.strings import _convert_header_id

from diagnostic import __version__, text
from diagnostic.catalog import PROJECT_ROOT

TEMPLATE_DIR = PROJECT_ROOT / "templates" / "report"
_markdown = mistune.create_markdown(escape=True, plugins=["table", "strikethrough"])


def fr_number(value: Any, digits: int = 0, unit: str = "") -> str:
    """A number the French way (narrow no-break space for thousands, decimal comma); « n.d. » if missing."""
    return text.number(value, digits, unit, missing="n.d.")


def html_table(
    df: pd.DataFrame,
    caption: str | None = None,
    numbers: Mapping[str, int] | None = None,
    index: bool = False,
) -> HTML:
    """An accessible, escaped HTML table; ``numbers`` maps columns to decimal places."""
    numbers = dict(numbers or {})
    num = ' class="num"'
    head = "".join(
        f'<th scope="col"{num if c in numbers else ""}>{html.escape(str(c))}</th>'
        for c in ([df.index.name or ""] if index else []) + list(df.columns)
    )
    rows = []
    for idx, row in df.iterrows():
        cells = [f'<th scope="row">{html.escape(str(idx))}</th>'] if index else []
        for c in df.columns:
            v = row[c]
            if c in numbers:
                cells.append(f'<td class="num">{fr_number(v, numbers[c])}</td>')
            else:
                cells.append(f"<td>{'' if _isna(v) else html.escape(str(v))}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return HTML(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def key_figures(items: Iterable[tuple[str, str]]) -> HTML:
    """Large key figures up front: (value already formatted, French label)."""
    blocks = "".join(
        f'<div class="keyfigure"><span class="value">{html.escape(v)}</span>'
        f'<span class="label">{html.escape(label)}</span></div>'
        for v, label in items
    )
    return HTML(f'<div class="keyfigures">{blocks}</div>')


def figure(fig, alt: str, caption: str | None = None, print_only: bool = False) -> HTML:
    """A matplotlib figure as an inline PNG with an alt text."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, bbox_inches="tight")
    return image(buf.getvalue(), alt, caption, print_only)


def image(png: bytes, alt: str, caption: str | None = None, print_only: bool = False) -> HTML:
    data = base64.b64encode(png).decode()
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    cls = ' class="print-only"' if print_only else ""
    return HTML(f'<figure{cls}><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">{cap}</figure>')


def paragraph(text: str, css_class: str = "note") -> HTML:
    """A short French paragraph built from data (escaped)."""
    return HTML(f'<p class="{css_class}">{html.escape(text)}</p>')


def markdown(text: str, css_class: str | None = None) -> HTML:
    """Markdown with raw HTML escaped (used for officers' texts and templated recommendation texts)."""
    body = _markdown(text)
    return HTML(f'<div class="{css_class}">{body}</div>' if css_class else body)


def officer_text(texts_dir: Path, section: str) -> HTML | None:
    """The officer's Markdown for ``section`` (``<texts_dir>/<section>.md``), if written."""
    path = Path(texts_dir) / f"{section}.md"
    if not path.exists():
        return None
    return markdown(path.read_text(encoding="utf-8"), "officer-text")


def _heading_id(text: str) -> str:
    """The id nbconvert gives a Markdown heading, so table-of-contents links resolve."""
    return _convert_header_id(text.strip())


def table_of_contents(nb: nbformat.NotebookNode) -> list[dict[str, str]]:
    """Level-2 headings of the notebook's Markdown cells, in order."""
    toc = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            m = re.match(r"^##\s+(.+?)\s*$", line)
            if m:
                toc.append({"id": _heading_id(m.group(1)), "title": m.group(1)})
    return toc


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
    head_scripts: Iterable[str] = (),
    head_styles: Iterable[str] = (),
) -> Path:
    """Export an executed notebook to ``out_path`` (written to a temporary file, then moved)."""
    nb = notebook if isinstance(notebook, nbformat.NotebookNode) else nbformat.read(notebook, as_version=4)
    exporter = HTMLExporter(
        extra_template_basedirs=[str(TEMPLATE_DIR.parent)], template_name=TEMPLATE_DIR.name, exclude_input=True
    )
    date = date or dt.date.today().strftime("%d/%m/%Y")
    resources = {
        "diagnostic": {
            "title": title,
            "subtitle": subtitle,
            "kind": kind,
            "date": date,
            "vintages": vintages,
            "fictional": fictional,
            "internal": internal,
            "version": __version__,
            "css": (TEMPLATE_DIR / "report.css").read_text(encoding="utf-8"),
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


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` beside ``path`` then rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
