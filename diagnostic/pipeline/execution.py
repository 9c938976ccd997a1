"""Running parameterised notebooks with papermill, with French errors that name the section.

:func:`execute_staged` is the one path of ``diagnostic run``, ``batch`` and
``evaluate``: the notebook runs into a staged folder, its report is exported
there, and the folder is swapped in whole (see :mod:`diagnostic._fs`).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
from jupyter_client import KernelManager
from papermill.exceptions import PapermillExecutionError

from diagnostic._fs import staged_folder
from diagnostic.errors import NotebookExecutionError

#: The kernel of the interpreter running the workbench (jupyter_client maps it to sys.executable).
KERNEL = "python3"
#: The kernel logs only errors (its start-up notices are not for officers) and keeps no history of cells,
#: which would record catalogue and data paths in ``~/.ipython/profile_default/history.sqlite``.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR", "--HistoryManager.enabled=False",
                    "--HistoryManager.hist_file=:memory:"]

_sockets_lock = threading.Lock()
_sockets_dir: str | None = None


def _sockets_folder() -> str:
    """This process's private folder (mode 700) for the kernels' Unix sockets, removed at exit."""
    global _sockets_dir
    with _sockets_lock:
        if _sockets_dir is None or not os.path.isdir(_sockets_dir):
            _sockets_dir = tempfile.mkdtemp(prefix="diagnostic-noyaux-")
            atexit.register(shutil.rmtree, _sockets_dir, ignore_errors=True)
        return _sockets_dir


class IpcKernelManager(KernelManager):
    """A kernel manager whose channels are Unix sockets with a name of their own, not TCP ports.

    jupyter_client picks free TCP ports by binding then releasing them, so two
    kernels started at once can pick the same port (« Address already in use »).
    Sockets named ``<private folder>/<uuid>-<n>`` cannot collide, and no other
    user of the machine can reach them. On Windows (no Unix sockets) TCP stays.
    """

    def __init__(self, **kwargs: Any) -> None:
        if os.name != "nt":
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", os.path.join(_sockets_folder(), uuid.uuid4().hex[:12]))
        super().__init__(**kwargs)


def start_kernel(kernel_name: str = KERNEL, timeout: float = 60) -> tuple[IpcKernelManager, Any]:
    """Start a kernel of the workbench (:class:`IpcKernelManager`) and its ready client."""
    km = IpcKernelManager(kernel_name=kernel_name)
    km.start_kernel(extra_arguments=KERNEL_ARGUMENTS)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=timeout)
    except RuntimeError:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        raise
    return km, kc


def failing_section(nb: nbformat.NotebookNode) -> tuple[str, int | None]:
    """The title of the level-2 section holding the first failed cell, and that cell's index."""
    section = "début du carnet"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            m = re.search(r"^##\s+(.+?)\s*$", cell.source, flags=re.MULTILINE)
            if m:
                section = m.group(1)
        elif any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return section, i
    return section, None


def execute(
    notebook: Path,
    output: Path,
    parameters: dict[str, Any],
    *,
    cwd: Path | None = None,
    progress: bool = False,
    **engine: Any,
) -> nbformat.NotebookNode:
    """Execute ``notebook`` into ``output``; on a failing cell, keep ``output`` and raise in French.

    ``engine`` goes to papermill (``engine_name`` and its options, e.g. a warm kernel).
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        return pm.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            kernel_name=KERNEL,
            cwd=str(cwd) if cwd else None,
            progress_bar=progress,
            log_output=False,
            **{"extra_arguments": KERNEL_ARGUMENTS, "kernel_manager_class": IpcKernelManager, **engine},
        )
    except PapermillExecutionError as exc:
        nb = nbformat.read(output, as_version=4)
        section, index = failing_section(nb)
        raise NotebookExecutionError(
            f"la section « {section} » a échoué (cellule {index if index is not None else exc.cell_index}) : "
            f"{exc.ename} : {exc.evalue}",
            path=output,
            hint="le carnet exécuté, avec l'erreur, est conservé à ce chemin ; ouvrez-le dans JupyterLab.",
        ) from None


def execute_staged(
    notebook: Path,
    output: Path,
    relative: str,
    parameters: dict[str, Any],
    *,
    executed: str,
    page: str,
    export: Mapping[str, Any],
    pdf: bool = False,
    keep: Sequence[str] = (),
    executor: Callable[..., Any] = execute,
    finish: Callable[[Path], None] | None = None,
) -> list[str]:
    """Execute ``notebook`` and export its report into a staged ``output/relative``; the names written.

    The notebook is saved as ``executed`` and gets the staged folder as
    ``output_dir``; the report ``page`` is exported with ``export`` (the keywords
    of :func:`diagnostic.report.export.export_html`), printed beside it as PDF with
    ``pdf``, then ``finish`` adds its files. A failing section raises
    :class:`NotebookExecutionError` (code 30) with the executed notebook kept in
    ``output/_echecs/relative/``; the previous output stays as it was.
    ``keep``: entries of the previous folder carried over (:func:`diagnostic._fs.swap_in`).
    """
    from diagnostic.report.export import export_html

    with staged_folder(output, relative, keep=keep) as folder:
        done = executor(notebook, folder / executed, {**parameters, "output_dir": str(folder)}, cwd=notebook.parent)
        report = export_html(done, folder / page, **export)  # the executed notebook as written, not read back
        if pdf:
            from diagnostic.report.pdf import write_pdf

            write_pdf(report, report.with_suffix(".pdf"))
        if finish is not None:
            finish(folder)
        return sorted(p.name for p in folder.iterdir())
