"""The unit pages over HTTP on a real uvicorn: GET shows, POST acts once per link, bad input writes nothing."""

import threading
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from duban.db import session_scope
from duban.errors import Conflict
from duban.settings import get_settings
from models.base import utcnow
from models.enums import Status
from models.lifecycle import Action
from models.records import ActionToken, Event, Notification
from models.requests import ExtensionRequest, ReturnRequest
from models.work_order import Assignment, WorkOrder
from portal.writer import reading_then_writing
from tasks import actions
from tasks.tokens import INBOX, ORDER, issue_token, use_token
from tasks.unit_views import open_order
from tests.factories import T0, lead_actor, new_order, order_in, step
from tests.portal.live import running_portal

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
ON_SITE = "city_appearance_life_services.manhole_covers"


@pytest.fixture
def portal(directory, monkeypatch, tmp_path):
    yield from running_portal(monkeypatch, tmp_path)


@pytest.fixture
def client(portal):
    with httpx.Client(base_url=portal, timeout=30) as http:
        yield http


def _link(order_id: int, scope: str = ORDER) -> tuple[str, str]:
    """A fresh link for the order's lead unit, and the order's number."""
    with session_scope() as session:
        token, _ = issue_token(session=session, unit_id=lead_actor(order_id).unit_id,
                               order_id=order_id if scope == ORDER else None, scope=scope, at=utcnow())
        return token, session.get(WorkOrder, order_id).number


def _state(order_id: int) -> tuple[str, int, int]:
    """Status, version and number of events: what must not move when nothing may be written."""
    with session_scope(readonly=True) as session:
        order = session.get(WorkOrder, order_id)
        events = session.scalar(select(func.count()).select_from(Event).where(Event.work_order_id == order_id))
        return order.status, order.version, events


def _dispatched(category: str | None = None) -> int:
    order_id = new_order(category=category) if category else new_order()
    step(order_id, Action.DISPATCH, T0)
    return order_id


def test_opening_pages_changes_nothing_signing_uses_the_link_up_and_continues_on_a_fresh_one(client):
    order_id = _dispatched()
    token, number = _link(order_id)
    before = _state(order_id)
    page = client.get(f"/u/{token}")
    assert page.status_code == 200 and number in page.text and "138****1234" in page.text
    assert "13812341234" not in page.text and "签收 Sign for" in page.text
    assert client.get(f"/u/{token}/orders/{number}/sign").status_code == 200
    assert _state(order_id) == before
    with session_scope(readonly=True) as session:
        assert session.scalar(select(ActionToken.used_at)) is None
    signed = client.post(f"/u/{token}/orders/{number}/sign")
    assert signed.status_code == 303
    fresh = signed.headers["location"]
    assert fresh.startswith("/u/") and token not in fresh and fresh.endswith("done=sign")
    with session_scope(readonly=True) as session:
        assert session.get(WorkOrder, order_id).status == Status.HANDLING
        event = session.scalars(select(Event).where(Event.name == "work_order_signed")).one()
        assert (event.actor_kind, event.unit_id) == ("unit", lead_actor(order_id).unit_id)
    page = client.get(fresh)
    assert "已签收" in page.text and "办结回复 Reply" in page.text
    again = client.post(f"/u/{token}/orders/{number}/sign")
    assert again.status_code == 410 and "已使用" in again.text and "/fresh" in again.text
    assert client.post(f"/u/{token}/fresh").status_code == 200
    with session_scope(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(Notification)
                              .where(Notification.kind == "action_link")) == 1


def test_a_reply_missing_answers_is_refused_with_what_was_typed_kept_then_accepted_with_evidence(client):
    order_id = order_in(Status.HANDLING)
    token, number = _link(order_id)
    before = _state(order_id)
    refused = client.post(f"/u/{token}/orders/{number}/reply", data={"text": "已到现场，噪音已停止", "solved": "yes"})
    assert refused.status_code == 422 and "是否已联系市民" in refused.text and "已到现场，噪音已停止" in refused.text
    assert _state(order_id) == before
    done = client.post(f"/u/{token}/orders/{number}/reply",
                       data={"text": "已到现场，噪音已停止", "contacted": "yes", "solved": "yes"},
                       files=[("files", ("scene.png", PNG, "image/png"))])
    assert done.status_code == 303
    with session_scope(readonly=True) as session:
        assert session.get(WorkOrder, order_id).status == Status.REPLIED
        lead = session.scalars(select(Assignment).where(Assignment.work_order_id == order_id,
                                                        Assignment.role == "lead")).one()
        assert lead.reply_text == "已到现场，噪音已停止" and lead.reply_contacted and lead.reply_solved
        payload = session.scalars(select(Event.payload).where(Event.name == "reply_submitted")).one()
    [stored] = payload["evidence_files"]
    assert (Path(get_settings().upload_dir) / stored).read_bytes() == PNG


def test_a_return_without_on_site_evidence_is_refused_up_front_and_if_insisted_on_rejected_automatically(client):
    order_id = _dispatched(ON_SITE)
    token, number = _link(order_id)
    form = client.get(f"/u/{token}/orders/{number}/return")
    assert "此类别须到现场核实" in form.text
    before = _state(order_id)
    refused = client.post(f"/u/{token}/orders/{number}/return", data={"reason": "井盖归燃气公司管理"})
    assert refused.status_code == 422
    assert "请上传现场照片或填写核实说明" in refused.text and "井盖归燃气公司管理" in refused.text
    not_a_photo = client.post(f"/u/{token}/orders/{number}/return", data={"reason": "井盖归燃气公司管理"},
                              files=[("files", ("scene.jpg", b"MZ not an image", "image/jpeg"))])
    assert not_a_photo.status_code == 422 and "不是照片" in not_a_photo.text
    assert _state(order_id) == before
    assert not Path(get_settings().upload_dir).exists() or not any(Path(get_settings().upload_dir).rglob("*.*"))
    with session_scope(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(ReturnRequest)) == 0
    assert "坚持提交" in refused.text
    insisted = client.post(f"/u/{token}/orders/{number}/return", data={"reason": "井盖归燃气公司管理", "insist": "yes"})
    assert insisted.status_code == 303 and insisted.headers["location"].endswith("done=return_auto_rejected")
    page = client.get(insisted.headers["location"])
    assert "系统自动驳回" in page.text and "Rejected automatically" in page.text and 'class="alert"' in page.text
    with session_scope(readonly=True) as session:
        assert session.scalars(select(ReturnRequest.decision)).one() == "auto_rejected"
        assert session.get(WorkOrder, order_id).status == Status.DISPATCHED
    token = insisted.headers["location"].split("/")[2]
    accepted = client.post(f"/u/{token}/orders/{number}/return",
                           data={"reason": "井盖归燃气公司管理", "suggested_unit": "gas_company",
                                 "evidence_note": "已到现场，井盖上有燃气标识"},
                           files=[("files", ("scene.png", PNG, "image/png"))])
    assert accepted.status_code == 303 and accepted.headers["location"].endswith("done=return")
    with session_scope(readonly=True) as session:
        request = session.scalars(select(ReturnRequest).where(ReturnRequest.decision == "pending")).one()
        assert session.get(WorkOrder, order_id).status == Status.RETURN_REQUESTED
        assert request.evidence_note == "已到现场，井盖上有燃气标识" and len(request.evidence_files) == 1


def test_an_extension_needs_a_later_date_and_then_waits_for_a_decision(client):
    order_id = order_in(Status.HANDLING)
    token, number = _link(order_id)
    too_early = client.post(f"/u/{token}/orders/{number}/extension",
                            data={"reason": "需协调多个部门", "new_due_at": "2021-03-16T09:00"})
    assert too_early.status_code == 422 and "须晚于当前期限" in too_early.text and "需协调多个部门" in too_early.text
    asked = client.post(f"/u/{token}/orders/{number}/extension",
                        data={"reason": "需协调多个部门", "new_due_at": "2021-04-30T17:00"})
    assert asked.status_code == 303
    page = client.get(asked.headers["location"])
    assert "延期申请待热线办审核" in page.text and f"/orders/{number}/extension" not in page.text
    with session_scope(readonly=True) as session:
        request = session.scalars(select(ExtensionRequest)).one()
        assert request.decision == "pending" and request.requested_due_at == T0.replace(month=4, day=30, hour=9)


def test_an_action_the_status_does_not_allow_writes_nothing_and_two_simultaneous_posts_sign_once(client, portal):
    order_id = _dispatched()
    token, number = _link(order_id)
    before = _state(order_id)
    refused = client.post(f"/u/{token}/orders/{number}/reply", data={"text": "x", "contacted": "yes", "solved": "yes"})
    assert refused.status_code == 409 and "不能回复" in refused.text
    assert _state(order_id) == before
    codes: list[int] = []

    def post() -> None:
        with httpx.Client(base_url=portal, timeout=30) as http:
            codes.append(http.post(f"/u/{token}/orders/{number}/sign").status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(codes)[0] == 303 and sorted(codes)[1] in {409, 410}
    with session_scope(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(Event).where(Event.name == "work_order_signed")) == 1


def test_forged_expired_and_other_units_links_are_refused_and_the_inbox_lists_only_own_orders(client):
    mine, theirs = _dispatched(), _dispatched(ON_SITE)
    token, number = _link(mine)
    _, their_number = _link(theirs)
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert client.get(f"/u/{altered}").status_code == 403
    forged = client.post(f"/u/{altered}/orders/{number}/return", data={"reason": "x"},
                         files=[("files", ("scene.png", PNG, "image/png"))])
    assert forged.status_code == 403 and "此链接无效" in forged.text
    assert not Path(get_settings().upload_dir).exists()
    other = client.get(f"/u/{token}/orders/{their_number}")
    assert other.status_code == 403 and "不在贵单位名下" in other.text and "井盖" not in other.text
    assert client.post(f"/u/{token}/orders/{their_number}/sign").status_code == 403
    assert _state(theirs)[0] == Status.DISPATCHED
    inbox, _ = _link(mine, scope=INBOX)
    listing = client.get(f"/u/{inbox}")
    assert listing.status_code == 200 and number in listing.text and their_number not in listing.text
    assert client.get(f"/u/{inbox}/orders/{number}").status_code == 200
    assert client.get(f"/u/{inbox}/orders/{their_number}").status_code == 403
    with session_scope() as session:
        session.execute(ActionToken.__table__.update().values(expires_at=utcnow() - timedelta(minutes=1)))
    expired = client.get(f"/u/{token}")
    assert expired.status_code == 410 and "已过期" in expired.text and f"/u/{token}/fresh" in expired.text


def test_an_order_changed_between_the_check_and_the_action_is_a_conflict_and_the_link_stays_unused(directory):
    order_id = _dispatched()
    token, number = _link(order_id)
    with pytest.raises(Conflict):
        with reading_then_writing() as (reading, writing):
            grant, view = open_order(token=token, number=number, now=utcnow(), history=False, session=reading)
            step(order_id, Action.SIGN, T0 + timedelta(minutes=5))  # someone else signs meanwhile
            with writing() as session:
                use_token(session=session, grant=grant, at=utcnow())
                actions.sign(order_id=order_id, actor=lead_actor(order_id), expected_version=view.version,
                             session=session)
    assert _state(order_id)[:2] == (Status.HANDLING, view.version + 1)
    with session_scope(readonly=True) as session:
        assert session.get(ActionToken, grant.token_id).used_at is None
        assert session.scalar(select(func.count()).select_from(ActionToken)) == 1
