"""Benchmark: where the time of one report goes, stage by stage, cold and warm.

For the demo (99101), Toulouse (31555, Occitanie catalogue) and Lille (59350, Hauts-de-France
catalogue), a fresh interpreter with an empty indicator cache runs the work of the report twice
(*froid*: first time in the process, nothing cached; *chaud*: the same report again, as a batch
worker does for its next commune). The stages are those of the notebook, timed in-process:

- imports of the workbench's analysis and report modules (cold only);
- load and slice: ``load_territory`` then the commune and its QPVs;
- indicators: the catalogue-wide tables (``compute``; computed cold, read from the disk cache warm);
- needs and recommendations: ``build`` split where it calls ``_commune_needs`` and ``recommend``;
- tables and sections (everything the notebook displays but the maps), CSV/GeoPackage files;
- maps: the interactive Leaflet map; PNGs: the printed map and the partners' network;

then, as a batch runs it: the notebook executed in a warm kernel (kernel start reported apart),
the HTML export (nbconvert) and the PDF (Chromium, skipped when absent). Printed: one table per
place with the seconds of each stage and its share of the warm total.

Run: ``.venv/bin/python benchmarks/profile.py [--places demo,toulouse,lille] [--no-pdf]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PLACES = {
    "demo": (ROOT / "data" / "demo" / "catalogue.yaml", "99101", "Démo (99101)"),
    "toulouse": (ROOT / "data" / "catalogues" / "occitanie.yaml", "31555", "Toulouse (31555, Occitanie)"),
    "lille": (ROOT / "data" / "catalogues" / "hauts-de-france.yaml", "59350", "Lille (59350, Hauts-de-France)"),
}
STAGES = [
    ("imports", "imports des modules"),
    ("load", "chargement et découpage"),
    ("indicators", "indicateurs (catalogue)"),
    ("needs", "besoins"),
    ("recommendations", "préconisations"),
    ("build_rest", "reste du diagnostic"),
    ("sections", "tableaux et sections"),
    ("files", "fichiers CSV et GeoPackage"),
    ("maps", "carte interactive"),
    ("pngs", "images PNG"),
    ("kernel_start", "démarrage du noyau"),
    ("notebook", "exécution du carnet"),
    ("html", "export HTML"),
    ("pdf", "PDF et mise en place"),
]


class Clock:
    """Seconds per stage; nested wrappers count their time in their own stage only."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stack: list[str] = []

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        self._stack.append(name)
        try:
            yield
        finally:
            self._stack.pop()
            spent = time.perf_counter() - start
            self.seconds[name] = self.seconds.get(name, 0.0) + spent
            if self._stack:  # not the parent's time
                parent = self._stack[-1]
                self.seconds[parent] = self.seconds.get(parent, 0.0) - spent

    def wrap(self, module, attribute: str, name: str) -> None:
        original = getattr(module, attribute)

        def timed(*args, **kwargs):
            with self.stage(name):
                return original(*args, **kwargs)

        setattr(module, attribute, timed)


def _one_pass(clock: Clock, catalog: Path, code: str, out: Path) -> None:
    """The notebook's work, in this process, timed by stage."""
    from diagnostic.analysis.commune import build
    from diagnostic.analysis.indicators.cache import compute
    from diagnostic.io.territory import load_territory
    from diagnostic.report import sections as s
    from diagnostic.report.exports import write_tables

    with clock.stage("load"):
        data = load_territory(catalog)
        data.commune(code)
        data.qpv_in(code)
    with clock.stage("indicators"):
        indicators = compute(data)
    with clock.stage("build_rest"):
        d = build(data, code, indicators=indicators)
    with clock.stage("files"):
        write_tables(d, out)
    with clock.stage("sections"):
        s.cover_figures(d), s.essentials(d), s.territory_table(d), s.key_indicators_table(d), s.trends_table(d)
        s.indicator_chart(d, "poverty_rate"), s.expressed_needs(d), s.consultation(d), s.missing(d, "services")
        s.coverage_summary(d), s.posts_table(d), s.needs_table(d), s.needs_evidence(d), s.partners_view(d)
        list(s.partners_tables(d)), s.recommendations(d), s.framing(d), s.indicators_table(d), s.coverage_table(d)
        s.sources_table(d), s.method(d), s.parameters_text(d), s.glossary()
        for section in ("contexte", "besoins", "reponses", "besoins_non_couverts", "partenariat", "preconisations",
                        "cadrage", "financements", "gouvernance"):
            s.officer(d, section)
    with clock.stage("maps"):
        s.commune_map(d, "poverty_rate", False)
    with clock.stage("pngs"):
        s.print_image(s.static_map(d, out / "carte.png", "poverty_rate"), s.map_alt(d))
        if d.partners is not None:
            from diagnostic.report.network import network_png

            network_png(d.partners, d.graph, out / "reseau_partenaires.png")


def measure(place: str, pdf: bool) -> dict[str, dict[str, float]]:
    """In this (fresh) process: the stages of ``place``'s report, cold then warm."""
    catalog, code, _ = PLACES[place]
    results = {}
    clock = Clock()
    with clock.stage("imports"):
        import diagnostic.analysis.recommend
        import diagnostic.report.sections  # noqa: F401
        from diagnostic.analysis import commune
        from diagnostic.pipeline.run import run_territory
        from diagnostic.pipeline.warm import WarmKernel
        from diagnostic.report import export
    clock.wrap(commune, "_commune_needs", "needs")
    clock.wrap(commune, "recommend", "recommendations")
    work = Path(tempfile.mkdtemp(prefix="diagnostic-profil-"))
    for state in ("froid", "chaud"):
        if state == "chaud":
            clock = Clock()
            clock.wrap(commune, "_commune_needs", "needs")
            clock.wrap(commune, "recommend", "recommendations")
        _one_pass(clock, catalog, code, work / f"{state}-python")
        results[state] = clock.seconds
    # As a batch worker runs it: the notebook in a warm kernel, then its export (and PDF).
    from diagnostic.io.territory import load_territory

    data = load_territory(catalog)
    start = time.perf_counter()
    kernel = WarmKernel()
    kernel_start = time.perf_counter() - start
    original_export = export.export_html
    try:
        for state in ("froid", "chaud"):
            clock = Clock()
            clock.seconds["kernel_start"] = kernel_start if state == "froid" else 0.0

            def timed_execute(*args, _clock=clock, **kwargs):
                with _clock.stage("notebook"):
                    return kernel.execute(*args, **kwargs)

            def timed_export(*args, _clock=clock, **kwargs):
                with _clock.stage("html"):
                    return original_export(*args, **kwargs)

            export.export_html = timed_export
            with clock.stage("pdf"):
                run_territory(data, code, work / f"{state}-carnet", executor=timed_execute, pdf=pdf)
            for key, value in clock.seconds.items():
                results[state][key] = results[state].get(key, 0.0) + value
    finally:
        export.export_html = original_export
        kernel.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--places", default=",".join(PLACES), help="demo,toulouse,lille")
    parser.add_argument("--no-pdf", action="store_true", help="sans l'impression PDF")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, not args.no_pdf)))
        return
    from diagnostic.io.catalog import DEFAULT_DATA_DIR
    from diagnostic.text import number

    print(f"Machine : {os.cpu_count()} cœurs ; charge moyenne {number(os.getloadavg()[0], 2)} ; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    for place in args.places.split(","):
        label = PLACES[place][2]
        if place != "demo" and not (DEFAULT_DATA_DIR / "PROVENANCE.md").exists():
            print(f"{label} : extraits réels absents ({DEFAULT_DATA_DIR}), ignoré.")
            continue
        with tempfile.TemporaryDirectory(prefix="diagnostic-cache-") as cache:
            env = {**os.environ, "DIAGNOSTIC_CACHE": cache, "PYTHONPATH": str(ROOT)}
            cmd = [sys.executable, __file__, "--child", place, *(["--no-pdf"] if args.no_pdf else [])]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"{label} : échec\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"\n{label} — secondes (part du total chaud)")
        print(f"  {'étape':<30} {'froid':>8} {'chaud':>8}")
        warm_total = sum(result["chaud"].values())
        for key, name in STAGES:
            cold, warm = result["froid"].get(key, 0.0), result["chaud"].get(key, 0.0)
            share = f"({number(100 * warm / warm_total, 0)} %)" if warm_total else ""
            print(f"  {name:<30} {number(cold, 2):>8} {number(warm, 2):>8}  {share}")
        print(f"  {'total':<30} {number(sum(result['froid'].values()), 2):>8} {number(warm_total, 2):>8}")
        python = sum(v for k, v in result["chaud"].items() if k in dict(STAGES) and k not in (
            "kernel_start", "notebook", "html", "pdf"))
        print(f"  (le carnet refait dans le noyau ce que mesurent les étapes « chargement » à « images » : "
              f"{number(python, 2)} s en Python direct, {number(result['chaud'].get('notebook', 0.0), 2)} s "
              "dans le carnet)")


if __name__ == "__main__":
    main()
