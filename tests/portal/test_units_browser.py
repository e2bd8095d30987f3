"""Units in headless Chromium: from the link in a received mail to a signed and answered order."""

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from prefect.client.orchestration import get_client
from sqlalchemy import func, select

from duban.db import session_scope
from models.enums import Status
from models.lifecycle import Action
from models.records import Event
from models.requests import ReturnRequest
from models.work_order import WorkOrder
from tasks.relay import relay_once
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.factories import T0, new_order, step
from tests.flows import driver
from tests.flows.test_lifecycle import dispatched_orders
from tests.notifications.smtp import Received, ScriptedHandler, running_smtp
from tests.portal.live import portal_process, running_portal

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
ON_SITE = "city_appearance_life_services.manhole_covers"


@pytest.fixture(autouse=True)
def _numbered(own_order_numbers) -> None:
    """Order numbers of this test's own: the runs of the last test share the Prefect server with others."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def smtp(directory, monkeypatch) -> Iterator[ScriptedHandler]:
    yield from running_smtp(monkeypatch)


@pytest.fixture
def portal(smtp, monkeypatch, tmp_path) -> Iterator[str]:
    yield from running_portal(monkeypatch, tmp_path)


@pytest.fixture
def deployed_portal(smtp, prefect_client_env, monkeypatch, tmp_path) -> Iterator[str]:
    """The portal in its own process, talking to the test Prefect server."""
    yield from portal_process(monkeypatch, tmp_path)


@pytest.fixture
def phone(browser) -> Iterator[Page]:
    """A phone-sized page."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _dispatch(category: str | None = None) -> tuple[int, str]:
    order_id = new_order(category=category) if category else new_order()
    step(order_id, Action.DISPATCH, T0)
    with session_scope(readonly=True) as session:
        return order_id, session.get(WorkOrder, order_id).number


def _mail(smtp: ScriptedHandler, kind: str, number: str) -> Received:
    relay_once()
    for mail in reversed(smtp.received):
        if mail.message["X-Duban-Kind"] == kind and number in mail.message["Subject"]:
            return mail
    raise AssertionError(f"no {kind} mail for {number} arrived: {[m.message['Subject'] for m in smtp.received]}")


def _link(mail: Received, label: str) -> str:
    found = re.search(rf'href="([^"]+)"[^>]*>{label}', mail.html)
    assert found, f"no link {label!r} in the mail"
    return found.group(1)


def test_a_unit_follows_the_mailed_link_signs_and_replies_and_a_used_link_offers_a_fresh_one(
        phone, smtp, portal, tmp_path):
    order_id, number = _dispatch()
    link = _link(_mail(smtp, "dispatch", number), "查看并办理")
    assert link.startswith(portal)
    phone.goto(link)
    assert number in phone.inner_text("h1") and "已派单" in phone.inner_text("h1")
    phone.get_by_role("link", name="签收 Sign for").click()
    phone.get_by_role("button", name="确认签收 Sign for this order").click()
    assert "已签收" in phone.inner_text("#result") and "办理中" in phone.inner_text("h1")
    phone.get_by_role("link", name="办结回复 Reply").click()
    phone.fill("#text", "已到现场核实，施工方已停止夜间施工")
    phone.check("input[name=contacted][value=yes]")
    phone.check("input[name=solved][value=yes]")
    phone.set_input_files("#files", files=[{"name": "scene.png", "mimeType": "image/png", "buffer": PNG}])
    phone.get_by_role("button", name="提交回复 Submit the reply").click()
    assert "办结回复已提交" in phone.inner_text("#result") and "已回复" in phone.inner_text("h1")
    phone.screenshot(path=tmp_path / "replied.png", full_page=True)
    assert (tmp_path / "replied.png").stat().st_size > 10_000
    with session_scope(readonly=True) as session:
        assert session.get(WorkOrder, order_id).status == Status.REPLIED
        names = list(session.scalars(select(Event.name).where(Event.work_order_id == order_id).order_by(Event.id)))
    assert names[-2:] == ["work_order_signed", "reply_submitted"]

    phone.goto(link)
    assert "已使用" in phone.inner_text("#refusal")
    phone.get_by_role("button", name="发送新链接 Mail me a fresh link").click()
    assert "新链接将发送至" in phone.inner_text("#result")
    fresh = _link(_mail(smtp, "action_link", number), "查看并办理")
    assert fresh != link
    phone.goto(fresh)
    assert number in phone.inner_text("h1") and "已回复" in phone.inner_text("h1")


def test_a_second_units_link_cannot_open_the_first_units_order(phone, smtp, portal):
    _, first = _dispatch()
    _, second = _dispatch(ON_SITE)
    first_mail = _mail(smtp, "dispatch", first)
    second_link = _link(_mail(smtp, "dispatch", second), "查看并办理")
    assert first_mail.rcpt_tos != _mail(smtp, "dispatch", second).rcpt_tos
    phone.goto(f"{second_link}/orders/{first}")
    assert "不在贵单位名下" in phone.inner_text("#refusal")
    assert first not in phone.content() and "夜间施工" not in phone.content()
    inbox = _link(_mail(smtp, "dispatch", second), "本单位全部待办工单")
    phone.goto(inbox)
    assert second in phone.inner_text("table") and first not in phone.content()
    phone.goto(f"{inbox}/orders/{first}")
    assert "不在贵单位名下" in phone.inner_text("#refusal")


def test_a_return_without_on_site_evidence_is_refused_with_a_clear_message_keeping_the_reason(
        phone, smtp, portal, tmp_path):
    order_id, number = _dispatch(ON_SITE)
    phone.goto(_link(_mail(smtp, "dispatch", number), "查看并办理"))
    phone.get_by_role("link", name="申请退单 Request a return").click()
    assert "此类别须到现场核实" in phone.inner_text(".warn")
    phone.fill("#reason", "井盖属燃气公司，不属本单位职责")
    phone.get_by_role("button", name="提交退单申请 Request the return").click()
    message = phone.inner_text("#form-error")
    assert "请上传现场照片或填写核实说明" in message and "自动驳回" in message
    assert phone.input_value("#reason") == "井盖属燃气公司，不属本单位职责"
    phone.screenshot(path=tmp_path / "return-refused.png", full_page=True)
    assert (tmp_path / "return-refused.png").stat().st_size > 10_000
    with session_scope(readonly=True) as session:
        assert session.get(WorkOrder, order_id).status == Status.DISPATCHED
        assert session.scalar(select(func.count()).select_from(ReturnRequest)) == 0


def _woken(order_id: int, within: float = 30) -> None:
    """The order's run leaves its suspended state soon after the unit acted (the reconciler would take minutes)."""
    deadline = time.monotonic() + within
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            if not client.read_flow_run(driver.run_id(order_id)).state.is_paused():
                return
            time.sleep(0.1)
    raise AssertionError(f"the run of order {order_id} was not woken within {within:.0f} s of the unit's action")


def _waiting(order_id: int, wait: str, timeout: float = 180) -> str:
    """Wait until the order's lifecycle run is suspended waiting for `wait`; returns the run's id."""
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            run = client.read_flow_run(driver.run_id(order_id))
            if run.state.is_paused() and (run.state.state_details.pause_key or "").startswith(f"{wait}-v"):
                return str(run.id)
            time.sleep(0.3)
    raise TimeoutError(f"the run of order {order_id} never waited for {wait}; last state {run.state}")


def test_the_orders_prefect_run_moves_on_when_the_unit_signs_and_replies_on_its_phone(
        worker, deployed_portal, smtp, phone):
    (order_id,) = dispatched_orders(1)
    number = driver.number(order_id)
    run_id = _waiting(order_id, "unit-sign")
    phone.goto(_link(_mail(smtp, "dispatch", number), "查看并办理"))
    phone.get_by_role("link", name="签收 Sign for").click()
    phone.get_by_role("button", name="确认签收 Sign for this order").click()
    assert "已签收" in phone.inner_text("#result")
    # The portal answered at once and woke the suspended run, which read the order and now waits for the reply.
    _woken(order_id)
    assert _waiting(order_id, "unit-reply") == run_id
    phone.get_by_role("link", name="办结回复 Reply").click()
    phone.fill("#text", "已到现场核实，施工方已停止夜间施工")
    phone.check("input[name=contacted][value=yes]")
    phone.check("input[name=solved][value=yes]")
    phone.get_by_role("button", name="提交回复 Submit the reply").click()
    assert "办结回复已提交" in phone.inner_text("#result")
    _woken(order_id)
    assert _waiting(order_id, "reply-review") == run_id
    with session_scope(readonly=True) as session:
        assert session.get(WorkOrder, order_id).status == Status.REPLIED
    assert driver.events(order_id)[-2:] == ["work_order_signed", "reply_submitted"]
