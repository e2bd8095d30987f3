"""The monthly and annual report flows on a real Prefect server: artifacts with keys, and the mail queued."""

import asyncio
import json
from datetime import date

from sqlalchemy import select

from duban.db import session_scope
from flows.reports import publish_annual_report, publish_monthly_report
from models.records import Notification
from tasks.history import import_history
from tests.tasks.history_kit import write
from tests.tasks.test_report import march_2021


async def _artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
        return found[0] if found else None


def test_the_report_flows_publish_artifacts_and_mail_the_leaders(directory, prefect_client_env, tmp_path):
    import_history(path=write(tmp_path / "march.jsonl", march_2021()))
    # By default the month before today: April 2021 reports March.
    monthly = asyncio.run(publish_monthly_report(today=date(2021, 4, 2)))
    assert monthly == {"period": "2021-03", "valid_items": 8, "mailed": 1}
    markdown = asyncio.run(_artifact("hotline-report-monthly"))
    assert "2021年3月，株洲市12345热线共接通来电13个" in markdown.data
    assert markdown.data.count("data:image/png;base64,") == 4
    table = asyncio.run(_artifact("hotline-report-monthly-2021-03"))
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert {"figure": "valid_items_accepted", "value": 8, "year_before": 5} in rows
    annual = asyncio.run(publish_annual_report(year="2021"))
    assert annual == {"period": "2021", "valid_items": 9, "mailed": 1}  # K came in February
    assert asyncio.run(_artifact("hotline-report-annual-2021")) is not None
    with session_scope(readonly=True) as session:
        mails = [(m.recipients, m.context["period"], m.context["paragraph_zh"], m.message_id) for m in session.scalars(
            select(Notification).where(Notification.kind == "report").order_by(Notification.id))]
    assert [(recipients, period) for recipients, period, _, _ in mails] == [
        (["leaders@zz12345.example.gov.cn"], "2021-03"), (["leaders@zz12345.example.gov.cn"], "2021")]
    assert mails[0][2].startswith("2021年3月") and mails[0][3] != mails[1][3]
