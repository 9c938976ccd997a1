"""The wheel, installed into a fresh virtual environment outside the checkout, runs the demo.

``pip install .`` must give a ``diagnostic`` that finds its notebooks, templates,
rules and reference tables inside the package (``diagnostic.resources``), not in
the checkout. The wheel is built once per module, without network: the build
uses this interpreter's setuptools, the new environment reaches this one's
dependencies through a ``.pth`` file added after the wheel is installed (so pip
sees no other ``diagnostic-territorial`` while installing it), and their Jupyter
data files (nbconvert's base templates, kernels) through ``JUPYTER_PATH``. The
notebooks run on the ``python3`` kernel, that is the new environment's interpreter.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """A fresh venv holding only the wheel; a work folder with a copy of the demo; the environment to run in."""
    tmp = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # Built from a copy, so setuptools writes its build/ and egg-info folders there and not in the checkout.
    src = tmp / "src"
    shutil.copytree(ROOT / "diagnostic", src / "diagnostic", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--wheel-dir", tmp / "dist",
                    src], env=env, cwd=tmp, check=True)
    wheel, = (tmp / "dist").glob("diagnostic_territorial-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], env=env, check=True)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", python, "install", "--no-deps", "--no-index", wheel], env=env, cwd=tmp,
                   check=True)
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          env=env, check=True, capture_output=True, text=True).stdout.strip()
    parents = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (Path(site) / "_dependances.pth").write_text("".join(f"{p}\n" for p in parents), encoding="utf-8")
    work = tmp / "travail"
    shutil.copytree(ROOT / "data" / "demo", work / "demo")
    env.update(DIAGNOSTIC_CACHE=str(tmp / "cache"), JUPYTER_PATH=str(Path(sys.prefix) / "share" / "jupyter"))
    return venv, work, env


def _diagnostic(venv: Path, work: Path, env: dict[str, str], *args: str) -> None:
    proc = subprocess.run([venv / "bin" / "diagnostic", *args], cwd=work, env=env, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_installed_package_lives_in_the_new_environment(installed):
    venv, work, env = installed
    code = "import diagnostic, diagnostic.resources as r; print(diagnostic.__file__); print(r.ROOT)"
    out = subprocess.run([venv / "bin" / "python", "-c", code], cwd=work, env=env, check=True,
                         capture_output=True, text=True).stdout.split("\n")
    for path in out[:2]:
        assert Path(path).resolve().is_relative_to(venv.resolve()), path
        assert not Path(path).resolve().is_relative_to(ROOT), path
    shipped = Path(out[1])
    assert {p.name for p in (shipped / "notebooks").iterdir()} == {
        "diagnostic_territorial.ipynb", "evaluation.ipynb", "explorateur.ipynb",
        "feuille_de_route.ipynb", "diagnostic_structure.ipynb"}
    assert (shipped / "rules" / "besoins.yaml").read_bytes() == (ROOT / "diagnostic/resources/rules/besoins.yaml").read_bytes()


def test_run_evaluate_and_batch_outside_the_checkout(installed):
    venv, work, env = installed
    _diagnostic(venv, work, env, "run", "--catalog", "demo/catalogue.yaml", "--commune", "99101", "--output", "sorties")
    _diagnostic(venv, work, env, "evaluate", "--catalog", "demo/catalogue.yaml", "--commune", "99101",
                "--from", "2025-07-01", "--to", "2025-12-31", "--output", "evaluations")
    _diagnostic(venv, work, env, "batch", "--catalog", "demo/catalogue.yaml", "--communes", "99102",
                "--workers", "1", "--quiet", "--output", "lot")
    report = (work / "sorties" / "99101" / "rapport.html").read_text(encoding="utf-8")
    assert "Villeneuve-sur-Lys" in report and "Données fictives" in report
    evaluation = (work / "evaluations" / "99101" / "evaluation" / "evaluation.html").read_text(encoding="utf-8")
    assert "Villeneuve-sur-Lys" in evaluation
    index = (work / "lot" / "index.html").read_text(encoding="utf-8")
    assert "Saint-Aubin-les-Prés" in index and (work / "lot" / "99102" / "rapport.html").is_file()
