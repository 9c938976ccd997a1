"""The inputs of a structure's shared diagnostic: self-assessment answers and the anonymised staff table.

**Answers** are questionnaire exports (CSV or ``.xlsx``, as Framaforms, LimeSurvey or
KoboToolbox write them, read like :mod:`diagnostic.io.sources.questionnaires`): one row per
respondent, a ``point_de_vue`` column (direction, encadrement, mediateurs, partenaires) and one
column per criterion of the grid, headed by its code (« ETH1 » or « ETH1 — Le médiateur… »).
A level is its number or its label (« 3 », « En place »); an empty cell or « ne sait pas » is no
answer. The form tools' own columns are ignored; any other column must be a criterion.
**Staff table**: one row per post — ``poste``, ``contrat``, ``anciennete_annees``,
``heures_formation`` and ``heures_analyse_pratique`` over the last twelve months — and never a
name. Personal data (a name, phone or e-mail column, a phone number or e-mail in any cell)
refuses either file (code 21); an unknown criterion or a level outside the scale is code 15.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from diagnostic.errors import ParameterError, ValueFormatError, closest
from diagnostic.io.sources._io import (
    line_numbers,
    read_table,
    refuse,
    require_columns,
    sheet_errors,
    to_number,
)
from diagnostic.io.sources.personal import check_confidentiality
from diagnostic.io.sources.questionnaires import TOOL_COLUMNS
from diagnostic.text import fold

VIEWPOINT = "point_de_vue"
#: Columns a respondent may add that the grid does not read (free comments are never published).
IGNORED = {"commentaire", "commentaires", "remarque", "remarques"}
STAFF_COLUMNS = ["poste", "contrat", "anciennete_annees", "heures_formation", "heures_analyse_pratique"]
STAFF_NUMBERS = STAFF_COLUMNS[2:]
#: Post groups of the staff table, recognised from the start of the folded post name.
POSTS = {"mediat": "Médiateurs", "adulte": "Médiateurs", "coord": "Coordination", "encadr": "Encadrement",
         "chef": "Encadrement", "responsable": "Encadrement", "direct": "Direction"}
OTHER_POST = "Autres postes"
_CODE = re.compile(r"^\s*([A-Za-z]{2,5}\d{1,2})(?:\s*[-—–:.)]\s*.*|\s+.*)?$")


def criterion_code(column: str, codes: Iterable[str]) -> str | None:
    """The grid code a column header stands for (« ETH1 », « ETH1 — texte »), None for another column."""
    m = _CODE.match(str(column))
    if not m:
        return None
    code = m.group(1).upper()
    return code if code in set(codes) else None


def read_answers(
    paths: Iterable[str | Path],
    codes: list[str],
    levels: Mapping[int, str],
    no_answer: Iterable[str],
    viewpoints: Mapping[str, str],
) -> pd.DataFrame:
    """Every respondent of every export: ``respondent``, ``viewpoint`` and one float column per criterion (NaN: no answer)."""
    frames = []
    for path in paths:
        path = Path(path).expanduser().resolve()
        with sheet_errors(path, None):
            frames.append(_one_export(path, codes, levels, {fold(v) for v in no_answer}, viewpoints))
    if not frames:
        raise ParameterError("aucun export de réponses n'est donné.", hint="donnez au moins un fichier à --reponses.")
    return pd.concat(frames, ignore_index=True)


def _one_export(path: Path, codes: list[str], levels: Mapping[int, str], no_answer: set[str],
                viewpoints: Mapping[str, str]) -> pd.DataFrame:
    df = read_table(path, "réponses à la grille")
    require_columns(df, [VIEWPOINT], path, "réponses à la grille")
    tools = {c for c in df.columns if fold(c) in TOOL_COLUMNS}
    check_confidentiality(df, path, what="un export de réponses à la grille", skip=tools,
                          hint="retirez du formulaire toute question sur l'identité des personnes : seul le point "
                               "de vue (direction, encadrement, médiateurs, partenaires) est demandé.")
    mapped: dict[str, str] = {}
    for column in df.columns:
        if column in tools or column == VIEWPOINT or fold(column) in IGNORED:
            continue
        code = criterion_code(column, codes)
        if code is None:
            near = closest(str(column).split()[0], codes)
            raise ValueFormatError(
                f"la colonne « {column} » n'est pas un critère de la grille.", path=path, column=str(column),
                hint=(f"critère le plus proche : {near} ; " if near else "") +
                     "chaque question du formulaire porte le code de son critère (ex. ETH1) ; "
                     f"critères de la grille : {', '.join(codes[:12])}…")
        mapped[column] = code
    if not mapped:
        raise ValueFormatError("aucune colonne ne porte le code d'un critère de la grille.", path=path,
                               hint=f"attendu : des colonnes nommées {', '.join(codes[:5])}…")
    view = df[VIEWPOINT].map(fold).str.strip()
    aliases = {fold(k): k for k in viewpoints} | {fold(v): k for k, v in viewpoints.items()}
    aliases |= {fold(k).rstrip("s"): k for k in viewpoints}
    view = view.map(lambda v: aliases.get(v, aliases.get(v.rstrip("s"))))
    refuse(view.isna(), f"point de vue inconnu ({', '.join(sorted(set(df.loc[view.isna(), VIEWPOINT]))[:4])}).",
           path, VIEWPOINT, hint=f"valeurs possibles : {', '.join(viewpoints)}.")
    out = pd.DataFrame({"respondent": [f"{path}:{n}" for n in line_numbers(np.ones(len(df), dtype=bool))],
                        "viewpoint": view.to_numpy()})
    for column, code in mapped.items():
        out[code] = _levels(df[column], path, column, levels, no_answer).to_numpy()
    return out


def _levels(values: pd.Series, path: Path, column: str, levels: Mapping[int, str], no_answer: set[str]) -> pd.Series:
    """Answers as levels: « 3 », « 3 - En place » or « En place »; empty or « ne sait pas » is NaN."""
    by_label = {fold(label): n for n, label in levels.items()}
    texts = values.astype(str).str.strip()
    folded = texts.map(fold)
    number = pd.to_numeric(texts.str.extract(r"^(\d+)(?:[.,]0+)?(?![\d.,])")[0], errors="coerce")
    out = number.where(number.notna(), folded.map(by_label))
    blank = (texts == "") | folded.isin(no_answer)
    bad = ~blank & (out.isna() | ~out.isin(list(levels)))
    scale = ", ".join(f"{n} ({label})" for n, label in levels.items())
    refuse(bad, f"niveaux hors de l'échelle ({', '.join(repr(v) for v in texts[bad].head(3))}).", path, column,
           hint=f"attendu : {scale}, ou une cellule vide ou « ne sait pas ».")
    return out.where(~blank).astype(float)


def read_staff(path: str | Path) -> pd.DataFrame:
    """The anonymised staff table: post group, contract, seniority, training and supervision hours."""
    path = Path(path).expanduser().resolve()
    with sheet_errors(path, None):
        df = read_table(path, "tableau du personnel")
        check_confidentiality(df, path, what="le tableau du personnel",
                              hint="le tableau décrit des postes, jamais des personnes : retirez les noms, prénoms "
                                   "et coordonnées (un numéro de ligne suffit).")
        require_columns(df, STAFF_COLUMNS, path, "tableau du personnel")
        out = pd.DataFrame({"poste": df["poste"].str.strip(), "groupe": df["poste"].map(post_group),
                            "contrat": df["contrat"].str.strip()})
        for column in STAFF_NUMBERS:
            numbers, _ = to_number(df[column], path, column)
            refuse(numbers < 0, "valeurs négatives.", path, column, hint="attendu : un nombre positif ou nul.")
            out[column] = numbers.to_numpy()
        refuse(out["poste"] == "", "poste absent.", path, "poste", hint="chaque ligne décrit un poste.")
    return out


def post_group(post: str) -> str:
    """The group of a post name (« Médiatrice sociale » → Médiateurs)."""
    folded = fold(post).strip()
    return next((group for start, group in POSTS.items() if folded.startswith(start)), OTHER_POST)
