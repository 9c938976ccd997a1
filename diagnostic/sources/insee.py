"""INSEE indicator tables: Filosofi, populations légales, QPV indicators.

Tables are read as published (``;`` or ``,``, decimal comma, ``s`` for
statistical secrecy). The catalogue maps each indicator key of
``data/indicateurs.csv`` to a column; a key outside that table needs a
``label`` and a ``nature`` in the catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from diagnostic.catalog import Source
from diagnostic.errors import CatalogError
from diagnostic.reference import indicator_table
from diagnostic.sources._io import (
    LoadReport,
    check_range,
    check_unique,
    read_table,
    require_columns,
    to_number,
)

#: Bounds of an indicator the catalogue defines itself, by nature (``min``, ``max``; empty: none).
NATURE_BOUNDS = {"taux": ("0", "100"), "effectif": ("0", ""), "mediane": ("0", ""), "indice": ("0", "")}


def bounds(spec: pd.Series | dict) -> tuple[float | None, float | None, str]:
    """``(min, max, hors_bornes)`` of an indicator definition; empty bounds are ``None``."""
    def value(key: str) -> float | None:
        raw = str(spec.get(key, "") or "").strip().replace(",", ".")
        return float(raw) if raw else None
    return value("min"), value("max"), str(spec.get("hors_bornes", "") or "erreur").strip()


@dataclass
class IndicatorTable:
    """Numeric indicators per territory code, with which cells were secret."""

    values: pd.DataFrame
    secret: pd.DataFrame
    definitions: pd.DataFrame
    source: Source
    extra_counts: dict[str, str] = field(default_factory=dict)


def indicator_specs(source: Source) -> pd.DataFrame:
    """Definitions of the indicators this source maps: reference table plus catalogue labels."""
    ref = indicator_table()
    rows = {}
    for key, spec in source.indicators.items():
        spec = {"column": spec} if isinstance(spec, str) else dict(spec)
        if "column" not in spec:
            raise CatalogError(f"l'indicateur « {key} » n'indique pas sa colonne (« column: »).", path=source.path)
        if key in ref.index:
            base = ref.loc[key].to_dict()
        elif "label" in spec and "nature" in spec:
            low, high = NATURE_BOUNDS.get(spec["nature"], ("", ""))
            base = {"libelle": spec["label"], "unite": spec.get("unit", ""), "nature": spec["nature"],
                    "sens": spec.get("direction", "neutre"), "ponderation": spec.get("weight", "population"),
                    "min": str(spec.get("min", low)), "max": str(spec.get("max", high)),
                    "hors_bornes": spec.get("out_of_range", "erreur"), "description": spec.get("description", "")}
        else:
            raise CatalogError(
                f"indicateur « {key} » inconnu de data/indicateurs.csv.",
                path=source.path,
                hint="ajoutez-le à data/indicateurs.csv ou donnez « label: » et « nature: » "
                "(effectif, taux, mediane, indice) dans le catalogue.",
            )
        base.update({"column": spec["column"], "source": source.citation(), "vintage": source.vintage or ""})
        rows[key] = base
    return pd.DataFrame.from_dict(rows, orient="index")


def load_indicator_table(source: Source, code_key: str) -> tuple[IndicatorTable, LoadReport]:
    """Read a per-territory indicator table keyed on ``code_key`` (``insee_com`` or ``code_qp``)."""
    report = LoadReport(source.role, source.path)
    df = read_table(source.path, source.role, source.options.get("sep"), source.options.get("encoding"))
    report.rows_read = len(df)
    code_col = source.columns.get(code_key, code_key)
    specs = indicator_specs(source)
    counts = dict(source.options.get("service_counts") or {})
    require_columns(df, {code_key: code_col, **specs["column"].to_dict(), **{c: c for c in counts}}, source.path, source.label)
    codes = df[code_col].astype(str).str.strip()
    if code_key == "insee_com":
        codes = codes.str.zfill(5)
    check_unique(codes, source.path, code_col)
    values, secret = {}, {}
    for key, column in list(specs["column"].items()) + [(c, c) for c in counts]:
        values[key], secret[key] = to_number(df[column], source.path, column)
        if key in specs.index:
            check_range(values[key], source.path, column, bounds(specs.loc[key]), report)
        else:  # a published count of services
            check_range(values[key], source.path, column, (0.0, None, "erreur"), report)
    values = pd.DataFrame(values).set_axis(codes, axis=0).rename_axis(code_key)
    secret = pd.DataFrame(secret).set_axis(codes, axis=0).rename_axis(code_key)
    n_secret = int(secret[list(specs.index)].to_numpy().sum())
    if n_secret:
        report.warn(f"{n_secret} valeur(s) sous secret statistique conservée(s) comme manquantes.")
    report.rows_kept = len(values)
    return IndicatorTable(values, secret, specs, source, counts), report
