"""``diagnostic feuille-de-route``: the roadmap notebook, executed with papermill and exported like ``run``.

Reads the commune's ``resultats.json`` and writes ``<output>/<code>/feuille_de_route/``:
``feuille_de_route.html`` (the report), ``feuille_de_route.ipynb`` (the executed notebook),
``feuille_de_route.json`` (the same objects) and ``calendrier.csv``; with ``--pdf``,
``feuille_de_route.pdf``. Parameters are checked before the notebook starts; the notebook
takes the staged path of ``run`` (:func:`diagnostic.pipeline.execution.execute_staged`).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from diagnostic import resources
from diagnostic._fs import output_lock
from diagnostic.analysis.roadmap import FOLDER, STEM, load_rules, read_results, results_path
from diagnostic.options import iso_day
from diagnostic.pipeline.execution import execute_staged

NOTEBOOK = resources.path("notebooks/feuille_de_route.ipynb")
KIND = "Feuille de route du service de médiation"


def cmd_roadmap(args: argparse.Namespace) -> int:
    html = run_roadmap(args.resultats, args.output, decision=args.decision, rules=args.rules, pdf=args.pdf)
    print(f"Feuille de route : {html}")
    if args.pdf:
        print(f"Version imprimable : {html.with_suffix('.pdf')}")
    print(f"Résultats : {html.with_suffix('.json')}")
    return 0


def decision_date(value: str | dt.date | None, today: dt.date | None = None) -> dt.date:
    """The decision month: the date given (AAAA-MM-JJ), else the first day of next month."""
    if value is None or value == "":
        today = today or dt.date.today()
        return dt.date(today.year + today.month // 12, today.month % 12 + 1, 1)
    return iso_day(value, "la date de décision", "2026-03-01")


def run_roadmap(
    resultats: str | Path,
    output: str | Path,
    *,
    decision: str | dt.date | None = None,
    rules: str | Path | None = None,
    pdf: bool = False,
) -> Path:
    """Check the inputs, execute the notebook into ``output/<code>/feuille_de_route/`` and export the HTML."""
    path = results_path(resultats)
    saved = read_results(path)
    rules_path = Path(rules).expanduser().resolve() if rules else None
    load_rules(rules_path)  # refused before anything is written
    day = decision_date(decision)
    code = str(saved["commune"]["code"])
    output = Path(output).expanduser().resolve()
    parameters = {"resultats": str(path), "decision": day.isoformat(),
                  "rules": str(rules_path) if rules_path else None}
    with output_lock(output):
        execute_staged(
            NOTEBOOK, output, f"{code}/{FOLDER}", parameters,
            executed=f"{STEM}.ipynb", page=f"{STEM}.html",
            export={
                "title": f"Feuille de route du service de médiation — {saved['commune']['nom']}",
                "subtitle": "De la décision à la première évaluation",
                "kind": KIND,
                "fictional": bool(saved.get("donnees_fictives")),
                "place": str(saved["commune"]["nom"]),
            },
            pdf=pdf,
        )
    return output / code / FOLDER / f"{STEM}.html"
