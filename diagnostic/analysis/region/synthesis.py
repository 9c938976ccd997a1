"""The regional synthesis of one catalogue: where mediation employment should grow, and how it has moved.

:func:`build_synthesis` gathers, from the same library functions as the commune diagnostics,
the needs and decision of every commune with QPVs (its ``resultats.json`` when a batch produced it in the
output folder with the current fingerprint, else :func:`diagnostic.analysis.commune.commune_decision` on the
catalogue-wide tables), the posts in place and the gap to the one target ratio
(:mod:`diagnostic.analysis.indicators.posts`), the ranking of ``diagnostic/resources/rules/region.yaml``, the
trends and the partnership opportunities; :func:`results` is ``synthese_regionale.json`` (documented in the
README), written from the same objects as the page.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from diagnostic import __version__, text
from diagnostic.analysis.indicators.posts import MEDIATION_PROGRAMME, reference_year
from diagnostic.analysis.region import posts as pt
from diagnostic.analysis.region.rules import PROGRAMMES, RANKING_KEYS, employer_label, load_rules
from diagnostic.analysis.region.territories import (
    STATUS_LABELS,
    assess,
    epci_table,
    rank,
    reason,
    strongest,
    well_equipped,
)
from diagnostic.errors import ParameterError
from diagnostic.io.territory import TerritoryData, load_territory

SCHEMA = "diagnostic-synthese-regionale/1"
MEDIATION_TYPE = "mediation"


@dataclass
class Synthesis:
    """Everything the regional page shows (and ``synthese_regionale.json`` holds)."""

    data: TerritoryData
    rules: dict[str, Any]
    department: str | None
    departments: list[str]
    reference_year: int | None
    communes: pd.DataFrame
    epci: pd.DataFrame
    prospects: dict[str, pd.DataFrame]
    equipped: dict[str, pd.DataFrame]
    posts: pd.DataFrame
    trends: dict[str, pd.DataFrame]
    opportunities: dict[str, Any]
    epci_shapes: gpd.GeoDataFrame | None
    missing: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        scope = f"département {self.department}" if self.department else "région"
        return f"Synthèse régionale de la médiation sociale — {self.data.catalog.name} ({scope})"

    @property
    def years(self) -> list[int]:
        return sorted(int(y) for y in self.posts["year"].unique()) if len(self.posts) else []


def departments_of(data: TerritoryData) -> list[str]:
    return sorted(data.communes["insee_dep"].dropna().astype(str).unique())


def check_department(data: TerritoryData, department: str | None) -> str | None:
    """``department`` as given when the catalogue holds it; a French parameter error (code 22) otherwise."""
    if department is None:
        return None
    department = str(department).strip()
    known = departments_of(data)
    if department not in known:
        raise ParameterError(f"le département « {department} » n'est pas dans le catalogue « {data.catalog.name} ».",
                             path=data.catalog.path, hint=f"départements du catalogue : {', '.join(known)}.")
    return department


def post_tables(data: TerritoryData) -> dict[str, pd.DataFrame | None]:
    """The posts the catalogue declares, as the loader gives them (its ``programme`` column says which)."""
    return {"adulte-relais": data.adultes_relais}


def file_lines(data: TerritoryData) -> pd.DataFrame:
    """Per posts file of the catalogue (one programme and year each): records read (France) and kept (territory)."""
    by_path = {r.path: r for r in data.reports if r.role == "adultes_relais"}
    rows = []
    for src in data.catalog.all("adultes_relais"):
        for item in (*src.earlier, src):
            report = by_path.get(item.path)
            if report is None or not str(item.vintage or "").isdigit():
                continue
            rows.append({"programme": str(src.options.get("programme", "adulte-relais")), "year": int(item.vintage),
                         "region": report.rows_kept,  # distinct records: France on the same counting
                         "france": report.rows_distinct if report.rows_distinct is not None else report.rows_read})
    return pd.DataFrame(rows, columns=["programme", "year", "region", "france"])


def epci_membership(data: TerritoryData) -> pd.DataFrame:
    """Commune → EPCI (``insee_com``, ``siren_epci``, ``lib_epci``): :attr:`TerritoryData.membership` with the names
    of :attr:`TerritoryData.epci_names`."""
    m = data.membership
    table = pd.DataFrame({"insee_com": pd.Series(m.index, dtype="string"), "siren_epci": pd.Series(m.to_numpy(), dtype="string")})
    return table.assign(lib_epci=table["siren_epci"].map(data.epci_names)).reset_index(drop=True)


def epci_shapes(data: TerritoryData) -> gpd.GeoDataFrame | None:
    """EPCI outlines (``siren_epci``, ``lib_epci``, geometry in Lambert-93), when the catalogue has them."""
    if data.epci is None or data.epci.epci.geometry.isna().all():
        return None
    shapes = data.epci.epci[data.epci.epci.geometry.notna()]
    return shapes[["siren_epci", "lib_epci", "geometry"]].reset_index(drop=True)


def batch_results(data: TerritoryData, codes: list[str], output: Path) -> dict[str, dict]:
    """The ``resultats.json`` a batch wrote in ``output`` for ``codes``, where its fingerprint is still the
    current one (same data, rules, code and default parameters: the figures would be the same)."""
    if not (output / "manifest.json").is_file():
        return {}
    from diagnostic.pipeline.manifest import input_hashes, read_manifest
    from diagnostic.pipeline.run import run_parameters

    entries = read_manifest(output)["communes"]
    done = [c for c in codes if entries.get(c, {}).get("statut") in ("ok", "ignore")
            and (output / c / "resultats.json").is_file()]
    hashes = input_hashes(data, {c: run_parameters(data, c) for c in done}) if done else {}
    out = {}
    for code in done:
        if entries[code].get("empreinte") != hashes[code]:
            continue
        try:
            res = json.loads((output / code / "resultats.json").read_text(encoding="utf-8"))
        except ValueError:
            continue
        if "decision" in res:
            out[code] = res
    return out


def _summary(rows: list[dict[str, Any]], dec: dict[str, Any]) -> dict[str, Any]:
    """A commune's figures in the synthesis, from its needs rows (``resultats.json`` form) and its decision."""
    level = strongest([r.get("niveau") for r in rows])
    strong = list(dict.fromkeys(r.get("domaine_libelle") or r.get("domaine") for r in rows if r.get("niveau") == "fort"))
    medium = list(dict.fromkeys(r.get("domaine_libelle") or r.get("domaine") for r in rows if r.get("niveau") == "moyen"))
    concerned = {r.get("territoire"): r.get("population") for r in rows if r.get("niveau") in ("fort", "moyen")}
    return {"need_level": level, "strong_domains": strong, "medium_domains": [d for d in medium if d not in strong],
            "people": float(sum(v for v in concerned.values() if not text.is_missing(v))),
            "team": dec["equipe"]["taille"], "joint_share": float(sum(j["part_equipe"] for j in dec["services_communs"])),
            "needed": dec["mediateurs_necessaires"]}


def commune_figures(data: TerritoryData, codes: list[str], output: Path, indicators: Any) -> dict[str, dict]:
    """Per commune: need level and domains, people concerned (its inhabitants of the QPVs with a need of level
    fort or moyen), its own team and its share of joint services.

    From a batch's ``resultats.json`` when its fingerprint matches (``results_origin`` « lot »), else from
    :func:`diagnostic.analysis.commune.commune_decision` on the catalogue-wide tables (« calculé »): the same
    functions as the commune reports, without maps, partners nor report.
    """
    from diagnostic.analysis.commune import adulte_relais_amount, commune_decision
    from diagnostic.analysis.indicators.needs import load_rules as need_rules
    from diagnostic.analysis.recommend import load_rules as reco_rules

    reused = batch_results(data, codes, output)
    needs_conf, reco, amount = need_rules(), reco_rules(), adulte_relais_amount(data)
    out = {}
    for code in codes:
        if code in reused:
            res = reused[code]
            out[code] = {**_summary(res.get("besoins_non_couverts") or [], res["decision"]), "results_origin": "lot"}
            continue
        cut, dec = commune_decision(data, indicators, code, needs_conf, reco, amount)
        rows = [{"territoire": r.code, "niveau": r.level, "domaine": r.domain, "domaine_libelle": r.domain_label,
                 "population": r.population} for r in cut.needs.itertuples(index=False)] if len(cut.needs) else []
        out[code] = {**_summary(rows, dec), "results_origin": "calculé"}
    return out


def build_synthesis(
    data: TerritoryData | str | Path,
    output: str | Path,
    *,
    department: str | None = None,
    data_dir: str | Path | None = None,
    rules_path: str | Path | None = None,
) -> Synthesis:
    """Assemble the regional synthesis of a catalogue (or of one of its departments) into ``output``'s terms.

    ``output`` is where the page goes; when a batch wrote its reports there, their results are reused.
    """
    from diagnostic.analysis.indicators.cache import compute

    if not isinstance(data, TerritoryData):
        data = load_territory(data, data_dir)
    department = check_department(data, department)
    rules = load_rules(rules_path)
    output = Path(output)
    departments = departments_of(data)
    scope = [department] if department else departments
    membership = epci_membership(data)
    names = epci_names(membership)
    in_region = region_posts(data, rules, membership)
    year = reference_year(data.adultes_relais)
    current = in_region[in_region["year"] == year] if year is not None else in_region.iloc[0:0]
    missing = _missing(data, in_region, membership, rules)

    indicators = compute(data)
    share = indicators.qpv_share.set_index("insee_com")
    with_qpv = data.communes[data.communes["qpv_count"] > 0]
    communes = pd.DataFrame({
        "code": with_qpv["insee_com"].astype(str).to_numpy(), "name": with_qpv["lib_com"].to_numpy(),
        "insee_dep": with_qpv["insee_dep"].astype(str).to_numpy(), "qpv_count": with_qpv["qpv_count"].to_numpy(),
        "population": with_qpv["population"].to_numpy(),
    })
    communes["insee_com"] = communes["code"]
    communes["qpv_population"] = communes["code"].map(share["qpv_population"]).astype(float)
    communes["siren_epci"] = communes["code"].map(membership.drop_duplicates("insee_com").set_index("insee_com")["siren_epci"])
    communes["lib_epci"] = communes["siren_epci"].map(names)
    in_scope = communes["insee_dep"].isin(scope)
    figures = commune_figures(data, list(communes.loc[in_scope, "code"]), output, indicators)
    empty = {"need_level": "indéterminé", "strong_domains": [], "medium_domains": []}
    for column in ("need_level", "strong_domains", "medium_domains", "people", "team", "joint_share", "needed",
                   "results_origin"):
        communes[column] = communes["code"].map(lambda c, k=column: figures.get(c, empty).get(k, empty.get(k)))
    communes["report"] = communes["code"].map(
        lambda c: f"{c}/rapport.html" if (output / c / "rapport.html").is_file() else "")
    posts = indicators.posts.set_index("insee_com")
    posts_known = len(posts) > 0  # without posts files the posts in place are unknown, never 0
    for column in [f"posts_{p}" for p in rules["programmes"]] + ["posts_shared", "posts"]:
        communes[column] = communes["code"].map(posts[column]).fillna(0.0).astype(float) if posts_known else math.nan
    epci = epci_table(communes, current, rules["programmes"], names)
    communes = communes[in_scope].reset_index(drop=True)
    if department:
        epci = epci[epci["departments"].map(lambda deps: department in deps)].reset_index(drop=True)
    tables = {}
    for key, table in (("epci", epci), ("communes", communes)):
        table = assess(table, rules)
        table["status_label"] = table["status"].map(STATUS_LABELS)
        table["reason"] = [reason(row, rules) for _, row in table.iterrows()] if len(table) else []
        tables[key] = table
    scoped = in_region[in_region["insee_dep"].isin(scope)]
    trends = post_trends(data, scoped, names)
    return Synthesis(
        data=data, rules=rules, department=department, departments=scope, reference_year=year,
        communes=tables["communes"], epci=tables["epci"],
        prospects={k: rank(t, rules) for k, t in tables.items()},
        equipped={k: well_equipped(t) for k, t in tables.items()},
        posts=scoped, trends=trends,
        opportunities=_opportunities(data, scoped[scoped["year"] <= year] if year is not None else scoped,
                                     year, tables["communes"], membership),
        epci_shapes=epci_shapes(data), missing=missing,
    )


def epci_names(membership: pd.DataFrame) -> pd.Series:
    """SIREN → name of the EPCI of ``membership``."""
    known = membership.dropna(subset=["siren_epci"]).drop_duplicates("siren_epci")
    return known.set_index("siren_epci")["lib_epci"]


def region_posts(data: TerritoryData, rules: dict[str, Any], membership: pd.DataFrame) -> pd.DataFrame:
    """The posts of the rules' programmes in the catalogue's departments, each once per programme and year,
    with their contract's holder commune, EPCI and the employer type (:func:`diagnostic.analysis.region.posts.with_holders`)."""
    posts = pt.with_holders(pt.stack(post_tables(data)), membership, rules)
    posts = posts[posts["programme"].isin(rules["programmes"])]
    return posts[posts["insee_dep"].isin(departments_of(data))
                 | posts["insee_dep"].isna() & posts["code_cv"].isin(_catalogue_contracts(data))].reset_index(drop=True)


def _catalogue_contracts(data: TerritoryData) -> set[str]:
    cv = data.contrats_de_ville
    return set(cv["code_cv"]) if cv is not None else set()


def _missing(data: TerritoryData, posts: pd.DataFrame, membership: pd.DataFrame, rules: dict[str, Any]) -> list[str]:
    """What the catalogue lacks for this synthesis, in French, each with what it prevents."""
    out = []
    if data.qpv.empty:
        out.append("Le catalogue n'a pas de QPV (rôle « qpv ») : ni la population des quartiers prioritaires, ni "
                   "les besoins par quartier, ni les ratios de postes ne peuvent être calculés ; ajoutez les "
                   "contours ou la liste des QPV (diagnostic data fetch les télécharge).")
    if posts.empty:
        out.append("Le catalogue n'a pas de postes adultes-relais ni FONJEP (rôle « adultes_relais ») : les postes "
                   "en place, leur évolution depuis 2020 et les employeurs manquent ; ajoutez les fichiers de l'ANCT.")
    else:
        absent = [PROGRAMMES[p] for p in rules["programmes"] if p not in set(posts["programme"])]
        if absent:
            out.append(f"Postes {text.join(absent)} absents du catalogue : ils ne sont pas comptés dans les postes en place.")
    if data.epci is None and membership.empty:
        out.append("La composition des intercommunalités (EPCI) manque : la synthèse est faite par commune, "
                   "et les postes des contrats intercommunaux ne peuvent être rattachés aux communes.")
    if epci_shapes(data) is None:
        out.append("Les contours des EPCI manquent : la carte colore les communes avec QPV au lieu des intercommunalités.")
    if data.partners is None or not (data.partners.actors["origin"] == "registre").any():
        out.append("Pas de registre des partenaires (rôle « partners ») : les contrats de ville sans opérateur de "
                   "médiation ne peuvent être repérés.")
    return out


def post_trends(data: TerritoryData, scoped: pd.DataFrame, names: pd.Series) -> dict[str, pd.DataFrame]:
    """Posts per year by department, EPCI, contrat de ville and employer type; the catalogue against France.

    ``scoped`` is :func:`region_posts`, restricted to the departments shown; ``names`` is :func:`epci_names`.
    """
    by_epci = pt.counts(scoped, ["siren_epci"])
    by_epci["lib_epci"] = by_epci["siren_epci"].map(names)
    contracts = pt.counts(scoped, ["code_cv"])
    labels = scoped.dropna(subset=["code_cv"]).drop_duplicates("code_cv").set_index("code_cv")["lib_cv"]
    contracts["lib_cv"] = contracts["code_cv"].map(labels)
    employers = pt.counts(scoped, ["employer_type"])
    employers["employer_label"] = employers["employer_type"].map(employer_label)
    return {
        "departements": pt.counts(scoped, ["insee_dep"]),
        "epci": by_epci,
        "contrats": contracts,
        "types_employeurs": employers,
        "region_france": pt.region_and_france(file_lines(data)),
    }


def _opportunities(data: TerritoryData, posts: pd.DataFrame, year: int | None, communes: pd.DataFrame,
                   membership: pd.DataFrame) -> dict[str, Any]:
    """Employers on several territories, contracts with needs and no mediation operator, services recommended.

    An employer of posts is known by its SIREN (names alone are too ambiguous: « CCAS ») and counts as
    present on a territory (holder commune, else EPCI of the contract) where it had posts from the first
    year of the files to the reference year.
    """
    out: dict[str, Any] = {}
    territory_names = data.communes.set_index("insee_com")["lib_com"]
    names = epci_names(membership)
    siren = posts["employer_siret"].astype("string").str.replace(r"\D", "", regex=True).str[:9]
    posts = posts.assign(key=siren.where(siren.str.len() == 9),
                         territory=posts["holder_commune"].fillna(posts["siren_epci"]).fillna(posts["code_cv"]))
    multi = []
    for _, rows in posts.dropna(subset=["key"]).groupby("key"):
        places = sorted(set(rows["territory"].dropna()))
        if len(places) < 2:
            continue
        labels = [str(territory_names.get(p) or names.get(p) or p) for p in places]
        latest = rows.sort_values("year").iloc[-1]
        multi.append({"employeur": str(latest["employer"]), "type": employer_label(latest["employer_type"]),
                      "postes": int((rows["year"] == year).sum()), "territoires": labels,
                      "contrats": sorted(set(rows["code_cv"].dropna())), "origine": "postes"})
    registry = _registry_actors(data)
    for _, actor in registry.iterrows():
        if len(actor["communes"]) >= 2:
            multi.append({"employeur": str(actor["name"]), "type": str(actor["type_label"]), "postes": None,
                          "territoires": [str(territory_names.get(c, c)) for c in actor["communes"]],
                          "contrats": [], "origine": "registre"})
    out["employeurs_plusieurs_territoires"] = sorted(multi, key=lambda m: (-len(m["territoires"]), m["employeur"]))
    out["contrats_sans_operateur"] = None if registry.empty else _contracts_without_operator(data, communes, registry,
                                                                                            membership)
    wanted = communes["needed"].map(lambda t: isinstance(t, (int, float)) and not math.isnan(t) and t > 0)
    recommended = communes.loc[wanted.astype(bool)]
    out["communes_service_preconise"] = [
        {"code": r["code"], "nom": r["name"], "equipe": int(r["team"]), "part_services_communs": r["joint_share"],
         "mediateurs_necessaires": r["needed"], "niveau": r["need_level"], "rapport": r["report"]}
        for _, r in recommended.sort_values(["needed", "code"], ascending=[False, True]).iterrows()
    ]
    return out


def _registry_actors(data: TerritoryData) -> pd.DataFrame:
    if data.partners is None:
        return pd.DataFrame(columns=["name", "type", "type_label", "communes", "qpv"])
    actors = data.partners.actors
    return actors[actors["origin"] == "registre"]


def _contracts_without_operator(data: TerritoryData, communes: pd.DataFrame, registry: pd.DataFrame,
                                membership: pd.DataFrame) -> list[dict[str, Any]]:
    """Contrats de ville whose communes have a strong or medium need and no mediation operator of the registry."""
    from diagnostic.analysis.partners import serves

    cv = data.contrats_de_ville
    if cv is None or cv.empty:
        return []
    of_epci = membership.groupby("siren_epci")["insee_com"].agg(list) if len(membership) else pd.Series(dtype=object)
    needy = communes[communes["need_level"].isin(["fort", "moyen"])].set_index("code")
    operators = registry[registry["type"] == MEDIATION_TYPE]
    pairs = data.partners.qpv_communes
    out = []
    for _, contract in cv.drop_duplicates("code_cv").iterrows():
        holder = str(contract["codgeo"])
        members = [holder] if len(holder) == 5 else list(of_epci.get(holder, []))
        concerned = [c for c in members if c in needy.index]
        if not concerned:
            continue
        if any(serves(op, None, c, pairs) for _, op in operators.iterrows() for c in concerned):
            continue
        out.append({"code_cv": contract["code_cv"], "nom": contract["lib_cv"],
                    "niveau": strongest(list(needy.loc[concerned, "need_level"])),
                    "communes": [str(needy.at[c, "name"]) for c in concerned]})
    return out


def _records(table: pd.DataFrame, rules: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for _, r in table.iterrows():
        row = {
            "code": r["code"], "nom": r["name"], "qpv": int(r["qpv_count"]), "population_qpv": r["qpv_population"],
            "niveau_besoin": r["need_level"], "domaines_forts": list(r["strong_domains"]),
            "domaines_moyens": list(r["medium_domains"]),
            "postes": {p: r[f"posts_{p}"] for p in rules["programmes"]} | {"total": r["posts"]},
            "postes_contrat_intercommunal": r["posts_shared"],
            "postes_pour_10000": r["ratio"], "ecart_a_la_cible": r["gap"], "postes_manquants": r["missing_posts"],
            "statut": r["status"], "raison": r["reason"],
        }
        if "rank" in r:
            row["rang"] = int(r["rank"])
        if "insee_dep" in r:
            row |= {"departement": r["insee_dep"], "epci": r["siren_epci"], "rapport": r["report"] or None,
                    "habitants_concernes": r["people"], "equipe_preconisee": r["team"],
                    "part_services_communs": r["joint_share"], "mediateurs_necessaires": r["needed"],
                    "resultats": r["results_origin"]}
        else:
            row |= {"departements": list(r["departments"]), "communes": list(r["communes"])}
        rows.append(row)
    return rows


def _clean(value: Any) -> Any:
    from diagnostic.analysis.commune import _clean as clean

    return clean(value)


def results(synth: Synthesis) -> dict[str, Any]:
    """The content of ``synthese_regionale.json`` (documented in the README); no date, so reruns compare equal."""
    rules = synth.rules
    trends = {k: v.drop(columns=[c for c in ("programme_label",) if c in v]).to_dict("records")
              for k, v in synth.trends.items()}
    return _clean({
        "schema": SCHEMA,
        "catalogue": synth.data.catalog.name,
        "donnees_fictives": synth.data.catalog.fictional,
        "perimetre": {"departement": synth.department, "departements": synth.departments},
        "annee_de_reference": synth.reference_year,
        "regles": {
            "fichier": Path(rules["path"]).name, "version": rules.get("version"),
            "programmes": rules["programmes"], "programme_compte": MEDIATION_PROGRAMME,
            "cible_postes_pour_10000": rules["target_per_10000"],
            "source_de_la_cible": rules.get("target_source", ""), "seuil_bien_dote": rules["well_equipped"],
            "niveaux_a_prospecter": rules["prospect_levels"],
            "classement": [{"cle": k, "libelle": RANKING_KEYS[k]} for k in rules["ranking"]],
        },
        "epci": _records(synth.epci, rules),
        "communes": _records(synth.communes, rules),
        "a_prospecter": {k: _records(v, rules) for k, v in synth.prospects.items()},
        "bien_dotes": {k: [r["code"] for _, r in v.iterrows()] for k, v in synth.equipped.items()},
        "evolution_des_postes": trends,
        "opportunites": synth.opportunities,
        "sources_manquantes": synth.missing,
        "millesimes": synth.data.vintages(),
        "versions": {"atelier": __version__, "donnees": synth.data.catalog.fingerprint()},
    })
