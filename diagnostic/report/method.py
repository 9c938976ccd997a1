"""The method annex of the report: every step of the needs and recommendations method in plain French.

Written from the rules actually used (weights, thresholds, ratios, costs),
so that the annex and the figures of the report cannot disagree; no file
name, command or parameter name appears in it.
"""

from __future__ import annotations

import re
from typing import Any

from diagnostic import text
from diagnostic.analysis.indicators.needs import OFFER
from diagnostic.io.reference import DOMAINS, ROLES, equipment_domains, indicator_table


def _indicator_label(key: str, rules: dict[str, Any]) -> str:
    derived = rules.get("derived") or {}
    if key in derived:
        return str(derived[key].get("label", key)).lower()
    if key == OFFER:
        return "rareté de l'offre de droit commun du domaine (services pour 10 000 habitants dans la bande)"
    table = indicator_table()
    return str(table.loc[key, "libelle"]).lower() if key in table.index else key


def _domain_lines(rules: dict[str, Any]) -> list[str]:
    lines = []
    for domain, spec in rules["domains"].items():
        parts = []
        for key, ind in (spec.get("indicators") or {}).items():
            sense = "plus bas = plus défavorisé" if ind.get("direction") == "down" else "plus haut = plus défavorisé"
            flag = ", indicateur ambigu qui ne fonde jamais seul un niveau" if ind.get("ambiguous") else ""
            parts.append(f"{_indicator_label(key, rules)} (poids {text.number(ind.get('weight', 1), 1)}, {sense}{flag})")
        lines.append(f"- **{DOMAINS[domain]}** : " + " ; ".join(parts) + ".")
    return lines


def _roles() -> list[str]:
    table = equipment_domains()
    lines = []
    for role, label in ROLES.items():
        kinds = sorted(set(table.loc[table["role"] == role, "libelle"]))
        if kinds:
            lines.append(f"- **{label[0].upper()}{label[1:]}** : {', '.join(k.lower() for k in kinds[:14])}"
                         f"{'…' if len(kinds) > 14 else ''}.")
    return lines


def _version_sentence(version: str) -> str:
    """« méthode 2 · besoins 2 · recommandations 3 » (``resultats.json``) said for a reader: « Ce rapport suit la version 2
    de la méthode, avec les règles des besoins en version 2 et celles des préconisations en version 3. »"""
    found = dict(re.findall(r"(méthode|besoins|recommandations) (\S+)", version or ""))
    if not found:
        return ""
    rules = text.join([f"{label} en version {found[key]}" for key, label in
                       (("besoins", "les règles des besoins"), ("recommandations", "celles des préconisations"))
                       if key in found])
    head = f"Ce rapport suit la version {found['méthode']} de la méthode" if "méthode" in found else "Ce rapport suit"
    return text.sentence(head + (f", avec {rules}" if rules and "méthode" in found else f" {rules}" if rules else ""))


def annex(need_rules: dict[str, Any], reco_rules: dict[str, Any], version: str = "") -> str:
    """The method annex as Markdown, from the rules the report used."""
    lv = need_rules.get("levels") or {}
    fort, moyen = 100 * float(lv.get("fort", 0.65)), 100 * float(lv.get("moyen", 0.45))
    exp = need_rules.get("expressed") or {}
    resp = need_rules.get("response") or {}
    med = (need_rules.get("mediation") or {}).get("domains", [])
    factor = 100 * float((need_rules.get("robustness") or {}).get("factor", 0.5))
    team = reco_rules.get("team", {})
    costs = reco_rules.get("costs", {})
    terr = reco_rules.get("territories", {})
    out = [
        _version_sentence(version),
        ("**1. Situer chaque quartier.** Chaque indicateur d'un quartier est placé parmi les mêmes indicateurs de "
        "tous les quartiers de référence : tous les quartiers prioritaires de France quand les données nationales "
        "sont fournies, sinon tous les quartiers prioritaires des données, et, pour une commune sans quartier "
        "prioritaire, toutes les communes des données. La position va de 0 à 100 : 80 veut dire que le quartier est "
        "plus défavorisé que 80 % des quartiers de référence (rang centile, les ex æquo comptant pour moitié). "
        "Chaque preuve du rapport donne la médiane de la référence à côté de la valeur."),
        ("**2. Mesurer le besoin de chaque domaine.** Le besoin mesuré est la moyenne des positions des indicateurs "
        "du domaine, pondérée comme suit. La privation (pauvreté, revenu, prestations, demande d'emploi) porte chaque "
        "domaine ; un indicateur ambigu, comme l'indice de jeunesse (familles jeunes ou quartier étudiant), compte "
        "dans la moyenne mais ne suffit jamais seul : sans autre indicateur, le besoin est « indéterminé », avec la "
        "donnée qui manque."),
        *_domain_lines(need_rules),
        "**3. Compter ce qui répond déjà.** Chaque type d'équipement a un rôle par domaine :",
        *_roles(),
        (f"Seules les réponses comptent : chacune dans la bande autour du quartier vaut {text.number(resp.get('service_weight', 1), 1)} "
        f"équivalent poste ; un poste adulte-relais vaut {text.number(resp.get('post_weight', 1), 1)} équivalent poste, "
        f"partagé à parts égales entre les {len(med)} domaines où la médiation répond "
        f"({text.join([DOMAINS[d].lower() for d in med])}). La réponse est la part de la cible couverte, la cible étant de "
        f"{text.number(resp.get('target_per_10000', 2.5), 1)} équivalents poste pour 10 000 habitants, plafonnée à 100 %. "
        "Quand les données ne contiennent aucune réponse d'un domaine, la réponse est inconnue et le besoin est compté "
        "comme non couvert, ce que la ligne dit. Les comptages publiés par l'INSEE gardent leur définition exacte "
        "(par exemple « écoles à moins de 100 m du quartier », « établissements d'enseignement, de santé et d'action "
        "sociale dans le quartier ») et ne sont jamais des réponses."),
        (f"**4. Besoin non couvert et niveau.** Besoin non couvert = besoin mesuré × (1 − réponse). Niveau fort à partir "
        f"de {text.number(fort)} sur 100, moyen à partir de {text.number(moyen)}, faible en dessous ; « indéterminé » "
        "quand aucun indicateur ne permet de le dire. Une valeur inconnue n'est jamais comptée comme zéro. Tous les "
        "domaines apparaissent pour chaque quartier."),
        (f"**5. Besoins exprimés.** Les observations (questionnaires, marches exploratoires, réunions, entretiens) "
        f"relèvent le niveau d'un cran (indéterminé devient moyen) quand elles pèsent au moins "
        f"{text.count(exp.get('min_observations', 5), 'observation')} et viennent d'au moins "
        f"{text.count(exp.get('min_sources', 2), 'type', 'types')} de source différents. Une demande exprimée qui ne "
        "remplit pas ces conditions est listée avec la raison, pour être confirmée par une autre source."),
        ("**6. Priorités.** Les besoins sont classés dans la commune, du rang 1 au dernier : d'abord le niveau, puis le "
        "nombre de personnes concernées (besoin non couvert × habitants du quartier). Un grand quartier très pauvre "
        "passe donc avant un petit quartier moins pauvre, sauf réponse existante ou besoin exprimé, que la ligne nomme."),
        (f"**7. Robustesse.** Chaque poids des indicateurs, et les poids des réponses et des postes, est déplacé de "
        f"plus et moins {text.number(factor)} %, un à la fois. Un besoin dont le niveau ne change jamais est « robuste » ; "
        "sinon la ligne dit de quelles hypothèses il dépend."),
        (f"**8. Le service recommandé.** Les territoires d'intervention sont les quartiers ayant un besoin de niveau "
        f"{team.get('requires_level', 'fort')}, dans l'ordre du classement, au plus {terr.get('max_territories', 3)} pour une "
        f"première phase ({terr.get('max_reason', '')}). L'équipe = habitants de ces territoires × "
        f"{text.number(team.get('mediators_per_10000_inhabitants', 2.5), 1)} ÷ 10 000, arrondi au médiateur le plus "
        f"proche ({team.get('ratio_source', '')}) ; au moins {team.get('minimum', 2)} ({team.get('minimum_reason', '')}), "
        f"au plus {team.get('maximum', 12)} ({team.get('maximum_reason', '')}). Les postes adultes-relais en place sont "
        f"déduits de l'équipe seulement quand l'un de ses domaines est un de ceux où ils comptent comme réponse (étape 3), "
        f"la même règle dans les deux sens. Le coût annuel d'un médiateur est estimé à {text.number(costs.get('mediator_salary_cost', 36000), 0, '€')} "
        f"({costs.get('mediator_salary_source', '')}) ; l'aide de l'État pour un poste adulte-relais est lue dans les "
        f"données de l'ANCT quand elles donnent les montants, sinon {text.number(costs.get('adulte_relais_amount', 22810.61), 2, '€')} "
        f"({costs.get('adulte_relais_year', '2024')}). Sans besoin de niveau {team.get('requires_level', 'fort')}, aucune "
        "équipe n'est recommandée : le rapport dit ce qui ferait réexaminer la question et propose une option légère."),
        ("**Quartiers intercommunaux.** Un quartier prioritaire peut s'étendre sur plusieurs communes : chaque commune "
        "en a sa part, ses habitants qui y vivent (population de la commune dans le quartier publiée par "
        "l'observatoire de la politique de la ville, ou surface du quartier dans la commune quand les contours sont "
        "fournis). Tout chiffre de la commune l'utilise : population en quartier prioritaire, habitants concernés, "
        "équipe, coût, postes en place, services. Les indicateurs du quartier restent ceux du quartier entier ; la "
        "colonne de référence est celle de la commune du rapport et de son intercommunalité. Sans contours, les "
        "services d'un quartier sont ceux des communes qu'il couvre, chacune au prorata de ses habitants qui y "
        "vivent : ils sont « dans la commune », pas « dans le quartier » ni dans sa bande. Pour un quartier "
        "intercommunal retenu comme territoire d'intervention, un seul service commun est recommandé, dimensionné sur "
        "tout le quartier et porté par l'intercommunalité (ou par une convention entre les communes quand elles "
        "relèvent de plusieurs) ; chaque commune y voit sa part (médiateurs, coût, aide de l'État), et l'équipe propre "
        "de la commune ne porte que sur ses quartiers situés dans la commune seule. Un quartier intercommunal au "
        "niveau requis est retenu même au-delà du nombre de quartiers d'une première phase : son service commun se "
        "décide avec les autres communes, et chacune le montre."),
        (f"**Un seul ratio.** {text.number(team.get('mediators_per_10000_inhabitants', 2.5), 1)} médiateurs pour 10 000 "
        "habitants des quartiers prioritaires : ce nombre dimensionne l'équipe, fixe la cible de la réponse (étape 3) "
        "et sert de cible à la synthèse régionale, où les postes manquants d'une commune = ratio × ses habitants en "
        "quartier prioritaire ÷ 10 000 − ses postes adultes-relais en place (dernière année complète des fichiers, "
        "postes d'un contrat intercommunal répartis entre les communes au prorata de leurs habitants en quartier "
        "prioritaire). Les postes FONJEP sont montrés à part : ce ne sont pas des postes de médiation."),
        ("**9. Horaires, publics, partenariats, financements, portage.** Chacun est choisi par une règle écrite : la "
        "première option dont la condition est remplie est recommandée, avec sa raison ; les autres sont listées, "
        "avec la condition qui les écarte. Le financement recommandé répartit le coût annuel entre l'État (aide aux "
        "postes adultes-relais), la commune (reste de son équipe) et le porteur de chaque service commun (part de la "
        "commune de son reste à financer)."),
        ("**Références.** Indicateurs des quartiers prioritaires de l'INSEE (revenus Filosofi, démographie, demandeurs "
        "d'emploi de France Travail), base permanente des équipements de l'INSEE, liste des France Services et postes "
        "adultes-relais de l'ANCT ; cadre professionnel : norme AFNOR de la médiation sociale (XP X60-600)."),
    ]
    return "\n\n".join(line for line in out if line)
