"""Unmet needs (besoins non couverts): need level, response level, and the evidence behind both.

Rules and weights live in ``templates/besoins.yaml`` (see its header for the
formulas). Each row of the result says which part of the need is measured
(statistics) and which is expressed (observations), and lists its evidence:
figures with their references and sources, coverage, observations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from diagnostic.catalog import PROJECT_ROOT, read_yaml
from diagnostic.errors import CatalogError
from diagnostic.reference import DOMAINS

RULES_FILE = PROJECT_ROOT / "templates" / "besoins.yaml"
REFERENCE_COLUMNS = {"all_qpv": "ref_all_qpv", "department": "ref_department", "region": "ref_region",
                     "catalog": "ref_catalog", "commune": "ref_commune"}
PEER_LABEL = "moyenne des territoires de même niveau"
REFERENCE_LABELS = {"all_qpv": "moyenne des QPV", "department": "département", "region": "région",
                    "catalog": "ensemble du catalogue", "commune": "commune"}


def load_rules(path: str | Path | None = None) -> dict[str, Any]:
    """Read the need rules (safe YAML) and check their shape."""
    path = Path(path) if path else RULES_FILE
    rules = read_yaml(path, "règles des besoins")
    unknown = set(rules.get("domains", {})) - set(DOMAINS)
    if unknown:
        raise CatalogError(f"domaines inconnus dans les règles : {', '.join(sorted(unknown))}.", path=path)
    if rules.get("reference", "all_qpv") not in REFERENCE_COLUMNS:
        raise CatalogError(f"« reference » doit valoir {', '.join(REFERENCE_COLUMNS)}.", path=path)
    return rules


def _position(value: pd.Series, reference: pd.Series, direction: str, spread: float) -> pd.Series:
    """0.5 at the reference, 1 when ``spread`` (relative) worse, 0 when as much better."""
    rel = (value - reference) / reference.abs().where(reference != 0)
    if direction == "down":
        rel = -rel
    return (0.5 + rel / (2 * spread)).clip(0, 1)


def measured_need(social: pd.DataFrame, rules: dict[str, Any], code: str = "code_qp") -> pd.DataFrame:
    """Per (territory, domain): the measured need and the indicator evidence behind it."""
    ref_key = rules.get("reference", "all_qpv")
    ref_col = REFERENCE_COLUMNS[ref_key] if REFERENCE_COLUMNS[ref_key] in social else "ref_catalog"
    spread = float(rules.get("spread", 0.5))
    rows = []
    for domain, spec in rules["domains"].items():
        for indicator, ind in (spec.get("indicators") or {}).items():
            sub = social[social["indicator"] == indicator]
            if sub.empty:
                continue
            # Counts compare with the mean of territories of the same level, never with a total.
            col = "ref_peer" if (sub["nature"] == "effectif").all() else ref_col
            score = _position(sub["value"], sub[col], ind.get("direction", "up"), spread)
            rows.append(pd.DataFrame({
                "code": sub[code].to_numpy(), "domain": domain, "indicator": indicator,
                "label": sub["label"].to_numpy(), "unit": sub["unit"].to_numpy(),
                "value": sub["value"].to_numpy(), "reference": sub[col].to_numpy(),
                "reference_label": PEER_LABEL if col == "ref_peer" else REFERENCE_LABELS.get(ref_key, ref_key),
                "status": sub["status"].to_numpy(), "source": sub["source"].to_numpy(),
                "vintage": sub["vintage"].to_numpy(), "score": score.to_numpy(),
                "weight": float(ind.get("weight", 1)),
            }))
    if not rows:
        return pd.DataFrame(columns=["code", "domain", "measured"]), pd.DataFrame()
    evidence = pd.concat(rows, ignore_index=True)
    ok = evidence["score"].notna()
    weighted = (evidence["score"] * evidence["weight"]).where(ok)
    agg = pd.DataFrame({"w": evidence["weight"].where(ok), "ws": weighted, "code": evidence["code"],
                        "domain": evidence["domain"]}).groupby(["code", "domain"])[["w", "ws"]].sum(min_count=1)
    measured = (agg["ws"] / agg["w"]).rename("measured").reset_index()
    return measured, evidence


def expressed_need(observations: pd.DataFrame | None, rules: dict[str, Any], code: str) -> pd.DataFrame:
    """Per (territory, domain): observation weight, counts by source, and the expressed score."""
    cols = ["code", "domain", "expressed", "obs_weight", "obs_count", "obs_sources"]
    if observations is None or observations.empty:
        return pd.DataFrame(columns=cols)
    obs = observations[observations[code] != ""]
    grouped = obs.groupby([code, "domain"])
    out = grouped.agg(obs_weight=("weight", "sum"), obs_count=("weight", "size")).reset_index()
    out["obs_sources"] = grouped["source_type"].agg(
        lambda s: ", ".join(f"{k} : {v}" for k, v in s.value_counts().items())
    ).to_numpy()
    out["expressed"] = (out["obs_weight"] / float(rules.get("saturation", 10))).clip(upper=1)
    return out.rename(columns={code: "code"})[cols]


def response_level(coverage: pd.DataFrame, rules: dict[str, Any], mediation_posts: pd.Series) -> pd.DataFrame:
    """Per (territory, domain): how well existing services and mediation answer, 0 to 1."""
    cov = coverage.copy()
    targets = pd.DataFrame({d: {"per_1000_target": s.get("per_1000_target", 0.5),
                                "distance_target_m": s.get("distance_target_m", 800)}
                            for d, s in rules["domains"].items()}).T
    cov = cov.join(targets, on="domain")
    density = (cov["per_1000"] / cov["per_1000_target"]).clip(0, 1)
    dist = 1 - ((cov["nearest_m"] - cov["distance_target_m"]) / (2 * cov["distance_target_m"])).clip(0, 1)
    parts = pd.concat([density, dist], axis=1)
    cov["service_response"] = parts.mean(axis=1, skipna=True)
    med = rules.get("mediation", {})
    posts = cov["code"].map(mediation_posts).fillna(0)
    per_10000 = 10000 * posts / cov["population"].where(cov["population"] > 0)
    bonus = (per_10000 / float(med.get("posts_per_10000_target", 3))).clip(0, 1) * float(med.get("max_bonus", 0.3))
    bonus = bonus.where(cov["domain"].isin(med.get("domains", [])), 0).fillna(0)
    cov["mediation_posts"] = posts
    cov["mediation_bonus"] = bonus
    cov["response"] = (cov["service_response"].fillna(0) + bonus).clip(0, 1)
    # A domain with no service anywhere in the data is unknown, not uncovered.
    known = cov.groupby("domain")["services_band"].transform(lambda s: s.notna().any() and s.sum() > 0)
    known |= cov.groupby("domain")["nearest_m"].transform(lambda s: s.notna().any())
    cov.loc[~known, "response"] = np.nan
    return cov


def unmet_needs(
    social: pd.DataFrame,
    coverage: pd.DataFrame,
    observations: pd.DataFrame | None,
    rules: dict[str, Any],
    *,
    code: str = "code_qp",
    mediation_posts: pd.Series | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ranked unmet needs per (territory, domain) and the long table of indicator evidence."""
    measured, evidence = measured_need(social, rules, code)
    expressed = expressed_need(observations, rules, code)
    cov = response_level(coverage, rules, mediation_posts if mediation_posts is not None else pd.Series(dtype=float))
    out = cov.merge(measured, on=["code", "domain"], how="left").merge(expressed, on=["code", "domain"], how="left")
    out = out[out["domain"].isin(rules["domains"])]
    w = float(rules.get("expressed_weight", 0.3))
    has_obs = out["code"].isin(set(expressed["code"]))
    out["expressed"] = out["expressed"].where(has_obs, np.nan).fillna(0).where(has_obs)
    out["obs_count"] = out["obs_count"].fillna(0).astype(int)
    out["obs_weight"] = out["obs_weight"].fillna(0.0)
    out["obs_sources"] = out["obs_sources"].fillna("")
    measured_part = out["measured"]
    # Without measured figures (secret, missing), only observations of this domain can stand for the
    # need; a domain nobody raised stays undetermined rather than « no need ».
    fallback = out["expressed"].astype(float).where(out["obs_count"] > 0)
    out["need"] = np.where(has_obs, (1 - w) * measured_part.fillna(fallback) + w * out["expressed"], measured_part)
    out["need_measured_part"] = np.where(has_obs, (1 - w) * measured_part, measured_part)
    out["need_expressed_part"] = np.where(has_obs, w * out["expressed"], 0.0)
    out["unmet"] = out["need"] * (1 - out["response"])
    levels = rules.get("levels", {"fort": 0.35, "moyen": 0.2})
    out["level"] = np.select([out["unmet"] >= levels["fort"], out["unmet"] >= levels["moyen"]], ["fort", "moyen"], "faible")
    out.loc[out["unmet"].isna(), "level"] = "indéterminé"
    out["note"] = np.where(out["response"].isna(), "aucune donnée de services pour ce domaine dans le catalogue", "")
    out = out.sort_values(["unmet", "need"], ascending=False, na_position="last").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out, evidence


def explain(row: pd.Series, evidence: pd.DataFrame) -> list[dict[str, Any]]:
    """The evidence of one unmet need as plain records (figures, references, sources)."""
    ev = evidence[(evidence["code"] == row["code"]) & (evidence["domain"] == row["domain"])]
    items = [
        {"type": "indicateur", "libelle": r.label, "valeur": _num(r.value), "unite": r.unit,
         "reference": _num(r.reference), "reference_libelle": r.reference_label, "statut": r.status,
         "source": r.source, "millesime": r.vintage}
        for r in ev.itertuples()
    ]
    items.append({"type": "couverture", "libelle": f"Services du domaine à moins de la bande ({row['method']})",
                  "valeur": _num(row["services_band"]), "par_1000_habitants": _num(row["per_1000"]),
                  "distance_plus_proche_m": _num(row["nearest_m"])})
    if row.get("mediation_posts", 0):
        items.append({"type": "mediation", "libelle": "Postes adultes-relais rattachés", "valeur": _num(row["mediation_posts"])})
    if row.get("obs_count", 0):
        items.append({"type": "besoin exprime", "libelle": "Observations et consultations",
                      "valeur": int(row["obs_count"]), "poids": _num(row["obs_weight"]), "sources": row["obs_sources"]})
    return items


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) or pd.isna(v) else round(float(v), 2)
