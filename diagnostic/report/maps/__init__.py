"""Maps of the diagnostic: interactive (folium, offline) and static (matplotlib PNG).

``commune_map`` draws one commune with its QPVs, their 300 m band, services by
mediation domain, unmet needs and partners, all held by one ``MapLayers``;
``static_map`` writes the printable PNG twin of the same ``MapLayers``;
``overview_map`` colours every diagnosed commune and links to its report;
``add_walks`` draws the marches exploratoires on a map. Pages from
``save_map``/``map_html`` inline Leaflet and load nothing from the network; ``map_fragment`` embeds a map in a report holding
``map_assets()`` once.
"""

from diagnostic.report.maps.interactive import commune_map, overview_map
from diagnostic.report.maps.layers import MapLayers
from diagnostic.report.maps.offline import (
    make_offline,
    map_assets,
    map_fragment,
    map_html,
    save_map,
)
from diagnostic.report.maps.style import DOMAIN_COLOURS, classify
from diagnostic.report.maps.walks import add_walks


def __getattr__(name: str):
    # The printed map brings matplotlib (0.5 s to import): only the pages that print a map import it.
    if name == "static_map":
        from diagnostic.report.maps.static import static_map

        return static_map
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DOMAIN_COLOURS",
    "MapLayers",
    "add_walks",
    "classify",
    "commune_map",
    "make_offline",
    "map_assets",
    "map_fragment",
    "map_html",
    "overview_map",
    "save_map",
    "static_map",
]
