"""« L'essentiel »: what a diagnostic concludes, in a few French sentences an elected official reads first.

Computed from the same :class:`~diagnostic.analysis.commune.CommuneDiagnostic` objects as
``resultats.json`` (needs, coverage, recommendations, framing), never written by
hand in the notebook: key messages, priority territories with one sentence each,
and the recommended service in one paragraph. Each item names the report section
that details it (a key of :data:`SECTIONS`), so the page can link to it.
"""

from __future__ import annotations

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


def reference_names(d) -> dict[str, str]:
    """The French name of each reference column of ``d.social``: « Moyenne des 83 QPV d'Occitanie », « Toulouse »…"""
    qpv_count = int(d.indicators.qpv["code_qp"].nunique()) if len(d.indicators.qpv) else 0
    table = department_regions()
    with_qpv = d.data.communes[d.data.communes["qpv_count"] > 0] if "qpv_count" in d.data.communes else d.data.communes
    regions = {table["libelle_region"].get(dep) for dep in set(with_qpv["insee_dep"])}
    region = region_name(d)
    scope = text.of(region) if regions == {region} and region else "des données"
    return {
        "ref_all_qpv": f"Moyenne des {text.count(qpv_count, 'QPV', 'QPV')} {scope}",
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
    """The reference columns worth showing (some value, not a copy of another one), with their names."""
    names = reference_names(d)
    s = d.social
    shown: list[tuple[str, str]] = []
    seen: list[pd.Series] = []
    for col in ("ref_all_qpv", "ref_national", "ref_commune", "ref_epci", "ref_department", "ref_region",
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


def _posts_phrase(posts: float) -> str:
    n = round(float(posts or 0))
    if n == 0:
        return "aucun poste d'adulte-relais rattaché" if not posts else "moins d'un poste d'adulte-relais rattaché"
    return f"environ {text.count(n, 'poste', 'postes')} d'adulte-relais rattaché{'s' if n >= 2 else ''}"


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
    band = d.params["band_m"]
    if not text.is_missing(row.get("services_band")):
        n = round(float(row["services_band"]))
        if n == 0:
            nearest = row.get("nearest_m")
            far = f", le plus proche à {text.number(nearest, 0, 'm')}" if not text.is_missing(nearest) else ""
            parts.append(f"aucun service de ce domaine dans le quartier ni à moins de {text.number(band, 0, 'm')}{far}")
        else:
            parts.append(f"{text.count(n, 'service', 'services')} de ce domaine à moins de {text.number(band, 0, 'm')}")
    if "mediation_posts" in row:
        parts.append(_posts_phrase(row["mediation_posts"]))
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
        parts.append(_posts_phrase(rows["mediation_posts"].iloc[0]))
    return text.sentence(" ; ".join(parts))


def _recommendation(d, rid: str) -> dict[str, Any] | None:
    return next((r for r in d.recommendations if r["id"] == rid), None)


def service_paragraph(d) -> str:
    """The recommended service in one paragraph: territories, publics, domains, hours, team, funding, governance."""
    names = territory_names(d)
    codes = priority_codes(d)
    f = d.framing or {}
    strong = d.needs[d.needs["level"].isin(STRONG)] if len(d.needs) else d.needs
    domains = list(dict.fromkeys(strong["domain_label"])) if len(strong) else []
    dec = d.decision or {}
    team = (dec.get("equipe") or {}).get("taille")
    joint = dec.get("services_communs") or []
    who = f"une équipe de médiation sociale de {text.count(team, 'médiateur', 'médiateurs')}" if team else "un service de médiation sociale"
    if joint:
        who = (f"{who}, et " if team else "") + text.join(
            [f"la participation {text.de(d.name)} au service commun de {j['nom']} ({text.count(j['equipe']['taille'], 'médiateur')}, "
             f"porté par {j['porteur']['libelle']})" for j in joint])
    where = (f", présent d'abord {text.join([text.at(names.get(c, c)) for c in codes])}" if codes
             else f" {text.at(d.name)}")
    sentences = [f"Le diagnostic recommande {who}{where}"
                 + (f", auprès {text.de(f['publics'])}" if f.get("publics") else "")
                 + (f", dans les domaines {text.join(text.quoted(domains[:4]))}" if domains else "")]
    if team:
        sentences.append(f"Postes à créer : {dec['postes_a_creer']}")
    if f.get("horaires"):
        sentences.append(f"Il est présent {f['horaires']}")
    total = dec.get("total_commune") or {}
    if total.get("cout_annuel"):
        sentences.append(f"Coût annuel pour la commune : {_euros(total['cout_annuel'])}, dont {_euros(total['aide_etat'])} "
                         f"d'aide de l'État ; reste à financer {_euros(total['reste_a_financer'])}")
    funding, card = dec.get("financement"), _recommendation(d, "financements")
    if funding and card is not None:
        sentences.append(f"Financement recommandé : {funding['libelle']}")
        if funding.get("repartition"):
            sentences.append("Répartition : " + " ; ".join(f"{m['financeur']} {_euros(m['montant'])}"
                                                            for m in funding["repartition"]))
        if card.get("in_place"):
            sentences.append(card["in_place"])
    governance = dec.get("gouvernance")
    if governance and _recommendation(d, "gouvernance") is not None:
        sentences.append(f"Portage recommandé : {governance['libelle']}, car {governance['raison']}")
    return " ".join(text.sentence(s) for s in sentences)


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
    if "services" in d.missing:
        return ("Les équipements et services ne figurent pas dans les données de ce diagnostic : la réponse existante "
                "n'est mesurée que par les postes de médiation.")
    c = d.coverage[d.coverage["level"] != "commune"] if d.has_qpv else d.coverage
    covered = c.groupby("domain_label")["services_band"].sum().sort_values(ascending=False)
    covered = covered[covered > 0]
    posts = ((d.decision or {}).get("cible") or {}).get("postes_en_place") or 0.0  # the commune's own posts in place
    where = "dans les quartiers prioritaires et à leurs abords" if d.has_qpv else text.at(d.name)
    head = (f"Les réponses existantes {where} concernent surtout {text.join(text.quoted(list(covered.index[:3])))}"
            if len(covered) else f"Aucun service de médiation ou d'accès aux droits n'est recensé {where}")
    return text.sentence(head + " ; " + _posts_phrase(posts).replace("rattaché", "déjà rattaché"))


def _missing_message(d, strong: pd.DataFrame) -> str:
    names = territory_names(d)
    empty = strong[strong["services_band"].fillna(0) == 0] if "services_band" in strong else strong.iloc[0:0]
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
    """« L'essentiel » of a diagnostic: ``messages``, ``territoires`` (one sentence each) and ``service``."""
    return {
        "messages": key_messages(d),
        "territoires": [{"code": c, "nom": territory_names(d).get(c, c), "texte": territory_sentence(d, c),
                         "section": "non_couverts"} for c in priority_codes(d)],
        "service": {"texte": service_paragraph(d), "section": "preconisations"},
    }
