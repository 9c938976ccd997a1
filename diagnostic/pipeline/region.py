"""``diagnostic region``: the regional synthesis of a catalogue, into an output folder (a batch's, ideally)."""

from __future__ import annotations

import argparse


def cmd_region(args: argparse.Namespace) -> int:
    from diagnostic import text
    from diagnostic.analysis.region.synthesis import build_synthesis
    from diagnostic.report.region.page import HTML_NAME, write_synthesis

    synth = build_synthesis(args.catalog, args.output, department=args.department, data_dir=args.data_dir,
                            rules_path=args.rules)
    files = write_synthesis(synth, args.output, pdf=args.pdf)
    reused = int((synth.communes["results_origin"] == "lot").sum()) if len(synth.communes) else 0
    print(f"Synthèse régionale : {len(synth.epci)} EPCI, {text.count(len(synth.communes), 'commune')} avec QPV "
          f"(résultats repris du lot : {reused}).")
    for line in synth.missing:
        print(f"  - {line}")
    print(f"Page : {args.output.rstrip('/')}/{HTML_NAME}")
    print(f"Fichiers : {', '.join(f.name for f in files)}")
    return 0

