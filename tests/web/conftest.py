"""Fixtures of the web app tests: a referral world over the real API and a signed-in browser-like client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from service.settings import Settings
from tests.support.clients import FhirClients
from tests.support.live import LiveServer
from tests.web._browser import axe_source, start_browser
from tests.web._web_world import World


@pytest.fixture
def world(fhir: FhirClients, settings: Settings) -> World:
    return World.build(fhir, settings)


@pytest.fixture(scope="session")
def axe() -> str:
    return axe_source()


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    driver = start_browser(tmp_path_factory.mktemp("chromium-profile"))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def browser(chromium: WebDriver, server: LiveServer) -> WebDriver:
    """The session's browser with no cookies left from an earlier test."""
    chromium.get(f"{server.base_url}/app/login")
    chromium.delete_all_cookies()
    return chromium


@pytest.fixture(scope="session")
def screenshots() -> Path | None:
    """Where page screenshots go: WRAPAROUND_SCREENSHOTS (e.g. docs/screenshots) or nowhere."""
    folder = os.environ.get("WRAPAROUND_SCREENSHOTS")
    return Path(folder) if folder else None
