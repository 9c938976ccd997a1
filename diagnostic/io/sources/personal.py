"""Personal data refused in what officers load: one check for every source that people fill in.

The activity log, questionnaire exports, marches exploratoires and meeting
records describe places, problems and categories of people, never a person.
A column whose header means personal data (name, first name, phone, e-mail,
postal address, birth date, social-security or benefit numbers), and a phone
number or an e-mail address written in any cell, make the file refused (exit
code 21). The message names the column and the lines but never repeats the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from diagnostic.errors import ConfidentialityError
from diagnostic.io.sources._io import refuse
from diagnostic.text import fold

#: Header words that mean personal data (compared without accents, case or separators).
PERSONAL_WORDS = {
    "nom", "noms", "prenom", "prenoms", "patronyme", "telephone", "tel", "portable", "email", "mail",
    "courriel", "naissance", "domicile", "adresse", "nir", "secu", "allocataire", "immatriculation",
    "name", "contact", "contacts", "usager", "usagers", "identite", "beneficiaire", "beneficiaires", "personne",
}
#: Words that make a « nom » column an organisation's or a place's name, not a person's.
ORGANISATION_WORDS = {"partenaire", "service", "structure", "lieu", "quartier", "qpv", "commune", "operateur",
                      "arret", "etape", "marche", "reunion"}
#: A French phone number however written: 06 12 34 56 78, 06.12…, 06-12…, 06/12…, +33 6…, +33 (0)6…, 0033 6….
PHONE = re.compile(r"(?<![\d.,])(?:(?:\+|00)\s*33\s*(?:\(\s*0\s*\))?|0)[\s./\-]*[1-9](?:[\s./\-]*\d{2}){4}(?![\d])")
EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")


def header_words(column: str) -> set[str]:
    """The words of a column header, lower case and without accents."""
    return set(re.sub(r"[^a-z0-9]+", "_", fold(column)).strip("_").split("_"))


def personal_header(column: str) -> bool:
    """Whether a column header names personal data (« Nom du quartier » does not)."""
    words = header_words(column)
    personal = words & PERSONAL_WORDS
    if words & ORGANISATION_WORDS:
        personal -= {"nom", "noms", "name"}
    if words & {"role", "fonction"}:  # « role_contact »: a function, never a person
        personal -= {"contact", "contacts"}
    return bool(personal)


def contact_in(values: pd.Series) -> pd.Series:
    """True where a text holds a phone number or an e-mail address."""
    cells = values.astype(str)
    return cells.str.contains(PHONE) | cells.str.contains(EMAIL)


def check_confidentiality(
    df: pd.DataFrame,
    path: Path,
    *,
    what: str,
    skip: Iterable[str] = (),
    hint: str = "supprimez cette colonne du fichier ; le lieu s'indique par le code QPV ou des coordonnées.",
    first_line: int = 2,
) -> None:
    """Refuse personal-data columns, and phone numbers or e-mails in any cell not in ``skip``.

    ``what`` names the file's kind in the message (« le journal d'activité »);
    ``skip`` lists columns that hold numbers or dates only (coordinates).
    """
    skip = set(skip)
    for column in df.columns:
        if personal_header(str(column)):
            raise ConfidentialityError(
                f"la colonne « {column} » ressemble à une donnée personnelle : {what} ne doit contenir ni nom, "
                "ni téléphone, ni adresse électronique ou postale des personnes.",
                path=path,
                column=str(column),
                hint=hint,
            )
    for column in df.columns:
        if column in skip:
            continue
        found = contact_in(df[column])
        refuse(found, f"{int(found.sum())} cellule(s) de la colonne « {column} » contiennent un numéro de téléphone "
               "ou une adresse électronique.", path, str(column), error=ConfidentialityError, offset=first_line,
               hint="effacez ces coordonnées personnelles du fichier avant de le charger.")
