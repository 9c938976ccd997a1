"""Getting the official open data of a territory: ``diagnostic data fetch`` and ``data sources``.

The sources are listed in ``diagnostic/resources/tables/sources_officielles.csv``
(:mod:`~diagnostic.fetch.sources`); one given by its data.gouv.fr dataset is resolved
through the catalogue API to its most recent matching file (:mod:`~diagnostic.fetch.datagouv`).
Downloads go through pooch into a shared cache and resume where they stopped
(:mod:`~diagnostic.fetch.download`); publications are read as they come, plain,
gzipped or zipped, CSV, parquet or vector, keeping the territory's rows
(:mod:`~diagnostic.fetch.extract`, :mod:`~diagnostic.fetch.territory`); each file is
written with a catalogue beside them (:mod:`~diagnostic.fetch.write`), all at once
when every source succeeded (:mod:`~diagnostic.fetch.collect`).
``data sources --check`` asks whether each source still answers (:mod:`~diagnostic.fetch.check`).
"""

from diagnostic.fetch.collect import FetchResult, fetch
from diagnostic.fetch.commands import run_fetch, run_sources
from diagnostic.fetch.sources import OfficialSource, describe_sources, read_sources
from diagnostic.fetch.territory import Territory, parse_territory

__all__ = ["FetchResult", "OfficialSource", "Territory", "describe_sources", "fetch", "parse_territory",
           "read_sources", "run_fetch", "run_sources"]
