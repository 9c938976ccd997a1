"""What the roadmap shows: the calendar as a table and a Gantt chart, profiles, training, conventions, targets.

Everything here reads a :class:`~diagnostic.analysis.roadmap.Roadmap` and only formats it.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from diagnostic import text
from diagnostic.analysis.roadmap import Roadmap, add_months, month_label, window_label

ACCENT, MILESTONE = "#174a7c", "#b3541e"


def key_figures(r: Roadmap) -> list[tuple[str, str]]:
    """The roadmap at a glance: team, start on the ground, first evaluation."""
    last = r.calendar.iloc[-1]
    return [
        (text.number(r.team), text.plural(r.team, "poste de l'équipe", "postes de l'équipe")),
        (month_label(r.start).capitalize() if r.team else "—", "démarrage sur le terrain"),
        (month_label(last["debut"]).capitalize(), "première évaluation"),
        (text.number(int(r.training["heures_total"].sum())), "heures de formation la première année"),
    ]


def summary(r: Roadmap) -> str:
    """One paragraph: what the diagnostic decided, that this roadmap follows."""
    if not r.team:
        return (f"Le diagnostic de {r.commune} ne justifie pas d'équipe de médiation pour l'instant ; "
                "les étapes ci-dessous restent celles d'un service à construire si la situation change.")
    team = text.count(r.mediators, "médiateur") + (" et un coordinateur" if r.coordinator else "")
    return (f"Le diagnostic de {r.commune} recommande une équipe de {team} pour {text.join(r.territories)}, "
            f"{r.hours}, auprès d'abord {text.de(r.publics)}. La décision est prise en {month_label(r.decision)} : "
            f"l'équipe commence sur le terrain en {month_label(r.start)} et la première évaluation a lieu douze mois "
            f"plus tard." + "".join(f" {text.sentence(x)}" for x in (r.funding, r.governance) if x)
            + "".join(_joint_sentence(r.commune, j) for j in r.joint))


def _joint_sentence(commune: str, joint: dict) -> str:
    """The commune's share of a joint intercommunal service, which its own roadmap does not staff."""
    return (f" {commune} participe aussi au service commun du quartier intercommunal {joint['nom']} "
            f"({text.count(joint['equipe']['taille'], 'médiateur')}, porté par {joint['porteur']['libelle']}), "
            f"pour une part de {text.number(joint['part_equipe'], 1)} médiateur : ses étapes se décident avec "
            "les autres communes du quartier.")


def calendar_table(r: Roadmap) -> pd.DataFrame:
    """The calendar as French text: step, who, from, to (end month included), usual window."""
    c = r.calendar
    return pd.DataFrame({
        "Étape": c["etape"], "Qui": c["qui"],
        "Début": c["debut"].map(month_label),
        "Fin": [month_label(add_months(end, -1)) for end in c["fin"]],
        "Fenêtre habituelle": c["fenetre"].map(window_label).replace("", "—"),
        "En pratique": c["detail"],
    })


def gantt(r: Roadmap) -> tuple[Figure, str]:
    """A Gantt-style chart of the calendar (months on the axis), with its alt text."""
    c = r.calendar
    fig = Figure(figsize=(9, 0.45 * len(c) + 1.2))
    ax = fig.subplots()
    for i, row in enumerate(c.itertuples(index=False)):
        colour = MILESTONE if row.jalon or row.id in ("bilan", "evaluation") else ACCENT
        ax.barh(i, row.duree, left=row.mois, color=colour, height=0.6)
    ax.set_yticks(range(len(c)), [_short(s) for s in c["etape"]])
    ax.invert_yaxis()
    end = int((c["mois"] + c["duree"]).max())
    ticks = list(range(0, end + 1, 3))
    start = r.calendar["debut"].iloc[0]
    ax.set_xticks(ticks, [month_label(add_months(start, m)).replace(" ", "\n") for m in ticks], fontsize=8)
    ax.set_xlim(0, end)
    ax.grid(axis="x", color="#dddddd")
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    alt = (f"Calendrier en {text.count(len(c), 'étape')}, de {month_label(start)} à "
           f"{month_label(add_months(start, end - 1))} : " + " ; ".join(
               f"{s} de {month_label(d)} à {month_label(add_months(f, -1))}"
               for s, d, f in zip(c["etape"], c["debut"], c["fin"])) + ". Le même calendrier est donné en tableau.")
    return fig, alt


def _short(label: str, width: int = 42) -> str:
    return label if len(label) <= width else label[: width - 1].rstrip() + "…"


def profile_markdown(profile: dict) -> str:
    """One job profile as Markdown (escaped when rendered)."""
    lines = [f"### {profile['intitule']} — {text.count(profile['postes'], 'poste')}", "",
             f"**Mission.** {profile['mission']}", ""]
    if profile["domaines"]:
        lines += [f"**Domaines d'intervention, par ordre de priorité.** {text.join(text.quoted(profile['domaines']))}.", ""]
    if profile.get("part_terrain"):
        lines += [(f"**Temps sur le terrain.** Environ {text.percent(profile['part_terrain'], 0)} du temps avec "
                  "l'équipe."), ""]
    lines += ["**Activités.**", ""] + [f"- {a}" for a in profile["activites"]] + [""]
    lines += [f"**Qualifications.** {profile['qualifications']}", "", f"**Contrat.** {profile['contrat']}", ""]
    if profile.get("adulte_relais"):
        lines += [f"**Postes adultes-relais.** {profile['adulte_relais']}", ""]
    return "\n".join(lines)


def training_table(r: Roadmap) -> pd.DataFrame:
    t = r.training
    return pd.DataFrame({"Module": t["module"], "Pour": t["pour"], "Quand": t["quand"],
                         "Heures par personne": t["heures"], "Personnes": t["personnes"],
                         "Heures au total": t["heures_total"]})


def conventions_table(r: Roadmap) -> pd.DataFrame:
    c = r.conventions
    return pd.DataFrame({"Avec": c["partenaires"], "Objet": c["objet"], "Ce que montre le diagnostic": c["pourquoi"],
                         "À signer d'ici": c["echeance"].map(month_label)})


def targets_table(r: Roadmap) -> pd.DataFrame:
    t = r.indicators

    def target(sign: str, value) -> str:
        if text.is_missing(value):
            return "sans cible la première année"
        return f"{sign} {text.number(value, 0 if float(value).is_integer() else 1)}"

    return pd.DataFrame({"Dimension": t["Dimension"], "Indicateur": t["Indicateur"],
                         "Cible à 12 mois": [target(s, v) for s, v in zip(t["sens"], t["cible"])],
                         "Fondement": t["Fondement"]})
