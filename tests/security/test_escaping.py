"""Text with HTML and script, from a citizen and from a unit, is shown as text: portal, mail, Prefect UI."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import select

from duban.db import session_scope
from models.lifecycle import Action
from models.work_order import WorkOrder
from tasks.channels import add_channel
from tasks.relay import relay_once
from tasks.runs import start_order_runs
from tasks.transitions import Actor, transition
from tests.faults.processes import wait_until
from tests.faults.test_worker_kill import _waiting
from tests.flows import driver as d
from tests.notifications.smtp import Received
from tests.portal.live import running_portal
from tests.portal.test_units_browser import _link
from tests.prefect_fixtures import production_database


class Beacon(BaseHTTPRequestHandler):
    """Counts requests: an image that a page fetched because someone's text told it to."""

    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        Beacon.hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def beacon() -> Iterator[str]:
    Beacon.hits = []
    server = HTTPServer(("127.0.0.1", 0), Beacon)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/beacon.png"
    server.shutdown()
    server.server_close()


def hostile(where: str, beacon: str) -> str:
    """Script, an event handler, a javascript: link, and markdown that would fetch an image or make a link."""
    return (f'<script>window.__pwned="{where}-script"</script><img src="{beacon}?{where}" '
            f'onerror="window.__pwned=\'{where}-img\'"><a href="javascript:window.__pwned=1">点我</a> '
            f"![x]({beacon}?{where}-md) [点我](javascript:window.__pwned='{where}-md')")


@pytest.fixture
def portal(smtp, monkeypatch, tmp_path) -> Iterator[str]:
    yield from running_portal(monkeypatch, tmp_path)


def _no_script_ran(page: Page, where: str) -> None:
    assert page.evaluate("() => window.__pwned") is None, f"a script ran in {where}"


@production_database
def test_html_and_script_from_citizens_and_units_stay_text_in_the_portal_the_mail_and_the_prefect_ui(
        smtp, portal, worker, browser: Browser, beacon):
    with session_scope() as session:
        _, key = add_channel(session=session, name="wechat")
    item = {"title": '<script>window.__pwned="title"</script>', "content": "市民反映：" + hostile("content", beacon),
            "item_type": "complaint", "category": "city_appearance_life_services.noise",
            "address": hostile("address", beacon)[:300], "citizen_name": '<img src=x onerror="window.__pwned=9">',
            "citizen_phone": "13812345678"}
    created = httpx.post(f"{portal}/api/v1/items", json=item, headers={"X-API-Key": key}, timeout=30)
    assert created.status_code == 201, created.text
    with session_scope(readonly=True) as session:
        order_id = session.scalar(select(WorkOrder.id).where(WorkOrder.number == created.json()["number"]))
    transition(order_id=order_id, action=Action.DISPATCH, actor=Actor.system())
    start_order_runs(order_ids=[order_id])
    number = d.number(order_id)

    # The mail: escaped in the HTML part, and no script runs when a browser shows it.
    relay_once()
    mail: Received = next(m for m in smtp.received if m.message["X-Duban-Kind"] == "dispatch")
    assert "<script" not in mail.html and "onerror=" not in mail.html.replace("onerror=&#34;", "")
    assert "&lt;script&gt;" in mail.html
    context = browser.new_context()
    page = context.new_page()
    page.set_content(mail.html)
    _no_script_ran(page, "the mail")
    assert "<script>" in page.inner_text("body"), "the citizen's text is shown as it was typed"

    # The unit's pages, then the unit's own hostile reason for a return.
    page.goto(_link(mail, "查看并办理"))
    _no_script_ran(page, "the order page")
    assert '<script>window.__pwned="title"</script>' in page.inner_text("body")
    page.get_by_role("link", name="申请退单 Request a return").click()
    page.fill("#reason", hostile("reason", beacon))
    page.fill("#evidence_note", hostile("note", beacon))
    page.get_by_role("button", name="提交退单申请 Request the return").click()
    page.wait_for_selector("#result")
    _no_script_ran(page, "the page after the return request")
    context.close()
    wait_until(lambda: _waiting(order_id, "return-decision"), "the run waiting for the return decision", timeout=90)

    # The supervisor's view in the Prefect UI: the run, its log, the decision form and the timeline artifact.
    ui = worker.api.removesuffix("/api")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{ui}/runs/flow-run/{d.run_id(order_id)}", wait_until="networkidle")
    page.get_by_text("Suspended").first.wait_for(timeout=60_000)
    page.locator("button:has-text('Resume')").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("退单审核").wait_for(timeout=30_000)
    _no_script_ran(page, "the decision form")
    shown = dialog.inner_text()
    assert "<script>" in shown and "![x]" in shown, "the unit's reason is shown as typed, not rendered"
    [timeline] = httpx.post(f"{worker.api}/artifacts/filter", timeout=30, json={
        "artifacts": {"key": {"any_": [f"order-{number.lower()}"]}}, "sort": "CREATED_DESC", "limit": 1}).json()
    page.goto(f"{ui}/artifacts/artifact/{timeline['id']}", wait_until="networkidle")
    page.get_by_text("return_requested").first.wait_for(timeout=30_000)
    _no_script_ran(page, "the timeline artifact")
    assert '<script>window.__pwned="reason-script"</script>' in page.inner_text("body")
    context.close()
    assert Beacon.hits == [], f"someone's text made a browser fetch {Beacon.hits}"
