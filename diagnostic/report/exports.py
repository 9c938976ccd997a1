"""Files a diagnostic leaves beside its report: CSV tables, GeoPackage, resultats.json, the council note.

CSV files use French headers, UTF-8 with a byte-order mark and ``;`` as
separator, so that French spreadsheets open them as they are; a text cell that a
spreadsheet would run as a formula is written with a leading « ' ».
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from diagnostic.analysis.commune import CommuneDiagnostic, write_json
from diagnostic.analysis.decision import rows as decision_rows
from diagnostic.report.note import NOTE_FILE, write_note

CSV_OPTIONS = {"sep": ";", "index": False, "encoding": "utf-8-sig", "decimal": ",", "lineterminator": "\n"}
SOCIAL_HEADERS = {"code": "territoire", "name": "territoire_nom", "label": "indicateur", "value": "valeur", "unit": "unite", "status": "statut",
                  "ref_all_qpv": "reference_moyenne_qpv", "ref_commune": "reference_commune",
                  "ref_department": "reference_departement", "ref_region": "reference_region",
                  "ref_catalog": "reference_catalogue",
                  "source": "source", "vintage": "millesime"}
COVERAGE_HEADERS = {"level": "niveau", "code": "territoire", "name": "territoire_nom", "domain_label": "domaine",
                    "services_inside": "services_dans_le_territoire", "services_band": "services_dans_la_bande",
                    "responses_band": "reponses_dans_la_bande", "common_band": "offre_droit_commun_dans_la_bande",
                    "places_band": "lieux_d_intervention_dans_la_bande",
                    "nearest_m": "distance_plus_proche_m", "per_1000": "services_pour_1000_hab",
                    "population": "population", "method": "methode"}
NEEDS_HEADERS = {"rank": "rang", "code": "territoire", "name": "territoire_nom", "domain_label": "domaine", "level": "niveau",
                 "level_measured": "niveau_mesure", "population": "population", "need": "besoin",
                 "response": "reponse", "unmet": "score_non_couvert", "priority": "priorite",
                 "responses_band": "reponses_dans_la_bande", "nearest_response_m": "distance_reponse_plus_proche_m",
                 "mediation_posts": "postes_adultes_relais", "obs_count": "observations", "robustness": "robustesse",
                 "reason": "raison", "expressed_reason": "demande_exprimee", "missing": "donnees_manquantes",
                 "note": "remarque"}


def _numeric(column: pd.Series) -> pd.Series:
    """A column of numbers held as objects (a table computed fresh, not read from the cache) as floats.

    pandas writes the decimal comma only in float columns: without this, the
    same table came out « 0.5 » on a first run and « 0,5 » with a warm cache.
    """
    values = column.dropna()
    numbers = values.map(lambda v: isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_)))
    if column.dtype == object and len(values) and numbers.all():
        return column.astype(float)
    return column


#: What a spreadsheet reads as the start of a formula (« =HYPERLINK(…) », « -2+3+cmd|x », « @SUM »…).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(?:[.,]\d+)?$")


def neutralise(value: Any) -> Any:
    """A text a spreadsheet would run as a formula, prefixed with « ' » (shown as written); other values unchanged.

    Numbers, and texts that are plain numbers (« -2,5 »), stay as they are.
    """
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def _csv(df: pd.DataFrame, headers: dict[str, str], path: Path) -> Path:
    """Write the ``headers`` columns of ``df`` as a French CSV; text cells are :func:`neutralise`-d."""
    cols = [c for c in headers if c in df.columns]
    table = df[cols].apply(_numeric).round(2)  # 2 decimals at most
    table = table.apply(lambda c: c.map(neutralise) if c.dtype == object or pd.api.types.is_string_dtype(c) else c)
    table.rename(columns=headers).to_csv(path, **CSV_OPTIONS)
    return path


def write_tables(diag: CommuneDiagnostic, dest: Path) -> list[Path]:
    """Indicator, coverage, needs and recommendation tables as CSV (territories by code and name, 2 decimals at most);
    geometries as GeoPackage; ``resultats.json``; the council note."""
    dest.mkdir(parents=True, exist_ok=True)
    names = {**diag.territories.set_index("code")["name"].to_dict(), diag.code: diag.name}

    def named(df: pd.DataFrame) -> pd.DataFrame:  # a territory keyed by its code and its name
        return df.assign(name=df["code"].map(names)) if "code" in df else df

    files = [
        _csv(named(diag.social), SOCIAL_HEADERS, dest / "indicateurs.csv"),
        _csv(named(diag.coverage), COVERAGE_HEADERS, dest / "couverture.csv"),
        _csv(named(diag.needs), NEEDS_HEADERS, dest / "besoins_non_couverts.csv"),
    ]
    recs = pd.DataFrame(diag.recommendations)
    files.append(_csv(recs, {"priority": "priorite", "type": "type", "domain_label": "domaine", "title": "titre",
                             "text": "texte", "reason": "raison", "origin": "origine"}, dest / "recommandations.csv"))
    if diag.decision:
        table = decision_rows(diag.decision)
        files.append(_csv(table, {c: c for c in table.columns}, dest / "decision.csv"))
    gpkg = dest / "territoire.gpkg"
    gpkg.unlink(missing_ok=True)
    diag.commune_shape.to_file(gpkg, layer="commune", driver="GPKG")
    if diag.has_qpv:
        diag.qpv.to_file(gpkg, layer="qpv", driver="GPKG")
    if len(diag.services):
        diag.services.to_file(gpkg, layer="services", driver="GPKG")
    files.append(gpkg)
    files.append(write_json(diag, dest / "resultats.json"))
    files.append(write_note(diag, dest / NOTE_FILE))
    return files
