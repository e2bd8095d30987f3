"""The outbox relay against a real local SMTP server: delivery, retries, incidents, crashes, several relays."""

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from duban.db import session_scope
from models.base import utcnow
from models.directory import Unit
from models.enums import Status
from models.records import Event, Notification
from models.work_order import WorkOrder
from tasks.outbox import enqueue_notice
from tasks.relay import backoff, incident_rows, relay_once
from tests.factories import new_order, order_in
from tests.notifications.smtp import running_smtp, use_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def smtp(directory, monkeypatch):
    yield from running_smtp(monkeypatch)


def _notice(kind: str = "dispatch") -> Notification:
    # A writable scope commits, which keeps the loaded values; a read-only one rolls back and expires them.
    with session_scope() as session:
        return session.scalars(select(Notification).where(Notification.kind == kind).order_by(Notification.id)).first()


def _only_lead_notice() -> int:
    """A dispatched order whose only pending notice is the lead unit's dispatch notice; returns its id."""
    order_in(Status.DISPATCHED)
    with session_scope() as session:
        for notice in session.scalars(select(Notification).where(Notification.kind != "dispatch")):
            notice.send_state = "sent"
        return session.scalar(select(Notification.id).where(Notification.kind == "dispatch"))


def test_a_dispatch_notice_arrives_once_with_its_own_message_id_and_working_links(smtp):
    notice_id = _only_lead_notice()
    report = relay_once()
    assert report.counts() == {"claimed": 1, "sent": 1, "retried": 0, "failed": 0}
    [mail] = smtp.wait_for(1)
    notice = _notice()
    assert notice.id == notice_id and notice.send_state == "sent" and notice.attempts == 1
    assert mail.message["Message-ID"] == notice.message_id == f"<{notice.context['order_number']}.dispatch.1@duban>"
    assert mail.rcpt_tos == notice.recipients
    assert notice.context["order_number"] in mail.message["Subject"] and "派单通知" in mail.message["Subject"]
    assert "/u/" in mail.html and "/u/" in mail.text
    assert relay_once().claimed == 0, "a sent notice is never picked again"


def test_a_server_that_drops_the_line_after_storing_gives_two_copies_of_one_notice(smtp):
    _only_lead_notice()
    smtp.script = ["drop"]
    now = utcnow()
    first = relay_once(now=now)
    assert first.retried == 1 and first.sent == 0
    notice = _notice()
    assert notice.send_state == "pending" and notice.next_attempt_at == now + backoff(1)
    second = relay_once(now=now + backoff(1))
    assert second.sent == 1
    copies = smtp.wait_for(2)
    assert len(copies) == 2
    # Both copies are recognisably the same notice; the outbox holds one row for it.
    assert {c.message["Message-ID"] for c in copies} == {notice.message_id}
    assert copies[0].html == copies[1].html, "a resend carries the same links"
    with session_scope(readonly=True) as session:
        assert len(session.scalars(select(Notification).where(Notification.kind == "dispatch")).all()) == 1


def test_a_4xx_reply_is_retried_with_growing_backoff_written_into_the_due_time(smtp):
    _only_lead_notice()
    smtp.script = ["451 4.3.0 try again later", "421 4.7.0 too busy"]
    now = utcnow()
    assert relay_once(now=now).retried == 1
    assert _notice().next_attempt_at == now + timedelta(seconds=60)
    assert relay_once(now=now + timedelta(seconds=59)).claimed == 0, "inside the backoff nothing is picked"
    assert relay_once(now=now + timedelta(seconds=60)).retried == 1
    notice = _notice()
    assert notice.next_attempt_at == now + timedelta(seconds=180) and "421" in notice.last_error
    assert relay_once(now=now + timedelta(seconds=180)).sent == 1
    assert len(smtp.wait_for(1)) == 1 and _notice().attempts == 3


def test_a_5xx_reply_or_running_out_of_attempts_becomes_an_incident_and_nothing_is_sent(smtp, monkeypatch):
    use_settings(monkeypatch, relay_max_attempts="2")
    _only_lead_notice()
    smtp.script = ["554 5.7.1 message refused"]
    report = relay_once()
    assert report.failed == 1 and report.incidents == [_notice().id]
    notice = _notice()
    assert notice.send_state == "failed" and notice.failed_at is not None and "554" in notice.last_error
    with session_scope() as session:
        event = session.scalars(select(Event).where(Event.name == "notification_failed")).one()
    assert event.work_order_id == notice.work_order_id and event.payload["message_id"] == notice.message_id
    [row] = incident_rows(since=notice.failed_at)
    assert row["order"] == notice.context["order_number"] and "554" in row["error"]
    assert relay_once(now=utcnow() + timedelta(days=1)).claimed == 0

    _only_lead_notice()
    smtp.script = ["450 4.2.1 mailbox busy"] * 2
    now = utcnow()
    assert relay_once(now=now).retried == 1
    assert relay_once(now=now + timedelta(hours=1)).failed == 1
    with session_scope() as session:
        errors = list(session.scalars(select(Notification.last_error).where(Notification.send_state == "failed")
                                      .order_by(Notification.id)))
    assert len(errors) == 2 and errors[1].startswith("gave up after 2 attempts") and smtp.received == []


def test_a_partial_refusal_is_never_marked_sent_a_4xx_retries_the_refused_address_only_a_5xx_is_an_incident(smtp):
    _only_lead_notice()
    with session_scope() as session:
        notice = session.get(Notification, _notice().id)
        unit = session.get(Unit, notice.unit_id)
        notice.recipients = [unit.email, unit.leader_email]
        unit_email, leader_email = unit.email, unit.leader_email
    smtp.refuse = {leader_email: "452 4.2.2 mailbox full"}
    now = utcnow()
    assert relay_once(now=now).retried == 1
    notice = _notice()
    assert notice.send_state == "pending" and notice.delivered_to == [unit_email] and "452" in notice.last_error
    smtp.refuse = {}
    assert relay_once(now=now + backoff(1)).sent == 1
    first, second = smtp.wait_for(2)
    assert first.rcpt_tos == [unit_email] and second.rcpt_tos == [leader_email]
    assert _notice().delivered_to == [unit_email, leader_email]

    with session_scope() as session:
        notice = session.get(Notification, _notice().id)
        notice.send_state, notice.delivered_to = "pending", []
        notice.recipients = [unit_email, "nobody@example.gov.cn"]
    smtp.refuse = {"nobody@example.gov.cn": "550 5.1.1 no such user"}
    assert relay_once(now=now + timedelta(hours=1)).failed == 1
    notice = _notice()
    assert notice.send_state == "failed" and "nobody@example.gov.cn refused: 550" in notice.last_error
    assert len(smtp.wait_for(3)) == 3 and notice.delivered_to == [unit_email]


@contextmanager
def _relay_killed_while_the_server_holds(smtp, script: list[str]) -> Iterator[None]:
    """`duban relay --once` in a subprocess, killed -9 after the block while the server holds a mail's DATA."""
    smtp.script = script
    relay = subprocess.Popen([sys.executable, "-m", "duban", "relay", "--once"], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert smtp.holding.wait(60), f"the relay subprocess never reached the held DATA of {script}"
        yield
        os.kill(relay.pid, signal.SIGKILL)
        relay.wait(10)
    finally:
        if relay.poll() is None:
            os.killpg(relay.pid, signal.SIGKILL)
            relay.wait(10)
        smtp.release.set()


def test_a_relay_killed_between_the_commit_and_the_send_leaves_every_notice_to_the_next_pass(smtp, monkeypatch):
    use_settings(monkeypatch, relay_lease_s="30")
    order_in(Status.DISPATCHED)
    # The relay is killed while the server holds its first mail: claimed, not sent, not marked.
    with _relay_killed_while_the_server_holds(smtp, ["hold"]):
        claimed = _notice()
        assert claimed.send_state == "pending" and claimed.attempts == 1 and claimed.claimed_until is not None
    assert relay_once().claimed == 0, "the dead relay's lease still holds its notices"
    assert relay_once(now=utcnow() + timedelta(seconds=31)).sent == 2
    mails = smtp.wait_for(2)
    assert sorted(m.message["X-Duban-Kind"] for m in mails) == ["dispatch", "dispatch_assist"]
    assert claimed.message_id in {m.message["Message-ID"] for m in mails} and _notice().attempts == 2


def test_a_notice_sent_but_not_yet_recorded_when_the_relay_dies_goes_out_again_as_the_same_mail(smtp, monkeypatch):
    use_settings(monkeypatch, relay_lease_s="30")
    order_in(Status.DISPATCHED)
    # Sent notices are recorded in groups: the first is accepted, the relay dies holding the second.
    with _relay_killed_while_the_server_holds(smtp, ["accept", "hold"]):
        [first] = smtp.wait_for(1)
    with session_scope(readonly=True) as session:
        assert set(session.scalars(select(Notification.send_state))) == {"pending"}
    assert relay_once(now=utcnow() + timedelta(seconds=31)).sent == 2
    mails = smtp.wait_for(3)
    assert len(mails) == 3
    assert [m.message["Message-ID"] for m in mails].count(first.message["Message-ID"]) == 2
    assert mails[1].html == first.html or mails[2].html == first.html, "the copy carries the same links"


def test_two_relays_at_once_send_each_notice_exactly_once(smtp):
    for _ in range(12):
        order_in(Status.DISPATCHED)
    with session_scope(readonly=True) as session:
        expected = set(session.scalars(select(Notification.message_id)))
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(relay_once(limit=5))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    while relay_once(limit=5).claimed:
        pass
    received = [m.message["Message-ID"] for m in smtp.wait_for(len(expected))]
    assert sorted(received) == sorted(expected)
    assert sum(r.sent for r in reports) == 10


def test_outside_production_every_mail_goes_to_the_redirect_inbox_and_in_production_nothing_is_redirected(
        smtp, monkeypatch):
    use_settings(monkeypatch, mail_redirect_to="test-inbox@example.gov.cn")
    _only_lead_notice()
    assert relay_once().sent == 1
    [mail] = smtp.wait_for(1)
    assert mail.rcpt_tos == ["test-inbox@example.gov.cn"]
    assert mail.message["X-Duban-Original-To"] == _notice().recipients[0]
    assert _notice().delivered_to == _notice().recipients
    use_settings(monkeypatch, environment="production")
    _only_lead_notice()
    assert relay_once().sent == 1
    assert smtp.wait_for(2)[1].rcpt_tos == _notice().recipients


def test_supervisors_get_no_action_links_and_a_unit_with_its_leader_does(smtp):
    order_id = new_order()
    with session_scope() as session:
        order = session.get(WorkOrder, order_id)
        unit = session.scalars(select(Unit).where(Unit.code == "urban_management")).one()
        enqueue_notice(session, kind="supervision_case", order=order, unit=unit,
                       recipients=["duban@zz12345.example.gov.cn"], at=utcnow(),
                       extra={"case_id": 7, "case_kind": "overdue", "case_label": "超期督办",
                              "evidence": {"reasons": ["办理超过期限"]}})
        enqueue_notice(session, kind="overdue_notice", order=order, unit=unit,
                       recipients=[unit.email, unit.leader_email], at=utcnow(),
                       extra={"stage": "handling", "stage_label": "办理", "deadline": utcnow().isoformat()})
    assert relay_once().sent == 2
    by_kind = {m.message["X-Duban-Kind"]: m for m in smtp.wait_for(2)}
    assert "/u/" not in by_kind["supervision_case"].raw and "办理超过期限" in by_kind["supervision_case"].text
    assert "/u/" in by_kind["overdue_notice"].html
