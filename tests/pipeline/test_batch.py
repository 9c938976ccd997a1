"""``diagnostic batch``: same outputs as ``diagnostic run``, failures isolated, resumable, incremental."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from diagnostic import cli
from diagnostic._fs import FAILED_DIR, LOCK_FILE
from diagnostic.analysis.recommend import LOCAL_FILE
from diagnostic.io.catalog import PROJECT_ROOT
from diagnostic.pipeline.batch import run_batch
from diagnostic.pipeline.manifest import MANIFEST, read_manifest
from diagnostic.pipeline.run import NOTEBOOK, run_commune
from diagnostic.report.batch_index import INDEX
from tests.util import DEMO_CATALOG, OCCITANIE

_IDS = re.compile(r"_[0-9a-f]{32}(?![0-9a-f])")
_DATE = re.compile(r"\b\d{2}/\d{2}/\d{4}\b")


@pytest.fixture(scope="module")
def cluster():
    """A Dask cluster started by the tests, given to the batch as ``--scheduler``."""
    from diagnostic.pipeline.cluster import local_cluster

    with local_cluster(workers=2) as c:
        yield c.scheduler_address


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    """A private copy of the demo territory, so tests may add officer files beside it."""
    dest = tmp_path_factory.mktemp("demo") / "demo"
    shutil.copytree(DEMO_CATALOG.parent, dest)
    return dest


@pytest.fixture(scope="module")
def demo_batch(demo_dir, cluster, tmp_path_factory):
    output = tmp_path_factory.mktemp("lot")
    result = run_batch(demo_dir / "catalogue.yaml", output, communes=["99101", "99102"], scheduler=cluster, quiet=True)
    return result


def _run_commune_on(cluster: str, catalog, codes: list[str], output: Path) -> list:
    """The ``diagnostic run`` references, two at a time on the test cluster (each one a cold kernel)."""
    from distributed import Client

    with Client(cluster) as client:
        return client.gather(client.map(run_commune, [catalog] * len(codes), codes, [output] * len(codes), pure=False))


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _report(path: Path) -> str:
    """The report without what differs between two runs: the date and folium's random element ids."""
    return _DATE.sub("DATE", _IDS.sub("_ID", path.read_text(encoding="utf-8")))


def _no_leftovers(output: Path) -> None:
    hidden = [p.name for d in (output, output / FAILED_DIR) if d.is_dir() for p in d.iterdir()
              if p.name.startswith(".") and p.name != LOCK_FILE]
    assert hidden == []


def test_demo_same_as_run(demo_batch, demo_dir, cluster, tmp_path):
    assert demo_batch.exit_code == 0
    assert sorted(demo_batch.codes("ok")) == ["99101", "99102"]
    refs = _run_commune_on(cluster, demo_dir / "catalogue.yaml", ["99101", "99102"], tmp_path)
    for code, ref in zip(["99101", "99102"], refs):  # 99102 has no QPV: the report runs at commune level
        got = demo_batch.output / code
        assert _json(got / "resultats.json") == _json(ref.folder / "resultats.json")
        assert sorted(p.name for p in got.iterdir()) == ref.files
        assert _report(got / "rapport.html") == _report(ref.folder / "rapport.html")
        counts = [c.get("execution_count") for c in nbformat.read(got / "diagnostic.ipynb", 4).cells]
        assert counts == [c.get("execution_count") for c in nbformat.read(ref.folder / "diagnostic.ipynb", 4).cells]
    assert _json(demo_batch.output / "99102" / "resultats.json")["niveau_d_analyse"] == "commune"
    manifest = read_manifest(demo_batch.output)
    entry = manifest["communes"]["99101"]
    assert entry["statut"] == "ok" and len(entry["empreinte"]) == 64 and "rapport.html" in entry["fichiers"]
    assert entry["duree_s"] > 0 and entry["erreur"] is None
    _no_leftovers(demo_batch.output)


@pytest.mark.real
def test_occitanie_same_as_run(occitanie, toulouse_report, cluster, tmp_path):
    codes = ["31555", "09122", "82121"]
    result = run_batch(OCCITANIE, tmp_path / "lot", communes=codes, scheduler=cluster, quiet=True)
    assert result.codes("ok") == codes
    refs = [toulouse_report, *(r.folder for r in _run_commune_on(cluster, OCCITANIE, codes[1:], tmp_path / "run"))]
    for code, ref in zip(codes, refs):  # Toulouse: the session's ``diagnostic run`` report
        assert _json(tmp_path / "lot" / code / "resultats.json") == _json(ref / "resultats.json")
    page = (tmp_path / "lot" / INDEX).read_text(encoding="utf-8")
    assert all(f'href="{c}/rapport.html"' in page for c in codes)


def test_rerun_skips_then_reruns_what_changed(demo_batch, demo_dir, cluster, tmp_path, capsys):
    output = tmp_path / "lot"
    shutil.copytree(demo_batch.output, output)
    before = {c: (output / c / "rapport.html").stat().st_mtime_ns for c in ("99101", "99102")}
    args = ["batch", "--catalog", str(demo_dir / "catalogue.yaml"), "--communes", "99101,99102",
            "--output", str(output), "--scheduler", cluster]
    assert cli.main(args) == 0
    assert "0\u00a0rapport produit, 2\u00a0inchangés, 0\u00a0échec." in capsys.readouterr().out
    assert {c: (output / c / "rapport.html").stat().st_mtime_ns for c in before} == before
    assert {e["statut"] for e in read_manifest(output)["communes"].values()} == {"ignore"}
    local = demo_dir / LOCAL_FILE
    local.write_text('par_commune:\n  "99101":\n    retirer: [gouvernance]\n', encoding="utf-8")
    try:
        result = run_batch(demo_dir / "catalogue.yaml", output, communes=["99101", "99102"], scheduler=cluster,
                           quiet=True)
    finally:
        local.unlink()
    assert result.codes("ok") == ["99101"] and result.codes("ignore") == ["99102"]
    assert (output / "99102" / "rapport.html").stat().st_mtime_ns == before["99102"]
    ids = {r["id"] for r in _json(output / "99101" / "resultats.json")["recommandations"]}
    assert "gouvernance" not in ids
    assert cli.main([*args, "--quiet", "--band-m", "250"]) == 0  # a parameter touches both
    assert {e["statut"] for e in read_manifest(output)["communes"].values()} == {"ok"}
    assert capsys.readouterr().out == ""


def _notebook_with(tmp_path: Path, *sources: str) -> Path:
    """A copy of the diagnostic notebook with extra code cells after the parameters (test-only)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])) + 1
    nb.cells[at:at] = [nbformat.v4.new_code_cell(s) for s in sources]
    path = tmp_path / "carnet" / NOTEBOOK.name
    path.parent.mkdir()
    nbformat.write(nb, path)
    return path


def test_failure_isolated_and_kernel_state_reset(tmp_path, capsys):
    notebook = _notebook_with(
        tmp_path,
        # Isolation: a variable left by the previous commune in the same warm kernel would fail here.
        'assert "laisse_par_la_commune_precedente" not in globals(), "état du noyau non réinitialisé"\n'
        "laisse_par_la_commune_precedente = commune\n"
        "import os\n"
        'open(os.path.join(output_dir, "noyau.txt"), "w").write(str(os.getpid()))',
        'if commune == "99102":\n    raise ValueError("panne voulue pour le test")',
    )
    output = tmp_path / "lot"
    result = run_batch(DEMO_CATALOG, output, communes=["99101", "99103", "99102"], workers=1, quiet=True,
                       notebook=notebook)
    assert result.codes("ok") == ["99101", "99103"] and result.codes("echec") == ["99102"]
    assert result.exit_code != 0
    pids = {(output / c / "noyau.txt").read_text() for c in ("99101", "99103")}
    assert len(pids) == 1  # both ran in the same warm kernel, one after the other
    failed = result.entries["99102"]
    assert "panne voulue" in failed["erreur"] and "section" in failed["erreur"]
    kept = Path(failed["chemin_erreur"])
    assert kept == output / FAILED_DIR / "99102" / "diagnostic.ipynb" and kept.exists()
    assert not (output / "99102").exists()
    page = (output / INDEX).read_text(encoding="utf-8")
    assert "panne voulue" in page and 'href="99101/rapport.html"' in page
    _no_leftovers(output)


def _wait_for(predicate, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("délai dépassé")


_GATE = """\
import os, pathlib, time
gate = pathlib.Path({gate!r})
try:
    os.close(os.open(gate / "premiere", os.O_CREAT | os.O_EXCL))  # the first commune goes through
except FileExistsError:  # the others wait until the test opens the gate (or kills the batch)
    (gate / f"attente-{{commune}}").touch()
    while not (gate / "ouvert").exists():
        time.sleep(0.1)
"""


def test_killed_batch_resumes(cluster, tmp_path):
    """Killed (``kill -9``) with one commune done and the next one mid-notebook, the batch resumes the rest.

    The moment of the kill is set by events, not by timing: the notebook lets the
    first commune through and holds the others until the test opens the gate.
    """
    gate = tmp_path / "portillon"
    gate.mkdir()
    notebook = _notebook_with(tmp_path, _GATE.format(gate=str(gate)))
    output = tmp_path / "lot"
    script = (f"from diagnostic.pipeline.batch import run_batch\n"
              f"run_batch({str(DEMO_CATALOG)!r}, {str(output)!r}, all_communes=True, workers=1, quiet=True, "
              f"notebook={str(notebook)!r})")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT_ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def one_done_next_held() -> bool:
            try:
                entries = read_manifest(output)["communes"].values()
            except (OSError, ValueError):
                return False
            return any(e["statut"] == "ok" for e in entries) and any(gate.glob("attente-*"))

        _wait_for(one_done_next_held, 300)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = [c for c, e in read_manifest(output)["communes"].items() if e["statut"] == "ok"]
    assert len(done) == 1
    assert any(p.name.endswith(".tmp") for p in output.glob(".*"))  # the held commune's working folder, left
    (gate / "ouvert").touch()
    result = run_batch(DEMO_CATALOG, output, all_communes=True, scheduler=cluster, quiet=True, notebook=notebook)
    assert result.exit_code == 0
    assert sorted(result.codes("ignore")) == sorted(done)
    assert sorted(result.codes("ok") + result.codes("ignore")) == ["99101", "99102", "99103"]
    _no_leftovers(output)
    assert sorted(p.name for p in output.iterdir() if not p.name.startswith(".")) == [
        "99101", "99102", "99103", INDEX, MANIFEST]
    for code in ("99101", "99102", "99103"):
        files = read_manifest(output)["communes"][code]["fichiers"]
        assert sorted(p.name for p in (output / code).iterdir()) == files


@pytest.mark.browser
def test_index_offline(demo_batch, offline_page):
    page, log = offline_page(demo_batch.output / INDEX, wait_ms=800)
    hrefs = page.eval_on_selector_all("table a", "els => els.map(e => e.getAttribute('href'))")
    assert sorted(hrefs) == ["99101/rapport.html", "99102/rapport.html"]
    assert all((demo_batch.output / h).exists() for h in hrefs)
    assert page.locator(".leaflet-container").count() == 1
    assert page.locator("path.diag-commune-apercu").count() == 2
    page.locator("table.triable th button").nth(0).click()
    page.locator("table.triable th button").nth(0).click()
    first = page.locator("table.triable tbody tr td").first.inner_text()
    assert first == "99102"
    assert log.console_errors == [] and log.page_errors == [] and log.external_requests == []


def test_keep_parameters_reproduces_an_export(demo_batch, demo_dir, cluster, tmp_path):
    """A report exported with its own parameters (as the explorer does) is regenerated with them."""
    output = tmp_path / "lot"
    shutil.copytree(demo_batch.output, output)
    catalog = demo_dir / "catalogue.yaml"
    run_commune(catalog, "99101", output, band_m=200.0, qpv_codes=["QN09901A", "QN09902B"])
    exported = _json(output / "99101" / "resultats.json")
    result = run_batch(catalog, output, communes=["99101", "99102"], scheduler=cluster, quiet=True,
                       force=True, keep_parameters=True)
    assert result.exit_code == 0
    assert _json(output / "99101" / "resultats.json") == exported
    assert _json(output / "99101" / "parametres.json")["band_m"] == 200.0
    assert _json(output / "99102" / "parametres.json")["band_m"] == 300.0
    run_batch(catalog, output, communes=["99101"], scheduler=cluster, quiet=True, force=True)
    assert _json(output / "99101" / "parametres.json")["band_m"] == 300.0  # without the flag: the batch's own


@pytest.mark.parametrize("killed", ["worker", "scheduler"])
def test_batch_ends_when_dask_is_lost(killed, tmp_path):
    """With ``--scheduler`` and its only worker, or the scheduler, killed: the batch stops in bounded time,
    code 31, a French message and no traceback, the manifest and index written."""
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                 env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = batch = None
    try:
        _wait_for(scheduler_file.exists, 60)
        _wait_for(lambda: bool(scheduler_file.read_text()), 10)
        address = json.loads(scheduler_file.read_text())["address"]
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--no-nanny",
                                   "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"], env=env,
                                  start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        output = tmp_path / "lot"
        batch = subprocess.Popen([sys.executable, "-m", "diagnostic", "batch", "--catalog", str(DEMO_CATALOG),
                                  "--all", "--output", str(output), "--scheduler", address, "--quiet",
                                  "--worker-timeout", "5"], cwd=PROJECT_ROOT, env=env, start_new_session=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for(lambda: any(p.name.endswith(".tmp") for p in output.glob(".*")), 180)  # a commune under way
        os.killpg((worker if killed == "worker" else scheduler).pid, signal.SIGKILL)  # with the worker: its kernel
        killed_at = time.monotonic()
        _, err = batch.communicate(timeout=120)
        assert time.monotonic() - killed_at < 60
        assert batch.returncode == 31, err
        lost = "plus aucun processus de calcul Dask" if killed == "worker" else "l'ordonnanceur Dask ne répond plus"
        assert f"Lot arrêté : {lost}" in err and "Traceback" not in err and "Error" not in err
        entries = read_manifest(output)["communes"]
        assert sorted(entries) == ["99101", "99102", "99103"]
        assert all(e["statut"] in ("ok", "echec") for e in entries.values())
        assert (output / INDEX).exists()
    finally:
        for proc in (batch, worker, scheduler):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--scheduler", "foo bar", "adresse d'ordonnanceur Dask invalide : « foo bar »"),
    ("--worker-timeout", "-5", "--worker-timeout doit être une durée positive"),
    ("--workers", "0", "--workers doit être un nombre entier d'au moins 1"),
])
def test_batch_refuses_bad_dask_options_before_any_work(option, value, message, tmp_path, capsys):
    output = tmp_path / "lot"
    start = time.monotonic()
    assert cli.main(["batch", "--catalog", str(DEMO_CATALOG), "--all", "--output", str(output), option, value]) == 22
    assert time.monotonic() - start < 10  # the checks come before the catalogue, the cluster and the kernels
    err = capsys.readouterr().err
    assert message in err and "Erreur inattendue" not in err
    assert not output.exists()


def _listening(psutil) -> list:
    """The TCP addresses this process and its children listen on."""
    processes = [psutil.Process(), *psutil.Process().children(recursive=True)]
    return [c.laddr for p in processes for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]


def test_local_cluster_listens_on_this_machine_only():
    psutil = pytest.importorskip("psutil")
    from distributed import Scheduler

    from diagnostic.pipeline.cluster import dask_client

    with dask_client(workers=1) as client:  # no dashboard: no HTTP server at all (/metrics, identity, logs)
        info = client.scheduler_info()
        assert info["services"] == {}
        (address, worker), = info["workers"].items()
        ours = {int(a.rsplit(":", 1)[1]) for a in (info["address"], address, worker["nanny"])}
        dask_ports = {int(a.rsplit(":", 1)[1]) for s in Scheduler._instances if s.address  # with the module's cluster
                      for a in [s.address, *s.workers, *(w.nanny for w in s.workers.values() if w.nanny)]}
        listening = {a.port for a in _listening(psutil)}
        assert ours <= listening <= dask_ports  # schedulers, workers and nannies: Dask's protocol, nothing else
        assert {a.ip for a in _listening(psutil)} == {"127.0.0.1"}
    with dask_client(workers=1, dashboard=True) as client:
        info = client.scheduler_info()
        assert all(a.startswith("tcp://127.0.0.1:") for a in [info["address"], *info["workers"]])
        assert client.dashboard_link.startswith("http://127.0.0.1:")
        listening = _listening(psutil)
        assert info["services"]["dashboard"] in {a.port for a in listening}
        assert listening and {a.ip for a in listening} == {"127.0.0.1"}


def test_sixteen_kernels_started_at_once_all_run():
    """Kernels started together cannot collide on a port (they once did: « Address already in use »)."""
    from concurrent.futures import ThreadPoolExecutor

    from diagnostic.pipeline.execution import start_kernel

    # start_kernel is what run, batch and the warm kernels start their kernels with.

    def start_and_run(i: int) -> tuple[str, str]:
        km, kc = start_kernel()
        try:
            reply = kc.execute_interactive(f"n = {i} * 3", user_expressions={"n": "n"}, timeout=60)
            return km.transport, reply["content"]["user_expressions"]["n"]["data"]["text/plain"]
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(start_and_run, range(16)))
    assert results == [("ipc", str(i * 3)) for i in range(16)]


def test_run_and_batch_share_one_lock(tmp_path):
    from diagnostic._fs import output_lock
    from diagnostic.errors import BatchError, ParameterError

    output = tmp_path / "lot"
    with output_lock(output):  # a diagnostic run writing there
        (output / ".99101.abcd.tmp").mkdir()
        with pytest.raises(BatchError):
            run_batch(DEMO_CATALOG, output, communes=["99101"], quiet=True)
        assert (output / ".99101.abcd.tmp").is_dir(), "the run's working folder must survive"
    with output_lock(output, exclusive=True):  # a batch writing there
        with pytest.raises(ParameterError) as err:
            run_commune(DEMO_CATALOG, "99101", output)
        assert err.value.exit_code == 22


def test_warm_kernel_keeps_the_territory_until_a_file_changes(tmp_path, monkeypatch):
    """What a warm kernel does between notebooks: the catalogue is read once, and again when one of its files changes."""
    from diagnostic.io import territory

    shutil.copytree(DEMO_CATALOG.parent, tmp_path / "demo")
    catalog = tmp_path / "demo" / "catalogue.yaml"
    assert territory.load_territory(catalog) is not territory.load_territory(catalog)  # by default: read each time
    monkeypatch.setattr(territory, "_remembered", None)
    territory.remember_territories()
    first = territory.load_territory(catalog)
    assert territory.load_territory(str(catalog)) is first
    communes = first.catalog.get("communes").path
    os.utime(communes, ns=(time.time_ns(), communes.stat().st_mtime_ns + 1_000_000_000))
    again = territory.load_territory(catalog)
    assert again is not first and territory.load_territory(catalog) is again
    shipped = pickle.loads(pickle.dumps(again))  # what a batch gives its kernels
    territory.remember_territories(shipped)
    assert territory.load_territory(catalog) is shipped
