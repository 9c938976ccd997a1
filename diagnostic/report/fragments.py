"""The HTML blocks of the reports, rendered from the Jinja templates of ``resources/fragments/``.

The one autoescaping environment of the package's HTML blocks (sections, the maps' tooltips,
popups and legends, the network view, the regional map, the explorer's messages): text from
data is escaped by Jinja, so no Python code writes markup. A block already rendered (a table
inside a section, a map) is passed back in as :class:`markupsafe.Markup`.
"""

from __future__ import annotations

from typing import Any

import jinja2

from diagnostic import resources

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(resources.path("fragments")), autoescape=True,
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
)


def render(name: str, /, **context: Any) -> str:
    """The fragment ``name`` (e.g. ``"table.html.j2"``) rendered with ``context``, escaped."""
    return _ENV.get_template(name).render(**context)
