"""The explorer: ipywidgets over the diagnostic's own functions, for JupyterLab.

``diagnostic/resources/notebooks/explorateur.ipynb`` only assembles an :class:`Explorer`. Each change
of a control rebuilds the commune's diagnostic with
:func:`diagnostic.analysis.commune.build` on data loaded once per catalogue and on
indicator tables kept in memory per parameters, then redraws the map, the key
figures, the unmet needs and the recommendations. Changed need weights are
written to a rules YAML (``diagnostic/resources/rules/besoins.yaml`` with the new weights);
« Exporter le rapport » runs :func:`diagnostic.pipeline.run.run_commune` with exactly
the current parameters, so the report equals what ``diagnostic run`` gives.

Every action (loading a catalogue, an update, locating a place, an export)
shows its failure in French in the widget, in place of the result it would
have replaced, with what to do: nothing stale stays on screen. Outputs are
kept per settings, so coming back to settings already seen redraws at once.
"""

from __future__ import annotations

import copy
import errno
import hashlib
import logging
import re
import shlex
import shutil
import tempfile
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd
import yaml
from markupsafe import Markup

from diagnostic import text
from diagnostic._fs import write_atomic
from diagnostic.analysis.commune import CommuneDiagnostic, build
from diagnostic.analysis.indicators.cache import Indicators, compute
from diagnostic.analysis.indicators.needs import RULES_FILE, indicator_labels
from diagnostic.analysis.locate import locate_text
from diagnostic.errors import DiagnosticError, ParameterError
from diagnostic.io.catalog import PROJECT_ROOT, read_yaml
from diagnostic.io.reference import DOMAINS
from diagnostic.io.territory import TerritoryData, load_territory
from diagnostic.options import BAND_M, INDICATOR
from diagnostic.pipeline.run import RunResult, run_commune
from diagnostic.report import fragments, maps, sections
from diagnostic.report.export import html_table
from diagnostic.text import fold

DEMO_CATALOG = PROJECT_ROOT / "data" / "demo" / "catalogue.yaml"
#: The demo and shipped catalogues of the checkout; none when the package is installed without it.
CATALOGS = [p for p in [DEMO_CATALOG, *sorted((PROJECT_ROOT / "data" / "catalogues").glob("*.yaml"))] if p.is_file()]
#: Reports exported from the explorer go to the officer's folder, never into the project's checkout.
DEFAULT_OUTPUT = Path("~/diagnostics")
MAX_COMMUNES = 300
WEIGHT_MAX = 5.0
#: How many settings keep their outputs in memory (the least recently shown are dropped first).
CACHED_SETTINGS = 64
#: What to do after an unexpected failure (the explorer adds the command line giving the full trace).
_UNEXPECTED_HINT = ("vérifiez les paramètres et réessayez ; si l'erreur persiste, transmettez ce message à "
                    "l'équipe du projet.")
_log = logging.getLogger(__name__)
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
    text = ("# Règles des besoins modifiées dans l'explorateur, à partir de diagnostic/resources/rules/besoins.yaml.\n"
            + yaml.safe_dump(rules, allow_unicode=True, sort_keys=False))
    path = Path(folder) / f"besoins-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
    if not path.exists():
        write_atomic(path, text)
    return path


def catalog_label(path: Path) -> str:
    """A catalogue as the officer knows it: its ``name:``, or its file name when the file cannot be read."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        name = raw.get("name") if isinstance(raw, dict) else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        name = None
    return str(name) if name else Path(path).name


def _words(text: str) -> str:
    """A name folded for searching: « Saint-Aubin-lès-Prés » and « saint aubin les pres » match."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", fold(text)).split())


def _number(value: float) -> float | int:
    value = round(float(value), 2)
    return int(value) if value.is_integer() else value


def _with_readout(slider: w.FloatSlider | w.IntSlider, digits: int, unit: str = "") -> w.HBox:
    """The slider with its value written the French way (« 0,30 », « 1 000 m ») beside it.

    The widget's own readout follows the browser's number format (« 0.30 »), so it is hidden.
    """
    readout = w.Label(text.number(slider.value, digits, unit))
    slider.observe(lambda change: setattr(readout, "value", text.number(change["new"], digits, unit)), "value")
    return w.HBox([slider, readout])


def _fit(width: str = "440px") -> w.Layout:
    """A control as wide as ``width`` when there is room, narrower (never cut) when its column is.

    No side margin: with ipywidgets' 2 px a full-width control would stick out and scroll its column.
    """
    return w.Layout(width="100%", max_width=width, min_width="0", margin="2px 0")


def _row(*children: w.Widget) -> w.HBox:
    """A field and its button side by side, the button under the field when the tab is narrow."""
    return w.HBox(list(children), layout=w.Layout(flex_flow="row wrap", width="100%"))


def _slider(value: float, maximum: float, step: float, description: str) -> w.FloatSlider:
    return w.FloatSlider(value=value, min=0.0, max=maximum, step=step, description=description,
                         continuous_update=False, readout=False,
                         style={"description_width": "300px"}, layout=_fit("520px"))


#: What to do after a file-system error, in general and when writing an export.
PATH_HINT = "vérifiez que le chemin existe et que vous avez le droit de le lire ou d'y écrire."
OUTPUT_HINT = "choisissez un dossier où vous pouvez écrire (il est créé s'il n'existe pas)."


def failure_message(exc: BaseException, action: str, path_hint: str = PATH_HINT,
                    unexpected_hint: str = _UNEXPECTED_HINT) -> str:
    """What went wrong during ``action`` (« l'export », …), in French, with what to do.

    The workbench's own errors already say it; a file-system error names the path and its cause,
    followed by ``path_hint``; anything else is reported as unexpected, with its technical text
    and ``unexpected_hint``, and logged with its trace.
    """
    if isinstance(exc, DiagnosticError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f" « {exc.filename} »" if exc.filename else ""
        causes = {errno.ENOTDIR: f"un élément du chemin{where} est un fichier, pas un dossier",
                  errno.EEXIST: f"le chemin{where} existe déjà et n'est pas un dossier",
                  errno.EACCES: f"accès refusé à{where or ' ce chemin'}",
                  errno.EPERM: f"accès refusé à{where or ' ce chemin'}",
                  errno.ENOENT: f"chemin introuvable{where}",
                  errno.ENOSPC: "plus de place sur le disque",
                  errno.EROFS: f"le disque de{where or ' ce chemin'} est en lecture seule"}
        cause = causes.get(exc.errno, f"erreur du système de fichiers{where} ({exc.strerror or exc})")
        return f"Erreur : {action} a échoué : {cause}.\n  Que faire : {path_hint}"
    _log.error("échec de %s", action, exc_info=exc)
    return (f"Erreur inattendue : {action} a échoué ({type(exc).__name__} : {exc}).\n"
            f"  Que faire : {unexpected_hint}")


def error_html(message: str) -> str:
    return fragments.render("paragraph.html.j2", css_class="erreur", text=message)


def note_html(message: str) -> str:
    return fragments.render("paragraph.html.j2", css_class="note", text=message)


@dataclass
class Shown:
    """What one set of settings puts on screen, kept so that coming back to it redraws at once.

    The map depends on the map indicator as well: one per indicator, drawn when first shown.
    """

    diagnostic: CommuneDiagnostic
    figures: str
    needs: str
    recommendations: str
    maps: dict[str, str] = field(default_factory=dict)

    def map(self, indicator: str | None) -> str:
        """The map coloured by ``indicator``, drawn once."""
        key = indicator or ""
        if key not in self.maps:
            self.maps[key] = Explorer.map_html(self.diagnostic, indicator)
        return self.maps[key]


class Explorer:
    """Controls and outputs of the explorer, with one method per action so tests can drive them.

    Setting a control's value (``explorer.band.value = 0``) updates the
    outputs, as a click in JupyterLab does; :attr:`diagnostic` is the
    diagnostic currently shown (None while an error is shown instead) and
    :meth:`options` its parameters.
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
        # The shipped file as written (the ratio is added when rules are read, from the recommendation rules).
        self.base_rules = read_yaml(RULES_FILE, "règles des besoins")
        self._loaded: dict[str, TerritoryData] = {}
        self._indicators: dict[tuple, Indicators] = {}
        self._shown: OrderedDict[tuple, Shown] = OrderedDict()
        self._rules_dir = Path(tempfile.mkdtemp(prefix="diagnostic-explorateur-"))
        weakref.finalize(self, shutil.rmtree, self._rules_dir, True)
        self._quiet = 0
        self._make_widgets(output)
        if isinstance(catalog, TerritoryData):
            path = str(catalog.catalog.path)
            self._loaded[path] = catalog
        else:
            path = str(Path(catalog or DEMO_CATALOG).expanduser().resolve())
        options = [(catalog_label(p), str(p)) for p in CATALOGS]
        if path not in [v for _, v in options]:
            options.append((catalog_label(Path(path)), path))
        with self._hold():
            self.catalog.options = options
            self.catalog.value = path
        self.catalog.observe(self._on_catalog, "value")
        self.search.observe(self._on_search, "value")
        self.commune.observe(self._on_commune, "value")
        self.commune.observe(self._forget_export, "value")
        self.band.observe(self._forget_location, "value")
        for control in [self.qpv, self.band, self.indicator, self.expressed_weight,
                        *self.domains.values(), *self.weights.values()]:
            control.observe(self._on_change, "value")
        self.export_button.on_click(lambda _: self.export())
        self.locate_button.on_click(lambda _: self.locate())
        self.select_catalog(path, commune)

    # Widgets -----------------------------------------------------------------

    def _make_widgets(self, output: str | Path) -> None:
        wide = {"description_width": "initial"}
        self.catalog = w.Dropdown(description="Catalogue", style=wide, layout=_fit())
        self.search = w.Text(description="Rechercher", placeholder="nom ou code INSEE de la commune", style=wide,
                             layout=_fit())
        self.commune = w.Select(description="Commune", rows=6, style=wide, layout=_fit())
        self.qpv = w.SelectMultiple(description="QPV", rows=4, style=wide, layout=_fit())
        self.band = w.IntSlider(value=int(BAND_M), min=0, max=1000, step=50, description="Bande",
                                continuous_update=False, readout=False, style=wide, layout=_fit("300px"))
        self.indicator = w.Dropdown(description="Indicateur de la carte", style=wide, layout=_fit())
        self.domains = {key: w.Checkbox(value=True, description=label, indent=False,
                                          layout=w.Layout(width="auto", min_width="0"))
                        for key, label in DOMAINS.items()}
        self.expressed_weight = _slider(float(self.base_rules["expressed"]["min_observations"]), 100.0, 1.0,
                                        "Observations pour relever un niveau")
        self.weights: dict[tuple[str, str], w.FloatSlider] = {}
        panels = []
        labels = indicator_labels(self.base_rules)
        for domain, spec in self.base_rules["domains"].items():
            rows = []
            for indicator, ind in (spec.get("indicators") or {}).items():
                slider = _slider(float(ind.get("weight", 1)), WEIGHT_MAX, 0.5, labels.get(indicator, indicator))
                slider.tooltip = labels.get(indicator, indicator)  # a long label is cut beside the slider
                self.weights[(domain, indicator)] = slider
                rows.append(_with_readout(slider, 2))
            panels.append(w.VBox(rows))
        self.rules_panel = w.Accordion(children=panels, titles=[DOMAINS[d] for d in self.base_rules["domains"]])
        self.status = w.HTML()
        self.map = w.HTML(layout=w.Layout(width="100%", margin="2px 0"))
        self.figures = w.HTML()
        self.needs = w.HTML()
        self.recommendations = w.HTML()
        self.output = w.Text(value=str(output), description="Dossier de sortie", style=wide, layout=_fit("520px"))
        self.export_button = w.Button(description="Exporter le rapport", button_style="primary", icon="file-export",
                                      layout=w.Layout(width="200px"))
        self.export_status = w.HTML()
        self.place = w.Text(description="Lieu", placeholder="43.6045, 1.4440 — ou nom d'un service, d'un partenaire",
                            style=wide, layout=_fit("520px"))
        self.locate_button = w.Button(description="Localiser", icon="map-marker")
        self.location = w.HTML()
        # Two columns side by side when there is room, one under the other when not (JupyterLab's file
        # browser open on a laptop screen): nothing is cut and no column scrolls sideways.
        column = {"flex": "1 1 360px", "min_width": "0", "max_width": "640px", "overflow": "hidden"}
        controls = w.HBox([
            w.VBox([self.catalog, self.search, self.commune, self.qpv], layout=w.Layout(**column)),
            w.VBox([_with_readout(self.band, 0, "m"), self.indicator, w.HTML("<b>Domaines de médiation</b>"),
                    w.GridBox(list(self.domains.values()),
                              layout=w.Layout(grid_template_columns="repeat(auto-fill, minmax(200px, 1fr))",
                                              width="100%"))], layout=w.Layout(**column)),
        ], layout=w.Layout(flex_flow="row wrap", width="100%"))
        rules = w.Accordion(children=[w.VBox([_with_readout(self.expressed_weight, 0),
                                              w.HTML("Poids des indicateurs, par domaine :"), self.rules_panel])],
                            titles=["Poids des règles des besoins"])
        tabs = w.Tab(children=[self.figures, self.needs, self.recommendations,
                               w.VBox([_row(self.place, self.locate_button), self.location]),
                               w.VBox([_row(self.output, self.export_button), self.export_status])],
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

    def _forget_export(self, change: dict) -> None:
        """Another commune: the last export's message was about the previous one."""
        self.export_status.value = ""

    def _forget_location(self, change: dict) -> None:
        """Another band: a located place's QPVs « in the band » were computed with the previous one."""
        self.location.value = ""

    def _on_change(self, change: dict) -> None:
        if not self._quiet:
            self.update()

    def select_catalog(self, catalog: str | Path, commune: str | None = None) -> None:
        """Load a catalogue (once per session) and show its commune with the most QPVs, or ``commune``.

        The answers about the previous catalogue (a located place, an export) are cleared first.
        """
        key = str(catalog)
        self.location.value = self.export_status.value = ""
        try:
            if key not in self._loaded:
                self._message(f"Chargement du catalogue « {catalog_label(Path(key))} »…")
                self._loaded[key] = load_territory(key, self.data_dir)
            data = self._loaded[key]
            table = data.qpv_indicators
            labels = table.definitions["libelle"].to_dict() if table is not None else {}
            choices = [(str(label), k) for k, label in labels.items() if k != "commune_population"]
            ranked = data.communes.sort_values(["qpv_count", "population"], ascending=False)
            if ranked.empty:
                raise ParameterError("le catalogue ne contient aucune commune.", path=data.catalog.path,
                                     hint="vérifiez la source « communes » du catalogue (« diagnostic data check »).")
        except Exception as exc:  # noqa: BLE001 - every failure is shown to the officer, never only logged
            self.data = None
            with self._hold():
                self.commune.options, self.qpv.options = [], []
            self._fail(failure_message(exc, "le chargement du catalogue") + "\n  Ou choisissez un autre catalogue.")
            return
        self.data = data
        with self._hold():
            if self.catalog.value != key:
                self.catalog.value = key
            self.indicator.options = choices or [("Aucun indicateur par QPV", "")]
            if INDICATOR in labels:
                self.indicator.value = INDICATOR
            self.search.value = ""
            self.commune.options = self._commune_choices(ranked)
        self.select_commune(str(commune) if commune else ranked["insee_com"].iloc[0])

    def _commune_choices(self, communes: pd.DataFrame) -> list[tuple[str, str]]:
        return [(f"{r.lib_com} ({r.insee_com}) — {text.count(r.qpv_count, 'QPV', 'QPV')}", r.insee_com)
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
            self._message(f"Aucune commune ne correspond à « {query.strip()} » : les résultats affichés restent "
                          "ceux de la commune précédente. Effacez ou modifiez la recherche.", error=True)
        elif self.commune.value != current:
            self.select_commune(self.commune.value)

    def select_commune(self, code: str) -> None:
        """Show commune ``code`` with all its QPVs selected."""
        try:
            self.data.commune(code)
            qpv = self.data.qpv_in(code)
        except Exception as exc:  # noqa: BLE001 - shown in the widget
            self._fail(failure_message(exc, "le choix de la commune"))
            return
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
        rules["expressed"]["min_observations"] = _number(self.expressed_weight.value)
        for (domain, indicator), slider in self.weights.items():
            rules["domains"][domain]["indicators"][indicator]["weight"] = _number(slider.value)
        return rules

    def needs_rules(self) -> Path | None:
        """The rules file for the current weights (None while they are those of diagnostic/resources/rules/besoins.yaml)."""
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
        """The current parameters, as :func:`diagnostic.pipeline.run.run_commune` takes them."""
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

    def _indicator_tables(self, band_m: float, rules: str | None) -> Indicators:
        key = (str(self.data.catalog.path), band_m, rules)
        if key not in self._indicators:
            self._indicators[key] = compute(self.data, band_m=band_m, rules_path=rules)
        return self._indicators[key]

    # Outputs -----------------------------------------------------------------

    def _outputs(self, code: str, opts: dict[str, Any]) -> Shown:
        """The outputs for these settings: from memory when they were already shown, else built.

        The map indicator is not part of the key: changing it alone redraws the map only.
        """
        key = (str(self.data.catalog.path), code,
               *(tuple(v) if isinstance(v, list) else v for k, v in opts.items() if k != "indicator"))
        if key in self._shown:
            self._shown.move_to_end(key)
            return self._shown[key]
        indicators = self._indicator_tables(opts["band_m"], opts["needs_rules"])
        d = build(self.data, code, band_m=opts["band_m"], domains=opts["domains"],
                  needs_rules=opts["needs_rules"], indicators=indicators, qpv_codes=opts["qpv_codes"])
        shown = Shown(d, self.figures_html(d), sections.needs_table(d).data, sections.recommendations(d).data)
        self._shown[key] = shown
        while len(self._shown) > CACHED_SETTINGS:
            self._shown.popitem(last=False)
        return shown

    def update(self) -> CommuneDiagnostic | None:
        """Rebuild the diagnostic for the current controls and redraw every output (an error in their place)."""
        if self.data is None or not self.commune.value:
            return None
        if not self.selected_domains():
            self._fail("Aucun domaine de médiation coché : cochez au moins un domaine pour voir le diagnostic.")
            return None
        start = time.perf_counter()
        try:
            opts = self.options()
            shown = self._outputs(self.commune.value, opts)
            drawn = shown.map(opts["indicator"])
        except Exception as exc:  # noqa: BLE001 - shown in the widget
            self._fail(failure_message(exc, "la mise à jour du diagnostic", unexpected_hint=self._debug_hint()))
            return None
        d = self.diagnostic = shown.diagnostic
        self.map.value, self.figures.value = drawn, shown.figures
        self.needs.value, self.recommendations.value = shown.needs, shown.recommendations
        self.last_update_s = time.perf_counter() - start
        bare = d.has_qpv and d.qpv.geometry.isna().all()
        self.band.disabled = bool(bare)  # without outlines there is no band to draw or count in
        if bare:
            note = (" Contours des QPV absents des données : la carte ne montre pas les quartiers, la bande autour "
                    "d'eux ne s'applique pas et les services d'un quartier sont ceux de ses communes.")
        elif not d.data.qpv_in(d.code).empty:
            note = "" if self.qpv.value else " Aucun QPV coché : tous les QPV de la commune sont retenus."
        else:
            note = " Commune sans QPV : le diagnostic porte sur la commune entière."
        rules = " Poids modifiés : règles écrites dans un fichier temporaire." if opts["needs_rules"] else ""
        self._message(f"{d.name} ({d.code}) — mis à jour en {text.number(self.last_update_s, 2)} s.{note}{rules}")
        return d

    def _debug_hint(self) -> str:
        """What to do after an unexpected failure: the command line that runs these settings with the full trace."""
        args = ["diagnostic", "--debug", "run", "--catalog", str(self.data.catalog.path)]
        if self.data_dir:
            args += ["--data-dir", str(self.data_dir)]
        args += ["--commune", str(self.commune.value), "--output", "DOSSIER", "--band-m", str(self.band.value)]
        domains = self.selected_domains()
        if len(domains) < len(DOMAINS):
            args += ["--domains", ",".join(domains)]
        if self.qpv.value and len(self.qpv.value) < len(self.qpv.options):
            args += ["--qpv", ",".join(sorted(self.qpv.value))]
        rules = self.needs_rules()
        if rules:
            args += ["--needs-rules", str(rules)]
        return (f"vérifiez les paramètres et réessayez ; si l'erreur persiste, lancez dans un terminal "
                f"« {shlex.join(args)} » et transmettez le message à l'équipe du projet.")

    @staticmethod
    def map_html(d: CommuneDiagnostic, indicator: str | None) -> str:
        """The map as a self-contained page in a sandboxed iframe (scripts of an HTML widget do not run).

        The page fits the commune again once its frame has a size: JupyterLab may lay the
        frame out only after the page ran, and Leaflet fitted to an empty frame shows all France.
        """
        m = sections.interactive_map(d, indicator or None)
        west, south, east, north = d.commune_shape.to_crs("EPSG:4326").total_bounds
        refit = (
            "<script>(function(){var map=" + m.get_name() + f",bounds=[[{south},{west}],[{north},{east}]],done=false;"
            "function fit(){var box=map.getContainer().getBoundingClientRect();"
            "if(done||box.width<2||box.height<2)return;done=true;map.invalidateSize(false);map.fitBounds(bounds);}"
            "if(window.ResizeObserver)new ResizeObserver(fit).observe(map.getContainer());"
            "window.addEventListener('resize',fit);fit();})();</script>"
        )
        page, end, rest = maps.map_html(m).rpartition("</html>")  # folium's own script follows </body>
        page = f"{page}{refit}{end}{rest}" if end else rest + refit
        return fragments.render("explorer/map_frame.html.j2", page=page, name=d.name, bare=sections.no_outlines(d))

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
            ("Population de la commune", text.number(d.population)),
            ("QPV retenus", f"{text.number(len(d.qpv))} sur {text.number(len(d.data.qpv_in(d.code)))}"),
            ("Population des QPV retenus", text.number(qpv_population)),
            ("Part de la population de la commune en QPV", text.percent(d.share["qpv_share"])),
            (f"Services de médiation dans les QPV et leur bande de {text.number(band_m, unit='m')}",
             text.number(served)),
            ("Besoins non couverts forts", text.number(levels.get("fort", 0))),
            ("Besoins non couverts moyens", text.number(levels.get("moyen", 0))),
            ("Préconisations", text.number(len(d.recommendations))),
        ]
        table = html_table(pd.DataFrame(rows, columns=["Chiffre clé", "Valeur"]), caption="Chiffres clés")
        return table.data + sections.coverage_table(d).data

    def _message(self, message: str, error: bool = False) -> None:
        self.status.value = error_html(message) if error else note_html(message)

    def _fail(self, message: str) -> None:
        """Show ``message`` as the error of the moment, with no result left from other settings."""
        self.diagnostic = None
        self.map.value = self.figures.value = self.needs.value = self.recommendations.value = ""
        self._message(message, error=True)

    # Actions -----------------------------------------------------------------

    def export(self, output: str | Path | None = None) -> RunResult | None:
        """Run ``diagnostic run`` for the current parameters into ``output`` (the output field by default).

        Changed weights are first copied to ``<output>/besoins_<code>.yaml``,
        beside the report, so that ``parametres.json`` points to a lasting file.
        Any failure replaces « Export en cours… » with its French message.
        """
        if self.diagnostic is None:
            self.export_status.value = error_html(
                "Rien à exporter : aucun diagnostic n'est affiché.\n"
                "  Que faire : corrigez d'abord l'erreur affichée au-dessus de la carte, puis exportez.")
            return None
        folder = str(output or self.output.value).strip()
        if not folder:  # Path("") is the kernel's working folder (the package itself under « make lab »)
            self.export_status.value = error_html(
                "Aucun dossier de sortie : le champ « Dossier de sortie » est vide.\n"
                f"  Que faire : saisissez le dossier où écrire le rapport (par exemple {DEFAULT_OUTPUT}).")
            return None
        self.export_status.value = note_html("Export en cours…")
        self.export_button.disabled = True
        try:
            output = Path(folder).expanduser().resolve()
            code = self.diagnostic.code
            opts = self.options()
            output.mkdir(parents=True, exist_ok=True)  # a file here: the explorer's wording, not the command line's « --output »
            if opts["needs_rules"]:
                opts["needs_rules"] = str(shutil.copyfile(opts["needs_rules"], output / f"besoins_{code}.yaml"))
            result = run_commune(self.data, code, output, **opts)
        except Exception as exc:  # noqa: BLE001 - shown in the widget
            self.export_status.value = error_html(failure_message(exc, "l'export du rapport", OUTPUT_HINT))
            return None
        finally:
            self.export_button.disabled = False
        self.export_status.value = fragments.render("explorer/exported.html.j2", seconds=text.number(result.seconds, 1),
                                                    report=str(result.folder / "rapport.html"))
        return result

    def locate(self, place: str | None = None) -> dict[str, Any] | None:
        """Locate a point typed as « lat, lon » or a place name, and show its QPV and nearest services."""
        place = self.place.value if place is None else place
        if self.data is None:
            self.location.value = error_html("Aucun catalogue chargé : choisissez d'abord un catalogue.")
            return None
        if not place.strip():
            self.location.value = error_html(
                "Saisissez un lieu : « latitude, longitude » (ex. 43.6045, 1.4440), ou le nom d'un service "
                "ou d'un partenaire.")
            return None
        self.location.value = note_html("Localisation en cours…")
        try:
            found = locate_text(self.data, place, band_m=self.band.value)
            self.location.value = location_html(found)
        except Exception as exc:  # noqa: BLE001 - shown in the widget
            self.location.value = error_html(failure_message(exc, "la localisation"))
            return None
        return found


def location_html(found: dict[str, Any]) -> str:
    """A located point in French: the place, its commune, its QPVs, and a table of the nearest services."""
    lines = []
    if found.get("place"):
        p = found["place"]
        others = found.get("other_matches", 0)
        more = f" ({text.count(others, 'autre lieu correspondant', 'autres lieux correspondants')})" if others else ""
        lines.append(f"Lieu trouvé : {p['name']} ({p['kind']}, {p['id']}){more}.")
    commune = found["commune"]
    lines.append(f"Commune : {commune['name']} ({commune['code']})." if commune else "Hors des communes du catalogue.")
    inside = [q for q in found["qpv"] if q["position"] == "inside"]
    band = [q for q in found["qpv"] if q["position"] == "band"]
    if inside:
        lines.append("Dans le QPV " + ", ".join(f"{q['name']} ({q['code']})" for q in inside) + ".")
    if band:
        lines.append(f"Dans la bande de {text.number(found['band_m'])} m du QPV "
                     + ", ".join(f"{q['name']} ({q['code']}) à {text.number(q['distance_m'], unit='m')}"
                                 for q in band) + ".")
    if found.get("note"):
        lines.append(found["note"])
    elif not found["qpv"]:
        near = found["nearest_qpv"]
        lines.append("Hors des QPV et de leur bande" + (
            f" ; QPV le plus proche : {near['name']} ({near['code']}) à {text.number(near['distance_m'], unit='m')}."
            if near else "."))
    services = pd.DataFrame(found["services"])
    table = None if services.empty else Markup(html_table(
        pd.DataFrame({"Domaine": services["domain_label"], "Service": services["name"], "Type": services["type"],
                      "Adresse": services["address"], "Distance (m)": services["distance_m"]}),
        caption="Services les plus proches par domaine", numbers={"Distance (m)": 0}).data)
    return fragments.render("explorer/location.html.j2", lines=lines, table=table)
