"""The ``diagnostic`` command line (also ``python -m diagnostic``).

Each subcommand is a thin call into the library. Errors are printed in French
with the file, column or row at fault, and each error class has its own exit
code (see :mod:`diagnostic.errors`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from diagnostic import __version__, text
from diagnostic.catalog import ALLOW_OUTSIDE_ENV
from diagnostic.errors import DiagnosticError


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
    from diagnostic.territory import load_territory

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
    from diagnostic.territory import load_territory

    data = load_territory(args.catalog, args.data_dir)
    table = data.communes.sort_values(["qpv_count", "population"], ascending=False)
    if args.with_qpv:
        table = table[table["qpv_count"] > 0]
    print(f"{'code':<7} {'commune':<40} {'QPV':>4} {'population':>11}")
    for row in table.itertuples():
        pop = text.number(row.population, missing="—")
        print(f"{row.insee_com:<7} {row.lib_com[:40]:<40} {row.qpv_count:>4} {pop:>11}")
    print(f"\n{len(table)} commune(s).")
    return 0


def _domains(value: str | None) -> list[str] | None:
    return [d.strip() for d in value.split(",") if d.strip()] if value else None


def _qpv_codes(value: str | None) -> list[str] | None:
    """QPV codes typed « qn09901a, QN09903C »: upper-cased, as the QPV files write them."""
    return [c.strip().upper() for c in value.split(",") if c.strip()] if value else None


def cmd_run(args: argparse.Namespace) -> int:
    from diagnostic.run import run_commune

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
    parser.add_argument("--band-m", type=float, default=300.0, help="largeur de la bande autour des QPV, en mètres (300)")
    parser.add_argument("--domains", default=None, help="domaines retenus, séparés par des virgules (tous par défaut)")
    parser.add_argument("--needs-rules", default=None, help="règles des besoins (templates/besoins.yaml par défaut)")
    parser.add_argument("--reco-rules", default=None, help="règles des préconisations (templates/recommandations.yaml)")
    parser.add_argument("--indicator", default="poverty_rate", help="indicateur de la carte (poverty_rate par défaut)")
    parser.add_argument("--tiles", action="store_true", help="ajouter le fond OpenStreetMap (nécessite Internet à la lecture)")


def cmd_demo_data(args: argparse.Namespace) -> int:
    from diagnostic.demo import DEMO_DIR, write_demo

    files = write_demo(DEMO_DIR)
    print(f"{len(files)} fichiers fictifs écrits dans {DEMO_DIR}.")
    return 0


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
    from diagnostic import fetch

    fetch.add_commands(data_sub)

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
    from diagnostic import batch
    from diagnostic.evaluate_cli import add_command as add_evaluate
    from diagnostic.region.cli import add_command as add_region

    batch.add_command(sub)
    add_evaluate(sub)
    add_region(sub)

    demo = sub.add_parser("demo-data", help="régénérer le territoire fictif de démonstration (data/demo/)")
    demo.set_defaults(func=cmd_demo_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "allow_outside", False):
        os.environ[ALLOW_OUTSIDE_ENV] = "1"  # kernels and local workers inherit it
    try:
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
