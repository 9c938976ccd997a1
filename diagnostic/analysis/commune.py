"""One commune's diagnostic: the catalogue-wide tables sliced for it, plus what only it needs.

:func:`build` is what the notebook, ``diagnostic run``, the explorer and the
batch all call; :func:`results` is the ``resultats.json`` written from the
same objects the report shows, so the two cannot disagree.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from diagnostic import __version__
from diagnostic.analysis.decision import decide
from diagnostic.analysis.indicators.cache import Indicators, compute
from diagnostic.analysis.indicators.domains import label_services
from diagnostic.analysis.indicators.needs import (
    METHOD_VERSION,
    describe,
    explain,
    rank,
    rules_version,
)
from diagnostic.analysis.indicators.needs import load_rules as load_need_rules
from diagnostic.analysis.indicators.trends import evolutions
from diagnostic.analysis.recommend import LOCAL_FILE, Context, framing, load_rules, recommend
from diagnostic.errors import ParameterError
from diagnostic.io.catalog import ROLE_LABELS
from diagnostic.io.reference import DOMAINS
from diagnostic.io.sources.postes import funded, partial_years
from diagnostic.io.territory import TerritoryData, load_territory
from diagnostic.options import BAND_M

SCHEMA = "diagnostic-resultats/1"
#: Optional sources, what each brings to the report, and how to add it.
OPTIONAL = {
    "qpv": "les contours des QPV (fichier ANCT QPV 2024, rôle « qpv »)",
    "qpv_indicators": "les indicateurs INSEE par QPV (rôle « qpv_indicators »)",
    "commune_indicators": "les indicateurs INSEE par commune : populations légales, Filosofi (rôle « commune_indicators »)",
    "services": "les équipements et services : BPE de l'INSEE, France Services (rôle « services »)",
    "adultes_relais": "les postes adultes-relais de l'ANCT (rôle « adultes_relais »)",
    "partners": "le registre des partenaires (modèle templates/partenaires_modele.csv, rôle « partners »)",
    "observations": "les besoins exprimés : marches exploratoires, questionnaires (rôle « observations »)",
}


@dataclass
class CommuneDiagnostic:
    """Everything the report of one commune shows."""

    data: TerritoryData
    indicators: Indicators
    code: str
    name: str
    department: str
    population: float
    params: dict[str, Any]
    qpv: gpd.GeoDataFrame
    territories: pd.DataFrame
    social: pd.DataFrame
    commune_social: pd.DataFrame
    share: pd.Series
    coverage: pd.DataFrame
    needs: pd.DataFrame
    evidence: pd.DataFrame
    services: gpd.GeoDataFrame
    commune_shape: gpd.GeoDataFrame
    context_shapes: gpd.GeoDataFrame
    recommendations: list[dict[str, Any]]
    framing: dict[str, Any] = field(default_factory=dict)
    partners: Any = None
    graph: Any = None
    gaps: pd.DataFrame | None = None
    missing: dict[str, str] = field(default_factory=dict)
    #: The commune's EPCI (``siren``, ``nom``, ``nature``, ``nombre_communes``), or None.
    epci: dict[str, Any] | None = None
    #: Posts (adultes-relais, FONJEP) of the contracts held by the commune or its EPCI, every year.
    posts: pd.DataFrame | None = None
    #: Years of the posts files that record only part of the year, with the reason (:func:`~diagnostic.io.sources.postes.partial_years`).
    posts_partial: dict[int, str] = field(default_factory=dict)
    #: The posts funded in the last complete year (:func:`~diagnostic.io.sources.postes.funded`), or None.
    posts_funded: dict[str, Any] | None = None
    #: First and last vintage of each indicator per territory (:func:`diagnostic.analysis.indicators.trends.evolutions`).
    evolutions: pd.DataFrame | None = None
    #: The decision every document renders (:func:`diagnostic.analysis.decision.decide`; ``decision`` in ``resultats.json``).
    decision: dict[str, Any] = field(default_factory=dict)
    #: What the documents say that is derived from this diagnostic alone, kept once computed: « L'essentiel »,
    #: read by the report and by the council note (:func:`diagnostic.report.summary.essentials`).
    said: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def fictional(self) -> bool:
        return self.data.catalog.fictional

    @property
    def has_qpv(self) -> bool:
        return not self.qpv.empty


def validate_params(
    data: TerritoryData, code: str, band_m: float, domains: list[str] | None, qpv_codes: list[str] | None = None
) -> None:
    """Refuse parameters before they reach a notebook: a known commune, a sane band, known domains and QPVs."""
    data.commune(code)
    foreign = sorted(set(qpv_codes or []) - set(data.qpv_in(code)["code_qp"]))
    if foreign:
        raise ParameterError(f"QPV hors de la commune {code} : {', '.join(foreign)}.",
                             hint="« diagnostic territories » liste les communes et leurs QPV.")
    if not 0 <= float(band_m) <= 2000:
        raise ParameterError(f"largeur de bande {band_m} m hors des limites (0 à 2 000 m).",
                             hint="la bande habituelle de la politique de la ville est de 300 m.")
    unknown = sorted(set(domains or []) - set(DOMAINS))
    if unknown:
        raise ParameterError(f"domaine(s) inconnu(s) : {', '.join(unknown)}.", hint=f"domaines : {', '.join(DOMAINS)}.")


def build(
    data: TerritoryData | str | Path,
    code: str,
    *,
    data_dir: str | Path | None = None,
    band_m: float = BAND_M,
    domains: list[str] | None = None,
    needs_rules: str | Path | None = None,
    reco_rules: str | Path | None = None,
    indicators: Indicators | None = None,
    qpv_codes: list[str] | None = None,
) -> CommuneDiagnostic:
    """Assemble the diagnostic of commune ``code`` from a catalogue (or loaded data).

    ``qpv_codes`` restricts the diagnostic to some of the commune's QPVs (all by default).
    """
    if not isinstance(data, TerritoryData):
        data = load_territory(data, data_dir)
    code = str(code).strip()
    validate_params(data, code, band_m, domains, qpv_codes)
    domains = list(domains or DOMAINS)
    indicators = indicators or compute(data, band_m=band_m, rules_path=needs_rules, reco_path=reco_rules)
    commune = data.commune(code)
    need_rules = load_need_rules(needs_rules, reco_rules)
    need_rules = {**need_rules, "domains": {k: v for k, v in need_rules["domains"].items() if k in domains}}
    cut = commune_slice(data, indicators, code, need_rules, qpv_codes)
    qpv, has_qpv, level, key, codes = cut.qpv, cut.has_qpv, cut.level, cut.key, cut.codes
    needs, evidence = cut.needs, cut.evidence
    social = indicators.qpv_social if has_qpv else indicators.commune_social
    social = social[social[key].isin(codes)].rename(columns={key: "code"}).reset_index(drop=True) if len(social) else pd.DataFrame(columns=["code", "indicator", "value"])
    commune_social = indicators.commune_social
    commune_social = commune_social[commune_social["insee_com"] == code].reset_index(drop=True) if len(commune_social) else pd.DataFrame()
    if has_qpv:
        social = own_references(social, commune_social, commune["lib_com"])
    coverage = indicators.coverage[
        (((indicators.coverage["level"] == level) & indicators.coverage["code"].isin(codes))
         | ((indicators.coverage["level"] == "commune") & (indicators.coverage["code"] == code)))
        & indicators.coverage["domain"].isin(domains)
    ].reset_index(drop=True)
    shape = data.communes[data.communes["insee_com"] == code]
    area = shape.geometry.union_all()
    if has_qpv and qpv.geometry.notna().any():
        area = area.union(qpv.geometry.dropna().buffer(band_m).union_all())
    services = label_services(data.services[data.services.intersects(area)]).reset_index(drop=True)
    if data.equipment_labels is not None:  # INSEE's TYPEQU labels where the domain table has none
        unnamed = services["type_label"] == services["type_code"]
        services.loc[unnamed, "type_label"] = services.loc[unnamed, "type_code"].map(data.equipment_labels).fillna(
            services.loc[unnamed, "type_label"])
    context_shapes = data.communes[data.communes.intersects(shape.geometry.union_all().buffer(5000)) & (data.communes["insee_com"] != code)]
    territories = cut.territories
    share = indicators.qpv_share.set_index("insee_com").loc[code]
    partners = graph = gaps = None
    actor_types: set[str] = set()
    if data.partners is not None:
        from diagnostic.analysis import partners as pt
        local = pt.for_commune(data.partners, code)
        if len(local.actors):
            partners = local
            graph = pt.build_graph(partners)
            strong = needs[needs["level"].isin(["fort", "moyen"])].assign(
                code_qp=lambda d: d["code"] if has_qpv else None, insee_com=code)
            gaps = pt.gaps(partners, strong, graph)
            actor_types = set(partners.actors["type_label"])
    partial = partial_years(data.adultes_relais)
    commune_posts = data.posts_of(code)
    in_place = funded(commune_posts, partial)
    ctx = cut.context(data, indicators, need_rules, social=social, gaps=gaps, actor_types=actor_types,
                      posts_in_place=in_place, **_adulte_relais_amount(data, partial))
    reco = load_rules(reco_rules)
    recs = recommend(ctx, reco, data.catalog.path.parent / LOCAL_FILE)
    choice = ctx.decision
    frame = framing(ctx, recs, reco)
    params = {"commune": code, "band_m": float(band_m), "domains": domains,
              "needs_rules": str(needs_rules or "templates/besoins.yaml"),
              "reco_rules": str(reco_rules or "templates/recommandations.yaml"),
              "methode": method_version(need_rules, reco)}
    if qpv_codes:
        params["qpv_codes"] = sorted(qpv_codes)
    return CommuneDiagnostic(
        data=data, indicators=indicators, code=code, name=commune["lib_com"], department=commune["insee_dep"],
        population=float(commune["population"]), params=params, qpv=qpv, territories=territories,
        social=social, commune_social=commune_social, share=share, coverage=coverage, needs=needs, evidence=evidence,
        services=services, commune_shape=shape, context_shapes=context_shapes, recommendations=recs, framing=frame,
        partners=partners, graph=graph, gaps=gaps,
        missing={role: text for role, text in OPTIONAL.items() if not data.catalog.all(role)},
        epci=data.epci_of(code), posts=commune_posts, posts_partial=partial, posts_funded=in_place,
        evolutions=evolutions(data.qpv_indicators.history if data.qpv_indicators is not None else None, codes),
        decision=choice,
    )


@dataclass
class CommuneSlice:
    """The catalogue-wide tables cut for one commune: what its needs and its decision are computed from."""

    code: str
    name: str
    qpv: gpd.GeoDataFrame
    codes: list[str]
    parts: pd.DataFrame | None
    needs: pd.DataFrame
    evidence: pd.DataFrame
    territories: pd.DataFrame

    @property
    def has_qpv(self) -> bool:
        return not self.qpv.empty

    @property
    def level(self) -> str:
        return "qpv" if self.has_qpv else "commune"

    @property
    def key(self) -> str:
        return "code_qp" if self.has_qpv else "insee_com"

    def context(self, data: TerritoryData, indicators: Indicators, need_rules: dict[str, Any], **extra: Any) -> Context:
        """The recommendation context of this commune; ``extra`` adds what only the full report needs (partners…)."""
        extra.setdefault("social", pd.DataFrame(columns=["code", "indicator", "value"]))
        return Context(
            commune_code=self.code, commune_name=self.name, territories=self.territories, needs=self.needs,
            evidence=self.evidence, observations=_observations(data, self.codes, self.key), has_qpv=self.has_qpv,
            parts=_members(data, indicators, self.codes) if self.has_qpv else None,
            commune_posts=commune_posts_row(indicators, self.code),
            post_domains=list((need_rules.get("mediation") or {}).get("domains", [])), **extra)


def commune_slice(data: TerritoryData, indicators: Indicators, code: str, need_rules: dict[str, Any],
                  qpv_codes: list[str] | None = None, *, detail: bool = True) -> CommuneSlice:
    """Cut the catalogue-wide tables for commune ``code``: its QPVs, its part of each, its ranked needs.

    ``detail`` adds each need's plain-French reason (the report's; the regional synthesis does not need it, and
    the ranking does not depend on it).
    """
    commune = data.commune(code)
    selected = qpv_codes or data.qpv_in(code)["code_qp"]
    qpv = indicators.qpv[indicators.qpv["code_qp"].isin(selected)].reset_index(drop=True)
    has_qpv = not qpv.empty
    level = "qpv" if has_qpv else "commune"
    codes = list(qpv["code_qp"]) if has_qpv else [code]
    parts = commune_parts(indicators, codes, code) if has_qpv else None
    needs, evidence = _commune_needs(indicators, level, codes, need_rules, parts, detail=detail)
    return CommuneSlice(code=code, name=str(commune["lib_com"]), qpv=qpv, codes=codes, parts=parts, needs=needs,
                        evidence=evidence, territories=_territories(qpv, commune, has_qpv, parts))


def commune_decision(data: TerritoryData, indicators: Indicators, code: str, need_rules: dict[str, Any],
                     reco: dict[str, Any], amount: dict[str, Any] | None = None) -> tuple[CommuneSlice, dict[str, Any]]:
    """The decision figures of commune ``code`` without maps, partners nor report: needs, team, posts, target.

    The same functions as :func:`build`, on the same tables, so the regional synthesis and the commune report
    agree; funding and governance, which depend on the partners, are left out (``None``).
    """
    cut = commune_slice(data, indicators, code, need_rules, detail=False)
    ctx = cut.context(data, indicators, need_rules, **(amount or {}))
    return cut, decide(ctx, reco, choices=False)


def adulte_relais_amount(data: TerritoryData) -> dict[str, Any]:
    """:func:`_adulte_relais_amount` for the catalogue's own partial years."""
    return _adulte_relais_amount(data, partial_years(data.adultes_relais))


def _adulte_relais_amount(data: TerritoryData, partial: dict[int, str]) -> dict[str, Any]:
    """The State amount per adulte-relais post in the data: median of the last complete year's posts (none without amounts)."""
    posts = data.adultes_relais
    if posts is None or "amount" not in posts:
        return {}
    if "programme" in posts:
        posts = posts[posts["programme"] == "adulte-relais"]
    paid = posts[(posts["amount"] > 0) & ~posts["year"].isin(partial)]
    if paid.empty:
        return {}
    latest = paid[paid["year"] == paid["year"].max()]
    return {"adulte_relais_amount": float(latest["amount"].median()), "adulte_relais_year": str(latest["year"].max())}


def method_version(need_rules: dict[str, Any], reco_rules: dict[str, Any]) -> str:
    """Which method made a report: the code's method, then the versions of both rules files."""
    return f"méthode {METHOD_VERSION} · besoins {rules_version(need_rules)} · recommandations {rules_version(reco_rules)}"


def commune_parts(indicators: Indicators, codes: list[str], code: str) -> pd.DataFrame:
    """Per QPV of ``codes``: the commune's part (``population``), the whole QPV (``population_total``), ``share``."""
    parts = indicators.parts_of()
    rows = []
    for qpv in codes:
        members = parts.get(qpv, [])
        mine = next((pop for com, pop in members if com == code), math.nan)
        known = [pop for _, pop in members if not math.isnan(pop)]
        whole = sum(known) if known else math.nan
        rows.append({"code": qpv, "population": mine, "population_total": whole,
                     "share": mine / whole if whole else math.nan, "intercommunal": len(members) > 1})
    return pd.DataFrame(rows, columns=["code", "population", "population_total", "share", "intercommunal"])


def _members(data: TerritoryData, indicators: Indicators, codes: list[str]) -> pd.DataFrame:
    """The member communes of QPVs ``codes``: their part, name and EPCI (for joint services)."""
    parts = indicators.parts_of()
    rows = [(qpv, com, pop) for qpv in codes for com, pop in parts.get(qpv, [])]
    names, epci, epci_names = data.commune_names, data.membership, data.epci_names
    return pd.DataFrame([{"code_qp": q, "insee_com": c, "population": p, "lib_com": names.get(c),
                          "siren_epci": epci.get(c), "lib_epci": epci_names.get(epci.get(c)) if epci.get(c) else None}
                         for q, c, p in rows],
                        columns=["code_qp", "insee_com", "population", "lib_com", "siren_epci", "lib_epci"])


def commune_posts_row(indicators: Indicators, code: str) -> dict[str, Any]:
    """The commune's QPV population and posts in place (:func:`diagnostic.analysis.indicators.posts.posts_by_commune`);
    ``posts`` and ``year`` are None when the catalogue has no posts files (unknown, not 0)."""
    share = indicators.qpv_share.set_index("insee_com")["qpv_population"]
    population = float(share[code]) if code in share.index and pd.notna(share[code]) else None
    posts = indicators.posts
    row = posts[posts["insee_com"] == code] if posts is not None and len(posts) else pd.DataFrame()
    if row.empty:
        return {"year": None, "posts": None, "posts_fonjep": None, "posts_shared": None, "qpv_population": population}
    r = row.iloc[0]
    return {"year": int(r["year"]), "posts": float(r["posts"]), "posts_fonjep": float(r.get("posts_fonjep", 0.0)),
            "posts_shared": float(r["posts_shared"]), "qpv_population": population}


def own_references(social: pd.DataFrame, commune_social: pd.DataFrame, name: str) -> pd.DataFrame:
    """The commune and EPCI reference columns of a QPV table are the viewing commune's, never another member's."""
    if social.empty or commune_social.empty or "ref_commune" not in social:
        return social
    mine = commune_social.set_index("indicator")
    out = social.copy()
    out["lib_com"] = name
    out["ref_commune"] = out["indicator"].map(mine["value"]).astype(float)
    out["ref_epci"] = out["indicator"].map(mine["ref_epci"]).astype(float)
    out["gap_commune"] = out["value"] - out["ref_commune"]
    out["gap_epci"] = out["value"] - out["ref_epci"]
    return out


def _commune_needs(indicators: Indicators, level: str, codes: list[str], rules: dict[str, Any],
                   parts: pd.DataFrame | None = None, *, detail: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The needs of the commune's territories, ranked from 1 within the commune, each with its robustness.

    The people concerned are the commune's: its part of each QPV (``parts``), not the whole quartier; the level
    and its robustness are the quartier's (:func:`~diagnostic.analysis.indicators.needs.unmet_needs`).
    """
    if indicators.needs.empty:
        return indicators.needs, indicators.evidence
    needs = indicators.rows_of("needs", level, codes)
    needs = needs[needs["domain"].isin(rules["domains"])]
    evidence = indicators.rows_of("evidence", level, codes).reset_index(drop=True)
    if parts is not None and len(needs):
        part = needs["code"].map(parts.set_index("code")["population"])
        needs = needs.assign(population=part.where(part.notna(), needs["population"]))
        needs = needs.assign(priority=(needs["unmet"] * needs["population"]).round(0))
    needs = rank(needs)
    if detail:
        needs = describe(needs, evidence, rules)
    return needs, evidence


def _territories(qpv: gpd.GeoDataFrame, commune: pd.Series, has_qpv: bool, parts: pd.DataFrame | None = None) -> pd.DataFrame:
    """The territories of the report: the commune's part of each QPV (``population``) beside the whole quartier."""
    if has_qpv:
        out = pd.DataFrame({"code": qpv["code_qp"], "name": qpv["lib_qp"], "communes": qpv["communes"]})
        whole = qpv["population"] if "population" in qpv else pd.Series(float("nan"), index=qpv.index)
        mine = parts.set_index("code") if parts is not None else pd.DataFrame(index=out["code"])
        part = out["code"].map(mine["population"]) if "population" in mine else pd.Series(float("nan"), index=out.index)
        out["population"] = part.where(part.notna(), whole).to_numpy()
        out["population_total"] = whole.where(whole.notna(), out["code"].map(mine.get("population_total", pd.Series(dtype=float)))).to_numpy()
        out["share"] = (out["population"] / out["population_total"]).to_numpy()
        out["intercommunal"] = out["communes"].astype(str).str.contains(",")
        if "predecessors" in qpv:  # a 2024 QPV shown with the indicators of its 2015 predecessors
            out["predecessors"] = qpv["predecessors"].fillna("")
        return out.reset_index(drop=True)
    return pd.DataFrame({"code": [commune["insee_com"]], "name": [commune["lib_com"]],
                         "population": [commune["population"]], "population_total": [commune["population"]],
                         "share": [1.0], "intercommunal": [False], "communes": [commune["insee_com"]]})


def _observations(data: TerritoryData, codes: list[str], key: str) -> pd.DataFrame | None:
    if data.observations is None:
        return None
    return data.observations[data.observations[key].isin(codes)]


def _clean(value: Any) -> Any:
    """JSON-friendly value: NaN becomes null, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def results(diag: CommuneDiagnostic) -> dict[str, Any]:
    """The content of ``resultats.json`` (documented in the README), without dates: reruns compare equal."""
    needs = []
    names = diag.territories.set_index("code")["name"]
    for row, proofs in zip(diag.needs.to_dict("records"), explain(diag.needs, diag.evidence)):
        needs.append({
            "territoire": row["code"], "territoire_nom": names.get(row["code"], row["code"]),
            "domaine": row["domain"], "domaine_libelle": row["domain_label"], "niveau": row["level"],
            "niveau_mesure": row["level_measured"], "releve_par_besoins_exprimes": bool(row["raised"]),
            "rang": int(row["rank"]), "population": row["population"], "besoin": row["need"],
            "reponse": row["response"], "score_non_couvert": row["unmet"], "priorite": row["priority"],
            "raison": row["reason"], "robustesse": row["robustness"], "demande_exprimee": row["expressed_reason"],
            "donnees_manquantes": row["missing"], "remarque": row["note"],
            "preuves": proofs,
        })
    return _clean({
        "schema": SCHEMA,
        "commune": {
            "code": diag.code, "nom": diag.name, "departement": diag.department, "population": diag.population,
            # Unknown, not zero, when the catalogue has no QPV outlines at all.
            "population_qpv": None if "qpv" in diag.missing else diag.share["qpv_population"],
            "part_population_qpv": None if "qpv" in diag.missing else diag.share["qpv_share"],
            "nombre_qpv": len(diag.qpv),
            "epci": diag.epci,
        },
        "donnees_fictives": diag.fictional,
        "qpv": [
            {"code": r["code"], "nom": r["name"], "population": r["population"],
             "population_quartier": r["population_total"], "part_commune": r["share"],
             "intercommunal": bool(r["intercommunal"]), "communes": r["communes"].split(","),
             **({"predecesseurs_2015": [c for c in r["predecessors"].split(",") if c]} if "predecessors" in r else {})}
            for _, r in diag.territories.iterrows()
        ] if diag.has_qpv else [],
        "niveau_d_analyse": "qpv" if diag.has_qpv else "commune",
        "indicateurs": [
            {"territoire": r["code"], "indicateur": r["indicator"], "libelle": r["label"], "valeur": r["value"],
             "unite": r["unit"], "statut": r["status"], "source": r["source"], "millesime": r["vintage"]}
            for _, r in diag.social.iterrows()
        ],
        "evolutions": [
            {"indicateur": r["indicator"], "territoire": r["code"], "premier_millesime": r["first_vintage"],
             "premiere_valeur": r["first_value"], "dernier_millesime": r["last_vintage"],
             "derniere_valeur": r["last_value"], "evolution": r["change"]}
            for _, r in diag.evolutions.iterrows()
        ] if diag.evolutions is not None else [],
        "postes": posts_summary(diag.posts, diag.posts_partial),
        "besoins_non_couverts": needs,
        "recommandations": [
            {"id": r["id"], "type": r["type"], "domaine": r["domain"], "priorite": r["priority"], "titre": r["title"],
             "texte": r["text"], "origine": r["origin"], "preuves": r["evidence"]}
            for r in diag.recommendations
        ],
        "cadrage": diag.framing,
        "decision": diag.decision,
        "partenariat": None if diag.gaps is None else {
            "acteurs": int(diag.graph.number_of_nodes()), "relations": int(diag.graph.number_of_edges()),
            "liens_a_creer": diag.gaps.to_dict("records"),
        },
        "sources_manquantes": [{"role": k, "libelle": ROLE_LABELS[k], "comment_ajouter": v} for k, v in diag.missing.items()],
        "millesimes": diag.data.vintages(),
        "parametres": diag.params,
        "versions": {"atelier": __version__, "donnees": diag.data.catalog.fingerprint(),
                     "methode": diag.params["methode"]},
    })


def posts_summary(posts: pd.DataFrame | None, partial: dict[int, str]) -> list[dict[str, Any]]:
    """Posts per year, programme and contrat de ville, with their State funding (for ``resultats.json``).

    A post counts once (``post_id``) however many records it has; a year of ``partial`` is marked.
    """
    if posts is None or posts.empty:
        return []
    g = posts.assign(lib_cv=posts["lib_cv"].fillna("")).groupby(["year", "programme", "code_cv", "lib_cv"])
    table = g.agg(postes=("post_id", "nunique"), montant=("amount", "sum"), employeurs=("employer", "nunique"))
    return [{"annee": int(y), "programme": p, "contrat_de_ville": c, "libelle": lib, **row,
             "annee_partielle": int(y) in partial}
            for (y, p, c, lib), row in table.to_dict("index").items()]


def write_json(diag: CommuneDiagnostic, path: Path) -> Path:
    from diagnostic._fs import write_atomic

    return write_atomic(path, json.dumps(results(diag), ensure_ascii=False, indent=2, sort_keys=False) + "\n")
