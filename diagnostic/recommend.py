"""Recommendations (préconisations) from unmet needs, indicators and partnership gaps.

Rules and texts live in ``templates/recommandations.yaml``; each rule has a
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from diagnostic import text
from diagnostic.catalog import PROJECT_ROOT, read_yaml
from diagnostic.errors import CatalogError
from diagnostic.indicators.needs import explain
from diagnostic.reference import DOMAINS

RULES_FILE = PROJECT_ROOT / "templates" / "recommandations.yaml"
LOCAL_FILE = "recommandations_locales.yaml"
TYPES = {"stratégique", "opérationnelle"}
LEVEL_ORDER = {"fort": 0, "moyen": 1, "faible": 2, "indéterminé": 3}


@dataclass
class Context:
    """What the rules look at, for one commune."""

    commune_code: str
    commune_name: str
    territories: pd.DataFrame          # code, name, population (QPVs, or the commune itself)
    needs: pd.DataFrame                # unmet needs of these territories (diagnostic.indicators.needs)
    evidence: pd.DataFrame             # indicator evidence behind the needs
    social: pd.DataFrame               # long social table of these territories
    observations: pd.DataFrame | None = None
    gaps: pd.DataFrame | None = None   # partnership gaps (diagnostic.partners.gaps)
    actor_types: set[str] = field(default_factory=set)
    adulte_relais_posts: float = 0.0
    has_qpv: bool = True


def load_rules(path: str | Path | None = None) -> dict[str, Any]:
    path = Path(path) if path else RULES_FILE
    rules = read_yaml(path, "règles des recommandations")
    for rule in rules.get("rules", []):
        if rule.get("kind") not in TRIGGERS:
            raise CatalogError(f"règle « {rule.get('id')} » : type de déclencheur « {rule.get('kind')} » inconnu "
                               f"(possibles : {', '.join(TRIGGERS)}).", path=path)
    return rules


def _names(ctx: Context, codes: list[str]) -> list[str]:
    names = ctx.territories.set_index("code")["name"]
    return [f"{names.get(c, c)} ({c})" if c != ctx.commune_code else names.get(c, c) for c in codes]


def _strong(ctx: Context, min_level: str = "moyen") -> pd.DataFrame:
    ok = ctx.needs["level"].map(LEVEL_ORDER).fillna(9) <= LEVEL_ORDER[min_level]
    return ctx.needs[ok]


def _need_evidence(ctx: Context, rows: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for _, row in rows.iterrows():
        out.append({"territoire": row["code"], "domaine": row["domain_label"], "niveau": row["level"],
                    "score_besoin_non_couvert": round(float(row["unmet"]), 2),
                    "elements": explain(row, ctx.evidence)})
    return out


def _publics(ctx: Context, codes: list[str]) -> str:
    publics = []
    youth = ctx.social[(ctx.social["indicator"] == "youth_index") & ctx.social["code"].isin(codes)]
    if len(youth) and youth["value"].max() >= 1.2:
        publics.append("les jeunes et leurs familles")
    if ctx.observations is not None and len(ctx.observations):
        problems = set(ctx.observations["problem"])
        if "isolement" in problems:
            publics.append("les personnes âgées ou isolées")
        if "non_recours_droits" in problems:
            publics.append("les ménages en non-recours aux droits")
    poverty = ctx.social[(ctx.social["indicator"] == "poverty_rate") & ctx.social["code"].isin(codes)]
    if len(poverty) and poverty["value"].max() >= 30:
        publics.append("les ménages à bas revenus")
    return text.join(publics) or "les habitants des quartiers concernés"


def _priority_territories(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    strong = _strong(ctx)
    if strong.empty:
        return []
    per = strong.groupby("code").agg(n=("domain", "size"), score=("unmet", "sum")).sort_values("score", ascending=False)
    codes = list(per.index[:3])
    domains = strong[strong["code"].isin(codes)]["domain_label"].value_counts().index[:3].str.lower()
    fields = {"territories": text.join(_names(ctx, codes)), "count": int(per.loc[codes, "n"].sum()),
              "domains": text.join(list(domains)), "publics": _publics(ctx, codes)}
    return [_make(rule, fields, _need_evidence(ctx, strong[strong["code"].isin(codes)].head(6)))]


def _domain_unmet(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    strong = _strong(ctx, rule.get("min_level", "moyen"))
    out = []
    for domain, rows in strong.groupby("domain", sort=False):
        level = "fort" if (rows["level"] == "fort").any() else "moyen"
        fields = {"domain": domain, "domain_label": DOMAINS.get(domain, domain),
                  "territories": text.join(_names(ctx, list(rows["code"]))), "level": level,
                  "domain_action": rule.get("domain_actions", {}).get(domain, "")}
        rec = _make(rule, fields, _need_evidence(ctx, rows))
        rec["domain"] = domain
        rec["priority"] = 1 if level == "fort" else 2
        out.append(rec)
    return sorted(out, key=lambda r: (r["priority"], -max(e["score_besoin_non_couvert"] for e in r["evidence"])))


def _hours(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    hours_conf = conf.get("hours", {})
    obs = ctx.observations if ctx.observations is not None else pd.DataFrame(columns=["problem"])
    evening = obs[obs["problem"].isin(hours_conf.get("evening_problems", []))]
    youth = ctx.social[ctx.social["indicator"] == "youth_index"]["value"].max() if len(ctx.social) else math.nan
    slots, reasons, evidence = [], [], []
    if len(evening) >= int(hours_conf.get("evening_threshold", 5)):
        slots.append("en soirée (jusqu'à 21 h) et le samedi")
        reasons.append(f"{len(evening)} observations d'habitants et de partenaires portent sur des nuisances, "
                       "des conflits d'usage ou l'insécurité ressentie, surtout en fin de journée")
        evidence.append({"type": "besoin exprime", "libelle": "Observations relevant de la soirée et du week-end",
                         "valeur": len(evening), "seuil": hours_conf.get("evening_threshold", 5)})
    if not math.isnan(youth) and youth >= float(hours_conf.get("youth_index_threshold", 1.5)):
        slots.append("en sortie d'école et le mercredi après-midi")
        reasons.append(f"la population est jeune (indice de jeunesse jusqu'à {text.number(youth, 1)})")
        evidence.append({"type": "indicateur", "libelle": "Indice de jeunesse (maximum des territoires)",
                         "valeur": round(float(youth), 2), "seuil": hours_conf.get("youth_index_threshold", 1.5)})
    if not slots:
        return []
    reason = "Motif : " + text.join(reasons) + "."
    rec = _make(rule, {"hours": text.join(slots), "reason": reason}, evidence)
    rec["hours"] = text.join(slots)
    return [rec]


def _team_size(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    team = conf.get("team", {})
    population = float(ctx.territories["population"].sum(min_count=1) or 0)
    if not population:
        return []
    ratio = float(team.get("mediators_per_10000_inhabitants", 2.5))
    strong = (ctx.needs["level"] == "fort").any()
    factor = float(team.get("strong_need_factor", 1.0)) if strong else 1.0
    size = int(min(team.get("maximum", 12), max(team.get("minimum", 2), round(population / 10000 * ratio * factor))))
    fields = {"team": size, "population": text.number(population), "ratio": text.number(ratio, 1),
              "factor_text": f", majoré de {text.number((factor - 1) * 100)} % car au moins un besoin est fort" if factor > 1 else "",
              "supervisor": " dont un coordinateur" if size >= int(team.get("supervisor_from", 5)) else ""}
    evidence = [{"type": "calcul", "libelle": "Population des territoires d'intervention", "valeur": population},
                {"type": "calcul", "libelle": "Ratio de médiateurs pour 10 000 habitants", "valeur": ratio},
                {"type": "calcul", "libelle": "Majoration pour besoin fort", "valeur": factor}]
    rec = _make(rule, fields, evidence)
    rec["team_size"] = size
    return [rec]


def _partnerships(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    if ctx.gaps is None or ctx.gaps.empty:
        return []
    examples = [
        f"{g['acteur']} – {g['partenaire']}" if g.get("partenaire") else f"{g['acteur']} ({g['categorie']})"
        for g in ctx.gaps.head(3).to_dict("records")
    ]
    evidence = [{"type": "partenariat", **{str(k): str(v) for k, v in row.items()}} for row in ctx.gaps.head(10).to_dict("records")]
    return [_make(rule, {"count": len(ctx.gaps), "examples": text.join(examples, " ; ")}, evidence)]


def _funding(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    domains = set(_strong(ctx)["domain"])
    leads, evidence = [], []
    if ctx.has_qpv:
        posts = f" ({text.number(ctx.adulte_relais_posts, 1)} poste(s) déjà financé(s) sur le territoire)" if ctx.adulte_relais_posts else ""
        leads.append(f"postes adultes-relais de l'État pour des habitants des QPV{posts}")
        leads.append("crédits du contrat de ville")
        evidence.append({"type": "territoire", "libelle": "Présence de QPV", "valeur": len(ctx.territories)})
    if "espace_public" in domains or "transports" in domains:
        leads.append("Fonds interministériel de prévention de la délinquance (FIPD), via le CLSPD")
    if "habitat" in domains or "bailleur social" in ctx.actor_types:
        leads.append("abattement de TFPB des bailleurs sociaux, réinvesti dans la médiation en QPV")
    if "transports" in domains or "opérateur de transport" in ctx.actor_types:
        leads.append("participation de l'opérateur de transport")
    leads.append("participation de la commune (et de l'intercommunalité)")
    evidence.append({"type": "besoins", "libelle": "Domaines avec besoin non couvert", "valeur": ", ".join(sorted(domains))})
    return [_make(rule, {"leads": text.join(leads, " ; ")}, evidence)]


def _governance(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    population = float(ctx.territories["population"].sum(min_count=1) or 0)
    options = ["Service municipal : portage simple, adapté à une seule commune."]
    options.append("Association (existante ou à créer) : souplesse et neutralité reconnue par les habitants.")
    if len(ctx.actor_types) >= 4 or population >= 20000:
        options.append("GIP (groupement d'intérêt public) : pour partager le service entre commune, bailleurs et "
                       "transporteur avec une gouvernance commune.")
        options.append("SCIC (société coopérative d'intérêt collectif) : pour associer financeurs publics et privés au capital.")
    partners = text.join(sorted({t for t in ctx.actor_types if t}) [:5]) or "la commune, les bailleurs et l'État"
    return [_make(rule, {"options": " ".join(options), "partners": partners},
                  [{"type": "territoire", "libelle": "Population concernée", "valeur": population}])]


def _evaluation(rule: dict, ctx: Context, conf: dict) -> list[dict]:
    return [_make(rule, {}, [])]


TRIGGERS = {
    "priority_territories": _priority_territories,
    "domain_unmet": _domain_unmet,
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


def _make(rule: dict, fields: dict, evidence: list) -> dict[str, Any]:
    f = _Fields({k: v for k, v in fields.items()})
    domain = rule.get("domain", "transversal")
    return {
        "id": rule["id"].format_map(f),
        "type": rule.get("type", "opérationnelle"),
        "domain": domain,
        "domain_label": DOMAINS.get(domain, "Transversal"),
        "priority": int(rule.get("priority", 2)),
        "title": rule.get("title", "").format_map(f),
        "text": " ".join(rule.get("text", "").format_map(f).split()),
        "evidence": evidence,
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


def framing(ctx: Context, recs: list[dict[str, Any]]) -> dict[str, Any]:
    """The frame of the project (cadrage): territories, publics, objectives, hours and team size.

    Drawn from the same needs and recommendations the report shows; a
    recommendation the officer removed leaves its part of the frame empty.
    """
    strong = _strong(ctx)
    codes = list(strong.groupby("code")["unmet"].sum().sort_values(ascending=False).index[:3])
    by_id = {r["id"]: r for r in recs}
    objectives = []
    for domain, rows in strong.groupby("domain", sort=False):
        level = "fort" if (rows["level"] == "fort").any() else "moyen"
        objectives.append(f"Réduire le besoin non couvert « {DOMAINS.get(domain, domain)} » (niveau {level}) "
                          f"dans {text.join(_names(ctx, list(rows['code'])))}")
    return {
        "territoires": _names(ctx, codes),
        "publics": _publics(ctx, codes) if codes else "",
        "objectifs": objectives,
        "horaires": by_id["horaires"].get("hours", by_id["horaires"]["title"]) if "horaires" in by_id else DAYTIME,
        "equipe": by_id.get("equipe", {}).get("team_size"),
    }


def apply_local(recs: list[dict], path: Path, commune: str) -> list[dict]:
    """Apply ``ajouter`` / ``modifier`` / ``retirer`` from the officer's file (global, then per commune)."""
    local = read_yaml(path, "recommandations locales") or {}
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
            missing = {"id", "title", "text"} - set(item)
            if missing:
                raise CatalogError(f"recommandation ajoutée sans {', '.join(sorted(missing))}.", path=path)
            if item.get("type", "opérationnelle") not in TYPES:
                raise CatalogError(f"type « {item.get('type')} » : attendu stratégique ou opérationnelle.", path=path)
            recs.append({"type": "opérationnelle", "domain": "transversal", "priority": 2, "evidence": [],
                         **item, "origin": "ajout local"})
    return recs
