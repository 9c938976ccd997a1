"""Benchmark: how long an explorer update takes on screen, in JupyterLab, as an officer sees it.

A real JupyterLab (127.0.0.1, random token, autosave off) serves ``diagnostic/resources/notebooks/explorateur.ipynb``;
headless Chromium runs it (*Run All*) on the demo, then makes the changes an officer makes, with the
mouse and keyboard: another commune, the band one step wider, a domain unticked, then back to
settings already seen. For each change two times are printed:

- *noyau*: what the explorer itself measured (« mis à jour en … s »: build and drawing of the outputs);
- *à l'écran*: from the browser event to the last change of the explorer's page — new map frame
  loaded, tables redrawn —, once the kernel is idle again and the page has been still for 1 s.

With ``../shared/data/real`` present, the Occitanie catalogue is then chosen and Toulouse measured
the same way (loading the catalogue included in its first line).

Run: ``.venv/bin/python benchmarks/explorer.py [--repeat 2]``
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diagnostic.io.catalog import DEFAULT_DATA_DIR
from diagnostic.text import number

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
QUIET_MS = 1000
#: Records the time of the last change under the explorer's widget and of the last map frame loaded.
_WATCH = """() => {
    const root = document.querySelector('.diag-explorateur');
    window.__diag = {last: performance.now()};
    const touch = () => { window.__diag.last = performance.now(); };
    new MutationObserver(touch).observe(root, {subtree: true, childList: true, characterData: true,
                                               attributes: true});
    document.addEventListener('load', e => { if (e.target.tagName === 'IFRAME') touch(); }, true);
}"""


def start_lab(folder: Path) -> tuple[subprocess.Popen, str]:
    """JupyterLab on a free port of 127.0.0.1 serving the notebooks, autosave off; its URL with the token."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    settings = folder / "settings" / "@jupyterlab" / "docmanager-extension"
    settings.mkdir(parents=True)
    (settings / "plugin.jupyterlab-settings").write_text('{"autosave": false}')
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(folder / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(folder / "workspaces"),
           "DIAGNOSTIC_CACHE": os.environ.get("DIAGNOSTIC_CACHE", str(folder / "cache"))}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--ServerApp.token={token}",
         f"--ServerApp.root_dir={ROOT / 'diagnostic' / 'resources' / 'notebooks'}", f"--FileCheckpoints.checkpoint_dir={folder / 'ckpt'}",
         *(["--allow-root"] if os.getuid() == 0 else [])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                return proc, f"{base}/lab/tree/explorateur.ipynb?token={token}"
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("JupyterLab n'a pas démarré.") from None
            time.sleep(0.3)


def run_all(page) -> None:
    """Run › Run All Cells until the explorer's status says it is up to date."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.locator("#jp-main-statusbar", has_text="Idle").wait_for(timeout=60_000)
    started = page.locator(".jp-InputPrompt", has_text=re.compile(r"\[(\*|\d+)\]")).first
    for _ in range(4):  # a click before the kernel is connected runs nothing: click again
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        try:
            started.wait_for(timeout=20_000)
            break
        except PlaywrightTimeout:
            print("  (noyau pas encore connecté : nouvel essai)")
    page.locator(".widget-html-content", has_text="mis à jour").first.wait_for(timeout=120_000)


def timed(page, action, expect: str) -> tuple[float, float]:
    """(kernel seconds, on-screen seconds) of ``action``, once the status shows ``expect``."""
    page.evaluate(_WATCH)
    start = page.evaluate("() => performance.now()")
    action()
    status = page.locator(".widget-html-content", has_text=re.compile(rf"{re.escape(expect)} — mis à jour en"))
    status.first.wait_for(timeout=180_000)
    while True:
        page.locator("#jp-main-statusbar", has_text="Idle").wait_for(timeout=60_000)
        still = page.evaluate("() => performance.now() - window.__diag.last")
        if still >= QUIET_MS:
            break
        page.wait_for_timeout(QUIET_MS - still + 50)
    screen = (page.evaluate("() => window.__diag.last") - start) / 1000
    kernel = re.search(r"mis à jour en ([\d,]+) s", status.first.inner_text()).group(1)
    return float(kernel.replace(",", ".")), screen


def steps(page, with_occitanie: bool) -> list[tuple[str, str, object, str]]:
    """(description, « nouveau » or « déjà vu », action, commune shown after it) in order."""
    commune = page.locator(".widget-select select").first
    band = page.locator(".noUi-handle[aria-valuemax=\"1000.0\"]")  # the band slider (0 to 1 000 m), not a weight
    sante = page.get_by_role("checkbox", name="Santé", exact=True)
    occitanie = "Occitanie — QPV 2015 et indicateurs INSEE"

    def key(locator, name):
        return lambda: (locator.focus(), locator.press(name))

    out = [
        ("commune Mont-Clair", "nouveau", lambda: commune.select_option(index=1), "Mont-Clair (99103)"),
        ("commune Saint-Aubin (sans QPV)", "nouveau", lambda: commune.select_option(index=2),
         "Saint-Aubin-les-Prés (99102)"),
        ("commune Villeneuve", "déjà vu", lambda: commune.select_option(index=0), "Villeneuve-sur-Lys (99101)"),
        ("bande 350 m", "nouveau", key(band, "ArrowRight"), "Villeneuve-sur-Lys (99101)"),
        ("bande 300 m", "déjà vu", key(band, "ArrowLeft"), "Villeneuve-sur-Lys (99101)"),
        ("domaine Santé décoché", "nouveau", sante.click, "Villeneuve-sur-Lys (99101)"),
        ("domaine Santé coché", "déjà vu", sante.click, "Villeneuve-sur-Lys (99101)"),
        ("commune Mont-Clair", "déjà vu", lambda: commune.select_option(index=1), "Mont-Clair (99103)"),
    ]
    if with_occitanie:
        catalog = page.locator(".widget-dropdown select").first
        out += [
            ("catalogue Occitanie (chargement, Toulouse)", "nouveau",
             lambda: catalog.select_option(label=occitanie), "Toulouse (31555)"),
            ("Toulouse, bande 350 m", "nouveau", key(band, "ArrowRight"), "Toulouse (31555)"),
            ("Toulouse, bande 300 m", "déjà vu", key(band, "ArrowLeft"), "Toulouse (31555)"),
        ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="sessions JupyterLab successives (1)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with_occitanie = (DEFAULT_DATA_DIR / "PROVENANCE.md").exists()
    rows: list[tuple[str, str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-explorateur-") as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        for session in range(args.repeat):
            proc, url = start_lab(Path(tmp) / f"lab{session}")
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url, wait_until="domcontentloaded")
                start = time.perf_counter()
                run_all(page)
                print(f"Session {session + 1} : Run All jusqu'au premier affichage en "
                      f"{number(time.perf_counter() - start, 1)} s")
                for label, kind, action, expect in steps(page, with_occitanie):
                    kernel, screen = timed(page, action, expect)
                    rows.append((label, kind, kernel, screen))
                    print(f"  {label:<44} {kind:<8} noyau {number(kernel, 2):>6} s   "
                          f"à l'écran {number(screen, 2):>6} s")
                page.close()
            finally:
                proc.terminate()
                proc.wait(timeout=15)
        browser.close()
    print()
    for kind, plural in (("nouveau", "nouveaux"), ("déjà vu", "déjà vus")):
        demo = [r for r in rows if r[1] == kind and "Toulouse" not in r[0] and "Occitanie" not in r[0]]
        if demo:
            screens = [r[3] for r in demo]
            print(f"Démonstration, réglages {plural} : à l'écran médiane {number(statistics.median(screens), 2)} s "
                  f"(de {number(min(screens), 2)} à {number(max(screens), 2)} s), noyau médiane "
                  f"{number(statistics.median(r[2] for r in demo), 2)} s, sur {len(demo)} changements.")
    if not with_occitanie:
        print(f"Occitanie non mesurée : extraits réels absents ({DEFAULT_DATA_DIR}).")


if __name__ == "__main__":
    main()
