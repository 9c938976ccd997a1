"""The ``diagnostic`` command line (also ``python -m diagnostic``).

Each subcommand is a thin call into the library. Errors are printed in French
with the file, column or row at fault, and each error class has its own exit
code (see :mod:`diagnostic.errors`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from diagnostic import __version__, text
from diagnostic.errors import DiagnosticError
from diagnostic.io.catalog import ALLOW_OUTSIDE_ENV
from diagnostic.options import (
    BAND_M,
    DEFAULT_THRESHOLD,
    EVALUATION_MODES,
    INDICATOR,
    WORKER_TIMEOUT_S,
)


def _lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """A command that imports its module only when it runs, so that ``--help`` and ``--version`` stay instant."""

    def command(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), name)(args)

    return command


def _add_catalog(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", required=True, help="catalogue YAML des données (ex. data/demo/catalogue.yaml)")
    parser.add_argument(
        "--data-dir",
        default=None,
        help="dossier des données des catalogues « data_dir » (sinon DIAGNOSTIC_DATA, sinon ../shared/data/real)",
    )
    add_allow_outside(parser)


def add_allow_outside(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-outside", action="store_true",
                        help="lire aussi des fichiers hors du dossier du catalogue et du dossier de données")


def cmd_data_check(args: argparse.Namespace) -> int:
    from diagnostic.io.territory import load_territory

    data = load_territory(args.catalog, args.data_dir)
    cat = data.catalog
    print(f"Catalogue : {cat.name}{' — DONNÉES FICTIVES' if cat.fictional else ''}")
    print(f"Fichier : {cat.path}")
    print()
    print(f"{'Source':<45} {'lues':>8} {'gardées':>8}  {'millésime':<12} fichier")
    by_file = {(v.role, v.path): v for items in cat.sources.values() for s in items for v in (s, *s.earlier)}
    # Loaders run in dependency order, not catalogue order: pair each report with its own source.
    sources = [by_file.get((r.role, r.path)) for r in data.reports]
    for report, src in zip(data.reports, sources):
        label, vintage = (src.label, src.vintage) if src else (report.role, None)
        print(f"{label:<45} {report.rows_read:>8} {report.rows_kept:>8}  {vintage or '—':<12} {report.path.name}")
    print()
    print(f"Communes : {len(data.communes)} ; dont avec QPV : {int((data.communes['qpv_count'] > 0).sum())}")
    gens = data.qpv["generation"].value_counts().to_dict()
    print(f"QPV : {len(data.qpv)}" + (f" (génération {', '.join(f'{g} : {n}' for g, n in sorted(gens.items()))})" if gens else ""))
    print(f"Services géolocalisés : {len(data.services)}")
    print("Système de coordonnées de calcul : EPSG:2154 (Lambert-93)")
    warnings = [(src.label if src else report.role, w) for report, src in zip(data.reports, sources) for w in report.warnings]
    print()
    if warnings:
        print(f"Avertissements ({len(warnings)}) :")
        for label, w in warnings:
            print(f"  - [{label}] {w}")
    else:
        print("Aucun avertissement.")
    print("\nContrôle réussi : toutes les sources sont lisibles et cohérentes.")
    return 0


def cmd_territories(args: argparse.Namespace) -> int:
    from diagnostic.io.territory import load_territory

    data = load_territory(args.catalog, args.data_dir)
    table = data.communes.sort_values(["qpv_count", "population"], ascending=False)
    if args.with_qpv:
        table = table[table["qpv_count"] > 0]
    print(f"{'code':<7} {'commune':<40} {'QPV':>4} {'population':>11}")
    for row in table.itertuples():
        pop = text.number(row.population, missing="—")
        print(f"{row.insee_com:<7} {row.lib_com[:40]:<40} {row.qpv_count:>4} {pop:>11}")
    print(f"\n{text.count(len(table), 'commune')}.")
    return 0


def _domains(value: str | None) -> list[str] | None:
    return [d.strip() for d in value.split(",") if d.strip()] if value else None


def check_options(args: argparse.Namespace) -> None:
    """Refuse (code 22) option values a command would otherwise replace by its default without a word."""
    from diagnostic.errors import ParameterError

    domains = getattr(args, "domains", None)
    if domains is not None and not _domains(domains):
        raise ParameterError("--domains est vide : aucun domaine retenu.",
                             hint="nommez au moins un domaine (ex. --domains espace_public,habitat), ou retirez "
                             "l'option pour les retenir tous.")


def _qpv_codes(value: str | None) -> list[str] | None:
    """QPV codes typed « qn09901a, QN09903C »: upper-cased, as the QPV files write them."""
    return [c.strip().upper() for c in value.split(",") if c.strip()] if value else None


def cmd_run(args: argparse.Namespace) -> int:
    from diagnostic.pipeline.run import run_commune

    result = run_commune(
        args.catalog, args.commune, args.output, data_dir=args.data_dir, band_m=args.band_m,
        domains=_domains(args.domains), needs_rules=args.needs_rules, reco_rules=args.reco_rules,
        indicator=args.indicator, tiles=args.tiles, qpv_codes=_qpv_codes(args.qpv), pdf=args.pdf,
    )
    print(f"Diagnostic de la commune {result.code} produit en {result.seconds:.1f} s.")
    print(f"Rapport : {result.folder / 'rapport.html'}")
    if args.pdf:
        print(f"Rapport imprimable : {result.folder / 'rapport.pdf'}")
    print(f"Fichiers : {', '.join(result.files)}")
    return 0


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, help="dossier de sortie (un sous-dossier par commune)")
    parser.add_argument("--band-m", type=float, default=BAND_M,
                        help=f"largeur de la bande autour des QPV, en mètres ({BAND_M:.0f})")
    parser.add_argument("--domains", default=None, help="domaines retenus, séparés par des virgules (tous par défaut)")
    parser.add_argument("--needs-rules", default=None, help="règles des besoins (diagnostic/resources/rules/besoins.yaml par défaut)")
    parser.add_argument("--reco-rules", default=None, help="règles des préconisations (diagnostic/resources/rules/recommandations.yaml)")
    parser.add_argument("--indicator", default=INDICATOR, help=f"indicateur de la carte ({INDICATOR} par défaut)")
    parser.add_argument("--tiles", action="store_true", help="ajouter le fond OpenStreetMap (nécessite Internet à la lecture)")


def cmd_demo_data(args: argparse.Namespace) -> int:
    from diagnostic.demo import DEMO_DIR, write_demo

    dest = Path(args.dest) if args.dest else DEMO_DIR
    files = write_demo(dest)
    print(f"{len(files)} fichiers fictifs écrits dans {dest}.")
    return 0


def _add_batch(subparsers: argparse._SubParsersAction) -> None:
    """Register ``diagnostic batch`` on the CLI's subcommands."""
    parser = subparsers.add_parser("batch", help="produire les diagnostics de toutes les communes d'une région (Dask)")
    _add_catalog(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--department", default=None, help="seulement les communes à QPV de ce département (ex. 31)")
    which.add_argument("--communes", default=None, help="codes INSEE séparés par des virgules (avec ou sans QPV)")
    which.add_argument("--all", action="store_true", help="toutes les communes du catalogue, même sans QPV")
    _add_run_options(parser)
    parser.add_argument("--scheduler", default=None, help="adresse d'un ordonnanceur Dask existant (ex. tcp://hote:8786)")
    parser.add_argument("--workers", type=int, default=None, help="nombre de processus du cluster local (un par cœur)")
    parser.add_argument("--dashboard", action="store_true",
                        help="ouvrir le tableau de bord Dask du cluster local (http://127.0.0.1:8787, cette machine seulement)")
    parser.add_argument("--worker-timeout", type=float, default=WORKER_TIMEOUT_S, metavar="S",
                        help=f"arrêter le lot si aucun processus Dask n'est en vie pendant S secondes ({WORKER_TIMEOUT_S:.0f})")
    parser.add_argument("--force", action="store_true", help="refaire toutes les communes, même inchangées")
    parser.add_argument("--keep-parameters", action="store_true",
                        help="reprendre pour chaque commune les paramètres de son parametres.json "
                        "(ceux d'un export de l'explorateur, par exemple)")
    parser.add_argument("--quiet", action="store_true", help="sans barre de progression : seulement le bilan et les erreurs (cron)")
    parser.add_argument("--pdf", action="store_true", help="écrire aussi rapport.pdf à côté de chaque rapport")
    parser.set_defaults(func=_lazy("diagnostic.pipeline.batch", "cmd_batch"))
def _add_evaluate(subparsers: argparse._SubParsersAction) -> None:
    """Register ``evaluate`` on the CLI's subparsers; its ``func(args)`` returns an exit code."""
    parser = subparsers.add_parser(
        "evaluate",
        help="évaluer l'activité d'un service de médiation sur une période (rapport HTML, evaluation.json)",
        description="Exécute diagnostic/resources/notebooks/evaluation.ipynb pour une commune et une période, puis exporte le "
        "rapport HTML dans DOSSIER/<code>/evaluation/.",
    )
    parser.add_argument("--catalog", required=True, help="catalogue YAML des données, avec un journal « activity »")
    parser.add_argument("--data-dir", default=None, help="dossier des données des catalogues « data_dir »")
    parser.add_argument("--allow-outside", action="store_true",
                        help="lire aussi des fichiers hors du dossier du catalogue et du dossier de données")
    parser.add_argument("--commune", required=True, help="code INSEE de la commune (ex. 99101)")
    parser.add_argument("--from", dest="date_from", required=True, metavar="AAAA-MM-JJ", help="début de la période")
    parser.add_argument("--to", dest="date_to", required=True, metavar="AAAA-MM-JJ", help="fin de la période (incluse)")
    parser.add_argument("--output", required=True, metavar="DOSSIER", help="dossier des résultats (ex. outputs)")
    parser.add_argument("--mode", choices=EVALUATION_MODES, default="publication",
                        help="« publication » masque les petits effectifs ; « interne » montre tout, dans evaluation_interne.* "
                        "(défaut : publication)")
    parser.add_argument("--threshold", type=int, default=DEFAULT_THRESHOLD, metavar="N",
                        help=f"seuil du secret en mode publication (défaut : {DEFAULT_THRESHOLD})")
    parser.add_argument("--operator", default="", help="ne retenir qu'un opérateur (colonne « operateur »)")
    parser.add_argument("--pdf", action="store_true", help="écrire aussi evaluation.pdf (impression par Chromium)")
    parser.set_defaults(func=_lazy("diagnostic.pipeline.evaluate", "cmd_evaluate"))
def _add_fetch(data_subparsers: argparse._SubParsersAction) -> None:
    """Register ``fetch`` and ``sources`` on the sub-parsers of the ``data`` command."""
    sources_help = "autre liste de sources (CSV au format de diagnostic/resources/tables/sources_officielles.csv)"
    fetch_parser = data_subparsers.add_parser(
        "fetch", help="télécharger les données officielles d'un territoire et écrire son catalogue",
        description="Télécharge les données officielles (QPV, communes, INSEE, BPE, France Services, "
        "adultes-relais), les filtre au territoire et écrit un catalogue prêt à l'emploi.",
    )
    where = fetch_parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--region", metavar="CODE", help="code INSEE de la région (ex. 32)")
    where.add_argument("--department", "--departement", metavar="CODE", help="code du département (ex. 59, 2A)")
    fetch_parser.add_argument("--dest", metavar="DOSSIER", help="dossier de sortie (défaut : donnees_<territoire>)")
    fetch_parser.add_argument("--from-dir", metavar="DOSSIER",
                              help="utiliser des fichiers téléchargés à la main au lieu de télécharger")
    fetch_parser.add_argument("--sources", metavar="FICHIER", help=sources_help)
    fetch_parser.add_argument("--cache", metavar="DOSSIER", help="cache des téléchargements (défaut : $DIAGNOSTIC_CACHE "
                              "ou le cache de l'utilisateur)")
    fetch_parser.add_argument("--format", dest="geo_format", choices=["parquet", "gpkg"], default="parquet",
                              help="format des contours écrits : GeoParquet (défaut) ou GeoPackage")
    fetch_parser.add_argument("--quiet", action="store_true", help="sans barre de progression")
    fetch_parser.add_argument("--only", metavar="CLE", action="append",
                              help="ne télécharger que cette source (clé de « data sources » ; répétable) : les "
                              "autres gardent le fichier d'un téléchargement précédent dans --dest")
    fetch_parser.add_argument("--skip", metavar="CLE", action="append", help="ne pas télécharger cette source (répétable)")
    fetch_parser.set_defaults(func=_lazy("diagnostic.io.fetch.commands", "run_fetch"))
    list_parser = data_subparsers.add_parser("sources", help="lister les sources officielles téléchargées par fetch")
    list_parser.add_argument("--sources", metavar="FICHIER", help=sources_help)
    list_parser.add_argument("--check", action="store_true",
                             help="demander à chaque source si elle répond encore à son adresse (Internet requis)")
    list_parser.add_argument("--catalog", metavar="FICHIER",
                             help="avec --check : catalogue écrit par data fetch, pour dire ce qui a changé depuis")
    list_parser.set_defaults(func=_lazy("diagnostic.io.fetch.commands", "run_sources"))
def _add_region(subparsers: argparse._SubParsersAction) -> None:
    """Register ``diagnostic region`` on the CLI's subcommands."""
    parser = subparsers.add_parser(
        "region", help="synthèse régionale : où développer la médiation, évolution des postes, partenariats")
    _add_catalog(parser)
    parser.add_argument("--output", required=True,
                        help="dossier de sortie (celui d'un lot pour reprendre ses résultats et lier ses rapports)")
    parser.add_argument("--department", default=None, help="seulement ce département du catalogue (ex. 59)")
    parser.add_argument("--rules", default=None, help="règles de la synthèse (diagnostic/resources/rules/region.yaml par défaut)")
    parser.add_argument("--pdf", action="store_true",
                        help="écrire aussi synthese_regionale.pdf (impression par Chromium, comme le rapport)")
    parser.set_defaults(func=_lazy("diagnostic.pipeline.region", "cmd_region"))


def _add_accompagner(subparsers: argparse._SubParsersAction) -> None:
    """Register the « accompagner » stage: ``feuille-de-route`` (a new service) and ``structure`` (an existing one)."""
    roadmap = subparsers.add_parser(
        "feuille-de-route", help="feuille de route du service recommandé par le diagnostic d'une commune",
        description="Exécute diagnostic/resources/notebooks/feuille_de_route.ipynb à partir du resultats.json d'un "
        "diagnostic (diagnostic run) et écrit DOSSIER/<code>/feuille_de_route/.")
    roadmap.add_argument("--resultats", required=True, metavar="FICHIER",
                         help="resultats.json du diagnostic de la commune (ou son dossier DOSSIER/CODE)")
    roadmap.add_argument("--output", required=True, metavar="DOSSIER", help="dossier des résultats (ex. outputs)")
    roadmap.add_argument("--decision", default=None, metavar="AAAA-MM-JJ",
                         help="mois de la décision, point de départ du calendrier (défaut : le mois prochain)")
    roadmap.add_argument("--rules", default=None, metavar="FICHIER",
                         help="règles de la feuille de route (diagnostic/resources/rules/feuille_de_route.yaml)")
    roadmap.add_argument("--pdf", action="store_true", help="écrire aussi feuille_de_route.pdf (impression par Chromium)")
    roadmap.set_defaults(func=_lazy("diagnostic.pipeline.roadmap", "cmd_roadmap"))
    structure = subparsers.add_parser(
        "structure", help="diagnostic partagé d'une structure de médiation existante et plan d'actions",
        description="Exécute diagnostic/resources/notebooks/diagnostic_structure.ipynb sur les réponses à la grille "
        "d'autodiagnostic et le tableau du personnel, et écrit le rapport et le plan d'actions dans DOSSIER.")
    structure.add_argument("--reponses", required=True, nargs="+", metavar="FICHIER",
                           help="exports des réponses à la grille (CSV ou xlsx, une colonne point_de_vue)")
    structure.add_argument("--personnel", required=True, metavar="FICHIER",
                           help="tableau anonyme du personnel (CSV ou xlsx)")
    structure.add_argument("--output", required=True, metavar="DOSSIER", help="dossier de ce diagnostic (ex. outputs/structure_2025)")
    structure.add_argument("--grille", default=None, metavar="FICHIER",
                           help="grille d'autodiagnostic (diagnostic/resources/rules/grille_structure.yaml)")
    structure.add_argument("--precedent", default=None, metavar="DOSSIER",
                           help="dossier du diagnostic précédent de la même structure : progression et suivi du plan")
    structure.add_argument("--suivi", default=None, metavar="FICHIER",
                           help="plan d'actions mis à jour par la structure (défaut : plan_actions.xlsx de --precedent)")
    structure.add_argument("--nom", default="", help="nom de la structure, en tête du rapport")
    structure.add_argument("--date", default=None, metavar="AAAA-MM-JJ", help="date de l'autodiagnostic (défaut : aujourd'hui)")
    structure.add_argument("--seuil", type=int, default=None, metavar="N",
                           help="réponses publiées par groupes d'au moins N personnes (défaut : celui de la grille, 3)")
    structure.add_argument("--fictif", action="store_true", help="marquer le rapport « Données fictives » (démonstration)")
    structure.add_argument("--pdf", action="store_true", help="écrire aussi diagnostic_structure.pdf")
    structure.set_defaults(func=_lazy("diagnostic.pipeline.structure", "cmd_structure"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diagnostic",
        description="Atelier de diagnostic territorial partagé pour la médiation sociale.",
    )
    parser.add_argument("--version", action="version", version=f"diagnostic {__version__}")
    parser.add_argument("--debug", action="store_true", help="afficher la trace complète des erreurs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMANDE")

    data = sub.add_parser("data", help="contrôler et obtenir les données")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    check = data_sub.add_parser("check", help="charger et valider toutes les sources d'un catalogue")
    _add_catalog(check)
    check.set_defaults(func=cmd_data_check)
    _add_fetch(data_sub)

    terr = sub.add_parser("territories", help="lister les communes d'un catalogue avec leurs QPV")
    _add_catalog(terr)
    terr.add_argument("--with-qpv", action="store_true", help="seulement les communes ayant au moins un QPV")
    terr.set_defaults(func=cmd_territories)

    run = sub.add_parser("run", help="produire le diagnostic d'une commune (rapport HTML, tableaux, resultats.json)")
    _add_catalog(run)
    run.add_argument("--commune", required=True, help="code INSEE de la commune")
    run.add_argument("--qpv", default=None, metavar="CODE,CODE",
                     help="QPV retenus, séparés par des virgules (tous ceux de la commune par défaut)")
    _add_run_options(run)
    run.add_argument("--pdf", action="store_true", help="écrire aussi rapport.pdf (impression par Chromium)")
    run.set_defaults(func=cmd_run)
    _add_batch(sub)
    _add_evaluate(sub)
    _add_region(sub)
    _add_accompagner(sub)

    demo = sub.add_parser("demo-data", help="régénérer le territoire fictif de démonstration (data/demo/)")
    demo.add_argument("--dest", default=None, metavar="DOSSIER", help="dossier à écrire (défaut : data/demo/)")
    demo.set_defaults(func=cmd_demo_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "allow_outside", False):
        os.environ[ALLOW_OUTSIDE_ENV] = "1"  # kernels and local workers inherit it
    try:
        check_options(args)
        return int(args.func(args) or 0)
    except DiagnosticError as exc:
        if args.debug:
            raise
        print(str(exc), file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # output piped into head or less, then closed
        return 0
    except KeyboardInterrupt:
        print("Interrompu.", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"Erreur inattendue ({type(exc).__name__}) : c'est un défaut de l'atelier, pas de vos données. "
              "Relancez avec --debug pour la trace complète et signalez-la.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
