"""The files the package ships and reads: notebooks, report templates, rules and reference tables.

They live inside the package, found through :mod:`importlib.resources`, so an
installed wheel runs outside the checkout. ``pip`` installs a wheel unpacked,
so each resource is a real file: papermill, nbconvert and Jinja read it by path.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

#: The folder holding every shipped resource.
ROOT = Path(str(files(__name__)))


def path(name: str) -> Path:
    """The shipped resource ``name``, e.g. ``"rules/besoins.yaml"`` or ``"report"`` (a folder)."""
    return ROOT / name
