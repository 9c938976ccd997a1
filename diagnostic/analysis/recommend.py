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

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from diagnostic import resources, text
from diagnostic.analysis.decision import LEVEL_ORDER, decide, intervention_codes
from diagnostic.analysis.indicators.needs import explain
from diagnostic.errors import CatalogError
from diagnostic.io.catalog import read_yaml
from diagnostic.io.officer import LOCAL_FILE, read_local  # noqa: F401 — LOCAL_FILE re-exported
from diagnostic.io.reference import DOMAINS
from diagnostic.io.sources.postes import POST_NOUNS, PROGRAMMES
from diagnostic.io.sources.postes import euros as _euros

RULES_FILE = resources.path("rules/recommandations.yaml")


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
    adulte_relais_amount: float | None = None   # State amount per post in the data (latest year)
    adulte_relais_year: str = ""
    has_qpv: bool = True
    posts_in_place: dict[str, Any] | None = None   # posts funded in the last complete year (diagnostic.io.sources.postes.funded)
    #: The member communes of the territories (``code_qp``, ``insee_com``, ``lib_com``, ``population`` of the part,
    #: ``siren_epci``, ``lib_epci``): a QPV with several rows is intercommunal.
    parts: pd.DataFrame | None = None
    #: The commune's posts in place (its row of :func:`diagnostic.analysis.indicators.posts.posts_by_commune`).
    commune_posts: dict[str, Any] | None = None
    #: Domains where the needs rules count an adulte-relais post as a response (None: the shipped rules').
    post_domains: list[str] | None = None
    #: The decision (:func:`diagnostic.analysis.decision.decide`), computed once by :func:`recommend`.
    decision: dict[str, Any] | None = None

    @functools.cached_property
    def proofs(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """The evidence records of each need (:func:`~diagnostic.analysis.indicators.needs.explain`), made once:
        several recommendations cite the same needs."""
        return dict(zip(zip(self.needs["code"], self.needs["domain"]), explain(self.needs, self.evidence)))

    @property
    def posts_known(self) -> bool:
        return bool(self.needs["posts_known"].any()) if "posts_known" in self.needs and len(self.needs) else False

    def mediation_domains(self) -> list[str]:
        if self.post_domains is None:
            from diagnostic.analysis.indicators.needs import load_rules as need_rules

            self.post_domains = list((need_rules().get("mediation") or {}).get("domains", []))
        return self.post_domains


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


def _mediators(value: float) -> str:
    """A computed number of mediators: « 4 médiateurs » (not « 4,0 »), « 1,5 médiateur », « 11,7 médiateurs »."""
    n = round(float(value), 1)
    return f"{text.number(n, 0 if n.is_integer() else 1)} {text.plural(n, 'médiateur')}"


def _names(ctx: Context, codes: list[str]) -> list[str]:
    """The territories' names as the texts say them (their codes are in the evidence and ``cadrage.codes``)."""
    names = ctx.territories.set_index("code")["name"]
    return [str(names.get(c, c)) for c in codes]


def _strong(ctx: Context, min_level: str = "moyen") -> pd.DataFrame:
    ok = ctx.needs["level"].map(LEVEL_ORDER).fillna(9) <= LEVEL_ORDER[min_level]
    return ctx.needs[ok]


def _need_evidence(ctx: Context, rows: pd.DataFrame) -> list[dict[str, Any]]:
    return [{"territoire": code, "domaine": label, "niveau": level, "rang": int(rank), "score_besoin_non_couvert": unmet,
             "raison": reason, "robustesse": robust, "elements": ctx.proofs[(code, domain)]}
            for code, domain, label, level, rank, unmet, reason, robust in zip(
                rows["code"], rows["domain"], rows["domain_label"], rows["level"], rows["rank"], rows["unmet"],
                rows["reason"], rows["robustness"] if "robustness" in rows else [""] * len(rows))]


def intervention(ctx: Context, conf: dict[str, Any]) -> dict[str, Any]:
    """The intervention territories (:func:`diagnostic.analysis.decision.intervention_codes`) and the commune's
    population in them (its part of each)."""
    zone = intervention_codes(ctx, conf)
    pop = ctx.territories.set_index("code")["population"]
    population = float(pop.reindex(zone["codes"]).sum(min_count=1)) if zone["codes"] else 0.0
    return {**zone, "population": population}


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
                  # each territory with its own level: « au Grand Mirail (fort) et à Empalot (moyen) »
                  "at_territories": text.join([f"{text.at(n)} (niveau {lvl})" for n, lvl in
                                               zip(_names(ctx, list(rows["code"])), rows["level"])]),
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


def decision(ctx: Context, conf: dict) -> dict[str, Any]:
    """The commune's decision (:func:`diagnostic.analysis.decision.decide`), computed once per context."""
    if ctx.decision is None:
        ctx.decision = decide(ctx, conf)
    return ctx.decision


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


def _calculation(team: dict[str, Any], conf: dict) -> str:
    """« 26 000 × 2,5 ÷ 10 000 = 6,5, arrondi à 7 médiateurs », then the cap, floor and coordinator."""
    t = conf.get("team", {})
    out = (f"{text.number(team['population'])} × {text.number(team['ratio'], 1)} ÷ {text.number(10000)} = "
           f"{text.number(team['calcul'], 1)}, arrondi à {text.count(team['arrondi'], 'médiateur')}.")
    if team["plafond"]:
        out += f" L'équipe est plafonnée à {team['taille']} : {t.get('maximum_reason', '')}."
    if team["plancher"]:
        out += f" L'équipe compte au moins {team['taille']} médiateurs : {t.get('minimum_reason', '')}."
    if team["coordinateur"]:
        out += " Dont un coordinateur."
    return out


def _money(n: int, d: dict[str, Any]) -> str:
    if not n:
        return ""
    out = f" Coût annuel estimé : {n} × {_euros(d['salaire'])} = {_euros(d['cout_annuel'])}"
    if d["aide_etat"]:
        out += (f" ; s'ils sont conventionnés adultes-relais, l'État verse {n} × {_euros(d['montant_par_poste'])} "
                f"= {_euros(d['aide_etat'])} (montant par poste {d['annee_montant']})")
    return out + f", reste à financer {_euros(d['reste_a_financer'])}."


def _joint_text(ctx: Context, j: dict[str, Any], conf: dict) -> str:
    """One joint service, as the commune's report shows it: the whole quartier, then the commune's share."""
    shares = text.join([f"{c['nom']} {text.number(c['population'])} habitants ({text.percent(100 * c['part'])})"
                        for c in j["communes"] if c["part"] is not None])
    out = (f"{j['nom']} est un quartier intercommunal ({shares}) : un service commun, porté par "
           f"{j['porteur']['libelle']} ({j['porteur']['raison']}), est dimensionné sur ses "
           f"{text.number(j['population'])} habitants : {_calculation(j['equipe'], conf)}")
    if ctx.posts_known:
        out += (f" Postes adultes-relais en place dans le quartier : {text.number(j['postes_en_place'], 1)} "
                f"({j['raison_deduction']}) ; postes à créer : {j['postes_a_creer']}.")
    out += _money(j["postes_a_creer"], j)
    out += (f" Part {text.de(ctx.commune_name)} ({text.percent(100 * j['part_commune'])} des habitants du quartier) : "
            f"{text.number(j['part_equipe'], 1)} {text.plural(j['part_equipe'], 'médiateur')} du service commun en équivalent temps plein"
            + (f", {_euros(j['part_cout_annuel'])} par an dont {_euros(j['part_aide_etat'])} de l'État, reste "
               f"{_euros(j['part_reste_a_financer'])}" if j["postes_a_creer"] else "") + ".")
    return out


def _team_size(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    t = conf.get("team", {})
    d = decision(ctx, conf)
    team, joint = d["equipe"], d["services_communs"]
    if not team["taille"] and not joint:
        strong = _strong(ctx)
        level = t.get("requires_level", "fort")
        found = (f"trouve {text.count(len(strong), 'besoin')} de niveau moyen, aucun de niveau {level}" if len(strong)
                 else "ne trouve aucun besoin non couvert de niveau fort ou moyen")
        why = (f"Pas d'équipe à créer : le diagnostic {found}, alors qu'une équipe se justifie à partir d'un besoin "
               f"de niveau {level}. À réexaminer si un besoin devient {level} : indicateurs d'un nouveau millésime, "
               f"réponse existante qui disparaît (fin de postes adultes-relais, fermeture d'un service), ou besoins exprimés "
               f"nombreux et de plusieurs sources. Option légère recommandée : {t.get('light_option', '')}.")
        rec = _make(rule, {"title": "Pas d'équipe à créer pour l'instant ; une option légère", "why": why}, [], why)
        rec["team_size"] = 0
        return [rec]
    why = ""
    own = [x for x in d["territoires"] if not x["intercommunal"]]
    if team["taille"]:
        detail = text.join([f"{x['nom']} : {text.number(x['population'])}" for x in own])
        why = (f"Pour les {text.number(team['population'])} habitants des territoires d'intervention situés dans la "
               f"commune ({detail}), au ratio de {text.number(team['ratio'], 1)} {d['ratio_unite']} "
               f"({t.get('ratio_source', '')}) : {_calculation(team, conf)}")
        in_place = ctx.posts_in_place or {}
        contract_posts = in_place.get("posts", {}).get("adulte-relais", 0)
        share = (f" (leur part des {text.count(contract_posts, *POST_NOUNS['adulte-relais'])} du contrat de ville en "
                 f"{in_place['year']})" if contract_posts else "")
        posts = d["postes_en_place"]
        if posts["connus"]:
            why += (f" Postes adultes-relais déjà en place sur ces territoires : {text.number(posts['territoires'], 1)}"
                    f"{share} ; {posts['raison_deduction']} ; postes à créer : {d['postes_a_creer']}.")
        else:
            why += (" Les postes adultes-relais en place ne sont pas connus pour ces quartiers dans les données : "
                    f"à vérifier auprès de la préfecture et à déduire des {d['postes_a_creer']} postes à créer.")
        ext = d["extension"]
        if ext["codes"]:
            why += (f" Étendre l'intervention aux quartiers de niveau moyen ({text.join(_names(ctx, ext['codes']))}, "
                    f"{text.number(ext['population'])} habitants de plus) porterait le calcul à "
                    f"{text.number(team['population'] + ext['population'])} × {text.number(team['ratio'], 1)} ÷ "
                    f"{text.number(10000)} = {_mediators(ext['calcul'])}, dans la limite de "
                    f"{t.get('maximum', 12)}.")
        if not d["postes_a_creer"]:
            why += (" Les postes en place suffisent à l'équipe calculée : il s'agit de les organiser sur ces territoires "
                    "et ces priorités, sans poste nouveau.")
        else:
            why += _money(d["postes_a_creer"], d)
    for j in joint:
        why = (why + " " if why else "") + _joint_text(ctx, j, conf)
    if joint and team["taille"]:
        total = d["total_commune"]
        why += (f" En tout pour {ctx.commune_name} : {text.number(d['mediateurs_necessaires'], 1)} médiateurs, "
                f"{_euros(total['cout_annuel'])} par an, dont {_euros(total['aide_etat'])} de l'État, reste "
                f"{_euros(total['reste_a_financer'])}.")
    evidence = [{"type": "calcul", "libelle": "Population des territoires d'intervention (part de la commune)",
                 "valeur": d["population"]},
                {"type": "calcul", "libelle": "Ratio de médiateurs pour 10 000 habitants des QPV", "valeur": d["ratio"]},
                {"type": "calcul", "libelle": "Équipe de la commune", "valeur": team["taille"]},
                {"type": "calcul", "libelle": "Postes adultes-relais en place", "valeur": d["postes_en_place"]["territoires"]},
                {"type": "calcul", "libelle": "Postes à créer", "valeur": d["postes_a_creer"]}]
    evidence += [{"type": "calcul", "libelle": f"Service commun de {j['nom']} : équipe", "valeur": j["equipe"]["taille"]}
                 for j in joint]
    if team["taille"]:
        title = (f"Constituer une équipe de {text.count(team['taille'], 'médiateur')}" if d["postes_a_creer"] else
                 f"Organiser les postes en place en une équipe de {text.count(team['taille'], 'médiateur')}")
        if joint:
            title += f", et participer {text.join(['au service commun de ' + j['nom'] for j in joint])}"
    else:
        title = "Participer " + text.join([f"au service commun de {j['nom']} ({text.count(j['equipe']['taille'], 'médiateur')})"
                                           for j in joint])
    rec = _make(rule, {"title": title, "why": why}, evidence, why)
    rec["team_size"] = team["taille"]
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


def choose_option(ctx: Context, conf: dict, section: str) -> dict[str, Any] | None:
    """The option of ``section`` (``funding`` or ``governance``) the rules recommend, with its reason and the others."""
    met = _conditions(ctx, conf)
    chosen, others, not_met = _choose(conf.get(section, []), met)
    if chosen is None:
        return None
    return {"recommande": chosen["id"], "libelle": chosen["label"],
            "raison": chosen.get("why") or CONDITION_TEXT[chosen["condition"]],
            "autres": [o["label"] for o in others],
            "non_retenus": [{"libelle": o["label"], "condition": CONDITION_TEXT[o["condition"]]} for o in not_met]}


def _choice_rec(rule: dict, ctx: Context, conf: dict, choice: dict[str, Any] | None, what: str) -> list[dict]:
    if choice is None:
        return []
    why = (f"Règle : la première option de la liste dont la condition est remplie. Recommandé : {choice['libelle']}, car "
           f"{choice['raison']}.")
    held = [choice["recommande"], *[o["id"] for o in conf.get(rule["kind"], []) if o["label"] in choice["autres"]]]
    options = {o["id"]: o for o in conf.get(rule["kind"], [])}
    in_place = (in_place_sentence(ctx.posts_in_place)
                if any(options.get(i, {}).get("condition") == "posts_in_place" for i in held) else "")
    if in_place:
        why += f" {in_place}"
    if "adultes_relais" in held:
        amount = ctx.adulte_relais_amount or float(conf.get("costs", {}).get("adulte_relais_amount", 22810.61))
        year = ctx.adulte_relais_year if ctx.adulte_relais_amount else str(conf.get("costs", {}).get("adulte_relais_year", "2024"))
        why += f" Pour un poste adulte-relais nouveau, l'État verse {_euros(amount)} par an ({year})."
    mix = choice.get("repartition") or []
    if mix:
        why += " Répartition recommandée du coût annuel : " + " ; ".join(
            f"{m['financeur']} {_euros(m['montant'])}" for m in mix) + "."
    if choice["autres"]:
        why += f" {what} aussi possibles : " + " ; ".join(choice["autres"]) + "."
    if choice["non_retenus"]:
        why += " Non retenus : " + " ; ".join(f"{o['libelle']} ({o['condition']} : non)" for o in choice["non_retenus"]) + "."
    evidence = _in_place_evidence(ctx.posts_in_place) if in_place else []
    rec = _make(rule, {"choice": choice["libelle"], "why": why}, evidence, why)
    rec["choice"] = choice["recommande"]
    rec["leads"] = [choice["libelle"], *choice["autres"]]
    if in_place:
        rec["in_place"] = in_place
    return [rec]


def _funding(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    if not _strong(ctx).shape[0]:
        return []
    return _choice_rec(rule, ctx, conf, decision(ctx, conf)["financement"], "Financements")


def _governance(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    return _choice_rec(rule, ctx, conf, decision(ctx, conf)["gouvernance"], "Portages")


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
    ctx.decision = decide(ctx, rules)  # once per call: the context may have changed since the last one
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
                          f"{'fort' if (rows['level'] == 'fort').any() else 'moyen'}) {text.join([text.at(n) for n in _names(ctx, list(rows['code']))])}")
    return {
        "territoires": _names(ctx, zone["codes"]),
        "codes": zone["codes"],
        "population": zone["population"] if zone["codes"] else None,
        "publics": by_id["publics"]["public"] if "publics" in by_id and "public" in by_id["publics"] else "",
        "objectifs": objectives,
        "horaires": by_id["horaires"].get("hours", by_id["horaires"]["title"]) if "horaires" in by_id else DAYTIME,
        "equipe": by_id.get("equipe", {}).get("team_size"),
        "services_communs": [j["code"] for j in (ctx.decision or {}).get("services_communs", [])] if "equipe" in by_id else [],
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
