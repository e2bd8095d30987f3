"""Security tests: headless Chromium, and order numbers of their own on the shared Prefect server."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.notifications.smtp import ScriptedHandler, running_smtp
from tests.portal.test_units_browser import CHROMIUM_ARGS


@pytest.fixture(autouse=True)
def _numbered(own_order_numbers) -> None:
    """Each test numbers its orders under a city code of its own."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def smtp(directory, monkeypatch) -> Iterator[ScriptedHandler]:
    yield from running_smtp(monkeypatch)
