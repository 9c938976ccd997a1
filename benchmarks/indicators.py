"""Benchmark: time and peak memory to compute every indicator of a catalogue.

Cases
  1. the real Occitanie extract (83 QPVs, counts per QPV), if ../shared/data/real is present;
  2. a synthetic region at national size: 1,600 QPVs and 200,000 services, written as official-format
     files (GeoPackage outlines, INSEE-format CSV, BPE-format CSV in Lambert-93) with a catalogue, so the
     loaders run too;
  3. a naive per-QPV Python loop (for each QPV, for each domain, shapely distance to all points of the
     domain) against the vectorised pass, on a subset of QPVs, extrapolated to all of them.

Each case runs in its own child process, pinned to 2 CPU cores where the OS allows, so that the peak
resident memory (``resource.getrusage``) is that of the case alone. Goal for the national-size case:
under 30 s and under 2 GB on 2 cores.

Run: ``.venv/bin/python benchmarks/indicators.py [--naive-subset 100]``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_QPV = 1_600
N_SERVICES = 200_000
GRID = 20            # 20 × 20 communes of 10 km: a 200 km square region
CELL = 10_000.0
X0, Y0 = 500_000.0, 6_400_000.0
GOAL_S, GOAL_GB = 30.0, 2.0
# BPE types of diagnostic/resources/tables/domaines_mediation.csv spread over the domains.
TYPEQU = ["A101", "A206", "A122", "C101", "C104", "C201", "D108", "D201", "D301", "E108", "F111", "F120", "F307"]


def _pin_two_cores() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[:2]
        os.sched_setaffinity(0, set(cpus))
        return f"cœurs {cpus}"
    return "affinité non réglable"


def _peak_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 if sys.platform != "darwin" else rss / 1024 / 1024


def write_synthetic(dest: Path, n_qpv: int = N_QPV, n_services: int = N_SERVICES, seed: int = 1) -> Path:
    """Official-format files for a synthetic region, and their catalogue; returns the catalogue path."""
    import geopandas as gpd
    import pandas as pd
    import shapely
    import yaml

    rng = np.random.default_rng(seed)
    dest.mkdir(parents=True, exist_ok=True)
    i, j = np.meshgrid(np.arange(GRID), np.arange(GRID), indexing="ij")
    i, j = i.ravel(), j.ravel()
    codes = [f"99{k:03d}" for k in range(GRID * GRID)]
    communes = gpd.GeoDataFrame(
        {"code": codes, "nom": [f"Commune {k}" for k in range(GRID * GRID)]},
        geometry=shapely.box(X0 + i * CELL, Y0 + j * CELL, X0 + (i + 1) * CELL, Y0 + (j + 1) * CELL),
        crs="EPSG:2154",
    )
    communes.to_file(dest / "communes.gpkg")
    # QPVs: irregular 12-gons of 250-700 m radius, 4 per commune on a jittered 2 × 2 layout.
    per = max(1, n_qpv // len(codes))
    home = np.repeat(np.arange(len(codes)), per)[:n_qpv]
    slot = np.tile(np.arange(per), len(codes))[:n_qpv]
    cx = X0 + i[home] * CELL + (0.25 + 0.5 * (slot % 2)) * CELL + rng.uniform(-800, 800, n_qpv)
    cy = Y0 + j[home] * CELL + (0.25 + 0.5 * (slot // 2 % 2)) * CELL + rng.uniform(-800, 800, n_qpv)
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    radius = rng.uniform(250, 700, (n_qpv, 1)) * rng.uniform(0.75, 1.0, (n_qpv, 12))
    rings = np.stack([cx[:, None] + radius * np.cos(angles), cy[:, None] + radius * np.sin(angles)], axis=-1)
    qpv_codes = [f"QN{990 + k // 1000:03d}{k % 100:02d}{chr(65 + (k // 100) % 10)}" for k in range(n_qpv)]
    assert len(set(qpv_codes)) == n_qpv
    gpd.GeoDataFrame(
        {"code_qp": qpv_codes, "lib_qp": [f"Quartier {k}" for k in range(n_qpv)],
         "insee_com": [codes[h] for h in home]},
        geometry=shapely.polygons(rings), crs="EPSG:2154",
    ).to_file(dest / "qpv.gpkg")
    pop = rng.integers(1_000, 12_000, n_qpv)
    tp60 = np.round(rng.uniform(25, 65, n_qpv), 1).astype(str).astype(object)
    tp60[rng.random(n_qpv) < 0.03] = "s"
    pd.DataFrame({
        "code_qp": qpv_codes, "pop_mun": pop, "tp60": tp60,
        "disp_q2": rng.integers(9_000, 17_000, n_qpv), "ind_jeune": np.round(rng.uniform(0.5, 2.5, n_qpv), 2),
        "abcde": (pop * rng.uniform(0.05, 0.2, n_qpv)).astype(int),
        "tx_tot_empl": np.round(rng.uniform(30, 60, n_qpv), 1),
    }).to_csv(dest / "qpv_ind.csv", index=False)
    com_pop = rng.integers(2_000, 150_000, len(codes))
    pd.DataFrame({"COM": codes, "PMUN": com_pop}).to_csv(dest / "pop.csv", sep=";", index=False)
    rate = np.char.replace(np.round(rng.uniform(8, 35, len(codes)), 1).astype(str), ".", ",").astype(object)
    rate[rng.random(len(codes)) < 0.3] = "s"
    pd.DataFrame({"CODGEO": codes, "TP6021": rate, "MED21": rng.integers(17_000, 26_000, len(codes))}).to_csv(
        dest / "filo.csv", sep=";", index=False)
    # Services: uniform over the region, each with the commune it falls in (BPE: DEPCOM, LAMBERT_X/Y).
    xs = rng.uniform(X0, X0 + GRID * CELL, n_services)
    ys = rng.uniform(Y0, Y0 + GRID * CELL, n_services)
    ci = np.clip(((xs - X0) // CELL).astype(int), 0, GRID - 1)
    cj = np.clip(((ys - Y0) // CELL).astype(int), 0, GRID - 1)
    pd.DataFrame({
        "DEPCOM": np.array(codes)[ci * GRID + cj], "TYPEQU": rng.choice(TYPEQU, n_services),
        "LAMBERT_X": np.round(xs, 1), "LAMBERT_Y": np.round(ys, 1),
    }).to_csv(dest / "bpe.csv", sep=";", index=False)
    catalog = {
        "name": f"Région synthétique ({n_qpv} QPV, {n_services} services)",
        "fictional": True,
        "sources": {
            "communes": {"path": "communes.gpkg", "columns": {"insee_com": "code", "lib_com": "nom"}},
            "qpv": {"path": "qpv.gpkg"},
            "qpv_indicators": {"path": "qpv_ind.csv", "indicators": {
                "population": "pop_mun", "poverty_rate": "tp60", "median_income": "disp_q2",
                "youth_index": "ind_jeune", "jobseekers": "abcde", "employment_rate": "tx_tot_empl"}},
            "commune_indicators": [
                {"path": "pop.csv", "columns": {"insee_com": "COM"}, "indicators": {"population": "PMUN"}},
                {"path": "filo.csv", "columns": {"insee_com": "CODGEO"},
                 "indicators": {"poverty_rate": "TP6021", "median_income": "MED21"}},
            ],
            "services": [{"path": "bpe.csv", "format": "bpe"}],
        },
    }
    (dest / "catalogue.yaml").write_text(yaml.safe_dump(catalog, allow_unicode=True), encoding="utf-8")
    return dest / "catalogue.yaml"


def _run_case(catalog: str, data_dir: str | None, naive_subset: int, queue) -> None:
    try:
        cores = _pin_two_cores()
        os.environ["DIAGNOSTIC_CACHE"] = tempfile.mkdtemp(prefix="bench-cache-")
        from diagnostic.analysis.indicators.cache import compute
        from diagnostic.io.territory import load_territory

        t0 = time.perf_counter()
        data = load_territory(catalog, data_dir)
        t_load = time.perf_counter() - t0
        mem_load = _peak_mb()
        t0 = time.perf_counter()
        result = compute(data, use_cache=False)
        t_compute = time.perf_counter() - t0
        out = {"cores": cores, "qpv": len(data.qpv), "services": len(data.services), "load_s": t_load,
               "compute_s": t_compute, "peak_mb": _peak_mb(), "peak_load_mb": mem_load,
               "needs_rows": len(result.needs), "coverage_rows": len(result.coverage)}
        if naive_subset:
            out.update(_naive_vs_vectorised(data, naive_subset))
        queue.put(out)
    except BaseException as exc:  # noqa: BLE001 — report, never hang the parent
        queue.put({"error": f"{type(exc).__name__}: {exc}"})


def _naive_vs_vectorised(data, subset: int) -> dict:
    """The same three figures per (QPV, domain) with a Python loop over QPVs, on ``subset`` QPVs."""
    import shapely

    from diagnostic.analysis.indicators.coverage import coverage
    from diagnostic.analysis.indicators.domains import service_domains
    from diagnostic.io.reference import DOMAINS

    pairs = service_domains(data.services)
    by_domain = {d: pairs.loc[pairs["domain"] == d, "geometry"].to_numpy() for d in DOMAINS}
    qpv = data.qpv.iloc[:subset]
    t0 = time.perf_counter()
    naive = {}
    for code, geom in zip(qpv["code_qp"], qpv.geometry):
        for domain, pts in by_domain.items():
            if len(pts) == 0:
                continue
            dist = shapely.distance(geom, pts)
            naive[(code, domain)] = (int((dist == 0).sum()), int((dist <= 300).sum()), float(dist.min()))
    t_naive = time.perf_counter() - t0
    t0 = time.perf_counter()
    vec = coverage(data.qpv, pairs, data.qpv_indicators.values["population"], code="code_qp", level="qpv")
    t_vec = time.perf_counter() - t0
    check = vec.set_index(["code", "domain"])
    agree = all(
        (check.loc[k, "services_inside"], check.loc[k, "services_band"]) == v[:2]
        and abs(check.loc[k, "nearest_m"] - v[2]) < 1e-6
        for k, v in naive.items()
    )
    n = len(data.qpv)
    return {"naive_subset": len(qpv), "naive_s": t_naive, "naive_all_s": t_naive * n / len(qpv),
            "coverage_vec_s": t_vec, "naive_agrees": agree}


def run(catalog: Path, data_dir: Path | None = None, naive_subset: int = 0) -> dict:
    ctx = mp.get_context("fork") if sys.platform != "win32" else mp.get_context()
    queue = ctx.Queue()
    proc = ctx.Process(target=_run_case, args=(str(catalog), str(data_dir) if data_dir else None, naive_subset, queue))
    proc.start()
    out = queue.get()
    proc.join()
    if "error" in out:
        raise RuntimeError(out["error"])
    return out


def _print(title: str, r: dict, goal: bool = False) -> None:
    print(f"\n== {title}")
    print(f"   {r['qpv']} QPV, {r['services']} services géolocalisés ({r['cores']})")
    print(f"   chargement + validation : {r['load_s']:.2f} s (mémoire de pointe {r['peak_load_mb']:.0f} Mo)")
    line = f"   calcul de tous les indicateurs : {r['compute_s']:.2f} s ; mémoire de pointe du processus : {r['peak_mb']:.0f} Mo"
    print(line)
    print(f"   lignes : couverture {r['coverage_rows']}, besoins {r['needs_rows']}")
    if goal:
        total = r["load_s"] + r["compute_s"]
        ok = r["compute_s"] < GOAL_S and r["peak_mb"] < GOAL_GB * 1024
        print(f"   objectif cas national : < {GOAL_S:.0f} s et < {GOAL_GB:.0f} Go sur 2 cœurs → "
              f"{'ATTEINT' if ok else 'NON ATTEINT'} (calcul {r['compute_s']:.1f} s, avec chargement {total:.1f} s ; "
              f"{r['peak_mb'] / 1024:.2f} Go)")
    if "naive_s" in r:
        ratio = r["naive_all_s"] / r["coverage_vec_s"]
        print(f"   boucle naïve par QPV (shapely, {r['naive_subset']} QPV mesurés, extrapolé à {r['qpv']}) : "
              f"{r['naive_s']:.2f} s mesurées → {r['naive_all_s']:.1f} s estimées")
        print(f"   passe vectorisée de couverture (tous les QPV) : {r['coverage_vec_s']:.2f} s")
        print(f"   rapport boucle naïve / passe vectorisée : × {ratio:.0f} "
              f"(résultats identiques sur le sous-ensemble : {'oui' if r['naive_agrees'] else 'NON'})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--naive-subset", type=int, default=100, help="QPV mesurés pour la boucle naïve")
    parser.add_argument("--qpv", type=int, default=N_QPV)
    parser.add_argument("--services", type=int, default=N_SERVICES)
    args = parser.parse_args(argv)
    print("Banc d'essai des indicateurs (diagnostic.analysis.indicators.cache.compute, use_cache=False)")
    print(f"Objectif : cas national (≈ {N_QPV} QPV, {N_SERVICES} services) en < {GOAL_S:.0f} s et < {GOAL_GB:.0f} Go sur 2 cœurs")
    from diagnostic.io.catalog import DEFAULT_DATA_DIR

    occ = ROOT / "data" / "catalogues" / "occitanie.yaml"
    if (DEFAULT_DATA_DIR / "PROVENANCE.md").exists():
        _print("Occitanie (extrait réel, 83 QPV, comptages INSEE par QPV)", run(occ, DEFAULT_DATA_DIR, naive_subset=0))
    else:
        print(f"\n== Occitanie : ignoré, extraits réels absents ({DEFAULT_DATA_DIR})")
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        t0 = time.perf_counter()
        catalog = write_synthetic(Path(tmp), args.qpv, args.services)
        print(f"\n(fichiers synthétiques écrits en {time.perf_counter() - t0:.1f} s dans {tmp})")
        r = run(catalog, naive_subset=args.naive_subset)
        _print(f"Région synthétique de taille nationale ({args.qpv} QPV, {args.services} services)", r, goal=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
