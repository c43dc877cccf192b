"""Debian's chromium driven through chromium-driver by Selenium, and axe-core injected into pages.

Nothing is downloaded at test time: the browser and driver are the system packages (``.ci/run``
installs them), and axe-core comes from the npm registry through ``tests/web/axe/package-lock.json``
(``npm ci`` when missing). Under ``CI=true`` a missing browser, driver or npm fails the run.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
AXE_DIR = Path(__file__).parent / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
# Flags that keep a headless chromium quiet and offline: no background fetches, no updates, no sync.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1280,1000",
)


def _missing(what: str) -> None:
    message = f"{what} is needed for the browser tests (apt-get install -y chromium chromium-driver; npm)"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def start_browser(profile: Path) -> WebDriver:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            _missing(str(path))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))


def axe_source() -> str:
    # One `npm ci` even when several test workers start at once: they queue on a lock file.
    with open(AXE_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not AXE_JS.exists():
            npm = shutil.which("npm")
            if npm is None:
                _missing("npm")
            assert npm is not None
            with tempfile.TemporaryDirectory() as cache:
                subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund", "--cache", cache],
                    cwd=AXE_DIR,
                    check=True,
                    capture_output=True,
                    timeout=300,
                )
    return AXE_JS.read_text(encoding="utf-8")


_RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ["violations"]})
  .then(result => done(result.violations))
  .catch(error => done([{id: "axe-error", impact: "critical", help: String(error), nodes: []}]));
"""


def serious_violations(driver: WebDriver, source: str) -> list[str]:
    """axe-core's serious and critical violations on the current page, one line each."""
    driver.execute_script(source)
    violations: list[dict[str, Any]] = driver.execute_async_script(_RUN_AXE)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n.get('target') for n in v.get('nodes', [])][:3]}"
        for v in violations
        if v.get("impact") in ("serious", "critical")
    ]


def screenshot(driver: WebDriver, folder: Path | None, name: str) -> None:
    """The whole page as a PNG (the window is grown to the page's height first)."""
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    metrics = {"width": 1280, "height": max(700, min(height, 4000)), "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        driver.save_screenshot(str(folder / f"{name}.png"))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
