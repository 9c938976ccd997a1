"""Adulte-relais posts (ANCT, « subventions politique de la ville ») joined to contrats de ville."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from diagnostic.io.catalog import Source
from diagnostic.io.sources._io import (
    LoadReport,
    read_geo,
    read_table,
    refuse,
    require_keys,
    to_number,
)

POST_COLUMNS = {"year": "annee", "post_id": "id_poste", "employer_siret": "code_tiers",
                "employer": "raison_sociale", "amount": "montant", "code_cv": "code_cv", "insee_dep": "insee_dep"}
CV_COLUMNS = {"code_cv": "code_cv", "lib_cv": "lib_cv", "codgeo": "codgeo", "insee_dep": "insee_dep"}


def load_contrats_de_ville(source: Source) -> tuple[gpd.GeoDataFrame, LoadReport]:
    """Contrats de ville (points or outlines) with their code, label and EPCI/commune code."""
    report = LoadReport(source.role, source.path)
    cols = {**CV_COLUMNS, **source.columns}
    gdf = read_geo(source.path, source.role, source.options.get("crs"))
    report.rows_read = len(gdf)
    require_keys(gdf, cols, ("code_cv", "lib_cv", "codgeo"), source)
    out = gpd.GeoDataFrame(
        {k: gdf[cols[k]].astype(str).str.strip() for k in ("code_cv", "lib_cv", "codgeo")},
        geometry=gdf.geometry.values,
        crs=gdf.crs,
    )
    report.rows_kept = len(out)
    report.crs = "EPSG:2154"
    return out, report


def refuse_negative_amounts(amounts: pd.Series, path, column: str, offset: int = 2) -> None:
    """A State amount is never negative (a refund is not a post): refuse, naming the lines."""
    refuse(amounts < 0, "montants négatifs : un montant versé par l'État est positif ou nul.", path, column,
           offset=offset, hint="corrigez le montant, ou retirez la ligne s'il s'agit d'un remboursement.")


def load_adultes_relais(source: Source, contrats: gpd.GeoDataFrame | None) -> tuple[pd.DataFrame, LoadReport]:
    """Posts per year with their employer, State funding and contrat de ville.

    Posts whose contrat de ville is absent from the contrats file keep their
    department but no commune; they are counted in a warning.
    """
    report = LoadReport(source.role, source.path)
    cols = {**POST_COLUMNS, **source.columns}
    df = read_table(source.path, source.role, source.options.get("sep"))
    report.rows_read = len(df)
    require_keys(df, cols, ("year", "post_id", "employer", "code_cv"), source)
    out = pd.DataFrame({k: df[c].astype(str).str.strip() for k, c in cols.items() if c in df.columns})
    out["year"] = to_number(df[cols["year"]], source.path, cols["year"])[0].astype("Int64")
    if "amount" in out:
        out["amount"] = to_number(df[cols["amount"]], source.path, cols["amount"])[0]
        refuse_negative_amounts(out["amount"], source.path, cols["amount"])
    if contrats is not None:
        out = out.merge(pd.DataFrame(contrats.drop(columns="geometry")), on="code_cv", how="left")
        unmatched = out["lib_cv"].isna()
        if unmatched.any():
            report.warn(
                f"{int(unmatched.sum())} poste(s) rattaché(s) à un contrat de ville absent du fichier "
                f"des contrats ({', '.join(sorted(c or 'code vide' for c in out.loc[unmatched, 'code_cv'].unique())[:5])})."
            )
    report.rows_kept = len(out)
    return out, report
