"""Colours, classes and French labels shared by the interactive and static maps.

One place decides how a value is coloured, so the folium map, its PNG twin and
their legends always agree.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from markupsafe import escape

from diagnostic import text
from diagnostic.io.reference import DOMAINS

#: A fixed colour per mediation domain (Dark2 and Paired tones, readable on the purple ramp).
DOMAIN_COLOURS: dict[str, str] = {
    "acces_droits": "#1b9e77",
    "sante": "#d95f02",
    "education": "#7570b3",
    "transports": "#e7298a",
    "habitat": "#66a61e",
    "espace_public": "#e6ab02",
    "emploi": "#a6761d",
    "jeunesse": "#1f78b4",
}
#: Services whose domain is unknown.
OTHER_DOMAIN = ("autre", "Autres services", "#7f7f7f")

#: Sequential ramp of the choropleth, light (low) to dark (high).
RAMP = ("#bfd3e6", "#9ebcda", "#8c96c6", "#8856a7", "#810f7c")
MISSING_LABEL = "Secret ou non disponible"
MISSING_FILL = "#d9d9d9"
MISSING_HATCH = "#8c8c8c"
NEUTRAL_FILL = "#8c96c6"
QPV_OUTLINE = "#54278f"
NEED_OUTLINE = "#b2182b"
NEED_LABEL = "Besoin fort non couvert"
BAND_FILL = "#fee391"
BAND_OUTLINE = "#cc8a06"
COMMUNE_OUTLINE = "#252525"
CONTEXT_FILL = "#eeeeee"
CONTEXT_OUTLINE = "#b0b0b0"
ACTOR_COLOUR = "#252525"
STRONG_LEVELS = frozenset({"fort"})
SCHEMES = ("natural_breaks", "quantiles")


def domain_style(key: object, label: object = None) -> tuple[str, str, str]:
    """(key, French label, colour) of a domain; unknown or missing keys fall into « autres »."""
    if isinstance(key, str) and key in DOMAINS:
        return key, str(label) if isinstance(label, str) and label else DOMAINS[key], DOMAIN_COLOURS[key]
    return OTHER_DOMAIN


def missing(value: object) -> bool:
    """Whether a text from data is missing (None, NaN, pandas' NA): the map shows nothing for it."""
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def blank(value: object) -> object:
    """A value from data as a map shows it: itself, or an empty string when missing (never « nan »)."""
    return "" if missing(value) else value


def esc(value: object) -> str:
    """A text from data HTML-escaped as the templates' autoescape does it; missing values give an empty string."""
    return str(escape(blank(value)))


@dataclass(frozen=True)
class Classes:
    """Classes of an indicator: upper bounds, colours and French legend labels."""

    bins: tuple[float, ...]
    colours: tuple[str, ...]
    labels: tuple[str, ...]
    decimals: int

    def colour(self, value: float) -> str | None:
        """Colour of ``value``; ``None`` when it is missing (secret or not available)."""
        if value is None or pd.isna(value) or not self.bins:
            return None
        i = int(np.searchsorted(np.asarray(self.bins), value, side="left"))
        return self.colours[min(i, len(self.colours) - 1)]

    def format(self, value: float) -> str:
        """A value as the legend writes it, or the French « secret » wording when missing."""
        return MISSING_LABEL.lower() if value is None or pd.isna(value) else text.number(value, self.decimals)


def classify(values: pd.Series, *, k: int = 5, scheme: str = "natural_breaks") -> Classes:
    """Classes from mapclassify (Fisher-Jenks natural breaks or quantiles).

    Up to ``k`` distinct values give one class per value; missing values are
    left out (they are drawn hatched as « secret ou non disponible »).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, not {scheme!r}")
    valid = pd.to_numeric(values, errors="coerce").dropna().astype(float)
    distinct = np.unique(valid.to_numpy())
    if distinct.size == 0:
        return Classes((), (), (), 0)
    decimals = 0 if np.allclose(distinct, np.round(distinct)) else 1
    n = min(k, len(RAMP), distinct.size)
    if n == distinct.size:
        bins = tuple(float(v) for v in distinct)
    else:
        import mapclassify  # with scipy and scikit-learn: 2 s to import, for the maps only

        method = mapclassify.FisherJenks if scheme == "natural_breaks" else mapclassify.Quantiles
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # no numba; fewer classes than asked
            bins = tuple(float(b) for b in np.unique(method(valid.to_numpy(), k=n).bins))
    # Each class is labelled by the smallest and largest values it holds; empty classes are dropped.
    index = np.searchsorted(np.asarray(bins), distinct, side="left")
    members = [distinct[index == i] for i in range(len(bins))]
    bins = tuple(b for b, held in zip(bins, members) if held.size)
    labels = tuple(
        text.number(held[0], decimals) if held[0] == held[-1]
        else f"{text.number(held[0], decimals)} – {text.number(held[-1], decimals)}"
        for held in members if held.size
    )
    picks = np.linspace(0, len(RAMP) - 1, len(bins)).round().astype(int) if len(bins) > 1 else [2]
    return Classes(bins, tuple(RAMP[i] for i in picks), labels, decimals)


def strong_needs(needs: pd.DataFrame | None) -> dict[str, list[str]]:
    """QPV code → French labels of its domains with a strong unmet need, in report order."""
    if needs is None or needs.empty:
        return {}
    strong = needs[needs["level"].astype(str).str.lower().isin(STRONG_LEVELS)]
    order = {key: i for i, key in enumerate(DOMAINS)}
    strong = strong.assign(_order=strong["domain"].map(order).fillna(len(order))).sort_values("_order")
    return {
        str(code): list(dict.fromkeys(rows["domain_label"].astype(str)))
        for code, rows in strong.groupby("code_qp", sort=False)
    }
