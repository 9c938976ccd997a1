"""Mediation posts in place (adultes-relais, FONJEP) stacked, attached to EPCIs, counted over time.

The ANCT files give one record per post, year and funding line, attached to a contrat de
ville whose holder (``codgeo``) is an EPCI (SIREN, 9 digits) or a commune (INSEE code, 5
characters). A post counts once per programme and year (its ``id_poste``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from diagnostic.analysis.indicators.posts import holders
from diagnostic.analysis.region.rules import PROGRAMMES
from diagnostic.io.sources.employers import employer_type

FIELDS = ["programme", "year", "post_id", "employer", "employer_siret", "code_cv", "lib_cv", "codgeo",
          "siren_epci", "insee_dep", "insee_reg"]


def stack(tables: Mapping[str, pd.DataFrame | None]) -> pd.DataFrame:
    """Posts of every programme in one table (:data:`FIELDS`), each post once per programme and year.

    ``tables`` maps a programme key (``adulte-relais``, ``fonjep``) to the loader's table; a table
    that already has a ``programme`` column keeps it.
    """
    frames = []
    for programme, table in tables.items():
        if table is None or table.empty:
            continue
        frame = table.copy()
        if "programme" not in frame:
            frame["programme"] = programme
        for column in FIELDS:
            if column not in frame:
                frame[column] = pd.NA
        frames.append(frame[FIELDS])
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in FIELDS}).astype({"year": "int64"})
    posts = pd.concat(frames, ignore_index=True)
    posts["year"] = pd.to_numeric(posts["year"], errors="coerce")
    posts = posts.dropna(subset=["year"]).astype({"year": "int64"})
    for column in ("post_id", "code_cv", "codgeo", "siren_epci", "insee_dep", "insee_reg", "employer_siret"):
        posts[column] = posts[column].astype("string").str.strip().replace({"": pd.NA, "nan": pd.NA, "<NA>": pd.NA})
    identified = posts["post_id"].notna()
    posts = pd.concat([posts[identified].drop_duplicates(["programme", "year", "post_id"]), posts[~identified]])
    return posts.sort_values(["programme", "year", "post_id"], na_position="last").reset_index(drop=True)


def with_holders(posts: pd.DataFrame, membership: pd.DataFrame, rules: dict) -> pd.DataFrame:
    """Add the contract's holder commune (``holder_commune``), its EPCI (``siren_epci``) and the employer type.

    Holders as :func:`diagnostic.analysis.indicators.posts.holders` finds them (``membership``:
    ``insee_com`` → ``siren_epci``); the type is decided once per employer (name and SIRET).
    """
    of_commune = (membership.drop_duplicates("insee_com").set_index("insee_com")["siren_epci"] if len(membership)
                  else pd.Series(dtype="string"))
    pairs = list(zip(posts["employer"], posts["employer_siret"]))
    kinds = {pair: employer_type(*pair, rules) for pair in dict.fromkeys(pairs)}
    return holders(posts, of_commune).assign(employer_type=[kinds[pair] for pair in pairs])


def counts(posts: pd.DataFrame, by: Iterable[str] = ()) -> pd.DataFrame:
    """Posts per ``by`` columns, programme and year, in long form (column ``posts``)."""
    keys = [*by, "programme", "year"]
    if posts.empty:
        return pd.DataFrame(columns=[*keys, "posts"])
    return posts.groupby(keys, dropna=False).size().rename("posts").reset_index()


def region_and_france(lines: pd.DataFrame) -> pd.DataFrame:
    """Per programme and year: the records the catalogue kept and those of the whole file (France), the share.

    ``lines`` has ``programme``, ``year``, ``region`` (records kept) and ``france`` (records read); a file
    holding only the catalogue's territory has nothing to compare with: ``france`` is then ``None``.
    """
    out = lines.copy()
    out["france"] = out["france"].where(out["france"] > out["region"])
    out["share"] = 100 * out["region"] / out["france"]
    out["programme_label"] = out["programme"].map(PROGRAMMES)
    return out[["programme", "programme_label", "year", "region", "france", "share"]].astype(object).where(out.notna(), None)


def wide(long: pd.DataFrame, keys: list[str], years: list[int]) -> pd.DataFrame:
    """One row per ``keys`` and programme, one column per year (missing years are 0)."""
    if long.empty:
        return pd.DataFrame(columns=[*keys, "programme", *years])
    table = long.pivot_table(index=[*keys, "programme"], columns="year", values="posts", aggfunc="sum",
                             fill_value=0, dropna=False)
    table = table.reindex(columns=years, fill_value=0).reset_index()
    table.columns.name = None
    return table
