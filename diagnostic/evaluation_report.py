"""What the evaluation report shows: French tables, key figures, charts with alt texts, notes.

Everything here reads an :class:`~diagnostic.evaluation.Evaluation` (already
masked in publication mode) and only formats it; no figure is computed twice.
The heat map exists twice, from the same grid: an offline Leaflet map for the
screen (:func:`interactive_heat_map`) and a PNG for print (:func:`heat_map`).
"""

from __future__ import annotations

from typing import Any

import folium
import numpy as np
import pandas as pd
from folium.utilities import JsCode
from IPython.display import HTML
from markupsafe import Markup
from matplotlib import colormaps
from matplotlib.colors import Normalize, to_hex
from matplotlib.figure import Figure

from diagnostic import fragments, maps
from diagnostic.evaluation import MASKED, Evaluation, Table
from diagnostic.maps.geometry import feature_collection
from diagnostic.report import fr_number

ACCENT, SOFT, HOT = "#174a7c", "#9fb3c8", "YlOrRd"
_BIND_TOOLTIP = JsCode("function(f, l) { l.bindTooltip(f.properties.tip, {sticky: true}); }")


def _number(value: Any) -> str:
    """French number: whole values without decimals, others with one."""
    return fr_number(value, 0 if float(value).is_integer() else 1)


def display(table: Table) -> pd.DataFrame:
    """The table as French text for :func:`diagnostic.report.html_table`: « masqué » or « — » when absent."""
    masked = table.is_masked()
    columns = [c for c in table.frame.columns if not c.startswith("_")]
    out = {}
    for column in columns:
        cells = []
        for value, hidden in zip(table.frame[column], masked[column]):
            if hidden:
                cells.append(MASKED)
            elif value is None or (isinstance(value, float) and np.isnan(value)):
                cells.append("—")
            elif isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
                cells.append(_number(value))
            else:
                cells.append(str(value))
        out[column] = cells
    return pd.DataFrame(out, columns=columns)


def _figure_text(value: Any, unit: str = "", signed: bool = False, masked: bool = False) -> str:
    if masked:
        return MASKED
    if value is None:
        return "—"
    text = _number(value) + (f"\u00a0{unit}" if unit else "")
    return ("+" + text) if signed and value > 0 else text


def key_figures(ev: Evaluation) -> list[tuple[str, str]]:
    """(value, label) pairs for :func:`diagnostic.report.key_figures`; « masqué » or « — » when absent."""

    def text(key: str, unit: str = "", signed: bool = False) -> str:
        return _figure_text(ev.headline[key], unit, signed, key in ev.masked_figures)

    return [
        (text("interventions"), f"interventions {ev.period.label()}"),
        (text("evolution_pct", "%", True),
         f"par rapport à la période précédente ({text('interventions_periode_precedente')})"),
        (text("couverture_qpv_pct", "%"), "des QPV couverts chaque mois par la présence active"),
        (text("part_conflits_resolus_pct", "%"), f"des conflits résolus (conflits traités : {text('conflits')})"),
        (text("delai_median_jours", "jours"), "délai médian de résolution des signalements"),
        (text("signalements_en_attente"), f"signalements en attente au {ev.period.end:%d/%m/%Y}"),
    ]


def period_note(ev: Evaluation) -> str:
    scope = f" — opérateur : {ev.operator}" if ev.operator else ""
    return (f"Période évaluée : {ev.period.label()}{scope}. Chaque chiffre est comparé à la période précédente "
            f"de même durée, {ev.previous.label()}.")


def confidentiality_note(ev: Evaluation) -> str:
    """What was masked and why, in the report's words."""
    if ev.internal:
        return ("Document interne : aucun effectif n'est masqué et la carte utilise des mailles de "
                f"{ev.cell_m:.0f} m. Ce document ne doit pas être diffusé hors du service et de ses financeurs.")
    return (f"Version publiable : tout effectif de 1 à {ev.threshold - 1} interventions est remplacé par "
            f"« {MASKED} », ainsi que les parts, délais et évolutions calculés à partir de lui ; d'autres cases "
            "sont masquées quand un petit effectif pourrait se retrouver par différence entre les chiffres "
            "publiés (lignes, colonnes, tableaux et chiffres clés), et le document est vérifié : aucun effectif "
            "masqué ne peut être recalculé. La carte regroupe les "
            f"interventions par mailles de {ev.cell_m:.0f} m et n'affiche que celles d'au moins {ev.threshold} "
            "interventions : aucun lieu précis n'est publié. Les services signalés qui ne sont pas des "
            "partenaires du registre sont comptés ensemble (« autre service ») et la liste des signalements en "
            f"attente est réservée à la version interne. Cases masquées dans ce document : {ev.masked}.")


def map_note(ev: Evaluation) -> str:
    if ev.geolocated is None:
        return ("Seules les interventions qui ont des coordonnées figurent sur la carte ; les autres ne sont situées "
                "que par leur QPV et sont comptées dans le tableau par lieu.")
    return (f"{fr_number(ev.geolocated)} interventions sur {fr_number(ev.total)} ont des coordonnées et figurent "
            "sur la carte ; les autres ne sont situées que par leur QPV et sont comptées dans le tableau par lieu.")


def _bars(table: Table, label: str, title: str) -> tuple[Figure, str]:
    frame = table.frame
    now = pd.to_numeric(frame["Interventions"], errors="coerce")
    before = pd.to_numeric(frame["Période précédente"], errors="coerce")
    fig = Figure(figsize=(9, 3.6))
    ax = fig.add_subplot()
    x = np.arange(len(frame))
    ax.bar(x - 0.2, now.fillna(0), width=0.4, color=ACCENT, label="Période évaluée")
    ax.bar(x + 0.2, before.fillna(0), width=0.4, color=SOFT, label="Période précédente")
    ax.set_xticks(x, frame[label].astype(str), rotation=0, fontsize=8)
    ax.set_ylabel("Interventions")
    ax.set_title(title, fontsize=11, loc="left")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    alt = f"Diagramme en barres : {title.lower()}, période évaluée et période précédente."
    if now.notna().any() and now.max() > 0:
        top = int(now.idxmax())
        alt += (f" Le plus grand nombre est {frame[label].iloc[top]} ({_number(now.iloc[top])} interventions, "
                f"contre {_figure_text(before.iloc[top], masked=pd.isna(before.iloc[top]))} avant).")
    if now.isna().any():
        alt += f" {int(now.isna().sum())} barre(s) masquée(s) (petits effectifs)."
    return fig, alt


def hour_chart(ev: Evaluation) -> tuple[Figure, str]:
    """Interventions by starting hour, both periods; returns the figure and its alt text."""
    return _bars(ev.tables["heures"], "Heure", "Interventions par heure de début")


def weekday_chart(ev: Evaluation) -> tuple[Figure, str]:
    """Interventions by day of the week, both periods; returns the figure and its alt text."""
    return _bars(ev.tables["jours"], "Jour", "Interventions par jour de la semaine")


def heat_map(ev: Evaluation) -> tuple[Figure, str]:
    """Geolocated interventions counted on a square grid over the commune and its QPVs."""
    fig = Figure(figsize=(8, 7))
    ax = fig.add_subplot()
    ev.area.boundary.plot(ax=ax, color="#333333", linewidth=1.2)
    if not ev.grid.empty:
        ev.grid.plot(ax=ax, column="count", cmap=HOT, alpha=0.85, linewidth=0, legend=True,
                     legend_kwds={"label": f"Interventions par maille de {ev.cell_m:.0f} m", "shrink": 0.6})
    if not ev.qpv.empty:
        ev.qpv.boundary.plot(ax=ax, color=ACCENT, linewidth=1.2, linestyle="--")
        for _, row in ev.qpv.iterrows():
            p = row.geometry.representative_point()
            ax.annotate(row["lib_qp"].replace("$", r"\$"), (p.x, p.y), fontsize=8, color=ACCENT, ha="center",
                        xytext=(0, -14), textcoords="offset points")
    bounds = np.vstack([ev.area.total_bounds] + ([ev.qpv.total_bounds] if not ev.qpv.empty else []))
    xmin, ymin = bounds[:, :2].min(axis=0)
    xmax, ymax = bounds[:, 2:].max(axis=0)
    ax.set_xlim(xmin - 200, xmax + 200)
    ax.set_ylim(ymin - 200, ymax + 200)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(f"Interventions géolocalisées — {ev.commune_name}".replace("$", r"\$"), fontsize=11, loc="left")
    fig.tight_layout()
    alt = (f"Carte de chaleur des interventions géolocalisées à {ev.commune_name}, par mailles de "
           f"{ev.cell_m:.0f} m, contours des QPV en tirets.")
    if not ev.grid.empty:
        top = ev.grid.loc[ev.grid["count"].idxmax()]
        inside = ev.qpv[ev.qpv.contains(top.geometry.centroid)]["lib_qp"]
        where = f"dans le QPV {inside.iloc[0]}" if len(inside) else "hors des QPV"
        alt += f" La maille la plus fréquentée ({_number(top['count'])} interventions) est {where}."
    return fig, alt


def interactive_heat_map(ev: Evaluation) -> HTML:
    """The grid of :func:`heat_map` on an offline Leaflet map (no tiles), a tooltip per cell."""
    outline = pd.concat([ev.area.geometry, ev.qpv.geometry]).to_crs("EPSG:4326")
    minx, miny, maxx, maxy = outline.total_bounds
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=13, tiles=None)
    m.fit_bounds([[miny, minx], [maxy, maxx]], padding=(20, 20))
    folium.GeoJson(feature_collection(ev.area), name="Commune", interactive=False,
                   style_function=lambda _: {"color": "#333333", "weight": 2, "fill": False}).add_to(m)
    if not ev.grid.empty:
        norm = Normalize(0, float(ev.grid["count"].max()))
        colours = [to_hex(colormaps[HOT](norm(c))) for c in ev.grid["count"]]
        tips = [f"{_number(c)} interventions (maille de {ev.cell_m:.0f} m)" for c in ev.grid["count"]]
        folium.GeoJson(feature_collection(ev.grid, {"tip": tips, "colour": colours}, tolerance_m=0),
                       name="Interventions", on_each_feature=_BIND_TOOLTIP,
                       style_function=lambda f: {"fillColor": f["properties"]["colour"], "fillOpacity": 0.8,
                                                 "weight": 0}).add_to(m)
    folium.GeoJson(feature_collection(ev.qpv), name="QPV", interactive=False,
                   style_function=lambda _: {"color": ACCENT, "weight": 2, "dashArray": "6 4", "fill": False}).add_to(m)
    return HTML(fragments.render("interactive_map.html.j2", label=f"Carte interactive des interventions à {ev.commune_name}",
                                 assets=Markup(maps.map_assets()), map=Markup(maps.map_fragment(m))))
