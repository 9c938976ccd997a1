"""Workbench for shared territorial diagnostics of social mediation (concevoir, accompagner, évaluer)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("diagnostic-territorial")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+local"
