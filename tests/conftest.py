"""Shared fixtures: paths to the real extracts, the demo catalogue, and an offline headless browser."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.util import CHROMIUM, DEMO_CATALOG, HDF, OCCITANIE, REAL, cache_in


@pytest.fixture
def real_dir() -> Path:
    """The real open-data extracts; tests needing them skip on a clone without ../shared."""
    if not (REAL / "PROVENANCE.md").exists():
        pytest.skip(f"extraits réels absents ({REAL}) : ce test nécessite ../shared/data/real à côté du dépôt")
    return REAL


@pytest.fixture(scope="session")
def occitanie():
    """The loaded Occitanie territory (real extract), shared by the tests of a session."""
    if not (REAL / "PROVENANCE.md").exists():
        pytest.skip(f"extraits réels absents ({REAL})")
    from diagnostic.io.territory import load_territory

    return load_territory(OCCITANIE)


@pytest.fixture(scope="session")
def demo():
    from diagnostic.io.territory import load_territory

    return load_territory(DEMO_CATALOG)


@dataclass
class PageLog:
    """What an offline page did: requests that left file://, console errors, page errors."""

    external_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def indicator_cache(tmp_path_factory) -> Iterator[Path]:
    """A fresh indicator cache for the tests of one module, so that no earlier run's tables are reused."""
    with cache_in(tmp_path_factory.mktemp("cache")) as path:
        yield path


@pytest.fixture(scope="session")
def _browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium absent : « make test » l'installe (paquet Debian chromium)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield browser
        browser.close()


@pytest.fixture
def offline_page(_browser):
    """Open local files with every non-file request blocked and logged.

    Usage: ``page, log = offline_page(path)``; the page is loaded and settled.
    """
    contexts = []

    def open_page(path: Path, wait_ms: int = 500):
        context = _browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        log = PageLog()

        def route(r):
            url = r.request.url
            if url.startswith(("file://", "data:", "blob:", "about:")):
                return r.continue_()
            log.external_requests.append(url)
            return r.abort()

        context.route("**/*", route)
        page.on("console", lambda m: m.type == "error" and log.console_errors.append(m.text))
        page.on("pageerror", lambda e: log.page_errors.append(str(e)))
        page.goto(Path(path).resolve().as_uri(), wait_until="load")
        page.wait_for_timeout(wait_ms)
        return page, log

    yield open_page
    for c in contexts:
        c.close()


# The reports that several test files read, each produced once per session (run, evaluation, batch index).
def _skip_without_real() -> None:
    if not (REAL / "PROVENANCE.md").exists():
        pytest.skip(f"extraits réels absents ({REAL}) : ce test nécessite ../shared/data/real à côté du dépôt")


@pytest.fixture(scope="session")
def report_cache(tmp_path_factory):
    """One indicator cache for the shared reports."""
    with cache_in(tmp_path_factory.mktemp("cache-rapports")) as path:
        yield path


def _once(tmp_path_factory, name: str, build: Callable[[Path], Path]) -> Path:
    """``build(folder)`` once per test run, even across pytest-xdist processes: the first process to ask
    builds it while the others wait on a lock, then every process reads the same files (which no test modifies)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the processes of this run
    folder, done = root / f"partage-{name}", root / f"partage-{name}.fait"
    with open(root / f"partage-{name}.verrou", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            done.write_text(str(build(folder)), encoding="utf-8")
        return Path(done.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def demo_report(tmp_path_factory, report_cache) -> Path:
    """The demo diagnostic with its PDF."""
    pytest.importorskip("playwright.sync_api")
    from diagnostic.pipeline.run import run_commune

    return _once(tmp_path_factory, "rapport-demo", lambda out: run_commune(DEMO_CATALOG, "99101", out, pdf=True).folder)


@pytest.fixture(scope="session")
def toulouse_report(tmp_path_factory, report_cache) -> Path:
    """Toulouse (real Occitanie extract) with its PDF."""
    _skip_without_real()
    from diagnostic.pipeline.run import run_commune

    return _once(tmp_path_factory, "rapport-toulouse", lambda out: run_commune(OCCITANIE, "31555", out, pdf=True).folder)


@pytest.fixture(scope="session")
def lille_report(tmp_path_factory, report_cache) -> Path:
    """Lille (real Hauts-de-France extract: QPVs as tables, without outlines)."""
    _skip_without_real()
    from diagnostic.pipeline.run import run_commune

    return _once(tmp_path_factory, "rapport-lille", lambda out: run_commune(HDF, "59350", out).folder)


@pytest.fixture(scope="session")
def evaluation_report(tmp_path_factory, report_cache) -> Path:
    """The demo evaluation (second half of 2025) with its PDF."""
    from diagnostic.pipeline.evaluate import run_evaluation

    return _once(tmp_path_factory, "evaluation", lambda out: run_evaluation(
        DEMO_CATALOG, "99101", "2025-07-01", "2025-12-31", out, pdf=True))


@pytest.fixture(scope="session")
def batch_index(tmp_path_factory, report_cache) -> Path:
    """The index page of a one-commune demo batch."""
    from diagnostic.pipeline.batch import run_batch

    def build(out: Path) -> Path:
        run_batch(DEMO_CATALOG, out, communes=["99102"], workers=1, quiet=True)
        return out / "index.html"

    return _once(tmp_path_factory, "lot", build)
