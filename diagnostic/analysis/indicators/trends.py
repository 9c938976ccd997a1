"""Change of each indicator between the first and the last vintage a catalogue holds, per territory.

The history is the long table of every vintage (``code_qp``, ``indicator``,
``vintage``, ``value``). A change is taken between the first and the last
vintage that have a value; small areas move with sampling and method, so the
report states INSEE's caution beside every change.
"""

from __future__ import annotations

import pandas as pd

from diagnostic import text

#: INSEE's caution on changes over small areas, shown wherever a change is.
CAUTION = ("Les évolutions sur de petits territoires sont à lire avec prudence (INSEE) : les chiffres des QPV "
           "viennent d'estimations (recensement par sondage, revenus localisés) dont la précision est limitée, et "
           "les méthodes, les sources ou les contours ont pu changer d'un millésime à l'autre ; un petit écart n'est "
           "pas significatif.")
COLUMNS = ["code", "indicator", "first_vintage", "first_value", "last_vintage", "last_value", "change"]


def evolutions(history: pd.DataFrame | None, codes: list[str]) -> pd.DataFrame:
    """One row per (territory, indicator) with at least two vintages holding a value."""
    if history is None or history.empty:
        return pd.DataFrame(columns=COLUMNS)
    h = history[history["code_qp"].isin(codes) & history["value"].notna()].sort_values("vintage")
    if h.empty:
        return pd.DataFrame(columns=COLUMNS)
    g = h.groupby(["code_qp", "indicator"], sort=False)
    out = pd.DataFrame({
        "first_vintage": g["vintage"].first(), "first_value": g["value"].first(),
        "last_vintage": g["vintage"].last(), "last_value": g["value"].last(),
    }).reset_index().rename(columns={"code_qp": "code"})
    out = out[out["first_vintage"] != out["last_vintage"]]
    out["change"] = out["last_value"] - out["first_value"]
    order = {c: i for i, c in enumerate(codes)}
    return out.sort_values(["code", "indicator"], key=lambda s: s.map(order) if s.name == "code" else s)[COLUMNS] \
        .reset_index(drop=True)


def phrase(row: pd.Series, unit: str, digits: int) -> str:
    """« 46,8 % en 2017 → 52,1 % en 2022 »."""
    unit = "%" if unit == "%" else ""
    return (f"{text.number(row['first_value'], digits, unit)} en {row['first_vintage']} → "
            f"{text.number(row['last_value'], digits, unit)} en {row['last_vintage']}")
