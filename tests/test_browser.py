"""The explorer in a real browser: JupyterLab on 127.0.0.1 (a random free port, a token), driven by
Playwright in Debian's Chromium (no browser is downloaded; ``make test`` installs ``chromium``).

The notebook is a temporary copy with tiny settings (2 pretraining rounds, 10% of each client's
data, 300 test images), in a temporary folder that is JupyterLab's root, with its own settings
(autosave off), workspaces and runtime folders, so nothing the browser does can touch the
tracked notebook. The test runs all cells, runs the explorer with its defaults, moves a slider,
switches DBA to CBA and the schedule to multi_shot (which loads that preset's rounds, scale and
eta), runs again and checks that the plot changed, then shows that a bad combination is one
line. Screenshots go to build/browser/. JupyterLab and its kernels are stopped at the end, also
when the test fails.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dbalib.core.paths import BUILD_DIR, NOTEBOOKS_DIR, PROJECT_DIR

pytestmark = pytest.mark.browser

SHOTS = BUILD_DIR / "browser"
TINY = {"PRETRAIN_ROUNDS": 2, "ROUNDS": 10, "DATA_FRACTION": 0.1, "TEST_SAMPLES": 300, "DEVICE": "cpu"}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    """Debian's Chromium and Playwright, or a skip (a failure under ``make test``)."""
    missing = []
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        missing.append("Chromium (apt-get install chromium)")
    for module in ("playwright", "jupyterlab"):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"{module} (pip install -e '.[dev]')")
    if missing:
        message = "the browser test needs " + " and ".join(missing)
        if os.environ.get("DBALIB_BROWSER_REQUIRED"):
            pytest.fail(message)
        pytest.skip(message)
    return chromium


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _own_processes(marker: str) -> list[int]:
    """Processes whose command line mentions ``marker`` (this test's folders): the lab's kernels."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def _stop(proc: subprocess.Popen, url: str, token: str, marker: str) -> None:
    """Shut JupyterLab down (its API, then SIGTERM, then SIGKILL to its process group), then any
    kernel it left (they run in sessions of their own)."""
    if proc.poll() is None:
        try:
            request = urllib.request.Request(f"{url}/api/shutdown", method="POST",
                                             headers={"Authorization": f"token {token}"})
            urllib.request.urlopen(request, timeout=5).close()
        except OSError:
            pass
        for sig, wait in ((None, 15), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            if sig is not None:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
    deadline = time.monotonic() + 10
    while (left := _own_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in _own_processes(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def lab(tmp_path):
    """JupyterLab serving a tiny copy of the explorer notebook: (url of the notebook, process)."""
    _chromium()
    root, config = tmp_path / "root", tmp_path / "jupyter"
    settings = config / "lab-settings"
    for folder in (root, config, settings / "@jupyterlab" / "docmanager-extension",
                   settings / "@jupyterlab" / "apputils-extension"):
        folder.mkdir(parents=True)
    (settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings").write_text(
        json.dumps({"autosave": False}))
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))

    import nbformat

    nb = nbformat.read(NOTEBOOKS_DIR / "00_explore.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source += "".join(f"\n{k} = {v!r}" for k, v in (TINY | {"RUNS_DIR": str(tmp_path / "runs")}).items())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "explore.ipynb")

    port, token = _free_port(), secrets.token_hex(16)
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_DIR), os.environ.get("PYTHONPATH")])),
        "JUPYTER_CONFIG_DIR": str(config / "config"), "JUPYTER_RUNTIME_DIR": str(config / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(config / "workspaces"),
        "IPYTHONDIR": str(config / "ipython"),
    }
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--ServerApp.terminals_enabled=False", "--LabApp.expose_app_in_browser=True",
           f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={config / 'workspaces'}",
           *(["--allow-root"] if os.geteuid() == 0 else [])]  # CI containers run as root
    log = open(tmp_path / "jupyterlab.log", "wb")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited ({proc.returncode}): {(tmp_path / 'jupyterlab.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not answer within 90 s")
                time.sleep(0.5)
        yield f"{url}/lab/tree/explore.ipynb?reset&token={token}", proc
    finally:
        _stop(proc, url, token, str(config))
        log.close()
    assert proc.poll() is not None and not _own_processes(str(config)), "JupyterLab or a kernel is still running"


def _image(page) -> bytes:
    src = page.locator(".widget-output img").first.get_attribute("src")
    assert src and src.startswith("data:image/png;base64,")
    return base64.b64decode(src.split(",", 1)[1])


def _wait_status(page, text: str, timeout_s: float = 180) -> None:
    page.locator(".widget-html", has_text=text).first.wait_for(timeout=timeout_s * 1000)


def test_explorer_in_jupyterlab_redraws_after_the_controls_change(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    url, _ = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        page = context.pages[0] if context.pages else context.new_page()
        try:
            page.goto(url, timeout=90_000)
            page.wait_for_function("() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                                   " const k = w && w.sessionContext && w.sessionContext.session"
                                   " && w.sessionContext.session.kernel; return k && k.status === 'idle'; }",
                                   timeout=120_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            run = page.locator("button.widget-button", has_text="Run")
            run.wait_for(timeout=240_000)  # the static run, then the controls
            assert page.locator(".jp-OutputArea-output img").count() >= 1  # the static two-panel figure
            page.screenshot(path=str(SHOTS / "explorer-loaded.png"), full_page=True)

            run.click()
            _wait_status(page, "done: single_shot_dba")
            before = _image(page)

            gap = page.locator(".widget-hslider", has_text="trigger gap")
            gap.locator(".noUi-handle").focus()
            page.keyboard.press("ArrowRight")  # moves the slider: gap 2 -> 3
            assert gap.locator(".widget-readout").inner_text().strip() == "3"
            page.locator(".widget-toggle-buttons button", has_text="CBA").click()
            page.locator(".widget-dropdown select").select_option("multi_shot")
            _wait_status(page, "preset multi_shot_cba")
            rounds = page.locator(".widget-text", has_text="attack rounds").locator("input")
            assert rounds.input_value() == "3-22"  # the preset's 11-30, moved with the 2 pretraining rounds
            run.click()
            _wait_status(page, "done: multi_shot_cba")
            after = _image(page)
            page.screenshot(path=str(SHOTS / "explorer-after-run.png"), full_page=True)
            assert after != before, "the plot did not change after Run"

            page.locator(".widget-dropdown select").select_option("random")  # CBA has no random sampling
            error = page.locator(".widget-html", has_text="error:")
            error.wait_for(timeout=30_000)
            assert error.inner_text().count("\n") == 0 and "random sampling is a DBA preset" in error.inner_text()
            run.click()  # refused in the same line; the plot of other settings is cleared
            page.locator(".widget-output img").wait_for(state="detached", timeout=30_000)
            assert error.inner_text().count("\n") == 0 and "random sampling is a DBA preset" in error.inner_text()
            assert page.locator(".jp-OutputArea-output", has_text="Traceback").count() == 0
            page.screenshot(path=str(SHOTS / "explorer-bad-combination.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(SHOTS / "explorer-failure.png"), full_page=True)
            raise
        finally:
            context.close()
