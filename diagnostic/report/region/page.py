"""Write the regional synthesis: ``synthese_regionale.html`` (Jinja, autoescaped), its JSON, its PNG map.

Every text from the data is escaped by Jinja's autoescape; numbers are written by
:mod:`diagnostic.text` through the template's filters. The page loads nothing from the
network (Leaflet is inlined by :mod:`diagnostic.report.maps.offline`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from diagnostic import __version__, resources, text
from diagnostic._fs import write_atomic
from diagnostic.analysis.indicators.posts import MEDIATION_PROGRAMME
from diagnostic.analysis.region.rules import PROGRAMMES, RANKING_KEYS
from diagnostic.analysis.region.synthesis import Synthesis, results
from diagnostic.io.sources.postes import partial_years
from diagnostic.report.export import TEMPLATE_DIR, page_css
from diagnostic.report.maps.offline import check_offline, map_assets, map_fragment
from diagnostic.report.region.maps import CLASSES, UNKNOWN, gap_class, region_map, static_region_map

REGION_TEMPLATES = resources.path("region")
HTML_NAME = "synthese_regionale.html"
JSON_NAME = "synthese_regionale.json"
PNG_NAME = "synthese_regionale_carte.png"
PDF_NAME = "synthese_regionale.pdf"
CSV_NAME = "synthese_regionale_communes.csv"
#: The page's sections (id, heading), in order: the contents lists them and the PDF numbers their pages.
TOC = (("en-bref", "En bref"), ("territoires", "Besoins et médiation par territoire"), ("carte", "Carte"),
       ("evolution", "Évolution des postes"), ("partenariats", "Opportunités de partenariat"),
       ("methode", "Méthode et sources"))
#: What the catalogue lacks, said for a reader: the role names and options of the command line are left out.
_TOOL_WORDS = re.compile(r"\s*\((?:rôle|option|fichier)[^)]*\)")


def environment() -> jinja2.Environment:
    """The Jinja environment of the regional page: autoescape on, French number filters."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(REGION_TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(
        number=lambda v, digits=0, unit="": text.number(v, digits, unit, missing="n.d."),
        percent=lambda v, digits=1: text.percent(v, digits, missing="n.d."),
        count=lambda v, singular, plural_form=None: text.count(v, singular, plural_form, missing="n.d."),
        join_fr=lambda items, last=" et ": text.join([str(i) for i in items], last),
        posts=lambda v: text.number(v, 0 if float(v).is_integer() else 1, missing="n.d."),
    )
    return env


def _years_table(long, keys: list[str], years: list[int], labels: dict[str, Any] | None = None) -> list[dict]:
    """Rows of a posts-per-year table: key labels, programme label, one count per year."""
    if long.empty:
        return []
    rows = []
    table = long.pivot_table(index=[*keys, "programme"], columns="year", values="posts", aggfunc="sum", fill_value=0)
    for index, values in table.iterrows():
        index = index if isinstance(index, tuple) else (index,)
        rows.append({"keys": [labels.get(k, {}).get(v, v) if labels else v for k, v in zip(keys, index[:-1])],
                     "programme": PROGRAMMES.get(index[-1], index[-1]),
                     "values": [int(values.get(y, 0)) for y in years]})
    return rows


def context(synth: Synthesis, png: bytes | None) -> dict[str, Any]:
    """Everything the template shows, prepared from the synthesis (no number formatted here)."""
    rules, years = synth.rules, synth.years
    target = rules["target_per_10000"]
    trends = synth.trends
    ref = synth.reference_year
    scoped_ref = synth.posts[(synth.posts["year"] == ref) & (synth.posts["programme"] == MEDIATION_PROGRAMME)] \
        if ref is not None else synth.posts.iloc[0:0]
    first = years[0] if years else None
    first_count = int((synth.posts["year"] == first).sum()) if first is not None else None
    main = synth.epci if len(synth.epci) else synth.communes
    qpv_pop = float(main["qpv_population"].sum()) if len(main) else None
    posts_total = float(main["posts"].sum()) if len(main) and main["posts"].notna().any() else None
    epci_names = synth.epci.set_index("code")["name"].to_dict() if len(synth.epci) else {}
    employer_labels = trends["types_employeurs"].drop_duplicates("employer_type").set_index("employer_type")[
        "employer_label"].to_dict() if len(trends["types_employeurs"]) else {}
    contract_labels = trends["contrats"].drop_duplicates("code_cv").set_index("code_cv")["lib_cv"].to_dict() if len(
        trends["contrats"]) else {}
    rf = trends["region_france"]
    for table in (synth.epci, synth.communes):
        table["class_label"] = [gap_class(r, target)[1] for r in table["ratio"]] if len(table) else []
    partial = partial_years(synth.data.adultes_relais)
    mark = "Données fictives" if synth.data.catalog.fictional else "Document interne"
    today = text.date(dt.date.today())
    return {
        "title": synth.title,
        "page_css": Markup(page_css(f"{synth.data.catalog.name} — {today}", mark)),
        "toc": [*TOC, *((("annexe-communes", "Annexe : toutes les communes avec QPV"),) if len(synth.communes) else ())],
        "partial": set(partial),
        "partial_note": text.join([f"{y} est une année partielle dans les fichiers de l'ANCT ({reason}) : ses postes "
                                   "ne se comparent pas aux années complètes" for y, reason in partial.items()]),
        "headline": headline(synth, partial),
        "catalog": synth.data.catalog.name,
        "fictional": synth.data.catalog.fictional,
        "department": synth.department,
        "date": today,
        "version": __version__,
        "css": Markup((TEMPLATE_DIR / "report.css").read_text(encoding="utf-8")  # our own style sheets, not data
                      + (REGION_TEMPLATES / "region.css").read_text(encoding="utf-8")),
        "map_assets": Markup(map_assets()),
        "map": Markup(map_fragment(region_map(synth.epci, synth.communes, synth.epci_shapes, synth.data.communes,
                                              target), height="620px")) if len(synth.communes) else None,
        "png": base64.b64encode(png).decode("ascii") if png else None,
        "classes": [{"colour": c, "label": lab} for _, c, lab in CLASSES] + [{"colour": UNKNOWN[0], "label": UNKNOWN[1]}],
        "class_colours": {lab: c for _, c, lab in CLASSES} | {UNKNOWN[1]: UNKNOWN[0]},
        "missing": [_TOOL_WORDS.sub("", m) for m in synth.missing],
        "rules": rules,
        "ranking": [RANKING_KEYS[k] for k in rules["ranking"]],
        "programmes": [PROGRAMMES[p] for p in rules["programmes"]],
        "programme_keys": rules["programmes"],
        "counted": PROGRAMMES[MEDIATION_PROGRAMME],
        "reference_year": ref,
        "years": years,
        "first_year": first,
        "first_count": first_count,
        "ref_count": len(scoped_ref) if ref is not None else None,  # no posts file: unknown, not 0
        "qpv_population": qpv_pop,
        "posts_total": posts_total,
        "ratio": posts_total / qpv_pop * 10_000 if qpv_pop and posts_total is not None else None,
        "epci": synth.epci.to_dict("records"),
        "communes": synth.communes.sort_values(["insee_dep", "name"]).to_dict("records") if len(synth.communes) else [],
        "prospects": {k: v.to_dict("records") for k, v in synth.prospects.items()},
        "equipped": {k: v.to_dict("records") for k, v in synth.equipped.items()},
        "by_department": _years_table(trends["departements"], ["insee_dep"], years),
        "by_epci": _years_table(trends["epci"].fillna({"siren_epci": "sans EPCI"}), ["siren_epci"], years,
                                {"siren_epci": epci_names}),
        "by_contract": _years_table(trends["contrats"].fillna({"code_cv": "sans contrat"}), ["code_cv"], years),
        "contract_labels": contract_labels,
        "by_employer": _years_table(trends["types_employeurs"], ["employer_type"], years,
                                    {"employer_type": employer_labels}),
        "region_france": rf.to_dict("records"),
        "national": bool(len(rf)) and rf["france"].notna().any(),
        "opportunities": synth.opportunities,
        "has_registry": synth.opportunities.get("contrats_sans_operateur") is not None,
    }


def headline(synth: Synthesis, partial: dict[int, str]) -> list[dict[str, Any]]:
    """The trend of each programme, posts counted once per year (as in the tables below): from the first year of the
    files to the reference year (the last complete one), so that a falling programme shows beside a stable total."""
    long = synth.trends["departements"]
    if long.empty or synth.reference_year is None:
        return []
    per_year = long.groupby(["programme", "year"])["posts"].sum()
    out = []
    for programme in synth.rules["programmes"]:
        if programme not in per_year.index.get_level_values(0):
            continue
        series = per_year.loc[programme]
        years = [int(y) for y in series.index if int(y) not in partial and int(y) <= synth.reference_year]
        if len(years) < 2:
            continue
        first, last = int(series.loc[years[0]]), int(series.loc[years[-1]])
        direction = "en hausse" if last > first else "en baisse" if last < first else "stable"
        out.append({"label": PROGRAMMES.get(programme, programme), "first_year": years[0], "last_year": years[-1],
                    "first": first, "last": last, "direction": direction})
    return out


def communes_csv(synth: Synthesis, path: Path) -> Path:
    """The communes with QPV of the synthesis as a CSV for spreadsheets (the page's annex), names beside codes."""
    from diagnostic.report.exports import CSV_OPTIONS

    columns = {"code": "commune", "name": "commune_nom", "insee_dep": "departement", "qpv_count": "qpv",
               "qpv_population": "habitants_qpv", "need_level": "niveau_besoin", "posts": "postes_en_place",
               "ratio": "postes_pour_10000_hab_qpv", "gap": "ecart_cible", "class_label": "classe", "status_label": "situation"}
    table = synth.communes[[c for c in columns if c in synth.communes]].rename(columns=columns).round(2)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {k: v for k, v in CSV_OPTIONS.items() if k != "encoding"}
    return write_atomic(path, "\ufeff" + table.to_csv(**options))  # the byte-order mark French spreadsheets expect


def render(synth: Synthesis, png: bytes | None = None) -> str:
    """The regional page as one self-contained HTML string."""
    return check_offline(environment().get_template("synthese.html.j2").render(**context(synth, png)))


def write_synthesis(synth: Synthesis, output: str | Path, *, pdf: bool = False) -> list[Path]:
    """Write the page, its JSON and its PNG map into ``output`` (with ``pdf``, the page printed by
    :func:`diagnostic.report.pdf.write_pdf`, as the commune report); return the paths."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    written = []
    png = None
    if len(synth.communes):
        png_path = static_region_map(synth.epci, synth.communes, synth.epci_shapes, synth.data.communes,
                                     synth.rules["target_per_10000"], output / PNG_NAME,
                                     title=f"Postes de médiation pour 10 000 habitants des QPV — {synth.data.catalog.name}")
        png = png_path.read_bytes()
        written.append(png_path)
    written.append(write_atomic(output / JSON_NAME, json.dumps(results(synth), ensure_ascii=False, indent=2) + "\n"))
    page = write_atomic(output / HTML_NAME, render(synth, png))  # computes the map classes communes_csv writes
    if len(synth.communes):
        written.append(communes_csv(synth, output / CSV_NAME))
    written.append(page)
    if pdf:
        from diagnostic.report.pdf import write_pdf

        written.append(write_pdf(page, output / PDF_NAME))
    return written
