"""The commands ``diagnostic data fetch`` and ``diagnostic data sources`` (``--check``)."""

from __future__ import annotations

import argparse

from diagnostic.errors import PartialFetchError
from diagnostic.io.fetch.check import run_check
from diagnostic.io.fetch.collect import fetch
from diagnostic.io.fetch.sources import describe_sources, read_sources
from diagnostic.io.fetch.territory import parse_territory


def run_fetch(args: argparse.Namespace) -> int:
    """CLI entry of ``diagnostic data fetch``: 0 when every source came, code 41 (partiel) when some failed."""
    territory = parse_territory(args.region, args.department)
    dest = args.dest or f"donnees_{territory.kind}_{territory.code}"
    result = fetch(territory, dest, sources_file=args.sources, from_dir=args.from_dir, cache=args.cache,
                   geo_format=args.geo_format, progress=not args.quiet, only=args.only, skip=args.skip)
    print(f"Données officielles du {territory.label} écrites dans {result.catalog.parent} :")
    for name, rows in result.written.items():
        print(f"  {name} : " + (f"{rows} ligne(s)" if rows is not None else "classeur copié tel quel (toute la "
                                "France ; le chargeur garde les communes du catalogue)"))
    for key in result.kept:
        print(f"  {key} : fichier d'un téléchargement précédent gardé")
    for note in result.notes:
        print(f"  Omis — {note}")
    print(f"Catalogue : {result.catalog}\nVérifiez-le avec : diagnostic data check --catalog {result.catalog}")
    if result.partial:
        keys = list(result.failed)
        failures = "\n".join(f"  {key} — " + why.replace("\n", "\n    ") for key, why in result.failed.items())
        raise PartialFetchError(
            f"{len(keys)} source(s) sans réponse utilisable ; le catalogue est écrit avec les autres.\n{failures}",
            path=result.catalog,
            hint="quand la source répond de nouveau, relancez pour elle seule : diagnostic data fetch "
            f"--{territory.kind if territory.kind == 'region' else 'department'} {territory.code} --dest "
            f"{result.catalog.parent} " + " ".join(f"--only {key}" for key in keys) + ".",
        )
    return 0


def run_sources(args: argparse.Namespace) -> int:
    """CLI entry of ``diagnostic data sources``."""
    sources = read_sources(args.sources)
    if args.check:
        return run_check(sources, args.catalog)
    print(describe_sources(sources))
    return 0
