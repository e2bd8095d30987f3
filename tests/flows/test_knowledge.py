"""The knowledge-base and hot-spot flows on a real Prefect server: they run the upkeep and publish artifacts."""

import asyncio
import json
from datetime import UTC, date, datetime, timedelta

import pytest

from flows.knowledge import detect_hot_spots, remind_stale_articles, tell_merged_citizens
from tasks.intake import intake_file
from tests.factories import T0
from tests.intake_helpers import channel, load_articles, search_ready

pytestmark = pytest.mark.prefect
DAY = date(2021, 3, 21)


@pytest.fixture
def in_process_flows(prefect_client_env):
    """Flows run in this process: their logs and events are sent before the session's server stops."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    yield prefect_client_env
    APILogWorker.drain_all(timeout=30)
    EventsWorker.drain_all(timeout=30)


def _latest_artifact(key: str) -> list[dict]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                           limit=1, sort="CREATED_DESC")
    return json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data


def test_upkeep_flows_remind_alert_and_publish_artifacts(directory, in_process_flows, tmp_path):
    search_ready(directory)
    load_articles(tmp_path, T0, review_by=date(2021, 4, 30))
    stale = asyncio.run(remind_stale_articles(at=datetime(2021, 5, 7, 4, tzinfo=UTC)))
    assert stale["reminders"] == 4 and stale["cases_opened"] == 3 and stale["gaps_sent"] == 0
    rows = _latest_artifact("kb-stale-articles")
    assert {row["code"] for row in rows} == {r"KB\-HR\-001", r"KB\-HR\-002", r"KB\-GAS\-001", r"KB\-HF\-001"}

    identity, _ = channel("hotline")
    path = tmp_path / "surge.jsonl"
    path.write_text("\n".join(json.dumps({
        "content": f"广场舞音响太吵第{n}次", "item_type": "complaint",
        "category": "city_appearance_life_services.noise", "district": "lusong", "channel_ref": f"N-{n}",
        "received_at": (datetime.fromisoformat(f"{DAY}T19:00:00+08:00") + timedelta(minutes=n)).isoformat(),
    }, ensure_ascii=False) for n in range(21)), encoding="utf-8")
    assert intake_file(path=path, channel=identity).created == 21
    spots = asyncio.run(detect_hot_spots(day=DAY, at=datetime(2021, 3, 21, 15, tzinfo=UTC)))
    assert spots == {"hot_spots": 2}
    table = _latest_artifact("hot-spots")
    assert {row["热点"] for row in table} == {"噪音扰民", "城市管理市容和生活服务"}
    assert all(row["区县"] == "芦淞区" and row["近7天"] == 21 for row in table)
    assert asyncio.run(tell_merged_citizens(at=datetime(2021, 3, 22, tzinfo=UTC))) == 0
