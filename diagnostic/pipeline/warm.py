"""Warm Jupyter kernels: papermill runs many notebooks in one kernel, reset between runs.

Starting a kernel and importing the geospatial stack costs seconds; the work of
one commune costs a fraction of that. A :class:`WarmKernel` keeps one kernel
and its client alive; before each notebook it closes figures, moves to the
notebook's folder, forgets warnings already shown, resets IPython to a new
session (empty namespace, execution count back to 1) and checks that the user
namespace is empty. After a failed notebook the kernel is restarted, since a
failure may leave anything behind. :class:`WarmKernels` is the Dask worker
plugin holding one pool of them per worker.
"""

from __future__ import annotations

import pickle
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
from distributed import WorkerPlugin
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import Engine, papermill_engines
from papermill.log import logger

from diagnostic.errors import NotebookExecutionError
from diagnostic.io.territory import TerritoryData, load_territory
from diagnostic.pipeline.execution import KERNEL, execute, start_kernel

ENGINE = "diagnostic-noyau-chaud"
#: What a kernel keeps from one notebook to the next (the workbench's modules, the loaded catalogue, the tables in
#: memory) is moved out of the garbage collector's reach (``gc.freeze``) once a reset has collected the rest:
#: otherwise every collection, IPython's own after each notebook included, walks a region's tables again.
_RESET = """\
def _reset():
    import gc, os, sys, warnings
    os.chdir({cwd!r})
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")
    for module in list(sys.modules.values()):
        registry = getattr(module, "__warningregistry__", None)
        if isinstance(registry, dict):
            registry.clear()
    warnings.onceregistry.clear()
    get_ipython().reset(new_session=True)
    gc.freeze()
_reset()
"""
_PREPARE = """\
import gc
import diagnostic.analysis.commune, diagnostic.report.sections, diagnostic.report.exports
from diagnostic.io.territory import remember_territories
remember_territories()
gc.freeze()
"""
_LEFT = "sorted(k for k in get_ipython().user_ns if not k.startswith('_') and k not in get_ipython().user_ns_hidden)"


class WarmEngine(Engine):
    """papermill's nbclient engine on a kernel and client that outlive the notebook."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, *, kernel: WarmKernel, log_output=False,
                                 start_timeout=60, execution_timeout=None, **kwargs):
        client = PapermillNotebookClient(nb_man, km=kernel.km, kernel_name=kernel_name, log=logger,
                                         log_output=log_output, startup_timeout=start_timeout,
                                         timeout=execution_timeout)
        client.kc = kernel.kc  # nbclient then neither starts a client nor stops the kernel
        return client.execute()


papermill_engines.register(ENGINE, WarmEngine)


class KernelStateError(RuntimeError):
    """The kernel kept user variables after a reset."""


class WarmKernel:
    """One running kernel that executes notebooks one after another, isolated from each other."""

    def __init__(self, kernel_name: str = KERNEL, *, reused: bool = True) -> None:
        """``reused``: more notebooks follow, so a kernel that failed one is restarted (not for a single run)."""
        self.km, self.kc = start_kernel(kernel_name)
        self.reused = reused
        self.runs = 0
        self.shipped: Path | None = None
        self._prepare()

    def _prepare(self) -> None:
        """Import the workbench in the kernel and let it keep the catalogue loaded from one notebook to the next."""
        reply = self.kc.execute_interactive(_PREPARE, silent=True, store_history=False, timeout=120)
        if reply["content"]["status"] != "ok":
            raise KernelStateError(f"préparation du noyau impossible : {reply['content']}")

    def reset(self, cwd: Path | str) -> None:
        """Fresh IPython session in ``cwd``; raise if any user variable survived."""
        reply = self.kc.execute_interactive(
            _RESET.format(cwd=str(cwd)), silent=True, store_history=False,
            user_expressions={"left": _LEFT}, timeout=60,
        )
        content = reply["content"]
        left = content.get("user_expressions", {}).get("left", {})
        if content["status"] != "ok" or left.get("status") != "ok" or left["data"]["text/plain"] != "[]":
            raise KernelStateError(f"réinitialisation du noyau incomplète : {content} {left}")

    def execute(self, notebook: Path, output: Path, parameters: dict[str, Any], *,
                cwd: Path | None = None) -> nbformat.NotebookNode:
        """Like :func:`diagnostic.pipeline.execution.execute`, in this kernel, after a reset."""
        self.reset(cwd or Path(notebook).parent)
        self.runs += 1
        try:
            return execute(notebook, output, parameters, engine_name=ENGINE, kernel=self,
                           request_save_on_cell_execute=False)
        except NotebookExecutionError:
            if self.reused:
                self.restart()
            raise

    def remember(self, shipped: Path) -> None:
        """Give the kernel the territory pickled in ``shipped`` (by the batch, in its private folder), once."""
        if self.shipped == shipped:
            return
        code = (f"import gc, pickle\nfrom diagnostic.io.territory import remember_territories\n"
                f"with open({str(shipped)!r}, 'rb') as f:\n    remember_territories(pickle.load(f))\ngc.freeze()\n")
        reply = self.kc.execute_interactive(code, silent=True, store_history=False, timeout=120)
        if reply["content"]["status"] != "ok":
            raise KernelStateError(f"territoire non transmis au noyau : {reply['content']}")
        self.shipped = shipped

    def restart(self) -> None:
        self.km.restart_kernel(now=True)
        self.kc.wait_for_ready(timeout=60)
        self.shipped = None
        self._prepare()

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@contextmanager
def shipped(data: TerritoryData) -> Iterator[Path]:
    """``data`` pickled into a private folder (mode 700), removed afterwards: kernels read it
    (:meth:`WarmKernel.remember`) instead of loading the catalogue again (10 s for Hauts-de-France, 0.02 s so)."""
    folder = Path(tempfile.mkdtemp(prefix="diagnostic-territoire-"))
    try:
        path = folder / "territoire.pickle"
        path.write_bytes(pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def kernel_for(data: TerritoryData) -> Iterator[WarmKernel]:
    """A kernel for one run that already holds ``data``, the territory its caller loaded; shut down afterwards."""
    with shipped(data) as path:
        kernel = WarmKernel(reused=False)
        try:
            kernel.remember(path)
            yield kernel
        finally:
            kernel.shutdown()


class WarmKernels(WorkerPlugin):
    """Dask worker plugin: a pool of warm kernels (one per task thread) and the loaded territories."""

    name = "diagnostic-noyaux-chauds"

    def setup(self, worker=None) -> None:
        self._lock = threading.Lock()
        self._idle: list[WarmKernel] = []
        self._all: list[WarmKernel] = []
        self._territories: dict[tuple[str, str | None], TerritoryData] = {}

    def teardown(self, worker=None) -> None:
        for kernel in self._all:
            kernel.shutdown()
        self._all.clear()
        self._idle.clear()

    @contextmanager
    def kernel(self) -> Iterator[WarmKernel]:
        """A warm kernel for the calling thread; a kernel that breaks is replaced."""
        with self._lock:
            kernel = self._idle.pop() if self._idle else None
        if kernel is None:
            kernel = WarmKernel()
            with self._lock:
                self._all.append(kernel)
        healthy = False
        try:
            yield kernel
            healthy = True
        finally:
            with self._lock:
                if healthy or kernel.km.is_alive():
                    self._idle.append(kernel)
                else:
                    self._all.remove(kernel)
            if not healthy and not kernel.km.is_alive():
                kernel.shutdown()

    def territory(self, catalog: str, data_dir: str | None, shipped: Path | None = None) -> TerritoryData:
        """The catalogue's data, once per worker and batch: unpickled from ``shipped`` when this machine sees
        that file (the batch's own, loaded once), else loaded from the catalogue."""
        key = (catalog, data_dir)
        with self._lock:
            if key not in self._territories:
                if shipped is not None and shipped.is_file():
                    with shipped.open("rb") as f:
                        self._territories[key] = pickle.load(f)
                else:
                    self._territories[key] = load_territory(catalog, data_dir)
            return self._territories[key]
