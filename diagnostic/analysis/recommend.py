"""Recommendations (préconisations) from unmet needs, indicators and partnership gaps.

Rules and texts live in ``diagnostic/resources/rules/recommandations.yaml``; each rule has a
``kind`` that names the trigger computed here. Every recommendation carries
the evidence that triggered it. An officer adds, changes or removes
recommendations in ``recommandations_locales.yaml`` beside the catalogue:

.. code-block:: yaml

    ajouter:
      - {id: local_marche, type: opérationnelle, domain: espace_public, priority: 1,
         title: "…", text: "…"}
    modifier:
      horaires: {priority: 1}
    retirer: [gouvernance]
    par_commune:
      "99101": {ajouter: [...], modifier: {...}, retirer: [...]}
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from diagnostic import resources, text
from diagnostic.analysis.indicators.needs import explain
from diagnostic.errors import CatalogError
from diagnostic.io.catalog import read_yaml
from diagnostic.io.officer import LOCAL_FILE, read_local  # noqa: F401 — LOCAL_FILE re-exported
from diagnostic.io.reference import DOMAINS
from diagnostic.io.sources.postes import POST_NOUNS, PROGRAMMES
from diagnostic.io.sources.postes import euros as _euros

RULES_FILE = resources.path("rules/recommandations.yaml")
LEVEL_ORDER = {"fort": 0, "moyen": 1, "faible": 2, "indéterminé": 3}


@dataclass
class Context:
    """What the rules look at, for one commune."""

    commune_code: str
    commune_name: str
    territories: pd.DataFrame          # code, name, population, communes (QPVs, or the commune itself)
    needs: pd.DataFrame                # ranked unmet needs of these territories (diagnostic.analysis.indicators.needs)
    evidence: pd.DataFrame             # indicator evidence behind the needs
    social: pd.DataFrame               # long social table of these territories
    observations: pd.DataFrame | None = None
    gaps: pd.DataFrame | None = None   # partnership gaps (diagnostic.analysis.partners.gaps)
    actor_types: set[str] = field(default_factory=set)
    adulte_relais_posts: float = 0.0
    adulte_relais_amount: float | None = None   # State amount per post in the data (latest year)
    adulte_relais_year: str = ""
    has_qpv: bool = True
    posts_in_place: dict[str, Any] | None = None   # posts funded in the last complete year (diagnostic.io.sources.postes.funded)


def load_rules(path: str | Path | None = None) -> dict[str, Any]:
    path = Path(path) if path else RULES_FILE
    rules = read_yaml(path, "règles des recommandations")
    for rule in rules.get("rules", []):
        if rule.get("kind") not in TRIGGERS:
            raise CatalogError(f"règle « {rule.get('id')} » : type de déclencheur « {rule.get('kind')} » inconnu "
                               f"(possibles : {', '.join(TRIGGERS)}).", path=path)
    for section in ("funding", "governance", "hours"):
        options = rules.get(section, {}).get("options", []) if section == "hours" else rules.get(section, [])
        for option in options:
            if option.get("condition") not in CONDITIONS:
                raise CatalogError(f"« {section} », option « {option.get('id')} » : condition « {option.get('condition')} » "
                                   f"inconnue (possibles : {', '.join(CONDITIONS)}).", path=path)
    return rules


def _names(ctx: Context, codes: list[str]) -> list[str]:
    """The territories' names as the texts say them (their codes are in the evidence and ``cadrage.codes``)."""
    names = ctx.territories.set_index("code")["name"]
    return [str(names.get(c, c)) for c in codes]


def _strong(ctx: Context, min_level: str = "moyen") -> pd.DataFrame:
    ok = ctx.needs["level"].map(LEVEL_ORDER).fillna(9) <= LEVEL_ORDER[min_level]
    return ctx.needs[ok]


def _need_evidence(ctx: Context, rows: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for _, row in rows.iterrows():
        out.append({"territoire": row["code"], "domaine": row["domain_label"], "niveau": row["level"],
                    "rang": int(row["rank"]), "score_besoin_non_couvert": row["unmet"], "raison": row["reason"],
                    "robustesse": row.get("robustness", ""), "elements": explain(row, ctx.evidence)})
    return out


def intervention(ctx: Context, conf: dict[str, Any]) -> dict[str, Any]:
    """The intervention territories: those with a need of the required level, in ranking order, capped.

    Returns the codes kept, those left for a later phase, their population and the level required.
    """
    required = conf.get("team", {}).get("requires_level", "fort")
    rows = ctx.needs[ctx.needs["level"].map(LEVEL_ORDER).fillna(9) <= LEVEL_ORDER[required]]
    ordered = list(dict.fromkeys(rows.sort_values("rank")["code"]))
    cap = int(conf.get("territories", {}).get("max_territories", 3))
    kept, later = ordered[:cap], ordered[cap:]
    pop = ctx.territories.set_index("code")["population"]
    population = float(pop.reindex(kept).sum(min_count=1)) if kept else 0.0
    return {"codes": kept, "later": later, "population": population, "required": required,
            "rows": rows[rows["code"].isin(kept)]}


def _priority_territories(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    zone = intervention(ctx, conf)
    if not zone["codes"]:
        return []
    rows = zone["rows"]
    parts = []
    for code in zone["codes"]:
        mine = rows[rows["code"] == code]
        domains = text.join([d.lower() for d in mine["domain_label"]])
        fragile = [r for r in mine["robustness"] if r and r != "robuste"] if "robustness" in mine else []
        hold = ("robuste quand chaque poids des règles varie de ±50 %" if not fragile
                else f"{text.count(len(fragile), 'niveau')} sur {len(mine)} {'dépend' if len(fragile) < 2 else 'dépendent'} des hypothèses")
        first = mine.iloc[0]
        parts.append(f"{_names(ctx, [code])[0]} : {text.count(len(mine), 'besoin')} de niveau {zone['required']} "
                     f"({domains}), au rang {int(first['rank'])} du classement de la commune ; {hold}")
    why = "Ce choix suit le classement des besoins non couverts (niveau, puis habitants concernés) : " + " ; ".join(parts) + "."
    if zone["later"]:
        why += (f" {text.join(_names(ctx, zone['later']))} {'a' if len(zone['later']) == 1 else 'ont'} aussi un besoin de "
                f"niveau {zone['required']} : {conf.get('territories', {}).get('max_reason', '')}.")
    fields = {"territories": text.join(_names(ctx, zone["codes"])), "population": text.number(zone["population"]), "why": why}
    return [_make(rule, fields, _need_evidence(ctx, rows.head(8)), why)]


def _domain_unmet(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    strong = _strong(ctx, rule.get("min_level", "moyen"))
    out = []
    for domain, rows in strong.groupby("domain", sort=False):
        level = "fort" if (rows["level"] == "fort").any() else "moyen"
        fields = {"domain": domain, "domain_label": DOMAINS.get(domain, domain),
                  "territories": text.join(_names(ctx, list(rows["code"]))), "level": level,
                  "domain_action": rule.get("domain_actions", {}).get(domain, "")}
        rec = _make(rule, fields, _need_evidence(ctx, rows), rows.iloc[0]["reason"])
        rec["domain"] = domain
        rec["priority"] = 1 if level == "fort" else 2
        rec["first_rank"] = int(rows["rank"].min())
        out.append(rec)
    out = sorted(out, key=lambda r: (r["priority"], r["first_rank"]))
    for r in out:
        r.pop("first_rank")
    return out


def _publics(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    strong = _strong(ctx)
    if strong.empty:
        return []
    labels = conf.get("publics", {})
    domains = list(dict.fromkeys(strong.sort_values("rank")["domain"]))
    chosen = labels.get(domains[0], "les habitants des quartiers concernés")
    others = [labels[d] for d in domains[1:] if d in labels and labels[d] != chosen]
    first = strong.sort_values("rank").iloc[0]
    why = (f"Règle : le public du premier besoin du classement, « {first['domain_label']} » "
           f"{text.at(_names(ctx, [first['code']])[0])} (rang 1, niveau {first['level']}).")
    if others:
        why += f" Autres publics des besoins suivants : {text.join(others)}."
    return [_make(rule, {"public": chosen, "why": why}, [], why) | {"public": chosen, "alternatives": others}]


def _conditions(ctx: Context, conf: dict) -> dict[str, bool]:
    """Every condition a choice can name, evaluated once (see diagnostic/resources/rules/recommandations.yaml)."""
    domains = set(_strong(ctx)["domain"])
    zone = intervention(ctx, conf)
    hours = conf.get("hours", {})
    evening = _evening(ctx, hours, zone["codes"])
    communes = set()
    for c in ctx.territories[ctx.territories["code"].isin(zone["codes"])]["communes"]:
        communes |= set(str(c).split(","))
    funders = {"bailleur social", "opérateur de transport"} & ctx.actor_types
    return {
        "always": True,
        "has_qpv": ctx.has_qpv,
        "posts_in_place": bool(ctx.posts_in_place and sum(ctx.posts_in_place["posts"].values())),
        "evening_observations": len(evening) >= int(hours.get("evening_threshold", 5)),
        "school_priority": bool({"education", "jeunesse"} & domains),
        "domain_espace_public_or_transports": bool({"espace_public", "transports"} & domains),
        "domain_habitat_or_landlord": "habitat" in domains or "bailleur social" in ctx.actor_types,
        "domain_transports_or_operator": "transports" in domains or "opérateur de transport" in ctx.actor_types,
        "mediation_operator": "opérateur de médiation" in ctx.actor_types,
        "several_communes": len(communes) > 1,
        "several_funders": len(funders) >= 1 and len(ctx.actor_types) >= 4,
    }


def _evening(ctx: Context, hours: dict, codes: list[str]) -> pd.DataFrame:
    """Observations of evening-type problems in the intervention territories (all of them without one)."""
    obs = ctx.observations if ctx.observations is not None else pd.DataFrame(columns=["problem"])
    obs = obs[obs["problem"].isin(hours.get("evening_problems", []))]
    key = "code_qp" if ctx.has_qpv else "insee_com"
    return obs[obs[key].isin(codes)] if codes and key in obs else obs


CONDITION_TEXT = {
    "always": "option par défaut",
    "has_qpv": "la commune a des quartiers prioritaires",
    "posts_in_place": "des postes adultes-relais ou FONJEP sont déjà financés sur le contrat de ville de la commune "
                      "ou de son intercommunalité",
    "evening_observations": "les observations d'habitants et de partenaires portent sur la soirée et le week-end",
    "school_priority": "un besoin « éducation » ou « jeunesse » fait partie des priorités",
    "domain_espace_public_or_transports": "un besoin « espace public » ou « transports » fait partie des priorités",
    "domain_habitat_or_landlord": "un besoin « habitat » est prioritaire ou un bailleur social est partenaire",
    "domain_transports_or_operator": "un besoin « transports » est prioritaire ou un transporteur est partenaire",
    "mediation_operator": "un opérateur de médiation est au registre des partenaires",
    "several_communes": "les territoires d'intervention couvrent plusieurs communes",
    "several_funders": "plusieurs financeurs autres que la commune sont partenaires",
}
CONDITIONS = set(CONDITION_TEXT)


def _choose(options: list[dict], met: dict[str, bool]) -> tuple[dict | None, list[dict], list[dict]]:
    """The first option whose condition holds, the other options that hold, and those that do not."""
    held = [o for o in options if met.get(o["condition"], False)]
    return (held[0] if held else None), held[1:], [o for o in options if o not in held]


def _hours(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    hours = conf.get("hours", {})
    met = _conditions(ctx, conf)
    chosen, others, not_met = _choose(hours.get("options", []), met)
    if chosen is None:
        return []
    evening = _evening(ctx, hours, intervention(ctx, conf)["codes"])
    detail = {"evening_observations": f" ({text.count(len(evening), 'observation')}, seuil {hours.get('evening_threshold', 5)})"}
    why = f"Règle : la première option dont la condition est remplie. Retenue car {CONDITION_TEXT[chosen['condition']]}{detail.get(chosen['condition'], '')}."
    alts = [f"{o['label']} ({CONDITION_TEXT[o['condition']]}, en complément)" for o in others] + [
        f"{o['label']} (non retenue : la condition « {CONDITION_TEXT[o['condition']]} » n'est pas remplie"
        f"{detail.get(o['condition'], '')})" for o in not_met]
    if alts:
        why += " Autres options : " + " ; ".join(alts) + "."
    evidence = [{"type": "besoin exprime", "libelle": "Observations relevant de la soirée et du week-end",
                 "valeur": len(evening), "seuil": hours.get("evening_threshold", 5)}]
    rec = _make(rule, {"hours": chosen["label"], "why": why}, evidence, why)
    rec["hours"] = chosen["label"]
    return [rec]


def team(ctx: Context, conf: dict) -> dict[str, Any]:
    """Team size from the ratio on the intervention territories' population, with floor, cap and costs.

    Every figure the text prints is a key of the result, so the sentence and the number cannot differ.
    """
    t, costs = conf.get("team", {}), conf.get("costs", {})
    zone = intervention(ctx, conf)
    ratio = float(t.get("mediators_per_10000_inhabitants", 2.5))
    out: dict[str, Any] = {"codes": zone["codes"], "population": zone["population"], "ratio": ratio, "size": 0}
    if not zone["codes"] or not zone["population"]:
        return out
    raw = zone["population"] * ratio / 10000
    rounded = math.floor(raw + 0.5)
    lo, hi = int(t.get("minimum", 2)), int(t.get("maximum", 12))
    size = min(hi, max(lo, rounded))
    pop = ctx.territories.set_index("code")
    posts = float(ctx.needs.drop_duplicates("code").set_index("code")["mediation_posts"].reindex(zone["codes"]).fillna(0).sum()) \
        if "mediation_posts" in ctx.needs else 0.0
    posts_known = bool(ctx.needs["posts_known"].any()) if "posts_known" in ctx.needs else False
    to_create = max(0, size - math.floor(posts)) if posts_known else size
    moyen = ctx.needs[(ctx.needs["level"] == "moyen") & ~ctx.needs["code"].isin(zone["codes"] + zone["later"])]
    extension = list(dict.fromkeys(moyen.sort_values("rank")["code"]))
    extension_population = float(pop["population"].reindex(extension).sum()) if extension else 0.0
    amount = ctx.adulte_relais_amount or float(costs.get("adulte_relais_amount", 22810.61))
    year = ctx.adulte_relais_year if ctx.adulte_relais_amount else str(costs.get("adulte_relais_year", "2024"))
    salary = float(costs.get("mediator_salary_cost", 36000))
    out.update(raw=raw, rounded=rounded, size=size, floor=size > rounded, cap=size < rounded, posts=posts,
               posts_known=posts_known, extension_codes=extension, extension_population=extension_population,
               extension_raw=(zone["population"] + extension_population) * ratio / 10000,
               to_create=to_create, salary=salary, cost=to_create * salary, amount=amount, amount_year=year,
               aid=to_create * amount, remaining=to_create * (salary - amount),
               names=_names(ctx, zone["codes"]), populations=[float(pop.loc[c, "population"]) for c in zone["codes"]])
    return out


def in_place_sentence(funded: dict[str, Any] | None) -> str:
    """The posts already funded, as a funding lead: « 214 postes adultes-relais et 64 postes FONJEP sont déjà
    financés par l'État en 2024 sur le contrat de ville « … » (CN05911M), pour 5 325 041,54 € (… et …) : … ».

    Every figure is a value of ``funded``: the total amount is the sum of the programmes' amounts printed beside it.
    """
    if not funded or not sum(funded["posts"].values()):
        return ""
    counts = [text.count(n, *POST_NOUNS.get(p, (p, p))) for p, n in funded["posts"].items() if n]
    total = sum(funded["posts"].values())
    amounts = funded["amounts"]
    amount = ""
    if amounts:
        amount = f", pour {_euros(round(sum(amounts.values()), 2))}"
        if len(amounts) > 1:
            amount += f", dont {text.join([f'{_euros(v)} pour les {POST_NOUNS.get(p, (p, p))[1]}' for p, v in amounts.items()])}"
    contracts = [f"«{text.NBSP}{c['label']}{text.NBSP}» ({c['code']})" if c["label"] != c["code"] else c["code"]
                 for c in funded["contracts"]]
    where = f"le contrat de ville {contracts[0]}" if len(contracts) == 1 else f"les contrats de ville {text.join(contracts)}"
    year = str(funded["year"])
    if funded.get("later_partial"):
        year += ", dernière année complète des fichiers de l'ANCT,"
    verb = "sont déjà financés" if total >= 2 else "est déjà financé"
    return text.sentence(
        f"{text.join(counts)} {verb} par l'État en {year} sur {where}{amount} : c'est dans "
        f"{'ce contrat' if len(contracts) == 1 else 'ces contrats'} que se demandent les postes nouveaux, et leurs "
        "employeurs sont les premiers partenaires à associer au service")


def _in_place_evidence(funded: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures of :func:`in_place_sentence`, one evidence item each."""
    contracts = ", ".join(c["code"] for c in funded["contracts"])
    items = [{"type": "financement en place", "libelle": f"Postes {PROGRAMMES.get(p, p)} financés en {funded['year']} "
              f"sur le contrat de ville ({contracts})", "valeur": n, "annee": funded["year"]}
             for p, n in funded["posts"].items()]
    items += [{"type": "financement en place", "libelle": f"Montant de l'État pour les postes {PROGRAMMES.get(p, p)} "
               f"en {funded['year']} (€)", "valeur": v, "annee": funded["year"]} for p, v in funded["amounts"].items()]
    items += [{"type": "année partielle", "libelle": f"Année {y} partielle dans les fichiers des postes", "valeur": reason,
               "annee": y} for y, reason in funded.get("later_partial", {}).items()]
    return items


def _team_size(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    t = conf.get("team", {})
    plan = team(ctx, conf)
    if not plan["size"]:
        strong = _strong(ctx)
        level = t.get("requires_level", "fort")
        found = (f"{text.count(len(strong), 'besoin')} de niveau moyen, aucun de niveau {level}" if len(strong)
                 else "aucun besoin non couvert de niveau fort ou moyen")
        why = (f"Pas d'équipe à créer : le diagnostic trouve {found}, alors qu'une équipe se justifie à partir d'un besoin "
               f"de niveau {level}. À réexaminer si un besoin devient {level} : indicateurs d'un nouveau millésime, "
               f"réponse existante qui disparaît (fin de postes adultes-relais, fermeture d'un service), ou besoins exprimés "
               f"nombreux et de plusieurs sources. Option légère recommandée : {t.get('light_option', '')}.")
        rec = _make(rule, {"title": "Pas d'équipe à créer pour l'instant ; une option légère", "why": why}, [], why)
        rec["team_size"] = 0
        return [rec]
    detail = text.join([f"{n} : {text.number(p)}" for n, p in zip(plan["names"], plan["populations"])])
    why = (f"Pour les {text.number(plan['population'])} habitants des territoires d'intervention ({detail}), au ratio de "
           f"{text.number(plan['ratio'], 1)} médiateurs pour 10 000 habitants ({t.get('ratio_source', '')}) : "
           f"{text.number(plan['population'])} × {text.number(plan['ratio'], 1)} ÷ {text.number(10000)} = {text.number(plan['raw'], 1)}, "
           f"arrondi à {text.count(plan['rounded'], 'médiateur')}.")
    if plan["cap"]:
        why += f" L'équipe est plafonnée à {plan['size']} : {t.get('maximum_reason', '')}."
    if plan["floor"]:
        why += f" L'équipe compte au moins {plan['size']} médiateurs : {t.get('minimum_reason', '')}."
    if plan["size"] >= int(t.get("supervisor_from", 5)):
        why += " Dont un coordinateur."
    in_place = ctx.posts_in_place or {}
    contract_posts = in_place.get("posts", {}).get("adulte-relais", 0)
    share = (f" (leur part des {text.count(contract_posts, *POST_NOUNS['adulte-relais'])} du contrat de ville en "
             f"{in_place['year']})" if contract_posts else "")
    if plan["posts_known"]:
        why += (f" Postes adultes-relais déjà en place sur ces territoires : {text.number(plan['posts'], 1)}{share} ; "
                f"postes à créer : {plan['to_create']}.")
    else:
        why += (" Les postes adultes-relais en place ne sont pas connus pour ces quartiers dans les données : "
                f"à vérifier auprès de la préfecture et à déduire des {plan['to_create']} postes à créer.")
    if plan["extension_codes"]:
        why += (f" Étendre l'intervention aux quartiers de niveau moyen ({text.join(_names(ctx, plan['extension_codes']))}, "
                f"{text.number(plan['extension_population'])} habitants de plus) porterait le calcul à "
                f"{text.number(plan['population'] + plan['extension_population'])} × {text.number(plan['ratio'], 1)} ÷ "
                f"{text.number(10000)} = {text.number(plan['extension_raw'], 1)} médiateurs, dans la limite de "
                f"{t.get('maximum', 12)}.")
    if not plan["to_create"]:
        why += (" Les postes en place suffisent à l'équipe calculée : il s'agit de les organiser sur ces territoires "
                "et ces priorités, sans poste nouveau.")
    else:
        why += (f" Coût annuel estimé : {plan['to_create']} × {_euros(plan['salary'])} = {_euros(plan['cost'])} ; "
                f"s'ils sont conventionnés adultes-relais, l'État verse {plan['to_create']} × {_euros(plan['amount'])} "
                f"= {_euros(plan['aid'])} (montant par poste {plan['amount_year']}), reste à financer "
                f"{_euros(plan['remaining'])}.")
    evidence = [{"type": "calcul", "libelle": "Population des territoires d'intervention", "valeur": plan["population"]},
                {"type": "calcul", "libelle": "Ratio de médiateurs pour 10 000 habitants", "valeur": plan["ratio"]},
                {"type": "calcul", "libelle": "Résultat du ratio", "valeur": round(plan["raw"], 2)},
                {"type": "calcul", "libelle": "Équipe retenue", "valeur": plan["size"]},
                {"type": "calcul", "libelle": "Postes adultes-relais en place", "valeur": plan["posts"]},
                {"type": "calcul", "libelle": "Postes à créer", "valeur": plan["to_create"]}]
    title = (f"Constituer une équipe de {text.count(plan['size'], 'médiateur')}" if plan["to_create"] else
             f"Organiser les postes en place en une équipe de {text.count(plan['size'], 'médiateur')}")
    rec = _make(rule, {"title": title, "why": why}, evidence, why)
    rec["team_size"] = plan["size"]
    rec["team"] = {k: plan[k] for k in ("population", "ratio", "raw", "rounded", "size", "posts", "to_create",
                                        "salary", "cost", "amount", "aid", "remaining")}
    return [rec]


def _gap_name(g: dict) -> str:
    return f"{g['acteur']} – {g['partenaire']}" if g.get("partenaire") else f"{g['acteur']} ({g['categorie']})"


def _partnerships(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    if ctx.gaps is None or ctx.gaps.empty:
        return []
    gaps = list({name: g for g in ctx.gaps.to_dict("records") for name in [_gap_name(g)]}.values())
    name = _gap_name
    first = gaps[0]
    why = (f"Règle : le premier lien de la liste des liens à créer, qui suit les besoins prioritaires. Recommandé d'abord : "
           f"{name(first)}" + (f" — {first['pourquoi'].rstrip('.')}" if first.get("pourquoi") else "") + ".")
    if len(gaps) > 1:
        why += f" Ensuite ({len(gaps) - 1}) : " + " ; ".join(name(g) for g in gaps[1:6]) + ("…" if len(gaps) > 6 else "") + "."
    evidence = [{"type": "partenariat", **{str(k): str(v) for k, v in row.items()}} for row in gaps[:10]]
    return [_make(rule, {"count": len(gaps), "why": why}, evidence, why)]


def _choice_rec(rule: dict, ctx: Context, conf: dict, options: list[dict], what: str) -> list[dict]:
    met = _conditions(ctx, conf)
    chosen, others, not_met = _choose(options, met)
    if chosen is None:
        return []
    why = (f"Règle : la première option de la liste dont la condition est remplie. Recommandé : {chosen['label']}, car "
           f"{chosen.get('why') or CONDITION_TEXT[chosen['condition']]}.")
    held = [chosen, *others]
    in_place = in_place_sentence(ctx.posts_in_place) if any(o["condition"] == "posts_in_place" for o in held) else ""
    if in_place:
        why += f" {in_place}"
    if any(o["id"] == "adultes_relais" for o in held):
        amount = ctx.adulte_relais_amount or float(conf.get("costs", {}).get("adulte_relais_amount", 22810.61))
        year = ctx.adulte_relais_year if ctx.adulte_relais_amount else str(conf.get("costs", {}).get("adulte_relais_year", "2024"))
        why += f" Pour un poste adulte-relais nouveau, l'État verse {_euros(amount)} par an ({year})."
    if others:
        why += f" {what} aussi possibles : " + " ; ".join(o["label"] for o in others) + "."
    if not_met:
        why += " Non retenus : " + " ; ".join(f"{o['label']} ({CONDITION_TEXT[o['condition']]} : non)" for o in not_met) + "."
    evidence = _in_place_evidence(ctx.posts_in_place) if in_place else []
    rec = _make(rule, {"choice": chosen["label"], "why": why}, evidence, why)
    rec["choice"] = chosen["id"]
    rec["leads"] = [o["label"] for o in held]
    if in_place:
        rec["in_place"] = in_place
    return [rec]


def _funding(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    if not _strong(ctx).shape[0]:
        return []
    return _choice_rec(rule, ctx, conf, conf.get("funding", []), "Financements")


def _governance(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    if not team(ctx, conf)["size"]:
        return []
    return _choice_rec(rule, ctx, conf, conf.get("governance", []), "Portages")


def _evaluation(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    return [_make(rule, {}, [], "Toute création ou adaptation de service s'évalue : la norme de la médiation sociale le demande.")]


TRIGGERS = {
    "priority_territories": _priority_territories,
    "domain_unmet": _domain_unmet,
    "publics": _publics,
    "hours": _hours,
    "team_size": _team_size,
    "partnerships": _partnerships,
    "funding": _funding,
    "governance": _governance,
    "evaluation": _evaluation,
}


class _Fields(dict):
    """Leave unknown {fields} visible instead of failing, so a typo in a rule shows in the text."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _make(rule: dict, fields: dict, evidence: list, reason: str = "") -> dict[str, Any]:
    f = _Fields({k: v for k, v in fields.items()})
    domain = rule.get("domain", "transversal")
    return {
        "id": rule["id"].format_map(f),
        "type": rule.get("type", "opérationnelle"),
        "domain": domain,
        "domain_label": DOMAINS.get(domain, "Transversal"),
        "priority": int(rule.get("priority", 2)),
        "title": rule.get("title", "").format_map(f),
        "text": re.sub(r"[ \t\r\n]+", " ", rule.get("text", "").format_map(f)).strip(),  # keeps no-break spaces
        "evidence": evidence,
        "reason": reason,
        "origin": "règle",
    }


def recommend(ctx: Context, rules: dict[str, Any] | None = None, local: str | Path | None = None) -> list[dict[str, Any]]:
    """All recommendations for one commune, then the officer's local additions and changes."""
    rules = rules or load_rules()
    recs: list[dict[str, Any]] = []
    for rule in rules.get("rules", []):
        recs.extend(TRIGGERS[rule["kind"]](rule, ctx, rules))
    if local and Path(local).exists():
        recs = apply_local(recs, Path(local), ctx.commune_code)
    for r in recs:
        r["domain_label"] = DOMAINS.get(r["domain"], "Transversal")
    return sorted(recs, key=lambda r: (r["priority"], r["type"] != "stratégique"))


DAYTIME = "en journée, du lundi au vendredi (aucun besoin relevé ne justifie des horaires décalés)"


def framing(ctx: Context, recs: list[dict[str, Any]], rules: dict[str, Any] | None = None) -> dict[str, Any]:
    """The frame of the project (cadrage): territories, publics, objectives, hours and team size.

    Drawn from the same needs and recommendations the report shows; a
    recommendation the officer removed leaves its part of the frame empty.
    """
    conf = rules or load_rules()
    zone = intervention(ctx, conf)
    by_id = {r["id"]: r for r in recs}
    objectives = []
    for domain, rows in zone["rows"].groupby("domain", sort=False):
        objectives.append(f"Réduire le besoin non couvert « {DOMAINS.get(domain, domain)} » (niveau "
                          f"{'fort' if (rows['level'] == 'fort').any() else 'moyen'}) dans {text.join(_names(ctx, list(rows['code'])))}")
    return {
        "territoires": _names(ctx, zone["codes"]),
        "codes": zone["codes"],
        "population": zone["population"] if zone["codes"] else None,
        "publics": by_id["publics"]["public"] if "publics" in by_id and "public" in by_id["publics"] else "",
        "objectifs": objectives,
        "horaires": by_id["horaires"].get("hours", by_id["horaires"]["title"]) if "horaires" in by_id else DAYTIME,
        "equipe": by_id.get("equipe", {}).get("team_size"),
    }


def apply_local(recs: list[dict], path: Path, commune: str) -> list[dict]:
    """Apply ``ajouter`` / ``modifier`` / ``retirer`` from the officer's file (global, then per commune)."""
    local = read_local(path)  # confined to the catalogue's folder, checked whole
    layers = [local, (local.get("par_commune") or {}).get(str(commune), {})]
    for layer in layers:
        removed = set(layer.get("retirer") or [])
        recs = [r for r in recs if r["id"] not in removed]
        for rid, changes in (layer.get("modifier") or {}).items():
            for r in recs:
                if r["id"] == rid:
                    r.update({k: v for k, v in changes.items() if k in ("title", "text", "priority", "type", "domain")})
                    r["origin"] = "règle modifiée localement"
        for item in layer.get("ajouter") or []:
            recs.append({"type": "opérationnelle", "domain": "transversal", "priority": 2, "evidence": [],
                         "reason": "ajoutée par l'agent dans les recommandations locales", **item, "origin": "ajout local"})
    return recs
