"""The territory fetched (a region or a department) and the filter keeping its rows in national files."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from diagnostic.errors import CatalogError, ParameterError
from diagnostic.io.fetch.sources import SOURCES_FILE, OfficialSource
from diagnostic.io.sources.communes import department_of


@dataclass(frozen=True)
class Territory:
    """A region or a department, by its INSEE code."""

    kind: str
    code: str

    @property
    def label(self) -> str:
        return f"{'région' if self.kind == 'region' else 'département'} {self.code}"


def parse_territory(region: str | None, department: str | None) -> Territory:
    """Check a region (two digits) or department code (``59``, ``2A``, ``974``)."""
    if bool(region) == bool(department):
        raise ParameterError("indiquez soit --region CODE, soit --department CODE.")
    if region:
        code = region.strip()
        if not re.fullmatch(r"\d{2}", code):
            raise ParameterError(f"code région « {region} » invalide.", hint="exemple : 32 pour les Hauts-de-France.")
        return Territory("region", code)
    code = department.strip().upper()
    if re.fullmatch(r"\d", code):
        code = code.zfill(2)
    if not re.fullmatch(r"\d{2}|2[AB]|97\d", code):
        raise ParameterError(f"code département « {department} » invalide.", hint="exemples : 59, 2A, 974.")
    return Territory("department", code)


def padded_codes(values: pd.Series, width: int) -> pd.Series:
    text = values.astype(str).str.strip()
    return text.where(~text.str.fullmatch(r"\d+"), text.str.zfill(width))


def territory_filter(
    source: OfficialSource, territory: Territory, communes: set[str] | None
) -> Callable[[pd.DataFrame], pd.Series]:
    """A row filter: by commune code when known, else by department, else by the territory's own level."""
    filters = source.filters
    level = "reg" if territory.kind == "region" else "dep"

    def keep(df: pd.DataFrame) -> pd.Series:
        for key in ("com", "dep", level):
            column = filters.get(key)
            if column is None or (key != level and communes is None):
                continue
            if column not in df.columns:
                raise CatalogError(
                    f"la colonne « {column} » (filtre {key}) est absente du fichier de « {source.key} » "
                    f"(colonnes : {', '.join(map(str, df.columns[:15]))}).",
                    path=SOURCES_FILE, column="filtre",
                    hint="le format a peut-être changé : corrigez « filtre » dans diagnostic/resources/tables/sources_officielles.csv.",
                )
            if key == "com":
                return padded_codes(df[column], 5).isin(communes)
            if key == "dep" and communes is not None:
                return padded_codes(df[column], 2).isin({department_of(c) for c in communes})
            return padded_codes(df[column], 2) == territory.code
        raise CatalogError(f"la source « {source.key} » n'a pas de filtre utilisable pour un {territory.label}.",
                           path=SOURCES_FILE, column="filtre",
                           hint="indiquez com=COLONNE, dep=COLONNE ou reg=COLONNE.")

    return keep
