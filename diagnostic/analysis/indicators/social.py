"""Social indicators per QPV and per commune, each beside its reference territories.

Rates, indices and medians are never summed; where an aggregate is
legitimate it is weighted by population and says how much of the population
it covers. Secret or missing values stay missing, with their status.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from diagnostic.io.territory import TerritoryData

SECRET = "secret statistique"
MISSING = "non disponible"


def aggregate(values: pd.Series, weights: pd.Series, nature: str) -> tuple[float, float]:
    """Aggregate one indicator over territories; return (value, share of population covered).

    Counts are summed only where every territory has a value; other natures
    are population-weighted means over the territories that have one.
    """
    values, weights = values.astype(float), weights.reindex(values.index).astype(float)
    total = weights.sum()
    ok = values.notna() & weights.notna() & (weights > 0)
    covered = float(weights[ok].sum() / total) if total > 0 else float("nan")
    if nature == "effectif":
        return (float(values.sum()) if values.notna().all() and len(values) else float("nan")), covered
    if not ok.any():
        return float("nan"), 0.0
    return float(np.average(values[ok], weights=weights[ok])), covered


def _status(values: pd.Series, secret: pd.Series) -> pd.Series:
    """« secret statistique », « non disponible » or empty, per territory."""
    status = pd.Series("", index=values.index)
    status[values.isna()] = MISSING
    status[secret.reindex(values.index).fillna(False).astype(bool)] = SECRET
    return status


def _columns(key: str, spec: pd.Series, values: pd.Series, secret: pd.Series) -> dict:
    """The columns every long indicator table shares, for one indicator."""
    return {
        "indicator": key,
        "label": spec["libelle"],
        "unit": spec["unite"],
        "nature": spec["nature"],
        "direction": spec["sens"],
        "value": values.to_numpy(),
        "status": _status(values, secret).to_numpy(),
        "source": spec["source"],
        "vintage": spec["vintage"],
    }


def _references(refs: pd.DataFrame, key: str) -> tuple[pd.Series, pd.Series, float]:
    """Department and region values (by code) and the catalogue value of one indicator."""
    mine = refs[refs["indicator"] == key]
    dep = mine[mine["level"] == "departement"].set_index("code")["value"]
    reg = mine[mine["level"] == "region"].set_index("code")["value"]
    cat = mine[mine["level"] == "catalogue"]["value"]
    return dep, reg, float(cat.iloc[0]) if len(cat) else np.nan


def _epci_reference(refs: pd.DataFrame, key: str, insee_com: pd.Series, data: TerritoryData) -> pd.Series:
    """The value of ``key`` over the EPCI of each commune (NaN without EPCI data)."""
    if "siren_epci" not in data.communes:
        return pd.Series(np.nan, index=insee_com.index)
    mine = refs[(refs["indicator"] == key) & (refs["level"] == "epci")].set_index("code")["value"]
    return insee_com.map(data.communes.set_index("insee_com")["siren_epci"]).map(mine)


def _commune_weights(data: TerritoryData) -> pd.Series:
    return data.communes.set_index("insee_com")["population"]


def reference_values(data: TerritoryData) -> pd.DataFrame:
    """Per indicator: value for each department, region and the whole catalogue, from commune data.

    Department and region values aggregate the catalogue's communes of that
    department or region (population-weighted for rates); ``coverage`` says
    which share of their population had a value.
    """
    rows = []
    table = data.commune_indicators
    if table is None:
        return pd.DataFrame(columns=["indicator", "level", "code", "value", "coverage"])
    weights = _commune_weights(data)
    communes = data.communes.set_index("insee_com")
    values = table.values.reindex(weights.index)
    for key, spec in table.definitions.iterrows():
        v, c = aggregate(values[key], weights, spec["nature"])
        rows.append({"indicator": key, "level": "catalogue", "code": "", "value": v, "coverage": c})
        for level, column in (("departement", "insee_dep"), ("region", "insee_reg"), ("epci", "siren_epci")):
            if column not in communes:
                continue
            codes = communes[column].dropna()
            for code, idx in codes.groupby(codes).groups.items():
                v, c = aggregate(values.loc[idx, key], weights.loc[idx], spec["nature"])
                rows.append({"indicator": key, "level": level, "code": code, "value": v, "coverage": c})
    return pd.DataFrame(rows)


def qpv_population_by_commune(data: TerritoryData) -> pd.DataFrame:
    """QPV population per (QPV, commune); a QPV over several communes is split by area (by population without outlines)."""
    if data.qpv_indicators is None or "population" not in data.qpv_indicators.values or data.qpv.empty:
        return pd.DataFrame(columns=["code_qp", "insee_com", "population", "split"])
    pairs = data.qpv_communes.copy()
    qpv = data.qpv.set_index("code_qp")
    communes = data.communes.set_index("insee_com")
    multi = pairs["code_qp"].duplicated(keep=False)
    outlined = pairs["code_qp"].map(qpv.geometry.notna())
    # Without outlines, a QPV's population is split in proportion to its communes' populations.
    inter = pairs[multi].apply(
        lambda r: qpv.geometry[r["code_qp"]].intersection(communes.geometry[r["insee_com"]]).area
        if outlined[r.name] else communes["population"].get(r["insee_com"], np.nan), axis=1
    ) if multi.any() else pd.Series(dtype=float)
    share = pd.Series(1.0, index=pairs.index)
    if multi.any():
        share[multi] = inter / inter.groupby(pairs.loc[multi, "code_qp"]).transform("sum")
    pairs["population"] = pairs["code_qp"].map(data.qpv_indicators.values["population"]) * share
    totals = commune_qpv_totals(data.qpv_indicators.values, pairs)
    if not totals.empty:  # without outlines, the observatory's QPV population of the communes settles the split
        pairs["population"] = _fit_to_totals(pairs, totals, multi & ~outlined.fillna(False).astype(bool))
    pairs["split"] = multi
    return pairs


def commune_qpv_totals(values: pd.DataFrame, pairs: pd.DataFrame) -> pd.Series:
    """Population living in QPV per commune, where the QPV table's ``commune_qpv_population`` settles it.

    The observatory gives each QPV the QPV population of all its communes together (``POP_COM_QP``): a QPV
    in one commune gives that commune's total, and a QPV whose communes are all known but one gives the last
    one's by difference (repeated until nothing changes). Inconsistent differences (negative) are left out.
    """
    if "commune_qpv_population" not in values:
        return pd.Series(dtype=float)
    total = values["commune_qpv_population"].dropna()
    members = pairs[pairs["code_qp"].isin(total.index)].groupby("code_qp")["insee_com"].agg(list)
    known: dict[str, float] = {}
    changed = True
    while changed:
        changed = False
        for code, communes in members.items():
            unknown = [c for c in communes if c not in known]
            rest = float(total[code]) - sum(known[c] for c in communes if c in known)
            if len(unknown) == 1 and rest >= 0:
                known[unknown[0]] = rest
                changed = True
    return pd.Series(known, dtype=float)


def _fit_to_totals(pairs: pd.DataFrame, totals: pd.Series, free: pd.Series, rounds: int = 2000) -> pd.Series:
    """Split the population of the ``free`` (QPV, commune) pairs so that each QPV keeps its population and each
    commune of ``totals`` gets its QPV population (iterative proportional fitting from the first split)."""
    pop = pairs["population"].astype(float).copy()
    if not free.any():
        return pop
    fixed = pop[~free].groupby(pairs.loc[~free, "insee_com"]).sum()
    remaining = (totals - fixed.reindex(totals.index).fillna(0)).clip(lower=0)  # below 0: inconsistent, none left
    com, n_com = pd.factorize(pairs.loc[free, "insee_com"])[0], pairs.loc[free, "insee_com"].nunique()
    code = pd.factorize(pairs.loc[free, "code_qp"])[0]
    x = pop[free].to_numpy(dtype=float)
    row = np.bincount(code, x)[code]
    col = pairs.loc[free, "insee_com"].map(remaining).to_numpy(dtype=float)
    held = ~np.isnan(col)
    for _ in range(rounds):
        col_sum = np.bincount(com, x, minlength=n_com)[com]
        scale = np.divide(col, col_sum, out=np.ones_like(x), where=held & (col_sum > 0))
        x = x * scale
        row_sum = np.bincount(code, x)[code]
        x = np.divide(x * row, row_sum, out=np.zeros_like(x), where=row_sum > 0)
    pop[free] = x
    return pop


def qpv_share(data: TerritoryData, parts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per commune: population living in QPV (the sum of its parts of QPVs) and its share of the commune's population."""
    pop = qpv_population_by_commune(data) if parts is None else parts
    by_commune = pop.groupby("insee_com").agg(qpv_population=("population", "sum"), split=("split", "any"))
    out = data.communes.set_index("insee_com")[["lib_com", "population", "qpv_count"]].join(by_commune)
    out["qpv_population"] = out["qpv_population"].where(out["qpv_count"] > 0, 0.0)
    out["qpv_share"] = 100 * out["qpv_population"] / out["population"]
    out["split"] = out["split"].astype("boolean").fillna(False).astype(bool)
    return out.reset_index()


def qpv_social(data: TerritoryData) -> pd.DataFrame:
    """Long table: one row per (QPV, indicator) with its references and gaps."""
    table = data.qpv_indicators
    if table is None or data.qpv.empty:
        return pd.DataFrame()
    qpv = data.qpv.set_index("code_qp")
    codes = qpv.index
    values = table.values.reindex(codes)
    weights = values["population"] if "population" in values else pd.Series(1.0, index=codes)
    refs = reference_values(data)
    com_values = data.commune_indicators.values if data.commune_indicators is not None else pd.DataFrame()
    commune_names = data.communes.set_index("insee_com")["lib_com"]
    dep_of = data.communes.set_index("insee_com")["insee_dep"]
    reg_of = data.communes.set_index("insee_com")["insee_reg"]
    frames = []
    for key, spec in table.definitions.iterrows():
        if key in ("commune_population", "commune_qpv_population"):  # context of the QPV, not its indicators
            continue
        all_qpv, _ = aggregate(values[key], weights, "effectif" if spec["nature"] == "effectif" else spec["nature"])
        if spec["nature"] == "effectif":
            all_qpv = float(values[key].mean())
        frame = pd.DataFrame({
            "code_qp": codes,
            "lib_qp": qpv["lib_qp"].to_numpy(),
            "insee_com": qpv["insee_com"].to_numpy(),
            **_columns(key, spec, values[key], table.secret[key]),
            "ref_all_qpv": all_qpv,
            "ref_peer": all_qpv,
        })
        frame["lib_com"] = frame["insee_com"].map(commune_names)
        frame["ref_commune"] = frame["insee_com"].map(com_values[key]) if key in com_values else np.nan
        dep_refs, reg_refs, catalog_value = _references(refs, key)
        frame["ref_department"] = frame["insee_com"].map(dep_of).map(dep_refs)
        frame["ref_region"] = frame["insee_com"].map(reg_of).map(reg_refs)
        frame["ref_epci"] = _epci_reference(refs, key, frame["insee_com"], data)
        frame["ref_catalog"] = catalog_value
        if table.reliability is not None and key in table.reliability:
            frame["reliability"] = frame["code_qp"].map(table.reliability[key]).fillna("").to_numpy()
        if table.national_reference is not None:
            national = table.national_reference.set_index("indicator")
            if key in national.index:
                frame["ref_national"] = national.at[key, "value"]
                frame["ref_national_method"] = national.at[key, "method"]
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    for ref in ("all_qpv", "commune", "department", "region", "epci", "catalog"):
        out[f"gap_{ref}"] = out["value"] - out[f"ref_{ref}"]
    return out


def commune_social(data: TerritoryData) -> pd.DataFrame:
    """Long table: one row per (commune, indicator) with department and catalogue references."""
    table = data.commune_indicators
    if table is None:
        return pd.DataFrame()
    communes = data.communes.set_index("insee_com")
    values = table.values.reindex(communes.index)
    refs = reference_values(data)
    frames = []
    for key, spec in table.definitions.iterrows():
        dep_refs, reg_refs, catalog_value = _references(refs, key)
        frames.append(pd.DataFrame({
            "insee_com": communes.index,
            "lib_com": communes["lib_com"].to_numpy(),
            **_columns(key, spec, values[key], table.secret[key]),
            "ref_department": communes["insee_dep"].map(dep_refs).to_numpy(),
            "ref_region": communes["insee_reg"].map(reg_refs).to_numpy(),
            "ref_epci": _epci_reference(refs, key, pd.Series(communes.index), data).to_numpy(),
            "ref_catalog": catalog_value,
            "ref_peer": float(values[key].mean()) if spec["nature"] == "effectif" else catalog_value,
        }))
    out = pd.concat(frames, ignore_index=True)
    for ref in ("department", "region", "epci", "catalog"):
        out[f"gap_{ref}"] = out["value"] - out[f"ref_{ref}"]
    return out
