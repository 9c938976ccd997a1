"""INSEE indicator tables: Filosofi, populations légales, QPV indicators.

Tables are read as published (``;`` or ``,``, decimal comma, ``s`` for
statistical secrecy). The catalogue maps each indicator key of
``diagnostic/resources/tables/indicateurs.csv`` to a column; a key outside that table needs a
``label`` and a ``nature`` in the catalogue. INSEE's long (SDMX-like) layout,
one row per territory and measure (``GEO``, ``GEO_OBJECT``, ``FILOSOFI_MEASURE``,
``TIME_PERIOD``, ``OBS_VALUE``, ``CONF_STATUS``), is turned into one column per
measure first, so the catalogue names measures (``MED_SL``) as it would columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from diagnostic.errors import CatalogError, DuplicateCodeError
from diagnostic.io.catalog import Source
from diagnostic.io.reference import indicator_table
from diagnostic.io.sources._io import (
    LoadReport,
    check_range,
    check_unique,
    line_numbers,
    read_table,
    refuse,
    require_columns,
    to_number,
)

#: Columns of INSEE's long layout: territory, level, period, value, confidentiality.
LONG_GEO, LONG_LEVEL, LONG_PERIOD, LONG_VALUE, LONG_STATUS = "GEO", "GEO_OBJECT", "TIME_PERIOD", "OBS_VALUE", "CONF_STATUS"
#: ``CONF_STATUS`` of a value withheld under statistical secrecy (``F``: free).
CONFIDENTIAL = "C"
#: Geographic levels kept for a commune table: communes (arrondissements are separate codes).
COMMUNE_LEVELS = {"COM"}

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
    #: Per cell, a reliability mark shown beside the figure (« note de qualité CNAF : 5 »), or empty.
    reliability: pd.DataFrame | None = None
    #: Every QPV of France (national exports), indicators as columns: the national distribution.
    national: pd.DataFrame | None = None
    #: Per indicator, the national value and how it was obtained (``indicator``, ``value``, ``method``).
    national_reference: pd.DataFrame | None = None
    #: Every vintage, long: ``code_qp``, ``indicator``, ``vintage``, ``value``, ``secret``.
    history: pd.DataFrame | None = None


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
                f"indicateur « {key} » inconnu de diagnostic/resources/tables/indicateurs.csv.",
                path=source.path,
                hint="ajoutez-le à diagnostic/resources/tables/indicateurs.csv ou donnez « label: » et « nature: » "
                "(effectif, taux, mediane, indice) dans le catalogue.",
            )
        base.update({"column": spec["column"], "source": source.citation(), "vintage": source.vintage or ""})
        rows[key] = base
    return pd.DataFrame.from_dict(rows, orient="index")


def measure_column(df: pd.DataFrame) -> str | None:
    """The measure column of INSEE's long layout (``FILOSOFI_MEASURE``…), or None for a wide table."""
    if not {LONG_GEO, LONG_VALUE} <= set(df.columns):
        return None
    measures = [c for c in df.columns if c.endswith("_MEASURE") and c != "UNIT_MEASURE"]
    return measures[0] if len(measures) == 1 else None


def widen(df: pd.DataFrame, measure: str, source: Source, report: LoadReport) -> pd.DataFrame:
    """One row per commune and one column per measure from INSEE's long layout.

    Only commune rows (``GEO_OBJECT`` COM) are kept, and of each measure its latest
    ``TIME_PERIOD``; a value withheld (``CONF_STATUS`` C, empty ``OBS_VALUE``) becomes
    ``s``, the secrecy mark of the wide tables. Values are checked here so that an
    error names the line of the published file.
    """
    to_number(df[LONG_VALUE], source.path, LONG_VALUE)
    rows = df.assign(_line=line_numbers(pd.Series(True, index=df.index)))
    if LONG_LEVEL in rows.columns:
        rows = rows[rows[LONG_LEVEL].str.strip().isin(COMMUNE_LEVELS)]
    if LONG_PERIOD in rows.columns and rows[LONG_PERIOD].nunique() > 1:
        latest = rows.groupby(measure)[LONG_PERIOD].transform("max")
        report.warn(f"format long : plusieurs périodes ({', '.join(sorted(rows[LONG_PERIOD].unique()))}), "
                    "la plus récente de chaque mesure est gardée.")
        rows = rows[rows[LONG_PERIOD] == latest]
    dup = rows.duplicated([LONG_GEO, measure], keep=False)
    refuse(dup, "la même mesure apparaît plusieurs fois pour un territoire "
           f"({', '.join(sorted(set(rows.loc[dup, LONG_GEO] + ' ' + rows.loc[dup, measure]))[:3])}).", source.path,
           measure, error=DuplicateCodeError, lines=rows["_line"],
           hint="chaque territoire ne doit avoir qu'une valeur par mesure et par période.")
    value = rows[LONG_VALUE].str.strip()
    if LONG_STATUS in rows.columns:
        value = value.mask((value == "") & (rows[LONG_STATUS].str.strip() == CONFIDENTIAL), "s")
    wide = (rows.assign(_value=value).pivot(index=LONG_GEO, columns=measure, values="_value")
            .fillna("").rename_axis(columns=None).reset_index())
    report.warn(f"format long de l'INSEE : {len(df)} ligne(s) lues, remises en colonnes pour {len(wide)} commune(s) "
                f"({int(len(df) - len(rows))} ligne(s) d'autres niveaux géographiques ou périodes non retenues).")
    return wide


def load_indicator_table(source: Source, code_key: str) -> tuple[IndicatorTable, LoadReport]:
    """Read a per-territory indicator table keyed on ``code_key`` (``insee_com`` or ``code_qp``)."""
    report = LoadReport(source.role, source.path)
    df = read_table(source.path, source.role, source.options.get("sep"), source.options.get("encoding"))
    report.rows_read = len(df)
    if (measure := measure_column(df)) is not None:
        df = widen(df, measure, source, report)
    code_col = source.columns.get(code_key, code_key)
    specs = indicator_specs(source)
    counts = dict(source.options.get("service_counts") or {})
    require_columns(df, [code_col, *specs["column"], *counts], source.path, source.label)
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
