"""The relay flow on a real Prefect server: it sends, and shows supervisors an artifact of the incidents."""

import asyncio
import json

import pytest

from flows.notify import relay_notifications, send_unit_digests
from models.enums import Status
from tests.factories import order_in
from tests.notifications.smtp import running_smtp


@pytest.fixture
def smtp(directory, monkeypatch):
    yield from running_smtp(monkeypatch)


@pytest.fixture
def prefect(prefect_client_env):
    """The flows' logs stay local: shipping them to the API would outlive the session's server at exit."""
    from prefect.settings import PREFECT_LOGGING_TO_API_ENABLED, temporary_settings

    with temporary_settings({PREFECT_LOGGING_TO_API_ENABLED: False}):
        yield prefect_client_env


async def _incident_artifacts() -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["notification-incidents"])))


def test_the_relay_flow_sends_and_publishes_a_5xx_as_an_incident_artifact(smtp, prefect):
    order_in(Status.DISPATCHED)
    smtp.script = ["554 5.7.1 <img src=x onerror=alert(1)> refused by policy"]
    before = len(asyncio.run(_incident_artifacts()))
    result = asyncio.run(relay_notifications())
    assert result == {"claimed": 2, "sent": 1, "retried": 0, "failed": 1, "incidents_listed": 1}
    assert len(smtp.wait_for(1)) == 1
    artifacts = asyncio.run(_incident_artifacts())
    assert len(artifacts) == before + 1
    newest = max(artifacts, key=lambda a: a.created)
    # The mail server's reply is shown as the text it is: escaped for the markdown the UI renders.
    [row] = json.loads(newest.data) if isinstance(newest.data, str) else newest.data
    assert row["error"] == r"server replied 554 5\.7\.1 &lt;img src=x onerror=alert\(1\)&gt; refused by policy"
    assert asyncio.run(send_unit_digests(working_days_only=False)) == {"units": 2}
    assert asyncio.run(relay_notifications())["sent"] == 2
