"""Indicator families computed over a whole catalogue: social, coverage, needs.

:func:`diagnostic.analysis.indicators.cache.compute` runs them once per catalogue and
parameters and caches the tables on disk; a commune's report and a regional
batch read the same tables.
"""
