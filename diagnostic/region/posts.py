"""Mediation posts in place (adultes-relais, FONJEP) stacked, attached to EPCIs, counted over time.

The ANCT files give one record per post, year and funding line, attached to a contrat de
ville whose holder (``codgeo``) is an EPCI (SIREN, 9 digits) or a commune (INSEE code, 5
characters). A post counts once per programme and year (its ``id_poste``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from diagnostic.region.rules import PROGRAMMES, employer_type

FIELDS = ["programme", "year", "post_id", "employer", "employer_siret", "code_cv", "lib_cv", "codgeo",
          "insee_dep", "insee_reg"]


def stack(tables: Mapping[str, pd.DataFrame | None]) -> pd.DataFrame:
    """Posts of every programme in one table (:data:`FIELDS`), each post once per programme and year.

    ``tables`` maps a programme key (``adultes_relais``, ``fonjep``) to the loader's table; a table
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
    for column in ("post_id", "code_cv", "codgeo", "insee_dep", "insee_reg", "employer_siret"):
        posts[column] = posts[column].astype("string").str.strip().replace({"": pd.NA, "nan": pd.NA, "<NA>": pd.NA})
    identified = posts["post_id"].notna()
    posts = pd.concat([posts[identified].drop_duplicates(["programme", "year", "post_id"]), posts[~identified]])
    return posts.sort_values(["programme", "year", "post_id"], na_position="last").reset_index(drop=True)


def with_holders(posts: pd.DataFrame, membership: pd.DataFrame, rules: dict) -> pd.DataFrame:
    """Add the contract's holder commune (``holder_commune``), its EPCI (``siren_epci``) and the employer type.

    ``membership`` maps ``insee_com`` to ``siren_epci``; a commune-level contract goes to the
    commune's EPCI, an EPCI-level contract to its own SIREN.
    """
    codgeo = posts["codgeo"].astype("string")
    commune = codgeo.where(codgeo.str.len() == 5)
    epci = codgeo.where(codgeo.str.len() == 9)
    of_commune = membership.drop_duplicates("insee_com").set_index("insee_com")["siren_epci"] if len(membership) else pd.Series(dtype="string")
    epci = epci.fillna(commune.map(of_commune).astype("string"))
    kinds = [employer_type(n, s, rules) for n, s in zip(posts["employer"], posts["employer_siret"])]
    return posts.assign(holder_commune=commune, siren_epci=epci, employer_type=kinds)


def counts(posts: pd.DataFrame, by: Iterable[str] = ()) -> pd.DataFrame:
    """Posts per ``by`` columns, programme and year, in long form (column ``posts``)."""
    keys = [*by, "programme", "year"]
    if posts.empty:
        return pd.DataFrame(columns=[*keys, "posts"])
    return posts.groupby(keys, dropna=False).size().rename("posts").reset_index()


def region_and_france(posts: pd.DataFrame, departments: Iterable[str]) -> pd.DataFrame:
    """Per programme and year: posts in the region's departments, in France (every record), the region's share.

    France is ``None`` when the files hold the region only (nothing to compare with).
    """
    departments = set(departments)
    national = bool(len(posts)) and not posts["insee_dep"].isin(departments).all()
    region = counts(posts[posts["insee_dep"].isin(departments)]).rename(columns={"posts": "region"})
    france = counts(posts).rename(columns={"posts": "france"})
    out = france.merge(region, on=["programme", "year"], how="left").fillna({"region": 0})
    out["region"] = out["region"].astype(int)
    if not national:
        out["france"] = None
        out["share"] = None
    else:
        out["share"] = 100 * out["region"] / out["france"]
    out["programme_label"] = out["programme"].map(PROGRAMMES)
    return out[["programme", "programme_label", "year", "region", "france", "share"]]


def wide(long: pd.DataFrame, keys: list[str], years: list[int]) -> pd.DataFrame:
    """One row per ``keys`` and programme, one column per year (missing years are 0)."""
    if long.empty:
        return pd.DataFrame(columns=[*keys, "programme", *years])
    table = long.pivot_table(index=[*keys, "programme"], columns="year", values="posts", aggfunc="sum",
                             fill_value=0, dropna=False)
    table = table.reindex(columns=years, fill_value=0).reset_index()
    table.columns.name = None
    return table
