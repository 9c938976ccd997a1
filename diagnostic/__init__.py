"""Workbench for shared territorial diagnostics of social mediation (concevoir, accompagner, évaluer)."""

import sys
from importlib.metadata import PackageNotFoundError, version

# jsonschema (through nbformat and papermill) checks the « iri » string format with rfc3987_syntax when it is
# installed, as Jupyter's own dependencies install it; building that grammar costs 1.5 s in every process that
# runs or exports a notebook, and no notebook schema has that format. Marked absent, as jsonschema allows.
sys.modules.setdefault("rfc3987_syntax", None)

try:
    __version__ = version("diagnostic-territorial")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+local"
