"""The explorer: ipywidgets over the diagnostic's own functions, for JupyterLab.

``notebooks/explorateur.ipynb`` only assembles an :class:`Explorer`. Each change
of a control rebuilds the commune's diagnostic with
:func:`diagnostic.commune.build` on data loaded once per catalogue and on
indicator tables kept in memory per parameters, then redraws the map, the key
figures, the unmet needs and the recommendations. Changed need weights are
written to a rules YAML (``templates/besoins.yaml`` with the new weights);
« Exporter le rapport » runs :func:`diagnostic.run.run_commune` with exactly
the current parameters, so the report equals what ``diagnostic run`` gives.
"""

from __future__ import annotations

import copy
import hashlib
import html
import re
import shutil
import tempfile
import time
import weakref
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd
import yaml

from diagnostic import maps, sections
from diagnostic.catalog import PROJECT_ROOT
from diagnostic.commune import CommuneDiagnostic, build
from diagnostic.errors import DiagnosticError
from diagnostic.indicators.cache import Indicators, compute
from diagnostic.indicators.coverage import DEFAULT_BAND_M
from diagnostic.indicators.needs import RULES_FILE, load_rules
from diagnostic.locate import locate_text
from diagnostic.reference import DOMAINS
from diagnostic.report import fr_number, html_table
from diagnostic.run import RunResult, run_commune
from diagnostic.territory import TerritoryData, load_territory
from diagnostic.text import fold

DEMO_CATALOG = PROJECT_ROOT / "data" / "demo" / "catalogue.yaml"
CATALOGS = [DEMO_CATALOG, *sorted((PROJECT_ROOT / "data" / "catalogues").glob("*.yaml"))]
DEFAULT_OUTPUT = PROJECT_ROOT / "outputs"
MAX_COMMUNES = 300
WEIGHT_MAX = 5.0
_STYLE = """<style>
.diag-explorateur table{border-collapse:collapse;margin:.4em 0 1em}
.diag-explorateur caption{text-align:left;font-weight:bold;padding:.3em 0}
.diag-explorateur th,.diag-explorateur td{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left}
.diag-explorateur td.num,.diag-explorateur th.num{text-align:right}
.diag-explorateur .reco{border-left:4px solid #174a7c;padding:0 .8em;margin:.6em 0}
.diag-explorateur .tag{display:inline-block;background:#eef;border-radius:3px;padding:0 6px;margin-right:4px}
.diag-explorateur .erreur{color:#9b1c1c;font-weight:bold;white-space:pre-line}
</style>"""


def rules_file(rules: dict[str, Any], folder: Path) -> Path:
    """Write need rules to ``folder/besoins-<hash>.yaml`` (same rules, same file) and return its path."""
    text = ("# Règles des besoins modifiées dans l'explorateur, à partir de templates/besoins.yaml.\n"
            + yaml.safe_dump(rules, allow_unicode=True, sort_keys=False))
    path = Path(folder) / f"besoins-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path


def _catalog_label(path: Path) -> str:
    """A catalogue as the officer knows it: its path under data/ when it is there."""
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT / "data"))
    except ValueError:
        return str(path)


def _words(text: str) -> str:
    """A name folded for searching: « Saint-Aubin-lès-Prés » and « saint aubin les pres » match."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", fold(text)).split())


def _number(value: float) -> float | int:
    value = round(float(value), 2)
    return int(value) if value.is_integer() else value


def _slider(value: float, maximum: float, step: float, description: str) -> w.FloatSlider:
    return w.FloatSlider(value=value, min=0.0, max=maximum, step=step, description=description,
                         continuous_update=False, readout_format=".2f",
                         style={"description_width": "initial"}, layout=w.Layout(width="380px"))


class Explorer:
    """Controls and outputs of the explorer, with one method per action so tests can drive them.

    Setting a control's value (``explorer.band.value = 0``) updates the
    outputs, as a click in JupyterLab does; :attr:`diagnostic` is the
    diagnostic currently shown and :meth:`options` its parameters.
    """

    def __init__(
        self,
        catalog: str | Path | TerritoryData | None = None,
        commune: str | None = None,
        *,
        data_dir: str | Path | None = None,
        output: str | Path = DEFAULT_OUTPUT,
    ) -> None:
        self.data_dir = data_dir
        self.data: TerritoryData | None = None
        self.diagnostic: CommuneDiagnostic | None = None
        self.last_update_s = float("nan")
        self.base_rules = load_rules(RULES_FILE)
        self._loaded: dict[str, TerritoryData] = {}
        self._indicators: dict[tuple, Indicators] = {}
        self._rules_dir = Path(tempfile.mkdtemp(prefix="diagnostic-explorateur-"))
        weakref.finalize(self, shutil.rmtree, self._rules_dir, True)
        self._quiet = 0
        self._make_widgets(output)
        if isinstance(catalog, TerritoryData):
            path = str(catalog.catalog.path)
            self._loaded[path] = catalog
        else:
            path = str(Path(catalog or DEMO_CATALOG).resolve())
        options = [(_catalog_label(Path(p)), str(p)) for p in CATALOGS]
        if path not in [v for _, v in options]:
            options.append((_catalog_label(Path(path)), path))
        with self._hold():
            self.catalog.options = options
            self.catalog.value = path
        self.catalog.observe(self._on_catalog, "value")
        self.search.observe(self._on_search, "value")
        self.commune.observe(self._on_commune, "value")
        for control in [self.qpv, self.band, self.indicator, self.expressed_weight,
                        *self.domains.values(), *self.weights.values()]:
            control.observe(self._on_change, "value")
        self.export_button.on_click(lambda _: self.export())
        self.locate_button.on_click(lambda _: self.locate())
        self.select_catalog(path, commune)

    # Widgets -----------------------------------------------------------------

    def _make_widgets(self, output: str | Path) -> None:
        wide = {"description_width": "initial"}
        self.catalog = w.Dropdown(description="Catalogue", style=wide, layout=w.Layout(width="380px"))
        self.search = w.Text(description="Rechercher", placeholder="nom ou code INSEE de la commune", style=wide,
                             layout=w.Layout(width="380px"))
        self.commune = w.Select(description="Commune", rows=6, style=wide, layout=w.Layout(width="380px"))
        self.qpv = w.SelectMultiple(description="QPV", rows=4, style=wide, layout=w.Layout(width="380px"))
        self.band = w.IntSlider(value=int(DEFAULT_BAND_M), min=0, max=1000, step=50, description="Bande (m)",
                                continuous_update=False, style=wide, layout=w.Layout(width="380px"))
        self.indicator = w.Dropdown(description="Indicateur de la carte", style=wide, layout=w.Layout(width="380px"))
        self.domains = {key: w.Checkbox(value=True, description=label, indent=False) for key, label in DOMAINS.items()}
        self.expressed_weight = _slider(float(self.base_rules.get("expressed_weight", 0.3)), 1.0, 0.05,
                                        "Poids du besoin exprimé")
        self.weights: dict[tuple[str, str], w.FloatSlider] = {}
        panels = []
        for domain, spec in self.base_rules["domains"].items():
            sliders = []
            for indicator, ind in (spec.get("indicators") or {}).items():
                slider = _slider(float(ind.get("weight", 1)), WEIGHT_MAX, 0.5, indicator)
                self.weights[(domain, indicator)] = slider
                sliders.append(slider)
            panels.append(w.VBox(sliders))
        self.rules_panel = w.Accordion(children=panels, titles=[DOMAINS[d] for d in self.base_rules["domains"]])
        self.status = w.HTML()
        self.map = w.HTML(layout=w.Layout(width="100%"))
        self.figures = w.HTML()
        self.needs = w.HTML()
        self.recommendations = w.HTML()
        self.output = w.Text(value=str(output), description="Dossier de sortie", style=wide,
                             layout=w.Layout(width="520px"))
        self.export_button = w.Button(description="Exporter le rapport", button_style="primary", icon="file-export",
                                      layout=w.Layout(width="200px"))
        self.export_status = w.HTML()
        self.place = w.Text(description="Lieu", placeholder="43.6045, 1.4440 — ou nom d'un service, d'un partenaire",
                            style=wide, layout=w.Layout(width="520px"))
        self.locate_button = w.Button(description="Localiser", icon="map-marker")
        self.location = w.HTML()
        controls = w.HBox([
            w.VBox([self.catalog, self.search, self.commune, self.qpv]),
            w.VBox([self.band, self.indicator, w.HTML("<b>Domaines de médiation</b>"),
                    w.GridBox(list(self.domains.values()),
                              layout=w.Layout(grid_template_columns="repeat(2, 320px)"))]),
        ])
        rules = w.Accordion(children=[w.VBox([self.expressed_weight,
                                              w.HTML("Poids des indicateurs, par domaine :"), self.rules_panel])],
                            titles=["Poids des règles des besoins (templates/besoins.yaml)"])
        tabs = w.Tab(children=[self.figures, self.needs, self.recommendations,
                               w.VBox([w.HBox([self.place, self.locate_button]), self.location]),
                               w.VBox([w.HBox([self.output, self.export_button]), self.export_status])],
                     titles=["Chiffres clés", "Besoins non couverts", "Préconisations", "Localiser un lieu",
                             "Exporter"])
        self.widget = w.VBox([w.HTML(_STYLE), controls, rules, self.status, self.map, tabs])
        self.widget.add_class("diag-explorateur")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)

    @contextmanager
    def _hold(self) -> Iterator[None]:
        """Change several controls without an update for each, and send each control's state in one message.

        A selection whose options shrink must reach the browser with its new index
        at once, or the widget's view fails on an option that no longer exists.
        """
        self._quiet += 1
        try:
            with ExitStack() as stack:
                for control in (self.catalog, self.commune, self.qpv, self.indicator, *self.domains.values()):
                    stack.enter_context(control.hold_sync())
                yield
        finally:
            self._quiet -= 1

    # Callbacks ---------------------------------------------------------------

    def _on_catalog(self, change: dict) -> None:
        if not self._quiet:
            self.select_catalog(change["new"])

    def _on_search(self, change: dict) -> None:
        if not self._quiet and self.data is not None:
            self.filter_communes(change["new"])

    def _on_commune(self, change: dict) -> None:
        if not self._quiet and change["new"]:
            self.select_commune(change["new"])

    def _on_change(self, change: dict) -> None:
        if not self._quiet:
            self.update()

    def select_catalog(self, catalog: str | Path, commune: str | None = None) -> None:
        """Load a catalogue (once per session) and show its commune with the most QPVs, or ``commune``."""
        key = str(catalog)
        try:
            if key not in self._loaded:
                self._message(f"Chargement du catalogue {Path(key).name}…")
                self._loaded[key] = load_territory(key, self.data_dir)
        except DiagnosticError as exc:
            self._error(exc)
            return
        self.data = self._loaded[key]
        table = self.data.qpv_indicators
        labels = table.definitions["libelle"].to_dict() if table is not None else {}
        choices = [(str(label), k) for k, label in labels.items() if k != "commune_population"]
        ranked = self.data.communes.sort_values(["qpv_count", "population"], ascending=False)
        with self._hold():
            if self.catalog.value != key:
                self.catalog.value = key
            self.indicator.options = choices or [("Aucun indicateur par QPV", "")]
            if "poverty_rate" in labels:
                self.indicator.value = "poverty_rate"
            self.search.value = ""
            self.commune.options = self._commune_choices(ranked)
        self.select_commune(str(commune) if commune else ranked["insee_com"].iloc[0])

    def _commune_choices(self, communes: pd.DataFrame) -> list[tuple[str, str]]:
        return [(f"{r.lib_com} ({r.insee_com}) — {r.qpv_count} QPV", r.insee_com)
                for r in communes.head(MAX_COMMUNES).itertuples()]

    def filter_communes(self, query: str) -> None:
        """Keep the communes whose name contains ``query`` or whose code starts with it."""
        communes = self.data.communes.sort_values(["qpv_count", "lib_com"], ascending=[False, True])
        words = _words(query)
        if words:
            communes = communes[communes["lib_com"].map(_words).str.contains(words, regex=False)
                                | communes["insee_com"].str.startswith(query.strip())]
        choices = self._commune_choices(communes)
        codes = [code for _, code in choices]
        current = self.commune.value
        with self._hold():
            self.commune.options = choices
            self.commune.value = current if current in codes else (codes[0] if codes else None)
        if not codes:
            self._message(f"Aucune commune ne correspond à « {query.strip()} ».", error=True)
        elif self.commune.value != current:
            self.select_commune(self.commune.value)

    def select_commune(self, code: str) -> None:
        """Show commune ``code`` with all its QPVs selected."""
        try:
            self.data.commune(code)
        except DiagnosticError as exc:
            self._error(exc)
            return
        qpv = self.data.qpv_in(code)
        with self._hold():
            if code not in [v for _, v in self.commune.options]:
                row = self.data.communes[self.data.communes["insee_com"] == code]
                self.commune.options = [*self._commune_choices(row), *self.commune.options]
            self.commune.value = code
            self.qpv.options = [(f"{r.lib_qp} ({r.code_qp})", r.code_qp) for r in qpv.itertuples()]
            self.qpv.value = tuple(qpv["code_qp"])
        self.update()

    # Parameters --------------------------------------------------------------

    def rules(self) -> dict[str, Any]:
        """The need rules with the weights of the sliders."""
        rules = copy.deepcopy(self.base_rules)
        rules["expressed_weight"] = _number(self.expressed_weight.value)
        for (domain, indicator), slider in self.weights.items():
            rules["domains"][domain]["indicators"][indicator]["weight"] = _number(slider.value)
        return rules

    def needs_rules(self) -> Path | None:
        """The rules file for the current weights (None while they are those of templates/besoins.yaml)."""
        rules = self.rules()
        return None if rules == self.base_rules else rules_file(rules, self._rules_dir)

    def set_domains(self, keys: list[str]) -> CommuneDiagnostic | None:
        """Tick exactly the domains ``keys``, with a single update."""
        with self._hold():
            for key, box in self.domains.items():
                box.value = key in keys
        return self.update()

    def selected_domains(self) -> list[str]:
        return [key for key, box in self.domains.items() if box.value]

    def options(self) -> dict[str, Any]:
        """The current parameters, as :func:`diagnostic.run.run_commune` takes them."""
        domains = self.selected_domains()
        qpv = sorted(self.qpv.value)
        rules = self.needs_rules()
        return {
            "band_m": float(self.band.value),
            "domains": None if len(domains) == len(DOMAINS) else domains,
            "needs_rules": str(rules) if rules else None,
            "indicator": self.indicator.value or None,
            "qpv_codes": None if not qpv or len(qpv) == len(self.qpv.options) else qpv,
        }

    def _indicator_tables(self, band_m: float, domains: list[str] | None, rules: str | None) -> Indicators:
        key = (str(self.data.catalog.path), band_m, tuple(domains or DOMAINS), rules)
        if key not in self._indicators:
            self._indicators[key] = compute(self.data, band_m=band_m, domains=domains, rules_path=rules)
        return self._indicators[key]

    # Outputs -----------------------------------------------------------------

    def update(self) -> CommuneDiagnostic | None:
        """Rebuild the diagnostic for the current controls and redraw every output."""
        if self.data is None or not self.commune.value:
            return None
        if not self.selected_domains():
            self._message("Cochez au moins un domaine de médiation.", error=True)
            return None
        start = time.perf_counter()
        opts = self.options()
        try:
            indicators = self._indicator_tables(opts["band_m"], opts["domains"], opts["needs_rules"])
            d = build(self.data, self.commune.value, band_m=opts["band_m"], domains=opts["domains"],
                      needs_rules=opts["needs_rules"], indicators=indicators, qpv_codes=opts["qpv_codes"])
        except DiagnosticError as exc:
            self._error(exc)
            return None
        self.diagnostic = d
        self.map.value = self.map_html(d, opts["indicator"])
        self.figures.value = self.figures_html(d)
        self.needs.value = sections.needs_table(d).data
        self.recommendations.value = sections.recommendations(d).data
        self.last_update_s = time.perf_counter() - start
        note = "" if self.qpv.value else " Aucun QPV coché : tous les QPV de la commune sont retenus."
        rules = " Poids modifiés : règles écrites dans un fichier temporaire." if opts["needs_rules"] else ""
        self._message(f"{d.name} ({d.code}) — mis à jour en {fr_number(self.last_update_s, 2)} s.{note}{rules}")
        return d

    @staticmethod
    def map_html(d: CommuneDiagnostic, indicator: str | None) -> str:
        """The map as a self-contained page in a sandboxed iframe (scripts of an HTML widget do not run)."""
        page = maps.map_html(sections.interactive_map(d, indicator or None))
        return (f'<iframe srcdoc="{html.escape(page, quote=True)}" sandbox="allow-scripts" '
                f'title="Carte interactive de {html.escape(d.name)}" class="diag-carte-explorateur" '
                f'style="width:100%;height:560px;border:1px solid #ccc"></iframe>')

    @staticmethod
    def figures_html(d: CommuneDiagnostic) -> str:
        """Key figures of the commune and the coverage of its territories, as escaped tables."""
        levels = d.needs["level"].value_counts() if len(d.needs) else pd.Series(dtype=int)
        qpv_population = d.territories["population"].sum(min_count=1) if d.has_qpv else 0
        band_m = d.params["band_m"]
        mediation = d.services[d.services["domains"] != ""]
        served = int(mediation.dwithin(d.qpv.geometry.union_all(), band_m).sum()) if d.has_qpv else 0
        rows = [
            ("Commune", f"{d.name} ({d.code})"),
            ("Population de la commune", fr_number(d.population)),
            ("QPV retenus", f"{len(d.qpv)} sur {len(d.data.qpv_in(d.code))}"),
            ("Population des QPV retenus", fr_number(qpv_population)),
            ("Part de la population de la commune en QPV", fr_number(d.share["qpv_share"], 1, "%")),
            (f"Services de médiation dans les QPV et leur bande de {band_m:.0f} m", str(served)),
            ("Besoins non couverts forts", str(int(levels.get("fort", 0)))),
            ("Besoins non couverts moyens", str(int(levels.get("moyen", 0)))),
            ("Préconisations", str(len(d.recommendations))),
        ]
        table = html_table(pd.DataFrame(rows, columns=["Chiffre clé", "Valeur"]), caption="Chiffres clés")
        return table.data + sections.coverage_table(d).data

    def _message(self, text: str, error: bool = False) -> None:
        self.status.value = f'<p class="{"erreur" if error else "note"}">{html.escape(text)}</p>'

    def _error(self, exc: Exception) -> None:
        self._message(str(exc), error=True)

    # Actions -----------------------------------------------------------------

    def export(self, output: str | Path | None = None) -> RunResult | None:
        """Run ``diagnostic run`` for the current parameters into ``output`` (the output field by default).

        Changed weights are first copied to ``<output>/besoins_<code>.yaml``,
        beside the report, so that ``parametres.json`` points to a lasting file.
        """
        if self.diagnostic is None:
            return None
        output = Path(output or self.output.value).expanduser().resolve()
        code = self.diagnostic.code
        opts = self.options()
        if opts["needs_rules"]:
            output.mkdir(parents=True, exist_ok=True)
            opts["needs_rules"] = str(shutil.copyfile(opts["needs_rules"], output / f"besoins_{code}.yaml"))
        self.export_status.value = "<p>Export en cours…</p>"
        try:
            result = run_commune(self.data, code, output, **opts)
        except DiagnosticError as exc:
            self.export_status.value = f'<p class="erreur">{html.escape(str(exc))}</p>'
            return None
        self.export_status.value = (
            f"<p>Rapport exporté en {fr_number(result.seconds, 1)} s : "
            f"<code>{html.escape(str(result.folder / 'rapport.html'))}</code> ; paramètres dans "
            f"<code>parametres.json</code> à côté du rapport.</p>")
        return result

    def locate(self, text: str | None = None) -> dict[str, Any] | None:
        """Locate a point typed as « lat, lon » or a place name, and show its QPV and nearest services."""
        text = self.place.value if text is None else text
        if self.data is None or not text.strip():
            return None
        try:
            found = locate_text(self.data, text, band_m=self.band.value)
        except DiagnosticError as exc:
            self.location.value = f'<p class="erreur">{html.escape(str(exc))}</p>'
            return None
        self.location.value = location_html(found)
        return found


def location_html(found: dict[str, Any]) -> str:
    """A located point in French: the place, its commune, its QPVs, and a table of the nearest services."""
    lines = []
    if found.get("place"):
        p = found["place"]
        more = f" ({found['other_matches']} autre(s) lieu(x) correspondant(s))" if found.get("other_matches") else ""
        lines.append(f"Lieu trouvé : {p['name']} ({p['kind']}, {p['id']}){more}.")
    commune = found["commune"]
    lines.append(f"Commune : {commune['name']} ({commune['code']})." if commune else "Hors des communes du catalogue.")
    inside = [q for q in found["qpv"] if q["position"] == "inside"]
    band = [q for q in found["qpv"] if q["position"] == "band"]
    if inside:
        lines.append("Dans le QPV " + ", ".join(f"{q['name']} ({q['code']})" for q in inside) + ".")
    if band:
        lines.append(f"Dans la bande de {found['band_m']:.0f} m du QPV "
                     + ", ".join(f"{q['name']} ({q['code']}) à {fr_number(q['distance_m'])} m" for q in band) + ".")
    if not found["qpv"]:
        near = found["nearest_qpv"]
        lines.append("Hors des QPV et de leur bande" + (
            f" ; QPV le plus proche : {near['name']} ({near['code']}) à {fr_number(near['distance_m'])} m."
            if near else "."))
    text = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    services = pd.DataFrame(found["services"])
    if services.empty:
        return text + "<p>Aucun service géolocalisé dans les données.</p>"
    table = pd.DataFrame({"Domaine": services["domain_label"], "Service": services["name"], "Type": services["type"],
                          "Adresse": services["address"], "Distance (m)": services["distance_m"]})
    return text + html_table(table, caption="Services les plus proches par domaine", numbers={"Distance (m)": 0}).data
