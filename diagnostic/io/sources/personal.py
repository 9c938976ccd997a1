"""Personal data refused in what officers load: one check for every source that people fill in.

The activity log, questionnaire exports, marches exploratoires and meeting
records describe places, problems and categories of people, never a person.
A column whose header means personal data (name, first name, phone, e-mail,
postal address, birth date, social-security or benefit numbers), and a phone
number, an e-mail address (even written « [at] ») or a social-security number written
in any cell, make the file refused (exit code 21). The same detector checks the free text
of the partner registry, its relations, local services, the officer's texts and local
recommendations. The message names the column and the lines but never repeats the value.
"""

from __future__ import annotations

import re
import unicodedata
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
    "firstname", "lastname", "surname", "forename", "fullname", "givenname", "phone", "mobile", "birth",
    "birthdate", "dob", "ss", "nss", "ssn", "beneficiary", "beneficiaries", "caf", "numero_allocataire",
}
#: Words that make a « nom » column an organisation's or a place's name, not a person's.
ORGANISATION_WORDS = {"partenaire", "service", "structure", "lieu", "quartier", "qpv", "commune", "operateur",
                      "arret", "etape", "marche", "reunion"}
#: What separates the digits of a phone number as people type them (spaces, dots, dashes of any length,
#: slashes, underscores, commas).
_SEP = r"[\s./\-\u2010-\u2015\u2212_,·]"
#: A French phone number however written: 06 12 34 56 78, 06.12…, 06–12…, 06_12…, 06,12…, 0 6 1 2…, +33 6…,
#: +33 (0)6…, (+33) 6…, 0033 6….
PHONE = re.compile(
    rf"(?<![\d.,])(?:(?:\+|00){_SEP}*33{_SEP}*(?:\(\s*0\s*\))?|\(\s*(?:\+|00)\s*33\s*\)(?:\s*\(\s*0\s*\))?|0)"
    rf"{_SEP}*[1-9](?:{_SEP}{{0,2}}\d){{8}}(?!\d)")
#: A foreign number written with its international prefix: +212 6 12 34 56 78, +32 475 12 34 56, 0044 20….
FOREIGN_PHONE = re.compile(rf"(?<![\w+])(?:\+|00)\s*\(?[1-9]\d{{0,2}}\)?(?:{_SEP}{{0,2}}\d){{7,12}}(?!\d)(?!\s*(?:%|€))")
EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")
#: E-mail addresses written to dodge robots: « jean[at]example.fr », « jean (at) example (dot) fr », « jean @ x.fr ».
_AT = re.compile(r"\s*(?:[\[({]\s*(?:at|arobase|chez)\s*[\])}]|@)\s*", re.IGNORECASE)
_DOT = re.compile(r"\s*[\[({]\s*(?:dot|point)\s*[\])}]\s*", re.IGNORECASE)
#: A French social-security number (NIR): sex, year, month, department, commune, order, optional key.
NIR = re.compile(r"(?<![\d])([12])\s?(\d{2})\s?(0[1-9]|1[0-2]|[2-9]\d)\s?(\d{2}|2[AB])\s?(\d{3})\s?(\d{3})"
                 r"(?:\s?(\d{2}))?(?![\d])", re.IGNORECASE)


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


def _valid_nir(match: re.Match) -> bool:
    """A NIR with its key checked (97 minus the number modulo 97; Corsica's 2A and 2B count as 19 and 18)."""
    sex, year, month, dep, commune, order, key = match.groups()
    if key is None:
        return True
    dep = {"2A": "19", "2B": "18"}.get(dep.upper(), dep)
    return 97 - int(f"{sex}{year}{month}{dep}{commune}{order}") % 97 == int(key)


def contact_text(text: str) -> bool:
    """Whether a text holds a phone number, an e-mail address (even disguised) or a social-security number."""
    text = unicodedata.normalize("NFKC", str(text))  # full-width « ＠ » and digits become plain ones
    if PHONE.search(text):
        return True
    # An international number as people type it: « +32 … », or « 0032 » followed by separated groups (a bare
    # « 0012345678 » is a code with leading zeros, not a phone).
    if any(m.group(0).startswith("+") or re.search(r"\D", m.group(0)) for m in FOREIGN_PHONE.finditer(text)):
        return True
    if EMAIL.search(_DOT.sub(".", _AT.sub("@", text))):
        return True
    return any(_valid_nir(m) for m in NIR.finditer(text))


#: What a cell must hold to be worth the full check: eight digits, an « @ » of any width, or « at » in brackets.
_CANDIDATE = re.compile(r"(?:\d\D{0,3}){8}|[@＠﹫]|[\[({]\s*(?:at|arobase|chez)\s*[\])}]", re.IGNORECASE)


def contact_in(values: pd.Series) -> pd.Series:
    """True where a text holds a phone number, an e-mail address or a social-security number."""
    cells = values.astype(str)
    found = pd.Series(False, index=values.index)
    candidates = cells.str.contains(_CANDIDATE)
    found[candidates] = cells[candidates].map(contact_text).astype(bool)
    return found


def refuse_contacts(df: pd.DataFrame, path: Path, columns: Iterable[str] | None = None, *, first_line: int = 2,
                    hint: str = "effacez ces coordonnées personnelles du fichier avant de le charger.") -> None:
    """Refuse phone numbers, e-mails and social-security numbers in the cells of ``columns`` (all by default)."""
    for column in df.columns if columns is None else columns:
        if column not in df.columns:
            continue
        found = contact_in(df[column])
        refuse(found, f"{int(found.sum())} cellule(s) de la colonne « {column} » contiennent un numéro de téléphone, "
               "une adresse électronique ou un numéro de sécurité sociale.", path, str(column),
               error=ConfidentialityError, offset=first_line, hint=hint)


def refuse_contacts_in_text(text: str, path: Path, what: str) -> None:
    """Refuse a free text (an officer's Markdown, a local recommendation) holding personal contact details."""
    lines = [n for n, line in enumerate(str(text).splitlines(), start=1) if contact_text(line)]
    if lines:
        raise ConfidentialityError(
            f"{what} contient un numéro de téléphone, une adresse électronique ou un numéro de sécurité sociale : "
            "il serait publié dans le rapport.", path=path, rows=lines,
            hint="retirez ces coordonnées personnelles ; désignez une personne par sa fonction (« la référente "
            "du bailleur »).")


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
    refuse_contacts(df, path, [c for c in df.columns if c not in skip], first_line=first_line)
