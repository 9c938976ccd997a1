"""Benchmark: how long the command line takes to answer ``--version`` and ``--help``.

An officer types ``diagnostic --help`` to remember a flag; it should answer in well under a second, so
the parser imports nothing heavy (geopandas, papermill, nbconvert, Dask) until a command runs. Each
command runs ``--repeat`` times in a fresh interpreter; the median wall time is printed, with the modules
of the geospatial and notebook stack that the start-up imported (there should be none).

Run: ``.venv/bin/python benchmarks/cli_start.py [--repeat 7]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

HEAVY = ("geopandas", "pandas", "papermill", "nbconvert", "nbformat", "dask", "folium", "matplotlib")
PROBE = "import sys, runpy; sys.argv = ['diagnostic', {arg!r}]\ntry:\n    runpy.run_module('diagnostic', run_name='__main__')\nexcept SystemExit:\n    pass\nprint('HEAVY', ' '.join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)"


def measure(arg: str, repeat: int) -> tuple[float, str]:
    """Median seconds of ``python -m diagnostic ARG`` and the heavy modules it imported."""
    times, heavy = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", PROBE.format(arg=arg, heavy=HEAVY)],
                              capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - start)
        heavy = done.stderr.strip().removeprefix("HEAVY").strip()
    return statistics.median(times), heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    start = time.perf_counter()
    for _ in range(args.repeat):
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    interpreter = (time.perf_counter() - start) / args.repeat
    print(f"interpréteur seul : {interpreter:.3f} s")
    for arg in ("--version", "--help"):
        seconds, heavy = measure(arg, args.repeat)
        print(f"diagnostic {arg:<10} {seconds:.3f} s (médiane de {args.repeat}) ; "
              f"modules lourds importés : {heavy or 'aucun'}")


if __name__ == "__main__":
    main()
