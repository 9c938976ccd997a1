"""Constants and helpers the tests share: where the catalogues and real extracts are, a cache switch, activity logs."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from diagnostic.demo import DEMO_DIR
from diagnostic.io.catalog import DEFAULT_DATA_DIR, PROJECT_ROOT
from diagnostic.io.territory import STORED_FOLDER

REAL = DEFAULT_DATA_DIR
DEMO_CATALOG = DEMO_DIR / "catalogue.yaml"
OCCITANIE = PROJECT_ROOT / "data" / "catalogues" / "occitanie.yaml"
HDF = PROJECT_ROOT / "data" / "catalogues" / "hauts-de-france.yaml"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@contextmanager
def cache_in(path: Path) -> Iterator[Path]:
    """``DIAGNOSTIC_CACHE`` pointed at ``path`` while the block runs (kernels and workers inherit it), then restored.

    The indicator tables start empty there; the loaded catalogues (``territoires``, kept by the content of
    their files and the code) are shared by every test of this machine, as a user's runs share them.
    """
    shared = Path(tempfile.gettempdir()) / f"diagnostic-tests-{os.getuid()}" / STORED_FOLDER
    shared.mkdir(parents=True, exist_ok=True)
    if not (path / STORED_FOLDER).exists():
        path.mkdir(parents=True, exist_ok=True)
        (path / STORED_FOLDER).symlink_to(shared, target_is_directory=True)
    old = os.environ.get("DIAGNOSTIC_CACHE")
    os.environ["DIAGNOSTIC_CACHE"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("DIAGNOSTIC_CACHE")
        else:
            os.environ["DIAGNOSTIC_CACHE"] = old


#: The columns of an activity log written by the tests (the default layout of diagnostic.io.sources.activity).
HEADER = ["date", "heure", "duree_min", "qpv", "x", "y", "activite", "sous_type", "domaine", "partenaire",
          "issue", "service_signale", "date_signalement", "date_resolution"]


def log_row(date, activity, qpv="QN09901A", **kw) -> dict[str, str]:
    """One activity-log record (a mediator's intervention) with the usual defaults."""
    return {"date": date, "heure": kw.pop("heure", "18:00"), "duree_min": kw.pop("duree_min", "60"), "qpv": qpv,
            "activite": activity, **kw}


def write_log(path, rows, header=HEADER, sep=";"):
    """An activity log of ``rows`` written as CSV at ``path``."""
    frame = pd.DataFrame([{c: r.get(c, "") for c in header} for r in rows], columns=header)
    frame.to_csv(path, sep=sep, index=False)
    return path
