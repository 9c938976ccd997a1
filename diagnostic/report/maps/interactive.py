"""Interactive folium maps: one commune with its QPVs and services, and the overview of communes.

Every text from the data is HTML-escaped before it reaches the page: legends,
tooltips, popups and layer names come from the Jinja templates under
``diagnostic/resources/fragments/maps/``, rendered by :func:`diagnostic.report.fragments.render`
(autoescape); the service points' texts are escaped the same way in Python (:func:`style.esc`).
Popups and tooltips are bound with plain Leaflet (no jQuery). Geometries are simplified and
rounded once, and each is embedded once: the QPV layer carries the choropleth fill, the
strong-need outline and the tooltip together.
"""

from __future__ import annotations

import json

import folium
import geopandas as gpd
import pandas as pd
import shapely
from branca.element import MacroElement
from folium.map import Layer
from folium.template import Template
from folium.utilities import JsCode

from diagnostic import text
from diagnostic.io.reference import DOMAINS
from diagnostic.report.fragments import render
from diagnostic.report.maps import style as st
from diagnostic.report.maps.geometry import band_ring, feature_collection, lambert93, web_geometries
from diagnostic.report.maps.layers import MapLayers
from diagnostic.report.maps.offline import make_offline

#: A domain with more service points than this is clustered.
CLUSTER_FROM = 20
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = '© les contributeurs d’<a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>'
HATCH_ID = "diag-hachures"
HATCH_FILL = f"url(#{HATCH_ID})"
_BIND_TOOLTIP = JsCode("function(f, l) { l.bindTooltip(f.properties.tip, {sticky: true}); }")
_BIND_LINK = JsCode("function(f, l) { l.bindTooltip(f.properties.tip, {sticky: true}); l.bindPopup(f.properties.pop); }")


class _CollapsibleLayers(MacroElement):
    """On a small screen the layer control starts folded (a button) and folds again on a map click.

    It runs once the page's script has ended: folium may declare the control after this element
    (layers added later), and a frame still unsized (JupyterLab's first display) counts as small.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        setTimeout(function() {
            if (window.matchMedia("(max-width: 40rem)").matches) {
                {{ this.control.get_name() }}.collapse();
                {{ this._parent.get_name() }}.on("click", function() { {{ this.control.get_name() }}.collapse(); });
            }
        }, 0);
        {% endmacro %}
        """
    )

    def __init__(self, control: folium.LayerControl) -> None:
        super().__init__()
        self._name = "CollapsibleLayers"
        self.control = control


def _layer_control(m: folium.Map) -> None:
    """The layer control, unfolded on a wide screen and folded on a phone."""
    control = folium.LayerControl(collapsed=False).add_to(m)
    _CollapsibleLayers(control).add_to(m)


class Furniture(MacroElement):
    """Legend, metric scale bar and the SVG hatch pattern of missing values."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function() {
            var small = window.matchMedia("(max-width: 40rem)").matches;
            if (!document.getElementById({{ this.hatch_id|tojson }})) {
                var holder = document.createElement("div");
                holder.innerHTML = {{ this.hatch_svg|tojson }};
                document.body.appendChild(holder.firstChild);
            }
            L.control.scale({imperial: false, maxWidth: 160}).addTo({{ this._parent.get_name() }});
            {%- if this.legend %}
            var legend = L.control({position: "bottomright"});
            legend.onAdd = function() {
                var div = L.DomUtil.create("details", "diag-legende");
                div.open = !small;
                div.innerHTML = "<summary>Légende</summary>" + {{ this.legend|tojson }};
                L.DomEvent.disableClickPropagation(div);
                return div;
            };
            legend.addTo({{ this._parent.get_name() }});
            {%- endif %}
        })();
        {% endmacro %}
        """
    )

    def __init__(self, legend: str) -> None:
        super().__init__()
        self._name = "Furniture"
        self.legend = legend
        self.hatch_id = HATCH_ID
        self.hatch_svg = render("maps/hatch.svg.j2", id=HATCH_ID, st=st)


def _legend(
    title: str,
    classes: st.Classes | None,
    has_missing: bool,
    *,
    band_m: float | None = None,
    needs: bool = False,
) -> str:
    """The French legend (HTML; the title comes from the caller and is escaped).

    Without classes (no indicator), the title names the plain QPV fill.
    """
    return render("maps/legend.html.j2", st=st, title=title, classes=classes, has_missing=has_missing, band_m=band_m,
                  needs=needs)


def base_map(area: gpd.GeoDataFrame, tiles: bool, title: str) -> folium.Map:
    """A map without tiles fitted to ``area`` (Lambert-93), or with OpenStreetMap when asked."""
    minx, miny, maxx, maxy = area.to_crs("EPSG:4326").total_bounds
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=12, tiles=None,
                   minZoom=5, maxZoom=19)
    m.get_root().title = st.esc(title)
    if tiles:
        folium.TileLayer(OSM_TILES, attr=OSM_ATTRIBUTION, name="Fond OpenStreetMap", max_zoom=19).add_to(m)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    return m


def _outlines(gdf: gpd.GeoDataFrame, name: str, style: dict, tolerance_m: float) -> folium.GeoJson:
    """Non-interactive outlines (background communes, the commune's limit)."""
    return folium.GeoJson(
        feature_collection(gdf, tolerance_m=tolerance_m),
        name=name,
        style_function=lambda _: style,
        interactive=False,
    )


def _qpv_tooltips(
    qpv: gpd.GeoDataFrame,
    values: pd.Series | None,
    label: str | None,
    classes: st.Classes | None,
    needs: dict[str, list[str]],
) -> list[str]:
    """French tooltip of each QPV: name, code, population, indicator value, strong needs."""
    population = qpv["population"] if "population" in qpv else pd.Series(None, index=qpv.index)
    shown = values is not None and classes is not None
    return [
        render("maps/qpv_tooltip.html.j2", name=st.blank(qpv.at[i, "lib_qp"]), code=code, label=label,
                 population=text.number(population[i], 0) if pd.notna(population[i]) else None,
                 value=classes.format(values[i]) if shown else None, needs=needs.get(code))
        for i, code in qpv["code_qp"].items()
    ]


def _qpv_styles(qpv: gpd.GeoDataFrame, values: pd.Series | None, classes: st.Classes | None,
                needs: dict[str, list[str]]) -> dict[str, dict]:
    """Style of each QPV: class colour (hatched when missing) and a red outline for strong needs."""
    styles = {}
    for i, code in qpv["code_qp"].items():
        if values is None or classes is None:
            fill, opacity = st.NEUTRAL_FILL, 0.45
        else:
            fill, opacity = classes.colour(values[i]) or HATCH_FILL, 0.85
        strong = code in needs
        styles[code] = {
            "fillColor": fill,
            "fillOpacity": opacity,
            "color": st.NEED_OUTLINE if strong else st.QPV_OUTLINE,
            "weight": 3.5 if strong else 1.5,
            "className": "diag-qpv diag-besoin-fort" if strong else "diag-qpv",
        }
    return styles


def _compact_json(obj: object) -> str:
    """JSON for an inline script: no spaces, accents kept, HTML-significant characters escaped."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    for char in "<>&'":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


class _Points(Layer):
    """Point features (services, partners) as compact rows, clustered or not.

    Each row is ``[lat, lon, name, type index, address, hours]``, already
    HTML-escaped: far lighter than a GeoJSON feature per point.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = {% if this.cluster %}L.markerClusterGroup({
            showCoverageOnHover: false, maxClusterRadius: 45, disableClusteringAtZoom: 17,
            iconCreateFunction: function(c) {
                var n = c.getChildCount(), s = n < 10 ? 28 : n < 100 ? 34 : 40;
                return L.divIcon({className: {{ this.cluster_class|tojson }}, iconSize: L.point(s, s),
                    html: '<span style="background:{{ this.colour }};line-height:' + (s - 4) + 'px">' + n + '</span>'});
            }
        }){% else %}L.featureGroup(){% endif %};
        (function() {
            var types = {{ this.types }}, style = {{ this.marker }}, markers = [];
            {{ this.rows }}.forEach(function(r) {
                var m = L.circleMarker([r[0], r[1]], style).bindTooltip(r[2]);
                m.bindPopup("<b>" + r[2] + "</b><br>" + types[r[3]]
                    + (r[4] ? "<br>Adresse : " + r[4] : "") + (r[5] ? "<br>Horaires : " + r[5] : ""));
                markers.push(m);
            });
            {% if this.cluster %}{{ this.get_name() }}.addLayers(markers);
            {% else %}markers.forEach(function(m) { {{ this.get_name() }}.addLayer(m); });{% endif %}
        })();
        {% endmacro %}
        """
    )

    def __init__(self, points: gpd.GeoDataFrame, types: pd.Series, *, name: str, colour: str,
                 marker: dict, css_class: str, cluster: bool) -> None:
        super().__init__(name=name, overlay=True)
        self._name = "Points"
        lonlat = shapely.get_coordinates(web_geometries(points.geometry, 0))
        codes, labels = pd.factorize(types.map(st.esc))
        texts = [points[c].map(st.esc) if c in points else [""] * len(points) for c in ("name", "address", "hours")]
        self.rows = _compact_json([
            [lat, lon, n, int(t), a, h]
            for (lon, lat), n, t, a, h in zip(lonlat.tolist(), texts[0], codes, texts[1], texts[2])
        ])
        self.types = _compact_json(list(labels))
        self.marker = _compact_json({**marker, "className": css_class})
        self.colour = colour
        self.cluster = cluster
        self.cluster_class = css_class.replace("diag-service", "diag-cluster") if cluster else ""


def _services_layers(services: gpd.GeoDataFrame, cluster: bool) -> list[_Points]:
    """One layer per mediation domain, in report order; dense domains are clustered."""
    if services.empty:
        return []
    domain = services["domain"] if "domain" in services else pd.Series(None, index=services.index)
    labels = services["domain_label"] if "domain_label" in services else pd.Series(None, index=services.index)
    keyed = pd.DataFrame([st.domain_style(k, lab) for k, lab in zip(domain, labels)],
                         columns=["key", "label", "colour"], index=services.index)
    types = services["type_label"] if "type_label" in services else services["type_code"]
    order = list(DOMAINS) + [st.OTHER_DOMAIN[0]]
    layers = []
    for key in sorted(keyed["key"].unique(), key=order.index):
        part = services[keyed["key"] == key]
        label, colour = keyed.loc[part.index[0], ["label", "colour"]]
        layers.append(_Points(
            part, types.loc[part.index],
            name=render("maps/layer_name.html.j2", colour=colour, label=label, count=len(part)),
            colour=colour,
            marker={"radius": 6, "color": "#ffffff", "weight": 1.5, "fillColor": colour, "fillOpacity": 0.95},
            css_class=f"diag-service diag-service-{key}",
            cluster=cluster and len(part) > CLUSTER_FROM,
        ))
    return layers


def _actors_layer(actors: gpd.GeoDataFrame) -> _Points:
    return _Points(
        actors, actors["type_label"],
        name=render("maps/layer_name.html.j2", colour=st.ACTOR_COLOUR, label="Partenaires", count=len(actors)),
        colour=st.ACTOR_COLOUR,
        marker={"radius": 5, "color": st.ACTOR_COLOUR, "weight": 2, "fillColor": "#ffffff", "fillOpacity": 1},
        css_class="diag-partenaire",
        cluster=False,
    )


def commune_map(layers: MapLayers, *, tiles: bool = False, cluster: bool = True, tolerance_m: float = 3.0) -> folium.Map:
    """The map of one commune: its QPVs and their band, services by domain, needs, partners.

    The QPVs are coloured by the layers' indicator (classes from mapclassify,
    French legend); QPVs with a strong unmet need get a red outline and their
    tooltip lists the domains. Surrounding communes (``context``) are the
    background; ``tiles=True`` adds OpenStreetMap (the page then needs the network
    for the tiles only). ``cluster=False`` draws every service point.
    """
    layers = layers.projected()
    commune, qpv, band_m, label = layers.commune, layers.qpv, layers.band_m, layers.label
    name = str(commune["lib_com"].iloc[0])
    m = base_map(commune, tiles, f"Carte – {name}")
    if layers.context is not None:
        _outlines(layers.context, "Communes voisines", {
            "color": st.CONTEXT_OUTLINE, "weight": 1, "fillColor": st.CONTEXT_FILL,
            "fillOpacity": 0 if tiles else 1, "className": "diag-contexte",
        }, max(tolerance_m, 10.0)).add_to(m)
    _outlines(commune, f"Limite communale – {st.esc(name)}", {
        "color": st.COMMUNE_OUTLINE, "weight": 2.5, "fillColor": "#ffffff",
        "fillOpacity": 0 if tiles else 1, "className": "diag-commune",
    }, tolerance_m).add_to(m)

    values, classes = layers.classes()
    strong = layers.strong_needs()
    if not qpv.empty:
        band = band_ring(qpv, band_m)
        folium.GeoJson(
            feature_collection(band, {"tip": [f"Bande de {band_m:g} m autour des QPV"]}, tolerance_m=tolerance_m),
            name=f"Bande de {band_m:g} m autour des QPV",
            style_function=lambda _: {
                "color": st.BAND_OUTLINE, "weight": 1, "dashArray": "5 4", "fillColor": st.BAND_FILL,
                "fillOpacity": 0.45, "className": "diag-bande",
            },
            on_each_feature=_BIND_TOOLTIP,
        ).add_to(m)
        styles = _qpv_styles(qpv, values, classes, strong)
        folium.GeoJson(
            feature_collection(qpv, {"tip": _qpv_tooltips(qpv, values, label, classes, strong)},
                               ids=qpv["code_qp"].tolist(), tolerance_m=tolerance_m),
            name="Quartiers prioritaires (QPV)" if layers.indicator is None else f"QPV – {st.esc(label)}",
            style_function=lambda f: styles[f["id"]],
            on_each_feature=_BIND_TOOLTIP,
        ).add_to(m)
    for layer in _services_layers(layers.services, cluster):
        layer.add_to(m)
    if layers.actors is not None:
        _actors_layer(layers.actors).add_to(m)
    legend = "" if qpv.empty else _legend(
        "Quartiers prioritaires (QPV)" if classes is None else label,
        classes,
        values is not None and bool(values.isna().any()),
        band_m=band_m,
        needs=bool(strong),
    )
    Furniture(legend).add_to(m)
    _layer_control(m)
    return make_offline(m)


def overview_map(
    communes: gpd.GeoDataFrame,
    *,
    indicator: str,
    indicator_label: str,
    link_column: str = "rapport",
    tiles: bool = False,
    scheme: str = "natural_breaks",
    k: int = 5,
    tolerance_m: float = 25.0,
) -> folium.Map:
    """Every diagnosed commune coloured by ``indicator``, each linking to its report.

    ``link_column`` holds a link relative to the page (e.g. ``31555/rapport.html``);
    a commune without one says that its report is not available.
    """
    communes = lambert93(communes, "communes").reset_index(drop=True)
    m = base_map(communes, tiles, f"Vue d’ensemble – {indicator_label}")
    values = pd.to_numeric(communes[indicator], errors="coerce")
    classes = st.classify(values, k=k, scheme=scheme)
    tips, pops, styles = [], [], {}
    for i, code in communes["insee_com"].items():
        commune, link = {"name": st.blank(communes.at[i, "lib_com"]), "code": code}, communes.at[i, link_column]
        tips.append(render("maps/commune_tooltip.html.j2", **commune, popup=False, label=indicator_label,
                           value=classes.format(values[i])))
        pops.append(render("maps/commune_tooltip.html.j2", **commune, popup=True, link=st.blank(link)))
        styles[code] = {
            "fillColor": classes.colour(values[i]) or HATCH_FILL,
            "fillOpacity": 0.85, "color": "#4d4d4d", "weight": 1, "className": "diag-commune-apercu",
        }
    folium.GeoJson(
        feature_collection(communes, {"tip": tips, "pop": pops}, ids=communes["insee_com"].tolist(),
                           tolerance_m=tolerance_m),
        name=f"Communes – {st.esc(indicator_label)}",
        style_function=lambda f: styles[f["id"]],
        on_each_feature=_BIND_LINK,
    ).add_to(m)
    Furniture(_legend(indicator_label, classes, bool(values.isna().any()))).add_to(m)
    _layer_control(m)
    return make_offline(m)

