"""The Dask side of a batch: a client of a local cluster bound to this machine (or of ``--scheduler``),
and the results gathered as communes finish, ending when every worker is lost."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from diagnostic.errors import BatchError

#: The failure recorded for a commune left undone when every worker was lost.
NO_WORKER = "non traitée : plus aucun processus de calcul Dask n'était en vie (relancez le lot pour la reprendre)"


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None, dashboard: bool = False) -> Iterator[Any]:
    """A client of ``scheduler``, or of a local cluster: one single-threaded process per core.

    The local cluster (scheduler, workers and, with ``dashboard``, the Dask
    dashboard) listens on 127.0.0.1 only: nothing is reachable from another machine.
    """
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise BatchError(f"l'ordonnanceur Dask {scheduler} ne répond pas ({type(exc).__name__}).",
                             hint="vérifiez l'adresse donnée à --scheduler et que l'ordonnanceur est démarré.") from None
        with client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:8787" if dashboard else None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        if dashboard:
            print(f"Tableau de bord Dask (sur cette machine seulement) : {client.dashboard_link}", file=sys.stderr)
        yield client


def gather(client: Any, futures: dict[Any, str], timeout_s: float) -> Iterator[tuple[str, dict[str, Any]]]:
    """(code, manifest entry) as communes finish; stops when no worker has been alive for ``timeout_s``.

    A worker that dies takes its commune with it (an « échec »); when every
    worker is gone and none comes back in time, the communes left are reported
    as not done, so that the batch ends instead of waiting forever.
    """
    from distributed import wait

    pending = set(futures)
    alone_since: float | None = None
    while pending:
        try:
            done, pending = wait(pending, timeout=min(2.0, timeout_s), return_when="FIRST_COMPLETED")
        except TimeoutError:  # nothing finished in this poll
            done = set()
        for future in done:
            try:
                entry = future.result()
            except Exception as exc:  # noqa: BLE001 — the worker died (memory, signal): go on
                entry = {"statut": "echec", "fichiers": [], "erreur": f"{type(exc).__name__} : {exc}",
                         "chemin_erreur": None, "duree_s": None}
            yield futures[future], entry
        if not pending:
            return
        if client.scheduler_info().get("workers"):
            alone_since = None
        elif alone_since is None:
            alone_since = time.monotonic()
        elif time.monotonic() - alone_since >= timeout_s:
            client.cancel(list(pending))
            for future in sorted(pending, key=lambda f: futures[f]):
                yield futures[future], {"statut": "echec", "fichiers": [], "erreur": NO_WORKER,
                                        "chemin_erreur": None, "duree_s": None}
            raise NoWorkers(len(pending))


class NoWorkers(Exception):
    """Every worker was lost; carries how many communes were left."""
