"""Per-QPV thematic exports of the politique de la ville observatory (« SIG Ville »).

The files (``DEMO_*.csv``, ``REVN_*.csv``, ``IPRO_*.csv``) are read exactly as
published: ``;``, UTF-8 with BOM, CRLF, decimal comma, U+202F between
thousands, trailing empty columns, an empty cell for secret or unavailable.
Each holds every QPV of France; some vintages open with the « Ensemble des
QPV » row (``CODGEO`` = ``Ensemble``), the national reference. Quality flags
(``NOTE_RP``, ``NOTE_FILO``, ``NOTE_CNAF``, ``NOTE_PE``…) follow the block of
columns they qualify; a non-zero note is carried beside the figure.
Columns change between vintages: an earlier vintage lacking a mapped column
simply has no value for that indicator (said in the load report).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from diagnostic.errors import CatalogError
from diagnostic.io.catalog import Source
from diagnostic.io.sources._io import (
    LoadReport,
    check_unique,
    read_table,
    require_columns,
    to_number,
)
from diagnostic.io.sources.insee import IndicatorTable, indicator_specs

NATIONAL_CODE = "Ensemble"
#: Columns whose quality flag is their producer's own, wherever they sit in the file.
_OWN_NOTE = {"NOTE_RP": re.compile(r"^(POP_|TX_|IND_JEUNE$)"),
             "NOTE_FILO": re.compile(r"^(PMIMP|PART_CHOMPRINC|DECUC_|BREV|DISP_|TP60|PACT|PPEN|PPSOC|PIMPOT|PPAT)")}
NOTE_PRODUCERS = {"NOTE_RP": "recensement", "NOTE_FILO": "Filosofi", "NOTE_CNAF": "CNAF", "NOTE_CNAM": "CNAM",
                  "NOTE_PE": "France Travail", "NOTE_PE_T": "France Travail", "NOTE_ASP": "ASP", "NOTE_ASP_E": "ASP"}
NATIONAL_FROM_ROW = "ligne « Ensemble des QPV » du fichier"
NATIONAL_COMPUTED = "calculée sur tous les QPV de France (moyenne pondérée par la population ; somme des effectifs)"


@dataclass
class SigvilleTable:
    """One vintage of one export: its QPV rows, every row read (« Ensemble » included) and the national reference."""

    table: IndicatorTable
    national: pd.DataFrame
    reference: pd.DataFrame


def read_export(source: Source) -> pd.DataFrame:
    """The export as text, trailing empty columns dropped, ``CODGEO`` stripped."""
    df = read_table(source.path, source.role, source.options.get("sep", ";"), source.options.get("encoding"))
    empty = [c for c in df.columns if (c == "" or c.startswith("Unnamed:")) and (df[c].str.strip() == "").all()]
    df = df.drop(columns=empty)
    code = source.columns.get("code_qp", "CODGEO")
    require_columns(df, [code], source.path, source.label)
    df[code] = df[code].str.strip()
    return df


def note_columns(columns: list[str]) -> dict[str, str]:
    """Which ``NOTE_*`` column qualifies each column: the next note after its block, or its producer's own."""
    notes = [c for c in columns if c.startswith("NOTE_")]
    out: dict[str, str] = {}
    pending: list[str] = []
    for c in columns:
        if c in notes:
            for p in pending:
                out[p] = c
            pending = []
        else:
            pending.append(c)
    for c in list(out):
        for note, pattern in _OWN_NOTE.items():
            if pattern.match(c):
                if note in notes:
                    out[c] = note
                else:
                    del out[c]
                break
    return out


def reliability_label(note: str, value: str) -> str:
    """« note de qualité CNAF : 5 » for a non-zero flag, empty for 0 or no flag."""
    value = str(value).strip()
    if value in ("", "0"):
        return ""
    return f"note de qualité {NOTE_PRODUCERS.get(note, note.removeprefix('NOTE_'))} : {value}"


def _specs(source: Source, df: pd.DataFrame, report: LoadReport, strict: bool) -> pd.DataFrame:
    specs = indicator_specs(source)
    raw = {k: ({"column": v} if isinstance(v, str) else dict(v)) for k, v in source.indicators.items()}
    specs["per"] = [raw[k].get("per") for k in specs.index]
    needed = {f"{k}": c for k, c in specs["column"].items()}
    needed.update({f"{k} (dénominateur)": p for k, p in specs["per"].items() if isinstance(p, str)})
    absent = sorted({k.split(" ")[0] for k, c in needed.items() if c not in df.columns})
    if absent and strict:
        require_columns(df, needed.values(), source.path, source.label)
    if absent:
        report.warn(f"millésime {source.vintage} : pas de colonne pour {', '.join(absent)} "
                    "(les colonnes changent d'un millésime à l'autre).")
    return specs.drop(index=absent)


def load_sigville(source: Source, strict: bool = True) -> tuple[SigvilleTable, LoadReport]:
    """Read one export; ``strict`` (latest vintage) requires every mapped column, earlier ones tolerate gaps.

    An indicator given as ``{column: AM, per: A}`` is the ratio 100 × AM / A,
    missing where either part is. An empty cell is « non disponible » (the
    export does not tell secrecy from absence).
    """
    report = LoadReport(source.role, source.path)
    df = read_export(source)
    report.rows_read = len(df)
    code_col = source.columns.get("code_qp", "CODGEO")
    specs = _specs(source, df, report, strict)
    codes = df[code_col]
    check_unique(codes, source.path, code_col)
    notes = note_columns(list(df.columns))
    values, secret, marks = {}, {}, {}
    for key, spec in specs.iterrows():
        v, s = to_number(df[spec["column"]], source.path, spec["column"])
        if isinstance(spec["per"], str):
            d, ds = to_number(df[spec["per"]], source.path, spec["per"])
            v, s = 100 * v / d.where(d > 0), s | ds
        values[key], secret[key] = v, s
        note = notes.get(spec["column"])
        marks[key] = df[note].map(lambda x, n=note: reliability_label(n, x)) if note else pd.Series("", index=df.index)
    index = pd.Index(codes, name="code_qp")
    values = pd.DataFrame(values, index=df.index).set_axis(index)
    secret = pd.DataFrame(secret, index=df.index).set_axis(index).astype(bool)
    marks = pd.DataFrame(marks, index=df.index).set_axis(index)
    is_qpv = index != NATIONAL_CODE
    definitions = specs.drop(columns=["per"])
    table = IndicatorTable(values[is_qpv], secret[is_qpv], definitions, source, reliability=marks[is_qpv])
    report.rows_kept = int(is_qpv.sum())
    if not is_qpv.all():
        report.warn("ligne « Ensemble des QPV » lue comme référence nationale.")
    return SigvilleTable(table, values, national_reference(values, definitions, None)), report


def national_reference(values: pd.DataFrame, definitions: pd.DataFrame, population: pd.Series | None) -> pd.DataFrame:
    """The national value of each indicator: the « Ensemble des QPV » row, else computed from all QPVs.

    Rates, medians and indices are weighted by ``population`` (the file's own
    ``population`` column when it has one); counts are summed over the QPVs
    that have a value. A median so computed is an approximation, and said so.
    """
    rows = []
    has_row = NATIONAL_CODE in values.index
    qpv = values[values.index != NATIONAL_CODE]
    if population is None and "population" in qpv:
        population = qpv["population"]
    for key, spec in definitions.iterrows():
        if key not in values:
            continue
        if has_row and pd.notna(values.at[NATIONAL_CODE, key]):
            rows.append({"indicator": key, "value": float(values.at[NATIONAL_CODE, key]), "method": NATIONAL_FROM_ROW})
            continue
        v = qpv[key]
        if spec["nature"] == "effectif":
            value = float(v.sum()) if v.notna().any() else np.nan
        else:
            w = population.reindex(v.index) if population is not None else pd.Series(1.0, index=v.index)
            ok = v.notna() & w.notna() & (w > 0)
            value = float(np.average(v[ok], weights=w[ok])) if ok.any() else np.nan
        rows.append({"indicator": key, "value": value, "method": NATIONAL_COMPUTED})
    return pd.DataFrame(rows, columns=["indicator", "value", "method"])


def load_history(source: Source) -> tuple[pd.DataFrame, list[LoadReport]]:
    """Every vintage of a source (earlier ones and the latest), long: code_qp, indicator, vintage, value, status."""
    frames, reports = [], []
    for src in (*source.earlier, source):
        if (src.format or "").lower() != "sigville":
            raise CatalogError("« vintages: » n'est pris en charge que pour « format: sigville ».", path=src.path)
        one, rep = load_sigville(src, strict=src is source)
        reports.append(rep)
        t = one.table
        long = t.values.stack(future_stack=True).rename("value").reset_index()
        long.columns = ["code_qp", "indicator", "value"]
        long["secret"] = t.secret.stack(future_stack=True).to_numpy()
        long["vintage"] = src.vintage or ""
        frames.append(long)
    return pd.concat(frames, ignore_index=True), reports
