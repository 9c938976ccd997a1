"""Constants and helpers the tests share: where the catalogues and real extracts are, a cache switch."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from diagnostic.io.catalog import DEFAULT_DATA_DIR, PROJECT_ROOT

REAL = DEFAULT_DATA_DIR
DEMO_CATALOG = PROJECT_ROOT / "data" / "demo" / "catalogue.yaml"
OCCITANIE = PROJECT_ROOT / "data" / "catalogues" / "occitanie.yaml"
HDF = PROJECT_ROOT / "data" / "catalogues" / "hauts-de-france.yaml"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@contextmanager
def cache_in(path: Path) -> Iterator[Path]:
    """``DIAGNOSTIC_CACHE`` pointed at ``path`` while the block runs (kernels and workers inherit it), then restored."""
    old = os.environ.get("DIAGNOSTIC_CACHE")
    os.environ["DIAGNOSTIC_CACHE"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("DIAGNOSTIC_CACHE")
        else:
            os.environ["DIAGNOSTIC_CACHE"] = old
