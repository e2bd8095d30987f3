"""Flow tests: the Prefect server and worker fixtures come from tests/prefect_fixtures.py."""

import pytest


@pytest.fixture(autouse=True)
def _numbered(own_order_numbers) -> None:
    """Every flow test numbers its orders under a city code of its own."""
