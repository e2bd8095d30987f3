"""Every kind of notice, sent through the relay to a real SMTP server and read as it arrived."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from duban.db import session_scope
from duban.errors import NotificationError
from models.directory import Unit
from models.lifecycle import Action
from models.records import Notification
from models.work_order import WorkOrder
from notifications.render import KINDS, html_to_text, render_notice
from tasks.digest import enqueue_digests
from tasks.outbox import enqueue_notice
from tasks.relay import relay_once
from tests.factories import T0, new_order, step
from tests.notifications.smtp import running_smtp

PHONE, MASKED = "13812341234", "138****1234"
TYPED, TYPED_MASKED = "13912345678", "139****5678"
DUE = (T0 + timedelta(days=3)).isoformat()
FACTS = {"stage": "handling", "stage_label": "办理", "rung": "warning", "deadline": DUE, "role": "lead"}
# What the code that queues each kind puts beside the order's own context.
EXTRAS: dict[str, dict] = {
    "dispatch": {"role": "lead", "sign_due_at": DUE, "handling_due_at": DUE},
    "dispatch_assist": {"role": "assist", "sign_due_at": DUE, "handling_due_at": DUE},
    "deadline_warning": FACTS,
    "overdue_notice": FACTS | {"rung": "overdue"},
    "return_decision": {"approved": False, "reason": "请到现场核实", "automatic": True},
    "extension_decision": {"approved": True, "reason": "同意", "granted_due_at": DUE},
    "reply_sent_back": {"reason": "答复过于简单"},
    "redo": {"comment": "市民称无人到场", "redo_count": 1},
    "supervision_case": {"case_id": 3, "case_kind": "overdue", "case_label": "超期督办",
                         "evidence": {"reasons": ["办理超过期限"]}},
    "circulated_notice": FACTS | {"rung": "notice"},
    "action_link": {},
}


@pytest.fixture
def smtp(directory, monkeypatch):
    yield from running_smtp(monkeypatch)


def _dispatched_order(confidential: bool, *, signed: bool) -> int:
    order_id = new_order(confidential=confidential)
    with session_scope() as session:
        order = session.get(WorkOrder, order_id)
        order.content = f"夜间施工噪音扰民，请回电{TYPED}"
    step(order_id, Action.DISPATCH, T0)
    if signed:
        step(order_id, Action.SIGN, T0 + timedelta(minutes=5))
    return order_id


def _queue_every_kind(order_id: int) -> None:
    with session_scope() as session:
        order = session.get(WorkOrder, order_id)
        unit = session.scalars(select(Unit).where(Unit.code == "ecology_environment")).one()
        for kind, extra in EXTRAS.items():
            enqueue_notice(session, kind=kind, order=order, unit=unit, recipients=[unit.email], at=T0, extra=extra)


def test_every_kind_arrives_with_a_masked_contact_and_nothing_for_a_confidential_citizen(smtp):
    orders = {confidential: (_dispatched_order(confidential, signed=True),
                             _dispatched_order(confidential, signed=False)) for confidential in (False, True)}
    with session_scope() as session:
        # Only the notices this test queues below go out.
        session.execute(Notification.__table__.update().values(send_state="sent"))
        numbers = {session.get(WorkOrder, i).number: c for c, pair in orders.items() for i in pair}
    for handling, dispatched in orders.values():
        _queue_every_kind(handling)
        with session_scope() as session:
            order = session.get(WorkOrder, dispatched)
            unit = session.scalars(select(Unit).where(Unit.code == "ecology_environment")).one()
            enqueue_notice(session, kind="deadline_warning", order=order, unit=unit, recipients=[unit.email], at=T0,
                           extra=FACTS | {"stage": "sign_for", "stage_label": "签收"})
    digests = enqueue_digests(at=T0 + timedelta(hours=1))
    report = relay_once()
    assert digests >= 1 and report.failed == 0 and report.sent == 2 * (len(EXTRAS) + 1) + digests
    mails = smtp.wait_for(report.sent)
    subjects: dict[str, set[str]] = {}
    for mail in mails:
        subjects.setdefault(mail.message["X-Duban-Kind"], set()).add(mail.message["Subject"].split("】")[1].split()[0])
        assert PHONE not in mail.raw and TYPED not in mail.raw and "张三" not in mail.text
        if mail.message["X-Duban-Kind"] == "digest":
            continue
        if numbers[mail.message["X-Duban-Order"]]:
            assert "张" not in mail.text and MASKED not in mail.text and "市民 Citizen" not in mail.text
        else:
            assert MASKED in mail.text and MASKED in mail.html and "张先生/女士" in mail.html
        # A number typed into the request's text is masked too.
        assert TYPED_MASKED in mail.text
    assert set(subjects) == set(EXTRAS) | {"digest"}
    # Every kind this test queues arrives under its own title (the sign-for reminder stands in for the warning).
    assert set().union(*subjects.values()) == {KINDS[k].title_zh for k in set(EXTRAS) | {"digest", "sign_reminder"}}


def test_digests_go_out_on_working_days_only_make_up_days_included(directory):
    _dispatched_order(False, signed=True)
    assert enqueue_digests(at=datetime(2021, 10, 1, 1, 0, tzinfo=UTC)) == 0, "National Day"
    assert enqueue_digests(at=datetime(2021, 9, 26, 1, 0, tzinfo=UTC)) == 2, "a Sunday worked for National Day"
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Notification)
                              .where(Notification.kind == "digest")) == 2


def test_an_unknown_kind_becomes_an_incident_and_no_empty_mail_is_sent(smtp):
    order_id = new_order()
    with session_scope() as session:
        enqueue_notice(session, kind="weather_report", order=session.get(WorkOrder, order_id), unit=None,
                       recipients=["duban@zz12345.example.gov.cn"], at=T0)
    report = relay_once()
    assert report.failed == 1 and smtp.received == []
    with session_scope() as session:
        notice = session.scalars(select(Notification)).one()
        assert notice.send_state == "failed" and "no template for notice kind 'weather_report'" in notice.last_error


def test_rendering_names_what_is_missing_and_never_shows_private_keys():
    with pytest.raises(NotificationError, match="sign_due_at"):
        render_notice(kind="dispatch", context={"order_number": "ZZ1", "category": "", "title": "", "content": "x",
                                                "address": "", "citizen": "", "due_at": None})
    mail = render_notice(kind="reply_sent_back", context={
        "order_number": "ZZ1", "category": "噪音", "title": "", "content": "x", "address": "", "citizen": "",
        "due_at": None, "reason": "请补充", "citizen_phone": PHONE, "citizen_name": "张三"})
    assert PHONE not in mail.html and "张三" not in mail.html and "请补充" in mail.text


def test_the_plain_text_alternative_keeps_links_and_reads_as_lines():
    text = html_to_text('<p>请 <strong>尽快</strong> 办理</p><p><a href="http://portal/u/abc">打开 Open</a></p>'
                        "<table><tr><th>工单</th><td>ZZ1</td></tr></table>")
    assert text == "请 尽快 办理\n\n打开 Open <http://portal/u/abc>\n\n工单  ZZ1\n"
