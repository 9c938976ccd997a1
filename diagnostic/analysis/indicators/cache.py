"""Compute every indicator table of a catalogue once, and cache it on disk.

The cache key is a SHA-256 over the catalogue's files (content), the rules,
the reference tables, the parameters, the workbench version and its source
code: any change to one of them gives a new key, so a stale table is never read. Tables are
Parquet files; the QPV layer with its indicators is GeoParquet.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from diagnostic import __version__
from diagnostic._fs import cache_root, code_fingerprint, temp_dir
from diagnostic.analysis.indicators import social
from diagnostic.analysis.indicators.coverage import COLUMNS as COVERAGE_COLUMNS
from diagnostic.analysis.indicators.coverage import counted_coverage, coverage
from diagnostic.analysis.indicators.domains import service_domains
from diagnostic.analysis.indicators.needs import METHOD_VERSION, RULES_FILE, load_rules, unmet_needs
from diagnostic.analysis.indicators.placed import placed_pairs, with_placed, without_placed
from diagnostic.analysis.indicators.posts import RATIO_FILE, posts_by_commune
from diagnostic.io.reference import DOMAINS, DOMAINS_FILE, INDICATORS_FILE, equipment_domains
from diagnostic.io.territory import TerritoryData
from diagnostic.options import BAND_M

TABLES = ["qpv_social", "commune_social", "qpv_share", "qpv_parts", "posts", "coverage", "needs", "evidence"]


@dataclass
class Indicators:
    """All indicator tables of one catalogue for one set of parameters."""

    qpv_social: pd.DataFrame
    commune_social: pd.DataFrame
    qpv_share: pd.DataFrame
    #: QPV population of each (QPV, commune) pair: the commune's part of each QPV (``code_qp``, ``insee_com``, ``population``, ``split``).
    qpv_parts: pd.DataFrame
    #: Posts in place per commune with QPVs (:func:`diagnostic.analysis.indicators.posts.posts_by_commune`).
    posts: pd.DataFrame
    coverage: pd.DataFrame
    needs: pd.DataFrame
    evidence: pd.DataFrame
    qpv: gpd.GeoDataFrame
    params: dict = field(default_factory=dict)
    key: str = ""

    def parts_of(self) -> dict[str, list[tuple[str, float]]]:
        """Each QPV's member communes and the population of their part (from :attr:`qpv_parts`), made once: a
        catalogue's tables are cut for each of its communes."""
        cache = self.__dict__.setdefault("_grouped", {})
        if "parts" not in cache:
            out: dict[str, list[tuple[str, float]]] = {}
            for qpv, com, pop in zip(self.qpv_parts["code_qp"], self.qpv_parts["insee_com"], self.qpv_parts["population"]):
                out.setdefault(str(qpv), []).append((str(com), float(pop)))
            cache["parts"] = out
        return cache["parts"]

    def rows_of(self, table: str, level: str, codes: list[str]) -> pd.DataFrame:
        """The rows of ``needs`` or ``evidence`` for territories ``codes`` of ``level``, from a grouping made once
        per table and level (a catalogue's tables are sliced for every commune: the regional synthesis does it
        for each of its communes)."""
        groups = self.__dict__.setdefault("_grouped", {})
        if (table, level) not in groups:
            frame = getattr(self, table)
            frame = frame[frame["level_territory"] == level] if len(frame) else frame
            groups[(table, level)] = dict(iter(frame.groupby("code", sort=False))) if len(frame) else {}
        found = groups[(table, level)]
        parts = [found[c] for c in codes if c in found]
        return pd.concat(parts) if parts else getattr(self, table).iloc[0:0]


def cache_dir() -> Path:
    """Where the tables are kept: ``indicateurs`` in the cache folder (:func:`diagnostic._fs.cache_root`)."""
    return cache_root() / "indicateurs"


def cache_key(data: TerritoryData, params: dict, rules_path: Path, reco_path: Path = RATIO_FILE) -> str:
    """What the cached tables depend on: the catalogue's files, the rules and tables, the parameters and the code."""
    h = hashlib.sha256()
    h.update(data.catalog.fingerprint().encode())
    for f in (rules_path, reco_path, INDICATORS_FILE, DOMAINS_FILE):
        h.update(Path(f).read_bytes())
    h.update(json.dumps(params, sort_keys=True).encode())
    h.update(__version__.encode())
    h.update(METHOD_VERSION.encode())
    h.update(code_fingerprint().encode())
    return h.hexdigest()[:32]


def compute(
    data: TerritoryData,
    *,
    band_m: float = BAND_M,
    rules_path: str | Path | None = None,
    reco_path: str | Path | None = None,
    use_cache: bool = True,
) -> Indicators:
    """Every indicator table for the whole catalogue, read from the cache when inputs are unchanged.

    Every domain is computed: a domain's needs depend on its own indicators and responses only, so a
    report on some domains keeps their rows (:func:`diagnostic.analysis.commune.build`), and the
    explorer changes domains without computing anything again.
    """
    rules_path = Path(rules_path) if rules_path else RULES_FILE
    reco_path = Path(reco_path) if reco_path else RATIO_FILE  # where the one ratio, the needs' response target, is
    params = {"band_m": float(band_m), "rules": rules_path.name}
    key = cache_key(data, params, rules_path, reco_path)
    folder = cache_dir() / key
    if use_cache and (folder / "done").exists():
        return _RECENT.get(key) or _kept(_RECENT, key, _read(folder, params, key))
    result = _compute(data, band_m, load_rules(rules_path, reco_path), params, key)
    if use_cache:
        _write(result, folder)
        _kept(_RECENT, key, result)
    return result


#: The tables last computed or read in this process, by cache key: a warm kernel or worker cuts the same
#: catalogue's tables for commune after commune (they are read, never changed, by their users).
_RECENT: dict[str, Indicators] = {}
RECENT_SIZE = 4


def _kept(memo: dict, key: Any, value: Any) -> Any:
    """``value`` kept in ``memo`` under ``key``, which holds the :data:`RECENT_SIZE` last ones."""
    memo.pop(key, None)
    memo[key] = value
    while len(memo) > RECENT_SIZE:
        memo.pop(next(iter(memo)))
    return value


@dataclass
class _Base:
    """The tables of a catalogue that depend on its files and the band only, not on the needs rules."""

    qpv_social: pd.DataFrame
    commune_social: pd.DataFrame
    parts: pd.DataFrame
    share: pd.DataFrame
    qpv_pop: pd.Series
    com_pop: pd.Series
    cov_qpv: pd.DataFrame
    cov_com: pd.DataFrame
    posts: pd.DataFrame
    posts_com: pd.Series
    qpv_posts: pd.Series
    qpv: gpd.GeoDataFrame


#: :class:`_Base` tables of this process, by catalogue content, code and band: new weights of the needs rules (the
#: explorer's sliders) compute the needs again, not the coverage.
_BASES: dict[tuple, _Base] = {}


def _base(data: TerritoryData, band_m: float) -> _Base:
    key = (data.catalog.fingerprint(), code_fingerprint(), float(band_m))
    return _BASES.get(key) or _kept(_BASES, key, _base_tables(data, band_m))


def _base_tables(data: TerritoryData, band_m: float) -> _Base:
    domains = list(DOMAINS)
    pairs = service_domains(data.services)
    parts = social.qpv_population_by_commune(data)
    qpv_pop = data.qpv_indicators.values["population"] if data.qpv_indicators is not None and "population" in data.qpv_indicators.values else pd.Series(dtype=float)
    com_pop = data.communes.set_index("insee_com")["population"]
    outlined = data.qpv[data.qpv.geometry.notna()]
    cov_qpv = coverage(outlined, pairs, qpv_pop, code="code_qp", level="qpv", band_m=band_m, domains=domains) \
        if len(outlined) or data.qpv.empty else pd.DataFrame(columns=COVERAGE_COLUMNS)
    if data.qpv_indicators is not None and data.qpv_indicators.extra_counts and pairs.empty:
        cov_qpv = counted_coverage(data.qpv_indicators, qpv_pop)
        cov_qpv = cov_qpv[cov_qpv["domain"].isin(domains)]
    cov_com = coverage(data.communes, pairs, com_pop, code="insee_com", level="commune", band_m=0.0, domains=domains)
    cov_com["method"] = "services géolocalisés dans la commune"
    if data.equipment_counts is not None:
        cov_com = with_counted_equipment(cov_com, data.equipment_counts)
    if len(outlined) < len(data.qpv):
        unoutlined = parts[parts["code_qp"].isin(set(data.qpv.loc[data.qpv.geometry.isna(), "code_qp"]))]
        placed = placed_pairs(pairs)  # the BPE's own quartier of each equipment, where it gives one
        shared = commune_coverage_for_qpv(unoutlined, without_placed(cov_com, placed), com_pop, qpv_pop)
        cov_qpv = pd.concat([cov_qpv, with_placed(shared, placed)], ignore_index=True)
    posts = posts_by_commune(data, parts)
    posts_com = posts.set_index("insee_com")["posts"] if len(posts) else pd.Series(dtype=float)
    qpv = data.qpv.copy()
    if data.qpv_indicators is not None:
        qpv = qpv.join(data.qpv_indicators.values, on="code_qp")
    return _Base(social.qpv_social(data), social.commune_social(data), parts, social.qpv_share(data, parts), qpv_pop,
                 com_pop, cov_qpv, cov_com, posts, posts_com, _posts_by_qpv(posts_com, parts), qpv)


def _compute(data: TerritoryData, band_m: float, rules: dict, params: dict, key: str) -> Indicators:
    b = _base(data, band_m)
    # Without posts files the posts in place are unknown, not 0.
    has_posts = not b.posts.empty
    needs_frames, evidence_frames = [], []
    if not b.qpv_social.empty:
        n, e = unmet_needs(b.qpv_social, b.cov_qpv, data.observations, rules, code="code_qp", population=b.qpv_pop,
                           mediation_posts=b.qpv_posts if has_posts else None, **_national(data))
        needs_frames.append(n.assign(level_territory="qpv"))
        evidence_frames.append(e.assign(level_territory="qpv"))
    if not b.commune_social.empty:
        n, e = unmet_needs(b.commune_social, b.cov_com, data.observations, rules, code="insee_com",
                           population=b.com_pop, mediation_posts=b.posts_com if has_posts else None)
        needs_frames.append(n.assign(level_territory="commune"))
        evidence_frames.append(e.assign(level_territory="commune"))
    needs = pd.concat(needs_frames, ignore_index=True) if needs_frames else pd.DataFrame()
    evidence = pd.concat(evidence_frames, ignore_index=True) if evidence_frames else pd.DataFrame()
    return Indicators(b.qpv_social, b.commune_social, b.share, b.parts, b.posts,
                      pd.concat([b.cov_qpv, b.cov_com], ignore_index=True), needs, evidence, b.qpv, params, key)


def with_counted_equipment(cov_com: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """Add equipment counted per IRIS (BPE « ensemble ») to each commune's services, by mediation domain.

    The counts have no coordinates: they add to the services in the commune,
    never to distances. Types map to domains through ``diagnostic/resources/tables/domaines_mediation.csv``.
    """
    table = equipment_domains()
    table = table.rename(columns={"source": "source_kind", "type": "type_code", "domaine": "domain"})
    counted = counts.merge(table[["source_kind", "type_code", "domain"]], on=["source_kind", "type_code"])
    counted = counted.groupby(["insee_com", "domain"])["count"].sum()
    out = cov_com.copy()
    extra = pd.Series(list(zip(out["code"], out["domain"])), index=out.index).map(counted).fillna(0)
    out["services_inside"] = out["services_inside"] + extra.astype(int)
    out["services_band"] = out["services_band"] + extra.astype(int)
    out["per_1000"] = 1000 * out["services_band"] / out["population"].where(out["population"] > 0)
    out["method"] = "services géolocalisés et équipements comptés par IRIS (BPE) dans la commune"
    return out


def commune_coverage_for_qpv(parts: pd.DataFrame, cov_com: pd.DataFrame, com_pop: pd.Series,
                             population: pd.Series) -> pd.DataFrame:
    """Coverage of QPVs without outlines, from the communes they cover only, by a stated rule.

    Without outlines nothing can be placed inside a QPV or its band: each commune the QPV covers gives it
    a share of the services counted in the commune, in proportion to the part of the commune's population
    living in that QPV (``parts``, the QPV population of each commune); distances stay unknown.
    """
    counts = ["services_inside", "services_band", "responses_band", "common_band", "places_band"]
    rows = parts[["code_qp", "insee_com", "population"]].rename(columns={"population": "part"}).merge(
        cov_com.drop(columns=["level", "population"]), left_on="insee_com", right_on="code")
    weight = (rows["part"] / rows["insee_com"].map(com_pop)).clip(0, 1).fillna(0.0)
    rows[counts] = rows[counts].astype(float).mul(weight, axis=0)
    out = rows.groupby(["code_qp", "domain"], sort=False).agg(
        **{c: (c, "sum") for c in counts}, responses_known=("responses_known", "any"),
        domain_label=("domain_label", "first")).reset_index().rename(columns={"code_qp": "code"})
    out[counts] = out[counts].round(1)
    out["level"] = "qpv"
    out["population"] = out["code"].map(population)
    out["nearest_m"] = out["nearest_response_m"] = float("nan")
    out["per_1000"] = 1000 * out["services_band"] / out["population"].where(out["population"] > 0)
    out["method"] = ("services des communes du quartier au prorata de leurs habitants qui y vivent (contours du QPV "
                     "non fournis : dans la commune, pas dans le quartier ni sa bande ; pas de distance)")
    return out[COVERAGE_COLUMNS]


def _national(data: TerritoryData) -> dict:
    """Every QPV of France as the reference distribution, when the catalogue's data have it."""
    national = data.qpv_national
    if national is None or national.empty:
        return {}
    long = national.rename_axis("code_qp").reset_index().melt(id_vars="code_qp", var_name="indicator", value_name="value")
    long["value"] = pd.to_numeric(long["value"], errors="coerce")
    return {"reference": long.dropna(subset=["value"]), "reference_label": "QPV de France"}


def _posts_by_qpv(posts_com: pd.Series, parts: pd.DataFrame) -> pd.Series:
    """Each QPV's posts: every commune it covers gives it its posts in proportion to the QPV population of its part."""
    if posts_com.empty or parts.empty:
        return pd.Series(dtype=float)
    pop = parts.assign(commune_qpv_pop=parts.groupby("insee_com")["population"].transform("sum"))
    pop["posts"] = pop["insee_com"].map(posts_com).fillna(0) * pop["population"] / pop["commune_qpv_pop"]
    return pop.groupby("code_qp")["posts"].sum()


def _write(result: Indicators, folder: Path) -> None:
    """Write to a temporary folder, then rename: a killed run leaves no half cache."""
    tmp = temp_dir(folder.parent, folder.name)
    try:
        for name in TABLES:
            getattr(result, name).to_parquet(tmp / f"{name}.parquet")
        result.qpv.to_parquet(tmp / "qpv.parquet")
        (tmp / "done").write_text(json.dumps(result.params), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(tmp)
            return
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _read(folder: Path, params: dict, key: str) -> Indicators:
    tables = {name: pd.read_parquet(folder / f"{name}.parquet") for name in TABLES}
    return Indicators(**tables, qpv=gpd.read_parquet(folder / "qpv.parquet"), params=params, key=key)
