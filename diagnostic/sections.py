"""What each section of the diagnostic report shows, built from a :class:`CommuneDiagnostic`.

The notebook calls one function per block; each returns displayable HTML
(escaped through :mod:`diagnostic.report`) so the notebook stays narrative.
"""

from __future__ import annotations

import html
from pathlib import Path

import folium
import pandas as pd
from IPython.display import HTML
from matplotlib.figure import Figure

from diagnostic import maps
from diagnostic.commune import CommuneDiagnostic
from diagnostic.report import (
    figure,
    fr_number,
    html_table,
    image,
    key_figures,
    markdown,
    officer_text,
    paragraph,
)

GLOSSARY = {
    "QPV": "Quartier prioritaire de la politique de la ville, délimité par l'État (générations 2015 et 2024).",
    "Bande de 300 m": "Le QPV et ses abords à moins de 300 m : le périmètre habituel des services qui « desservent » un quartier.",
    "BPE": "Base permanente des équipements de l'INSEE : chaque équipement ouvert au public, avec son type et sa position.",
    "Filosofi": "Source de l'INSEE sur les revenus et la pauvreté ; « s » signale une valeur couverte par le secret statistique.",
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


def _n(v, digits=0, unit=""):
    return fr_number(v, digits, unit)


def cover_figures(d: CommuneDiagnostic) -> HTML:
    """Key figures up front."""
    strong = int((d.needs["level"] == "fort").sum()) if len(d.needs) else 0
    medium = int((d.needs["level"] == "moyen").sum()) if len(d.needs) else 0
    items = [(_n(d.population), "habitants dans la commune")]
    if d.has_qpv:
        items += [(str(len(d.qpv)), "quartiers prioritaires (QPV)"),
                  (_n(d.share["qpv_share"], 1, "%"), "de la population vit en QPV")]
    items += [(str(strong), "besoins non couverts forts"), (str(medium), "besoins non couverts moyens"),
              (str(len(d.recommendations)), "préconisations")]
    return key_figures(items)


def officer(d: CommuneDiagnostic, section: str) -> HTML:
    """The officer's text for a section, or a discreet note saying where to write it."""
    text = officer_text(d.data.catalog.texts_dir, section)
    if text is not None:
        return text
    return HTML(f'<p class="note">Aucune contribution locale pour cette section : ajoutez le fichier '
                f'« {html.escape(d.data.catalog.texts_dir.name)}/{html.escape(section)}.md » à côté du catalogue.</p>')


def missing(d: CommuneDiagnostic, role: str) -> HTML | None:
    """Say what is missing and how to add it, when an optional source is absent."""
    if role not in d.missing:
        return None
    return HTML(f'<p class="missing">Donnée manquante : {html.escape(d.missing[role])}. Ajoutez-la au catalogue '
                f'« {html.escape(d.data.catalog.path.name)} » puis relancez le diagnostic.</p>')


def territory_table(d: CommuneDiagnostic) -> HTML:
    if not d.has_qpv:
        return paragraph(f"{d.name} ne compte aucun quartier prioritaire dans les données : le diagnostic est "
                         "conduit à l'échelle de la commune.")
    t = d.territories.rename(columns={"code": "Code", "name": "Quartier", "population": "Population",
                                      "communes": "Communes"})
    return html_table(t, caption="Quartiers prioritaires de la commune", numbers={"Population": 0})


def indicators_table(d: CommuneDiagnostic) -> HTML:
    """Indicators beside their references, with gaps and statuses."""
    s = d.social
    if s.empty:
        return paragraph("Aucun indicateur social n'est disponible pour ce territoire.", "missing")
    refs = [("ref_all_qpv", "Moyenne des QPV"), ("ref_commune", "Commune"),
            ("ref_department", "Département"), ("ref_region", "Région"), ("ref_catalog", "Ensemble du catalogue")]
    names = d.territories.set_index("code")["name"]
    table = pd.DataFrame({"Territoire": s["code"].map(names), "Indicateur": s["label"], "Valeur": s["value"],
                          "Unité": s["unit"], "Statut": s["status"]})
    numbers = {"Valeur": 1}
    for col, label in refs:
        if col in s and s[col].notna().any():
            table[label] = s[col]
            numbers[label] = 1
    table["Source"] = s["source"]
    return html_table(table, caption="Indicateurs sociaux et références", numbers=numbers)


def indicator_chart(d: CommuneDiagnostic, indicator: str = "poverty_rate") -> HTML | None:
    """A bar chart of one indicator across the territories, with reference lines."""
    s = d.social[d.social["indicator"] == indicator]
    if s.empty or s["value"].notna().sum() == 0:
        return None
    names = d.territories.set_index("code")["name"]
    fig = Figure(figsize=(8, 0.5 + 0.45 * len(s)))
    ax = fig.subplots()
    ax.barh(s["code"].map(names), s["value"].fillna(0), color="#174a7c")
    for col, label, style in (("ref_all_qpv", "moyenne des QPV", "--"), ("ref_commune", "commune", ":"),
                              ("ref_department", "département", "-.")):
        if col in s and s[col].notna().any():
            ax.axvline(float(s[col].dropna().iloc[0]), color="#b2182b", linestyle=style, label=label)
    label, unit = s["label"].iloc[0], s["unit"].iloc[0]
    ax.set_xlabel(f"{label} ({unit})")
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    values = ", ".join(f"{names.get(c, c)} {_n(v, 1)}" for c, v in zip(s["code"], s["value"]))
    return figure(fig, alt=f"{label} par quartier : {values}.", caption=f"{label} par territoire et références.")


def coverage_table(d: CommuneDiagnostic) -> HTML:
    c = d.coverage
    if c.empty:
        return paragraph("Aucun service n'est renseigné pour ce territoire.", "missing")
    names = {**d.territories.set_index("code")["name"].to_dict(), d.code: d.name}
    table = pd.DataFrame({
        "Territoire": c["code"].map(names), "Domaine": c["domain_label"], "Dans le territoire": c["services_inside"],
        f"Dans la bande de {d.params['band_m']:.0f} m": c["services_band"], "Plus proche (m)": c["nearest_m"],
        "Pour 1 000 hab.": c["per_1000"], "Méthode": c["method"],
    })
    return html_table(table, caption="Services existants par domaine de médiation",
                      numbers={"Plus proche (m)": 0, "Pour 1 000 hab.": 2})


def commune_map(d: CommuneDiagnostic, indicator: str | None = "poverty_rate", tiles: bool = False) -> HTML:
    """The interactive map, offline (its printable twin is :func:`static_map`)."""
    m = interactive_map(d, indicator, tiles)
    return HTML(f'{_no_outlines_note(d)}<div class="interactive" role="region" aria-label="Carte interactive de '
                f'{html.escape(d.name)}">{maps.map_assets()}{maps.map_fragment(m)}</div>')


def _no_outlines_note(d: CommuneDiagnostic) -> str:
    """Which QPVs the map cannot draw (tables only), and how to add their outlines."""
    from diagnostic.sources.qpv import NO_OUTLINES

    bare = d.qpv[d.qpv.geometry.isna()]
    if bare.empty:
        return ""
    names = ", ".join(f"{r.lib_qp} ({r.code_qp})" for r in bare.itertuples())
    return (f'<p class="missing">Quartiers prioritaires de la commune, {html.escape(NO_OUTLINES)} : '
            f"{html.escape(names)}. La carte montre la commune et ses services.</p>")


def _map_layers(d: CommuneDiagnostic, indicator: str | None) -> dict:
    """What both versions of the commune map draw: indicator and its label, needs, band, context, partners."""
    label = None
    if indicator and indicator in d.qpv:
        labels = d.social.loc[d.social["indicator"] == indicator, "label"]
        label = labels.iloc[0] if len(labels) else indicator
    else:
        indicator = None
    actors = None
    if d.partners is not None:
        from diagnostic.partners import actors_layer

        actors = actors_layer(d.partners)
    return {"indicator": indicator, "indicator_label": label, "band_m": d.params["band_m"],
            "needs": d.needs.rename(columns={"code": "code_qp"}) if d.has_qpv else None,
            "context": d.context_shapes, "actors": actors}


def interactive_map(d: CommuneDiagnostic, indicator: str | None = "poverty_rate", tiles: bool = False) -> folium.Map:
    """The folium map of the commune, coloured by ``indicator`` (the report's and the explorer's)."""
    qpv = d.qpv[d.qpv.geometry.notna()]
    return maps.commune_map(d.commune_shape, qpv, d.services, tiles=tiles, **_map_layers(d, indicator))


def static_map(d: CommuneDiagnostic, path: Path, indicator: str | None = "poverty_rate") -> Path:
    """The same map as a PNG, for print."""
    return maps.static_map(d.commune_shape, d.qpv[d.qpv.geometry.notna()], d.services, path, **_map_layers(d, indicator))


def print_image(path: Path, alt: str) -> HTML:
    return image(Path(path).read_bytes(), alt, print_only=True)


def needs_table(d: CommuneDiagnostic, top: int = 15) -> HTML:
    n = d.needs
    if n.empty:
        return paragraph("Aucun besoin n'a pu être calculé faute d'indicateurs.", "missing")
    names = {**d.territories.set_index("code")["name"].to_dict(), d.code: d.name}
    n = n[n["level"] != "faible"].head(top) if (n["level"] != "faible").any() else n.head(top)
    table = pd.DataFrame({
        "Rang": n["rank"], "Territoire": n["code"].map(names), "Domaine": n["domain_label"], "Niveau": n["level"],
        "Besoin mesuré": n["need_measured_part"], "Besoin exprimé": n["need_expressed_part"],
        "Réponse existante": n["response"], "Non couvert": n["unmet"], "Remarque": n.get("note", ""),
    })
    return html_table(table, caption="Besoins non couverts, du plus fort au plus faible (scores de 0 à 1)",
                      numbers={"Besoin mesuré": 2, "Besoin exprimé": 2, "Réponse existante": 2, "Non couvert": 2})


def needs_evidence(d: CommuneDiagnostic, top: int = 5) -> HTML:
    """The evidence of the strongest unmet needs, in words."""
    from diagnostic.indicators.needs import explain

    names = {**d.territories.set_index("code")["name"].to_dict(), d.code: d.name}
    blocks = []
    for _, row in d.needs[d.needs["level"].isin(["fort", "moyen"])].head(top).iterrows():
        items = []
        for e in explain(row, d.indicators.evidence):
            if e["type"] == "indicateur":
                ref = f" (référence {e['reference_libelle']} : {_n(e['reference'], 1)})" if e.get("reference") is not None else ""
                status = f" — {e['statut']}" if e.get("statut") else ""
                items.append(f"{e['libelle']} : {_n(e['valeur'], 1)} {e['unite']}{ref}{status} — {e['source']}")
            elif e["type"] == "couverture":
                items.append(f"Services du domaine dans la bande : {_n(e['valeur'])} ; le plus proche à "
                             f"{_n(e['distance_plus_proche_m'])} m")
            elif e["type"] == "besoin exprime":
                items.append(f"{e['valeur']} observation(s) d'habitants et de partenaires ({e['sources']})")
            else:
                items.append(f"{e['libelle']} : {_n(e['valeur'], 1)}")
        lis = "".join(f"<li>{html.escape(i)}</li>" for i in items)
        blocks.append(f"<h3>{html.escape(names.get(row['code'], row['code']))} — {html.escape(row['domain_label'])} "
                      f"(niveau {html.escape(row['level'])})</h3><ul>{lis}</ul>")
    return HTML("".join(blocks) or '<p class="note">Aucun besoin non couvert de niveau fort ou moyen.</p>')


def expressed_needs(d: CommuneDiagnostic) -> HTML | None:
    obs = d.data.observations
    if obs is None:
        return missing(d, "observations")
    codes = set(d.territories["code"]) | {d.code}
    obs = obs[obs["code_qp"].isin(codes) | obs["insee_com"].isin(codes)]
    if obs.empty:
        return paragraph("Aucune observation d'habitants ou de partenaires n'est enregistrée pour ce territoire.")
    t = obs.groupby(["domain", "problem", "source_type"]).agg(n=("weight", "size"), w=("weight", "sum")).reset_index()
    from diagnostic.reference import DOMAINS
    from diagnostic.sources.observations import problem_types

    labels = problem_types()["libelle"]
    table = pd.DataFrame({"Domaine": t["domain"].map(DOMAINS), "Problème": t["problem"].map(labels),
                          "Source": t["source_type"], "Observations": t["n"], "Poids": t["w"]})
    return html_table(table, caption="Besoins exprimés (consultations, marches exploratoires)", numbers={"Poids": 1})


def partners_view(d: CommuneDiagnostic) -> HTML:
    """The interactive network of the actors serving the commune, or why there is none."""
    if d.partners is None:
        if d.data.partners is None:
            return missing(d, "partners")
        return paragraph(f"Aucun acteur du registre n'est rattaché à {d.name} (ni par la commune, ni par ses QPV) : "
                         "complétez le registre des partenaires (modèle templates/partenaires_modele.csv).", "missing")
    from diagnostic import partners as pt

    return HTML(f'<div class="interactive">{pt.network_html(d.partners, d.graph)}</div>')


def partners_tables(d: CommuneDiagnostic) -> list[HTML]:
    if d.partners is None:
        return []
    from diagnostic import partners as pt

    out = [html_table(pt.actors_table(d.partners, d.graph), caption="Acteurs du territoire"),
           html_table(pt.relations_table(d.partners), caption="Relations entre les acteurs")]
    if d.gaps is not None and len(d.gaps):
        out.append(html_table(pt.gaps_table(d.gaps), caption="Liens à créer et acteurs à mobiliser"))
    return out


def recommendations(d: CommuneDiagnostic, kinds: set[str] | None = None, ids: set[str] | None = None) -> HTML:
    """Recommendation cards (title, type, domain, priority, text, evidence in a collapsible block)."""
    cards = []
    for r in d.recommendations:
        if kinds and r["type"] not in kinds:
            continue
        if ids is not None and not any(r["id"].startswith(i) for i in ids):
            continue
        ev = "".join(f"<li>{html.escape(_evidence_text(e))}</li>" for e in r["evidence"][:8])
        details = f"<details><summary>Ce qui fonde cette préconisation</summary><ul>{ev}</ul></details>" if ev else ""
        cards.append(
            f'<article class="reco"><h4>{html.escape(r["title"])}</h4>'
            f'<p><span class="tag p{int(r["priority"])}">priorité {int(r["priority"])}</span>'
            f'<span class="tag">{html.escape(r["type"])}</span><span class="tag">{html.escape(r["domain_label"])}</span>'
            f'{"<span class=tag>ajout local</span>" if r["origin"] != "règle" else ""}</p>'
            f"<p>{html.escape(r['text'])}</p>{details}</article>"
        )
    return HTML("".join(cards) or '<p class="note">Aucune préconisation de ce type.</p>')


def framing(d: CommuneDiagnostic) -> HTML:
    """The frame of the future service: territories, publics, objectives, hours, team."""
    f = d.framing
    rows = [
        ("Territoires d'intervention", ", ".join(f.get("territoires") or []) or d.name),
        ("Publics prioritaires", f.get("publics") or "à préciser avec les partenaires"),
        ("Horaires de présence", f.get("horaires") or ""),
        ("Équipe", f"{f['equipe']} médiateurs (voir le calcul ci-dessous)" if f.get("equipe") else "à définir"),
    ]
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in rows)
    objectives = "".join(f"<li>{html.escape(o)}</li>" for o in f.get("objectifs") or [])
    objectives = f"<dt>Objectifs</dt><dd><ol>{objectives}</ol></dd>" if objectives else ""
    return HTML(f'<dl class="framing">{items}{objectives}</dl>')


def _evidence_text(e: dict) -> str:
    if "elements" in e:
        return f"{e['territoire']} — {e['domaine']} : niveau {e['niveau']} (score {_n(e['score_besoin_non_couvert'], 2)})"
    return " ; ".join(f"{k} : {v}" for k, v in e.items() if k != "type" and v not in (None, ""))


def sources_table(d: CommuneDiagnostic) -> HTML:
    v = pd.DataFrame(d.data.vintages()).rename(columns={"role": "Donnée", "fichier": "Fichier", "producteur": "Producteur",
                                                         "millesime": "Millésime", "licence": "Licence", "adresse": "Adresse"})
    remarks = {r.path.name: " ".join(r.warnings) for r in d.data.reports if r.warnings}
    v["Remarques"] = v["Fichier"].map(remarks).fillna("")
    return html_table(v, caption="Sources et millésimes")


def parameters_table(d: CommuneDiagnostic) -> HTML:
    p = pd.DataFrame({"Paramètre": list(d.params), "Valeur": [", ".join(v) if isinstance(v, list) else str(v) for v in d.params.values()]})
    return html_table(p, caption="Paramètres du diagnostic")


def glossary() -> HTML:
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in GLOSSARY.items())
    return HTML(f"<dl>{items}</dl>")


def method() -> HTML:
    return markdown(
        "Les indicateurs viennent des fichiers officiels listés ci-dessus, lus tels que publiés. "
        "Les taux et médianes ne sont jamais additionnés : les références sont des moyennes pondérées par la "
        "population. La couverture compte les services de chaque domaine dans le QPV et dans sa bande, et mesure "
        "la distance du bord du QPV au service le plus proche (en mètres, Lambert-93). Le besoin combine une part "
        "mesurée (indicateurs comparés à leur référence) et une part exprimée (observations) ; la réponse combine "
        "la densité de services, leur distance et les postes de médiation existants. Les règles et leurs poids sont "
        "dans templates/besoins.yaml et templates/recommandations.yaml, modifiables."
    )
