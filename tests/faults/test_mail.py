"""The relay killed between sending and marking sent; the mail server down for a while, then back."""

from datetime import timedelta

from sqlalchemy import func, select

from duban.db import session_scope
from duban.mailsink import MailServer
from models.base import utcnow
from models.enums import SendState, Status
from models.records import Event, Notification
from tasks.relay import relay_once
from tests.faults import invariants as inv
from tests.faults.processes import kill9, spawn, terminate, wait_until
from tests.factories import order_in
from tests.notifications.smtp import ScriptedHandler, use_settings
from tests.prefect_fixtures import free_port


def _notice(message_id: str) -> Notification:
    with session_scope() as session:
        return session.scalars(select(Notification).where(Notification.message_id == message_id)).one()


def test_relay_killed_after_the_server_stored_the_mail_resends_it_under_the_same_message_id(
        smtp, fault, tmp_path, monkeypatch):
    use_settings(monkeypatch, relay_lease_s="30")
    for _ in range(3):
        order_in(Status.DISPATCHED)
    before, numbers = inv.counts(), inv.numbers()
    fault.before(before)
    # The server stores the first mail and never answers: the relay has sent it and waits to mark it.
    smtp.script = ["store_hold"]
    relay = spawn("relay", "--once", log=tmp_path / "relay.log")
    try:
        assert smtp.holding.wait(60), "the relay never sent its first mail"
        [stored] = smtp.received
        message_id = stored.message["Message-ID"]
        kill9(relay)
    finally:
        if relay.poll() is None:
            kill9(relay)
        smtp.release.set()
    fault.injected(f"kill -9 of `duban relay` after the server stored {message_id}, before the relay marked it sent")
    notice = _notice(message_id)
    assert (notice.send_state, notice.attempts, notice.sent_at) == (SendState.PENDING, 1, None)
    assert relay_once().claimed == 0, "the dead relay's lease still holds what it claimed"

    report = relay_once(now=utcnow() + timedelta(seconds=31))
    assert report.counts() == {"claimed": before.notices, "sent": before.notices, "retried": 0, "failed": 0}
    mails = smtp.wait_for(before.notices + 1)
    copies = [m for m in mails if m.message["Message-ID"] == message_id]
    assert len(copies) == 2 and copies[0].html == copies[1].html, "the resend is the same mail, links and all"
    assert _notice(message_id).attempts == 2
    after = inv.counts()
    fault.after(after)
    assert (after.orders, after.transitions, after.notices, after.sent) == (
        before.orders, before.transitions, before.notices, before.notices)
    fault.checked(inv.no_order_lost(numbers), inv.no_transition_twice(), inv.notices_sent(mails))


def test_mail_server_down_then_back_delivers_every_notice_and_only_a_permanent_refusal_is_an_incident(
        directory, fault, tmp_path, monkeypatch):
    port = free_port()
    use_settings(monkeypatch, smtp_host="127.0.0.1", smtp_port=str(port), smtp_timeout_s="3", relay_interval_s="0.2",
                 relay_backoff_s="1", relay_backoff_max_s="2", relay_max_attempts="20")
    for _ in range(3):
        order_in(Status.DISPATCHED)
    with session_scope() as session:
        first = session.scalars(select(Notification).order_by(Notification.id)).first()
        first.recipients = [*first.recipients, "nobody@example.gov.cn"]
    before, numbers = inv.counts(), inv.numbers()
    fault.before(before)
    relay = spawn("relay", log=tmp_path / "relay.log")
    handler = ScriptedHandler()
    handler.refuse = {"nobody@example.gov.cn": "550 5.1.1 no such user"}
    server = None
    try:
        # Nothing listens on the port: every notice is tried, fails to connect, and waits its backoff.
        wait_until(lambda: _fewest_attempts() >= 3, "three attempts of every notice during the outage", timeout=90)
        attempts = _fewest_attempts()
        assert _states() == {SendState.PENDING: before.notices}, "an outage is never an incident"
        fault.injected(f"the mail server down (connection refused) through {attempts}+ attempts of every notice, "
                       "then started again on the same port")
        server = MailServer(handler, port=port).start()
        wait_until(lambda: SendState.PENDING not in _states(), "every notice settled after the server came back")
    finally:
        terminate(relay)
        if server is not None:
            server.stop()
    assert _states() == {SendState.SENT: before.notices - 1, SendState.FAILED: 1}
    failed = _notice(first.message_id)
    assert failed.send_state == SendState.FAILED and "nobody@example.gov.cn refused: 550" in failed.last_error
    assert failed.delivered_to == [r for r in first.recipients if r != "nobody@example.gov.cn"]
    with session_scope(readonly=True) as session:
        incidents = session.scalar(select(func.count()).select_from(Event).where(Event.name == "notification_failed"))
    assert incidents == 1
    after = inv.counts()
    fault.after(after)
    fault.checked(inv.no_order_lost(numbers), inv.no_transition_twice(), inv.notices_sent(handler.received, failed=1),
                  "one incident, for the 550 refusal only; none for the outage")


def _fewest_attempts() -> int:
    with session_scope(readonly=True) as session:
        return session.scalar(select(func.min(Notification.attempts)))


def _states() -> dict[str, int]:
    with session_scope(readonly=True) as session:
        return dict(session.execute(select(Notification.send_state, func.count())
                                    .group_by(Notification.send_state)).all())
