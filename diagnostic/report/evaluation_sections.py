"""What the evaluation report shows: French tables, key figures, charts with alt texts, notes.

Everything here reads an :class:`~diagnostic.analysis.evaluation.Evaluation` (already
masked in publication mode) and only formats it; no figure is computed twice.
The heat map exists twice, from the same grid: an offline Leaflet map for the
screen (:func:`interactive_heat_map`) and a PNG for print (:func:`heat_map`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import folium
import numpy as np
import pandas as pd
from folium.utilities import JsCode
from IPython.display import HTML
from markupsafe import Markup
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from diagnostic import text
from diagnostic.analysis.evaluation import MASKED, Evaluation, Table
from diagnostic.report import fragments, maps
from diagnostic.report.export import fr_number
from diagnostic.report.maps.geometry import feature_collection
from diagnostic.report.maps.style import Classes, classify

ACCENT, SOFT = "#174a7c", "#9fb3c8"
#: The heat map's classes, from few interventions (yellow) to the most (dark red): ColorBrewer YlOrRd.
HEAT_RAMP = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
COMMUNE_LINE = "#333333"
_BIND_TOOLTIP = JsCode("function(f, l) { l.bindTooltip(f.properties.tip, {sticky: true}); }")


def _number(value: Any) -> str:
    """French number: whole values without decimals, others with one."""
    return fr_number(value, 0 if float(value).is_integer() else 1)


#: The columns that compare with the previous period, left out when the log holds none of it.
PREVIOUS_COLUMNS = ("Période précédente", "Évolution (%)")
NO_PREVIOUS = "pas de période précédente dans le journal"


def display(table: Table, previous_logged: bool = True) -> pd.DataFrame:
    """The table as French text for :func:`diagnostic.report.export.html_table`: « masqué » or « — » when absent;
    without the previous period in the log, its columns are left out (said once, by :func:`period_note`)."""
    masked = table.is_masked()
    columns = [c for c in table.frame.columns if not c.startswith("_")
               and (previous_logged or c not in PREVIOUS_COLUMNS)]
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
    shown = _number(value) + (f"\u00a0{unit}" if unit else "")
    return ("+" + shown) if signed and value > 0 else shown


def key_figures(ev: Evaluation) -> list[tuple[str, str]]:
    """(value, label) pairs for :func:`diagnostic.report.export.key_figures`; « masqué » or « — » when absent."""

    def figure(key: str, unit: str = "", signed: bool = False) -> str:
        return _figure_text(ev.headline[key], unit, signed, key in ev.masked_figures)

    evolution = ((figure("evolution_pct", "%", True),
                  f"par rapport à la période précédente ({figure('interventions_periode_precedente')})")
                 if ev.previous_logged else ("—", NO_PREVIOUS))
    return [
        (figure("interventions"), f"interventions {ev.period.label()}"),
        evolution,
        (figure("couverture_qpv_pct", "%"), "des QPV couverts chaque mois par la présence active"),
        (figure("part_conflits_resolus_pct", "%"), f"des conflits résolus (conflits traités : {figure('conflits')})"),
        (figure("delai_median_jours", "jours"), "délai médian de résolution des signalements"),
        (figure("signalements_en_attente"), f"signalements en attente au {ev.period.end:%d/%m/%Y}"),
    ]


def period_note(ev: Evaluation) -> str:
    scope = f" — opérateur : {ev.operator}" if ev.operator else ""
    if not ev.previous_logged:
        return (f"Période évaluée : {ev.period.label()}{scope}. Le journal d'activité commence dans cette période : "
                f"{NO_PREVIOUS} ({ev.previous.label()}), les chiffres ne sont donc comparés à aucune période.")
    return (f"Période évaluée : {ev.period.label()}{scope}. Chaque chiffre est comparé à la période précédente "
            f"de même durée, {ev.previous.label()}.")


def confidentiality_note(ev: Evaluation) -> str:
    """What was masked and why, in the report's words."""
    if ev.internal:
        return ("Document interne : aucun effectif n'est masqué et la carte utilise des mailles de "
                f"{ev.cell_m:.0f} m. Ce document ne doit pas être diffusé hors du service et de ses financeurs.")
    return (f"Version publiable : tout effectif de 1 à {ev.threshold - 1} interventions est remplacé par "
            f"« {MASKED} », ainsi que les parts, délais et évolutions calculés à partir de lui ; d'autres cases "
            "sont masquées quand un effectif masqué pourrait se retrouver par différence entre les chiffres "
            "publiés (lignes, colonnes, totaux, tableaux et chiffres clés"
            + (f", et {text.count(ev.earlier, 'autre évaluation publiée', 'autres évaluations publiées')} de ce "
               "service, enregistrées dans son dossier" if ev.earlier else "")
            + "), et le document est vérifié : aucun effectif masqué ne peut être recalculé. La carte regroupe les "
            f"interventions par mailles de {ev.cell_m:.0f} m et n'affiche que celles d'au moins {ev.threshold} "
            "interventions : aucun lieu précis n'est publié. Les services signalés qui ne sont pas des "
            "partenaires du registre sont comptés ensemble (« autre service ») et la liste des signalements en "
            f"attente est réservée à la version interne. Cases masquées dans ce document : {ev.masked}.")


def source_note(ev: Evaluation) -> str:
    """« Source : Données fictives (journal d'activité…), millésime 2025. »"""
    cited = text.without_file_names(ev.source)
    return f"Source : {cited}." if cited else ""


def map_note(ev: Evaluation) -> str:
    if ev.geolocated is None:
        return ("Seules les interventions qui ont des coordonnées figurent sur la carte ; les autres ne sont situées "
                "que par leur QPV et sont comptées dans le tableau par lieu.")
    return (f"{fr_number(ev.geolocated)} interventions sur {fr_number(ev.total)} ont des coordonnées et figurent "
            "sur la carte ; les autres ne sont situées que par leur QPV et sont comptées dans le tableau par lieu.")


def _bars(table: Table, label: str, title: str, previous_logged: bool = True) -> tuple[Figure, str]:
    frame = table.frame
    now = pd.to_numeric(frame["Interventions"], errors="coerce")
    before = pd.to_numeric(frame["Période précédente"], errors="coerce")
    fig = Figure(figsize=(9, 3.6))
    ax = fig.add_subplot()
    x = np.arange(len(frame))
    ax.bar(x - 0.2 * previous_logged, now.fillna(0), width=0.4, color=ACCENT, label="Période évaluée")
    if previous_logged:
        ax.bar(x + 0.2, before.fillna(0), width=0.4, color=SOFT, label="Période précédente")
    ax.set_xticks(x, frame[label].astype(str), rotation=0, fontsize=8)
    ax.set_ylabel("Interventions")
    ax.set_title(title, fontsize=11, loc="left")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    alt = (f"Diagramme en barres : {title.lower()}, période évaluée et période précédente." if previous_logged else
           f"Diagramme en barres : {title.lower()}, période évaluée ({NO_PREVIOUS}).")
    if now.notna().any() and now.max() > 0:
        top = int(now.idxmax())
        alt += (f" Le plus grand nombre est {frame[label].iloc[top]} ({_number(now.iloc[top])} interventions"
                + (f", contre {_figure_text(before.iloc[top], masked=pd.isna(before.iloc[top]))} avant)." if previous_logged
                   else ")."))
    if now.isna().any():
        hidden = int(now.isna().sum())
        alt += f" {text.count(hidden, 'barre masquée', 'barres masquées')} (petits effectifs)."
    return fig, alt


def hour_chart(ev: Evaluation) -> tuple[Figure, str]:
    """Interventions by starting hour, both periods; returns the figure and its alt text."""
    return _bars(ev.tables["heures"], "Heure", "Interventions par heure de début", ev.previous_logged)


def weekday_chart(ev: Evaluation) -> tuple[Figure, str]:
    """Interventions by day of the week, both periods; returns the figure and its alt text."""
    return _bars(ev.tables["jours"], "Jour", "Interventions par jour de la semaine", ev.previous_logged)


def heat_classes(ev: Evaluation) -> Classes:
    """Classes of the cells' counts (natural breaks, at most five), shared by the printed and the screen map,
    so that both legends read the same: « 5 – 18 », « 19 – 40 »… interventions per cell."""
    classes = classify(ev.grid["count"], k=len(HEAT_RAMP))
    picks = np.linspace(0, len(HEAT_RAMP) - 1, len(classes.bins)).round().astype(int) if len(classes.bins) > 1 else [2]
    return replace(classes, colours=tuple(HEAT_RAMP[i] for i in picks))


def heat_title(ev: Evaluation) -> str:
    """The legend's title: what a cell's colour counts."""
    return f"Interventions par maille de {text.number(ev.cell_m, 0, 'm')}"


def heat_alt(ev: Evaluation) -> str:
    """The heat map in words (the PNG's alt text, the screen map's description): scale, outlines, busiest cell."""
    alt = (f"Carte de chaleur des interventions géolocalisées {text.at(ev.commune_name)}, par mailles de "
           f"{text.number(ev.cell_m, 0, 'm')}, contours des QPV en tirets.")
    if not ev.grid.empty:
        classes = heat_classes(ev)
        alt += f" Classes de la légende (interventions par maille) : {text.join(list(classes.labels))}."
        top = ev.grid.loc[ev.grid["count"].idxmax()]
        inside = ev.qpv[ev.qpv.contains(top.geometry.centroid)]["lib_qp"]
        where = f"dans le QPV {inside.iloc[0]}" if len(inside) else "hors des QPV"
        alt += f" La maille la plus fréquentée ({_number(top['count'])} interventions) est {where}."
    return alt


def heat_map(ev: Evaluation) -> tuple[Figure, str]:
    """Geolocated interventions counted on a square grid over the commune and its QPVs, with a legend of classes
    (each labelled by its counts, readable in black and white), QPV outlines and the commune's limit."""
    fig = Figure(figsize=(9, 7))
    ax = fig.add_subplot()
    ev.area.boundary.plot(ax=ax, color=COMMUNE_LINE, linewidth=1.2)
    handles: list = []
    if not ev.grid.empty:
        classes = heat_classes(ev)
        colours = [classes.colour(c) for c in ev.grid["count"]]
        ev.grid.plot(ax=ax, color=colours, alpha=0.9, edgecolor="#8c8c8c", linewidth=0.3)
        handles += [Patch(facecolor=c, edgecolor="#666666", label=label)
                    for c, label in zip(classes.colours, classes.labels)]
    if not ev.qpv.empty:
        ev.qpv.boundary.plot(ax=ax, color=ACCENT, linewidth=1.2, linestyle="--")
        for _, row in ev.qpv.iterrows():
            p = row.geometry.representative_point()
            ax.annotate(row["lib_qp"].replace("$", r"\$"), (p.x, p.y), fontsize=9, color=ACCENT, ha="center",
                        xytext=(0, -14), textcoords="offset points")
        handles.append(Line2D([], [], color=ACCENT, linewidth=1.2, linestyle="--", label="Quartier prioritaire"))
    handles.append(Line2D([], [], color=COMMUNE_LINE, linewidth=1.2, label="Limite de la commune"))
    ax.legend(handles=handles, title=heat_title(ev), loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False,
              fontsize=10, title_fontsize=10, alignment="left")
    bounds = np.vstack([ev.area.total_bounds] + ([ev.qpv.total_bounds] if not ev.qpv.empty else []))
    xmin, ymin = bounds[:, :2].min(axis=0)
    xmax, ymax = bounds[:, 2:].max(axis=0)
    ax.set_xlim(xmin - 200, xmax + 200)
    ax.set_ylim(ymin - 200, ymax + 200)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(f"Interventions géolocalisées — {ev.commune_name}".replace("$", r"\$"), fontsize=11, loc="left")
    fig.tight_layout()
    return fig, heat_alt(ev)


def heat_legend(ev: Evaluation) -> list[dict[str, str]]:
    """The screen map's legend: the same classes, outlines and title as the printed map (fill, border, label)."""
    rows = []
    if not ev.grid.empty:
        classes = heat_classes(ev)
        rows += [{"fill": c, "border": "1px solid #666", "label": label} for c, label in zip(classes.colours, classes.labels)]
    if not ev.qpv.empty:
        rows.append({"fill": "transparent", "border": f"2px dashed {ACCENT}", "label": "Quartier prioritaire"})
    rows.append({"fill": "transparent", "border": f"2px solid {COMMUNE_LINE}", "label": "Limite de la commune"})
    return rows


def interactive_heat_map(ev: Evaluation) -> HTML:
    """The grid of :func:`heat_map` on an offline Leaflet map (no tiles), a tooltip per cell, its legend below
    and the map in words (:func:`heat_alt`) as its description."""
    outline = pd.concat([ev.area.geometry, ev.qpv.geometry]).to_crs("EPSG:4326")
    minx, miny, maxx, maxy = outline.total_bounds
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=13, tiles=None)
    m.fit_bounds([[miny, minx], [maxy, maxx]], padding=(20, 20))
    folium.GeoJson(feature_collection(ev.area), name="Commune", interactive=False,
                   style_function=lambda _: {"color": COMMUNE_LINE, "weight": 2, "fill": False}).add_to(m)
    if not ev.grid.empty:
        classes = heat_classes(ev)
        colours = [classes.colour(c) for c in ev.grid["count"]]
        tips = [f"{_number(c)} interventions (maille de {text.number(ev.cell_m, 0, 'm')})" for c in ev.grid["count"]]
        folium.GeoJson(feature_collection(ev.grid, {"tip": tips, "colour": colours}, tolerance_m=0),
                       name="Interventions", on_each_feature=_BIND_TOOLTIP,
                       style_function=lambda f: {"fillColor": f["properties"]["colour"], "fillOpacity": 0.8,
                                                 "weight": 0}).add_to(m)
    folium.GeoJson(feature_collection(ev.qpv), name="QPV", interactive=False,
                   style_function=lambda _: {"color": ACCENT, "weight": 2, "dashArray": "6 4", "fill": False}).add_to(m)
    return HTML(fragments.render("heat_map.html.j2", label=f"Carte interactive des interventions {text.at(ev.commune_name)}",
                                 assets=Markup(maps.map_assets()), map=Markup(maps.map_fragment(m)),
                                 title=heat_title(ev), legend=heat_legend(ev), description=heat_alt(ev)))
