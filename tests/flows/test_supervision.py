"""The supervision flows on a real Prefect server: the sweep, and scorecards with their artifacts."""

import asyncio
from datetime import timedelta

from sqlalchemy import select

from duban.db import session_scope
from flows.supervision import publish_scorecards, sweep_deadlines
from models.records import Notification
from tests.tasks.supervision_kit import dispatched, local

DISPATCH = local(2021, 2, 10, 16, 0)
NOTICE = local(2021, 2, 22, 9, 0)


async def _artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
        return found[0] if found else None


def test_the_sweep_and_scorecard_flows_publish_their_results(directory, prefect_client_env):
    dispatched(DISPATCH)
    counts = asyncio.run(sweep_deadlines(now=NOTICE + timedelta(hours=1)))
    assert counts == {"warning": 1, "overdue": 1, "case": 1, "notice": 1}
    assert asyncio.run(sweep_deadlines(now=NOTICE + timedelta(hours=2))) == {}

    summary = asyncio.run(publish_scorecards(period="2021-02", as_of=NOTICE + timedelta(hours=1), trend_months=2))
    assert summary == {"units": 1, "circulated": 1, "repeat_complaints_linked": 0}
    report = asyncio.run(_artifact("unit-scorecards"))
    assert "data:image/png;base64," in report.data and "housing" in report.data and "通报" in report.data
    table = asyncio.run(_artifact("unit-scorecard-2021-02"))
    assert table is not None and "housing" in str(table.data)
    with session_scope(readonly=True) as session:
        circulated = session.scalars(select(Notification).where(Notification.kind == "circulated_notice",
                                                                Notification.work_order_id.is_(None))).one()
        assert [e["unit_code"] for e in circulated.context["entries"]] == ["housing"]
