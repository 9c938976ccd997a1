"""Defaults of the run, batch and evaluation options: one place, read by the command line and the library.

Kept free of heavy imports so that ``diagnostic --help`` can show them without loading the geospatial stack.
"""

from __future__ import annotations

#: Width of the band around each QPV, in metres: the usual perimeter of the services serving a QPV.
BAND_M = 300.0
#: Indicator coloured on the commune map.
INDICATOR = "poverty_rate"
#: A batch on a cluster stops when no Dask worker has been alive for this many seconds.
WORKER_TIMEOUT_S = 60.0
#: Evaluation modes: « publication » masks small counts, « interne » shows everything.
EVALUATION_MODES = ("publication", "interne")
#: Smallest count published in an evaluation in publication mode.
DEFAULT_THRESHOLD = 5
