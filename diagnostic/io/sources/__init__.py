"""Loaders, one module per official data format.

Each loader reads a file exactly as published, checks it, and returns a
(Geo)DataFrame with the workbench's column names, in Lambert-93 (EPSG:2154)
for geometries. Problems raise :mod:`diagnostic.errors` types with French
messages; rows excluded on purpose are counted in a :class:`Report`.
"""

from diagnostic.io.sources._io import LoadReport

__all__ = ["LoadReport"]
