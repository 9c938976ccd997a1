"""Writing outputs safely: atomic files, staged folders swapped in whole, a lock per output folder.

Every output of the workbench is written aside then renamed into place, so a
reader never sees half a file and a failure (or ``kill -9``) never destroys what
was already produced. Temporary entries are dot-prefixed and named so that
:func:`is_leftover` recognises them; a failed notebook is kept in
``<output>/_echecs/<path of its folder>/``.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import diagnostic
from diagnostic.errors import BatchError, NotebookExecutionError, ParameterError

#: Where failed notebooks are kept, inside the output folder.
FAILED_DIR = "_echecs"
#: The output folder's lock file (runs and evaluations share it, a batch holds it alone).
LOCK_FILE = ".diagnostic.lock"
#: How a file or folder being written ends.
TEMP_SUFFIX = ".tmp"
#: What marks the previous version of a folder while the new one is swapped in.
OLD_MARK = ".old-"


def cache_root() -> Path:
    """``DIAGNOSTIC_CACHE`` or the user's cache folder: tables and loaded catalogues kept between runs."""
    root = os.environ.get("DIAGNOSTIC_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "diagnostic"
    return Path(root)


#: The installed package's folder, whose files :func:`code_fingerprint` hashes.
PACKAGE_DIR = Path(diagnostic.__file__).resolve().parent


@functools.cache
def code_fingerprint(package: Path = PACKAGE_DIR) -> str:
    """A hash of the package's own source files and resources (tables, rules, templates): what an earlier
    version of the code cached is never reused."""
    h = hashlib.sha256()
    files = [p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
    for path in sorted(files):
        h.update(path.relative_to(package).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def write_private(path: Path, data: bytes) -> Path:
    """:func:`write_atomic_bytes` for a cache entry of this user only (mode 600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` beside ``path`` then rename, so readers never see half a file."""
    return write_atomic_bytes(path, text.encode("utf-8"))


def write_atomic_bytes(path: Path, data: bytes) -> Path:
    """:func:`write_atomic` for bytes (a PDF)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def temp_dir(parent: Path, name: str) -> Path:
    """A new empty folder in ``parent``, named as a leftover of ``name`` (readable by all, like a report)."""
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=parent, prefix=f".{name}.", suffix=TEMP_SUFFIX))
    folder.chmod(0o755)
    return folder


def is_leftover(path: Path) -> bool:
    """Whether ``path`` is a temporary entry a killed process left (from this module's names)."""
    name = Path(path).name
    return name.startswith(".") and (name.endswith(TEMP_SUFFIX) or OLD_MARK in name)


def swap_in(src: Path, dest: Path, *, keep: Sequence[str] = ()) -> Path:
    """Put folder ``src`` in the place of ``dest`` in two renames (never a half-written ``dest``).

    The entries of the previous ``dest`` named in ``keep`` that ``src`` does not
    hold are carried over (hard links), so that outputs of another command living
    in the folder survive. The previous version is deleted only once the new one
    is in place.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if dest.exists():
        _carry(dest, src, keep)
        old = src.with_name(f"{src.name.removesuffix(TEMP_SUFFIX)}{OLD_MARK}{os.getpid()}")
        os.replace(dest, old)
    os.replace(src, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return dest


def _carry(previous: Path, new: Path, keep: Sequence[str]) -> None:
    for name in keep:
        entry = previous / name
        if entry.exists() and not (new / name).exists():
            if entry.is_dir():
                shutil.copytree(entry, new / name, copy_function=_link)
            else:
                _link(entry, new / name)


def _link(src: str | Path, dest: str | Path) -> None:
    """A hard link where the file system allows it, a copy otherwise."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def clear(folder: Path, *, keep: Sequence[str] = ()) -> None:
    """Delete ``folder`` but for the entries named in ``keep``; the folder goes when nothing is left."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name not in keep:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    if not any(folder.iterdir()):
        folder.rmdir()


@contextmanager
def staged_folder(output: Path, relative: str, *, keep: Sequence[str] = ()) -> Iterator[Path]:
    """A new folder to write ``output/relative`` into; swapped in whole when the block succeeds.

    It is created in ``output`` itself (so that a batch there removes it if the
    process is killed). When the block raises :class:`NotebookExecutionError`, the
    folder replaces ``output/_echecs/relative`` instead, and the error's path is
    moved with it; on any other error it is deleted. Either way the previous
    output is untouched. A success also clears the failure kept for the same
    folder. ``keep``: see :func:`swap_in` (it applies to the kept failures too).
    """
    final, failed = output / relative, output / FAILED_DIR / relative
    tmp = temp_dir(output, relative.replace("/", "."))
    try:
        try:
            yield tmp
        except NotebookExecutionError as exc:
            swap_in(tmp, failed, keep=keep)
            if exc.path is not None and Path(exc.path).is_relative_to(tmp):
                exc.path = failed / Path(exc.path).relative_to(tmp)
            raise
        swap_in(tmp, final, keep=keep)
        clear(failed, keep=keep)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


#: Why a folder cannot be written, in French, by error number.
_REASONS = {errno.EACCES: "droits insuffisants", errno.EPERM: "droits insuffisants",
            errno.EROFS: "système de fichiers en lecture seule", errno.ENOTDIR: "un élément du chemin n'est pas un dossier",
            errno.ENOSPC: "disque plein", errno.EEXIST: "un fichier porte déjà ce nom", errno.ENOENT: "chemin introuvable"}


def _reason(exc: OSError) -> str:
    return _REASONS.get(exc.errno or 0, "erreur du système de fichiers")


@contextmanager
def output_lock(output: Path, *, exclusive: bool = False) -> Iterator[None]:
    """The output folder's lock: runs and evaluations share it, a batch holds it alone (released even on kill -9).

    A batch cleans the working folders killed runs left, so it must never start
    while a ``diagnostic run`` or ``evaluate`` writes into the same folder, nor
    one of them start during a batch.
    """
    if output.exists() and not output.is_dir():
        raise ParameterError("--output désigne un fichier, pas un dossier.", path=output,
                             hint="donnez un dossier (il est créé s'il n'existe pas).")
    try:
        output.mkdir(parents=True, exist_ok=True)
        lock = open(output / LOCK_FILE, "a")  # noqa: SIM115 — held for the whole block below
    except OSError as exc:  # no right, read-only file system, a file in the path, full disk…
        raise ParameterError(f"le dossier de sortie n'est pas accessible en écriture ({_reason(exc)}).", path=output,
                             hint="choisissez un dossier où vous pouvez écrire (--output).") from None
    with lock:
        try:
            fcntl.flock(lock, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            if exclusive:
                raise BatchError("un autre traitement (lot, diagnostic run ou evaluate) écrit déjà dans ce dossier.",
                                 path=output, hint="attendez sa fin, ou choisissez un autre dossier de sortie.") from None
            raise ParameterError("un traitement par lot écrit déjà dans ce dossier de sortie.", path=output,
                                 hint="attendez la fin du lot, ou choisissez un autre dossier (--output).") from None
        yield
