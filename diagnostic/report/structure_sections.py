"""What the shared diagnostic of a structure shows: levels, findings, plan, training, follow-up, in French.

Everything here reads an :class:`~diagnostic.analysis.structure.Assessment` (already protected)
and only formats it; masked values read « masqué ».
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from diagnostic import text
from diagnostic.analysis.evaluation import MASKED, Table
from diagnostic.analysis.roadmap import month_label
from diagnostic.analysis.structure import GAP, SHARED, Assessment, shown

COLOURS = ("#174a7c", "#b3541e", "#4d8b31", "#7a4b94", "#8c6d1f")


def _level(value, digits: int = 1) -> str:
    return "—" if value is None or text.is_missing(value) else text.number(value, digits)


def level_display(table: Table, a: Assessment) -> pd.DataFrame:
    """A level table as French text: « 2,4 (Amorcé) », « masqué », « — » when no one answered."""
    masked = table.is_masked()
    out = {}
    for column in table.frame.columns:
        if column in (SHARED, GAP, *a.group_names):
            cells = []
            for i, value in enumerate(table.frame[column]):
                if masked.loc[i, column]:
                    cells.append(MASKED)
                elif value is None or text.is_missing(value):
                    cells.append("—")
                elif column == GAP:
                    cells.append(text.number(value, 1))
                else:
                    cells.append(f"{text.number(value, 1)} ({a.grid.label(value).lower()})")
            out[column] = cells
        else:
            out[column] = list(table.frame[column])
    return pd.DataFrame(out)


def key_figures(a: Assessment) -> list[tuple[str, str]]:
    answers = a.tables["repondants"].frame["Réponses"]
    return [
        (text.number(int(answers.sum())), "réponses publiées"),
        (text.number(len(a.found["forces"])), text.plural(len(a.found["forces"]), "point fort", "points forts")),
        (text.number(len(a.found["manques"])), text.plural(len(a.found["manques"]), "thème à renforcer",
                                                           "thèmes à renforcer")),
        (text.number(len(a.plan)), text.plural(len(a.plan), "action au plan", "actions au plan")),
    ]


def intro(a: Assessment) -> str:
    counts = a.tables["repondants"].frame
    who = ", ".join(f"{n.lower()} {text.number(v)}" for n, v in zip(counts["Point de vue"], counts["Réponses"]))
    structure = a.structure or "la structure"
    return (f"Autodiagnostic de {structure} réalisé en {month_label(a.day)} à partir de "
            f"{text.count(int(counts['Réponses'].sum()), 'réponse')} ({who}). "
            f"Chaque critère est noté de {min(a.grid.levels)} ({a.grid.levels[min(a.grid.levels)].lower()}) à "
            f"{max(a.grid.levels)} ({a.grid.levels[max(a.grid.levels)].lower()}) ; le niveau partagé est la moyenne des "
            "points de vue, chacun comptant autant quel que soit son nombre de réponses.")


def scale_table(a: Assessment) -> pd.DataFrame:
    return pd.DataFrame({"Niveau": list(a.grid.levels), "Libellé": list(a.grid.levels.values()),
                         "Ce que cela veut dire": [text.sentence(a.grid.descriptions[k]) for k in a.grid.levels]})


def theme_chart(a: Assessment) -> tuple[Figure, str]:
    """Horizontal bars: each theme's level per published viewpoint (masked levels left out), with alt text."""
    table = a.tables["themes"]
    names = a.group_names
    fig = Figure(figsize=(8, 0.5 * len(table.frame) + 1.4))
    ax = fig.subplots()
    height = 0.8 / max(1, len(names))
    for k, name in enumerate(names):
        values = [shown(table, i, name) for i in table.frame.index]
        ax.barh(np.arange(len(values)) + k * height, [v or 0 for v in values], height=height,
                color=COLOURS[k % len(COLOURS)], label=name)
    ax.set_yticks(np.arange(len(table.frame)) + height * (len(names) - 1) / 2, list(table.frame["Thème"]))
    ax.invert_yaxis()
    ax.set_xlim(0, max(a.grid.levels))
    ax.set_xticks(list(a.grid.levels), [f"{k}\n{v}" for k, v in a.grid.levels.items()], fontsize=8)
    ax.grid(axis="x", color="#dddddd")
    ax.set_axisbelow(True)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=max(1, len(names)), fontsize=8, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    parts = []
    for i, theme in enumerate(table.frame["Thème"]):
        values = [f"{n.lower()} {_level(shown(table, i, n))}" for n in names if shown(table, i, n) is not None]
        parts.append(f"{theme} : {text.join(values) if values else 'non publié'}")
    alt = ("Niveau de chaque thème par point de vue, sur une échelle de 1 à 4 : " + " ; ".join(parts)
           + ". Les mêmes niveaux sont donnés dans le tableau qui suit.")
    return fig, alt


def findings_markdown(a: Assessment) -> str:
    """Strengths, gaps and disagreements as short Markdown lists."""
    f = a.found
    lines = ["### Points forts", ""]
    lines += [f"- {x['libelle']} : {_level(x['niveau'])} ({a.grid.label(x['niveau']).lower()})." for x in f["forces"]] or [
        "- Aucun thème n'atteint encore le niveau « en place » pour tous les points de vue réunis."]
    lines += ["", "### Thèmes à renforcer", ""]
    lines += [f"- {x['libelle']} : {_level(x['niveau'])} ({a.grid.label(x['niveau']).lower()}), priorité "
              f"{x['priorite']}." for x in f["manques"]] or ["- Aucun thème sous le niveau attendu."]
    lines += ["", "### Là où les points de vue divergent", ""]
    lines += [f"- {x['libelle']} : {x['haut'].lower()} le situent à {_level(x['niveau_haut'])}, {x['bas'].lower()} à "
              f"{_level(x['niveau_bas'])}. Ce décalage est à discuter ensemble." for x in f["desaccords"]] or [
        "- Les points de vue concordent sur tous les thèmes."]
    return "\n".join(lines)


def plan_display(a: Assessment) -> pd.DataFrame:
    p = a.plan
    return pd.DataFrame({"N°": p["N°"], "Thème": p["Thème"], "Action": p["Action"], "Porteur": p["Porteur"],
                         "Échéance": p["Échéance"].map(month_label), "Priorité": p["Priorité"],
                         "Indicateur de réalisation": p["Indicateur de réalisation"]})


def training_display(a: Assessment) -> pd.DataFrame:
    return a.training.drop(columns="id")


def staff_display(table: Table) -> pd.DataFrame:
    """The staff tables as French text (« masqué » where a small group would show)."""
    masked = table.is_masked()
    out = {}
    for column in table.frame.columns:
        cells = []
        for i, value in enumerate(table.frame[column]):
            if masked.loc[i, column]:
                cells.append(MASKED)
            elif isinstance(value, str):
                cells.append(value)
            elif value is None or text.is_missing(value):
                cells.append("—")
            else:
                cells.append(text.number(value, 0 if float(value).is_integer() else 1))
        out[column] = cells
    return pd.DataFrame(out)


def progress_display(a: Assessment) -> pd.DataFrame:
    p = a.progress

    def change(v) -> str:
        if v is None or text.is_missing(v):
            return "—"
        return ("+" if v > 0 else "") + text.number(v, 1)

    return pd.DataFrame({"Thème": p["Thème"], month_label(a.previous_day).capitalize(): p["Niveau précédent"].map(_level),
                         month_label(a.day).capitalize(): p["Niveau actuel"].map(_level),
                         "Évolution": p["Évolution"].map(change)})


def follow_up_display(a: Assessment) -> pd.DataFrame:
    f = a.follow_up
    return pd.DataFrame({"N°": f["N°"], "Action": f["Action"], "Échéance": f["Échéance"].map(month_label),
                         "État": f["Constat"],
                         "Évolution du thème": f["Évolution du thème"].map(
                             lambda v: "—" if v is None or text.is_missing(v) else ("+" if v > 0 else "") + text.number(v, 1))})


def follow_up_summary(a: Assessment) -> str:
    f, p = a.follow_up, a.progress
    done = int((f["État déclaré"] == "réalisée").sum())
    late = int(f["Constat"].str.startswith("En retard").sum())
    up = int((p["Évolution"].fillna(0) > 0).sum())
    return (f"Depuis le diagnostic de {month_label(a.previous_day)}, sur les {text.count(len(f), 'action')} du plan, "
            f"{text.number(done)} {'est réalisée' if done < 2 else 'sont réalisées'} et {text.number(late)} "
            f"{'est en retard' if late < 2 else 'sont en retard'} ; {text.number(up)} thème{'s' if up > 1 else ''} sur "
            f"{text.number(len(p))} {'progresse' if up < 2 else 'progressent'}.")


def confidentiality_note(a: Assessment) -> str:
    note = (f"Les réponses ne sont publiées que par groupes d'au moins {a.threshold} personnes ; un point de vue qui "
            "compte moins de réponses est réuni à un autre (la direction et l'encadrement ensemble), et tout niveau "
            "qui permettrait de retrouver les réponses d'un groupe plus petit est masqué. Aucun nom n'est recueilli.")
    if a.left_out:
        note += (f" Trop peu de réponses pour être publiées : {text.join(text.quoted(a.left_out))} ; ces réponses "
                 "n'entrent dans aucun niveau.")
    return note
