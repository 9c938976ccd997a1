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

import geopandas as gpd
import pandas as pd

from diagnostic.catalog import Source
from diagnostic.errors import UnknownFormatError, ValueFormatError
from diagnostic.sources._io import LoadReport, check_exists
from diagnostic.sources.adultes_relais import POST_COLUMNS, load_adultes_relais

PROGRAMMES = {"adulte-relais": "adultes-relais", "fonjep": "FONJEP"}


def _read_json(source: Source) -> pd.DataFrame:
    check_exists(source.path, source.role)
    try:
        records = json.loads(source.path.read_text(encoding="utf-8"))
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
    keep = df["insee_dep"].isin(departments)
    no_dep = int((df["insee_dep"] == "").sum())
    if no_dep:
        report.warn(f"{no_dep} poste(s) sans département (outre-mer dans les fichiers de l'ANCT) mis de côté.")
    df = df[keep]
    out = pd.DataFrame({k: df[c].to_numpy() for k, c in POST_COLUMNS.items()})
    out["year"] = pd.to_numeric(out["year"], errors="coerce").astype("Int64")
    out["amount"] = pd.to_numeric(out["amount"], errors="coerce")
    if contrats is not None:
        out = out.merge(pd.DataFrame(contrats.drop(columns="geometry")), on="code_cv", how="left")
        unmatched = out["lib_cv"].isna()
        if unmatched.any():
            report.warn(f"{int(unmatched.sum())} poste(s) sans contrat de ville connu "
                        f"({', '.join(sorted(c or 'code vide' for c in out.loc[unmatched, 'code_cv'].unique())[:5])}).")
    report.rows_kept = len(out)
    return out, report
