"""The decision: what the diagnostic recommends, computed once and rendered by every document.

:func:`decide` turns one commune's :class:`~diagnostic.analysis.recommend.Context` and the rules of
``recommandations.yaml`` into a dictionary (the ``decision`` key of ``resultats.json``, documented in
the README): intervention territories, the commune's own team, the joint services of its
intercommunal quartiers, posts in place, posts to create, annual cost, State aid, remainder, the
funding mix with an amount per funder, the governance with its reason, and the target of the regional
synthesis. « L'essentiel », the cards, the annexes, the CSVs and the regional synthesis read it; none
re-derives a figure.

A QPV over several communes is *intercommunal*: each commune has its part of it (its population
there). The commune's own team is sized on its part of the territories that lie in it alone; an
intercommunal territory gets one joint service sized on the whole quartier, carried by the EPCI (or by
a convention between the communes when they belong to several), and each member commune shows that
service and its own share of it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from diagnostic import text
from diagnostic.analysis.indicators.needs import LEVEL_ORDER
from diagnostic.analysis.indicators.posts import (
    MEDIATION_PROGRAMME,
    RATIO_UNIT,
    missing,
    ratio,
    target,
)

if TYPE_CHECKING:
    from diagnostic.analysis.recommend import Context

#: Funders of the mix, in French.
STATE = "État (postes adultes-relais)"
COMMUNE = "commune"


def _round2(value: float) -> float:
    return round(float(value), 2)


def size(population: float, conf: dict[str, Any]) -> dict[str, Any]:
    """A team for ``population`` inhabitants: ratio, rounding half up, then the rules' floor and cap."""
    t = conf.get("team", {})
    per_10000 = ratio(conf)
    raw = float(target(population, per_10000)) if population else 0.0
    rounded = math.floor(raw + 0.5)
    lo, hi = int(t.get("minimum", 2)), int(t.get("maximum", 12))
    n = min(hi, max(lo, rounded)) if population else 0
    return {"population": float(population or 0.0), "ratio": per_10000, "calcul": raw, "arrondi": rounded, "taille": n,
            "plancher": n > rounded, "plafond": n < rounded,
            "coordinateur": n >= int(t.get("supervisor_from", 5))}


def costs(to_create: int, conf: dict[str, Any], ctx: Context, state_aid: bool) -> dict[str, Any]:
    """Annual cost of ``to_create`` new posts, the State's aid when they can be adultes-relais, the remainder."""
    c = conf.get("costs", {})
    salary = float(c.get("mediator_salary_cost", 36000))
    amount = ctx.adulte_relais_amount or float(c.get("adulte_relais_amount", 22810.61))
    year = ctx.adulte_relais_year if ctx.adulte_relais_amount else str(c.get("adulte_relais_year", "2024"))
    aid = to_create * amount if state_aid else 0.0
    return {"salaire": salary, "montant_par_poste": amount, "annee_montant": year,
            "cout_annuel": _round2(to_create * salary), "aide_etat": _round2(aid),
            "reste_a_financer": _round2(to_create * salary - aid)}


def intervention_codes(ctx: Context, conf: dict[str, Any]) -> dict[str, Any]:
    """The intervention territories: a need of the required level, in ranking order, at most ``max_territories``
    for the commune's first phase; an intercommunal quartier at that level is kept beyond the cap, since its joint
    service is decided with the other communes and every member shows it."""
    required = conf.get("team", {}).get("requires_level", "fort")
    rows = ctx.needs[ctx.needs["level"].map(LEVEL_ORDER).fillna(9) <= LEVEL_ORDER[required]] if len(ctx.needs) else ctx.needs
    ordered = list(dict.fromkeys(rows.sort_values("rank")["code"])) if len(rows) else []
    cap = int(conf.get("territories", {}).get("max_territories", 3))
    terr = ctx.territories
    shared = set(terr.loc[terr["intercommunal"].astype(bool), "code"]) if "intercommunal" in terr else set()
    kept = ordered[:cap] + [c for c in ordered[cap:] if c in shared]
    return {"codes": kept, "later": [c for c in ordered if c not in kept], "required": required,
            "rows": rows[rows["code"].isin(kept)] if len(rows) else rows}


def _territory(ctx: Context, code: str) -> dict[str, Any]:
    terr = ctx.territories.set_index("code")
    row = terr.loc[code]
    whole = float(row["population_total"]) if "population_total" in terr and pd.notna(row["population_total"]) \
        else float(row["population"]) if pd.notna(row["population"]) else float("nan")
    part = float(row["population"]) if pd.notna(row["population"]) else float("nan")
    members = ctx.parts[ctx.parts["code_qp"] == code] if ctx.parts is not None and len(ctx.parts) else pd.DataFrame()
    communes = [{"code": str(m["insee_com"]), "nom": str(m["lib_com"]), "population": float(m["population"]),
                 "part": float(m["population"]) / whole if whole else None}
                for _, m in members.iterrows()]
    return {"code": code, "nom": str(row["name"]), "population": part, "population_quartier": whole,
            "part": part / whole if whole else None, "intercommunal": len(communes) > 1, "communes": communes}


def _posts(ctx: Context, codes: list[str]) -> float:
    """Mediation posts in place on ``codes`` (whole territories), as the needs count them."""
    if not codes or "mediation_posts" not in ctx.needs:
        return 0.0
    per = ctx.needs.drop_duplicates("code").set_index("code")["mediation_posts"]
    return float(per.reindex(codes).fillna(0).sum())


def _deduction(ctx: Context, domains: list[str]) -> tuple[bool, str]:
    """Whether posts in place are deducted from a team for ``domains``: only where the needs rules count them."""
    if not ctx.posts_known:
        return False, "les postes adultes-relais en place ne sont pas connus dans les données : rien n'est déduit"
    answered = [d for d in domains if d in ctx.mediation_domains()]
    if answered:
        return True, (f"les postes adultes-relais comptent comme réponse dans les domaines de l'équipe "
                      f"({', '.join(answered)}) : ils sont déduits de l'équipe")
    return False, ("les postes adultes-relais ne comptent comme réponse, dans les règles des besoins, dans aucun "
                   "domaine de l'équipe : ils ne sont pas déduits")


def _carrier(members: list[dict[str, Any]], ctx: Context) -> dict[str, str]:
    """Who carries a joint service: the EPCI of all its communes, else a convention between the communes."""
    epci = ctx.parts.drop_duplicates("insee_com").set_index("insee_com") if ctx.parts is not None else pd.DataFrame()
    sirens = {str(epci.at[m["code"], "siren_epci"]) for m in members
              if m["code"] in epci.index and "siren_epci" in epci and pd.notna(epci.at[m["code"], "siren_epci"])}
    if len(sirens) == 1 and len(members) == len([m for m in members if m["code"] in epci.index]):
        siren = sirens.pop()
        named = epci.loc[epci["siren_epci"] == siren, "lib_epci"].dropna() if "lib_epci" in epci else pd.Series()
        name = str(named.iloc[0]) if len(named) else f"EPCI {siren}"
        return {"type": "epci", "code": siren, "nom": name, "libelle": f"l'intercommunalité {name}",
                "raison": "le quartier s'étend sur plusieurs communes d'une même intercommunalité, qui signe le "
                          "contrat de ville : elle peut porter un service commun"}
    names = text.join([m["nom"] for m in members])
    return {"type": "convention", "code": "", "nom": f"communes de {names} (convention)",
            "libelle": f"une convention entre les communes de {names}",
            "raison": "le quartier s'étend sur des communes de plusieurs intercommunalités (ou d'intercommunalité "
                      "inconnue) : une convention entre elles porte le service commun"}


def _joint(ctx: Context, conf: dict[str, Any], terr: dict[str, Any], rows: pd.DataFrame) -> dict[str, Any]:
    """One joint service for an intercommunal quartier, sized on its whole population, with the commune's share.

    Everything but the share depends on the quartier alone (its needs, its posts), so every member commune
    shows the same service.
    """
    domains = list(dict.fromkeys(rows.loc[rows["code"] == terr["code"], "domain"])) if len(rows) else []
    team = size(terr["population_quartier"], conf)
    posts = _posts(ctx, [terr["code"]])
    deduct, why = _deduction(ctx, domains)
    to_create = max(0, team["taille"] - math.floor(posts)) if deduct and ctx.posts_known else team["taille"]
    money = costs(to_create, conf, ctx, ctx.has_qpv)
    share = terr["part"] or 0.0
    return {"code": terr["code"], "nom": terr["nom"], "population": terr["population_quartier"], "domaines": domains,
            "communes": terr["communes"], "porteur": _carrier(terr["communes"], ctx), "equipe": team,
            "postes_en_place": posts, "postes_deduits": deduct, "raison_deduction": why, "postes_a_creer": to_create,
            **money, "part_commune": share, "part_equipe": round(team["taille"] * share, 2),
            "part_postes_a_creer": round(to_create * share, 2), "part_cout_annuel": _round2(money["cout_annuel"] * share),
            "part_aide_etat": _round2(money["aide_etat"] * share),
            "part_reste_a_financer": _round2(money["reste_a_financer"] * share)}


def decide(ctx: Context, conf: dict[str, Any], *, choices: bool = True) -> dict[str, Any]:
    """The decision for one commune (see the module docstring and the README's ``decision`` key).

    Without ``choices``, funding and governance (which depend on the partners) are left out.
    """
    from diagnostic.analysis.recommend import choose_option

    zone = intervention_codes(ctx, conf)
    territories = [_territory(ctx, c) for c in zone["codes"]]
    own = [t for t in territories if not t["intercommunal"]]
    domains = list(dict.fromkeys(zone["rows"]["domain"])) if len(zone["rows"]) else []
    own_rows = zone["rows"][zone["rows"]["code"].isin([t["code"] for t in own])] if len(zone["rows"]) else zone["rows"]
    team = size(sum(t["population"] for t in own if not math.isnan(t["population"])), conf)
    posts_own = _posts(ctx, [t["code"] for t in own])
    deduct, why = _deduction(ctx, list(dict.fromkeys(own_rows["domain"])) if len(own_rows) else [])
    to_create = (max(0, team["taille"] - math.floor(posts_own)) if deduct and ctx.posts_known else team["taille"])
    money = costs(to_create, conf, ctx, ctx.has_qpv)
    joint = [_joint(ctx, conf, t, zone["rows"]) for t in territories if t["intercommunal"]]
    total = {k: _round2(money[k] + sum(j[f"part_{k}"] for j in joint)) for k in ("cout_annuel", "aide_etat",
                                                                                 "reste_a_financer")}
    needed = team["taille"] + sum(j["part_equipe"] for j in joint)
    medium = ctx.needs["level"].map(LEVEL_ORDER).fillna(9) <= LEVEL_ORDER["moyen"] if len(ctx.needs) else pd.Series(dtype=bool)
    funding = choose_option(ctx, conf, "funding") if choices and medium.any() else None
    governance = choose_option(ctx, conf, "governance") if choices and needed else None
    mix = []
    if total["aide_etat"]:
        mix.append({"financeur": STATE, "montant": total["aide_etat"],
                    "base": f"{to_create} + part des postes du service commun × montant par poste"
                    if joint else f"{to_create} × montant par poste"})
    if money["reste_a_financer"]:
        mix.append({"financeur": COMMUNE, "montant": money["reste_a_financer"], "base": "reste à financer de l'équipe de la commune"})
    for j in joint:
        if j["part_reste_a_financer"]:
            mix.append({"financeur": j["porteur"]["nom"], "montant": j["part_reste_a_financer"],
                        "base": f"part de la commune ({round(100 * j['part_commune'], 1)} %) du reste à financer du "
                                f"service commun de {j['nom']}"})
    moyen = ctx.needs[(ctx.needs["level"] == "moyen") & ~ctx.needs["code"].isin(zone["codes"] + zone["later"])] \
        if len(ctx.needs) else ctx.needs
    extension = list(dict.fromkeys(moyen.sort_values("rank")["code"])) if len(moyen) else []
    ext_pop = float(ctx.territories.set_index("code")["population"].reindex(extension).sum()) if extension else 0.0
    posts = ctx.commune_posts or {}
    qpv_population = posts.get("qpv_population") if ctx.has_qpv else None
    ratio = team["ratio"]
    return {
        "territoires": territories,
        "territoires_suivants": zone["later"],
        "niveau_requis": zone["required"],
        "domaines": domains,
        "population": sum(t["population"] for t in territories if not math.isnan(t["population"])),
        "ratio": ratio, "ratio_unite": RATIO_UNIT,
        "equipe": team,
        "services_communs": joint,
        "mediateurs_necessaires": round(needed, 2),
        "postes_en_place": {"territoires": posts_own, "connus": bool(ctx.posts_known), "deduits": deduct,
                            "raison_deduction": why, "annee": posts.get("year")},
        "postes_a_creer": to_create,
        **money,
        "extension": {"codes": extension, "population": ext_pop,
                      "calcul": float(target(team["population"] + ext_pop, ratio))},
        "total_commune": total,
        "financement": None if funding is None else {**funding, "repartition": mix},
        "gouvernance": governance,
        "cible": {
            "ratio": ratio, "population_qpv": qpv_population, "annee": posts.get("year"),
            "postes_en_place": posts.get("posts"), "programme": MEDIATION_PROGRAMME,
            "postes_fonjep": posts.get("posts_fonjep"),
            "postes_cibles": None if qpv_population is None else float(target(qpv_population, ratio)),
            "postes_manquants": None if qpv_population is None or posts.get("posts") is None
            else float(missing(qpv_population, posts["posts"], ratio)),
        },
    }


def rows(decision: dict[str, Any]) -> pd.DataFrame:
    """The decision as a table (``decision.csv``): one row per figure, with its unit; numbers to two decimals,
    written with a decimal comma (the column mixes numbers and names)."""
    out: list[tuple[str, str, Any, str]] = []

    def add(scope: str, label: str, value: Any, unit: str = "") -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):  # the CSV's decimal comma, 2 decimals
            value = f"{float(value):.2f}".rstrip("0").rstrip(".").replace(".", ",")
        out.append((scope, label, value, unit))

    d = decision
    add("commune", "territoires d'intervention", ", ".join(t["nom"] for t in d["territoires"]))
    add("commune", "habitants de la commune dans ces territoires", d["population"], "habitants")
    add("commune", "ratio", d["ratio"], d["ratio_unite"])
    add("commune", "équipe propre", d["equipe"]["taille"], "médiateurs")
    add("commune", "postes adultes-relais en place sur ses territoires", d["postes_en_place"]["territoires"], "postes")
    add("commune", "postes à créer", d["postes_a_creer"], "postes")
    add("commune", "coût annuel de l'équipe propre", d["cout_annuel"], "€")
    add("commune", "aide de l'État", d["aide_etat"], "€")
    add("commune", "reste à financer", d["reste_a_financer"], "€")
    for j in d["services_communs"]:
        scope = f"service commun {j['nom']} ({j['code']})"
        add(scope, "porteur", j["porteur"]["nom"])
        add(scope, "habitants du quartier", j["population"], "habitants")
        add(scope, "équipe", j["equipe"]["taille"], "médiateurs")
        add(scope, "postes à créer", j["postes_a_creer"], "postes")
        add(scope, "coût annuel", j["cout_annuel"], "€")
        add(scope, "part de la commune", 100 * j["part_commune"], "%")
        add(scope, "médiateurs à la charge de la commune", j["part_equipe"], "médiateurs")
        add(scope, "coût annuel pour la commune", j["part_cout_annuel"], "€")
    add("commune", "médiateurs nécessaires (équipe propre et parts des services communs)", d["mediateurs_necessaires"],
        "médiateurs")
    for key, label in (("cout_annuel", "coût annuel total pour la commune"), ("aide_etat", "aide de l'État, total"),
                       ("reste_a_financer", "reste à financer, total")):
        add("commune", label, d["total_commune"][key], "€")
    if d.get("financement"):
        add("financement", "recommandé", d["financement"]["libelle"])
        for m in d["financement"]["repartition"]:
            add("financement", m["financeur"], m["montant"], "€")
    if d.get("gouvernance"):
        add("portage", "recommandé", d["gouvernance"]["libelle"])
        add("portage", "raison", d["gouvernance"]["raison"])
    cible = d["cible"]
    for key, label, unit in (("population_qpv", "habitants en QPV", "habitants"),
                             ("postes_en_place", "postes adultes-relais en place", "postes"),
                             ("postes_cibles", "postes visés par le ratio", "postes"),
                             ("postes_manquants", "postes manquants", "postes")):
        if cible.get(key) is not None:
            add(f"cible {cible.get('annee') or ''}".strip(), label, cible[key], unit)
    return pd.DataFrame(out, columns=["perimetre", "element", "valeur", "unite"])
