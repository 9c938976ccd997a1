"""Partnership mapping (maillage partenarial): the graph of partners, its gaps, and its tables.

The registry (:mod:`diagnostic.io.sources.partners`) becomes a directed graph: one
node per actor, one edge per (from, to) pair carrying the natures of their
relations. Centrality is read on the undirected graph (who works with whom,
whatever the direction). The gaps become « liens à créer » and « acteurs à
mobiliser », each with a French « pourquoi ». The drawings (interactive SVG
and PNG) are :mod:`diagnostic.report.network`.
"""

from __future__ import annotations

from dataclasses import replace

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd

from diagnostic import text
from diagnostic.io.reference import DOMAINS
from diagnostic.io.sources.partners import MEDIATION, NATURES, Partners, actor_types, normalize
from diagnostic.io.sources.qpv import QPV_CODE

CENTRALITY_HEADERS = {"actor_id": "Identifiant", "name": "Acteur", "type_label": "Type",
                      "degree": "Nombre de partenaires", "betweenness": "Intermédiarité (0 à 1)"}
GAP_COLUMNS = ["categorie", "acteur_id", "acteur", "partenaire_id", "partenaire", "pourquoi", "motif"]
LINK, MOBILISE = "lien à créer", "acteur à mobiliser"
#: Need levels that mean no unmet need.
NO_NEED = {"faible", "indetermine", "aucun", "nul", "0", ""}


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
    and/or ``insee_com`` (or ``code``, as :func:`diagnostic.analysis.indicators.needs.unmet_needs`
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
