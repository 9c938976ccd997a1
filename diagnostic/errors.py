"""French, actionable error types.

Every error an officer can meet names the file, the column or row, and what was
expected. Each class carries a distinct CLI exit code so that scripts can tell
a missing file from a bad column without parsing text.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class DiagnosticError(Exception):
    """Base class: a French message plus where the problem is."""

    exit_code = 1
    title = "Erreur"

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        column: str | None = None,
        rows: Iterable[int] | None = None,
        hint: str | None = None,
        sheet: str | None = None,
    ) -> None:
        self.message = message
        self.path = Path(path) if path is not None else None
        self.sheet = sheet
        self.column = column
        self.rows = list(rows) if rows is not None else []
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [f"{self.title} : {self.message}"]
        if self.path is not None:
            parts.append(f"  Fichier : {self.path}")
        if self.sheet is not None:
            parts.append(f"  Feuille : {self.sheet}")
        if self.column is not None:
            parts.append(f"  Colonne : {self.column}")
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:10])
            more = f" (et {len(self.rows) - 10} autres)" if len(self.rows) > 10 else ""
            parts.append(f"  Ligne(s) : {shown}{more}")
        if self.hint:
            parts.append(f"  Que faire : {self.hint}")
        return "\n".join(parts)


class CatalogError(DiagnosticError):
    exit_code = 10
    title = "Catalogue invalide"


class MissingFileError(DiagnosticError):
    exit_code = 11
    title = "Fichier introuvable"


class UnknownFormatError(DiagnosticError):
    exit_code = 12
    title = "Format de fichier non reconnu"


class EmptyFileError(DiagnosticError):
    exit_code = 13
    title = "Fichier vide"


class MissingColumnError(DiagnosticError):
    exit_code = 14
    title = "Colonne manquante"


class ValueFormatError(DiagnosticError):
    exit_code = 15
    title = "Valeur invalide"


class GeometryError(DiagnosticError):
    exit_code = 16
    title = "Géométrie invalide"


class CRSError(DiagnosticError):
    exit_code = 17
    title = "Système de coordonnées incorrect"


class DuplicateCodeError(DiagnosticError):
    exit_code = 18
    title = "Codes en double"


class UnknownCommuneError(DiagnosticError):
    exit_code = 19
    title = "Code commune inconnu"


class OutOfTerritoryError(DiagnosticError):
    exit_code = 20
    title = "Coordonnées hors du territoire"


class ConfidentialityError(DiagnosticError):
    exit_code = 21
    title = "Données personnelles refusées"


class ParameterError(DiagnosticError):
    exit_code = 22
    title = "Paramètre invalide"


class NotebookExecutionError(DiagnosticError):
    exit_code = 30
    title = "Échec de l'exécution du diagnostic"


class BatchError(DiagnosticError):
    exit_code = 31
    title = "Échec du traitement par lot"


class FetchError(DiagnosticError):
    exit_code = 40
    title = "Téléchargement impossible"


class PartialFetchError(FetchError):
    """Some sources of ``data fetch`` failed: the catalogue was written with the others."""

    exit_code = 41
    title = "Téléchargement partiel"


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """Return the candidate closest to ``name`` (case-insensitive), if any is close."""
    candidates = list(candidates)
    lowered = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def missing_column(path: str | Path, column: str, available: Iterable[str], role: str) -> MissingColumnError:
    """Build the error for an absent column, suggesting the closest existing name."""
    available = list(available)
    suggestion = closest(column, available)
    hint = (
        f"la colonne « {suggestion} » existe : corrigez la correspondance des colonnes "
        f"dans le catalogue ({role}) ou le nom dans le fichier."
        if suggestion
        else f"colonnes présentes : {', '.join(available[:30])}."
    )
    return MissingColumnError(
        f"la colonne « {column} » attendue pour « {role} » est absente.",
        path=path,
        column=column,
        hint=hint,
    )
