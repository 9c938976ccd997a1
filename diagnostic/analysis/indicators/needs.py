"""Unmet needs (besoins non couverts): position in a reference, response, level, priority, robustness.

The rules live in ``diagnostic/resources/rules/besoins.yaml`` (its header states each step).
In short: every indicator of a territory is placed in a stated reference
distribution (percentile); a domain's need is the weighted mean of its
indicators' positions; the response counts only the services whose role is
« réponse » and the mediation posts in place; the unmet need is the need
times what the response leaves uncovered; levels come from documented
thresholds; observations raise a level when numerous and from several kinds of
source; the priority weighs the people concerned; and each level says whether
it holds when each weight moves by ±50 %. Every row carries ``reason``: plain
French sentences whose figures are the row's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from diagnostic import resources, text
from diagnostic.analysis.indicators.posts import ratio
from diagnostic.errors import CatalogError
from diagnostic.io.catalog import read_yaml
from diagnostic.io.reference import DOMAINS, indicator_table

RULES_FILE = resources.path("rules/besoins.yaml")
#: Version of the method (the code's steps); the rules files carry their own ``version``.
#: 4: the robustness of a quartier's need is computed on the whole quartier, in every commune that holds part of it.
METHOD_VERSION = "4"
LEVEL_ORDER = {"fort": 0, "moyen": 1, "faible": 2, "indéterminé": 3}
UNDETERMINED = "indéterminé"
OFFER = "offre_droit_commun"
OFFER_LABEL = "Offre de droit commun du domaine pour 10 000 habitants (services dans la bande)"
DEPRIVATION = "poverty_rate"
EVIDENCE_COLUMNS = ["code", "domain", "indicator", "label", "unit", "value", "status", "source", "vintage",
                    "position", "weight", "direction", "ambiguous", "reference_median", "reference_n",
                    "reference_label"]


# --------------------------------------------------------------------------- rules


def load_rules(path: str | Path | None = None, reco: str | Path | None = None) -> dict[str, Any]:
    """Read the need rules (safe YAML) and check what the method relies on.

    The response target is the one ratio of the run's recommendation rules (``reco``, else the shipped
    ``recommandations.yaml``): the needs and the team are sized with the same number, written once.
    """
    path = Path(path) if path else RULES_FILE
    rules = read_yaml(path, "règles des besoins")
    domains = rules.get("domains") or {}
    unknown = set(domains) - set(DOMAINS)
    if unknown:
        raise CatalogError(f"domaines inconnus dans les règles : {', '.join(sorted(unknown))}.", path=path)
    for domain, spec in domains.items():
        for key, ind in (spec.get("indicators") or {}).items():
            weight = ind.get("weight", 1)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
                raise CatalogError(f"domaine « {domain} », indicateur « {key} » : le poids doit être un nombre "
                                   f"positif ou nul (lu : {weight!r}).", path=path)
            if ind.get("direction", "up") not in ("up", "down"):
                raise CatalogError(f"domaine « {domain} », indicateur « {key} » : « direction » vaut up ou down.",
                                   path=path)
    for section, keys in (("response", ("service_weight", "post_weight")),
                          ("robustness", ("factor",)), ("expressed", ("min_observations", "min_sources"))):
        for key in keys:
            value = (rules.get(section) or {}).get(key, 1)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise CatalogError(f"« {section} » → « {key} » doit être un nombre positif ou nul (lu : {value!r}).",
                                   path=path)
    # The one target ratio lives in recommandations.yaml: the response target and the team use the same number.
    if "target_per_10000" in (rules.get("response") or {}):
        raise CatalogError("« response » → « target_per_10000 » ne se règle pas dans les règles des besoins : la cible "
                           "est le ratio unique des règles des recommandations.", path=path,
                           hint="réglez « team » → « mediators_per_10000_inhabitants » dans recommandations.yaml "
                                "(ou le fichier donné à --reco-rules), et retirez cette ligne.")
    rules["response"] = {**(rules.get("response") or {}), "target_per_10000": ratio(reco)}
    levels = rules.get("levels") or {}
    if not 0 < float(levels.get("moyen", 0.45)) < float(levels.get("fort", 0.65)) <= 1:
        raise CatalogError("« levels » : il faut 0 < moyen < fort ≤ 1.", path=path)
    return rules


def rules_version(rules: dict[str, Any]) -> str:
    """The version a rules file declares (« non versionnées » without one)."""
    return str(rules.get("version", "non versionnées"))


def _levels(rules: dict[str, Any]) -> tuple[float, float]:
    levels = rules.get("levels") or {}
    return float(levels.get("fort", 0.65)), float(levels.get("moyen", 0.45))


# --------------------------------------------------------------------------- positions


def derive(long: pd.DataFrame, rules: dict[str, Any], code: str) -> pd.DataFrame:
    """Rows of the ratios declared under ``derived`` (e.g. job seekers per 100 inhabitants)."""
    frames = []
    wide = long.pivot_table(index=code, columns="indicator", values="value", aggfunc="first") if len(long) else None
    for key, spec in (rules.get("derived") or {}).items():
        num, den = spec["numerator"], spec["denominator"]
        if wide is None or num not in wide or den not in wide:
            continue
        value = float(spec.get("factor", 1)) * wide[num] / wide[den].where(wide[den] > 0)
        base = long[long["indicator"] == num].drop_duplicates(code).set_index(code).reindex(value.index)
        frames.append(pd.DataFrame({
            code: value.index, "indicator": key, "label": spec.get("label", key), "unit": spec.get("unit", ""),
            "nature": "taux", "value": value.to_numpy(),
            **{c: base[c].fillna("").to_numpy() if c in base else "" for c in ("status", "source", "vintage")},
        }))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[code, "indicator", "value"])


def percentile(values: pd.Series, reference: pd.Series) -> pd.Series:
    """Mid-rank percentile of each value in ``reference`` (0 to 1): the share below plus half the ties."""
    ref = np.sort(reference.dropna().to_numpy(dtype=float))
    if not len(ref):
        return pd.Series(np.nan, index=values.index)
    v = values.to_numpy(dtype=float)
    pct = (np.searchsorted(ref, v, "left") + np.searchsorted(ref, v, "right")) / (2 * len(ref))
    return pd.Series(np.where(np.isnan(v), np.nan, pct), index=values.index)


def _offer_rows(coverage: pd.DataFrame, rules: dict[str, Any]) -> pd.DataFrame:
    """Common-law offer per 10,000 inhabitants, for the domains whose rules use it and whose data hold some."""
    wanted = [d for d, s in rules["domains"].items() if OFFER in (s.get("indicators") or {})]
    cov = coverage[coverage["domain"].isin(wanted)]
    if cov.empty or "common_band" not in cov:
        return pd.DataFrame()
    present = cov.groupby("domain")["common_band"].transform(lambda s: s.notna().any() and s.sum() > 0)
    cov = cov[present]
    return pd.DataFrame({
        "code": cov["code"], "domain": cov["domain"], "indicator": OFFER, "label": OFFER_LABEL,
        "unit": "pour 10 000 hab.", "value": 10000 * cov["common_band"] / cov["population"].where(cov["population"] > 0),
        "status": "", "source": cov["method"], "vintage": "",
    })


def measured_need(
    social: pd.DataFrame,
    rules: dict[str, Any],
    code: str = "code_qp",
    *,
    coverage: pd.DataFrame | None = None,
    reference: pd.DataFrame | None = None,
    reference_label: str = "QPV du catalogue",
) -> pd.DataFrame:
    """The evidence table: one row per (territory, domain, indicator) with its position in the reference.

    ``reference`` is a long table (``code``, ``indicator``, ``value``) of the
    reference territories, for instance all QPVs of France; an indicator it
    lacks is placed among the territories of ``social`` (the catalogue) and
    says so in ``reference_label``.
    """
    cols = [code, "indicator", "label", "unit", "value", "status", "source", "vintage"]
    long = social[[c for c in cols if c in social]] if len(social) else pd.DataFrame(columns=cols)
    long = pd.concat([long, derive(long, rules, code)], ignore_index=True).rename(columns={code: "code"})
    ref_long = None
    if reference is not None and len(reference):
        ref = reference.rename(columns={code: "code"})
        ref_long = pd.concat([ref, derive(ref.rename(columns={"code": code}), rules, code).rename(columns={code: "code"})])
    offer = _offer_rows(coverage, rules) if coverage is not None else pd.DataFrame()
    frames = []
    for domain, spec in rules["domains"].items():
        for indicator, ind in (spec.get("indicators") or {}).items():
            if indicator == OFFER:
                if offer.empty:  # no domain of the run has a common-law offer in the data (« santé » left out)
                    continue
                sub = offer[offer["domain"] == domain]
                pool, label = (sub["value"], f"{reference_label} (offre géolocalisée)")
            else:
                sub = long[long["indicator"] == indicator]
                national = ref_long[ref_long["indicator"] == indicator]["value"] if ref_long is not None else None
                if national is not None and national.notna().any():
                    pool, label = national, reference_label
                else:
                    pool, label = sub["value"], "QPV du catalogue" if code == "code_qp" else "communes du catalogue"
                    if ref_long is None:
                        label = reference_label
            if sub.empty:
                continue
            direction = ind.get("direction", "up")
            pos = percentile(sub["value"], pool)
            frames.append(sub.drop(columns=[c for c in ("domain", "nature") if c in sub]).assign(
                domain=domain, position=(1 - pos) if direction == "down" else pos,
                weight=float(ind.get("weight", 1)), direction=direction, ambiguous=bool(ind.get("ambiguous", False)),
                reference_median=float(pool.median()) if pool.notna().any() else np.nan,
                reference_n=int(pool.notna().sum()), reference_label=label,
            ))
    if not frames:
        return pd.DataFrame(columns=EVIDENCE_COLUMNS)
    return pd.concat(frames, ignore_index=True)[EVIDENCE_COLUMNS]


def _intensity(evidence: pd.DataFrame) -> pd.DataFrame:
    """Per (territory, domain): weighted mean of positions, and whether a non-ambiguous indicator stands behind it."""
    ok = evidence["position"].notna() & (evidence["weight"] > 0)
    ev = evidence.assign(pw=(evidence["position"] * evidence["weight"]).where(ok, 0.0), w=evidence["weight"].where(ok, 0.0),
                         firm=ok & ~evidence["ambiguous"].astype(bool))
    agg = ev.groupby(["code", "domain"]).agg(S=("pw", "sum"), W=("w", "sum"), firm=("firm", "any"))
    agg["need"] = (agg["S"] / agg["W"].where(agg["W"] > 0)).where(agg["firm"]).round(2)
    return agg


# --------------------------------------------------------------------------- response, levels


def _posts_counted(cov: pd.DataFrame, rules: dict[str, Any]) -> pd.Series:
    """Adulte-relais posts counted in each domain: a post is shared equally by the mediation domains."""
    domains = (rules.get("mediation") or {}).get("domains", [])
    counted = cov["domain"].isin(domains) & cov["posts_known"]
    return (cov["mediation_posts"].fillna(0) / max(len(domains), 1)).where(counted, 0.0)


def _response(cov: pd.DataFrame, rules: dict[str, Any], service_weight: float, post_weight: float) -> pd.Series:
    """Share of the need already answered (0 to 1), NaN when the data hold no response of the domain."""
    conf = rules.get("response") or {}
    target = cov["population"] / 10000 * float(conf.get("target_per_10000", 2.5))
    known_services = cov["responses_known"].fillna(False).astype(bool)
    known_posts = cov["posts_known"] & cov["domain"].isin((rules.get("mediation") or {}).get("domains", []))
    capacity = (cov["responses_band"].fillna(0) * service_weight).where(known_services, 0.0) \
        + _posts_counted(cov, rules) * post_weight
    response = (capacity / target.where(target > 0)).astype(float).clip(0, 1).round(2)
    return response.where(known_services | known_posts)


def _level(unmet: pd.Series, fort: float, moyen: float) -> pd.Series:
    out = np.select([unmet >= fort, unmet >= moyen], ["fort", "moyen"], "faible")
    return pd.Series(np.where(unmet.isna(), UNDETERMINED, out), index=unmet.index)


def _raise(level: pd.Series, raised: pd.Series) -> pd.Series:
    up = {"faible": "moyen", "moyen": "fort", "fort": "fort", UNDETERMINED: "moyen"}
    return level.where(~raised, level.map(up))


def expressed_need(observations: pd.DataFrame | None, code: str) -> pd.DataFrame:
    """Per (territory, domain): count and weight of observations, their kinds of source."""
    cols = ["code", "domain", "obs_count", "obs_weight", "obs_source_count", "obs_sources"]
    if observations is None or observations.empty:
        return pd.DataFrame(columns=cols)
    obs = observations[observations[code].astype(str) != ""]
    if obs.empty:
        return pd.DataFrame(columns=cols)
    grouped = obs.groupby([code, "domain"])
    out = grouped.agg(obs_count=("weight", "size"), obs_weight=("weight", "sum"),
                      obs_source_count=("source_type", "nunique")).reset_index()
    out["obs_sources"] = grouped["source_type"].agg(
        lambda s: ", ".join(f"{k} : {v}" for k, v in s.value_counts().items())).to_numpy()
    return out.rename(columns={code: "code"})[cols]


# --------------------------------------------------------------------------- the table


#: The coverage's figures, floats in the needs table (a cold computation and the Parquet cache give the same JSON).
COUNT_COLUMNS = ["services_inside", "services_band", "responses_band", "common_band", "places_band", "nearest_m",
                 "nearest_response_m", "per_1000"]


def unmet_needs(
    social: pd.DataFrame,
    coverage: pd.DataFrame,
    observations: pd.DataFrame | None,
    rules: dict[str, Any],
    *,
    code: str = "code_qp",
    population: pd.Series | None = None,
    mediation_posts: pd.Series | None = None,
    reference: pd.DataFrame | None = None,
    reference_label: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Unmet needs per (territory, domain), every domain of the rules for every territory, and their evidence.

    ``population`` gives the inhabitants of each territory (people concerned);
    ``mediation_posts`` the adulte-relais posts in place (None: no post data);
    ``reference`` a national long table to place the indicators in.
    """
    label = reference_label or ("QPV du catalogue" if code == "code_qp" else "communes du catalogue")
    evidence = measured_need(social, rules, code, coverage=coverage, reference=reference, reference_label=label)
    codes = pd.Index(pd.concat([social[code] if len(social) else pd.Series(dtype=str), coverage["code"]]).unique())
    grid = pd.MultiIndex.from_product([codes, list(rules["domains"])], names=["code", "domain"])
    cov = coverage.drop_duplicates(["code", "domain"]).set_index(["code", "domain"]).reindex(grid)
    out = cov.drop(columns=["population", "level", "domain_label"], errors="ignore")
    out = out.join(_intensity(evidence)[["need", "S", "W"]]).reset_index()
    counts = [c for c in COUNT_COLUMNS if c in out]  # floats however the coverage parts were concatenated
    out[counts] = out[counts].astype(float)
    pop = population if population is not None else pd.Series(dtype=float)
    out["population"] = out["code"].map(pop)
    out["domain_label"] = out["domain"].map(DOMAINS)
    out["posts_known"] = mediation_posts is not None
    out["mediation_posts"] = out["code"].map(mediation_posts if mediation_posts is not None else pd.Series(dtype=float)).fillna(0.0)
    out["responses_known"] = out["responses_known"].astype("boolean").fillna(False).astype(bool)
    conf = rules.get("response") or {}
    sw, pw = float(conf.get("service_weight", 1)), float(conf.get("post_weight", 1))
    out["response"] = _response(out, rules, sw, pw)
    out["posts_counted"] = _posts_counted(out, rules).round(2)
    out["response_target"] = (out["population"] / 10000 * float(conf.get("target_per_10000", 2.5))).round(1)
    out["unmet"] = (out["need"] * (1 - out["response"].fillna(0))).round(2)
    fort, moyen = _levels(rules)
    out["level_measured"] = _level(out["unmet"], fort, moyen)
    expressed = expressed_need(observations, code)
    out = out.merge(expressed, on=["code", "domain"], how="left")
    out["obs_count"] = out["obs_count"].fillna(0).astype(int)
    out["obs_weight"] = out["obs_weight"].fillna(0.0).astype(float)
    out["obs_source_count"] = out["obs_source_count"].fillna(0).astype(int)
    out["obs_sources"] = out["obs_sources"].fillna("")
    exp = rules.get("expressed") or {}
    out["raised"] = (out["obs_weight"] >= float(exp.get("min_observations", 5))) & (
        out["obs_source_count"] >= int(exp.get("min_sources", 2)))
    out["level"] = _raise(out["level_measured"], out["raised"])
    out["priority"] = (out["unmet"] * out["population"]).round(0)
    out["note"] = np.where(out["response"].isna(), "réponse existante non mesurée : aucune réponse de ce domaine dans les données", "")
    out = rank(out.drop(columns=["S", "W"]))
    # A need's robustness is the territory's, on its whole population: a commune that holds part of a quartier
    # shows the quartier's (its share of the people would make the quartier's responses look larger than they are).
    out["robustness"] = robustness(out, evidence, rules).to_numpy()
    return out, evidence


def describe(needs: pd.DataFrame, evidence: pd.DataFrame, rules: dict[str, Any]) -> pd.DataFrame:
    """Add ``reason``, ``expressed_reason`` and ``missing``: the plain French of each row, from its own figures.

    Done for the rows a report shows (one commune), not for a whole catalogue.
    """
    if needs.empty:
        return needs.assign(reason=pd.Series(dtype=str), expressed_reason=pd.Series(dtype=str),
                            missing=pd.Series(dtype=str))
    keys = list(zip(needs["code"], needs["domain"]))
    ev = evidence[evidence["code"].isin(set(needs["code"]))]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rec in ev.to_dict("records"):
        groups.setdefault((rec["code"], rec["domain"]), []).append(rec)
    out = needs.copy()
    out["missing"] = _missing(keys, groups, rules)
    out["reason"] = [_reason(r, groups.get((r.code, r.domain), []), rules) for r in out.itertuples(index=False)]
    out["expressed_reason"] = [_expressed_reason(r, rules) for r in out.itertuples(index=False)]
    return out


def rank(needs: pd.DataFrame) -> pd.DataFrame:
    """Sort by level, then people concerned (unmet × inhabitants), then unmet need; ``rank`` from 1."""
    if needs.empty:
        return needs.assign(rank=pd.Series(dtype=int))
    order = needs["level"].map(LEVEL_ORDER).fillna(9)
    out = needs.assign(_o=order).sort_values(["_o", "priority", "unmet", "code", "domain"],
                                             ascending=[True, False, False, True, True], na_position="last")
    out = out.drop(columns="_o").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out


def indicator_labels(rules: dict[str, Any]) -> dict[str, str]:
    """The French label of every indicator the rules can weigh: ``indicateurs.csv``, the offer, the derived ratios."""
    return {**indicator_table()["libelle"].to_dict(), OFFER: OFFER_LABEL,
            **{k: v.get("label", k) for k, v in (rules.get("derived") or {}).items()}}


def _missing(keys: list[tuple[str, str]], groups: dict[tuple[str, str], list[dict[str, Any]]],
             rules: dict[str, Any]) -> list[str]:
    """Per row: the indicators of the domain the data do not give for this territory (with their status)."""
    labels = indicator_labels(rules)
    result = []
    for key in keys:
        rows = {e["indicator"]: e for e in groups.get(key, [])}
        items = []
        for ind in (rules["domains"][key[1]].get("indicators") or {}):
            e = rows.get(ind)
            if e is not None and not pd.isna(e["position"]):
                continue
            status = text.status_label(e["status"]) if e is not None else "absent des données"
            items.append(f"{labels.get(ind, ind)} ({status})")
        result.append(" ; ".join(items))
    return result


# --------------------------------------------------------------------------- sentences


def _pos(v: float) -> str:
    return text.number(100 * v)


def _figure(value: float, unit: str) -> str:
    digits = 0 if unit in ("€", "personnes", "habitants") or (not text.is_missing(value) and abs(value) >= 100) else 1
    return text.number(value, digits, unit if unit not in ("ratio",) else "")


def _reason(r: Any, evidence: list[dict[str, Any]], rules: dict[str, Any]) -> str:
    """One to four sentences saying why the row has its level, with its own figures (``evidence``: the row's)."""
    fort, moyen = _levels(rules)
    ev = [e for e in evidence if not pd.isna(e["position"])]
    if text.is_missing(r.need):
        why = ("seul un indicateur ambigu (l'indice de jeunesse) est disponible, il ne suffit pas à fonder un niveau"
               if ev else "aucun indicateur du domaine n'est disponible pour ce territoire")
        first = f"Besoin mesuré indéterminé : {why}" + (f" (manquent : {r.missing})." if r.missing else ".")
        if r.raised:
            first += (f" Le niveau moyen vient des besoins exprimés : {text.count(r.obs_count, 'observation')} "
                      f"de {text.count(r.obs_source_count, 'type', 'types')} de source ({r.obs_sources}).")
        return first
    top = sorted(ev, key=lambda e: (-e["weight"], -e["position"]))[:2]
    figures = text.join([f"{e['label'].lower() if e['indicator'] != OFFER else 'offre de droit commun'} "
                         f"{_figure(e['value'], e['unit'])} (médiane de référence {_figure(e['reference_median'], e['unit'])})"
                         for e in top])
    n = max(e["reference_n"] for e in ev)
    parts = [(f"Besoin mesuré {_pos(r.need)} sur 100 (plus défavorisé que {text.percent(100 * r.need, 0)} des "
              f"{text.number(n)} {ev[0]['reference_label']}, en moyenne pondérée de ses indicateurs) : {figures}.")]
    if text.is_missing(r.response):
        parts.append(f"Aucune réponse existante de ce domaine n'est recensée dans les données : le besoin est compté "
                     f"comme non couvert ({_pos(r.unmet)} sur 100), à vérifier avec les partenaires.")
    else:
        answered = []
        if r.responses_known and r.responses_band:
            band = float(r.responses_band)  # a share of the communes' services when the QPV has no outline: « 0,1 »
            answered.append(f"{text.number(band, 0 if band.is_integer() else 1)}{text.NBSP}"
                            f"{text.plural(band, 'réponse existante', 'réponses existantes')} dans la bande")
        if r.posts_counted:
            n_domains = len((rules.get("mediation") or {}).get("domains", []))
            answered.append(f"des postes adultes-relais comptés pour {text.number(r.posts_counted, 2)} (ceux du territoire, "
                            f"{text.number(r.mediation_posts, 1)}, partagés entre {n_domains} domaines)")
        got = text.join(answered) or "aucune réponse recensée"
        target = round(float(r.response_target), 1)
        parts.append(f"Réponse : {got} pour une cible de {text.number(target, 0 if target.is_integer() else 1)} "
                     f"({text.number(float((rules.get('response') or {}).get('target_per_10000', 2.5)), 1)} pour 10 000 habitants), "
                     f"soit {text.percent(100 * r.response, 0)} ; besoin non couvert {_pos(r.need)} × (1 − {text.number(r.response, 2)}) "
                     f"= {_pos(r.unmet)} sur 100.")
    parts.append(f"Niveau {r.level_measured} (fort à partir de {_pos(fort)}, moyen à partir de {_pos(moyen)})."
                 if not r.raised else
                 f"Niveau {r.level_measured} d'après les chiffres, relevé à {r.level} par les besoins exprimés : "
                 f"{text.count(r.obs_count, 'observation')} de {text.count(r.obs_source_count, 'type', 'types')} "
                 f"de source ({r.obs_sources}).")
    poverty = [e for e in ev if e["indicator"] == DEPRIVATION]
    if poverty and r.level in ("fort", "moyen") and poverty[0]["value"] < poverty[0]["reference_median"]:
        p = poverty[0]
        parts.append(f"Son taux de pauvreté ({text.percent(p['value'])}) est sous la médiane de référence "
                     f"({text.percent(p['reference_median'])}) : le niveau tient aux autres indicateurs cités"
                     f"{' et aux besoins exprimés' if r.raised else ''}.")
    return " ".join(parts)


def _expressed_reason(r: Any, rules: dict[str, Any]) -> str:
    """Why an expressed demand did or did not change the level (empty without observation)."""
    if not r.obs_count:
        return ""
    exp = rules.get("expressed") or {}
    need_obs, need_src = float(exp.get("min_observations", 5)), int(exp.get("min_sources", 2))
    said = f"{text.count(r.obs_count, 'observation')} ({r.obs_sources})"
    if r.raised:
        return f"Demande exprimée retenue : {said} relèvent le niveau de {r.level_measured} à {r.level}."
    if r.level_measured == "fort":
        return f"Demande exprimée : {said}, déjà au niveau fort d'après les chiffres."
    lacks = []
    if r.obs_weight < need_obs:
        lacks.append(f"il faut au moins {text.count(need_obs, 'observation')} (poids {text.number(r.obs_weight, 1)})")
    if r.obs_source_count < need_src:
        lacks.append(f"il faut au moins {text.count(need_src, 'type', 'types')} de source différents "
                     f"({text.count(r.obs_source_count, 'type', 'types')} ici)")
    return (f"Demande exprimée non retenue comme priorité : {said} ; {text.join(lacks)} pour relever le niveau "
            f"{r.level_measured}. À confirmer par une autre source (marche exploratoire, réunion, entretien).")


# --------------------------------------------------------------------------- robustness


def _weights(rules: dict[str, Any]) -> list[tuple[str, str, float]]:
    return [(d, i, float(s.get("weight", 1))) for d, spec in rules["domains"].items()
            for i, s in (spec.get("indicators") or {}).items() if float(s.get("weight", 1)) > 0]


#: The levels by code (the order of :data:`LEVEL_ORDER`), and the code each one is raised to by expressed needs.
_LEVEL_NAMES = np.array(list(LEVEL_ORDER), dtype=object)
_RAISED_CODE = np.array([LEVEL_ORDER["fort"], LEVEL_ORDER["fort"], LEVEL_ORDER["moyen"], LEVEL_ORDER["moyen"]])


def _levels_of(unmet: np.ndarray, raised: np.ndarray, fort: float, moyen: float) -> np.ndarray:
    """:func:`_level` then :func:`_raise` on plain arrays (the sensitivity computes them many times)."""
    with np.errstate(invalid="ignore"):
        code = np.where(unmet >= fort, LEVEL_ORDER["fort"], np.where(unmet >= moyen, LEVEL_ORDER["moyen"],
                                                                     LEVEL_ORDER["faible"]))
    code[np.isnan(unmet)] = LEVEL_ORDER[UNDETERMINED]
    return _LEVEL_NAMES[np.where(raised, _RAISED_CODE[code], code)]


def sensitivity(needs: pd.DataFrame, evidence: pd.DataFrame, rules: dict[str, Any]) -> pd.DataFrame:
    """Level of each need row when each weight of the rules is moved by ± ``robustness.factor``.

    Columns are ``(label of the weight, ±)``; indicator weights change only
    their domain's mean; the two response weights change every response.
    """
    f = float((rules.get("robustness") or {}).get("factor", 0.5))
    fort, moyen = _levels(rules)
    base = needs.set_index(["code", "domain"])
    agg = _intensity(evidence).reindex(base.index)
    need0, s0, w0 = (agg[c].to_numpy(dtype=float) for c in ("need", "S", "W"))
    firm = agg["firm"].fillna(False).to_numpy(dtype=bool)
    answered = 1 - base["response"].fillna(0).to_numpy(dtype=float)
    raised = base["raised"].fillna(False).to_numpy(dtype=bool)
    ev = evidence[evidence["position"].notna() & (evidence["weight"] > 0)]
    at = base.index.get_indexer(pd.MultiIndex.from_arrays([ev["code"], ev["domain"]]))
    ev_domain, ev_indicator = ev["domain"].to_numpy(dtype=object), ev["indicator"].to_numpy(dtype=object)
    labels = evidence.drop_duplicates("indicator").set_index("indicator")["label"]
    cols: dict[tuple[str, str], np.ndarray] = {}
    for domain, indicator, _ in _weights(rules):
        mine = (ev_domain == domain) & (ev_indicator == indicator) & (at >= 0)
        idx, pos, weight = at[mine], ev["position"].to_numpy(dtype=float)[mine], ev["weight"].to_numpy(dtype=float)[mine]
        name = f"poids de « {labels.get(indicator, OFFER_LABEL if indicator == OFFER else indicator)} » en {DOMAINS[domain].lower()}"
        for sign, k in (("+", 1 + f), ("−", 1 - f)):
            need = need0.copy()
            with np.errstate(invalid="ignore", divide="ignore"):
                moved = np.round((s0[idx] + pos * weight * (k - 1)) / (w0[idx] + weight * (k - 1)), 2)
            need[idx] = np.where(firm[idx], moved, np.nan)
            cols[(name, sign)] = _levels_of(np.round(need * answered, 2), raised, fort, moyen)
    conf = rules.get("response") or {}
    sw, pw = float(conf.get("service_weight", 1)), float(conf.get("post_weight", 1))
    frame = base.reset_index()
    for name, (a, b) in (("poids des réponses existantes", (1, 0)), ("poids des postes adultes-relais", (0, 1))):
        for sign, k in (("+", 1 + f), ("−", 1 - f)):
            resp = _response(frame, rules, sw * (k if a else 1), pw * (k if b else 1)).fillna(0).to_numpy(dtype=float)
            unmet = np.round(base["need"].to_numpy(dtype=float) * (1 - resp), 2)
            cols[(name, sign)] = _levels_of(unmet, raised, fort, moyen)
    # One block of levels (the two response weights always give four columns), read back whole by robustness.
    return pd.DataFrame(np.column_stack(list(cols.values())), index=base.index,
                        columns=pd.MultiIndex.from_tuples(list(cols)))


def robustness(needs: pd.DataFrame, evidence: pd.DataFrame, rules: dict[str, Any]) -> pd.Series:
    """« robuste » or « dépend des hypothèses : … » for each row whose level is fort or moyen ("" otherwise)."""
    if needs.empty:
        return pd.Series(dtype=str)
    levels = sensitivity(needs, evidence, rules)
    f = float((rules.get("robustness") or {}).get("factor", 0.5))
    heads = [f"{name} {sign}{text.number(100 * f)} % → " for name, sign in levels.columns]
    moved = levels.to_numpy()
    current = needs["level"].to_numpy(dtype=object)
    changed = moved != current[:, None]
    out = np.full(len(needs), "", dtype=object)
    for i in np.flatnonzero(np.isin(current, ["fort", "moyen"])):
        js = np.flatnonzero(changed[i])
        out[i] = "dépend des hypothèses : " + " ; ".join(heads[j] + moved[i, j] for j in js) if js.size else "robuste"
    return pd.Series(out, index=needs.index, dtype=object)


def explain(rows: pd.DataFrame, evidence: pd.DataFrame) -> list[list[dict[str, Any]]]:
    """The evidence of each unmet need of ``rows`` as plain records (figures, references, sources).

    The evidence is grouped once for all the rows: a report explains each of its needs in several places.
    """
    groups: dict[tuple[str, str], list[Any]] = {}
    for r in evidence[evidence["code"].isin(set(rows["code"]))].itertuples(index=False):
        groups.setdefault((r.code, r.domain), []).append(r)
    return [_explained(row, groups.get((row["code"], row["domain"]), [])) for row in rows.to_dict("records")]


def _explained(row: dict[str, Any], ev: list[Any]) -> list[dict[str, Any]]:
    """One need's records: its indicators (``ev``), the existing responses, the posts and the observations."""
    items = [
        {"type": "indicateur", "indicateur": r.indicator, "libelle": r.label, "valeur": _num(r.value), "unite": r.unit,
         "position_sur_100": _num(None if pd.isna(r.position) else 100 * r.position), "poids": _num(r.weight),
         "ambigu": bool(r.ambiguous), "reference": _num(r.reference_median), "reference_libelle":
         f"médiane des {r.reference_label}", "statut": r.status, "source": r.source, "millesime": r.vintage}
        for r in ev
    ]
    items.append({"type": "couverture", "libelle": f"Réponses existantes du domaine dans la bande ({row['method']})"
                  if isinstance(row.get("method"), str) else "Réponses existantes du domaine",
                  "valeur": _num(row.get("responses_band")) if row.get("responses_known") else None,
                  "connue": bool(row.get("responses_known")),
                  "distance_plus_proche_m": _num(row.get("nearest_response_m"))})
    if row.get("mediation_posts", 0):
        items.append({"type": "mediation", "libelle": "Postes adultes-relais rattachés", "valeur": _num(row["mediation_posts"])})
    if row.get("obs_count", 0):
        items.append({"type": "besoin exprime", "libelle": "Observations et consultations",
                      "valeur": int(row["obs_count"]), "poids": _num(row["obs_weight"]), "sources": row["obs_sources"]})
    return items


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) or pd.isna(v) else round(float(v), 2)
