"""Partnership mapping (maillage partenarial): the graph of partners, its gaps, and its views.

The registry (:mod:`diagnostic.sources.partners`) becomes a directed graph: one
node per actor, one edge per (from, to) pair carrying the natures of their
relations. Centrality is read on the undirected graph (who works with whom,
whatever the direction). The gaps become « liens à créer » and « acteurs à
mobiliser », each with a French « pourquoi ». The interactive view is a
self-contained SVG with a few lines of inline script (drag, highlight): it
loads nothing from the network, so it works in an HTML report opened offline.
"""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd

from diagnostic import text
from diagnostic.reference import DOMAINS
from diagnostic.sources.partners import MEDIATION, NATURES, Partners, actor_types, normalize
from diagnostic.sources.qpv import QPV_CODE

#: Edge style per nature: colour, SVG dash pattern, matplotlib line style.
EDGE_STYLES: dict[str, tuple[str, str, object]] = {
    "convention": ("#3d405b", "", "solid"),
    "financement": ("#2a9d8f", "7 4", (0, (5, 3))),
    "orientation": ("#e76f51", "", "solid"),
    "instance": ("#6d597a", "2 3", (0, (1, 2))),
    "co_animation": ("#b08900", "9 3 2 3", (0, (6, 2, 1, 2))),
}
CENTRALITY_HEADERS = {"actor_id": "Identifiant", "name": "Acteur", "type_label": "Type",
                      "degree": "Nombre de partenaires", "betweenness": "Intermédiarité (0 à 1)"}
GAP_COLUMNS = ["categorie", "acteur_id", "acteur", "partenaire_id", "partenaire", "pourquoi", "motif"]
LINK, MOBILISE = "lien à créer", "acteur à mobiliser"
#: Need levels that mean no unmet need.
NO_NEED = {"faible", "indetermine", "aucun", "nul", "0", ""}
WIDTH, HEIGHT, MARGIN = 960, 640, 60
#: Above this many actors, only the most central ones are labelled on the drawing.
LABELLED = 30


def build_graph(partners: Partners) -> nx.DiGraph:
    """A directed graph: actors as nodes; one edge per (from, to) with its natures and weight."""
    colors = actor_types()["couleur"]
    graph = nx.DiGraph()
    for row in partners.actors.itertuples(index=False):
        graph.add_node(row.actor_id, name=row.name, type=row.type, type_label=row.type_label,
                       color=colors.get(row.type, "#c7c7c7"), domains=list(row.domains),
                       qpv=list(row.qpv), communes=list(row.communes))
    for row in partners.relations.itertuples(index=False):
        if graph.has_edge(row.source, row.target):
            data = graph.edges[row.source, row.target]
            data["natures"].append(row.nature)
            data["weight"] = max(data["weight"], int(row.weight))
        else:
            graph.add_edge(row.source, row.target, natures=[row.nature], weight=int(row.weight))
    return graph


def centrality(graph: nx.DiGraph) -> pd.DataFrame:
    """Per actor: number of distinct partners (degree) and betweenness (0–1, normalised), most central first."""
    simple = graph.to_undirected(as_view=False)
    betweenness = nx.betweenness_centrality(simple, normalized=True)
    df = pd.DataFrame({
        "actor_id": list(graph.nodes),
        "name": [graph.nodes[n]["name"] for n in graph.nodes],
        "type_label": [graph.nodes[n]["type_label"] for n in graph.nodes],
        "degree": [simple.degree(n) for n in graph.nodes],
        "betweenness": [betweenness[n] for n in graph.nodes],
    })
    return df.sort_values(["betweenness", "degree", "name"], ascending=[False, False, True]).reset_index(drop=True)


def centrality_table(graph: nx.DiGraph) -> pd.DataFrame:
    """:func:`centrality` under French headers, betweenness rounded."""
    return centrality(graph).round({"betweenness": 3}).rename(columns=CENTRALITY_HEADERS)


def isolated(graph: nx.DiGraph) -> list[str]:
    """Actors with no relation at all."""
    return sorted(n for n in graph.nodes if graph.degree(n) == 0)


def mediation_actors(graph: nx.DiGraph) -> list[str]:
    """Actors of type « opérateur de médiation »."""
    return [n for n, d in graph.nodes(data=True) if d["type"] == MEDIATION]


def without_mediation_link(graph: nx.DiGraph) -> list[str]:
    """Actors present on a QPV (``qpv`` filled) with no direct relation to a mediation operator."""
    mediators = set(mediation_actors(graph))
    simple = graph.to_undirected(as_view=True)
    return sorted(
        n for n, d in graph.nodes(data=True)
        if d["qpv"] and n not in mediators and not mediators & set(simple.neighbors(n))
    )


def one_way_relations(partners: Partners) -> pd.DataFrame:
    """Relations whose nature expects a return (orientation) recorded in one direction only."""
    rel = partners.relations
    expects = rel["nature"].map(lambda k: NATURES[k][2])
    pairs = set(zip(rel["source"], rel["target"], rel["nature"]))
    back = [(t, s, k) in pairs for s, t, k in zip(rel["source"], rel["target"], rel["nature"])]
    return rel[expects & ~pd.Series(back, index=rel.index)].reset_index(drop=True)


def serves(actor: pd.Series, code_qp: str | None, insee_com: str | None, pairs: pd.DataFrame) -> bool:
    """Whether an actor serves a QPV or a commune; an actor with no territory serves them all."""
    if not actor["qpv"] and not actor["communes"]:
        return True
    if code_qp:
        communes = set(pairs.loc[pairs["code_qp"] == code_qp, "insee_com"]) | ({insee_com} if insee_com else set())
        return code_qp in actor["qpv"] or bool(communes & set(actor["communes"]))
    qpvs = set(pairs.loc[pairs["insee_com"] == insee_com, "code_qp"])
    return insee_com in actor["communes"] or bool(qpvs & set(actor["qpv"]))


def for_commune(partners: Partners, insee_com: str) -> Partners:
    """The actors serving a commune (directly, through one of its QPVs, or everywhere) and their partners.

    Every relation between the kept actors is kept, so that no link of a local
    actor is lost and its partners are not shown as less linked than they are.
    """
    actors = partners.actors
    local = actors["origin"].eq("registre") & actors.apply(
        lambda a: serves(a, None, insee_com, partners.qpv_communes), axis=1)
    ids = set(actors.loc[local, "actor_id"])
    rel = partners.relations
    touching = rel[rel["source"].isin(ids) | rel["target"].isin(ids)]
    ids |= set(touching["source"]) | set(touching["target"])
    kept = rel[rel["source"].isin(ids) & rel["target"].isin(ids)].reset_index(drop=True)
    return replace(partners, actors=actors[actors["actor_id"].isin(ids)].reset_index(drop=True), relations=kept)


def uncovered_domains(partners: Partners, needs: pd.DataFrame) -> pd.DataFrame:
    """Unmet needs that no actor of the domain serves.

    ``needs`` has one row per (territory, domain): the territory in ``code_qp``
    and/or ``insee_com`` (or ``code``, as :func:`diagnostic.indicators.needs.unmet_needs`
    gives it), ``domain``, optionally ``domain_label`` and ``level``. Rows whose
    level says there is no unmet need (faible, indéterminé, aucun) are left out.
    The result keeps the need's columns, adds ``code_qp``/``insee_com`` and
    ``types`` (labels of the actor types usually active in the domain).
    """
    actors = partners.actors
    rows = []
    for need in needs.to_dict("records"):
        if "level" in need and normalize(str(need["level"])) in NO_NEED:
            continue
        code_qp, insee_com = _territory(need)
        active = actors[actors["domains"].map(lambda ds, d=need["domain"]: d in ds)]
        if not any(serves(a, code_qp, insee_com, partners.qpv_communes) for _, a in active.iterrows()):
            rows.append({**need, "code_qp": code_qp, "insee_com": insee_com, "types": _usual_types(need["domain"])})
    columns = list(dict.fromkeys([*needs.columns, "code_qp", "insee_com", "types"]))
    out = pd.DataFrame(rows, columns=columns)
    return out.drop_duplicates(subset=["code_qp", "insee_com", "domain"]).reset_index(drop=True)


def _territory(need: dict) -> tuple[str | None, str | None]:
    """(QPV code, commune code) of a need row."""
    code_qp, insee_com = _clean(need.get("code_qp")), _clean(need.get("insee_com"))
    code = _clean(need.get("code"))
    if code and QPV_CODE.match(code):
        code_qp = code_qp or code
    elif code:
        insee_com = insee_com or code
    return code_qp, insee_com


def _clean(value) -> str | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) or value == "" else str(value)


def _usual_types(domain: str) -> str:
    types = actor_types()
    usual = [row["libelle"] for key, row in types.iterrows()
             if domain in row["domaines_habituels"].split("|") and key != MEDIATION]
    return ", ".join(usual)


def gaps(partners: Partners, needs: pd.DataFrame | None = None, graph: nx.DiGraph | None = None) -> pd.DataFrame:
    """« Liens à créer » and « acteurs à mobiliser », each with why (French columns, see GAP_COLUMNS)."""
    graph = graph if graph is not None else build_graph(partners)
    names = nx.get_node_attributes(graph, "name")
    rows = []
    mediators = mediation_actors(graph)
    for actor in isolated(graph):
        rows.append(_gap(MOBILISE, actor, names[actor], "", "", "isole",
                         "aucune relation enregistrée avec les autres partenaires du territoire : "
                         "l'associer aux instances existantes (CLSPD, comités de suivi du contrat de ville)."))
    unlinked = [a for a in without_mediation_link(graph) if graph.degree(a) > 0]
    if unlinked and not mediators:
        rows.append(_gap(MOBILISE, "", "Opérateur de médiation (à identifier)", "", "", "sans_mediation",
                         f"{text.count(len(unlinked), 'acteur', 'acteurs')} {'intervient' if len(unlinked) < 2 else 'interviennent'} sur des QPV et le registre ne compte "
                         "aucun opérateur de médiation."))
    qpv_names = dict(zip(partners.qpv_communes["code_qp"], partners.qpv_communes["lib_qp"]))
    for actor in unlinked if mediators else []:
        qpvs = graph.nodes[actor]["qpv"]
        on_site = [m for m in mediators if set(graph.nodes[m]["qpv"]) & set(qpvs) or not graph.nodes[m]["qpv"]]
        target = _most_central(graph, on_site or mediators)
        where = text.join([qpv_names.get(q, q) for q in qpvs])
        extra = "" if on_site else f" ; aucun opérateur de médiation n'est déclaré sur {'ce QPV' if len(qpvs) < 2 else 'ces QPV'}"
        rows.append(_gap(LINK, actor, names[actor], target, names[target], "sans_lien_mediation",
                         f"présent sur {where} sans aucun lien avec un acteur de la médiation{extra}."))
    for rel in one_way_relations(partners).itertuples(index=False):
        since = f" depuis {rel.since}" if rel.since else ""
        rows.append(_gap(LINK, rel.target, names[rel.target], rel.source, names[rel.source], "sens_unique",
                         f"{names[rel.source]} oriente vers {names[rel.target]}{since}, mais pas l'inverse : "
                         "le passage de relais ne fonctionne que dans un sens."))
    if needs is not None and len(needs):
        for need in uncovered_domains(partners, needs).to_dict("records"):
            code = _clean(need["code_qp"]) or _clean(need["insee_com"]) or ""
            where = qpv_names.get(code) or ("ce quartier" if QPV_CODE.match(code) else "la commune")
            label = need.get("domain_label") or DOMAINS.get(need["domain"], need["domain"])
            level = f" ({need['level']})" if _clean(need.get("level")) else ""
            who = f"un acteur de type {need['types']}" if need["types"] else "un acteur de ce domaine"
            rows.append(_gap(MOBILISE, "", who, "", "", "domaine_non_couvert",
                             f"besoin non couvert en « {label} »{level} sur {where}, et aucun acteur du "
                             "registre n'intervient dans ce domaine sur ce territoire."))
    return pd.DataFrame(rows, columns=GAP_COLUMNS)


def _gap(kind: str, actor_id: str, actor: str, partner_id: str, partner: str, motif: str, why: str) -> dict:
    return dict(zip(GAP_COLUMNS, (kind, actor_id, actor, partner_id, partner, why, motif)))


def _most_central(graph: nx.DiGraph, candidates: list[str]) -> str:
    return max(sorted(candidates), key=lambda n: graph.degree(n))


GAP_HEADERS = {"categorie": "Catégorie", "acteur": "Acteur", "partenaire": "Avec", "pourquoi": "Pourquoi"}


def gaps_table(gap_rows: pd.DataFrame) -> pd.DataFrame:
    """The gaps for display: category, actor, partner, why (French headers)."""
    return gap_rows[list(GAP_HEADERS)].rename(columns=GAP_HEADERS)


# ---------------------------------------------------------------- tables and map layer


def actors_table(partners: Partners, graph: nx.DiGraph | None = None) -> pd.DataFrame:
    """Actors with their type, domains, territories and centrality, under French headers."""
    graph = graph if graph is not None else build_graph(partners)
    cent = centrality(graph).set_index("actor_id")
    a = partners.actors
    return pd.DataFrame({
        "Identifiant": a["actor_id"],
        "Acteur": a["name"],
        "Type": a["type_label"],
        "Domaines": a["domains"].map(lambda ds: ", ".join(DOMAINS[d] for d in ds)),
        "Communes": a["communes"].map(", ".join),
        "QPV": a["qpv"].map(", ".join),
        "Rôle du contact": a["contact_role"],
        "Nombre de partenaires": a["actor_id"].map(cent["degree"]).astype(int),
        "Intermédiarité (0 à 1)": a["actor_id"].map(cent["betweenness"]).round(3),
        "Postes adultes-relais": a["posts"],
        "Origine": a["origin"],
    }).sort_values(["Nombre de partenaires", "Acteur"], ascending=[False, True]).reset_index(drop=True)


def relations_table(partners: Partners) -> pd.DataFrame:
    """Relations with actor names, under French headers."""
    names = partners.actors.set_index("actor_id")["name"]
    r = partners.relations
    return pd.DataFrame({
        "De": r["source"].map(names),
        "Vers": r["target"].map(names),
        "Nature": r["nature_label"],
        "Depuis": r["since"],
        "Intensité": r["intensity"],
        "Postes adultes-relais": r["posts"],
        "Montant (€)": r["amount"].round(2),
        "Commentaire": r["comment"],
        "Origine": r["origin"],
    })


def actors_layer(partners: Partners) -> gpd.GeoDataFrame:
    """Geolocated actors for the commune map (EPSG:2154), with their type's colour."""
    a = partners.actors
    located = a[a.geometry.notna() & ~a.geometry.is_empty]
    colors = actor_types()["couleur"]
    return gpd.GeoDataFrame(
        {"actor_id": located["actor_id"], "name": located["name"], "type_label": located["type_label"],
         "color": located["type"].map(colors)},
        geometry=located.geometry, crs="EPSG:2154",
    ).reset_index(drop=True)


# ---------------------------------------------------------------- drawing


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
    esc = html.escape
    markers = "".join(
        f'<marker id="{uid}-{k}" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>'
        for k, (c, _, _) in EDGE_STYLES.items()
    )
    edges = []
    for e in _edges(partners):
        color, dash, _ = EDGE_STYLES[e["nature"]]
        details = ", ".join(v for v in (f"depuis {e['since']}" if e["since"] else "", e["intensity"],
                                        f"{text.number(e['posts'], 0 if float(e['posts']).is_integer() else 1)} "
                                        f"{text.plural(float(e['posts']), 'poste', 'postes')} d'adulte-relais"
                                        if pd.notna(e["posts"]) else "") if v)
        arrow = "→" if e["directed"] else "↔"
        title = f"{graph.nodes[e['source']]['name']} {arrow} {graph.nodes[e['target']]['name']} : {e['label']}"
        edges.append(
            f'<path class="rp-lien" data-de="{index[e["source"]]}" data-vers="{index[e["target"]]}" '
            f'data-courbe="{e["bend"]}" d="{_curve(pos[e["source"]], pos[e["target"]], e["bend"], radius[e["target"]])}" '
            f'stroke="{color}" stroke-width="{1 + 0.7 * e["weight"]:.1f}"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + (f' marker-end="url(#{uid}-{e["nature"]})"' if e["directed"] else "")
            + f'><title>{esc(title + (f" ({details})" if details else ""))}</title></path>'
        )
    nodes = []
    for n, d in graph.nodes(data=True):
        x, y = pos[n]
        domains = ", ".join(DOMAINS[k] for k in d["domains"]) or "non précisés"
        tip = (f"{d['name']} — {d['type_label']}\nDomaines : {domains}\n"
               f"Partenaires : {int(cent.at[n, 'degree'])} ; intermédiarité : {text.number(cent.at[n, 'betweenness'], 2)}")
        if d["qpv"]:
            tip += f"\nQPV : {', '.join(qpv_names.get(q, q) for q in d['qpv'])}"
        label = f'<text x="{radius[n] + 3}" y="4">{esc(d["name"])}</text>' if n in labelled else ""
        nodes.append(
            f'<g class="rp-noeud" data-i="{index[n]}" data-r="{radius[n]}" transform="translate({x},{y})">'
            f'<circle r="{radius[n]}" fill="{d["color"]}"><title>{esc(tip)}</title></circle>{label}</g>'
        )
    n_nodes, n_edges = graph.number_of_nodes(), len(partners.relations)
    return (
        f'<figure class="rp-reseau" id="{uid}">{_style(uid)}'
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="Réseau des partenaires : '
        f'{n_nodes} acteurs, {n_edges} relations"><defs>{markers}</defs>'
        f'<g class="rp-liens">{"".join(edges)}</g><g class="rp-noeuds">{"".join(nodes)}</g></svg>'
        f"{_legend(graph, partners)}{_script(uid)}</figure>"
    )


def _legend(graph: nx.DiGraph, partners: Partners) -> str:
    types = actor_types()
    present = [k for k in types.index if any(d["type"] == k for _, d in graph.nodes(data=True))]
    swatches = "".join(
        f'<li><svg aria-hidden="true" width="14" height="14"><circle cx="7" cy="7" r="6" fill="{types.at[k, "couleur"]}"/></svg>'
        f"{html.escape(types.at[k, 'libelle'])}</li>"
        for k in present
    )
    natures = [k for k in NATURES if k in set(partners.relations["nature"])]
    lines = "".join(
        f'<li><svg aria-hidden="true" width="34" height="10"><line x1="1" y1="5" x2="33" y2="5" stroke="{EDGE_STYLES[k][0]}" '
        f'stroke-width="2.4"' + (f' stroke-dasharray="{EDGE_STYLES[k][1]}"' if EDGE_STYLES[k][1] else "")
        + f'/></svg>{html.escape(NATURES[k][0])}{" (flèche : sens)" if not NATURES[k][1] else ""}</li>'
        for k in natures
    )
    return (
        '<figcaption><div><strong>Types d\'acteurs</strong><ul>' + swatches + "</ul></div>"
        "<div><strong>Nature des relations</strong><ul>" + lines + "</ul></div>"
        "<p>Taille d'un acteur : sa centralité (nombre de partenaires et rôle d'intermédiaire). "
        "Survolez un acteur pour voir ses liens ; faites-le glisser pour dégager la vue.</p></figcaption>"
    )


def _style(uid: str) -> str:
    s = f"#{uid}"
    return (
        f"<style>{s}{{margin:0;font-family:system-ui,sans-serif;font-size:12px}}"
        f"{s}>svg{{width:100%;height:auto;max-width:{WIDTH}px;background:#fff;border:1px solid #ddd}}"
        f"{s} .rp-lien{{fill:none;opacity:.75}}{s} .rp-noeud{{cursor:grab}}"
        f"{s} .rp-noeud circle{{stroke:#fff;stroke-width:1.5}}"
        f"{s} .rp-noeud text{{font-size:11px;fill:#222;paint-order:stroke;stroke:#fff;stroke-width:3px}}"
        f"{s}.rp-focus .rp-noeud,{s}.rp-focus .rp-lien{{opacity:.15}}"
        f"{s}.rp-focus .rp-on{{opacity:1}}"
        f"{s} figcaption{{display:flex;flex-wrap:wrap;gap:0 2em}}{s} figcaption ul{{list-style:none;padding:0;margin:.3em 0}}"
        f"{s} figcaption li{{display:flex;align-items:center;gap:.4em}}{s} figcaption p{{flex-basis:100%;color:#555}}"
        "</style>"
    )


_SCRIPT = """<script>(function(){
var fig=document.getElementById("%s");if(!fig)return;var svg=fig.querySelector("svg");
var nodes={};fig.querySelectorAll(".rp-noeud").forEach(function(g){var t=/translate\\(([-\\d.]+),([-\\d.]+)\\)/.exec(g.getAttribute("transform"));
nodes[g.dataset.i]={g:g,x:+t[1],y:+t[2],r:+g.dataset.r};});
var links=[].slice.call(fig.querySelectorAll(".rp-lien"));
function curve(l){var p=nodes[l.dataset.de],q=nodes[l.dataset.vers],b=+l.dataset.courbe;
var dx=q.x-p.x,dy=q.y-p.y,n=Math.max(Math.hypot(dx,dy),1e-6),cx=(p.x+q.x)/2-dy/n*22*b,cy=(p.y+q.y)/2+dx/n*22*b;
var tx=q.x-cx,ty=q.y-cy,tl=Math.max(Math.hypot(tx,ty),1e-6),ex=q.x-tx/tl*(q.r+2),ey=q.y-ty/tl*(q.r+2);
l.setAttribute("d","M"+p.x.toFixed(1)+","+p.y.toFixed(1)+" Q"+cx.toFixed(1)+","+cy.toFixed(1)+" "+ex.toFixed(1)+","+ey.toFixed(1));}
function focus(i){fig.classList.add("rp-focus");nodes[i].g.classList.add("rp-on");
links.forEach(function(l){if(l.dataset.de==i||l.dataset.vers==i){l.classList.add("rp-on");
nodes[l.dataset.de].g.classList.add("rp-on");nodes[l.dataset.vers].g.classList.add("rp-on");}});}
function blur(){fig.classList.remove("rp-focus");fig.querySelectorAll(".rp-on").forEach(function(e){e.classList.remove("rp-on");});}
var drag=null;
Object.keys(nodes).forEach(function(i){var g=nodes[i].g;
g.addEventListener("mouseenter",function(){if(!drag)focus(i);});g.addEventListener("mouseleave",function(){if(!drag)blur();});
g.addEventListener("pointerdown",function(e){drag=i;g.setPointerCapture(e.pointerId);g.style.cursor="grabbing";});
g.addEventListener("pointermove",function(e){if(drag!==i)return;var m=svg.getScreenCTM().inverse(),pt=svg.createSVGPoint();
pt.x=e.clientX;pt.y=e.clientY;pt=pt.matrixTransform(m);nodes[i].x=pt.x;nodes[i].y=pt.y;
g.setAttribute("transform","translate("+pt.x.toFixed(1)+","+pt.y.toFixed(1)+")");
links.forEach(function(l){if(l.dataset.de==i||l.dataset.vers==i)curve(l);});});
g.addEventListener("pointerup",function(e){drag=null;g.releasePointerCapture(e.pointerId);g.style.cursor="";});});
})();</script>"""


def _script(uid: str) -> str:
    return _SCRIPT % uid


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
