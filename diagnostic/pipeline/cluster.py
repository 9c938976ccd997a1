"""The Dask side of a batch: a client of a local cluster bound to this machine (or of ``--scheduler``),
and the results gathered as communes finish, ending when every worker or the scheduler is lost.

Dask's scheduler and workers always start an HTTP server (logs, ``/metrics``,
call stacks, ``/json/identity.json``), even without a dashboard. The local
cluster here runs them without it: nothing listens on HTTP unless ``--dashboard``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import distributed

from diagnostic.errors import BatchError, ParameterError

#: The failure recorded for a commune left undone when every worker was lost.
NO_WORKER = "non traitée : plus aucun processus de calcul Dask n'était en vie (relancez le lot pour la reprendre)"
#: The failure recorded for a commune left undone when the scheduler stopped answering.
NO_SCHEDULER = "non traitée : l'ordonnanceur Dask ne répond plus (relancez le lot pour la reprendre)"
#: What calls to a scheduler that is gone raise.
GONE = (OSError, TimeoutError, concurrent.futures.CancelledError, asyncio.CancelledError)
#: The local dashboard's address, with ``--dashboard``.
DASHBOARD = "127.0.0.1:8787"


def check_scheduler_address(address: str) -> None:
    """Raise :class:`ParameterError` (code 22) unless ``address`` reads as a Dask address (``tcp://hote:port``)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        protocol, location = parse_address(address.strip())
        if any(c.isspace() for c in address.strip()) or not location:
            raise ValueError(address)
        if protocol in ("tcp", "tls", "ws", "wss"):
            host, port = parse_host_port(location)
            if not host or not 0 < int(port) < 65536:
                raise ValueError(address)
    except (ValueError, TypeError):
        raise ParameterError(f"adresse d'ordonnanceur Dask invalide : « {address} ».",
                             hint="donnez --scheduler sous la forme tcp://hote:port (ex. tcp://127.0.0.1:8786).") from None


class Scheduler(distributed.Scheduler):
    """Dask's scheduler, with its HTTP server only when given a dashboard address."""

    def start_http_server(self, routes, dashboard_address, default_port=0, ssl_options=None):
        if dashboard_address is not None:
            super().start_http_server(routes, dashboard_address, default_port, ssl_options)


class Worker(distributed.Worker):
    """Dask's worker, with its HTTP server only when given a dashboard address."""

    def start_http_server(self, routes, dashboard_address, default_port=0, ssl_options=None):
        if dashboard_address is not None:
            super().start_http_server(routes, dashboard_address, default_port, ssl_options)


@contextmanager
def local_cluster(workers: int | None = None, dashboard: bool = False) -> Iterator[Any]:
    """A local Dask cluster on 127.0.0.1: one single-threaded process per core, no HTTP server without ``dashboard``."""
    n = workers or os.cpu_count() or 1
    worker = {"cls": distributed.Nanny, "options": {
        "host": "127.0.0.1", "nthreads": 1, "worker_class": Worker, "dashboard_address": None,
        "dashboard": False, "silence_logs": logging.ERROR,
        "memory_limit": distributed.system.MEMORY_LIMIT // n}}
    scheduler = {"cls": Scheduler, "options": {
        "host": "127.0.0.1", "port": 0, "dashboard": dashboard, "dashboard_address": DASHBOARD if dashboard else None}}
    with distributed.SpecCluster(scheduler=scheduler, workers=dict.fromkeys(range(n), worker), worker=worker,
                                 silence_logs=logging.ERROR, name="diagnostic") as cluster:
        yield cluster


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None, dashboard: bool = False,
                timeout_s: float = 30.0) -> Iterator[Any]:
    """A client of ``scheduler``, or of a :func:`local_cluster`; Dask's own logs silenced.

    The local cluster (scheduler, workers and, with ``dashboard``, the Dask
    dashboard) listens on 127.0.0.1 only: nothing is reachable from another machine.
    ``timeout_s`` bounds the wait for a scheduler, at start or when it stops answering.
    """
    logs = [logging.getLogger(name) for name in ["distributed", *logging.root.manager.loggerDict]
            if name.startswith("distributed.")]
    levels = [log.level for log in logs]
    for log in logs:  # a lost scheduler is told in French (NO_SCHEDULER), not as tracebacks
        log.setLevel(logging.CRITICAL)
    try:
        if scheduler:
            try:
                client = distributed.Client(scheduler, timeout=f"{timeout_s}s")
            except GONE as exc:
                raise BatchError(f"l'ordonnanceur Dask {scheduler} ne répond pas ({type(exc).__name__}).",
                                 hint="vérifiez l'adresse donnée à --scheduler et que l'ordonnanceur est démarré."
                                 ) from None
            try:
                yield client
            finally:
                with suppress(*GONE):
                    client.close(timeout=timeout_s)
            return
        with local_cluster(workers, dashboard) as cluster, distributed.Client(cluster) as client:
            if dashboard:
                print(f"Tableau de bord Dask (sur cette machine seulement) : {client.dashboard_link}", file=sys.stderr)
            yield client
    finally:
        for log, level in zip(logs, levels):
            log.setLevel(level)


def _workers_alive(client: Any) -> bool | None:
    """Whether the scheduler knows a live worker; None when the scheduler does not answer."""
    if client.status != "running":
        return None
    try:
        return bool(client.scheduler_info().get("workers"))
    except GONE:
        return None


def gather(client: Any, futures: dict[Any, str], timeout_s: float) -> Iterator[tuple[str, dict[str, Any]]]:
    """(code, manifest entry) as communes finish; stops when no worker has been alive for ``timeout_s``.

    A worker that dies takes its commune with it (an « échec »); when every
    worker is gone and none comes back in time, or the scheduler stops
    answering, the communes left are reported as not done and :class:`NoWorkers`
    is raised, so that the batch ends instead of waiting forever.
    """
    pending = set(futures)
    alone_since: float | None = None
    while pending:
        done: set[Any] = set()
        try:
            done, pending = distributed.wait(pending, timeout=min(2.0, timeout_s), return_when="FIRST_COMPLETED")
        except GONE:  # the scheduler is gone: its futures with it
            pass
        alive = _workers_alive(client)
        if alive is None:  # results are fetched through the scheduler: every commune not yielded is lost
            yield from _left_undone(client, futures, pending | done, NO_SCHEDULER)
        for future in done:
            try:
                entry = future.result()
            except Exception as exc:  # noqa: BLE001 — the worker died (memory, signal): go on
                entry = {"statut": "echec", "fichiers": [], "erreur": f"{type(exc).__name__} : {exc}",
                         "chemin_erreur": None, "duree_s": None}
            yield futures[future], entry
        if not pending:
            return
        if alive:
            alone_since = None
        elif alone_since is None:
            alone_since = time.monotonic()
        elif time.monotonic() - alone_since >= timeout_s:
            yield from _left_undone(client, futures, pending, NO_WORKER)


def _left_undone(client: Any, futures: dict[Any, str], left: set[Any], reason: str
                 ) -> Iterator[tuple[str, dict[str, Any]]]:
    """Cancel ``left``, yield each commune as a failure for ``reason``, then raise :class:`NoWorkers`."""
    with suppress(*GONE):
        client.cancel(list(left))
    for future in sorted(left, key=lambda f: futures[f]):
        yield futures[future], {"statut": "echec", "fichiers": [], "erreur": reason,
                                "chemin_erreur": None, "duree_s": None}
    raise NoWorkers(len(left), reason)


class NoWorkers(Exception):
    """Every worker, or the scheduler, was lost; carries how many communes were left and why."""

    def __init__(self, left: int, reason: str = NO_WORKER) -> None:
        super().__init__(left, reason)
        self.left, self.reason = left, reason
