"""Editable reference tables shipped in ``diagnostic/resources/tables/``: indicators and mediation domains."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from diagnostic import resources, text
from diagnostic.errors import MissingColumnError, MissingFileError, ValueFormatError

INDICATORS_FILE = resources.path("tables/indicateurs.csv")
DOMAINS_FILE = resources.path("tables/domaines_mediation.csv")
DEPARTMENTS_FILE = resources.path("tables/departements.csv")
BPE_TYPES_FILE = resources.path("tables/types_bpe.csv")

#: The mediation domains, in report order: key → French label.
DOMAINS: dict[str, str] = {
    "acces_droits": "Accès aux droits et aux services publics",
    "sante": "Santé",
    "education": "Éducation et milieu scolaire",
    "transports": "Transports",
    "habitat": "Habitat et bailleurs",
    "espace_public": "Espace public et tranquillité",
    "emploi": "Emploi et insertion",
    "jeunesse": "Jeunesse, sport et culture",
}


def _read(path: Path, required: list[str]) -> pd.DataFrame:
    if not path.exists():
        raise MissingFileError("table de référence introuvable.", path=path)
    df = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
    for col in required:
        if col not in df.columns:
            raise MissingColumnError(f"colonne « {col} » attendue.", path=path, column=col)
    return df


@lru_cache(maxsize=4)
def indicator_table(path: Path = INDICATORS_FILE) -> pd.DataFrame:
    """Indicator definitions: label, unit, nature (effectif, taux, mediane, indice), direction, bounds.

    ``min`` is the smallest possible value, ``max`` the largest plausible one and
    ``hors_bornes`` says whether a value above ``max`` is refused (``erreur``) or
    kept with a warning (``avertissement``).
    """
    df = _read(path, ["cle", "libelle", "unite", "nature", "sens", "ponderation", "min", "max", "hors_bornes"])
    bad = ~df["hors_bornes"].isin(["erreur", "avertissement"])
    if bad.any():
        raise ValueFormatError(
            f"« hors_bornes » vaut {', '.join(sorted(set(df.loc[bad, 'hors_bornes'])))}.",
            path=path, column="hors_bornes", rows=[int(i) + 2 for i in df.index[bad]],
            hint="valeurs possibles : erreur, avertissement.",
        )
    return df.set_index("cle")


#: The role of an equipment type in a domain: what it does to the need (see ``diagnostic/resources/tables/domaines_mediation.csv``).
ROLES: dict[str, str] = {
    "reponse": "réponse existante (fait déjà ce que ferait la médiation)",
    "lieu": "lieu d'intervention (où les besoins se concentrent et où les médiateurs agissent)",
    "droit_commun": "offre de droit commun (sa rareté ou son éloignement ajoute au besoin)",
    "contexte": "équipement de contexte (montré, sans effet sur le besoin)",
}


@lru_cache(maxsize=4)
def equipment_domains(path: Path = DOMAINS_FILE) -> pd.DataFrame:
    """Equipment type → mediation domain(s) and role there, one row per (source, type, domain)."""
    df = _read(path, ["source", "type", "libelle", "domaine", "role"])
    for column, allowed in (("domaine", DOMAINS), ("role", ROLES)):
        bad = df.index[~df[column].isin(allowed)]
        if len(bad):
            raise ValueFormatError(
                f"valeur(s) inconnue(s) : {', '.join(sorted(set(df.loc[bad, column])))} ; "
                f"valeurs possibles : {', '.join(allowed)}.",
                path=path,
                column=column,
                rows=[int(i) + 2 for i in bad],
            )
    return df


@lru_cache(maxsize=2)
def bpe_types(path: Path = BPE_TYPES_FILE) -> pd.DataFrame:
    """Every BPE equipment type (``TYPEQU``) of each INSEE code list (``liste``: 2018, 2024, 2025), with its label.

    A code is known when its list holds it, whether or not the domain table gives
    it a role: a code outside its list is reported, never silently left out.
    """
    return _read(path, ["liste", "type", "libelle"])


@lru_cache(maxsize=1)
def department_regions(path: Path = DEPARTMENTS_FILE) -> pd.DataFrame:
    """Each department code (COG 2024) with its region (``reg``, ``libelle_region``: regions of 2016), its
    official name (``libelle``), INSEE's article type (``tncc``: 2 « le », 3 « la », 4 « les », 5 « l' »,
    0 and 1 none) and the words that place something in it (``locatif``: « en », « dans le », « à »…)."""
    return _read(path, ["dep", "reg", "libelle_region", "tncc", "libelle", "locatif"]).set_index("dep")


def department_name(code: str) -> str | None:
    """The department's official name, « Haute-Garonne » for ``31``; None for a code the table lacks."""
    table = department_regions()
    return table.at[code, "libelle"] if code in table.index else None


def in_department(code: str) -> str | None:
    """« en Haute-Garonne », « dans le Nord », « dans les Hauts-de-Seine », « à La Réunion »; None if unknown."""
    table = department_regions()
    return text.locative(table.at[code, "locatif"], table.at[code, "libelle"]) if code in table.index else None
