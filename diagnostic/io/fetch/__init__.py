"""Getting the official open data of a territory: ``diagnostic data fetch`` and ``data sources``.

The sources are listed in ``diagnostic/resources/tables/sources_officielles.csv``
(:mod:`~diagnostic.io.fetch.sources`); one given by its data.gouv.fr dataset is resolved
through the catalogue API to its most recent matching file (:mod:`~diagnostic.io.fetch.datagouv`).
Downloads go through pooch into a shared cache and resume where they stopped
(:mod:`~diagnostic.io.fetch.download`); publications are read as they come, plain,
gzipped or zipped, CSV, parquet, vector or workbook, keeping the territory's rows
(:mod:`~diagnostic.io.fetch.extract`, :mod:`~diagnostic.io.fetch.territory`); each file is
written with a catalogue beside them (:mod:`~diagnostic.io.fetch.write`), each source
succeeding or failing on its own, the failures listed (:mod:`~diagnostic.io.fetch.collect`).
``data sources --check`` asks whether each source still answers (:mod:`~diagnostic.io.fetch.check`).
"""

from diagnostic.io.fetch.collect import FetchResult, fetch
from diagnostic.io.fetch.commands import run_fetch, run_sources
from diagnostic.io.fetch.sources import OfficialSource, describe_sources, read_sources
from diagnostic.io.fetch.territory import Territory, parse_territory

__all__ = ["FetchResult", "OfficialSource", "Territory", "describe_sources", "fetch", "parse_territory",
           "read_sources", "run_fetch", "run_sources"]
