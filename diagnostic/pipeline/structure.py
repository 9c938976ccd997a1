"""``diagnostic structure``: the shared diagnostic of a mediation structure, a notebook run like ``evaluate``.

Writes into ``--output`` (the folder of this assessment): ``diagnostic_structure.html`` (the
report), ``diagnostic_structure.ipynb`` (the executed notebook), ``diagnostic_structure.json``
(the published levels, findings and plan, which the next assessment reads), the joint action
plan as ``plan_actions.xlsx`` (editable) and ``plan_actions.csv``; with ``--pdf``,
``diagnostic_structure.pdf``. Every input is read and checked before the notebook starts
(unknown criterion or level outside the scale: code 15; a name in the staff table or the
answers: code 21), so a bad file publishes nothing; the notebook then takes the staged path
of ``run`` (:func:`diagnostic.pipeline.execution.execute_staged`).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from diagnostic import resources
from diagnostic._fs import output_lock
from diagnostic.analysis.evaluation import MIN_THRESHOLD
from diagnostic.analysis.structure import (
    PLAN,
    STEM,
    Assessment,
    assess,
    load_grid,
    plan_states,
    read_previous,
)
from diagnostic.errors import MissingFileError, ParameterError
from diagnostic.io.sources.assessment import read_answers, read_staff
from diagnostic.options import iso_day
from diagnostic.pipeline.execution import execute_staged

NOTEBOOK = resources.path("notebooks/diagnostic_structure.ipynb")
KIND = "Diagnostic partagé du dispositif de médiation"


def cmd_structure(args: argparse.Namespace) -> int:
    html = run_structure(args.reponses, args.personnel, args.output, grid=args.grille, previous=args.precedent,
                         follow_up=args.suivi, structure=args.nom, day=args.date, threshold=args.seuil,
                         fictional=args.fictif, pdf=args.pdf)
    print(f"Diagnostic partagé : {html}")
    if args.pdf:
        print(f"Version imprimable : {html.with_suffix('.pdf')}")
    print(f"Plan d'actions : {html.parent / (PLAN + '.xlsx')} (et {PLAN}.csv)")
    return 0


def assessment_day(value: str | dt.date | None) -> dt.date:
    """The assessment's date (AAAA-MM-JJ), today by default."""
    if value is None or value == "":
        return dt.date.today()
    return iso_day(value, "la date", "2025-11-15")


def _resolved(path: str | Path | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else None


def run_structure(
    answers: list[str | Path],
    staff: str | Path,
    output: str | Path,
    *,
    grid: str | Path | None = None,
    previous: str | Path | None = None,
    follow_up: str | Path | None = None,
    structure: str = "",
    day: str | dt.date | None = None,
    threshold: int | None = None,
    fictional: bool = False,
    pdf: bool = False,
) -> Path:
    """Check every input, then execute the notebook into ``output`` and export the HTML; the report's path."""
    assessment = build_assessment(answers, staff, grid=grid, previous=previous, follow_up=follow_up,
                                  structure=structure, day=day, threshold=threshold, fictional=fictional)
    output = Path(output).expanduser().resolve()
    if output.exists() and not output.is_dir():
        raise ParameterError("--output désigne un fichier, pas un dossier.", path=output)
    parameters = {
        "reponses": [str(Path(p).expanduser().resolve()) for p in answers], "personnel": _resolved(staff),
        "grille": _resolved(grid), "precedent": _resolved(previous),
        "suivi": _resolved(follow_up or (_previous_plan(Path(previous)) if previous else None)),
        "structure": structure or "", "date": assessment.day.isoformat(), "seuil": assessment.threshold,
        "fictif": bool(fictional),
    }
    title = f"Diagnostic partagé du dispositif de médiation{f' — {structure}' if structure else ''}"
    with output_lock(output.parent):
        execute_staged(
            NOTEBOOK, output.parent, output.name, parameters,
            executed=f"{STEM}.ipynb", page=f"{STEM}.html",
            export={"title": title, "subtitle": "Autodiagnostic partagé, plan d'actions et suivi", "kind": KIND,
                    "fictional": bool(fictional), "place": structure or title},
            pdf=pdf,
        )
    return output / f"{STEM}.html"


def build_assessment(
    answers: list[str | Path],
    staff: str | Path,
    *,
    grid: str | Path | None = None,
    previous: str | Path | None = None,
    follow_up: str | Path | None = None,
    structure: str = "",
    day: str | dt.date | None = None,
    threshold: int | None = None,
    fictional: bool = False,
) -> Assessment:
    """Read and check every input (grid, answers, staff table, previous assessment and its plan), then assess."""
    loaded = load_grid(grid)
    threshold = int(threshold or loaded.threshold)
    if threshold < MIN_THRESHOLD:
        raise ParameterError(f"le seuil {threshold} publierait les réponses de groupes de moins de {MIN_THRESHOLD} "
                             "personnes.", hint=f"donnez à --seuil au moins {MIN_THRESHOLD} (défaut de la grille : "
                                                f"{loaded.threshold}).")
    when = assessment_day(day)
    frame = read_answers(answers, loaded.codes, loaded.levels, loaded.no_answer, loaded.viewpoints)
    people = read_staff(staff)
    before, states = None, None
    if previous:
        before = read_previous(previous)
        plan = follow_up or _previous_plan(Path(previous))
        states = plan_states(plan, [a["N°"] for a in before.get("plan", [])])
    elif follow_up:
        raise ParameterError("--suivi demande --precedent (le dossier du diagnostic dont le plan est suivi).")
    return assess(frame, people, loaded, when, structure=structure, threshold=threshold, previous=before,
                  states=states, fictional=fictional)


def _previous_plan(folder: Path) -> Path:
    """The previous assessment's plan as the structure updated it: the spreadsheet, else its CSV."""
    for name in (f"{PLAN}.xlsx", f"{PLAN}.csv"):
        if (folder / name).is_file():
            return folder / name
    raise MissingFileError("le plan d'actions du diagnostic précédent est introuvable.", path=folder / f"{PLAN}.xlsx",
                           hint="donnez le plan mis à jour par la structure avec --suivi.")
