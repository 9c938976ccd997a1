"""Benchmark: ``diagnostic batch`` against the naive shell loop (papermill then jupyter nbconvert).

Cases
  1. the 40 communes of the real Occitanie extract (../shared/data/real);
  2. the 157 communes with a QPV of the real Hauts-de-France extract (``--hdf``, on by default);
  3. a synthetic region of 400 communes: the Occitanie files replicated ten times (geometries shifted
     east, new commune and QPV codes), written with a catalogue in a temporary folder.

For each case: the naive loop runs ``papermill`` then ``jupyter nbconvert --to html`` per commune
(one interpreter, import and kernel start each time) on ``--naive-sample`` communes and its rate is
extrapolated to the case (said in the output); ``diagnostic batch`` runs on every commune as a
command, as a user would start it. Printed: reports per minute, the ratio batch/naive, the peak
resident memory of each process tree (sampled every 0.2 s), the start-up (cluster, kernels,
catalogue-wide indicators: the batch's time not spent in its reports), the marginal cost of a
report after warm-up (median time of a report on a worker, leaving out each worker's first one,
which starts its kernel), and the equivalence check: the naive loop's ``resultats.json`` equals
the batch's, commune by commune.
Goal on 2 cores: at least 20 times the naive throughput, at most 1 s of one core per report after
warm-up, under 3 GB.

Run: ``.venv/bin/python benchmarks/batch.py [--naive-sample 6] [--no-hdf] [--synthetic 400] [--workers N]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diagnostic.io.catalog import DEFAULT_DATA_DIR, load_catalog
from diagnostic.io.territory import load_territory
from diagnostic.pipeline.run import NOTEBOOK, run_parameters
from diagnostic.text import number, plural

OCCITANIE = ROOT / "data" / "catalogues" / "occitanie.yaml"
HDF = ROOT / "data" / "catalogues" / "hauts-de-france.yaml"
BIN = Path(sys.executable).parent
GOAL_RATIO, GOAL_GB, GOAL_MARGINAL_S = 20.0, 3.0, 1.0


def run_measured(cmd: list[str], **kw) -> tuple[float, float]:
    """Run ``cmd``; return (seconds, peak resident memory of its whole process tree in GB)."""
    peak = 0
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak = max(peak, total)
            except psutil.Error:
                pass
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    _, err = proc.communicate()
    done.set()
    thread.join()
    if proc.returncode:
        raise SystemExit(f"échec de {' '.join(cmd[:3])}… :\n{err.decode(errors='replace')[-3000:]}")
    return time.perf_counter() - start, peak / 1e9


def naive(catalog: Path, codes: list[str], out: Path) -> tuple[float, float]:
    """The shell loop a user would write: papermill then nbconvert, one commune after the other."""
    data = load_territory(catalog)
    script = []
    for code in codes:
        params = {**run_parameters(data, code), "output_dir": str(out / code)}
        nb = out / code / "diagnostic.ipynb"
        (out / code).mkdir(parents=True, exist_ok=True)
        script.append(
            f"{BIN / 'papermill'} {NOTEBOOK} {nb} -y '{json.dumps(params)}' --cwd {NOTEBOOK.parent} -k python3 "
            f"--no-progress-bar && {BIN / 'jupyter'} nbconvert --to html --no-input {nb}"
        )
    return run_measured(["bash", "-e", "-c", "\n".join(script)])


def batch(catalog: Path, out: Path, workers: int | None) -> tuple[float, float]:
    cmd = [str(BIN / "diagnostic"), "batch", "--catalog", str(catalog), "--output", str(out), "--quiet", "--force"]
    return run_measured(cmd + (["--workers", str(workers)] if workers else []), cwd=ROOT)


def synthetic(dest: Path, copies: int) -> Path:
    """The Occitanie files replicated ``copies`` times, with their catalogue (paths relative to it)."""
    import geopandas as gpd
    import pandas as pd

    cat = load_catalog(OCCITANIE)
    raw = yaml.safe_load(OCCITANIE.read_text(encoding="utf-8"))
    communes = gpd.read_file(cat.get("communes").path)
    qpv = gpd.read_file(cat.get("qpv").path)
    ind = pd.read_csv(cat.get("qpv_indicators").path, dtype=str, encoding="utf-8-sig")
    com_frames, qpv_frames, ind_frames = [], [], []
    for k in range(copies):
        dep = f"{60 + k}"
        com_codes = {c: f"{dep}{i:03d}" for i, c in enumerate(communes["code_commune"])}
        qp_codes = {c: f"QP0{dep}{i:03d}" for i, c in enumerate(qpv["code_qp"])}
        shift = 7.0 * k
        com_frames.append(communes.assign(code_commune=communes["code_commune"].map(com_codes),
                                          code_departement=dep, geometry=communes.translate(xoff=shift)))
        qpv_frames.append(qpv.assign(code_qp=qpv["code_qp"].map(qp_codes), code_departement=dep,
                                     code_commune=qpv["code_commune"].map(com_codes),
                                     geometry=qpv.translate(xoff=shift)))
        rows = ind[ind["code_qp"].isin(qp_codes)]
        ind_frames.append(rows.assign(code_qp=rows["code_qp"].map(qp_codes)))
    dest.mkdir(parents=True, exist_ok=True)
    files = {"communes": "communes.geojson", "qpv": "qpv.geojson", "qpv_indicators": "qpv_indicateurs.csv"}
    gpd.GeoDataFrame(pd.concat(com_frames), crs=communes.crs).to_file(dest / files["communes"], driver="GeoJSON")
    gpd.GeoDataFrame(pd.concat(qpv_frames), crs=qpv.crs).to_file(dest / files["qpv"], driver="GeoJSON")
    pd.concat(ind_frames).to_csv(dest / files["qpv_indicators"], index=False)
    raw["name"] = f"Région synthétique ({copies} copies de l'extrait d'Occitanie)"
    raw["paths_relative_to"] = "catalog"
    for role, name in files.items():
        raw["sources"][role]["path"] = name
    path = dest / "catalogue.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def case(label: str, catalog: Path, sample: int, workers: int | None, tmp: Path) -> None:
    data = load_territory(catalog)
    codes = sorted(data.communes.loc[data.communes["qpv_count"] > 0, "insee_com"])
    picked = codes[:: max(1, len(codes) // sample)][:sample]
    print(f"\n== {label} : {len(codes)} communes ==", flush=True)
    naive_s, naive_gb = naive(catalog, picked, tmp / "naif")
    naive_rate = 60 * len(picked) / naive_s
    print(f"boucle naïve   : {len(picked)} communes en {number(naive_s, 1)} s → {number(naive_rate, 1)} rapports/min "
          f"(extrapolé à {len(codes)} communes : {number(len(codes) / naive_rate, 1)} min), "
          f"pic mémoire {number(naive_gb, 2)} Go", flush=True)
    batch_s, batch_gb = batch(catalog, tmp / "lot", workers)
    batch_rate = 60 * len(codes) / batch_s
    print(f"diagnostic batch : {len(codes)} communes en {number(batch_s, 1)} s → {number(batch_rate, 1)} rapports/min, "
          f"pic mémoire {number(batch_gb, 2)} Go")
    ratio = batch_rate / naive_rate
    print(f"rapport batch/naïf : {number(ratio, 1)}× (objectif ≥ {number(GOAL_RATIO)}×) ; mémoire "
          f"{'< ' if batch_gb < GOAL_GB else '≥ '}{number(GOAL_GB)} Go")
    manifest = json.loads((tmp / "lot" / "manifest.json").read_text(encoding="utf-8"))
    n = workers or os.cpu_count() or 1
    durations = sorted(e["duree_s"] for e in manifest["communes"].values() if e.get("duree_s"))
    warm = durations[:-n] or durations  # each worker's first report starts its kernel
    marginal = statistics.median(warm) if warm else float("nan")
    startup = batch_s - sum(durations) / n
    print(f"démarrage (cluster, noyaux, indicateurs du catalogue) : {number(startup, 1)} s ; coût marginal d'un "
          f"rapport après mise en route : {number(marginal, 2)} s d'un cœur (médiane ; objectif ≤ "
          f"{number(GOAL_MARGINAL_S)} s)")
    same = [c for c in picked if json.loads((tmp / "naif" / c / "resultats.json").read_text(encoding="utf-8"))
            == json.loads((tmp / "lot" / c / "resultats.json").read_text(encoding="utf-8"))]
    ok = sum(manifest["communes"][c]["statut"] == "ok" for c in codes)
    print(f"équivalence : resultats.json identiques pour {len(same)}/{len(picked)} communes comparées ; "
          f"{ok}/{len(codes)} rapports produits par le lot")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--naive-sample", type=int, default=6, help="communes passées dans la boucle naïve")
    parser.add_argument("--no-hdf", action="store_true", help="sans les 157 communes des Hauts-de-France")
    parser.add_argument("--synthetic", type=int, default=400, help="communes de la région synthétique (0 : aucune)")
    parser.add_argument("--workers", type=int, default=None, help="processus Dask (un par cœur par défaut)")
    args = parser.parse_args()
    if not (DEFAULT_DATA_DIR / "PROVENANCE.md").exists():
        raise SystemExit(f"extraits réels absents ({DEFAULT_DATA_DIR})")
    cores = os.cpu_count() or 1
    print(f"Machine : {cores} {plural(cores, 'cœur')}, {number(psutil.virtual_memory().total / 1e9, 1)} Go ; "
          f"charge moyenne {number(os.getloadavg()[0], 2)} ; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    os.environ.setdefault("DIAGNOSTIC_CACHE", tempfile.mkdtemp(prefix="diag-cache-"))
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        case("Occitanie (extrait réel)", OCCITANIE, args.naive_sample, args.workers, tmp / "occitanie")
        if not args.no_hdf:
            case("Hauts-de-France (extrait réel)", HDF, args.naive_sample, args.workers, tmp / "hdf")
        if args.synthetic:
            catalog = synthetic(tmp / "synthetique" / "donnees", max(1, args.synthetic // 40))
            case("Région synthétique", catalog, args.naive_sample, args.workers, tmp / "synthetique")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
