"""Adultes-relais and FONJEP posts in ANCT's Ci.Ville format (JSON arrays, one file per year).

Each record is one post and year: ``id_poste``, ``code_tiers`` (employer
SIRET, absent from FONJEP 2024–2025), ``raison_sociale``, ``annee``,
``montant`` (State funding), ``code_cv`` (contrat de ville, 2015 generation
``CVnnn`` or 2024 generation ``CNdddnnL``), ``insee_dep``, ``insee_reg``. Not
every record has every key. Files are national: the catalogue's departments
are kept. One file per year is declared as the vintages of one source.
"""

from __future__ import annotations

import json
import re
from typing import Any

import geopandas as gpd
import pandas as pd

from diagnostic import text
from diagnostic.errors import UnknownFormatError, ValueFormatError
from diagnostic.io.catalog import Source
from diagnostic.io.sources._io import LoadReport, check_exists, read_source_text
from diagnostic.io.sources.adultes_relais import (
    POST_COLUMNS,
    load_adultes_relais,
    refuse_negative_amounts,
)

PROGRAMMES = {"adulte-relais": "adultes-relais", "fonjep": "FONJEP"}
#: Singular and plural of « poste » for each programme, for sentences.
POST_NOUNS = {"adulte-relais": ("poste adulte-relais", "postes adultes-relais"), "fonjep": ("poste FONJEP", "postes FONJEP")}
#: A year is partial when a programme's median State amount per post falls below this share of the year before.
PARTIAL_AMOUNT_SHARE = 0.5


def _read_json(source: Source) -> pd.DataFrame:
    check_exists(source.path, source.role)
    try:
        records = json.loads(read_source_text(source.path, source.role))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnknownFormatError(f"le fichier n'est pas un tableau JSON lisible ({exc}).", path=source.path) from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise UnknownFormatError("attendu : un tableau JSON d'objets (un par poste), comme les fichiers Ci.Ville de l'ANCT.",
                                 path=source.path)
    df = pd.DataFrame.from_records(records)
    for column in POST_COLUMNS.values():
        df[column] = df[column].fillna("").astype(str).str.strip() if column in df else ""
    return df


def load_posts(source: Source, contrats: gpd.GeoDataFrame | None,
               departments: set[str]) -> tuple[pd.DataFrame, list[LoadReport]]:
    """Posts of every vintage of ``source`` (JSON or the CSV extract), with their programme and contract.

    JSON records outside ``departments`` are left out; those without a
    department (overseas, in ANCT's files) are counted in the report.
    """
    programme = str(source.options.get("programme", "adulte-relais"))
    if programme not in PROGRAMMES:
        raise ValueFormatError(f"programme « {programme} » inconnu.", path=source.path,
                               hint=f"programmes possibles : {', '.join(PROGRAMMES)}.")
    frames, reports = [], []
    for src in (*source.earlier, source):
        if src.path.suffix.lower() != ".json":
            frame, rep = load_adultes_relais(src, contrats)
        else:
            frame, rep = _load_json(src, contrats, departments)
        frames.append(frame.assign(programme=programme))
        reports.append(rep)
    return pd.concat(frames, ignore_index=True), reports


def _load_json(source: Source, contrats: gpd.GeoDataFrame | None, departments: set[str]) -> tuple[pd.DataFrame, LoadReport]:
    report = LoadReport(source.role, source.path)
    df = _read_json(source)
    report.rows_read = len(df)
    report.rows_distinct = int((~df.astype(str).duplicated()).sum())  # France, duplicates once, as rows_kept below
    keep = df["insee_dep"].isin(departments)
    no_dep = int((df["insee_dep"] == "").sum())
    if no_dep:
        report.warn(f"{no_dep} poste(s) sans département (outre-mer dans les fichiers de l'ANCT) mis de côté.")
    df = df[keep]
    twice = df.astype(str).duplicated()
    if twice.any():
        report.warn(f"{int(twice.sum())} enregistrement(s) en double (même poste, même contrat, même montant) "
                    "compté(s) une fois.")
        df = df[~twice]
    out = pd.DataFrame({k: df[c].to_numpy() for k, c in POST_COLUMNS.items()})
    out["year"] = pd.to_numeric(out["year"], errors="coerce").astype("Int64")
    out["amount"] = pd.to_numeric(out["amount"], errors="coerce")
    refuse_negative_amounts(out["amount"], source.path, POST_COLUMNS["amount"], offset=1)
    if contrats is not None:
        out = out.merge(pd.DataFrame(contrats.drop(columns="geometry")), on="code_cv", how="left")
        unmatched = out["lib_cv"].isna()
        if unmatched.any():
            report.warn(f"{int(unmatched.sum())} poste(s) sans contrat de ville connu "
                        f"({', '.join(sorted(c or 'code vide' for c in out.loc[unmatched, 'code_cv'].unique())[:5])}).")
    report.rows_kept = len(out)
    return out, report


def partial_years(posts: pd.DataFrame | None) -> dict[int, str]:
    """Years whose files record only part of the State's funding, each with its reason in French.

    The State pays one flat amount per post and year (22,810.61 € per
    adulte-relais post in 2024): when a programme's median amount per post
    falls below :data:`PARTIAL_AMOUNT_SHARE` of the year before, that year's
    file holds only part of the year's payments (ANCT's 2025 file: 7,164 € per
    adulte-relais post), so its counts and amounts do not compare with full years.
    """
    if posts is None or posts.empty or "amount" not in posts or not posts["amount"].gt(0).any():
        return {}
    medians = posts[posts["amount"] > 0].groupby(["programme", "year"])["amount"].median()
    reasons: dict[int, list[str]] = {}
    for programme, series in medians.groupby(level="programme"):
        years = series.droplevel("programme").sort_index()
        for (before, prev), (year, value) in zip(years.items(), list(years.items())[1:]):
            if value < PARTIAL_AMOUNT_SHARE * prev:
                reasons.setdefault(int(year), []).append(
                    f"montant médian par {POST_NOUNS.get(programme, (programme,))[0]} de {euros(value)} en {year}, "
                    f"contre {euros(prev)} en {before}")
    return {year: text.join(parts) for year, parts in sorted(reasons.items())}


def funded(posts: pd.DataFrame | None, partial: dict[int, str]) -> dict[str, Any] | None:
    """The posts already funded in the last complete year: posts per programme, State amounts, contracts.

    A post counts once per programme (``post_id``), whatever its number of
    records; amounts are summed. None without posts or without a complete year.
    """
    if posts is None or posts.empty:
        return None
    complete = sorted(set(posts["year"].dropna().astype(int)) - set(partial))
    if not complete:
        return None
    year = complete[-1]
    rows = posts[posts["year"] == year]
    order = [p for p in PROGRAMMES if p in set(rows["programme"])]
    counts = rows.groupby("programme")["post_id"].nunique()
    amounts = rows.groupby("programme")["amount"].sum(min_count=1)
    labels = rows.assign(lib_cv=rows["lib_cv"].fillna("") if "lib_cv" in rows else "").groupby("code_cv")["lib_cv"].first()
    return {
        "year": year,
        "posts": {p: int(counts[p]) for p in order},
        "amounts": {p: round(float(amounts[p]), 2) for p in order if pd.notna(amounts[p])},
        "contracts": [{"code": code, "label": contract_label(lib) or code} for code, lib in labels.items()],
        "later_partial": {y: r for y, r in partial.items() if y > year},
    }


def contract_label(label: str) -> str:
    """A contract's name without ANCT's department prefix: « 59 - Métropole Européenne de Lille » → the name."""
    return re.sub(r"^\s*\d[\dAB]\d?\s*-\s*", "", str(label or "")).strip()


def euros(value: float) -> str:
    """An amount in euros, cents only when there are some: « 22 810,61 € », « 7 164 € »."""
    return text.number(value, 0 if float(value).is_integer() else 2, "€")
