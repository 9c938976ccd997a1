"""The partner network drawn: an interactive offline SVG view and its printable PNG twin.

The analysis (graph, centrality, gaps) is :mod:`diagnostic.analysis.partners`; this
module only draws it. The interactive view is a self-contained SVG with a few
lines of inline script (drag, highlight), from the Jinja templates under
``diagnostic/resources/fragments/network/`` rendered by :func:`diagnostic.report.fragments.render`
(autoescape): it loads nothing
from the network, so it works in an HTML report opened offline.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

from diagnostic import text
from diagnostic.analysis.partners import build_graph, centrality, isolated
from diagnostic.io.reference import DOMAINS
from diagnostic.io.sources.partners import NATURES, Partners, actor_types
from diagnostic.report.fragments import render

#: Edge style per nature: colour, SVG dash pattern, matplotlib line style.
EDGE_STYLES: dict[str, tuple[str, str, object]] = {
    "convention": ("#3d405b", "", "solid"),
    "financement": ("#2a9d8f", "7 4", (0, (5, 3))),
    "orientation": ("#e76f51", "", "solid"),
    "instance": ("#6d597a", "2 3", (0, (1, 2))),
    "co_animation": ("#b08900", "9 3 2 3", (0, (6, 2, 1, 2))),
}
WIDTH, HEIGHT, MARGIN = 960, 640, 60
#: Above this many actors, only the most central ones are labelled on the drawing.
LABELLED = 30


def layout(graph: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """Node positions in a WIDTH × HEIGHT frame (same seed, same picture).

    Linked actors are laid out by a force-directed layout; actors without any
    relation are set apart in a row along the bottom, where they show as such.
    """
    alone = isolated(graph)
    linked = [n for n in graph.nodes if n not in set(alone)]
    right = 180  # room for the labels on the right of the nodes
    bottom = HEIGHT - MARGIN / 2 if alone else HEIGHT - MARGIN
    pos: dict[str, tuple[float, float]] = {}
    if linked:
        simple = nx.Graph(graph.subgraph(linked).to_undirected(as_view=True))
        raw = nx.spring_layout(simple, seed=20261125, k=1.6 / np.sqrt(len(linked)), iterations=200)
        xy = np.array([raw[n] for n in linked])
        span = np.where(np.ptp(xy, axis=0) > 0, np.ptp(xy, axis=0), 1.0)
        scaled = (xy - xy.min(axis=0)) / span
        xs = MARGIN + scaled[:, 0] * (WIDTH - MARGIN - right)
        ys = MARGIN + scaled[:, 1] * (bottom - MARGIN * (2.2 if alone else 1))
        pos = {n: (round(float(x), 1), round(float(y), 1)) for n, x, y in zip(linked, xs, ys)}
    step = (WIDTH - MARGIN - right) / max(len(alone), 1)
    pos |= {n: (round(MARGIN + i * step, 1), round(bottom, 1)) for i, n in enumerate(alone)}
    return {n: pos[n] for n in graph.nodes}


def _radius(degree: int, betweenness: float) -> float:
    return round(6 + 2.5 * np.sqrt(degree) + 22 * betweenness, 1)


def _edges(partners: Partners) -> list[dict]:
    """One drawn edge per relation; several between the same pair are bent apart."""
    seen: dict[frozenset, int] = {}
    out = []
    for r in partners.relations.itertuples(index=False):
        pair = frozenset((r.source, r.target))
        rank = seen.get(pair, 0)
        seen[pair] = rank + 1
        bend = 0 if rank == 0 else (1 if rank % 2 else -1) * ((rank + 1) // 2)
        out.append({"source": r.source, "target": r.target, "nature": r.nature, "label": r.nature_label,
                    "since": r.since, "intensity": r.intensity, "weight": int(r.weight), "bend": bend,
                    "directed": not NATURES[r.nature][1], "posts": r.posts})
    return out


def _curve(p: tuple[float, float], q: tuple[float, float], bend: int, r_target: float) -> str:
    """SVG path from p to q, bent by ``bend`` steps, stopping at the target circle's edge."""
    (x1, y1), (x2, y2) = p, q
    dx, dy = x2 - x1, y2 - y1
    length = max(np.hypot(dx, dy), 1e-6)
    cx, cy = (x1 + x2) / 2 - dy / length * 22 * bend, (y1 + y2) / 2 + dx / length * 22 * bend
    tx, ty = x2 - cx, y2 - cy
    tl = max(np.hypot(tx, ty), 1e-6)
    ex, ey = x2 - tx / tl * (r_target + 2), y2 - ty / tl * (r_target + 2)
    return f"M{x1:.1f},{y1:.1f} Q{cx:.1f},{cy:.1f} {ex:.1f},{ey:.1f}"


def _edge_title(graph: nx.DiGraph, e: dict) -> str:
    """An edge's tooltip: who to whom, the nature, and since when, how strong, how many posts."""
    posts = ""
    if pd.notna(e["posts"]):
        posts = (f"{text.number(e['posts'], 0 if float(e['posts']).is_integer() else 1)} "
                 f"{text.plural(float(e['posts']), 'poste', 'postes')} d'adulte-relais")
    details = ", ".join(v for v in (f"depuis {e['since']}" if e["since"] else "", e["intensity"], posts) if v)
    arrow = "→" if e["directed"] else "↔"
    title = f"{graph.nodes[e['source']]['name']} {arrow} {graph.nodes[e['target']]['name']} : {e['label']}"
    return title + (f" ({details})" if details else "")


def _node_tip(d: dict, degree: int, betweenness: float, qpv_names: dict[str, str]) -> str:
    """A node's tooltip: name, type, domains, partners and betweenness, QPVs."""
    domains = ", ".join(DOMAINS[k] for k in d["domains"]) or "non précisés"
    tip = (f"{d['name']} — {d['type_label']}\nDomaines : {domains}\n"
           f"Partenaires : {degree} ; intermédiarité : {text.number(betweenness, 2)}")
    if d["qpv"]:
        tip += f"\nQPV : {', '.join(qpv_names.get(q, q) for q in d['qpv'])}"
    return tip


def network_html(partners: Partners, graph: nx.DiGraph | None = None) -> str:
    """An interactive, offline network view (SVG + inline script) to embed in a notebook or report.

    Actors are coloured by type and sized by centrality; edges are styled by
    nature, with arrows for directed natures. Hover shows details and highlights
    an actor's partners; nodes can be dragged. Nothing is loaded from the network.
    """
    graph = graph if graph is not None else build_graph(partners)
    cent = centrality(graph).set_index("actor_id")
    qpv_names = dict(zip(partners.qpv_communes["code_qp"], partners.qpv_communes["lib_qp"]))
    pos = layout(graph)
    index = {n: i for i, n in enumerate(graph.nodes)}
    uid = "rp-" + hashlib.sha256(json.dumps([list(pos.items()), len(partners.relations)]).encode()).hexdigest()[:10]
    radius = {n: _radius(int(cent.at[n, "degree"]), float(cent.at[n, "betweenness"])) for n in graph.nodes}
    labelled = set(cent.index[:LABELLED]) if len(cent) > LABELLED else set(cent.index)
    edges = [
        {"source": index[e["source"]], "target": index[e["target"]], "bend": e["bend"], "nature": e["nature"],
         "d": _curve(pos[e["source"]], pos[e["target"]], e["bend"], radius[e["target"]]),
         "colour": EDGE_STYLES[e["nature"]][0], "dash": EDGE_STYLES[e["nature"]][1],
         "width": f"{1 + 0.7 * e['weight']:.1f}", "directed": e["directed"], "title": _edge_title(graph, e)}
        for e in _edges(partners)
    ]
    nodes = [
        {"i": index[n], "r": radius[n], "x": pos[n][0], "y": pos[n][1], "colour": d["color"], "name": d["name"],
         "labelled": n in labelled,
         "tip": _node_tip(d, int(cent.at[n, "degree"]), cent.at[n, "betweenness"], qpv_names)}
        for n, d in graph.nodes(data=True)
    ]
    types = actor_types()
    present = {d["type"] for _, d in graph.nodes(data=True)}
    natures = set(partners.relations["nature"])
    return render(
        "network/figure.html.j2",
        uid=uid, width=WIDTH, height=HEIGHT, n_nodes=graph.number_of_nodes(), n_edges=len(partners.relations),
        markers=[{"nature": k, "colour": c} for k, (c, _, _) in EDGE_STYLES.items()],
        edges=edges, nodes=nodes,
        types=[{"colour": types.at[k, "couleur"], "label": types.at[k, "libelle"]} for k in types.index if k in present],
        natures=[{"colour": EDGE_STYLES[k][0], "dash": EDGE_STYLES[k][1], "label": NATURES[k][0],
                  "directed": not NATURES[k][1]} for k in NATURES if k in natures],
    )


def network_png(partners: Partners, graph: nx.DiGraph | None, path: str | Path) -> Path:
    """The same network as a static PNG for print (same layout, colours, line styles and legend)."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    graph = graph if graph is not None else build_graph(partners)
    cent = centrality(graph).set_index("actor_id")
    pos = {n: (x, HEIGHT - y) for n, (x, y) in layout(graph).items()}
    fig = Figure(figsize=(11, 7.5), dpi=150)
    ax = fig.add_axes((0, 0.12, 1, 0.88))
    ax.set_axis_off()
    ax.set_xlim(0, WIDTH)
    ax.set_ylim(0, HEIGHT)
    radius = {n: _radius(int(cent.at[n, "degree"]), float(cent.at[n, "betweenness"])) for n in graph.nodes}
    for e in _edges(partners):
        color, _, style = EDGE_STYLES[e["nature"]]
        ax.annotate(
            "", xy=pos[e["target"]], xytext=pos[e["source"]],
            arrowprops={"arrowstyle": "-|>" if e["directed"] else "-", "color": color, "linestyle": style,
                        "linewidth": 0.6 + 0.5 * e["weight"], "shrinkA": radius[e["source"]] * 0.75,
                        "shrinkB": radius[e["target"]] * 0.75, "connectionstyle": f"arc3,rad={-0.15 * e['bend']}",
                        "alpha": 0.8},
        )
    nodes = list(graph.nodes)
    xy = np.array([pos[n] for n in nodes]) if nodes else np.empty((0, 2))
    ax.scatter(xy[:, 0], xy[:, 1], s=[(radius[n] * 0.75) ** 2 * np.pi for n in nodes],
               c=[graph.nodes[n]["color"] for n in nodes], edgecolors="white", linewidths=1, zorder=3)
    labelled = set(cent.index[:LABELLED])
    for n in nodes:
        if n in labelled:
            ax.annotate(graph.nodes[n]["name"], pos[n], xytext=(radius[n] * 0.75 + 3, 0), textcoords="offset points",
                        fontsize=7, va="center", zorder=4)
    types = actor_types()
    present = [k for k in types.index if any(graph.nodes[n]["type"] == k for n in nodes)]
    handles = [Line2D([], [], marker="o", linestyle="", color=types.at[k, "couleur"], label=types.at[k, "libelle"])
               for k in present]
    handles += [Line2D([], [], color=EDGE_STYLES[k][0], linestyle=EDGE_STYLES[k][2], label=NATURES[k][0])
                for k in NATURES if k in set(partners.relations["nature"])]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=7, frameon=False)
    path = Path(path)
    fig.savefig(path)
    return path
