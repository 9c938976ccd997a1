"""The data catalogue: which file plays which role, with which columns.

A catalogue is a YAML file. Official files are used exactly as published: the
catalogue maps their column names to the workbench's names instead of asking
officers to edit the files. Paths are relative to the catalogue's folder, or to
the data folder (``--data-dir``, ``DIAGNOSTIC_DATA``, else ``../shared/data/real``
beside the checkout) when the catalogue says ``paths_relative_to: data_dir``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diagnostic.errors import CatalogError, CRSError, MissingFileError, closest
from diagnostic.io.confined import ALLOW_OUTSIDE_ENV, allow_outside, confine, read_yaml  # noqa: F401 — re-exported

#: Roles a catalogue may fill, and whether each holds one source or a list.
ROLES: dict[str, bool] = {
    "communes": False,
    "qpv": False,
    "qpv_indicators": True,
    "commune_indicators": True,
    "services": True,
    "adultes_relais": True,
    "contrats_de_ville": True,
    "epci": False,
    "equipment_counts": True,
    "qpv_correspondence": False,
    "partners": False,
    "observations": True,
    "activity": False,
}

ROLE_LABELS = {
    "communes": "contours des communes",
    "qpv": "contours des QPV",
    "qpv_indicators": "indicateurs par QPV",
    "commune_indicators": "indicateurs par commune",
    "services": "équipements et services",
    "adultes_relais": "postes adultes-relais et FONJEP",
    "epci": "intercommunalités (EPCI)",
    "equipment_counts": "équipements comptés par IRIS (BPE)",
    "qpv_correspondence": "correspondance QPV 2024 – QPV 2015",
    "contrats_de_ville": "contrats de ville",
    "partners": "registre des partenaires",
    "observations": "besoins exprimés (observations, consultations)",
    "activity": "journal d'activité de médiation",
}

#: Keys of a catalogue's top level, and of a source (beyond the loaders' own options listed here).
CATALOG_KEYS = {"name", "fictional", "paths_relative_to", "texts_dir", "sources", "territory"}
SOURCE_KEYS = {
    "path", "format", "columns", "indicators", "vintage", "vintages", "producer", "url", "licence",
    "crs", "layer", "sep", "encoding", "sheet", "tolerance_m", "kind", "relations", "relations_sheet",
    "service_counts", "services_signales", "plm", "outlines", "zoom",
    "answers", "questions", "citations", "commune", "date", "nom", "participants", "poids", "programme", "public",
    "mots_cles", "outlines_file", "labels_file", "nomenclature",
    # written by « diagnostic data fetch » for provenance
    "page", "source_file", "source_sha256", "source_size", "source_modified", "sha256",
}

#: Source options that name another file (confined like ``path:``).
FILE_OPTIONS = ("relations", "outlines_file", "labels_file", "mots_cles")
#: The partners' relations file looked for beside the registry when the catalogue names none.
DEFAULT_RELATIONS = "partenaires_relations.csv"

#: The checkout: its ``data/`` holds the demo and the shipped catalogues (the package's own files are in
#: :mod:`diagnostic.resources`, so nothing else needs the checkout).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = PROJECT_ROOT.parent / "shared" / "data" / "real"


@dataclass(frozen=True)
class Source:
    """One file of a catalogue, with its role and how to read it."""

    role: str
    path: Path
    format: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    indicators: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    vintage: str | None = None
    producer: str | None = None
    url: str | None = None
    licence: str | None = None
    #: Earlier vintages of the same source (same role and columns, indicators overridable), oldest first.
    earlier: tuple[Source, ...] = ()

    @property
    def label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)

    def citation(self) -> str:
        """A short French citation: producer, vintage, file name."""
        bits = [self.producer or "source non précisée"]
        if self.vintage:
            bits.append(f"millésime {self.vintage}")
        bits.append(self.path.name)
        return ", ".join(bits)


@dataclass(frozen=True)
class Catalog:
    """A parsed catalogue: a name, whether its data are fictional, and sources per role."""

    path: Path
    name: str
    fictional: bool
    sources: dict[str, list[Source]]
    data_dir: Path
    texts_dir: Path
    raw: dict[str, Any]

    def get(self, role: str) -> Source | None:
        items = self.sources.get(role) or []
        return items[0] if items else None

    def all(self, role: str) -> list[Source]:
        return list(self.sources.get(role) or [])

    def files(self) -> list[Path]:
        """Every input file the catalogue points to (for hashing and provenance)."""
        out = [self.path]
        for role, items in self.sources.items():
            for s in items:
                out += sorted(p for p in s.path.iterdir() if p.is_file()) if s.path.is_dir() else [s.path]
                out.extend(e.path for e in s.earlier)
                for extra in FILE_OPTIONS:
                    if extra in s.options:
                        out.append(Path(s.options[extra]))
                default = s.path.with_name(DEFAULT_RELATIONS)  # read when the registry names no relations file
                if role == "partners" and "relations" not in s.options and (default.exists() or default.is_symlink()):
                    out.append(default)
        return out

    def fingerprint(self) -> str:
        """SHA-256 over the catalogue and every file it reads (content, not dates).

        Kept for the process while no file changes its size, dates (the change time, which no one can set,
        included) or inode: a report asks for it three times, a batch worker for every commune.
        """
        files = self.files()
        state = tuple((str(f), *((s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino) if (s := _stat(f)) else ()))
                      for f in files)
        if state not in _FINGERPRINTS:
            h = hashlib.sha256()
            for f in files:
                h.update(str(f.name).encode())
                if f.exists():
                    with open(f, "rb") as fh:
                        for chunk in iter(lambda: fh.read(1 << 20), b""):
                            h.update(chunk)
            _FINGERPRINTS[state] = h.hexdigest()
        return _FINGERPRINTS[state]


#: Fingerprints already computed in this process, by the state of the files (size, dates, inode).
_FINGERPRINTS: dict[tuple, str] = {}


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The data folder: explicit argument, then ``DIAGNOSTIC_DATA``, then the default."""
    if data_dir:
        return Path(data_dir).expanduser().resolve()
    env = os.environ.get("DIAGNOSTIC_DATA")
    if env:
        return Path(env).expanduser().resolve()
    return DEFAULT_DATA_DIR.resolve()


def _unknown_key(keys, allowed: set[str], where: str, path: Path) -> None:
    """Refuse a key the workbench does not read (a typo would be ignored silently), naming the closest."""
    for key in keys:
        if key not in allowed:
            near = closest(str(key), allowed)
            raise CatalogError(
                f"clé inconnue « {key} » dans {where}.",
                path=path,
                hint=f"vouliez-vous dire « {near} » ?" if near else f"clés possibles : {', '.join(sorted(allowed))}.",
            )


def load_catalog(path: str | Path, data_dir: str | Path | None = None) -> Catalog:
    """Read and check a catalogue YAML file (safe loader; unknown roles and keys refused).

    Every path must resolve inside the catalogue's folder or the data folder
    (symbolic links followed), unless ``--allow-outside`` was given.
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise MissingFileError(
            "le catalogue demandé n'existe pas.",
            path=path,
            hint="vérifiez le chemin donné à --catalog (exemple : data/demo/catalogue.yaml).",
        )
    raw = read_yaml(path, "catalogue")
    if not isinstance(raw, dict) or not isinstance(raw.get("sources"), dict):
        raise CatalogError(
            "le catalogue doit contenir une section « sources: ».",
            path=path,
            hint="voir le format décrit dans le README (section « Catalogue de données »).",
        )
    _unknown_key(raw, CATALOG_KEYS, "le catalogue", path)
    relative_to = raw.get("paths_relative_to", "catalog")
    if relative_to not in ("catalog", "data_dir"):
        raise CatalogError(
            f"« paths_relative_to » vaut « {relative_to} » ; attendu « catalog » ou « data_dir ».",
            path=path,
        )
    data_root = resolve_data_dir(data_dir)
    base = data_root if relative_to == "data_dir" else path.parent
    if relative_to == "data_dir" and not data_root.is_dir():
        raise MissingFileError(
            "le dossier de données de ce catalogue est introuvable.",
            path=data_root,
            hint="indiquez-le avec --data-dir ou la variable d'environnement DIAGNOSTIC_DATA.",
        )
    sources: dict[str, list[Source]] = {}
    for role, spec in raw["sources"].items():
        if role not in ROLES:
            near = closest(str(role), ROLES)
            raise CatalogError(
                f"rôle de source inconnu « {role} ».",
                path=path,
                hint=(f"vouliez-vous dire « {near} » ? " if near else "") + f"rôles possibles : {', '.join(ROLES)}.",
            )
        specs = spec if isinstance(spec, list) else [spec]
        if len(specs) > 1 and not ROLES[role]:
            raise CatalogError(f"le rôle « {role} » n'accepte qu'un seul fichier.", path=path)
        sources[role] = [_parse_source(role, s, base, path, [path.parent, data_root]) for s in specs]
    texts = raw.get("texts_dir", "textes")
    return Catalog(
        path=path,
        name=str(raw.get("name") or path.stem),
        fictional=_flag(raw.get("fictional", False), "fictional", path),
        sources=sources,
        data_dir=data_root,
        texts_dir=confine(path.parent / str(texts), [path.parent, data_root], "« texts_dir »", path),
        raw=raw,
    )


def _flag(value: Any, key: str, catalog_path: Path) -> bool:
    """A yes/no setting: a YAML boolean only (« "non" » is a text, which Python would read as true)."""
    if not isinstance(value, bool):
        raise CatalogError(f"« {key} » vaut « {value} » : true ou false est attendu.", path=catalog_path,
                           hint=f"écrivez « {key}: true » ou « {key}: false » (sans guillemets).")
    return value


_KNOWN_KEYS = {"path", "format", "columns", "indicators", "vintage", "producer", "url", "licence", "vintages"}


def _check_options(role: str, spec: dict[str, Any], catalog_path: Path) -> None:
    """Values the loaders would otherwise fail on with a Python error: indicators, crs, tolerance."""
    if "indicators" in spec:
        indicators = spec["indicators"]
        if not isinstance(indicators, dict) or (not indicators and role.endswith("_indicators")):
            raise CatalogError(f"« indicators » de « {role} » doit associer au moins un indicateur à sa colonne.",
                               path=catalog_path, hint="exemple : indicators: {poverty_rate: TP6021}")
        for key, value in indicators.items():
            if not (isinstance(value, str) or (isinstance(value, dict) and isinstance(value.get("column"), str))):
                raise CatalogError(
                    f"l'indicateur « {key} » de « {role} » doit donner le nom d'une colonne (reçu : {value!r}).",
                    path=catalog_path, hint=f"exemple : {key}: NOM_DE_COLONNE, ou {key}: {{column: NOM_DE_COLONNE}}")
    if spec.get("crs") is not None:
        from pyproj import CRS
        from pyproj.exceptions import CRSError as ProjError

        try:
            CRS.from_user_input(spec["crs"])
        except ProjError:
            raise CRSError(f"système de coordonnées « {spec['crs']} » inconnu pour « {role} ».", path=catalog_path,
                           hint="exemples : EPSG:2154 (Lambert-93), EPSG:4326 (longitude/latitude).") from None
    if "tolerance_m" in spec:
        value = spec["tolerance_m"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100_000:
            raise CatalogError(f"« tolerance_m » de « {role} » vaut « {value} » : un nombre de mètres est attendu.",
                               path=catalog_path, hint="exemple : tolerance_m: 1000")


def _parse_source(role: str, spec: Any, base: Path, catalog_path: Path, roots: list[Path]) -> Source:
    if not isinstance(spec, dict) or "path" not in spec:
        raise CatalogError(
            f"la source « {role} » doit être un dictionnaire avec au moins « path: ».",
            path=catalog_path,
        )
    _unknown_key(spec, SOURCE_KEYS, f"la source « {role} »", catalog_path)
    columns = spec.get("columns") or {}
    if not isinstance(columns, dict):
        raise CatalogError(f"« columns » de « {role} » doit être un dictionnaire.", path=catalog_path)
    _check_options(role, spec, catalog_path)
    options = {k: v for k, v in spec.items() if k not in _KNOWN_KEYS}
    for extra in FILE_OPTIONS:
        if extra in options:
            options[extra] = str(confine(base / str(options[extra]), roots, f"« {extra} » de « {role} »", catalog_path))
    earlier = tuple(
        sorted((_parse_vintage(role, v, spec, base, catalog_path, roots) for v in spec.get("vintages") or []),
               key=lambda e: e.vintage or "")
    )
    return Source(
        role=role,
        earlier=earlier,
        path=confine(base / str(spec["path"]), roots, f"le chemin de « {role} »", catalog_path),
        format=spec.get("format"),
        columns={str(k): str(v) for k, v in columns.items()},
        indicators=dict(spec.get("indicators") or {}),
        options=options,
        vintage=str(spec["vintage"]) if spec.get("vintage") is not None else None,
        producer=spec.get("producer"),
        url=spec.get("url"),
        licence=spec.get("licence"),
    )


def _parse_vintage(role: str, spec: Any, parent: dict, base: Path, catalog_path: Path, roots: list[Path]) -> Source:
    """One earlier vintage: its own path and vintage, the parent's other settings unless overridden."""
    if not isinstance(spec, dict) or "path" not in spec or "vintage" not in spec:
        raise CatalogError(
            f"chaque millésime de « {role} » (« vintages: ») doit donner « path: » et « vintage: ».",
            path=catalog_path,
        )
    merged = {k: v for k, v in parent.items() if k not in ("vintages", "indicators")}
    merged.update(spec)
    merged["indicators"] = {**(parent.get("indicators") or {}), **(spec.get("indicators") or {})}
    return _parse_source(role, merged, base, catalog_path, roots)
