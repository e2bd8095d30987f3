"""Duban's events reach a real Prefect server as Prefect events, and the shipped automation fires on them."""

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from duban.cli import app
from duban.db import session_scope
from flows.events import publish_events
from models.base import utcnow
from models.lifecycle import Action
from models.records import Event
from models.work_order import WorkOrder
from tests.factories import new_order, step

ROOT = Path(__file__).resolve().parents[2]


class Hook(BaseHTTPRequestHandler):
    received: list[str] = []

    def do_POST(self) -> None:  # noqa: N802
        Hook.received.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    """A local HTTP endpoint standing in for the leaders' notification channel."""
    Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()


def _published(api: str, number: str, since) -> list[dict]:
    body = {"filter": {"resource": {"id": [f"duban.work-order.{number}"]}, "occurred": {"since": since.isoformat(),
                                                                      "until": utcnow().isoformat()}},
            "limit": 50}
    return httpx.post(f"{api}/events/filter", json=body, timeout=10).json()["events"]


def _until(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.5)
    return predicate()


def test_events_arrive_without_personal_data_and_the_shipped_automation_fires(directory, prefect_client_env,
                                                                               webhook):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    CustomWebhookNotificationBlock(name="duban-leaders", url=webhook,
                                   json_data={"subject": "{{subject}}", "body": "{{body}}"}).save(
        "duban-leaders", overwrite=True)
    created = CliRunner().invoke(app, ["automations", "apply", str(ROOT / "automations" / "return-twice.yaml")])
    assert created.exit_code == 0, created.output

    base = utcnow() - timedelta(hours=1)
    order_id = new_order(at=base)
    for i, action in enumerate([Action.DISPATCH, Action.REQUEST_RETURN, Action.APPROVE_RETURN,
                                Action.REQUEST_RETURN, Action.APPROVE_RETURN]):
        step(order_id, action, base + timedelta(minutes=i + 1))
    with session_scope(readonly=True) as session:
        number = session.get(WorkOrder, order_id).number
        rows = session.scalar(select(func.count()).select_from(Event))
        mine = session.scalar(select(func.count()).select_from(Event).where(Event.work_order_id == order_id))

    assert asyncio.run(publish_events()) == rows
    assert asyncio.run(publish_events()) == 0  # the cursor resumes after what was accepted

    events = _until(lambda: len(found := _published(prefect_client_env, number, base - timedelta(minutes=1))) >= mine
                    and found, 60)
    names = sorted(e["event"] for e in events)
    assert len(events) == mine
    assert names.count("duban.work_order.returned") == 2 and "duban.work_order.dispatched" in names
    dispatched = next(e for e in events if e["event"] == "duban.work_order.dispatched")
    assert dispatched["resource"] == {"prefect.resource.id": f"duban.work-order.{number}",
                                      "prefect.resource.name": number}
    roles = {r["prefect.resource.role"]: r["prefect.resource.id"] for r in dispatched["related"]}
    assert roles["category"] == "duban.category.city_appearance_life_services.noise"
    assert roles["unit"] == "duban.unit.ecology_environment"
    dumped = json.dumps(events, ensure_ascii=False)
    assert "13812341234" not in dumped and "张三" not in dumped and "夜间施工" not in dumped

    notified = _until(lambda: [body for body in Hook.received if number in body], 60)
    assert notified and "returned twice" in notified[0]
