"""The printable twin of the commune map: a PNG drawn with matplotlib, same colours and legend."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.patheffects import withStroke

from diagnostic.io.reference import DOMAINS
from diagnostic.report.maps import style as st
from diagnostic.report.maps.geometry import band_ring
from diagnostic.report.maps.layers import MapLayers

_SCALE_STEPS_M = (100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000)


def _plain(text: object) -> str:
    """Text shown by matplotlib as written (no mathtext between dollar signs)."""
    return str(text).replace("$", r"\$")


def _scale_bar(ax, xmin: float, ymin: float, width: float, height: float) -> None:
    """A metric scale bar of a round length, about a fifth of the map width."""
    length = max([s for s in _SCALE_STEPS_M if s <= width / 5] or [_SCALE_STEPS_M[0]])
    x0, y0 = xmin + 0.04 * width, ymin + 0.04 * height
    ax.plot([x0, x0 + length], [y0, y0], color="black", linewidth=3, solid_capstyle="butt")
    label = f"{length // 1000:g} km" if length >= 1000 else f"{length} m"
    ax.text(x0 + length / 2, y0 + 0.012 * height, label, ha="center", va="bottom", fontsize=8)


def _qpv_names(ax, qpv: gpd.GeoDataFrame) -> None:
    """Each QPV's name on the printed map (white halo, inside its outline): paper has no tooltips."""
    for name, geom in zip(qpv["lib_qp"], qpv.geometry):
        point = geom.representative_point()
        ax.annotate(_plain(name), (point.x, point.y), ha="center", va="center", fontsize=8, fontweight="bold",
                    color="#1d2433", zorder=8, path_effects=[withStroke(linewidth=3, foreground="white")])


def static_map(layers: MapLayers, path: str | Path, *, dpi: int = 150) -> Path:
    """Write the commune map as a PNG (Lambert-93, French legend) for print; return its path."""
    layers = layers.projected()
    commune, qpv, services, band_m = layers.commune, layers.qpv, layers.services, layers.band_m
    fig = Figure(figsize=(11, 8), dpi=dpi)
    ax = fig.add_axes((0.01, 0.02, 0.66, 0.9))
    xmin, ymin, xmax, ymax = commune.total_bounds
    pad = 0.05 * max(xmax - xmin, ymax - ymin)
    xmin, ymin, xmax, ymax = xmin - pad, ymin - pad, xmax + pad, ymax + pad
    if layers.context is not None:
        layers.context.plot(
            ax=ax, color=st.CONTEXT_FILL, edgecolor=st.CONTEXT_OUTLINE, linewidth=0.5
        )
    commune.plot(ax=ax, color="white", edgecolor=st.COMMUNE_OUTLINE, linewidth=1.5)
    handles: list = []
    values, classes = layers.classes()
    strong = layers.strong_needs()
    if not qpv.empty:
        band_ring(qpv, band_m).plot(
            ax=ax, color=st.BAND_FILL, alpha=0.6, edgecolor=st.BAND_OUTLINE, linewidth=0.8, linestyle="--"
        )
        if classes is None:
            qpv.plot(ax=ax, color=st.NEUTRAL_FILL, alpha=0.6, linewidth=0)
            handles.append(Patch(facecolor=st.NEUTRAL_FILL, edgecolor=st.QPV_OUTLINE, label="Quartiers prioritaires (QPV)"))
        else:
            colours = values.map(classes.colour)
            known = colours.notna()
            if known.any():
                qpv[known].plot(ax=ax, color=colours[known].tolist(), alpha=0.85, linewidth=0)
            if (~known).any():
                qpv[~known].plot(ax=ax, facecolor=st.MISSING_FILL, edgecolor=st.MISSING_HATCH, hatch="////", linewidth=0)
            handles += [Patch(facecolor=c, edgecolor="#666", label=lab) for c, lab in zip(classes.colours, classes.labels)]
            if (~known).any():
                handles.append(Patch(facecolor=st.MISSING_FILL, edgecolor=st.MISSING_HATCH, hatch="////",
                                     label=st.MISSING_LABEL))
        need = qpv["code_qp"].isin(list(strong))
        qpv.boundary.plot(ax=ax, color=np.where(need, st.NEED_OUTLINE, st.QPV_OUTLINE).tolist(),
                          linewidth=np.where(need, 2.6, 1.0).tolist())
        if "lib_qp" in qpv:
            _qpv_names(ax, qpv)
        if need.any():
            handles.append(Patch(facecolor="none", edgecolor=st.NEED_OUTLINE, linewidth=2.6, label=st.NEED_LABEL))
        handles.append(Patch(facecolor=st.BAND_FILL, edgecolor=st.BAND_OUTLINE, linestyle="--",
                             label=f"Bande de {band_m:g} m autour des QPV"))
    if not services.empty:
        labels = services["domain_label"] if "domain_label" in services else [None] * len(services)
        domain = services["domain"] if "domain" in services else [None] * len(services)
        keyed = pd.DataFrame([st.domain_style(d, lab) for d, lab in zip(domain, labels)],
                             columns=["key", "label", "colour"], index=services.index)
        order = list(DOMAINS) + [st.OTHER_DOMAIN[0]]
        for key in sorted(keyed["key"].unique(), key=order.index):
            part = keyed[keyed["key"] == key]
            pts = services.loc[part.index].geometry
            ax.scatter(pts.x, pts.y, s=16, color=part["colour"].iloc[0], edgecolors="white", linewidths=0.5, zorder=5)
            handles.append(Line2D([], [], marker="o", linestyle="none", markersize=6, markerfacecolor=part["colour"].iloc[0],
                                  markeredgecolor="white", label=f"{_plain(part['label'].iloc[0])} ({len(part)})"))
    if layers.actors is not None:
        pts = layers.actors.geometry
        ax.scatter(pts.x, pts.y, s=18, marker="s", color="white", edgecolors=st.ACTOR_COLOUR, linewidths=1.2, zorder=6)
        handles.append(Line2D([], [], marker="s", linestyle="none", markerfacecolor="white",
                              markeredgecolor=st.ACTOR_COLOUR, label=f"Partenaires ({len(pts)})"))
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_aspect("equal")
    ax.set_axis_off()
    _scale_bar(ax, xmin, ymin, xmax - xmin, ymax - ymin)
    title = _plain(commune["lib_com"].iloc[0])
    fig.suptitle(f"{title} – {_plain(layers.label)}" if layers.indicator else title, x=0.35, fontsize=14)
    if handles:
        legend_title = _plain(layers.label) if classes is not None else "Légende"
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.68, 0.92), title=legend_title,
                   fontsize=8, title_fontsize=9, frameon=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, facecolor="white")
    return path
