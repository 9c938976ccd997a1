"""« L'essentiel »: what a diagnostic concludes, in a few French sentences an elected official reads first.

Computed from the same :class:`~diagnostic.analysis.commune.CommuneDiagnostic` objects as
``resultats.json`` (needs, coverage, recommendations, framing), never written by
hand in the notebook: key messages, priority territories with one sentence each,
and the recommended service in one paragraph. Each item names the report section
that details it (a key of :data:`SECTIONS`), so the page can link to it.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from diagnostic import text
from diagnostic.io import reference
from diagnostic.io.reference import department_regions
from diagnostic.io.sources.postes import euros as _euros

#: The report's sections: key → heading, in report order (the notebook's level-2 headings).
SECTIONS = {
    "essentiel": "L'essentiel",
    "territoire": "Territoire et contexte",
    "besoins": "Diagnostic d'opportunité : les besoins",
    "reponses": "Réponses existantes et complémentarité",
    "non_couverts": "Besoins non couverts",
    "partenariat": "Maillage partenarial",
    "preconisations": "Préconisations stratégiques et opérationnelles",
    "cadrage": "Cadrage du projet",
    "financements": "Financements",
    "gouvernance": "Portage et gouvernance",
    "annexes": "Annexes",
}
STRONG = ("fort", "moyen")
#: Key indicators shown in the body, in this order when available (the full table is in the annex).
KEY_INDICATORS = ("population", "poverty_rate", "median_income", "low_income_rate", "youth_index",
                  "employment_rate", "jobseekers", "precarious_employment_rate", "social_benefits_share",
                  "unemployment_income_share")
MAX_KEY_INDICATORS = 7


def territory_names(d) -> dict[str, str]:
    """Code → name of the diagnosed territories and of the commune."""
    return {**d.territories.set_index("code")["name"].to_dict(), d.code: d.name}


def region_name(d) -> str | None:
    """The region of the commune, by its department (COG table)."""
    regions = department_regions()
    return regions.at[d.department, "libelle_region"] if d.department in regions.index else None


def department_name(d) -> str:
    """The department's official name (« Haute-Garonne »), « département NN » for a code the COG table lacks."""
    return reference.department_name(d.department) or f"département {d.department}"


def _qpv_scope(d) -> str:
    """What the catalogue's QPVs cover, named for « Moyenne des N QPV … »: a whole region (« d'Occitanie »),
    one department (« de la Haute-Garonne »), else « des données » (never a region the data only touch)."""
    table = department_regions()
    codes = set(d.indicators.qpv["code_qp"]) if len(d.indicators.qpv) else set()
    communes = d.data.communes
    with_qpv = communes[communes["qpv_count"] > 0] if "qpv_count" in communes else communes
    deps = {dep for dep in set(with_qpv["insee_dep"]) if dep in table.index}
    if not codes or not deps:
        return "des données"
    if len(deps) == 1:
        (dep,) = deps
        return _department_of(table.at[dep, "libelle"], int(table.at[dep, "tncc"]))
    regions = set(table.loc[sorted(deps), "libelle_region"])
    if len(regions) == 1:
        (region,) = regions
        whole = set(table.index[table["libelle_region"] == region])
        if deps == whole:
            return text.of(region)
    return "des données"


def _department_of(name: str, tncc: int) -> str:
    """« de » before a department's name by INSEE's article type (``tncc``): « du Nord », « de la Haute-Garonne »,
    « de l'Ain », « des Hauts-de-Seine »."""
    return {2: f"du {name}", 3: f"de la {name}", 4: f"des {name}", 5: f"de l'{name}", 1: f"d'{name}"}.get(
        tncc, f"de {name}")


def reference_names(d) -> dict[str, str]:
    """The French name of each reference column of ``d.social``: « Moyenne des 83 QPV d'Occitanie », « Toulouse »…

    The catalogue's average is named by what it averages: a region only when the catalogue covers all of it.
    """
    qpv_count = int(d.indicators.qpv["code_qp"].nunique()) if len(d.indicators.qpv) else 0
    region = region_name(d)
    return {
        "ref_all_qpv": f"Moyenne des {text.count(qpv_count, 'QPV', 'QPV')} {_qpv_scope(d)}",
        "ref_commune": d.name,
        "ref_department": department_name(d),
        "ref_region": region or "Région",
        "ref_catalog": "Ensemble des données",
        "ref_national": "Ensemble des QPV de France",
        "ref_epci": (d.epci or {}).get("nom") or "Intercommunalité",
    }


#: How a sentence names each reference: « contre 44,2 % en moyenne dans les 83 QPV d'Occitanie ».
_REF_PHRASES = {
    "ref_all_qpv": lambda d, name: "en moyenne dans les " + name.removeprefix("Moyenne des "),
    "ref_commune": lambda d, name: text.at(name),
    "ref_department": lambda d, name: reference.in_department(d.department) or "dans l'ensemble du département",
    "ref_region": lambda d, name: "dans l'ensemble de la région",
    "ref_catalog": lambda d, name: "dans l'ensemble des données",
    "ref_national": lambda d, name: "dans l'ensemble des QPV de France",
    "ref_epci": lambda d, name: f"dans l'intercommunalité ({name})",
}


def reference_phrase(d, col: str, name: str | None = None) -> str:
    """How a sentence names reference ``col`` (named ``name``, by default its :func:`reference_names` entry):
    « en moyenne dans les 83 QPV d'Occitanie », « à Toulouse », « en Haute-Garonne », « dans le Nord »."""
    return _REF_PHRASES[col](d, reference_names(d)[col] if name is None else name)


def references(d) -> list[tuple[str, str]]:
    """The reference columns worth showing (some value, not a copy of another one), with their names; the national
    per-QPV reference first when the catalogue has it, so sentences compare with all the QPVs of France."""
    names = reference_names(d)
    s = d.social
    shown: list[tuple[str, str]] = []
    seen: list[pd.Series] = []
    for col in ("ref_national", "ref_all_qpv", "ref_commune", "ref_epci", "ref_department", "ref_region",
                "ref_catalog"):
        if col not in s or s[col].notna().sum() == 0:
            continue
        values = s[col].round(6).reset_index(drop=True)
        if any(values.equals(other) for other in seen):
            continue
        seen.append(values)
        shown.append((col, names[col]))
    return shown


def _value(d, code: str, indicator: str) -> pd.Series | None:
    rows = d.social[(d.social["code"] == code) & (d.social["indicator"] == indicator)]
    return rows.iloc[0] if len(rows) else None


def compared(d, code: str, indicator: str, who: str = " des habitants") -> str:
    """« 48,5 % des habitants sous le seuil de pauvreté, contre 44,2 % en moyenne dans les 83 QPV d'Occitanie »."""
    row = _value(d, code, indicator)
    if row is None or text.is_missing(row["value"]):
        return ""
    value = text.measure(row["value"], row["unit"])
    against = ""
    for col, name in references(d):
        if col == "ref_commune" and code == d.code:
            continue
        if not text.is_missing(row.get(col)):
            against = f", contre {text.measure(row[col], row['unit'])} {reference_phrase(d, col, name)}"
        break
    if indicator == "poverty_rate":
        return f"{value}{who} sous le seuil de pauvreté{against}"
    return f"{row['label'][0].lower()}{row['label'][1:]} de {value}{against}"


#: What each absent source leaves unknown, as a sentence names it (never as « aucun »).
SOURCE_ABSENT = {
    "services": "les équipements et services ne figurent pas dans les données",
    "adultes_relais": "les postes d'adultes-relais ne figurent pas dans les données",
    "qpv": "les contours des quartiers prioritaires ne figurent pas dans les données",
}


def posts_known(d) -> bool:
    """True when the posts file is in the catalogue: a count of 0 posts is then a true zero."""
    return "adultes_relais" not in d.missing


def distances_known(d, code: str) -> bool:
    """True when services were counted around the territory's outline (a band and distances exist), not per
    commune for a QPV without outline, nor from counts published per QPV."""
    if "services" in d.missing:
        return False
    rows = d.coverage[d.coverage["code"] == code]
    return bool(len(rows)) and rows["method"].astype(str).str.startswith("services géolocalisés").all()


def _posts_phrase(d, posts: float) -> str:
    """« environ 4 postes d'adulte-relais rattachés », a true « aucun poste… » or, without the posts file, that it is absent."""
    if not posts_known(d):
        return SOURCE_ABSENT["adultes_relais"]
    n = round(float(posts or 0))
    if n == 0:
        return "aucun poste d'adulte-relais rattaché" if not posts else "moins d'un poste d'adulte-relais rattaché"
    return f"environ {text.count(n, 'poste', 'postes')} d'adulte-relais rattaché{'s' if n >= 2 else ''}"


def services_phrase(d, row) -> str:
    """What the data say of one (territory, domain)'s services, in one of three states: counted (« 3 services de ce
    domaine à moins de 300 m »), a true zero (« aucun service … ni à moins de 300 m », only around an outline), or
    unknown, naming the absent source."""
    if "services" in d.missing:
        return SOURCE_ABSENT["services"]
    if text.is_missing(row.get("services_band")):
        return "services de ce domaine non comptés dans les données"
    n = round(float(row["services_band"]))
    band = text.number(d.params["band_m"], 0, "m")
    if not distances_known(d, row["code"]):
        where = ("dans la commune (contours du quartier absents des données)"
                 if str(row.get("method", "")).startswith("services de la commune") else "d'après les comptages publiés")
        return (f"{text.count(n, 'service', 'services')} de ce domaine {where}" if n
                else f"aucun service de ce domaine recensé {where}")
    if n == 0:
        nearest = row.get("nearest_m")
        far = f", le plus proche à {text.number(nearest, 0, 'm')}" if not text.is_missing(nearest) else ""
        return f"aucun service de ce domaine dans le quartier ni à moins de {band}{far}"
    return f"{text.count(n, 'service', 'services')} de ce domaine à moins de {band}"


def need_sentence(d, row: pd.Series) -> str:
    """Why one unmet need: its own ``reason`` when the method gives one, else a sentence from its evidence."""
    if isinstance(row.get("reason"), str) and row["reason"].strip():
        names = territory_names(d)
        head = f"{names.get(row['code'], row['code'])}, « {row['domain_label']} » (besoin {row['level']}, rang {int(row['rank'])}) : "
        return text.sentence(head + row["reason"])
    names = territory_names(d)
    parts = []
    for indicator in ("poverty_rate", "median_income", "youth_index", "employment_rate"):
        phrase = compared(d, row["code"], indicator)
        if phrase:
            parts.append(phrase)
            break
    if "services_band" in row or "services" in d.missing:
        parts.append(services_phrase(d, row))
    if "mediation_posts" in row:
        parts.append(_posts_phrase(d, row["mediation_posts"]))
    if row.get("obs_count"):
        parts.append(f"{text.count(row['obs_count'], 'observation', 'observations')} d'habitants et de partenaires")
    head = f"{names.get(row['code'], row['code'])}, « {row['domain_label']} » (besoin {row['level']})"
    return text.sentence(f"{head} : " + " ; ".join(parts)) if parts else text.sentence(head)


def priority_codes(d) -> list[str]:
    """The intervention territories, as the framing chose them from the needs ranking."""
    return list((d.framing or {}).get("codes") or [])


def territory_sentence(d, code: str) -> str:
    """One sentence on a priority territory: population, poverty beside its reference, needs, mediation posts."""
    names = territory_names(d)
    terr = d.territories.set_index("code")
    parts = []
    pop = terr.at[code, "population"] if code in terr.index else None
    head = names.get(code, code)
    if not text.is_missing(pop):
        head += f" : {text.count(pop, 'habitant', 'habitants')}"
    poverty = compared(d, code, "poverty_rate", who="")
    if poverty:
        head += f", dont {poverty}"
    parts.append(head)
    rows = d.needs[(d.needs["code"] == code) & d.needs["level"].isin(STRONG)]
    if len(rows):
        domains = [f"{q} ({r.level})" for q, r in zip(text.quoted(list(rows["domain_label"].head(3))), rows.head(3).itertuples())]
        parts.append(f"{'besoin non couvert' if len(domains) < 2 else 'besoins non couverts'} : {text.join(domains)}")
    if "mediation_posts" in rows and len(rows):
        parts.append(_posts_phrase(d, rows["mediation_posts"].iloc[0]))
    return text.sentence(" ; ".join(parts))


def decision(d) -> dict[str, Any]:
    """The decision the documents render (:mod:`diagnostic.analysis.decision`, ``resultats.json``'s ``decision``):
    the one object page one, the council note and the body read, never re-derived from the text."""
    return d.decision or {}


def _number(value: float) -> str:
    """A count of mediators or posts as the body writes it: whole when it is, else one decimal (a share: « 11,7 »)."""
    value = round(float(value or 0), 1)
    return text.number(value, 0 if value.is_integer() else 1)


def _where(t: dict[str, Any]) -> str:
    """« au Secteur Sud (45 704 habitants de la commune sur 47 011) », « à Négreneys (1 014 habitants) »."""
    pop = text.count(t["population"], "habitant", "habitants")
    if t.get("intercommunal"):
        pop += f" de la commune sur {text.number(t['population_quartier'])} dans le quartier"
    return f"{text.at(t['nom'])} ({pop})"


def funders(dec: dict[str, Any], name: str) -> list[tuple[str, float]]:
    """The recommended funding mix as (funder as a sentence names it, amount), one row per row of the decision's
    ``repartition``: « l'État (postes d'adultes-relais) », « la commune (Lille) », « Métropole Européenne de Lille
    (service commun du Secteur Sud) » when one funder pays for several joint services."""
    mix = [m for m in ((dec.get("financement") or {}).get("repartition")) or [] if m.get("montant")]
    names = {"État (postes adultes-relais)": "l'État (postes d'adultes-relais)", "commune": f"la commune ({name})"}
    seen = [m["financeur"] for m in mix]
    out = []
    for m in mix:
        who = names.get(m["financeur"], m["financeur"])
        service = re.search(r"service commun de (.+)$", str(m.get("base", "")))
        if seen.count(m["financeur"]) > 1 and service:
            who += f" (service commun {text.of(service.group(1))})"
        out.append((who, float(m["montant"])))
    return out


def posts_in_place(dec: dict[str, Any]) -> list[tuple[str, float]] | None:
    """Adulte-relais posts in place where the commune would act, as the body counts them: on its own intervention
    territories, then in each joint service's whole quartier; None when the posts file is absent (unknown, not 0)."""
    in_place = dec.get("postes_en_place") or {}
    if not in_place.get("connus"):
        return None
    joint = dec.get("services_communs") or []
    own = [] if joint and not (dec.get("equipe") or {}).get("taille") else [
        ("sur ses propres quartiers" if joint else "sur ces quartiers", float(in_place.get("territoires") or 0))]
    return own + [(f"dans le quartier {j['nom']}", float(j.get("postes_en_place") or 0)) for j in joint]


def page_one(d, dec: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """The five sentences that answer the mayor: what to do (with the recommended governance), where, for whom, how
    many mediators (needed, in place, to create), what it costs each year and who pays what. Every number and choice
    is one of the decision's (:func:`decision`); each sentence names the section that details it."""
    dec = decision(d) if dec is None else dec
    own = (dec.get("equipe") or {}).get("taille") or 0
    joint = dec.get("services_communs") or []
    if not own and not joint:
        return [{"texte": text.sentence(f"Le diagnostic ne relève à {d.name} aucun besoin non couvert de niveau fort : "
                                        "pas d'équipe de médiation à créer pour l'instant, mais un suivi des "
                                        "indicateurs et des besoins exprimés avec les partenaires"),
                 "section": "non_couverts"}]
    by_carrier: dict[str, list[str]] = {}
    for j in joint:
        by_carrier.setdefault(j["porteur"]["libelle"], []).append(
            f"{text.of(j['nom'])} ({text.count(j['equipe']['taille'], 'médiateur', 'médiateurs')})")
    shared = [f"de participer au service commun {items[0]}, porté par {carrier}" if len(items) == 1 else
              f"de participer aux services communs {text.join(items)}, portés par {carrier}"
              for carrier, items in by_carrier.items()]
    what = [f"de créer une équipe de médiation sociale de {text.count(own, 'médiateur', 'médiateurs')}"] if own else []
    governance = dec.get("gouvernance")
    head = f"Le diagnostic propose à {d.name} {text.join(what + shared)}"
    if governance:
        head += (f" ; portage recommandé{' de son équipe' if joint and own else ''} : {governance['libelle']}, car "
                 f"{governance['raison']}")
    out = [{"texte": text.sentence(head), "section": "gouvernance"}]
    out.append({"texte": text.sentence("Le service interviendrait d'abord "
                                       + text.join([_where(t) for t in dec.get("territoires") or []])),
                "section": "non_couverts"})
    f = d.framing or {}
    from diagnostic.io.reference import DOMAINS

    domains = [DOMAINS.get(k, k) for k in dec.get("domaines") or []][:4]
    whom = f"Il s'adresserait d'abord {text.to(f['publics'])}" if f.get("publics") else "Il s'adresserait aux habitants"
    out.append({"texte": text.sentence(whom + (f", pour les besoins en {text.join(text.quoted(domains))}" if domains else "")),
                "section": "cadrage"})
    out.append({"texte": _mediators_sentence(d, dec, own, joint), "section": "cadrage"})
    out.append({"texte": _cost_sentence(d, dec), "section": "financements"})
    return out


def _mediators_sentence(d, dec: dict[str, Any], own: int, joint: list[dict[str, Any]]) -> str:
    """Mediators needed, posts in place (or that the posts file is absent), posts to create: the decision's figures."""
    needed = f"Il faut {_number(dec['mediateurs_necessaires'])} {text.plural(dec['mediateurs_necessaires'], 'médiateur')}"
    if joint:
        needed += f" pour {d.name} : " + text.join(
            ([f"{_number(own)} dans son équipe"] if own else [])
            + [f"{_number(j['part_equipe'])} pour sa part du service commun {text.of(j['nom'])}" for j in joint])
    in_place = dec.get("postes_en_place") or {}
    places = posts_in_place(dec)
    year = f" en {in_place['annee']}" if in_place.get("annee") else ""
    if places is None:
        held = SOURCE_ABSENT["adultes_relais"] + " : les postes déjà en place sont à vérifier auprès de la préfecture"
    elif not any(n for _, n in places):
        held = f"aucun poste d'adulte-relais déjà en place sur ces quartiers{year}"
    else:
        held = f"postes d'adultes-relais déjà en place{year} : " + text.join([f"{_number(n)} {where}" for where, n in places])
    create = [f"{text.count(dec['postes_a_creer'], 'poste', 'postes')} à créer{' pour son équipe' if joint else ''}"] if own or not joint else []
    create += [f"{text.count(j['postes_a_creer'], 'poste', 'postes')} {'à créer ' if not create else ''}pour le service "
               f"commun {text.of(j['nom'])} (dont {_number(j['part_postes_a_creer'])} pour sa part)" for j in joint]
    return text.sentence(f"{needed} ; {held} ; {text.join(create)}")


def _cost_sentence(d, dec: dict[str, Any]) -> str:
    """What it costs the commune each year, the recommended funding and who pays what (sums to the cost)."""
    total = dec.get("total_commune") or {}
    if not total.get("cout_annuel"):
        return text.sentence("Sans poste à créer, le service ne demande pas de budget nouveau pour les postes : les postes "
                             "en place restent financés comme aujourd'hui")
    head = f"Coût annuel pour {d.name} : {_euros(total['cout_annuel'])}"
    funding = dec.get("financement")
    if funding:
        head += f" ; financement recommandé : {funding['libelle']}"
    payers = funders(dec, d.name)
    if payers:
        head += " ; " + text.join([f"{_euros(v)} par {who}" for who, v in payers])
    return text.sentence(head)


def key_messages(d) -> list[dict[str, str]]:
    """3 to 5 key messages (``texte`` and the ``section`` that details it)."""
    names = territory_names(d)
    out = []
    strong = d.needs[d.needs["level"].isin(STRONG)] if len(d.needs) else d.needs
    codes = priority_codes(d)
    if len(strong):
        domains = list(dict.fromkeys(strong[strong["code"].isin(codes)]["domain_label"]))[:3]
        publics = (d.framing or {}).get("publics")
        out.append({"texte": text.sentence(
            f"Les besoins non couverts les plus forts sont {text.join([text.at(names.get(c, c)) for c in codes])}, "
            f"en {text.join(text.quoted(domains))}" + (f" ; publics prioritaires : {publics}" if publics else "")),
            "section": "non_couverts"})
    else:
        out.append({"texte": "Aucun besoin non couvert de niveau fort ou moyen n'est mesuré : les réponses existantes "
                             "suivent les besoins connus.", "section": "non_couverts"})
    if d.has_qpv and not text.is_missing(d.share.get("qpv_share")):
        first = f"{d.name} compte {text.count(len(d.qpv), 'quartier prioritaire', 'quartiers prioritaires')}, où vit {text.percent(d.share['qpv_share'])} de sa population"
    elif "qpv" in d.missing:
        first = (f"Les contours des quartiers prioritaires ne figurent pas dans les données de ce diagnostic : "
                 f"{d.name} est étudiée à l'échelle de la commune")
    else:
        first = f"{d.name} ne compte aucun quartier prioritaire : le diagnostic porte sur la commune entière"
    poorest = None
    rates = d.social[d.social["indicator"] == "poverty_rate"].dropna(subset=["value"])
    if len(rates):
        poorest = rates.sort_values("value", ascending=False).iloc[0]["code"]
    if poorest is not None:
        phrase = compared(d, poorest, "poverty_rate").replace("des habitants sous", "des habitants vivent sous")
        first += f" ; {text.at(names.get(poorest, poorest))}, {phrase}"
    out.append({"texte": text.sentence(first), "section": "besoins"})
    out.append({"texte": _answers_message(d), "section": "reponses"})
    missing = _missing_message(d, strong)
    if missing:
        out.append({"texte": missing, "section": "non_couverts"})
    if d.gaps is not None and len(d.gaps):
        out.append({"texte": text.sentence(
            f"{text.count(d.graph.number_of_nodes(), 'acteur', 'acteurs')} travaillent déjà sur le territoire ; "
            f"{text.count(len(d.gaps), 'lien partenarial', 'liens partenariaux')} à créer ou "
            f"{'acteur' if len(d.gaps) < 2 else 'acteurs'} à mobiliser pour que la médiation fonctionne"),
            "section": "partenariat"})
    return out[:5]


def _answers_message(d) -> str:
    """What already answers, in the three states: the domains where the data count réponses (France Services,
    centres sociaux, médiation…), those where they hold none (unknown, not zero), or the absent source."""
    posts = ((d.decision or {}).get("cible") or {}).get("postes_en_place") or 0.0  # the commune's own posts in place
    in_place = _posts_phrase(d, posts).replace("rattaché", "déjà rattaché")
    if posts_known(d) and posts:  # all the commune's quartiers: page one counts those of the intervention territories
        in_place += " à l'ensemble de ses quartiers prioritaires" if d.has_qpv else f" {text.at(d.name)}"
    if "services" in d.missing:
        if not posts_known(d):
            return text.sentence("Ni les équipements et services ni les postes d'adultes-relais ne figurent dans les "
                                 "données de ce diagnostic : la réponse existante n'y est pas mesurée")
        return text.sentence("Les équipements et services ne figurent pas dans les données de ce diagnostic : la "
                             f"réponse existante n'est mesurée que par les postes de médiation ; {in_place}")
    c = d.coverage[d.coverage["level"] != "commune"] if d.has_qpv else d.coverage
    outlined = d.has_qpv and all(distances_known(d, code) for code in set(c["code"]))
    where = ("dans les quartiers prioritaires et à leurs abords" if outlined
             else "dans les quartiers prioritaires" if d.has_qpv else text.at(d.name))
    known = c[c["responses_known"].astype(bool)]
    counted = known.groupby("domain_label")["responses_band"].sum().sort_values(ascending=False)
    unknown = list(dict.fromkeys(c.loc[~c["responses_known"].astype(bool), "domain_label"]))
    if len(counted[counted > 0]):
        head = f"Les réponses existantes {where} concernent surtout {text.join(text.quoted(list(counted[counted > 0].index[:3])))}"
    elif len(counted):
        head = f"Aucune réponse des domaines {text.join(text.quoted(list(counted.index)))} n'est recensée {where}"
    else:
        head = f"Les données ne recensent aucune structure de réponse (médiation, accès aux droits…) {where}"
    if unknown and len(counted):
        named = text.quoted(unknown[:3]) + ([text.count(len(unknown) - 3, "autre domaine", "autres domaines")]
                                            if len(unknown) > 3 else [])
        head += f" ; en {text.join(named)}, les données ne recensent aucune réponse : elle n'y est pas mesurée"
    return text.sentence(f"{head} ; {in_place}")


def _missing_message(d, strong: pd.DataFrame) -> str:
    """Where a strong need has no service at all, said only where the data can show it: services counted around a
    QPV's outline, in a domain the data cover (a domain with no service anywhere in the catalogue is unknown)."""
    if "services" in d.missing or "services_band" not in strong:
        return ""
    names = territory_names(d)
    all_cov = d.indicators.coverage
    covered = set(all_cov.loc[all_cov["services_band"].fillna(0) > 0, "domain"]) if len(all_cov) else set()
    empty = strong[(strong["services_band"] == 0) & strong["domain"].isin(covered)
                   & strong["code"].map(lambda c: distances_known(d, c)).astype(bool)]  # bool also when empty
    if empty.empty:
        return ""
    band = text.number(d.params["band_m"], 0, "m")
    empty = empty.head(4)
    items = [f"{q} {text.join([text.at(names.get(c, c)) for c in rows['code']])}"
             for q, (_, rows) in zip(text.quoted(list(dict.fromkeys(empty["domain_label"]))),
                                     empty.groupby("domain_label", sort=False))]
    return text.sentence(f"Ce qui manque : une présence de proximité en {text.join(items)}, où aucun service du domaine "
                         f"n'est implanté dans le quartier ni à moins de {band}")


def essentials(d) -> dict[str, Any]:
    """« L'essentiel » of a diagnostic: ``decision`` (the five sentences of :func:`page_one`, first), ``messages``
    and ``territoires`` (one sentence each); computed once per diagnostic (``d.said``), as the report and the
    council note both say it."""
    if "essentials" not in d.said:
        d.said["essentials"] = {
            "messages": key_messages(d),
            "territoires": [{"code": c, "nom": territory_names(d).get(c, c), "texte": territory_sentence(d, c),
                             "section": "non_couverts"} for c in priority_codes(d)],
            "decision": page_one(d),
        }
    return d.said["essentials"]

