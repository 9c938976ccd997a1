"""The marches exploratoires on the commune map: each route as a line, each stop as a point with its comment.

Stop names and comments come from files officers or residents wrote: they are
HTML-escaped (popups and layer names from the Jinja templates of
``diagnostic/resources/fragments/maps/``, rendered by :func:`diagnostic.report.fragments.render`) and reach the page as GeoJSON properties
(JSON-encoded by folium), bound with plain Leaflet, never pasted into a script.
"""

from __future__ import annotations

import folium
import geopandas as gpd
from folium.utilities import JsCode

from diagnostic import text
from diagnostic.io.sources.marches import Walk
from diagnostic.report.fragments import render
from diagnostic.report.maps import style as st
from diagnostic.report.maps.geometry import feature_collection
from diagnostic.text import fold

WALK_COLOUR = "#c51b7d"
_BIND = JsCode("function(f, l) { l.bindTooltip(f.properties.tip, {sticky: true});"
               " if (f.properties.pop) { l.bindPopup(f.properties.pop, {maxWidth: 280}); } }")


def add_walks(m: folium.Map, walks: list[Walk]) -> folium.Map:
    """Add one layer per marche exploratoire (route and stops) to ``m``; a walk without stops shows its route.

    The layer control, when ``m`` has one, is moved after the new layers: its script names every layer,
    so it must come after them in the page.
    """
    controls = {k: v for k, v in m._children.items() if isinstance(v, folium.LayerControl)}
    for key in controls:
        del m._children[key]
    for walk in walks:
        day = walk.date.strftime("%d/%m/%Y")
        title = f"{st.esc(walk.name)}, {day}"
        label = walk.name if fold(walk.name).startswith("marche") else f"Marche exploratoire – {walk.name}, {day}"
        layer = folium.FeatureGroup(
            name=render("maps/layer_name.html.j2", colour=WALK_COLOUR, label=label,
                        count=text.count(len(walk.stops), "étape")),
            overlay=True,
        )
        if walk.route is not None:
            route = gpd.GeoDataFrame(geometry=[walk.route], crs="EPSG:2154")
            folium.GeoJson(
                feature_collection(route, {"tip": [title], "pop": [""]}, tolerance_m=1.0),
                style_function=lambda _: {"color": WALK_COLOUR, "weight": 4, "opacity": 0.85, "dashArray": "8 6",
                                          "className": "diag-marche"},
                on_each_feature=_BIND,
            ).add_to(layer)
        if len(walk.stops):
            tips = [f"Étape {s.stop} : {st.esc(s.name)}" for s in walk.stops.itertuples()]
            pops = [render("maps/walk_stop.html.j2", stop=s.stop, name=s.name, walk=walk.name, day=day, comment=s.comment)
                    for s in walk.stops.itertuples()]
            folium.GeoJson(
                feature_collection(walk.stops[["geometry"]], {"tip": tips, "pop": pops}, tolerance_m=0.0),
                marker=folium.CircleMarker(radius=7, color="#ffffff", weight=2, fill=True, fill_color=WALK_COLOUR,
                                           fill_opacity=1, class_name="diag-etape"),
                on_each_feature=_BIND,
            ).add_to(layer)
        layer.add_to(m)
    for key, control in controls.items():
        m.add_child(control, name=key)
    return m
