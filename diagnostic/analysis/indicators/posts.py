"""Mediation posts in place per commune, the one target ratio and the posts missing: one computation for every document.

The commune report, its ``resultats.json``, the regional synthesis and the explorer all read these
functions, so a quantity has one value everywhere:

* the year is the last complete year of the posts files (:func:`reference_year`; a partial year, such as
  ANCT's 2025 files, is never compared with full ones);
* a post counts once per programme and year (its ``id_poste``);
* a post of a contrat de ville held by a commune goes to that commune; a post of an intercommunal
  contract is shared by the EPCI's communes with QPVs in proportion to their QPV population
  (:func:`attribute_posts`);
* the posts counted against the target are the adulte-relais posts (:data:`MEDIATION_PROGRAMME`), the
  programme the needs rules count as a mediation response; FONJEP posts are shown beside them;
* the target is ``team.mediators_per_10000_inhabitants`` of ``recommandations.yaml`` (:func:`ratio`),
  per 10,000 inhabitants of the QPVs (the commune's part of each); missing posts = target − posts in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from diagnostic import resources
from diagnostic.io.catalog import read_yaml
from diagnostic.io.sources.postes import PROGRAMMES, partial_years

#: The programme whose posts count as mediation posts (needs response, team deduction, target).
MEDIATION_PROGRAMME = "adulte-relais"
#: The rules file that holds the one target ratio.
RATIO_FILE = resources.path("rules/recommandations.yaml")
#: What the ratio counts, in French, for every document that prints it.
RATIO_UNIT = "médiateurs pour 10 000 habitants des QPV"


def ratio(reco_rules: dict[str, Any] | str | Path | None = None) -> float:
    """The one target ratio: mediators (posts of mediation) per 10,000 QPV inhabitants, from ``recommandations.yaml``."""
    conf = reco_rules if isinstance(reco_rules, dict) else read_yaml(Path(reco_rules or RATIO_FILE),
                                                                       "règles des recommandations")
    return float((conf.get("team") or {}).get("mediators_per_10000_inhabitants", 2.5))


def ratio_source(reco_rules: dict[str, Any] | None = None) -> str:
    """Where the ratio comes from, in French (``team.ratio_source`` of ``recommandations.yaml``)."""
    conf = reco_rules if reco_rules is not None else read_yaml(RATIO_FILE, "règles des recommandations")
    return str((conf.get("team") or {}).get("ratio_source", ""))


def target(population: float | pd.Series, per_10000: float) -> float | pd.Series:
    """Posts the ratio asks for ``population`` QPV inhabitants (not rounded)."""
    return population * per_10000 / 10_000


def missing(population: float | pd.Series, posts: float | pd.Series, per_10000: float) -> float | pd.Series:
    """Posts missing to reach the target: target − posts in place, never below 0; unknown without population."""
    gap = target(population, per_10000) - posts
    if isinstance(gap, pd.Series):
        return gap.clip(lower=0).where(pd.to_numeric(population, errors="coerce") > 0)
    return max(0.0, float(gap)) if population and population > 0 else float("nan")


def reference_year(posts: pd.DataFrame | None) -> int | None:
    """The last complete year of the posts files (a partial year is left out once, here)."""
    if posts is None or posts.empty:
        return None
    complete = sorted(set(posts["year"].dropna().astype(int)) - set(partial_years(posts)))
    return complete[-1] if complete else None


def holders(posts: pd.DataFrame, of_commune: pd.Series) -> pd.DataFrame:
    """Each post's contract holder: ``holder_commune`` (a commune-level contract) and ``siren_epci``.

    The contract's EPCI as the loader found it is kept (a 2015 contract may name a former SIREN,
    the loader settles it by position); a commune-level contract takes the commune's EPCI.
    """
    codgeo = posts["codgeo"].astype("string") if "codgeo" in posts else pd.Series(pd.NA, index=posts.index, dtype="string")
    commune = codgeo.where(codgeo.str.len() == 5)
    epci = posts["siren_epci"].astype("string") if "siren_epci" in posts else pd.Series(pd.NA, index=posts.index, dtype="string")
    epci = epci.fillna(codgeo.where(codgeo.str.len() == 9)).fillna(commune.map(of_commune).astype("string"))
    return posts.assign(holder_commune=commune, siren_epci=epci)


def attribute_posts(communes: pd.DataFrame, posts: pd.DataFrame, programmes: list[str]) -> pd.DataFrame:
    """Posts of ``posts`` (one year, with holders) per commune: ``posts_<programme>``, ``posts``, ``posts_shared``.

    ``communes`` holds every commune with QPVs of the EPCIs concerned (``insee_com``, ``siren_epci``,
    ``qpv_population``, ``qpv_count``), so that an intercommunal contract is shared over all of them
    (in proportion to QPV population, by number of QPVs where the population is unknown). ``posts`` is
    the count of :data:`MEDIATION_PROGRAMME` posts, the one compared with the target.
    """
    out = communes.copy()
    pop = out["qpv_population"].astype(float)
    by_epci = out.groupby("siren_epci", dropna=True)
    pop_share = pop / by_epci["qpv_population"].transform("sum").astype(float)
    count_share = out["qpv_count"] / by_epci["qpv_count"].transform("sum")
    share = pop_share.where(np.isfinite(pop_share), count_share).fillna(0.0)
    out["posts_shared"] = 0.0
    for programme in programmes:
        mine = posts[posts["programme"] == programme]
        direct = out["insee_com"].map(mine.groupby("holder_commune").size()).fillna(0.0)
        intercommunal = mine[mine["holder_commune"].isna()].groupby("siren_epci").size()
        shared = out["siren_epci"].map(intercommunal).fillna(0.0) * share
        out[f"posts_{programme}"] = direct + shared
        if programme == MEDIATION_PROGRAMME:
            out["posts_shared"] = shared
    out["posts"] = out.get(f"posts_{MEDIATION_PROGRAMME}", pd.Series(0.0, index=out.index))
    return out


def unique_posts(posts: pd.DataFrame) -> pd.DataFrame:
    """Each post once per programme and year (records without ``post_id`` kept as they are)."""
    if "post_id" not in posts:
        return posts
    ids = posts["post_id"].astype("string").str.strip().replace({"": pd.NA})
    known = ids.notna()
    return pd.concat([posts[known].assign(post_id=ids[known]).drop_duplicates(["programme", "year", "post_id"]),
                      posts[~known]])


def posts_by_commune(data: Any, parts: pd.DataFrame) -> pd.DataFrame:
    """Posts in place in the reference year, per commune with QPVs, by programme (:func:`attribute_posts`).

    ``parts`` is the QPV population of each (QPV, commune) pair
    (:func:`diagnostic.analysis.indicators.social.qpv_population_by_commune`). Columns: ``insee_com``,
    ``siren_epci``, ``qpv_population``, ``qpv_count``, ``posts_<programme>``, ``posts_shared``, ``posts``,
    ``year``; empty without posts files (posts unknown, never 0).
    """
    columns = ["insee_com", "siren_epci", "qpv_population", "qpv_count", *[f"posts_{p}" for p in PROGRAMMES],
               "posts_shared", "posts", "year"]
    raw = data.adultes_relais
    year = reference_year(raw)
    if year is None or "codgeo" not in raw or data.qpv.empty:
        return pd.DataFrame(columns=columns)
    of_commune = data.membership
    current = holders(unique_posts(raw[raw["year"] == year]), of_commune)
    qpv_pop = parts.groupby("insee_com")["population"].sum(min_count=1)
    codes = data.communes.loc[data.communes["qpv_count"] > 0, ["insee_com", "qpv_count"]]
    communes = codes.assign(siren_epci=codes["insee_com"].map(of_commune),
                            qpv_population=codes["insee_com"].map(qpv_pop).astype(float))
    out = attribute_posts(pd.DataFrame(communes).reset_index(drop=True), current, list(PROGRAMMES))
    numbers = [c for c in columns if c.startswith("posts") or c == "qpv_population"]
    return out.assign(year=year)[columns].astype({c: float for c in numbers})
