"""Reading an officer's files: one opener, confined to the allowed folders, regular files only, size-bounded.

Every file the workbench reads because a catalogue, a texts folder or a local file
names it goes through :func:`read_confined` (or is checked by :func:`confine` and
:func:`check_regular` before a library opens it): its real path (symbolic links
followed) must lie in one of the allowed folders unless ``--allow-outside`` was
given; it must be a regular file (a named pipe would block the reader forever, a
device would never end); and it is read up to a size limit. YAML is composed, its
aliases counted and its expanded size bounded, before anything is built from it.
"""

from __future__ import annotations

import copy
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from diagnostic.errors import CatalogError, EmptyFileError, MissingFileError, UnknownFormatError

#: Set (to 1) by ``--allow-outside``: catalogue paths may then leave the catalogue's and the data folder.
ALLOW_OUTSIDE_ENV = "DIAGNOSTIC_ALLOW_OUTSIDE"
#: Largest officer text, YAML file or keyword list read (bytes): far above any real one.
TEXT_LIMIT = 5 * 1024 * 1024
#: Largest image embedded from an officer's text (bytes).
IMAGE_LIMIT = 10 * 1024 * 1024
#: Largest data table read whole (bytes): the national BPE is about 300 MB.
DATA_LIMIT = 2 * 1024 * 1024 * 1024
#: Most nodes a YAML document may hold once its aliases are expanded (a catalogue has a few hundred).
YAML_NODES = 100_000
#: Most aliases (``*nom``) a YAML document may use.
YAML_ALIASES = 200


def allow_outside() -> bool:
    """Whether ``--allow-outside`` was given (inherited by kernels and local workers)."""
    return os.environ.get(ALLOW_OUTSIDE_ENV) == "1"


def outside_error(what: str, path: Path, folders: str) -> CatalogError:
    return CatalogError(
        f"{what} désigne un fichier hors {folders} : il n'est pas lu.",
        path=path,
        hint="placez le fichier dans ce dossier (pas un lien symbolique vers un autre dossier) ; si ce chemin est "
        "voulu, relancez avec --allow-outside.",
    )


def confine(target: Path, roots: list[Path], what: str, catalog_path: Path,
            folders: str = "du dossier du catalogue et du dossier de données") -> Path:
    """``target`` resolved, refused when it lies outside every folder of ``roots`` (unless allowed).

    A target that exists must be a regular file or a folder (see :func:`check_regular`).
    """
    resolved = Path(target).resolve()
    if not (allow_outside() or any(resolved.is_relative_to(Path(r).resolve()) for r in roots)):
        raise outside_error(what, catalog_path, folders)
    if resolved.exists() and not resolved.is_dir():
        check_regular(resolved, what)
    return resolved


def check_regular(path: Path, what: str = "ce fichier") -> None:
    """Refuse a named pipe, a socket or a device where a file is expected (reading one would block or never end)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UnknownFormatError(
            f"{what} n'est pas un fichier ordinaire (tube nommé, périphérique ou socket) : il n'est pas lu.",
            path=path, hint="donnez un fichier enregistré sur le disque (CSV, GeoJSON, YAML…).")


def read_confined(path: Path, what: str, *, roots: list[Path] | None = None, limit: int = TEXT_LIMIT,
                  folders: str = "du dossier du catalogue et du dossier de données") -> bytes:
    """The bytes of ``path``: inside ``roots`` (when given) after links, a regular file, at most ``limit`` bytes.

    The file is opened without blocking and checked once open, so a pipe swapped in
    between the check and the read is refused too.
    """
    path = Path(path)
    if roots is not None:
        confine(path, roots, what, path, folders)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise MissingFileError(f"{what} introuvable.", path=path) from None
    except IsADirectoryError:
        raise CatalogError(f"{what} : ce chemin est un dossier, pas un fichier.", path=path) from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if stat.S_ISDIR(info.st_mode):
            raise CatalogError(f"{what} : ce chemin est un dossier, pas un fichier.", path=path)
        if not stat.S_ISREG(info.st_mode):
            check_regular(path, what)
        if info.st_size > limit:
            raise _too_big(path, what, limit)
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise _too_big(path, what, limit)
    return data


def _too_big(path: Path, what: str, limit: int) -> UnknownFormatError:
    return UnknownFormatError(f"{what} dépasse la taille admise ({limit // (1024 * 1024)} Mo) : il n'est pas lu.",
                              path=path, hint="vérifiez qu'il s'agit du bon fichier.")


def decode_text(raw: bytes) -> str:
    """Text saved by any editor: UTF-8 (with or without BOM), UTF-16 with its BOM, else Windows-1252."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def load_yaml(raw: bytes | str, path: Path, what: str) -> Any:
    """Safe YAML, with aliases counted and the expanded document bounded before it is built (no alias bomb)."""
    loader = yaml.SafeLoader(raw)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, path, what)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{what} : YAML illisible ({exc}).", path=path) from None
    except RecursionError:
        raise CatalogError(f"{what} : le YAML est imbriqué trop profondément : il n'est pas lu.", path=path) from None
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node, path: Path, what: str) -> None:
    """Count the nodes ``root`` stands for once every alias is expanded; refuse beyond :data:`YAML_NODES`."""
    sizes: dict[int, int] = {}
    seen: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        key = id(node)
        seen[key] = seen.get(key, 0) + 1
        if key in sizes:
            return sizes[key]
        sizes[key] = 1  # a recursive alias counts once
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(v) for v in node.value)
        else:
            total = 1
        sizes[key] = total
        return total

    total = size(root)
    aliases = sum(n - 1 for n in seen.values())
    if total > YAML_NODES or aliases > YAML_ALIASES:
        raise CatalogError(
            f"{what} : le YAML se déplie en trop d'éléments ({total} éléments, {aliases} alias « * ») : "
            "il n'est pas lu.", path=path,
            hint=f"un fichier de l'atelier tient en quelques centaines d'éléments ; au plus {YAML_ALIASES} alias.")


def read_yaml(path: str | Path, what: str, roots: list[Path] | None = None, **where: str) -> Any:
    """A YAML file read through :func:`read_confined` and :func:`load_yaml`; French errors naming ``what``."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{what} introuvable.", path=path)
    if path.is_dir():
        found = ", ".join(sorted(p.name for p in path.glob("*.yaml"))[:5])
        raise CatalogError(f"{what} : ce chemin est un dossier, pas un fichier YAML.", path=path,
                           hint=f"donnez le fichier lui-même{f' (ici : {found})' if found else ''}.")
    raw = read_confined(path, what, roots=roots, **where)
    if not raw.strip():
        return None
    try:
        text = raw.decode("utf-8-sig") if not raw.startswith((b"\xff\xfe", b"\xfe\xff")) else raw.decode("utf-16")
    except UnicodeDecodeError:
        raise CatalogError(f"{what} : le fichier n'est pas du texte UTF-8 (un YAML est attendu).", path=path) from None
    key = hashlib.sha256(raw).digest()
    if key not in _PARSED:
        _PARSED[key] = load_yaml(text, path, what)
        while len(_PARSED) > PARSED_SIZE:
            _PARSED.pop(next(iter(_PARSED)))
    return copy.deepcopy(_PARSED[key])


#: Documents already parsed and checked, by the digest of their bytes: the rules files are read at every step
#: of a report, and a batch worker reads them for every commune. Callers get their own copy.
_PARSED: dict[bytes, Any] = {}
PARSED_SIZE = 64


def require_file(path: Path, role: str) -> None:
    """A data file named by a catalogue: present, regular, not empty (before a library opens it)."""
    if not path.exists():
        raise MissingFileError(
            f"le fichier de la source « {role} » est introuvable.",
            path=path,
            hint="vérifiez « path: » dans le catalogue, ou le dossier de données (--data-dir, DIAGNOSTIC_DATA).",
        )
    check_regular(path, f"le fichier de la source « {role} »")
    if path.is_file() and path.stat().st_size == 0:
        raise EmptyFileError("le fichier ne contient rien (0 octet).", path=path)
