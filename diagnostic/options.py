"""Defaults of the run, batch and evaluation options: one place, read by the command line and the library.

Kept free of heavy imports so that ``diagnostic --help`` can show them without loading the geospatial stack.
"""

from __future__ import annotations

import datetime as dt

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


def iso_day(value: str | dt.date, what: str, example: str) -> dt.date:
    """A date option typed AAAA-MM-JJ; a French parameter error (code 22) naming ``what`` otherwise."""
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        from diagnostic.errors import ParameterError

        raise ParameterError(f"{what} « {value} » n'est pas une date ISO valide.",
                             hint=f"écrivez-la AAAA-MM-JJ, par exemple {example}.") from None
