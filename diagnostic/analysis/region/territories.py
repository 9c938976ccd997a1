"""Needs against posts in place, per commune with QPVs and per EPCI: ratio, gap to target, ranking, reasons.

The rule (``diagnostic/resources/rules/region.yaml``, repeated in the page's method note):

* posts in place in a commune are :func:`diagnostic.analysis.indicators.posts.posts_by_commune`'s, the
  same as its report's (adulte-relais posts of the last complete year; a commune's share of an
  intercommunal contract in proportion to its QPV population within the EPCI); an EPCI's are all the
  posts of its contracts;
* ratio = posts ÷ QPV population × 10 000; gap = ratio − target (the one ratio of
  ``recommandations.yaml``); missing posts = :func:`~diagnostic.analysis.indicators.posts.missing`;
* « à prospecter » when the ratio is below the target and the need level (strongest unmet
  need of the territory, from the commune diagnostics) is one of ``prospect_levels``;
  « bien doté » when the ratio reaches ``well_equipped`` × target;
* prospects are ranked by the keys of ``ranking`` in turn, then by code.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from diagnostic import text
from diagnostic.analysis.indicators.posts import MEDIATION_PROGRAMME, missing
from diagnostic.analysis.region.rules import LEVELS, PROGRAMMES

STATUS_LABELS = {
    "a_prospecter": "à prospecter",
    "bien_dote": "bien doté",
    "proche_cible": "entre la cible et le seuil « bien doté »",
    "sous_cible": "sous la cible, sans besoin retenu",
    "indetermine": "indéterminé (population des QPV inconnue)",
    "postes_inconnus": "indéterminé (postes en place inconnus)",
}
_LEVEL_ORDER = {level: i for i, level in enumerate(LEVELS)}
PER = f"pour {text.number(10_000)} habitants des QPV"


def strongest(levels: Any) -> str:
    """The strongest need level of a list (fort > moyen > faible > indéterminé); indéterminé when empty."""
    known = [lv for lv in levels if lv in _LEVEL_ORDER]
    return min(known, key=_LEVEL_ORDER.get) if known else "indéterminé"


def epci_table(communes: pd.DataFrame, posts: pd.DataFrame, programmes: list[str],
               names: pd.Series) -> pd.DataFrame:
    """One row per EPCI having communes with QPVs: QPV population, strongest need, posts of all its contracts
    (NaN, as its communes' posts, when the catalogue has no posts files: unknown, not 0)."""
    known = communes[communes["siren_epci"].notna()]
    posts_known = bool(communes["posts"].notna().any())
    if known.empty:
        return pd.DataFrame(columns=["code", "name", "departments", "communes", "qpv_count", "qpv_population",
                                     "need_level", "strong_domains", "medium_domains", "posts", "posts_shared",
                                     *[f"posts_{p}" for p in programmes]])
    groups = known.groupby("siren_epci")
    out = pd.DataFrame({
        "code": list(groups.groups),
        "departments": groups["insee_dep"].agg(lambda s: sorted(set(s))).to_list(),
        "communes": groups["insee_com"].agg(list).to_list(),
        "qpv_count": groups["qpv_count"].sum().to_list(),
        "qpv_population": groups["qpv_population"].sum(min_count=1).to_list(),
        "need_level": groups["need_level"].agg(strongest).to_list(),
        "strong_domains": groups["strong_domains"].agg(_union).to_list(),
        "medium_domains": groups["medium_domains"].agg(_union).to_list(),
    })
    out["medium_domains"] = [[d for d in medium if d not in strong]
                             for strong, medium in zip(out["strong_domains"], out["medium_domains"])]
    out["name"] = out["code"].map(names).fillna(out["code"])
    for programme in programmes:
        per_epci = posts[posts["programme"] == programme].groupby("siren_epci").size()
        out[f"posts_{programme}"] = out["code"].map(per_epci).fillna(0).astype(float) if posts_known else math.nan
    out["posts"] = out.get(f"posts_{MEDIATION_PROGRAMME}", pd.Series(0.0 if posts_known else math.nan, index=out.index))
    out["posts_shared"] = 0.0 if posts_known else math.nan
    return out


def _union(lists: pd.Series) -> list[str]:
    return list(dict.fromkeys(d for items in lists for d in (items or [])))


def assess(table: pd.DataFrame, rules: dict[str, Any]) -> pd.DataFrame:
    """Add ``ratio``, ``gap``, ``missing_posts`` and ``status`` (see the module docstring)."""
    target, well = rules["target_per_10000"], rules["well_equipped"]
    out = table.copy()
    pop = pd.to_numeric(out["qpv_population"], errors="coerce")
    out["ratio"] = (out["posts"] / pop * 10_000).where(pop > 0)
    out["gap"] = out["ratio"] - target
    out["missing_posts"] = missing(pop, out["posts"], target)
    status = np.select(
        [out["posts"].isna(), out["ratio"].isna(), out["ratio"] >= well * target, out["ratio"] >= target,
         out["need_level"].isin(rules["prospect_levels"])],
        ["postes_inconnus", "indetermine", "bien_dote", "proche_cible", "a_prospecter"], default="sous_cible")
    out["status"] = status
    return out


def rank(table: pd.DataFrame, rules: dict[str, Any]) -> pd.DataFrame:
    """The « territoires à prospecter » in the order of ``rules["ranking"]``, with ``rank`` from 1."""
    prospects = table[table["status"] == "a_prospecter"].copy()
    keys = {
        "need_level": (prospects["need_level"].map(_LEVEL_ORDER), True),
        "missing_posts": (prospects["missing_posts"], False),
        "qpv_population": (prospects["qpv_population"], False),
        "ratio": (prospects["ratio"], True),
    }
    columns, ascending = [], []
    for i, key in enumerate(rules["ranking"]):
        prospects[f"_k{i}"] = keys[key][0]
        columns.append(f"_k{i}")
        ascending.append(keys[key][1])
    prospects = prospects.sort_values([*columns, "code"], ascending=[*ascending, True], kind="mergesort")
    prospects = prospects.drop(columns=columns).reset_index(drop=True)
    prospects["rank"] = range(1, len(prospects) + 1)
    return prospects


def well_equipped(table: pd.DataFrame) -> pd.DataFrame:
    """Territories « bien dotés », highest ratio first."""
    return table[table["status"] == "bien_dote"].sort_values(["ratio", "code"], ascending=[False, True]).reset_index(drop=True)


def _posts_text(row: pd.Series, programmes: list[str]) -> str:
    if text.is_missing(row["posts"]):
        return "postes adultes-relais en place inconnus (aucun fichier de postes dans le catalogue)"
    others = [f"{text.number(row[f'posts_{p}'], _digits(row[f'posts_{p}']))} {PROGRAMMES[p]}" for p in programmes
              if p != MEDIATION_PROGRAMME and row.get(f"posts_{p}", 0)]
    total = text.number(row["posts"], _digits(row["posts"]))
    detail = f" (et {text.join(others)}, non comptés dans la cible)" if others else ""
    shared = (f", dont {text.number(row['posts_shared'], 1)} du contrat intercommunal réparti au prorata de la "
              "population des QPV") if row.get("posts_shared", 0) > 0 else ""
    return f"{total} {text.plural(row['posts'], 'poste adulte-relais', 'postes adultes-relais')} en place{detail}{shared}"


def _digits(value: float) -> int:
    return 0 if float(value).is_integer() else 1


def _need_text(row: pd.Series) -> str:
    level = row["need_level"]
    if level == "fort" and row["strong_domains"]:
        return f"besoin fort ({text.join(list(row['strong_domains']))})"
    if level == "moyen" and row["medium_domains"]:
        return f"besoin moyen ({text.join(list(row['medium_domains']))})"
    return f"besoin {level}" if level != "indéterminé" else "niveau de besoin indéterminé"


def reason(row: pd.Series, rules: dict[str, Any]) -> str:
    """One French sentence saying why a territory stands where it does, with its figures."""
    target = text.number(rules["target_per_10000"], _digits(rules["target_per_10000"]))
    pop = text.count(row["qpv_population"], "habitant", missing="population inconnue")
    qpv = text.count(row["qpv_count"], "QPV", "QPV")
    need = _need_text(row)
    head = f"{need[0].upper()}{need[1:]} ; {pop} en QPV ({qpv}) ; {_posts_text(row, rules['programmes'])}"
    if row["status"] == "postes_inconnus":
        return f"{head} ; ratio incalculable sans les postes en place."
    if row["status"] == "indetermine":
        return f"{head} ; ratio incalculable sans la population des QPV."
    ratio = text.number(row["ratio"], 1)
    if row["status"] in ("bien_dote", "proche_cible"):
        return f"{head}, soit {ratio} {PER}, pour une cible de {target}."
    missing = math.ceil(round(float(row["missing_posts"]), 6))
    return (f"{head}, soit {ratio} {PER}, sous la cible de {target} : "
            f"{text.count(missing, 'poste manquant', 'postes manquants')} pour l'atteindre.")
