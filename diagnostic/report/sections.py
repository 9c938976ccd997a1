"""What each section of the diagnostic report shows, built from a :class:`CommuneDiagnostic`.

The notebook calls one function per block; each returns displayable HTML
(rendered by :mod:`diagnostic.report.fragments`, autoescaped) so the notebook stays narrative.
Every number goes through :mod:`diagnostic.text`; no file name, command or
parameter name reaches the page: the report is read by elected officials.
"""

from __future__ import annotations

import re
from pathlib import Path

import folium
import pandas as pd
from IPython.display import HTML
from markupsafe import Markup
from matplotlib.figure import Figure

from diagnostic import text
from diagnostic.analysis.commune import CommuneDiagnostic
from diagnostic.io.catalog import ROLE_LABELS
from diagnostic.options import INDICATOR
from diagnostic.report import fragments, maps, summary
from diagnostic.report.export import (
    _heading_id,
    figure,
    html_table,
    image,
    key_figures,
    markdown,
    officer_text,
    paragraph,
)
from diagnostic.report.summary import SECTIONS

GLOSSARY = {
    "QPV": "Quartier prioritaire de la politique de la ville, délimité par l'État (générations 2015 et 2024).",
    "Bande de 300 m": "Le QPV et ses abords à moins de 300 m : le périmètre habituel des services qui « desservent » un quartier.",
    "BPE": "Base permanente des équipements de l'INSEE : chaque équipement ouvert au public, avec son type et sa position.",
    "Filosofi": "Source de l'INSEE sur les revenus et la pauvreté ; certaines valeurs sont couvertes par le secret statistique.",
    "France Services": "Guichets uniques d'accès aux services publics (sites fixes, antennes ou bus).",
    "Adulte-relais": "Poste de médiation financé par l'État pour un adulte résidant en QPV, porté par un employeur (association, commune…).",
    "CLSPD": "Conseil local de sécurité et de prévention de la délinquance.",
    "FIPD": "Fonds interministériel de prévention de la délinquance.",
    "TFPB": "Taxe foncière sur les propriétés bâties : son abattement en QPV est réinvesti par les bailleurs sociaux, souvent dans la médiation.",
    "GIP": "Groupement d'intérêt public : forme de portage d'un service partagé entre plusieurs partenaires publics.",
    "SCIC": "Société coopérative d'intérêt collectif, associant acteurs publics et privés.",
    "Marche exploratoire": "Parcours d'habitants (souvent des habitantes) dans leur quartier pour relever les problèmes du cadre de vie.",
    "Norme AFNOR XP X60-600": "Cadre professionnel de la médiation sociale, qui demande d'évaluer l'utilité sociale.",
}
#: Territory codes and tool words that recommendation texts may carry; the report shows names only.
_CODE_IN_TEXT = re.compile(r"\s*\((?:Q[NP]\d{3}\w{3,4}|\d[\dAB]\d{3})\)")
_TOOL_SENTENCE = re.compile(r"[^.]*(?:templates/|\.ya?ml|\.csv|\bdiagnostic (?:run|batch|evaluate|data)\b)[^.]*\.\s*")


def section_link(key: str) -> str:
    """A link to a report section by its key in :data:`diagnostic.report.summary.SECTIONS`."""
    return fragments.render("section_link.html.j2", title=SECTIONS[key], target=_heading_id(SECTIONS[key]))


def reader_text(value: str) -> str:
    """A data loader's remark as an elected official reads it: no code in brackets, no sentence naming a file or a
    command, agreed plurals. The loaders write their warnings for the command line (« 2 valeur(s) conservée(s) »,
    « diagnostic data fetch le télécharge »); rules and recommendations are written right where they are built."""
    return text.numbers_in(text.agree(_TOOL_SENTENCE.sub("", _CODE_IN_TEXT.sub("", str(value))).strip()))


def cover_figures(d: CommuneDiagnostic) -> HTML:
    """Key figures up front."""
    levels = d.needs["level"].value_counts() if len(d.needs) else pd.Series(dtype=int)
    items = [(text.number(d.population), "habitants dans la commune")]
    if d.has_qpv:
        items += [(text.number(len(d.qpv)), text.plural(len(d.qpv), "quartier prioritaire", "quartiers prioritaires")),
                  (text.percent(d.share["qpv_share"]), "de la population vit en quartier prioritaire")]
    strong, medium = int(levels.get("fort", 0)), int(levels.get("moyen", 0))
    items += [(text.number(strong), text.plural(strong, "besoin non couvert fort", "besoins non couverts forts")),
              (text.number(medium), text.plural(medium, "besoin non couvert moyen", "besoins non couverts moyens")),
              (text.number(len(d.recommendations)), text.plural(len(d.recommendations), "préconisation"))]
    return key_figures(items)


def essentials(d: CommuneDiagnostic) -> HTML:
    """« L'essentiel »: what is proposed (five sentences), key messages and priority territories, each linking to its
    section."""
    e = summary.essentials(d)
    def linked(item: dict) -> dict:
        return {"text": item["texte"], "link": Markup(section_link(item["section"]))}

    return HTML(fragments.render("essentials.html.j2", decision=[linked(m) for m in e["decision"]],
                                 messages=[linked(m) for m in e["messages"]],
                                 territories=[linked(t) for t in e["territoires"]]))


def officer(d: CommuneDiagnostic, section: str) -> HTML | None:
    """The officer's text for a section, when written (nothing otherwise: the report gives no instructions)."""
    return officer_text(d.data.catalog.texts_dir, section)


#: Source labels (:data:`~diagnostic.io.catalog.ROLE_LABELS`) that are singular, with their article.
_SINGULAR_ARTICLE = {"registre": "le", "journal": "le", "correspondance": "la"}


def absent_source(label: str) -> str:
    """« les contours des QPV ne figurent pas », « le registre des partenaires ne figure pas »: a source's label as
    the subject of its absence, agreed."""
    article = _SINGULAR_ARTICLE.get(label.split()[0])
    return f"{article} {label} ne figure pas" if article else f"les {label} ne figurent pas"


def missing(d: CommuneDiagnostic, role: str) -> HTML | None:
    """Say which optional data this diagnostic lacks, in words (how to add it is in the README)."""
    if role not in d.missing:
        return None
    return HTML(fragments.render("missing.html.j2", absent=absent_source(ROLE_LABELS.get(role, role))))


def territory_table(d: CommuneDiagnostic) -> HTML:
    if not d.has_qpv:
        if "qpv" in d.missing:
            return paragraph(f"Les contours des quartiers prioritaires (QPV) ne figurent pas dans les données de ce "
                             f"diagnostic : le diagnostic {text.of(d.name)} est conduit à l'échelle de la commune, sans "
                             "distinguer ses quartiers prioritaires.", "missing")
        return paragraph(f"{d.name} ne compte aucun quartier prioritaire : le diagnostic est conduit à l'échelle "
                         "de la commune.")
    communes = d.data.communes.set_index("insee_com")["lib_com"]
    parts = d.indicators.qpv_parts.set_index(["code_qp", "insee_com"])["population"]

    def members(code: str, cs: str, whole: float) -> str:
        codes = str(cs).split(",")
        if len(codes) < 2:
            return ", ".join(communes.get(c, c) for c in codes)
        return "quartier intercommunal : " + ", ".join(
            f"{communes.get(c, c)} ({text.percent(100 * parts.get((code, c), float('nan')) / whole, 0)})" for c in codes)

    t = pd.DataFrame({
        "Quartier": d.territories["name"],
        "Population dans la commune": d.territories["population"],
        "Population du quartier": d.territories["population_total"],
        "Communes": [members(c, cs, w) for c, cs, w in
                     zip(d.territories["code"], d.territories["communes"], d.territories["population_total"])],
    })
    if "predecessors" in d.territories:  # 2024 QPVs: their figures are those of the 2015 QPVs they replace
        t["Indicateurs repris des QPV 2015"] = d.territories["predecessors"].replace("", "aucun (nouveau QPV)")
    return HTML(epci_paragraph(d).data
                + html_table(t, caption="Quartiers prioritaires de la commune (un quartier intercommunal compte pour la commune "
                     "à hauteur de ses habitants qui y vivent)",
                     numbers={"Population dans la commune": 0, "Population du quartier": 0}).data)


def epci_paragraph(d: CommuneDiagnostic) -> HTML:
    """The commune's EPCI, the level at which contrats de ville are signed."""
    if d.epci is None:
        return HTML("")
    size = f", {text.count(d.epci['nombre_communes'], 'commune')}" if d.epci.get("nombre_communes") else ""
    return paragraph(f"{d.name} appartient à l'intercommunalité {d.epci['nom']} ({d.epci['nature']}{size}) : "
                     "c'est à ce niveau que le contrat de ville est signé, et ses indicateurs servent de référence.")


#: Indicators whose change since the first vintage the report shows.
KEY_TRENDS = ("population", "poverty_rate", "median_income", "employment_rate", "precarious_employment_rate",
              "jobseekers", "single_parent_share", "rsa_share", "foreigners_share", "youth_index")


def trends_table(d: CommuneDiagnostic, indicators: tuple[str, ...] = KEY_TRENDS) -> HTML | None:
    """Latest value of the key indicators and their change since the first vintage, with INSEE's caution."""
    from diagnostic.analysis.indicators.trends import CAUTION, phrase

    e = d.evolutions
    if e is None or e.empty or not (e := e[e["indicator"].isin(indicators)]).shape[0]:
        return None
    labels = d.social.drop_duplicates("indicator").set_index("indicator")
    names = summary.territory_names(d)
    rows = []
    for _, r in e.iterrows():
        unit = labels["unit"].get(r["indicator"], "")
        digits = 1 if unit in ("%", "ratio") else 0
        change = text.number(r["change"], digits)
        if unit == "%":
            change += f"{text.NBSP}{text.plural(abs(r['change']), 'point')}"
        rows.append({"Territoire": names.get(r["code"], r["code"]),
                     "Indicateur": labels["label"].get(r["indicator"], r["indicator"]),
                     "Évolution": phrase(r, unit, digits),
                     "Écart": change if r["change"] <= 0 else f"+{change}"})
    return HTML(html_table(pd.DataFrame(rows), caption="Évolution des indicateurs clés depuis le premier millésime",
                           source=_source(d.social)).data + paragraph(CAUTION, "note").data)


def posts_table(d: CommuneDiagnostic) -> HTML:
    """Adultes-relais and FONJEP posts already funded on the commune's contracts, by year, and the employers.

    A post counts once per year and programme; a partial year of the files is marked as such, and the
    employers are those of the last complete year.
    """
    from diagnostic.io.sources.postes import PROGRAMMES

    p = d.posts
    if p is None or p.empty:
        return paragraph("Aucun poste adulte-relais ou FONJEP n'est rattaché aux contrats de ville de la commune "
                         "ou de son intercommunalité dans les données.", "missing")
    years = p.assign(programme=p["programme"].map(PROGRAMMES)).pivot_table(
        index="year", columns="programme", values="post_id", aggfunc="nunique", fill_value=0)
    years["Financement de l'État (€)"] = p.groupby("year")["amount"].sum()
    contracts = text.plural(p["lib_cv"].nunique(), "Contrat de ville", "Contrats de ville")
    years[contracts] = p.groupby("year")["lib_cv"].agg(lambda c: ", ".join(sorted(set(c.dropna()))))
    years.index = [f"{y} (année partielle)" if int(y) in d.posts_partial else str(y) for y in years.index]
    years.index.name = "Année"
    numbers = {c: 0 for c in years.columns if c != contracts}
    last = d.posts_funded["year"] if d.posts_funded else int(p["year"].max())  # the last complete year
    employers = (p[p["year"] == last].groupby(["employer", "programme"])["post_id"].nunique().rename("Postes")
                 .reset_index().sort_values("Postes", ascending=False))
    others = employers["employer"].map(lambda name: _other_commune(d, name))
    left_out = int(others.sum())
    employers = (employers[~others].head(15).rename(columns={"employer": "Employeur", "programme": "Programme"}))
    employers["Employeur"] = employers["Employeur"].map(text.proper_case)
    employers["Programme"] = employers["Programme"].map(PROGRAMMES)
    holder = d.epci["nom"] if d.epci else d.name
    partial = [f"{y} : {reason}" for y, reason in d.posts_partial.items() if y in set(p["year"].dropna().astype(int))]
    note = paragraph("Année partielle dans les fichiers de l'ANCT, dont les postes et les montants ne se comparent pas "
                     "aux années complètes (l'État verse un montant fixe par poste et par an) : "
                     + " ; ".join(partial) + ".").data if partial else ""
    aside = (f" Les communes et CCAS d'autres communes du contrat ({text.count(left_out, 'employeur', 'employeurs')}) ne "
             "sont pas repris dans la liste des employeurs." if left_out else "")
    return HTML(
        paragraph(f"Réponses existantes et financements déjà en place : postes financés par l'État sur le contrat de "
                  f"ville de {holder} (les postes d'un contrat intercommunal servent toutes ses communes ; les "
                  "montants et ce qu'ils permettent de demander sont repris dans la préconisation de financement).").data
        + html_table(years, caption="Postes adultes-relais et FONJEP par année", numbers=numbers, index=True).data
        + note
        + html_table(employers, caption=f"Principaux employeurs du contrat de ville en {last}",
                     numbers={"Postes": 0}).data
        + (paragraph(aside.strip(), "note").data if aside else ""))


#: How the ANCT's files name a commune or its CCAS as an employer: « COM ROUBAIX », « CCAS TOURCOING ».
_PUBLIC_EMPLOYER = re.compile(r"^(?:com|commune|ville|mairie|ccas|cias)\b(?: de| d'| du)?\s*(.*)$")


def _other_commune(d: CommuneDiagnostic, employer: str) -> bool:
    """True when an employer of the contract is another commune or its CCAS (« COM ROUBAIX » in Lille's list)."""
    m = _PUBLIC_EMPLOYER.match(text.fold(employer))
    if not m or not m.group(1).strip():
        return False
    rest = m.group(1).strip()
    return not rest.startswith(text.fold(d.name))


def _source(rows: pd.DataFrame) -> str:
    """The sources of some indicator rows, said once: « INSEE, indicateurs QPV (2021) »."""
    seen = []
    for src, vintage in zip(rows.get("source", []), rows.get("vintage", [])):
        src = text.without_file_names(src)
        src = re.sub(r",?\s*millésime \d{4}", "", src).strip(" ,")
        label = f"{src} ({vintage})" if vintage and str(vintage) not in src else src
        if label and label not in seen:
            seen.append(label)
    return " ; ".join(seen)


def key_indicators_table(d: CommuneDiagnostic) -> HTML:
    """The 6 to 8 key indicators of each territory beside its named references, units in headers, source once."""
    s = d.social
    if s.empty:
        return paragraph("Aucun indicateur social n'est disponible pour ce territoire.", "missing")
    available = [i for i in summary.KEY_INDICATORS if s.loc[s["indicator"] == i, "value"].notna().any()]
    keys = available[:summary.MAX_KEY_INDICATORS]
    if not keys:
        return paragraph("Aucun indicateur social n'est disponible pour ce territoire.", "missing")
    names = summary.territory_names(d)
    rows = s[s["indicator"].isin(keys)]
    meta = rows.drop_duplicates("indicator").set_index("indicator")
    headers = {k: f"{meta.at[k, 'label']} ({meta.at[k, 'unit']})" if meta.at[k, "unit"] not in text.RATIO_UNITS
               else meta.at[k, "label"] for k in keys}
    table = []
    for code in d.territories["code"]:
        r = rows[rows["code"] == code].set_index("indicator")
        table.append({"Territoire": names.get(code, code),
                      **{headers[k]: (r.at[k, "value"] if k in r.index else None, meta.at[k, "unit"],
                                      r.at[k, "status"] if k in r.index else "") for k in keys}})
    for col, label in summary.references(d):
        table.append({"Territoire": label, **{headers[k]: (meta.at[k, col], meta.at[k, "unit"], "") for k in keys}})
    df = pd.DataFrame(table)
    fmt = {headers[k]: (lambda v: text.measure(*v)) for k in keys}
    return html_table(df, caption="Indicateurs clés des territoires et de leurs références", numbers=fmt,
                      source=_source(rows))


def indicators_table(d: CommuneDiagnostic) -> HTML:
    """All indicators beside their references (annex), the source said once. An indicator without any value for the
    commune's territories is named once under the table instead of filling rows of « non disponible »; a reference
    column without any value is left out."""
    s = d.social
    if s.empty:
        return paragraph("Aucun indicateur social n'est disponible pour ce territoire.", "missing")
    valued = s.groupby("indicator")["value"].transform(lambda v: v.notna().any())
    empty = list(dict.fromkeys(s.loc[~valued, "label"]))
    s = s[valued]
    if s.empty:
        return paragraph("Aucun indicateur social n'a de valeur pour ce territoire.", "missing")
    names = summary.territory_names(d)
    table = pd.DataFrame({"Territoire": s["code"].map(names), "Indicateur": s["label"],
                          "Valeur": list(zip(s["value"], s["unit"], s["status"]))})
    numbers = {"Valeur": lambda v: text.measure(*v)}
    sparse = []  # references known for a few indicators only: a small table of their own, one row per indicator
    for col, label in summary.references(d):
        if s[col].notna().mean() >= 0.75:
            table[label] = list(zip(s[col], s["unit"], [""] * len(s)))
            numbers[label] = lambda v: text.measure(*v)
        elif s[col].notna().any():
            sparse.append((col, label))
    if "reliability" in s and (s["reliability"].fillna("") != "").any():
        table["Fiabilité"] = s["reliability"].fillna("")
    note = ""
    if "ref_national_method" in s and s["ref_national_method"].notna().any():
        note = paragraph("Référence « Ensemble des QPV de France » : "
                         + " ; ".join(sorted(set(s["ref_national_method"].dropna()))) + ".", "note").data
    if sparse:
        known = s.drop_duplicates("indicator")
        known = known[known[[c for c, _ in sparse]].notna().any(axis=1)]
        refs = pd.DataFrame({"Indicateur": known["label"],
                             **{label: list(zip(known[col], known["unit"], [""] * len(known))) for col, label in sparse}})
        note += html_table(refs, caption="Références de la commune et des territoires qui l'englobent (indicateurs "
                           "publiés à ces échelons)", numbers={label: lambda v: text.measure(*v) for _, label in sparse}).data
    if empty:
        note += paragraph(f"Sans valeur pour les territoires de la commune (secret statistique ou non publiés), donc "
                          f"non repris : {text.join(text.quoted(empty))}.", "note").data
    return HTML(html_table(table, caption="Tous les indicateurs sociaux et leurs références", numbers=numbers,
                           source=_source(s)).data + note)


def indicator_chart(d: CommuneDiagnostic, indicator: str = INDICATOR) -> HTML | None:
    """A bar chart of one indicator across the territories, with reference lines; a list on small screens."""
    s = d.social[d.social["indicator"] == indicator]
    if s.empty or s["value"].notna().sum() == 0 or len(s) < 2:
        return None
    names = summary.territory_names(d)
    label, unit = s["label"].iloc[0], s["unit"].iloc[0]
    fig = Figure(figsize=(8, 0.8 + 0.45 * len(s)), layout="constrained")
    ax = fig.subplots()
    ax.barh(s["code"].map(names), s["value"].fillna(0), color="#174a7c")
    refs = []
    for (col, ref_label), style in zip(summary.references(d), ("--", ":", "-.", (0, (1, 3)))):
        if col != "ref_catalog" and s[col].notna().any():
            value = float(s[col].dropna().iloc[0])
            ax.axvline(value, color="#b2182b", linestyle=style, label=ref_label)
            refs.append(f"{ref_label} : {text.measure(value, unit)}")
    ax.set_xlabel(label + ("" if unit in text.RATIO_UNITS else f" ({unit})"))
    ax.invert_yaxis()
    if refs:  # below the axes, never over the bars
        fig.legend(loc="outside lower left", ncol=2, fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    ax.xaxis.set_major_formatter(lambda x, _: text.number(x, 0))
    values = [f"{names.get(c, c)} : {text.measure(v, unit, st)}" for c, v, st in zip(s["code"], s["value"], s["status"])]
    alt = f"{label} par quartier : {' ; '.join(values)}. Références : {' ; '.join(refs)}."
    chart = figure(fig, alt=alt, caption=f"{label} par territoire et références.")
    return HTML(fragments.render("chart.html.j2", chart=Markup(chart.data), items=values + refs))


def coverage_summary(d: CommuneDiagnostic) -> HTML:
    """Services of each domain in each territory and its band (the nearest one when there is none)."""
    c = d.coverage[d.coverage["level"] != "commune"] if d.has_qpv else d.coverage
    if c.empty:
        return missing(d, "services") or paragraph("Aucun service n'est renseigné pour ce territoire.", "missing")
    names = summary.territory_names(d)
    band = text.number(d.params["band_m"], 0, "m")

    def cell(row) -> str:
        n = round(float(row.services_band or 0))
        if n:
            return text.number(n)
        return f"0 (le plus proche à {text.number(row.nearest_m, 0, 'm')})" if not text.is_missing(row.nearest_m) else "0"

    table = pd.DataFrame({"code": c["code"], "Domaine": c["domain_label"], "cell": [cell(r) for r in c.itertuples()]})
    wide = table.pivot(index="code", columns="Domaine", values="cell")
    wide = wide.reindex(index=list(dict.fromkeys(c["code"])), columns=list(dict.fromkeys(c["domain_label"])))
    wide.insert(0, "Territoire", [names.get(x, x) for x in wide.index])
    wide = wide.reset_index(drop=True)
    wide.columns.name = None
    return html_table(wide, caption=f"Services de chaque domaine dans le territoire ou à moins de {band}")


def coverage_table(d: CommuneDiagnostic) -> HTML:
    """The full coverage table (annex)."""
    c = d.coverage
    if c.empty:
        return paragraph("Aucun service n'est renseigné pour ce territoire.", "missing")
    names = summary.territory_names(d)
    band = text.number(d.params["band_m"], 0, "m")
    table = pd.DataFrame({
        "Territoire": c["code"].map(names), "Domaine": c["domain_label"], "Dans le territoire": c["services_inside"],
        f"Dans la bande de {band}": c["services_band"], "Service le plus proche": c["nearest_m"],
        "Pour 1 000 habitants": c["per_1000"],
    })
    return html_table(table, caption="Services existants par domaine de médiation (détail)",
                      numbers={"Dans le territoire": 0, f"Dans la bande de {band}": 0,
                               "Service le plus proche": lambda v: text.number(v, 0, "m"), "Pour 1 000 habitants": 2})


def commune_map(d: CommuneDiagnostic, indicator: str | None = INDICATOR, tiles: bool = False) -> HTML:
    """The interactive map, offline (its printable twin is :func:`static_map`), with its text alternative."""
    m = interactive_map(d, indicator, tiles)
    return HTML(fragments.render(
        "commune_map.html.j2", bare=no_outlines(d),
        label=f"Carte interactive {text.of(d.name)} (la même information figure dans le tableau qui suit)",
        assets=Markup(maps.map_assets()), map=Markup(maps.map_fragment(m))))


def no_outlines(d: CommuneDiagnostic) -> str:
    """The QPVs the map cannot draw, in words: known by their indicators only, their outlines missing from the catalogue."""
    return text.join(list(d.qpv.loc[d.qpv.geometry.isna(), "lib_qp"]))


def _map_layers(d: CommuneDiagnostic, indicator: str | None) -> maps.MapLayers:
    """What both versions of the commune map draw: the commune, its outlined QPVs, services, indicator, needs, band, context, partners."""
    label = None
    if indicator and indicator in d.qpv and d.qpv.geometry.notna().any():  # no outline: nothing to colour
        rows = d.social.loc[d.social["indicator"] == indicator, ["label", "unit"]]
        label = rows["label"].iloc[0] if len(rows) else indicator
        unit = rows["unit"].iloc[0] if len(rows) else ""
        if unit and unit not in text.RATIO_UNITS and f"({unit})" not in label:
            label += f" ({unit})"  # the legend's classes are bare numbers: the unit is in its title
    else:
        indicator = None
    actors = None
    if d.partners is not None:
        from diagnostic.analysis.partners import actors_layer

        actors = actors_layer(d.partners)
    return maps.MapLayers(d.commune_shape, d.qpv[d.qpv.geometry.notna()], d.services, indicator=indicator,
                          indicator_label=label, band_m=d.params["band_m"],
                          needs=d.needs.rename(columns={"code": "code_qp"}) if d.has_qpv else None,
                          context=d.context_shapes, actors=actors)


def interactive_map(d: CommuneDiagnostic, indicator: str | None = INDICATOR, tiles: bool = False) -> folium.Map:
    """The folium map of the commune, coloured by ``indicator`` (the report's and the explorer's)."""
    m = maps.commune_map(_map_layers(d, indicator), tiles=tiles)
    return maps.add_walks(m, _heard_here(d).walks) if d.data.consultation is not None else m


def static_map(d: CommuneDiagnostic, path: Path, indicator: str | None = INDICATOR) -> Path:
    """The same map as a PNG, for print."""
    return maps.static_map(_map_layers(d, indicator), path)


def map_alt(d: CommuneDiagnostic) -> str:
    """The printed map's text alternative: what it shows, in words."""
    band = text.number(d.params["band_m"], 0, "m")
    qpv = text.join(list(d.qpv["lib_qp"])) if d.has_qpv else ""
    return (f"Carte {text.of(d.name)}" + (f" : quartiers prioritaires ({qpv}), bande de {band} autour d'eux" if qpv else "")
            + f", {text.count(len(d.services), 'service localisé', 'services localisés')} par domaine de médiation.")


def print_image(path: Path, alt: str) -> HTML:
    return image(Path(path).read_bytes(), alt, print_only=True)


def needs_table(d: CommuneDiagnostic, top: int = 15) -> HTML:
    n = d.needs
    if n.empty:
        return paragraph("Aucun besoin n'a pu être calculé faute d'indicateurs.", "missing")
    names = summary.territory_names(d)
    n = n[n["level"] != "faible"].head(top) if (n["level"] != "faible").any() else n.head(top)
    table = pd.DataFrame({
        "Rang": n["rank"], "Territoire": n["code"].map(names), "Domaine": n["domain_label"], "Niveau": n["level"],
        "Habitants": n["population"], "Besoin mesuré (sur 100)": 100 * n["need"],
        "Réponse existante (%)": 100 * n["response"], "Non couvert (sur 100)": 100 * n["unmet"],
        "Robustesse": n["robustness"], "Remarque": n["note"],
    })
    return html_table(table, caption="Besoins non couverts, par ordre de priorité dans la commune (niveau, puis habitants concernés)",
                      numbers={"Habitants": 0, "Besoin mesuré (sur 100)": 0, "Réponse existante (%)": 0,
                               "Non couvert (sur 100)": 0})


def needs_evidence(d: CommuneDiagnostic, top: int = 6) -> HTML:
    """Why each strong or medium unmet need, in one or two sentences, then the demands that did not become priorities."""
    rows = d.needs[d.needs["level"].isin(summary.STRONG)].head(top) if len(d.needs) else d.needs
    evidence = [summary.need_sentence(d, row) for _, row in rows.iterrows()]
    dropped = d.needs[(d.needs["obs_count"] > 0) & ~d.needs["raised"] & (d.needs["level"] != "fort")] if len(d.needs) else d.needs
    names = summary.territory_names(d) if len(dropped) else {}
    dropped = [{"place": names.get(r.code, r.code), "domain": r.domain_label, "reason": r.expressed_reason}
               for r in dropped.itertuples()]
    return HTML(fragments.render("needs_evidence.html.j2", evidence=evidence, dropped=dropped))


def expressed_needs(d: CommuneDiagnostic) -> HTML | None:
    obs = d.data.observations
    if obs is None:
        return missing(d, "observations")
    codes = set(d.territories["code"]) | {d.code}
    obs = obs[obs["code_qp"].isin(codes) | obs["insee_com"].isin(codes)]
    if obs.empty:
        return paragraph("Aucune observation d'habitants ou de partenaires n'est enregistrée pour ce territoire.")
    t = obs.groupby(["domain", "problem", "source_type"]).agg(n=("weight", "size"), w=("weight", "sum")).reset_index()
    from diagnostic.io.reference import DOMAINS
    from diagnostic.io.sources.observations import problem_types

    labels = problem_types()["libelle"]
    table = pd.DataFrame({"Domaine": t["domain"].map(DOMAINS), "Problème": t["problem"].map(labels),
                          "Source": t["source_type"], "Observations": t["n"], "Poids": t["w"]})
    return html_table(table, caption="Besoins exprimés (consultations, marches exploratoires)",
                      numbers={"Observations": 0, "Poids": lambda v: text.number(v, 0 if float(v).is_integer() else 1)})


def _heard_here(d: CommuneDiagnostic):
    """The consultation of the catalogue restricted to the commune and its QPVs."""
    return d.data.consultation.for_places(d.code, set(d.territories["code"]), d.commune_shape.union_all())


def _day(value) -> str:
    return pd.Timestamp(value).strftime("%d/%m/%Y") if pd.notna(value) else "date inconnue"


def consultation(d: CommuneDiagnostic) -> HTML | None:
    """Who was heard: residents and partners consulted, methods and dates, the share of each need that comes
    from what was said, the stops of the marches exploratoires per QPV, meetings, and the selected quotations."""
    from diagnostic import text
    from diagnostic.analysis import consultation as cs
    from diagnostic.io.reference import DOMAINS
    from diagnostic.io.sources.observations import problem_types
    from diagnostic.io.sources.places import INSIDE

    if d.data.consultation is None:
        return None  # the absent observations are said once, by expressed_needs just above
    c = _heard_here(d)
    codes = set(d.territories["code"]) | {d.code}
    obs = d.data.observations
    obs = obs[obs["code_qp"].isin(codes) | obs["insee_com"].isin(codes)] if obs is not None else None
    who = cs.heard(c, obs)
    methods = who["methods"]
    if methods.empty:
        return paragraph(f"Aucune consultation d'habitants ou de partenaires n'est enregistrée pour {d.name}.")
    # Answers outside the territory or without a place belong to no commune: shown from the whole survey.
    whole = cs.heard(d.data.consultation)["methods"]
    if len(whole):
        aside = whole.set_index("method")[["outside", "unplaced"]]
        methods = methods.assign(outside=methods["method"].map(aside["outside"]).fillna(0).astype(int),
                                 unplaced=methods["method"].map(aside["unplaced"]).fillna(0).astype(int))
    names = {**d.territories.set_index("code")["name"].to_dict(), d.code: d.name}
    first, last = methods["first"].min(), methods["last"].max()
    figures = key_figures([
        (text.number(who["residents"]), text.plural(who["residents"], "habitant consulté", "habitants consultés")),
        (text.number(who["partners"]), text.plural(who["partners"], "partenaire consulté", "partenaires consultés")),
        (text.number(len(methods)), text.plural(len(methods), "méthode", "méthodes")),
        (f"{_day(first)} – {_day(last)}", "période de la consultation"),
    ])
    parts = []
    table = pd.DataFrame({
        "Méthode": methods["method"],
        "Nombre": [text.count(n, u, None) for n, u in zip(methods["count"], methods["unit"])],
        "Période": [_day(a) if _day(a) == _day(b) else f"du {_day(a)} au {_day(b)}"
                    for a, b in zip(methods["first"], methods["last"])],
        "Habitants": methods["residents"], "Partenaires": methods["partners"],
        "Hors du territoire": methods["outside"], "Sans lieu": methods["unplaced"],
    })
    caption = ("Méthodes de consultation (réponses hors du territoire ou sans lieu : pour l'ensemble du "
               "questionnaire, comptées à part)")
    parts.append(html_table(table, caption=caption,
                            numbers={"Habitants": 0, "Partenaires": 0, "Hors du territoire": 0, "Sans lieu": 0}).data)
    answers = cs.survey_answers(obs)
    if len(answers):
        labels, domains = problem_types()["libelle"], dict(DOMAINS)
        t = pd.DataFrame({
            "Questionnaire": "aux " + answers["public"],
            "Quartier": [names.get(q or i, q or i) for q, i in zip(answers["code_qp"], answers["insee_com"])],
            "Domaine": answers["domain"].map(domains), "Problème": answers["problem"].map(labels),
            "Répondants": answers["respondents"]})
        parts.append(html_table(t, caption="Réponses aux questionnaires par quartier, domaine et problème",
                                numbers={"Répondants": 0}).data)
    said = cs.expressed_effects(d.needs)
    if len(said):
        t = pd.DataFrame({"Territoire": said["code"].map(names), "Domaine": said["domain_label"],
                          "Niveau d'après les chiffres": said["level_measured"], "Niveau retenu": said["level"],
                          "Effet de ce qui a été dit": said["expressed_reason"], "Observations": said["obs_count"]})
        parts.append(html_table(t, caption="Ce qu'ont dit habitants et partenaires : niveau relevé, ou pourquoi il ne "
                                "l'est pas", numbers={"Observations": 0}).data)
    stops = cs.stops(c)
    stops = stops[stops["status"] == INSIDE] if len(stops) else stops
    if len(stops):
        labels = problem_types()["libelle"]
        t = pd.DataFrame({
            "Quartier": [names.get(q, "hors QPV") if q else "hors QPV" for q in stops["code_qp"]],
            "Marche": [f"{w} ({_day(day)})" for w, day in zip(stops["walk"], stops["date"])],
            "Étape": [f"{n}. {name}" for n, name in zip(stops["stop"], stops["name"])],
            "Commentaire": stops["comment"],
            "Problèmes relevés": [", ".join(labels.get(p, p) for p in ps) or "aucun mot-clé reconnu"
                                  for ps in stops["problems"]],
        }).sort_values(["Quartier", "Marche", "Étape"], kind="stable")
        parts.append(html_table(t, caption="Étapes des marches exploratoires, par quartier").data)
    if len(c.meetings):
        m = c.meetings.sort_values("date")
        labels = problem_types()["libelle"]
        t = pd.DataFrame({
            "Date": m["date"].map(_day), "Rencontre": m["kind"], "Objet": m["title"],
            "Lieu": [names.get(q or i, q or i) for q, i in zip(m["code_qp"], m["insee_com"])],
            "Participants": [", ".join(f"{k} : {v}" for k, v in p.items()) for p in m["participants"]],
            "Thèmes": [", ".join(labels.get(p, p) for _, p, _ in th) for th in m["themes"]],
        })
        parts.append(html_table(t, caption="Réunions et entretiens (participants comptés par type, jamais nommés)").data)
    quotes = [{"text": q.text, "method": q.method, "place": names.get(q.code_qp or q.insee_com, q.code_qp or q.insee_com),
               "day": _day(q.date)} for q in cs.quotations(c).itertuples()]
    return HTML(fragments.render("consultation.html.j2", figures=Markup(figures.data),
                                 tables=[Markup(p) for p in parts], quotes=quotes))


def partners_view(d: CommuneDiagnostic) -> HTML:
    """The interactive network of the actors serving the commune, or why there is none."""
    if d.partners is None:
        if d.data.partners is None:
            return missing(d, "partners")
        return paragraph(f"Aucun acteur du registre des partenaires n'est rattaché {text.at(d.name)} (ni par la commune, "
                         "ni par ses quartiers) : le maillage partenarial reste à décrire avec les partenaires.",
                         "missing")
    from diagnostic.report.network import network_html

    return HTML(fragments.render("partners_view.html.j2", network=Markup(network_html(d.partners, d.graph))))


def partners_tables(d: CommuneDiagnostic) -> list[HTML]:
    """Actors, their relations and the links to create: the network's text alternative."""
    if d.partners is None:
        return []
    from diagnostic.analysis import partners as pt
    names = summary.territory_names(d)
    communes = d.data.communes.set_index("insee_com")["lib_com"].to_dict()
    actors = pt.actors_table(d.partners, d.graph).drop(columns=["Identifiant", "Origine"], errors="ignore")
    actors["Communes"] = actors["Communes"].map(lambda cs: ", ".join(communes.get(c.strip(), c.strip()) for c in cs.split(",") if c.strip()))
    actors["QPV"] = actors["QPV"].map(lambda cs: ", ".join(names.get(c.strip(), c.strip()) for c in cs.split(",") if c.strip()))
    actors = actors.rename(columns={"QPV": "Quartiers"})
    whole = lambda v: "" if text.is_missing(v) else text.number(v)
    out = [html_table(actors, caption="Acteurs du territoire",
                      numbers={"Nombre de partenaires": 0, "Intermédiarité (0 à 1)": lambda v: text.number(v, 2),
                               "Postes adultes-relais": lambda v: "" if text.is_missing(v) or not v else text.number(v, 1 if v % 1 else 0)}),
           html_table(pt.relations_table(d.partners),
                      caption="Relations entre les acteurs",
                      numbers={"Depuis": whole, "Postes adultes-relais": whole,
                               "Montant (€)": lambda v: "" if text.is_missing(v) else text.number(v, 0, "€")})]
    if d.gaps is not None and len(d.gaps):
        gaps = pt.gaps_table(d.gaps)
        out.append(html_table(gaps, caption="Liens à créer et acteurs à mobiliser"))
    return out


def _evidence_sentences(d: CommuneDiagnostic, r: dict) -> list[str]:
    """Why a recommendation, in sentences: its own ``raison`` when given, else its evidence put in words."""
    need_reasons = set(d.needs["reason"]) if "reason" in d.needs else set()
    if isinstance(r.get("reason"), str) and r["reason"].strip() and r["reason"] not in need_reasons:
        return [text.sentence(r["reason"])]
    out = []  # a need's own reason is said in « Besoins non couverts »: a card names the needs it answers
    names = summary.territory_names(d)
    for e in r.get("evidence") or []:
        if "elements" in e:
            need = d.needs[(d.needs["code"] == e["territoire"]) & (d.needs["domain_label"] == e["domaine"])]
            if len(need):  # the need's full reason is in « Besoins non couverts »: here its level and rank only
                row = need.iloc[0]
                out.append(text.sentence(f"{names.get(row['code'], row['code'])} : besoin « {row['domain_label']} » de "
                                         f"niveau {row['level']}, rang {int(row['rank'])} du classement de la commune "
                                         f"(besoin non couvert {round(100 * float(row['unmet']))} sur 100)"))
            else:
                out.append(text.sentence(f"{names.get(e['territoire'], e['territoire'])} : besoin « {e['domaine']} » "
                                         f"de niveau {e['niveau']}"))
        elif e.get("type") == "partenariat":
            who = e.get("acteur", "")
            other = f" et {e['partenaire']}" if e.get("partenaire") and e["partenaire"] != "nan" else ""
            why = f" : {e['pourquoi']}" if e.get("pourquoi") else ""
            out.append(text.sentence(f"{who}{other}{why}"))
        elif e.get("libelle") and "valeur" in e:
            value = e["valeur"]
            shown = value if isinstance(value, str) else (
                text.number(value) if float(value).is_integer() or abs(float(value)) >= 100 else text.number(value, 1))
            if e.get("libelle") == "Majoration pour besoin fort":
                shown = "aucune" if float(value) == 1 else f"{text.number((float(value) - 1) * 100)} %"
            out.append(text.sentence(f"{e['libelle']} : {shown}"))
    return list(dict.fromkeys(out))[:6]


def _folded(value: str) -> str:
    return " ".join(text.fold(value).replace("\u202f", " ").split()).rstrip(".")


def _not_in(paragraph: str, sentences: list[str]) -> list[str]:
    """The « Pourquoi » sentences that the card's paragraph does not already say (a choice's reason is its text)."""
    said = _folded(paragraph)
    return [s for s in sentences if _folded(s) not in said and not said.startswith(_folded(s)[:120])]


def recommendations(d: CommuneDiagnostic, kinds: set[str] | None = None, ids: set[str] | None = None,
                    added: bool = False) -> HTML:
    """Recommendation cards: title, type, domain, priority, text, and why in sentences (visible, also in print).

    With ``ids``, the rules' recommendations whose id starts with one of them; ``added`` also
    shows, there and only there, every recommendation the officer added locally (any id).
    """
    cards = []
    for r in d.recommendations:
        if kinds and r["type"] not in kinds:
            continue
        local = r["origin"] == "ajout local"
        if ids is not None and not (added if local else any(r["id"].startswith(i) for i in ids)):
            continue
        cards.append({"title": r["title"], "priority": int(r["priority"]), "type": r["type"],
                      "domain": r["domain_label"], "local": r["origin"] != "règle", "text": r["text"],
                      "why": _not_in(r["text"], _evidence_sentences(d, r))})
    return HTML(fragments.render("recommendations.html.j2", cards=cards))


def framing(d: CommuneDiagnostic) -> HTML:
    """The frame of the future service: territories, publics, objectives, hours, team."""
    f = d.framing
    territories = list(f.get("territoires") or [])
    dec = d.decision or {}
    team = (dec.get("equipe") or {}).get("taille") if "equipe" in {r["id"] for r in d.recommendations} else None
    joint = [f"part du service commun de {j['nom']} : {text.number(j['part_equipe'], 1)} sur "
             f"{text.count(j['equipe']['taille'], 'médiateur')}" for j in dec.get("services_communs") or []] \
        if team is not None else []
    crew = text.join(([f"{text.count(team, 'médiateur', 'médiateurs')} (postes à créer : {dec['postes_a_creer']})"]
                      if team else []) + joint)
    rows = [
        ("Territoires d'intervention", text.join(territories) or d.name),
        ("Publics prioritaires", f.get("publics") or "à préciser avec les partenaires"),
        ("Horaires de présence", f.get("horaires") or ""),
        ("Équipe", f"{crew} (voir le calcul ci-dessous)" if crew else "à définir"),
    ]
    objectives = list(f.get("objectifs") or [])
    return HTML(fragments.render("framing.html.j2", rows=rows, objectives=objectives))


def _names_for_codes(d: CommuneDiagnostic, value: str) -> str:
    """A data-quality remark with QPV names in place of their codes."""
    names = dict(zip(d.data.qpv["code_qp"], d.data.qpv["lib_qp"])) if len(d.data.qpv) else {}
    return reader_text(re.sub(r"\bQ[NP]\d{3}\w{3,4}\b", lambda m: names.get(m.group(0), "quartier"), value))


def sources_table(d: CommuneDiagnostic) -> HTML:
    v = pd.DataFrame(d.data.vintages())
    remarks = {r.path.name: " ".join(r.warnings) for r in d.data.reports if r.warnings}
    v = pd.DataFrame({"Donnée": v["role"], "Producteur": v["producteur"], "Millésime": v["millesime"],
                      "Licence": v["licence"], "Adresse": v["adresse"],
                      "Remarques": v["fichier"].map(remarks).fillna("").map(lambda r: _names_for_codes(d, r))})
    return html_table(v, caption="Sources et millésimes")


def parameters_text(d: CommuneDiagnostic) -> HTML:
    """The choices of this diagnostic in words (the exact parameters are saved beside the report)."""
    from diagnostic.io.reference import DOMAINS

    domains = d.params.get("domains") or list(DOMAINS)
    chosen = "tous les domaines de médiation" if set(domains) >= set(DOMAINS) else (
        "les domaines " + text.join(text.quoted([DOMAINS.get(x, x) for x in domains])))
    band = text.number(d.params["band_m"], 0, "m")
    scope = ("l'ensemble des quartiers prioritaires de la commune" if not d.params.get("qpv_codes")
             else "les quartiers " + text.join(list(d.territories["name"])))
    return paragraph(f"Ce diagnostic porte sur {scope}, avec une bande de {band} autour de chaque quartier, et "
                     f"retient {chosen}. Les règles de calcul des besoins et des préconisations sont celles du réseau, "
                     "éventuellement adaptées au territoire.")


def glossary() -> HTML:
    return HTML(fragments.render("glossary.html.j2", items=list(GLOSSARY.items())))


def method(d: CommuneDiagnostic | None = None) -> HTML:
    """The method annex: each step in plain French, with its reference and thresholds."""
    from diagnostic.analysis.indicators.needs import load_rules as need_rules
    from diagnostic.analysis.recommend import load_rules as reco_rules
    from diagnostic.report.method import annex

    if d is None:
        return markdown(annex(need_rules(), reco_rules()))
    reco = d.params["reco_rules"] if d.params["reco_rules"] != "templates/recommandations.yaml" else None
    return markdown(annex(need_rules(d.params["needs_rules"] if d.params["needs_rules"] != "templates/besoins.yaml" else None,
                                     reco),
                          reco_rules(reco), d.params.get("methode", "")))
