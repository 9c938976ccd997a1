"""Employer types of adultes-relais and FONJEP posts: one rule for the partner network and the regional synthesis.

ANCT's files give an employer's name and SIRET, never its kind. Its type, a key of
``diagnostic/resources/tables/types_acteurs.csv``, is the first whose keywords appear in the
name (whole words, accents and case ignored), else the one the SIREN's first digits give
(legal persons of public law), else « autre ». Keywords and prefixes are ``employer_types``
and ``siren_prefixes`` of ``diagnostic/resources/rules/region.yaml``, editable there; the
regional synthesis may read them from another rules file (``--rules``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from diagnostic import resources
from diagnostic.io.catalog import read_yaml
from diagnostic.text import fold

RULES_FILE = resources.path("rules/region.yaml")
#: The type of an employer no keyword or prefix recognises: key and French label.
UNKNOWN_EMPLOYER = ("autre", "autre ou non déterminé")


def employer_rules(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``employer_types`` (type → keywords) and ``siren_prefixes`` (digits → type) of a rules file."""
    return {
        "employer_types": dict(raw.get("employer_types") or {}),
        "siren_prefixes": {str(k): str(v) for k, v in (raw.get("siren_prefixes") or {}).items()},
    }


@lru_cache(maxsize=1)
def default_rules() -> dict[str, Any]:
    """The employer rules of ``diagnostic/resources/rules/region.yaml``."""
    return employer_rules(read_yaml(RULES_FILE, "règles de la synthèse régionale"))


def _words(text: str) -> str:
    return " " + " ".join(re.sub(r"[^a-z0-9]+", " ", fold(text)).split()) + " "


def employer_type(name: Any, siret: Any, rules: Mapping[str, Any] | None = None) -> str:
    """The type key of an employer: a keyword of its name, else its SIREN's first digits, else « autre »."""
    rules = rules if rules is not None else default_rules()
    words = _words(name if isinstance(name, str) else "")
    for key, keywords in rules["employer_types"].items():
        if any(_words(w) in words for w in keywords):
            return key
    digits = re.sub(r"\D", "", siret) if isinstance(siret, str) else ""
    if len(digits) >= 9:
        for prefix in sorted(rules["siren_prefixes"], key=len, reverse=True):
            if digits.startswith(prefix):
                return rules["siren_prefixes"][prefix]
    return UNKNOWN_EMPLOYER[0]
