"""The regional map: EPCIs coloured by their gap to the target ratio, with the communes with QPVs.

One classification (:func:`gap_class`) colours the interactive map (folium, offline), its PNG
twin for print and the text alternative, so the three always agree. Without EPCI outlines,
the communes with QPVs are drawn coloured by their own gap. Tooltips, popups and legend come
from the templates of ``diagnostic/resources/fragments/region/`` (autoescape).
"""

from __future__ import annotations

from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from diagnostic import text
from diagnostic.report.fragments import render
from diagnostic.report.maps import style as st
from diagnostic.report.maps.geometry import feature_collection, lambert93
from diagnostic.report.maps.interactive import HATCH_FILL, Furniture, base_map
from diagnostic.report.maps.offline import make_offline

#: (upper bound of ratio ÷ target, colour, label): a diverging red–blue ramp, readable in grey.
CLASSES = (
    (0.5, "#b2182b", "moins de la moitié de la cible"),
    (1.0, "#ef8a62", "de la moitié à la cible"),
    (1.5, "#67a9cf", "de la cible à 1,5 fois la cible"),
    (float("inf"), "#2166ac", "plus de 1,5 fois la cible"),
)
UNKNOWN = (st.MISSING_FILL, "sans QPV ou ratio indéterminé")
_BIND = "function(f, l) { l.bindTooltip(f.properties.tip, {sticky: true}); l.bindPopup(f.properties.pop); }"


def gap_class(ratio: float, target: float) -> tuple[str, str]:
    """(colour, French label) of a territory's ratio against the target; grey when unknown."""
    if ratio is None or pd.isna(ratio):
        return UNKNOWN
    return next((colour, label) for bound, colour, label in CLASSES if ratio / target < bound)


def _tip(row: pd.Series, target: float, *, popup: bool = False) -> str:
    """A territory's tooltip (posts, ratio to the target, need); as a popup, with the link to its report."""
    if pd.isna(row["code"]):  # an EPCI without communes with QPVs
        return render("region/territory_tooltip.html.j2", name=st.blank(row["lib_epci"]), posts=None, popup=False)
    return render("region/territory_tooltip.html.j2", name=st.blank(row["name"]), known=not pd.isna(row["posts"]),
                  posts=text.number(row["posts"], 1),
                  posts_word=text.plural(row["posts"], "poste"), ratio=text.number(row["ratio"], 1, missing="indéterminé"),
                  target=text.number(target, 1), need=st.blank(row["need_level"]), popup=popup,
                  link=st.blank(row["report"]) if popup else "")


def region_map(epci: pd.DataFrame, communes: pd.DataFrame, epci_shapes: gpd.GeoDataFrame | None,
               commune_shapes: gpd.GeoDataFrame, target: float) -> folium.Map:
    """The interactive map: EPCI outlines filled by gap class (when given), communes with QPVs on top."""
    shapes = commune_shapes.merge(communes, left_on="insee_com", right_on="code")
    shapes = lambert93(gpd.GeoDataFrame(shapes, geometry="geometry", crs=commune_shapes.crs), "communes")
    area = shapes if epci_shapes is None else lambert93(epci_shapes, "EPCI")
    m = base_map(area, False, "Synthèse régionale – écart à la cible")
    m.options["zoom"] = 8
    if epci_shapes is not None:
        layer = lambert93(epci_shapes, "EPCI").merge(epci, left_on="siren_epci", right_on="code", how="left")
        layer["name"] = layer["name"].fillna(layer["lib_epci"])
        colours = [gap_class(r, target)[0] if c else UNKNOWN[0] for r, c in zip(layer["ratio"], layer["code"].notna())]
        tips = [_tip(r, target) for _, r in layer.iterrows()]
        styles = {str(i): {"fillColor": c if c != UNKNOWN[0] else HATCH_FILL, "fillOpacity": 0.75, "color": "#4d4d4d",
                           "weight": 1} for i, c in enumerate(colours)}
        folium.GeoJson(
            feature_collection(layer, {"tip": tips, "pop": tips}, ids=[str(i) for i in range(len(layer))], tolerance_m=200),
            name="EPCI – écart à la cible", style_function=lambda f: styles[f["id"]],
            on_each_feature=folium.utilities.JsCode(_BIND),
        ).add_to(m)
    else:
        styles = {str(c): {"fillColor": gap_class(r, target)[0], "fillOpacity": 0.6, "color": "#4d4d4d", "weight": 1}
                  for c, r in zip(shapes["code"], shapes["ratio"])}
        folium.GeoJson(
            feature_collection(shapes, ids=[str(c) for c in shapes["code"]], tolerance_m=50),
            name="Communes avec QPV – écart à la cible", style_function=lambda f: styles[f["id"]], interactive=False,
        ).add_to(m)
    points = shapes.assign(geometry=shapes.geometry.representative_point())
    top = float(points["qpv_population"].max()) if points["qpv_population"].notna().any() else 0.0
    tips, pops, marks = [], [], {}
    for _, row in points.iterrows():
        tips.append(_tip(row, target))
        pops.append(_tip(row, target, popup=True))
        size = float(row["qpv_population"]) / top if top > 0 and pd.notna(row["qpv_population"]) else 0.0
        marks[str(row["code"])] = {"radius": 4 + 10 * float(np.sqrt(max(size, 0.0))), "color": "#1a1a1a", "weight": 1, "fill": True,
                                   "fillColor": gap_class(row["ratio"], target)[0], "fillOpacity": 0.9}
    folium.GeoJson(
        feature_collection(points, {"tip": tips, "pop": pops}, ids=[str(c) for c in points["code"]], tolerance_m=0),
        name="Communes avec QPV", marker=folium.CircleMarker(), style_function=lambda f: marks[f["id"]],
        on_each_feature=folium.utilities.JsCode(_BIND),
    ).add_to(m)
    Furniture(legend(target)).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    return make_offline(m)


def legend(target: float) -> str:
    """The map's French legend (HTML)."""
    return render("region/legend.html.j2", target=text.number(target, 1),
                  classes=[(colour, label) for _, colour, label in CLASSES] + [UNKNOWN])


def static_region_map(epci: pd.DataFrame, communes: pd.DataFrame, epci_shapes: gpd.GeoDataFrame | None,
                      commune_shapes: gpd.GeoDataFrame, target: float, path: str | Path, *, title: str,
                      dpi: int = 130) -> Path:
    """The PNG twin of :func:`region_map` for print: same classes, colours and legend."""
    fig = Figure(figsize=(11, 8), dpi=dpi)
    ax = fig.add_axes((0.01, 0.02, 0.64, 0.9))
    shapes = lambert93(commune_shapes, "communes")
    mine = shapes.merge(communes, left_on="insee_com", right_on="code")
    if epci_shapes is not None:
        layer = lambert93(epci_shapes, "EPCI").merge(epci, left_on="siren_epci", right_on="code", how="left")
        colours = [gap_class(r, target)[0] if pd.notna(c) else UNKNOWN[0] for r, c in zip(layer["ratio"], layer["code"])]
        layer.plot(ax=ax, color=colours, edgecolor="#4d4d4d", linewidth=0.6)
        bounds = layer.total_bounds
    else:
        context = shapes[shapes.intersects(mine.geometry.union_all().buffer(20_000))] if len(mine) else shapes
        context.plot(ax=ax, color=st.CONTEXT_FILL, edgecolor=st.CONTEXT_OUTLINE, linewidth=0.3)
        if len(mine):
            mine.plot(ax=ax, color=[gap_class(r, target)[0] for r in mine["ratio"]], edgecolor="#4d4d4d",
                      linewidth=0.6, alpha=0.75)
        bounds = (mine if len(mine) else shapes).total_bounds
    if len(mine):
        pts = mine.geometry.representative_point()
        pop = pd.to_numeric(mine["qpv_population"], errors="coerce").fillna(0)
        sizes = 12 + 160 * np.sqrt(pop / pop.max()) if pop.max() > 0 else 20
        ax.scatter(pts.x, pts.y, s=sizes, c=[gap_class(r, target)[0] for r in mine["ratio"]], edgecolors="#1a1a1a",
                   linewidths=0.6, zorder=5)
    xmin, ymin, xmax, ymax = bounds
    pad = 0.04 * max(xmax - xmin, ymax - ymin, 1)
    ax.set_xlim(xmin - pad, xmax + pad)
    ax.set_ylim(ymin - pad, ymax + pad)
    ax.set_aspect("equal")
    ax.set_axis_off()
    handles = [Patch(facecolor=c, edgecolor="#666", label=lab) for _, c, lab in CLASSES]
    handles.append(Patch(facecolor=UNKNOWN[0], edgecolor="#666", label=UNKNOWN[1]))
    handles.append(Line2D([], [], marker="o", linestyle="none", markerfacecolor="#999", markeredgecolor="#1a1a1a",
                          label="Commune avec QPV (taille : population des QPV)"))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.66, 0.9), fontsize=8, frameon=False,
               title=f"Postes pour 10 000 habitants des QPV\n(cible {text.number(target, 1)})", title_fontsize=9)
    fig.suptitle(title.replace("$", r"\$"), x=0.5, fontsize=12, wrap=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, facecolor="white")
    return path
