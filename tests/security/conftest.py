"""Security tests: headless Chromium, mail, and order numbers of their own on the shared Prefect server."""

from collections.abc import Iterator

import pytest

from tests.notifications.smtp import ScriptedHandler, running_smtp
from tests.portal.test_units_browser import browser  # noqa: F401 - the module's headless Chromium, shared here


@pytest.fixture(autouse=True)
def _numbered(own_order_numbers) -> None:
    """Each test numbers its orders under a city code of its own."""


@pytest.fixture
def smtp(directory, monkeypatch) -> Iterator[ScriptedHandler]:
    yield from running_smtp(monkeypatch)
