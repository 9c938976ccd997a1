"""The editable rules of the regional synthesis (``diagnostic/resources/rules/region.yaml``), read and checked once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    try:
        target = float(rules["target_per_10000"])
        well = float(rules.get("well_equipped", 1.0))
    except (KeyError, TypeError, ValueError):
        raise CatalogError("« target_per_10000 » (nombre de postes pour 10 000 habitants des QPV) est obligatoire "
                           "et doit être un nombre ; « well_equipped » aussi.", path=path) from None
    if target <= 0 or well <= 0:
        raise CatalogError("« target_per_10000 » et « well_equipped » doivent être positifs.", path=path)
    ranking = list(rules.get("ranking") or ["need_level", "missing_posts", "qpv_population"])
    bad = [k for k in ranking if k not in RANKING_KEYS]
    if bad:
        raise CatalogError(f"clé(s) de classement inconnue(s) : {', '.join(bad)}.", path=path,
                           hint=f"clés possibles : {', '.join(RANKING_KEYS)}.")
    levels = list(rules.get("prospect_levels") or ["fort", "moyen"])
    if set(levels) - set(LEVELS):
        raise CatalogError(f"« prospect_levels » : niveaux possibles {', '.join(LEVELS)}.", path=path)
    year = rules.get("reference_year", "latest")
    if year != "latest" and not str(year).isdigit():
        raise CatalogError("« reference_year » vaut « latest » ou une année (ex. 2024).", path=path)
    types = rules.get("employer_types") or {}
    known = set(actor_types().index)
    for key, words in types.items():
        if key not in known or not isinstance(words, list) or not words:
            raise CatalogError(f"type d'employeur « {key} » : attendu un type de diagnostic/resources/tables/types_acteurs.csv "
                               "et une liste de mots.", path=path, hint=f"types : {', '.join(sorted(known))}.")
    return {
        **rules, "path": str(path), "programmes": programmes, "target_per_10000": target, "well_equipped": well,
        "ranking": ranking, "prospect_levels": levels, "reference_year": year,
        "shown": int(rules.get("shown", 15)), **employer_rules(rules),
    }


def employer_label(key: str) -> str:
    """The French label of an employer type key."""
    if key == UNKNOWN_EMPLOYER[0]:
        return UNKNOWN_EMPLOYER[1]
    labels = actor_types()["libelle"]
    return str(labels.get(key, key))
