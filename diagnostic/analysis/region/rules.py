"""The editable rules of the regional synthesis (``diagnostic/resources/rules/region.yaml``), read and checked once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from diagnostic.analysis.indicators.posts import RATIO_UNIT, ratio, ratio_source
from diagnostic.errors import CatalogError
from diagnostic.io.catalog import read_yaml
from diagnostic.io.sources.employers import RULES_FILE, UNKNOWN_EMPLOYER, employer_rules
from diagnostic.io.sources.partners import actor_types
from diagnostic.io.sources.postes import PROGRAMMES

RANKING_KEYS = {
    "need_level": "niveau de besoin (fort avant moyen)",
    "missing_posts": "postes manquants pour atteindre la cible (le plus grand nombre d'abord)",
    "qpv_population": "population des QPV (la plus grande d'abord)",
    "ratio": "postes pour 10 000 habitants des QPV (le plus petit d'abord)",
}
LEVELS = ("fort", "moyen", "faible", "indéterminé")


def load_rules(path: str | Path | None = None) -> dict[str, Any]:
    """Read the regional rules (safe YAML) and refuse values the synthesis could not apply."""
    path = Path(path) if path else RULES_FILE
    rules = read_yaml(path, "règles de la synthèse régionale")
    if not isinstance(rules, dict):
        raise CatalogError("les règles de la synthèse régionale doivent être un dictionnaire YAML.", path=path)
    programmes = rules.get("programmes") or list(PROGRAMMES)
    unknown = sorted(set(programmes) - set(PROGRAMMES))
    if unknown:
        raise CatalogError(f"programme(s) inconnu(s) : {', '.join(unknown)}.", path=path,
                           hint=f"programmes possibles : {', '.join(PROGRAMMES)}.")
    if "target_per_10000" in rules or "reference_year" in rules:
        raise CatalogError("« target_per_10000 » et « reference_year » ne se règlent plus ici : la cible est le ratio "
                           "unique de recommandations.yaml (team.mediators_per_10000_inhabitants), le même que celui "
                           "des rapports communaux, et l'année est la dernière année complète des fichiers de postes.",
                           path=path)
    try:
        well = float(rules.get("well_equipped", 1.0))
    except (TypeError, ValueError):
        raise CatalogError("« well_equipped » doit être un nombre.", path=path) from None
    target = ratio()
    if well <= 0:
        raise CatalogError("« well_equipped » doit être positif.", path=path)
    ranking = list(rules.get("ranking") or ["need_level", "missing_posts", "qpv_population"])
    bad = [k for k in ranking if k not in RANKING_KEYS]
    if bad:
        raise CatalogError(f"clé(s) de classement inconnue(s) : {', '.join(bad)}.", path=path,
                           hint=f"clés possibles : {', '.join(RANKING_KEYS)}.")
    levels = list(rules.get("prospect_levels") or ["fort", "moyen"])
    if set(levels) - set(LEVELS):
        raise CatalogError(f"« prospect_levels » : niveaux possibles {', '.join(LEVELS)}.", path=path)
    types = rules.get("employer_types") or {}
    known = set(actor_types().index)
    for key, words in types.items():
        if key not in known or not isinstance(words, list) or not words:
            raise CatalogError(f"type d'employeur « {key} » : attendu un type de diagnostic/resources/tables/types_acteurs.csv "
                               "et une liste de mots.", path=path, hint=f"types : {', '.join(sorted(known))}.")
    return {
        **rules, "path": str(path), "programmes": programmes, "target_per_10000": target, "well_equipped": well,
        "ranking": ranking, "prospect_levels": levels, "target_source": f"{RATIO_UNIT} : le ratio unique de l'atelier, celui qui "
        f"dimensionne les équipes des rapports communaux ({ratio_source()})",
        "shown": int(rules.get("shown", 15)), **employer_rules(rules),
    }


def employer_label(key: str) -> str:
    """The French label of an employer type key."""
    if key == UNKNOWN_EMPLOYER[0]:
        return UNKNOWN_EMPLOYER[1]
    labels = actor_types()["libelle"]
    return str(labels.get(key, key))
