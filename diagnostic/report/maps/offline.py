"""Self-contained map pages: Leaflet inlined from the XStatic packages, no CDN.

folium links Leaflet, jQuery, Bootstrap and Font Awesome from CDNs. The maps of
this package need none but Leaflet and Leaflet.markercluster (popups and
tooltips are bound with plain Leaflet), so every CDN link is removed and the
two libraries are inlined from ``xstatic-leaflet`` and
``xstatic-leaflet-markercluster``, which ship the exact Leaflet 1.9.3 folium
targets. A page thus opens from a USB stick or an e-mail attachment with no
network at all.
"""

from __future__ import annotations

import base64
import re
from functools import lru_cache
from pathlib import Path

import folium
from branca.element import Element
from folium.elements import JSCSSMixin
from xstatic.pkg import leaflet, leaflet_markercluster

ASSETS_NAME = "diagnostic_assets"
#: Page-wide styles of the maps: legend, layer names, background without tiles.
MAP_CSS = """
.leaflet-container{background:#f7f7f4;font-size:13px}
.diag-legende{background:#fff;padding:6px 9px;border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.35);
line-height:1.35;max-width:260px}
.diag-legende summary{cursor:pointer;font-weight:bold}
.diag-legende[open] summary{margin-bottom:4px}
.diag-legende-titre{margin:0 0 4px;font-weight:bold}
@media (max-width:40rem){.diag-legende{max-width:200px;max-height:45vh;overflow:auto}}
.diag-legende div{display:flex;align-items:center;gap:6px;margin:2px 0}
.diag-legende i{display:inline-block;width:18px;height:12px;flex:none;border:1px solid #666}
.diag-point{display:inline-block;width:10px;height:10px;border-radius:50%;border:1px solid #fff;
box-shadow:0 0 0 1px #999}
.diag-cluster{border-radius:50%;color:#fff;font-weight:bold;text-align:center;border:2px solid #fff;
box-shadow:0 0 3px rgba(0,0,0,.5)}
.diag-cluster span{display:block;height:100%;border-radius:50%}
"""
_SOURCE_MAP = re.compile(r"^\s*//# sourceMappingURL=.*$", re.MULTILINE)
_EXTERNAL = re.compile(
    r"""<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//"""
    r"""|url\(\s*["']?(?:https?:)?//|@import""",
    re.IGNORECASE,
)


def _read(package, name: str) -> str:
    return _SOURCE_MAP.sub("", (Path(package.BASE_DIR) / name).read_text(encoding="utf-8"))


def _inline_images(css: str, base: Path) -> str:
    """Replace ``url(images/x.png)`` by data URIs so that no file is looked for."""

    def data_uri(match: re.Match) -> str:
        data = base64.b64encode((base / match.group(1)).read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{data})"

    return re.sub(r"url\((images/[\w.-]+\.png)\)", data_uri, css)


@lru_cache(maxsize=1)
def map_assets() -> str:
    """Leaflet and Leaflet.markercluster (CSS and JS) plus the maps' styles, inline.

    Put it once in a page (e.g. a report's ``<head>``) before the fragments of
    :func:`map_fragment`, so that several maps share one copy of Leaflet.
    """
    css = "\n".join(
        [
            _inline_images(_read(leaflet, "leaflet.css"), Path(leaflet.BASE_DIR)),
            _read(leaflet_markercluster, "MarkerCluster.css"),
            _read(leaflet_markercluster, "MarkerCluster.Default.css"),
            MAP_CSS,
        ]
    )
    js = [_read(leaflet, "leaflet.js"), _read(leaflet_markercluster, "leaflet.markercluster.js")]
    return f"<style>{css}</style>\n" + "\n".join(f"<script>{code}</script>" for code in js)


def make_offline(m: folium.Map) -> folium.Map:
    """Drop every CDN link of ``m`` and its children and inline the assets in its page head.

    Idempotent; the maps of this package come out of it, so that their display in
    a notebook needs no network either. Elements added later are handled by
    :func:`map_html`, :func:`save_map` and :func:`map_fragment`; a folium plugin
    other than Leaflet.markercluster loses its CDN script and will not work.
    """
    stack = [m]
    while stack:
        element = stack.pop()
        if isinstance(element, JSCSSMixin):
            element.default_js = []
            element.default_css = []
        stack.extend(element._children.values())
    figure = m.get_root()
    if ASSETS_NAME not in figure.header._children:
        figure.header.add_child(Element(map_assets()), name=ASSETS_NAME, index=0)
    return m


def check_offline(page: str) -> str:
    """Return ``page`` unchanged, or raise if it would load anything from the network."""
    match = _EXTERNAL.search(page)
    if match:
        raise ValueError(f"map page would load an external resource: {match.group(0)!r}")
    return page


def map_html(m: folium.Map) -> str:
    """The whole map page as one self-contained HTML string."""
    return check_offline(make_offline(m).get_root().render())


def save_map(m: folium.Map, path: str | Path) -> Path:
    """Write the self-contained map page to ``path`` (UTF-8) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(map_html(m), encoding="utf-8")
    return path


def map_fragment(m: folium.Map, *, height: str = "520px", include_assets: bool = False) -> str:
    """The map as a ``<div>`` and its ``<script>``, to embed in a larger HTML page.

    The page must hold :func:`map_assets` once, before the first fragment;
    ``include_assets=True`` adds them to this fragment (for a page with one map).
    The page-wide styles folium writes for a full-page map are left out.
    """
    figure = make_offline(m).get_root()
    figure.render()
    name = m.get_name()
    fragment = (
        f'<div class="diag-carte" style="position:relative;width:100%;height:{height}">'
        f"<style>#{name}{{position:relative;width:100%;height:100%}}</style>"
        f"{figure.html.render()}</div>\n<script>{figure.script.render()}</script>"
    )
    return check_offline((map_assets() + "\n" if include_assets else "") + fragment)
