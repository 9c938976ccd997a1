"""The shared diagnostic of an existing mediation structure (« diagnostic partagé du dispositif »).

Answers to the self-assessment grid (``rules/grille_structure.yaml``) from several viewpoints
(direction, encadrement, médiateurs, partenaires) give a level per criterion and per theme:

* a group's level on a criterion is the mean of the levels its members gave (« ne sait pas »
  left out); on a theme, the mean of its published levels on the theme's criteria;
* answers are published by **group**: a viewpoint with fewer answers than the threshold joins
  the group the grid names (direction and encadrement together), and a group still too small
  is not published and enters no figure;
* the shared level is the mean of the published groups' levels: each viewpoint weighs the same,
  whatever its number of answers; where the groups differ by the grid's ``desaccord`` or more,
  the disagreement is a finding of its own.

Each group's level on a criterion is a mean over the people who answered: it is described as a
disclosure cell (:mod:`diagnostic.analysis.disclosure`) and protected and audited exactly as the
evaluation's counts are, with the staff table's means and counts — no group of fewer than
``threshold`` people can be recomputed. Theme levels, shared levels and gaps are then computed
from the published criterion levels only, so they reveal nothing the criterion table does not.
The joint action plan follows from the gaps and disagreements, with the training needs they
imply; a second assessment reads the first's results and the plan as the structure updated it,
and shows progress and the state of each action.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from diagnostic import __version__, resources, text
from diagnostic._fs import write_atomic, write_atomic_bytes
from diagnostic.analysis import disclosure
from diagnostic.analysis.evaluation import Table, apply_masks, cells
from diagnostic.analysis.roadmap import add_months, module_ids
from diagnostic.errors import CatalogError, MissingFileError
from diagnostic.io.catalog import read_yaml
from diagnostic.io.sources._io import check_unique, read_table, refuse, require_columns
from diagnostic.text import fold

RULES = resources.path("rules/grille_structure.yaml")
STEM = "diagnostic_structure"
PLAN = "plan_actions"
PLAN_SHEET = "Plan d'actions"
#: The states an action of the plan can be given in the spreadsheet.
STATES = ("à faire", "en cours", "réalisée", "abandonnée")
PLAN_COLUMNS = ["N°", "Thème", "Action", "Porteur", "Échéance", "Priorité", "Indicateur de réalisation", "État",
                "Commentaire"]
SHARED = "Niveau partagé"
GAP = "Écart entre points de vue"


@dataclass
class Grid:
    """The self-assessment grid: scale, viewpoints and their groups, reading thresholds, themes."""

    version: Any
    levels: dict[int, str]
    descriptions: dict[int, str]
    no_answer: list[str]
    viewpoints: dict[str, str]
    merge: dict[str, str]
    groups: dict[str, str]
    reading: dict[str, float]
    threshold: int
    staff: dict[str, Any]
    disagreement_action: dict[str, Any]
    themes: list[dict[str, Any]]
    path: Path

    @property
    def codes(self) -> list[str]:
        return [c["code"] for t in self.themes for c in t["criteres"]]

    def criteria(self) -> pd.DataFrame:
        return pd.DataFrame([{"theme": t["code"], "theme_libelle": t["libelle"], "code": c["code"],
                              "texte": c["texte"], "preuves": c.get("preuves", "")}
                             for t in self.themes for c in t["criteres"]])

    def label(self, level: float | None) -> str:
        """The scale's word for the step a level reaches, as printed to one decimal (2,96 → 3,0: « En place »)."""
        if level is None or text.is_missing(level):
            return ""
        reached = int(np.floor(round(float(level), 1) + 1e-9))
        return self.levels[min(max(self.levels), max(min(self.levels), reached))]


def load_grid(path: str | Path | None = None) -> Grid:
    """The grid, checked: unique criterion codes, a scale of whole levels, modules known to the roadmap (code 10)."""
    path = Path(path).expanduser().resolve() if path else RULES
    raw = read_yaml(path, "grille d'autodiagnostic")

    def bad(message: str, hint: str = "partez d'une copie de diagnostic/resources/rules/grille_structure.yaml.") -> CatalogError:
        return CatalogError(f"grille d'autodiagnostic : {message}", path=path, hint=hint)

    if not isinstance(raw, dict):
        raise bad("le fichier doit être un dictionnaire YAML.")
    for key in ("niveaux", "points_de_vue", "themes", "lecture"):
        if key not in raw:
            raise bad(f"la rubrique « {key} » manque.")
    missing = {"force", "manque", "manque_fort", "desaccord"} - set(raw["lecture"] or {})
    if missing:
        raise bad(f"la rubrique « lecture » doit donner {', '.join(sorted(missing))}.")
    try:
        levels = {int(k): str(v["libelle"]) for k, v in raw["niveaux"].items()}
    except (TypeError, ValueError, KeyError):
        raise bad("chaque niveau est un nombre entier avec son « libelle ».") from None
    codes: list[str] = []
    modules = module_ids()
    for theme in raw["themes"]:
        if not theme.get("criteres") or not theme.get("code"):
            raise bad(f"le thème « {theme.get('libelle', '?')} » doit avoir un code et des critères.")
        codes += [str(c["code"]).upper() for c in theme["criteres"]]
        for action in theme.get("actions") or []:
            if action.get("formation") and action["formation"] not in modules:
                raise bad(f"l'action « {action['action'][:40]}… » cite le module « {action['formation']} », absent du "
                          "plan de formation.", hint=f"modules : {', '.join(modules)}.")
    dup = sorted({c for c in codes if codes.count(c) > 1})
    if dup:
        raise bad(f"codes de critère en double : {', '.join(dup)}.")
    viewpoints = {k: str(v["libelle"]) for k, v in raw["points_de_vue"].items()}
    merge = {k: str(v["regrouper_avec"]) for k, v in raw["points_de_vue"].items() if v.get("regrouper_avec")}
    groups = {**viewpoints, **{str(k): str(v) for k, v in (raw.get("regroupements") or {}).items()}}
    unknown = set(merge.values()) - set(groups)
    if unknown:
        raise bad(f"regroupement sans libellé : {', '.join(sorted(unknown))} (rubrique « regroupements »).")
    for theme in raw["themes"]:
        for c in theme["criteres"]:
            c["code"] = str(c["code"]).upper()
    return Grid(version=raw.get("version"), levels=levels,
                descriptions={int(k): str(v.get("description", "")) for k, v in raw["niveaux"].items()},
                no_answer=[str(v) for v in raw.get("sans_avis") or []], viewpoints=viewpoints, merge=merge,
                groups=groups, reading={k: float(v) for k, v in raw["lecture"].items()},
                threshold=int(raw.get("seuil", 3)), staff=dict(raw.get("personnel") or {}),
                disagreement_action=dict(raw.get("desaccord_action") or {}), themes=list(raw["themes"]), path=path)


# --- groups and levels ---------------------------------------------------------------------


def publication_groups(answers: pd.DataFrame, grid: Grid, threshold: int) -> tuple[pd.Series, list[str], list[str]]:
    """Each respondent's published group (None when too small), the groups in order, the viewpoints left out."""
    sizes = answers["viewpoint"].value_counts()
    group = answers["viewpoint"].map(lambda v: grid.merge[v] if sizes.get(v, 0) < threshold and v in grid.merge else v)
    counts = group.value_counts()
    order = []
    for v in grid.viewpoints:
        g = grid.merge[v] if v in grid.merge and sizes.get(v, 0) < threshold else v
        if counts.get(g, 0) and g not in order:
            order.append(g)
    kept = [g for g in order if counts[g] >= threshold]
    left_out = [grid.groups[g] for g in order if g not in kept]
    return group.where(group.isin(kept)), kept, left_out


def criterion_table(answers: pd.DataFrame, group: pd.Series, groups: list[str], grid: Grid) -> Table:
    """Each criterion's level per published group (the mean of its members' answers), before secrecy.

    Each answer is one record (criterion, respondent): a cell rests on the people who answered, and the
    cells of one criterion never overlap, so primary suppression protects fewer than ``threshold`` people.
    """
    names = [grid.groups[g] for g in groups]
    criteria = grid.criteria()
    present = criteria[criteria["code"].isin(answers.columns)].reset_index(drop=True)
    rows, sets = [], {}
    for i, code in enumerate(present["code"]):
        row = {"N°": code, "Thème": present.at[i, "theme_libelle"], "Critère": present.at[i, "texte"],
               "Preuves attendues": present.at[i, "preuves"]}
        for g, name in zip(groups, names):
            answered = answers.loc[(group == g) & answers[code].notna()]
            row[name] = float(answered[code].mean()) if len(answered) else np.nan
            sets[(i, name)] = (frozenset((code, r) for r in answered["respondent"]),)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["N°", "Thème", "Critère", "Preuves attendues", *names])
    return Table("criteres", "Niveau par critère et par point de vue", frame, tuple(names), sets=sets)


def _with_shared(table: Table, names: list[str]) -> Table:
    """The shared level (mean of the groups' published levels) and the gap between them, from published values only."""
    frame, masked = table.frame.copy(), table.is_masked().copy()
    values = frame[names].astype(float).where(~masked[names])
    position = list(frame.columns).index(names[0]) if names else len(frame.columns)
    frame.insert(position, SHARED, values.mean(axis=1, skipna=True))
    frame[GAP] = (values.max(axis=1) - values.min(axis=1)).where(values.notna().sum(axis=1) > 1)
    masked.insert(position, SHARED, False)
    masked[GAP] = False
    return replace(table, frame=frame, masked=masked)


def theme_table(criteria: Table, grid: Grid, names: list[str]) -> Table:
    """Each theme's level per group: the mean of the group's published levels on its criteria (derived, never new)."""
    published = criteria.frame[names].astype(float).where(~criteria.is_masked()[names])
    themes = {c["code"]: t["code"] for t in grid.themes for c in t["criteres"]}
    by_theme = published.groupby(criteria.frame["N°"].map(themes)).mean()
    frame = pd.DataFrame({"Thème": [t["libelle"] for t in grid.themes]})
    for name in names:
        frame[name] = [by_theme[name].get(t["code"], np.nan) for t in grid.themes]
    return Table("themes", "Niveau par thème et par point de vue", frame)


def respondents_table(answers: pd.DataFrame, group: pd.Series, groups: list[str], grid: Grid) -> Table:
    """How many people answered in each published group."""
    frame = pd.DataFrame({"Point de vue": [grid.groups[g] for g in groups],
                          "Réponses": [int((group == g).sum()) for g in groups]})
    sets = {(i, "Réponses"): (frozenset(("repondant", r) for r in answers.loc[group == g, "respondent"]),)
            for i, g in enumerate(groups)}
    return Table("repondants", "Réponses par point de vue", frame, ("Réponses",), sets=sets)


# --- staff ---------------------------------------------------------------------------------


STAFF_MEANS = {"anciennete_annees": "Ancienneté moyenne (années)", "heures_formation": "Heures de formation (moyenne)",
               "heures_analyse_pratique": "Heures d'analyse de la pratique (moyenne)"}


def staff_table(staff: pd.DataFrame, grid: Grid) -> Table:
    """Per post group and for the whole team: headcount (the organisation chart, public), means and people below the benchmarks."""
    training_min = float(grid.staff.get("heures_formation_min", 0))
    practice_min = float(grid.staff.get("heures_analyse_pratique_min", 0))
    below = {"Sous le repère de formation": staff["heures_formation"] < training_min,
             "Sous le repère d'analyse de la pratique": staff["heures_analyse_pratique"] < practice_min}
    order = [g for g in ("Direction", "Encadrement", "Coordination", "Médiateurs", "Autres postes")
             if g in set(staff["groupe"])]
    rows, sets = [], {}
    for i, (name, members) in enumerate([(g, staff[staff["groupe"] == g]) for g in order] + [("Toute la structure", staff)]):
        row = {"Poste": name, "Effectif": len(members)}
        for column, label in STAFF_MEANS.items():
            known = members[column].dropna()
            row[label] = float(known.mean()) if len(known) else np.nan
            sets[(i, label)] = (frozenset((column, j) for j in known.index),)
        for label, mask in below.items():
            chosen = members.index[mask[members.index]]
            row[label] = len(chosen)
            # The headcount is public, so a count also publishes the people above the benchmark.
            sets[(i, label)] = (frozenset((label, j) for j in chosen),
                                frozenset((label, j) for j in members.index.difference(chosen)))
        rows.append(row)
    frame = pd.DataFrame(rows)
    return Table("personnel", "Personnel par poste", frame, tuple(below), sets=sets)


def contracts_table(staff: pd.DataFrame) -> Table:
    """Posts by type of contract, and all posts (the public headcount, so that the audit sees it)."""
    counts = staff.groupby("contrat").groups
    frame = pd.DataFrame({"Contrat": list(counts), "Postes": [len(v) for v in counts.values()]})
    frame = frame.sort_values("Postes", ascending=False, kind="stable").reset_index(drop=True)
    sets = {(i, "Postes"): (frozenset(("contrat", j) for j in counts[c]),) for i, c in enumerate(frame["Contrat"])}
    sets[(len(frame), "Postes")] = (frozenset(("contrat", j) for j in staff.index),)
    frame.loc[len(frame)] = ["Tous les postes", len(staff)]
    return Table("contrats", "Postes par type de contrat", frame, ("Postes",), sets=sets)


# --- secrecy -------------------------------------------------------------------------------


def publish(tables: dict[str, Table], threshold: int) -> dict[str, Table]:
    """Every table protected together (primary and secondary suppression), then audited (code 21 if a leak remains)."""
    published = cells(tables, {})
    masked = disclosure.protect(published, threshold)
    out = {key: apply_masks(t, masked) for key, t in tables.items()}
    final = set()
    for key, t in out.items():
        rows, columns = np.nonzero(t.masked.to_numpy())
        final |= {(key, int(r), t.frame.columns[c]) for r, c in zip(rows, columns)}
    disclosure.check(published, final | masked, threshold)
    return out


def shown(table: Table, row: int, column: str) -> float | None:
    """A published value: None when masked or missing."""
    if table.is_masked().loc[row, column]:
        return None
    value = table.frame.loc[row, column]
    return None if value is None or text.is_missing(value) else float(value)


# --- findings, plan and training -----------------------------------------------------------


def findings(themes: Table, grid: Grid, groups: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Strengths, gaps and disagreements, from the published theme levels only."""
    names = [grid.groups[g] for g in groups]
    out: dict[str, list[dict[str, Any]]] = {"forces": [], "manques": [], "desaccords": []}
    for i, theme in enumerate(grid.themes):
        level = shown(themes, i, SHARED)
        if level is None:
            continue
        item = {"theme": theme["code"], "libelle": theme["libelle"], "niveau": round(level, 2)}
        if level >= grid.reading["force"]:
            out["forces"].append(item)
        elif level < grid.reading["manque"]:
            out["manques"].append({**item, "priorite": 1 if level < grid.reading["manque_fort"] else 2})
        values = {n: v for n in names if (v := shown(themes, i, n)) is not None}
        if len(values) > 1 and max(values.values()) - min(values.values()) >= grid.reading["desaccord"]:
            high, low = max(values, key=values.get), min(values, key=values.get)
            out["desaccords"].append({**item, "haut": high, "niveau_haut": round(values[high], 2), "bas": low,
                                      "niveau_bas": round(values[low], 2)})
    return out


def action_plan(found: dict[str, list[dict[str, Any]]], grid: Grid, day: dt.date) -> pd.DataFrame:
    """The joint action plan: the grid's actions for each gap, a shared reading for each disagreement."""
    themes = {t["code"]: t for t in grid.themes}
    rows = []
    for gap in found["manques"]:
        for k, a in enumerate(themes[gap["theme"]].get("actions") or [], start=1):
            rows.append({"N°": f"{gap['theme']}-{k}", "theme": gap["theme"], "Thème": gap["libelle"],
                         "Action": a["action"], "Porteur": a["porteur"],
                         "Échéance": add_months(day, int(a["delai_mois"])), "Priorité": gap["priorite"],
                         "Indicateur de réalisation": a["indicateur"], "formation": a.get("formation") or "",
                         "origine": "manque"})
    gaps = {g["theme"] for g in found["manques"]}
    spec = grid.disagreement_action
    for d in found["desaccords"]:
        if d["theme"] in gaps or not spec:
            continue
        rows.append({"N°": f"{d['theme']}-D", "theme": d["theme"], "Thème": d["libelle"],
                     "Action": spec["action"].format(theme=d["libelle"]), "Porteur": spec["porteur"],
                     "Échéance": add_months(day, int(spec["delai_mois"])), "Priorité": 3,
                     "Indicateur de réalisation": spec["indicateur"], "formation": "", "origine": "désaccord"})
    plan = pd.DataFrame(rows, columns=["N°", "theme", "Thème", "Action", "Porteur", "Échéance", "Priorité",
                                       "Indicateur de réalisation", "formation", "origine"])
    order = {t["code"]: i for i, t in enumerate(grid.themes)}
    plan = plan.assign(_o=plan["theme"].map(order)).sort_values(["Priorité", "_o"], kind="stable")
    return plan.drop(columns="_o").reset_index(drop=True).assign(État="à faire", Commentaire="")


def training_needs(plan: pd.DataFrame, staff: Table, grid: Grid) -> pd.DataFrame:
    """Training the plan and the staff table imply: module, hours, for whom, why."""
    modules = module_ids()
    reasons: dict[str, list[str]] = {}
    for module, theme in zip(plan["formation"], plan["Thème"]):
        if module:
            reasons.setdefault(module, []).append(f"manque sur le thème « {theme} »")
    rows = {name: i for i, name in enumerate(staff.frame["Poste"])}
    for column, key, benchmark, what in (
            ("Heures de formation (moyenne)", "formation_manquante", "heures_formation_min", "de formation"),
            ("Heures d'analyse de la pratique (moyenne)", "analyse_manquante", "heures_analyse_pratique_min",
             "d'analyse de la pratique")):
        if "Médiateurs" not in rows or not grid.staff.get(key):
            continue
        mean = shown(staff, rows["Médiateurs"], column)
        minimum = float(grid.staff.get(benchmark, 0))
        if mean is not None and mean < minimum:
            reasons.setdefault(grid.staff[key], []).append(
                f"les médiateurs ont eu en moyenne {text.number(mean, 0 if float(mean).is_integer() else 1)} "
                f"{text.plural(mean, 'heure')} {what} dans l'année, pour un repère "
                f"de {text.number(minimum)} heures")
    out = [{"id": m, "Module": modules[m]["libelle"], "Heures par personne": int(modules[m]["heures"]),
            "Pour": {"mediateurs": "Médiateurs", "coordinateur": "Coordination", "equipe": "Toute l'équipe"}[
                modules[m]["pour"]], "Pourquoi": text.sentence(" ; ".join(why))} for m, why in reasons.items()]
    return pd.DataFrame(out, columns=["id", "Module", "Heures par personne", "Pour", "Pourquoi"])


# --- follow-up -----------------------------------------------------------------------------


def read_previous(folder: str | Path) -> dict[str, Any]:
    """The previous assessment's results (``diagnostic_structure.json`` of its folder), code 11 when absent."""
    path = Path(folder).expanduser().resolve() / f"{STEM}.json"
    if not path.is_file():
        raise MissingFileError("le diagnostic précédent de la structure est introuvable.", path=path,
                               hint="donnez à --precedent le dossier d'un diagnostic de structure déjà produit.")
    return json.loads(path.read_text(encoding="utf-8"))


def plan_states(path: str | Path, known: list[str]) -> pd.DataFrame:
    """The plan as the structure updated it (the spreadsheet or its CSV): number, state and comment of each action."""
    path = Path(path).expanduser().resolve()
    df = read_table(path, "plan d'actions")
    require_columns(df, ["N°", "État"], path, "plan d'actions")
    check_unique(df["N°"], path, "N°")
    states = {fold(s): s for s in STATES} | {fold(s).rstrip("e"): s for s in STATES}
    state = df["État"].map(lambda v: states.get(fold(v), states.get(fold(v).rstrip("e"))) if str(v).strip() else "à faire")
    refuse(state.isna(), f"état d'action inconnu ({', '.join(sorted(set(df.loc[state.isna(), 'État']))[:3])}).", path,
           "État", hint=f"états possibles : {', '.join(STATES)}.")
    refuse(~df["N°"].isin(known), f"action absente du plan précédent ({', '.join(df.loc[~df['N°'].isin(known), 'N°'][:3])}).",
           path, "N°", hint="gardez la colonne « N° » telle que le plan l'a écrite.")
    comment = df["Commentaire"] if "Commentaire" in df.columns else ""
    return pd.DataFrame({"N°": df["N°"], "État": state, "Commentaire": comment})


def progress(previous: dict[str, Any], themes: Table, grid: Grid) -> pd.DataFrame:
    """Each theme's shared level then and now, and the change (published values only)."""
    before = {t["theme"]: t["niveau"] for t in previous.get("themes", [])}
    rows = []
    for i, theme in enumerate(grid.themes):
        now, then = shown(themes, i, SHARED), before.get(theme["code"])
        rows.append({"theme": theme["code"], "Thème": theme["libelle"], "Niveau précédent": then, "Niveau actuel": now,
                     "Évolution": None if now is None or then is None else round(now - then, 2)})
    return pd.DataFrame(rows)


def plan_follow_up(previous: dict[str, Any], states: pd.DataFrame, changes: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """The state of each action of the previous plan at the date of this assessment, beside its theme's change."""
    declared = states.set_index("N°")
    change = changes.set_index("theme")["Évolution"]
    rows = []
    for a in previous.get("plan", []):
        state = declared["État"].get(a["N°"], "à faire")
        due = dt.date.fromisoformat(a["Échéance"])
        if state in ("réalisée", "abandonnée"):
            finding = state.capitalize()
        elif due <= day:
            finding = f"En retard ({state})"
        else:
            finding = state.capitalize()
        delta = change.get(a["theme"])
        rows.append({"N°": a["N°"], "Action": a["Action"], "Échéance": due, "État déclaré": state, "Constat": finding,
                     "Évolution du thème": None if delta is None or text.is_missing(delta) else float(delta)})
    return pd.DataFrame(rows, columns=["N°", "Action", "Échéance", "État déclaré", "Constat", "Évolution du thème"])


# --- the assessment ------------------------------------------------------------------------


@dataclass
class Assessment:
    """Every published table and finding of one shared diagnostic."""

    structure: str
    day: dt.date
    threshold: int
    grid: Grid
    groups: list[str]
    left_out: list[str]
    tables: dict[str, Table]
    found: dict[str, list[dict[str, Any]]]
    plan: pd.DataFrame
    training: pd.DataFrame
    fictional: bool = False
    progress: pd.DataFrame | None = None
    follow_up: pd.DataFrame | None = None
    previous_day: dt.date | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def group_names(self) -> list[str]:
        return [self.grid.groups[g] for g in self.groups]


def assess(answers: pd.DataFrame, staff: pd.DataFrame, grid: Grid, day: dt.date, *, structure: str = "",
           threshold: int | None = None, previous: dict[str, Any] | None = None,
           states: pd.DataFrame | None = None, fictional: bool = False) -> Assessment:
    """The shared diagnostic from loaded answers and staff table; with ``previous``, the follow-up too."""
    threshold = int(threshold or grid.threshold)
    group, groups, left_out = publication_groups(answers, grid, threshold)
    names = [grid.groups[g] for g in groups]
    tables = publish({"criteres": criterion_table(answers, group, groups, grid),
                      "repondants": respondents_table(answers, group, groups, grid),
                      "personnel": staff_table(staff, grid), "contrats": contracts_table(staff)}, threshold)
    tables = {"themes": _with_shared(theme_table(tables["criteres"], grid, names), names),
              **tables, "criteres": _with_shared(tables["criteres"], names)}
    found = findings(tables["themes"], grid, groups)
    plan = action_plan(found, grid, day)
    result = Assessment(structure=structure, day=day, threshold=threshold, grid=grid, groups=groups,
                        left_out=left_out, tables=tables, found=found, plan=plan,
                        training=training_needs(plan, tables["personnel"], grid), fictional=fictional)
    if previous is not None:
        result.previous_day = dt.date.fromisoformat(previous["date"])
        result.progress = progress(previous, tables["themes"], grid)
        known = [a["N°"] for a in previous.get("plan", [])]
        declared = states if states is not None else pd.DataFrame({"N°": known, "État": "à faire", "Commentaire": ""})
        result.follow_up = plan_follow_up(previous, declared, result.progress, day)
    if not groups:
        result.warnings.append(f"Aucun point de vue ne réunit au moins {threshold} réponses : aucun niveau ne peut "
                               "être publié.")
    return result


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{c: _plain(v) for c, v in zip(frame.columns, row)} for row in frame.itertuples(index=False)]


def _published(table: Table) -> list[dict[str, Any]]:
    masked = table.is_masked()
    return [{c: None if masked.loc[i, c] else _plain(table.frame.loc[i, c]) for c in table.frame.columns}
            for i in table.frame.index]


def assessment_json(a: Assessment) -> dict[str, Any]:
    """What ``diagnostic_structure.json`` holds: the published levels, findings and plan (the follow-up reads it)."""
    themes = a.tables["themes"]
    return {
        "type": "diagnostic_structure", "version": __version__, "grille": a.grid.version,
        "structure": a.structure, "date": a.day.isoformat(), "donnees_fictives": a.fictional,
        "secret": {"seuil": a.threshold, "points_de_vue_non_publies": a.left_out},
        "points_de_vue": a.group_names,
        "themes": [{"theme": t["code"], "libelle": t["libelle"], "niveau": shown(themes, i, SHARED),
                    "par_point_de_vue": {n: shown(themes, i, n) for n in a.group_names}}
                   for i, t in enumerate(a.grid.themes)],
        "tableaux": {k: {"titre": t.title, "lignes": _published(t)} for k, t in a.tables.items()},
        "constats": a.found,
        "plan": _records(a.plan.drop(columns=["État", "Commentaire"])),
        "formation": _records(a.training),
        "suivi": None if a.follow_up is None else {
            "date_precedente": a.previous_day.isoformat(), "progression": _records(a.progress),
            "actions": _records(a.follow_up)},
        "avertissements": a.warnings,
    }


def write_outputs(a: Assessment, output_dir: str | Path) -> list[Path]:
    """``diagnostic_structure.json``, and the action plan as an editable spreadsheet and as CSV."""
    folder = Path(output_dir)
    written = [write_atomic(folder / f"{STEM}.json",
                            json.dumps(assessment_json(a), ensure_ascii=False, indent=1) + "\n")]
    plan = a.plan[PLAN_COLUMNS].assign(Échéance=a.plan["Échéance"].map(dt.date.isoformat))
    written.append(write_atomic(folder / f"{PLAN}.csv", plan.to_csv(sep=";", index=False, lineterminator="\n")))
    written.append(write_atomic_bytes(folder / f"{PLAN}.xlsx", plan_workbook(a.plan)))
    return written


def plan_workbook(plan: pd.DataFrame) -> bytes:
    """The action plan as an ``.xlsx`` the structure edits: a state list on « État », readable widths, frozen header."""
    import io

    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    sheet.title = PLAN_SHEET
    sheet.append(PLAN_COLUMNS)
    for row in plan[PLAN_COLUMNS].itertuples(index=False):
        sheet.append([v.isoformat() if isinstance(v, dt.date) else _plain(v) for v in row])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    widths = {"A": 9, "B": 30, "C": 60, "D": 22, "E": 12, "F": 9, "G": 50, "H": 12, "I": 40}
    for column, width in widths.items():
        sheet.column_dimensions[column].width = width
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = "A2"
    states = DataValidation(type="list", formula1='"' + ",".join(STATES) + '"', allow_blank=True)
    states.error, states.errorTitle = f"États possibles : {', '.join(STATES)}.", "État de l'action"
    sheet.add_data_validation(states)
    states.add(f"H2:H{max(2, len(plan) + 1)}")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()

