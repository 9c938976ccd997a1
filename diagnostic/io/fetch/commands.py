"""The commands ``diagnostic data fetch`` and ``diagnostic data sources`` (``--check``)."""

from __future__ import annotations

import argparse

from diagnostic.io.fetch.check import run_check
from diagnostic.io.fetch.collect import fetch
from diagnostic.io.fetch.sources import describe_sources, read_sources
from diagnostic.io.fetch.territory import parse_territory


def run_fetch(args: argparse.Namespace) -> int:
    """CLI entry of ``diagnostic data fetch``."""
    territory = parse_territory(args.region, args.department)
    dest = args.dest or f"donnees_{territory.kind}_{territory.code}"
    result = fetch(territory, dest, sources_file=args.sources, from_dir=args.from_dir, cache=args.cache,
                   geo_format=args.geo_format, progress=not args.quiet)
    print(f"Données officielles du {territory.label} écrites dans {result.catalog.parent} :")
    for name, rows in result.written.items():
        print(f"  {name} : {rows} ligne(s)")
    for note in result.notes:
        print(f"  Omis — {note}")
    print(f"Catalogue : {result.catalog}\nVérifiez-le avec : diagnostic data check --catalog {result.catalog}")
    return 0


def run_sources(args: argparse.Namespace) -> int:
    """CLI entry of ``diagnostic data sources``."""
    sources = read_sources(args.sources)
    if args.check:
        return run_check(sources, args.catalog)
    print(describe_sources(sources))
    return 0
