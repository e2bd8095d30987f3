"""Supervisors in headless Chromium, through the gateway, on real lifecycle runs that a Duban worker executes."""

import time
from datetime import timedelta

from playwright.sync_api import Page
from sqlalchemy import select

from duban.db import session_scope
from models.base import utcnow
from models.enums import ActorKind, Status
from models.records import Event
from models.work_order import WorkOrder
from tasks.accounts import add_user, audit_trail
from tests.browser import search_runs
from tests.flows import driver as d
from tests.flows.test_lifecycle import dispatched_orders
from tests.flows.test_recovery import _state, _wait_for
from tests.gateway.helpers import PASSWORD
from tests.prefect_fixtures import production_database


def waiting_for_review() -> int:
    """A dispatched order its unit signed for and replied to; its run now waits for the reply review form."""
    (order_id,) = dispatched_orders(1)
    for wait, act in (("unit-sign", d.sign), ("unit-reply", d.reply)):
        _wait_for(order_id, lambda s, w=wait: s.is_paused() and s.state_details.pause_key.startswith(w))
        act(order_id)
    _wait_for(order_id, lambda s: s.is_paused() and s.state_details.pause_key.startswith("reply-review"))
    return order_id


def _sign_in(chromium, gateway: str, name: str, path: str) -> Page:
    """A fresh browser of one person, opening a gateway page and sent through the login form first."""
    page = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(f"{gateway}{path}")
    assert page.url.startswith(f"{gateway}/login?next=")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    return page


def _approve_in_the_form(page: Page) -> None:
    """On a suspended run's page: Resume, choose approve, leave the name empty, submit."""
    page.get_by_text("Suspended").first.wait_for(timeout=60_000)
    page.locator("button:has-text('Resume')").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("回复审核 Reply review").wait_for(timeout=30_000)
    assert "Decided By (Optional)" in dialog.inner_text()
    dialog.locator(".p-select-button__control").first.focus()
    page.keyboard.press("ArrowDown")  # opens the dropdown of allowed decisions
    page.get_by_role("option", name="approve", exact=True).click()
    dialog.get_by_role("button", name="Submit").click()


def _event(order_id: int, name: str, timeout: float = 180) -> Event:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(readonly=True) as session:
            found = session.scalar(select(Event).where(Event.work_order_id == order_id, Event.name == name))
            if found is not None:
                session.expunge(found)
                return found
        time.sleep(0.3)
    raise TimeoutError(f"no {name} event on order {order_id} within {timeout:.0f} s: {d.events(order_id)}")


def _where_it_stopped(order_id: int, worker, failed_api_calls: list[str]) -> str:
    """What a timed-out decision left behind: the run's state, the decisions audited, the worker's last lines."""
    now = utcnow()
    decisions = [(row.user, row.outcome, row.details) for row in audit_trail(start=now - timedelta(hours=1), end=now)
                 if row.action == "decision"]
    log = sorted(worker.log_dir.glob("worker-*.log"))[-1].read_text(errors="replace").splitlines()[-40:]
    return (f"run state: {_state(order_id)}\ndecisions audited: {decisions}\nfailed API calls: {failed_api_calls}\n"
            "worker log:\n" + "\n".join(log))


def _status(order_id: int) -> str:
    with session_scope(readonly=True) as session:
        return session.get(WorkOrder, order_id).status


@production_database
def test_a_deciders_form_on_a_real_order_puts_their_name_in_its_history(gateway, authed_worker, authed_prefect,
                                                                       chromium, tmp_path):
    order_id = waiting_for_review()
    number, run_id, unit = d.number(order_id), d.run_id(order_id), d.lead(order_id).id
    add_user(name="li.wei", role="decider", password=PASSWORD, unit=unit)  # the unit's liaison at the hotline
    add_user(name="wang.fang", role="decider", password=PASSWORD)

    insider = _sign_in(chromium, gateway, "li.wei", f"/runs/flow-run/{run_id}")
    _approve_in_the_form(insider)
    insider.get_by_text(f"li.wei acts for {unit}, which acted on work order {number}").first.wait_for(timeout=30_000)
    insider.screenshot(path=str(tmp_path / "refused.png"), full_page=True)
    assert _status(order_id) == Status.REPLIED
    assert d.events(order_id)[-1] == "reply_submitted"

    page = _sign_in(chromium, gateway, "wang.fang", "/runs")
    failed_api_calls: list[str] = []
    page.on("response", lambda r: failed_api_calls.append(f"{r.status} {r.url}")
            if "/api/" in r.url and r.status >= 400 else None)
    link = search_runs(page, number, run_id)
    assert page.url.startswith(f"{gateway}/runs") and page.locator("input[type=password]").count() == 0
    page.screenshot(path=str(tmp_path / "runs.png"), full_page=True)
    link.click()
    _approve_in_the_form(page)

    try:
        approved = _event(order_id, "reply_approved")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n{_where_it_stopped(order_id, authed_worker, failed_api_calls)}") from None
    assert (approved.actor_kind, approved.actor_id) == (ActorKind.SUPERVISOR, "wang.fang")
    _wait_for(order_id, lambda s: s.is_paused() and s.state_details.pause_key.startswith("return-visit"))
    key = f"order-{number.lower()}"
    with authed_prefect.client() as client:
        latest = client.post("/api/artifacts/filter", json={
            "artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 1}).json()[0]["id"]
    page.goto(f"{gateway}/artifacts/key/{key}")
    row = page.locator("tr", has_text="reply_approved").first
    page.get_by_text(latest[:8]).first.click()
    row.wait_for(timeout=20_000)
    page.screenshot(path=str(tmp_path / "timeline.png"), full_page=True)
    assert "wang.fang" in row.inner_text()
    assert failed_api_calls == []

    now = utcnow()
    decisions = [(row.user, row.outcome, row.target, row.details) for row in audit_trail(
        start=now - timedelta(hours=1), end=now) if row.action == "decision"]
    target = f"flow run {number} ({run_id})"
    assert decisions[0][:3] == ("li.wei", 403, target) and "may not also decide" in decisions[0][3]["refused"]
    assert decisions[1:] == [("wang.fang", 201, target, {"decision": "approve"})]
