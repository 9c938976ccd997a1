"""French text for everything a reader sees: numbers, counts with their plural, missing values, folding.

This is the one place that writes a number for a page (report, evaluation, batch index, regional pages,
maps, explorer): narrow no-break space for thousands, decimal comma, integers for counts, « non disponible »
or « secret statistique » instead of an empty cell.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from typing import Any

THIN = "\u202f"  # narrow no-break space: thousands, and before « % »
NBSP = "\u00a0"  # no-break space: before a unit
NOT_AVAILABLE = "non disponible"
SECRET = "secret statistique"


def is_missing(value: Any) -> bool:
    """True for None, NaN, pandas' NA and infinities: values that have no number to print."""
    if value is None:
        return True
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


def number(value: Any, digits: int = 0, unit: str = "", missing: str = NOT_AVAILABLE) -> str:
    """12345.6 → « 12 345,6 »; ``unit`` follows after a no-break space (« % » after a narrow one)."""
    if is_missing(value):
        return missing
    text = f"{float(value):,.{digits}f}".replace(",", THIN).replace(".", ",")
    if text.lstrip("-").strip("0,") == "" and text.startswith("-"):
        text = text[1:]  # no « -0,0 »
    if not unit:
        return text
    return f"{text}{THIN if unit == '%' else NBSP}{unit}"


def percent(value: Any, digits: int = 1, missing: str = NOT_AVAILABLE) -> str:
    """48.5 → « 48,5 % » (the value is already a percentage)."""
    return number(value, digits, "%", missing)


def count(value: Any, singular: str = "", plural_form: str | None = None,
          missing: str = NOT_AVAILABLE) -> str:
    """A whole number with its noun agreed: « 1 besoin », « 2 besoins », « 0 besoin » (French rule: < 2)."""
    if is_missing(value):
        return missing
    n = round(float(value))
    text = number(n, 0)
    return f"{text}{NBSP}{plural(n, singular, plural_form)}" if singular else text


def plural(n: float, singular: str, plural_form: str | None = None) -> str:
    """The noun agreed with ``n``: singular below 2, as French writes « 0 besoin », « 1,5 poste »."""
    if abs(n) < 2:
        return singular
    if plural_form is not None:
        return plural_form
    if " " in singular:
        raise ValueError(f"pluriel de « {singular} » à donner explicitement")
    if singular.endswith(("s", "x", "z")):
        return singular
    if singular.endswith(("au", "eu")) and singular not in _PLURAL_S:
        return singular + "x"  # « niveaux », « lieux », « réseaux »
    return singular + "s"


#: Words in -au or -eu whose plural takes an « s »: « landaus », « pneus », « bleus ».
_PLURAL_S = {"landau", "sarrau", "bleu", "pneu", "émeu", "lieu-dit"}


#: Units of whole quantities: people, households, euros (a median income has no useful cents).
WHOLE_UNITS = {"habitants", "personnes", "ménages", "logements", "€", "euros", "m", "services", "postes"}
#: Units that are a plain ratio, written without a unit.
RATIO_UNITS = {"ratio", "indice", ""}


def measure(value: Any, unit: str = "", status: Any = "", digits: int = 1) -> str:
    """An indicator's value with its unit: « 31 691 habitants », « 48,5 % », « 13 150 € », « 1,9 »;
    the French status (« secret statistique », « non disponible ») when there is no value."""
    if is_missing(value):
        return status_label(status)
    unit = (unit or "").strip()
    if unit in WHOLE_UNITS:
        return number(round(float(value)), 0, unit)
    if unit in RATIO_UNITS:
        return number(value, digits)
    return number(value, digits, unit)


MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre")


def date(day: dt.date) -> str:
    """« 2 décembre 2026 », « 1er mars 2025 »."""
    first = "1er" if day.day == 1 else str(day.day)
    return f"{first} {MONTHS[day.month - 1]} {day.year}"


def of_date(day: dt.date) -> str:
    """« du 2 décembre 2026 », « du 1er août 2024 »: a date after « de »."""
    return f"du {date(day)}"


#: A whole number of four digits or more counting something (« 7137 valeurs », « 1201 QPV »), not a year.
_BARE_COUNT = re.compile(r"(?<![\w,.\u202f])(?<!en )(?<!de )(?<!du )(?<!depuis )(?<!millésime )(?<!année )"
                         r"(\d{4,})(?=[ \u00a0][A-Za-zÀ-ÿ])")


def numbers_in(text: str) -> str:
    """Thousands separators in the counts of a message written elsewhere (a loader's remark): « 7137 valeurs » →
    « 7 137 valeurs », « 1201 QPV » → « 1 201 QPV »; years (« en 2024 », « de 2022 », any 1900 to 2099 before a
    word) are left alone."""
    def group(m: re.Match) -> str:
        n = int(m.group(1))
        return m.group(1) if 1900 <= n <= 2099 else number(n)

    return _BARE_COUNT.sub(group, str(text))


#: Words that open a place name said with « le » though the name has no article: « au Grand Mirail », « du Centre Ville ».
_MASCULINE_HEADS = ("Grand ", "Centre", "Quartier ", "Secteur ", "Faubourg ", "Vieux ")
#: Words that open a place name said with « la »: « à la Grande Résidence », « de la Cité 4 ».
_FEMININE_HEADS = ("Grande ", "Cité ", "Résidence ", "Cité-")
#: Words that open a place name said with « les »: « des Hauts-de-France », « des Pays de la Loire ».
_PLURAL_HEADS = ("Hauts-", "Hauts ", "Pays ")


def _elides(word: str) -> bool:
    """True when « de » elides before ``word``: a vowel or an h (most h of place names are mute: « d'Halluin »,
    « d'Hazebrouck »; INSEE's few aspirated ones, « de Hem », « de Ham », read « d'… » here)."""
    return fold(word[:1]) in "aeiouyhœæ"


def _article(name: str) -> tuple[str, str]:
    """A place name's own article (« le », « la », « les », « l' » or « ») and the name without it, as INSEE
    writes communes (« Le Cateau-Cambrésis », « La Madeleine », « L'Haÿ-les-Roses »); ``name`` stripped."""
    name = str(name).strip()
    for article in ("Les ", "Le ", "La ", "Aux "):
        if name.startswith(article):
            return {"aux": "les"}.get(article.strip().lower(), article.strip().lower()), name[len(article):]
    if name[:2] in ("L'", "L\u2019"):
        return "l'", name[2:]
    return "", name


def of(name: str) -> str:
    """« de » before a place name, contracted with its article or elided: « du Havre », « des Mureaux »,
    « de La Madeleine », « de L'Haÿ-les-Roses », « d'Occitanie », « des Hauts-de-France », « du Grand Est »."""
    article, rest = _article(name)
    name = str(name).strip()
    if article == "le" or (not article and name.startswith(_MASCULINE_HEADS)):
        return f"du {rest}"
    if article == "les" or (not article and name.startswith(_PLURAL_HEADS)):
        return f"des {rest}"
    if not article and name.startswith(_FEMININE_HEADS):
        return f"de la {name}"
    if not article and _elides(name):
        return f"d'{name}"
    return f"de {name}"


def at(name: str) -> str:
    """« à » before a place name, contracted with its article: « à Toulouse », « au Cateau-Cambrésis »,
    « aux Mureaux », « à La Madeleine », « à L'Haÿ-les-Roses », « au Grand Mirail »."""
    article, rest = _article(name)
    name = str(name).strip()
    if article == "le" or (not article and name.startswith(_MASCULINE_HEADS)):
        return f"au {rest}"
    if article == "les" or (not article and name.startswith(_PLURAL_HEADS)):
        return f"aux {rest}"
    if not article and name.startswith(_FEMININE_HEADS):
        return f"à la {name}"
    return f"à {name}"


def locative(preposition: str, name: str) -> str:
    """A name after the words that place something in it, elided after « l' »: (« dans l' », « Ain ») → « dans
    l'Ain », (« en », « Haute-Garonne ») → « en Haute-Garonne » (departments: ``locatif`` of the COG table)."""
    preposition, name = str(preposition).strip(), str(name).strip()
    return f"{preposition}{name}" if preposition.endswith(("'", "\u2019")) else f"{preposition} {name}"


def _contracted(phrase: str, plural: str, masculine: str) -> tuple[str, str]:
    """``phrase`` stripped of « les » / « le » and the contracted preposition that replaces the article, or « »."""
    phrase = str(phrase).strip()
    for article, contraction in (("les ", plural), ("le ", masculine)):
        if phrase.startswith(article):
            return contraction, phrase[len(article):]
    return "", phrase


def de(phrase: str) -> str:
    """« de » before a phrase, contracted with its article: « des jeunes », « du quartier », « de la commune »."""
    contraction, rest = _contracted(phrase, "des", "du")
    if contraction:
        return f"{contraction} {rest}"
    return f"d'{rest}" if _elides(rest) else f"de {rest}"


def to(phrase: str) -> str:
    """« à » before a phrase, contracted with its article: « aux jeunes », « au quartier », « à la commune »."""
    contraction, rest = _contracted(phrase, "aux", "au")
    return f"{contraction or 'à'} {rest}"


#: Abbreviations of the ANCT's employer names, written out: « ASSOC ITINERAIRES » → « Association Itineraires ».
_EXPANDED = {"ASSOC": "Association", "ASS": "Association", "ASSO": "Association", "COM": "Commune", "STE": "Société"}
#: Acronyms kept in capitals (and any word of four capitals or fewer without a vowel).
_ACRONYMS = {"CCAS", "CAF", "MJC", "CSC", "FONJEP", "ADEP", "UFCV", "AFEV", "APF", "OPH", "SAS", "SARL", "SCIC", "GIP",
             "EPCI", "QPV", "CIAS", "CUCS", "ESS", "ALEFPA", "AREAS", "ARELI", "AFPA", "ACSE", "CDC", "SIVU", "SIVOM"}
_SMALL_WORDS = {"de", "du", "des", "la", "le", "les", "et", "pour", "en", "au", "aux", "sur", "à", "d", "l"}


def proper_case(name: Any) -> str:
    """A name written in capitals by its source, as French writes it: « ASSOC EDUCATION PREVENTION » → « Association
    Education Prevention », « COMITE DU SECOURS POPULAIRE » → « Comite du Secours Populaire », acronyms kept (« CCAS »);
    a name already in mixed case is left as it is."""
    name = " ".join(str(name).split())
    if any(c.islower() for c in name):
        return name
    words = []
    for i, word in enumerate(name.split(" ")):
        parts = re.split(r"(['’-])", word)
        out = []
        for part in parts:
            low = part.lower()
            if part in ("'", "’", "-") or not part:
                out.append(part)
            elif part in _EXPANDED and len(parts) == 1:
                out.append(_EXPANDED[part])
            elif (i or out) and low in _SMALL_WORDS:
                out.append(low)
            elif part in _ACRONYMS or (len(part) <= 4 and part.isalpha() and not set(low) & set("aeiouyéèà")):
                out.append(part)
            else:
                out.append(part[:1] + part[1:].lower())
        words.append("".join(out))
    return re.sub(r"^Commune (?!de |d')", "Commune de ", " ".join(words))


def quoted(items: list[str]) -> list[str]:
    """Each item between French quotes (« … »), for labels that hold commas or « et »."""
    return [f"«{NBSP}{i}{NBSP}»" for i in items if i]


_OPTIONAL_PLURAL = re.compile(r"\b(\w+)\(s\)")
_NUMBER = re.compile(r"(?<![\w,])(\d[\d\u202f]*)(?:,(\d+))?(?![\w])")


def agree(text: Any) -> str:
    """Resolve the « (s) » of a message written for any count: « 2 valeur(s) conservée(s) » → « 2 valeurs
    conservées », « 1 poste(s) » → « 1 poste », by the last number before it in the same clause
    (plural without one: « ce(s) QPV » → « ces QPV »); « 4,0 postes » loses its useless « ,0 »."""
    text = str(text)
    out, pos = [], 0
    for m in _OPTIONAL_PLURAL.finditer(text):
        clause = re.split(r"[;.:!?]", text[:m.start()])[-1]
        numbers = _NUMBER.findall(clause)
        n = float(numbers[-1][0].replace(THIN, "") + "." + (numbers[-1][1] or "0")) if numbers else 2.0
        out.append(text[pos:m.start()])
        word = m.group(1)
        out.append(word + ("s" if abs(n) >= 2 else ""))
        pos = m.end()
    out.append(text[pos:])
    return re.sub(r"(?<![\w,])(\d[\d\u202f]*),0+(?=[\s\u00a0]\D)", r"\1", "".join(out))


_FILE_NAME = re.compile(r",?\s*[\w.-]+\.(?:csv|xlsx?|ods|json|geojson|gpkg|parquet|zip)\b")


def without_file_names(citation: str) -> str:
    """A source's citation as a reader sees it: « INSEE, indicateurs QPV, qpv.csv » → « INSEE, indicateurs QPV »."""
    return _FILE_NAME.sub("", str(citation)).strip(" ,")


def sentence(text: Any) -> str:
    """A sentence with its first letter in capitals and a final full stop."""
    text = str(text).strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def status_label(status: Any) -> str:
    """The French label of a missing value's status: « secret statistique » only when the source says so."""
    return SECRET if isinstance(status, str) and status.strip().lower() in {"s", "secret", SECRET} else NOT_AVAILABLE


def fold(text: Any) -> str:
    """Accents removed and case folded, for matching names typed by people (« Écoles » ~ « ecoles »)."""
    decomposed = unicodedata.normalize("NFKD", str(text))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def join(items: list[str], last: str = " et ") -> str:
    """« a, b et c » from a list, empty items left out."""
    items = [i for i in items if i]
    if not items:
        return ""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + last + items[-1]
