"""``diagnostic evaluate``: the evaluation notebook, executed with papermill and exported to HTML.

Results go to ``<output>/<code commune>/evaluation/``: ``evaluation.html``
(the report), ``evaluation.ipynb`` (the executed notebook, to check or rerun)
and ``evaluation.json`` (the same figures, machine-readable); the internal mode
writes ``evaluation_interne.*`` beside them. Every parameter is checked before
the notebook starts, so a typo fails in a second with a French message rather
than inside the notebook. The notebook then takes the staged path of
``diagnostic run`` (:func:`diagnostic.pipeline.execution.execute_staged`): a failure
leaves the previous evaluation as it was and keeps the failed notebook in
``<output>/_echecs/<code>/evaluation/`` (code 30).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from diagnostic import resources, text
from diagnostic._fs import output_lock
from diagnostic.analysis.evaluation import (
    DEFAULT_THRESHOLD,
    FOLDER,
    MODES,
    PUBLICATIONS,
    STEMS,
    Period,
    check_threshold,
    commune_log,
    other_editions,
)
from diagnostic.errors import CatalogError, ParameterError
from diagnostic.io.catalog import load_catalog
from diagnostic.pipeline.execution import execute_staged
from diagnostic.report.pdf import chromium_path

NOTEBOOK = resources.path("notebooks/evaluation.ipynb")
KIND = "Évaluation de l'activité de médiation"


def cmd_evaluate(args: argparse.Namespace) -> int:
    html = run_evaluation(
        args.catalog, args.commune, args.date_from, args.date_to, args.output,
        mode=args.mode, threshold=args.threshold, operator=args.operator, data_dir=args.data_dir, pdf=args.pdf,
    )
    print(f"Rapport d'évaluation : {html}")
    if args.pdf:
        print(f"Rapport imprimable : {html.with_suffix('.pdf')}")
    print(f"Résultats : {html.with_suffix('.json')}")
    return 0


def run_evaluation(
    catalog: str | Path,
    commune: str,
    date_from: str,
    date_to: str,
    output: str | Path,
    *,
    mode: str = "publication",
    threshold: int = DEFAULT_THRESHOLD,
    operator: str = "",
    data_dir: str | Path | None = None,
    pdf: bool = False,
) -> Path:
    """Check the parameters, execute the notebook into ``output/<code>/evaluation/`` and export the HTML."""
    from diagnostic.io.territory import load_territory

    if mode not in MODES:
        raise ParameterError(f"mode « {mode} » inconnu.", hint=f"modes possibles : {', '.join(MODES)}.")
    check_threshold(mode, threshold)
    period = Period.parse(date_from, date_to)
    cat = load_catalog(catalog, data_dir)
    if cat.get("activity") is None:
        raise CatalogError(
            "ce catalogue n'a pas de journal d'activité (rôle « activity »).",
            path=cat.path,
            hint="ajoutez une source « activity: » (modèle : templates/journal_activite_modele.csv).",
        )
    if pdf:
        chromium_path()  # a wrong DIAGNOSTIC_CHROMIUM is refused before any work
    data = load_territory(cat)
    row = data.commune(commune)
    code = row["insee_com"]
    commune_log(data, code, operator)  # an unknown operator is refused now (code 22), not inside the notebook
    output = Path(output).expanduser().resolve()
    stem = STEMS[mode]
    edition = "document interne" if mode == "interne" else "version publiable"
    parameters = {
        "catalog": str(cat.path), "commune": code, "operator": operator or "",
        "date_from": period.start.isoformat(), "date_to": period.end.isoformat(),
        "mode": mode, "threshold": int(threshold), "data_dir": str(data_dir) if data_dir else None,
        "history": str(output / code / FOLDER / PUBLICATIONS),  # earlier publications, read before the folder is replaced
    }
    with output_lock(output):
        execute_staged(
            NOTEBOOK, output, f"{code}/{FOLDER}", parameters,
            executed=f"{stem}.ipynb",
            page=f"{stem}.html",
            export={
                "title": f"Évaluation de la médiation sociale — {row['lib_com']}",
                "subtitle": f"{period.label().capitalize()}{f' — {operator}' if operator else ''} ({edition})",
                "kind": KIND,
                "vintages": text.without_file_names(cat.get("activity").citation()),  # for a reader
                "fictional": cat.fictional,
                "internal": mode == "interne",
                "place": str(row["lib_com"]),
            },
            pdf=pdf,
            keep=[*other_editions(mode), PUBLICATIONS],
        )
    return output / code / FOLDER / f"{stem}.html"
