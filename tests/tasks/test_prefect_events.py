"""The event publisher's cursor: it resumes after what was accepted and never skips a late commit."""

from datetime import timedelta

from sqlalchemy import select

from duban.db import session_scope
from models.base import utcnow
from models.enums import Status
from models.records import Event
from tasks.prefect_events import GAP_GRACE, advance_cursor, pending_events, prefect_event_name
from tests.factories import order_in


def ids(pending) -> list[int]:
    return [e["payload"]["duban_event_id"] for e in pending.events]


def test_names_follow_subject_and_verb():
    assert prefect_event_name("work_order_dispatched", has_order=True) == "duban.work_order.dispatched"
    assert prefect_event_name("return_approved", has_order=True) == "duban.work_order.returned"
    assert prefect_event_name("return_requested", has_order=True) == "duban.work_order.return_requested"
    assert prefect_event_name("case_opened", has_order=True) == "duban.case.opened"
    assert prefect_event_name("unit_put_on_notice", has_order=False) == "duban.unit.unit_put_on_notice"


def test_a_missing_id_is_waited_for_then_published_when_it_commits_or_passed_after_the_grace(directory):
    order_in(Status.HANDLING)
    now = utcnow()
    with session_scope() as session:
        rows = session.scalars(select(Event).order_by(Event.id)).all()
        first, late, *rest = [r.id for r in rows]
        # A transaction that drew an id and has not committed yet looks like this row missing.
        held = {c.key: getattr(rows[1], c.key) for c in Event.__table__.columns}
        session.delete(rows[1])

    pending = pending_events(limit=100, now=now)
    assert ids(pending) == [first] and pending.waiting_for == late
    assert "13812341234" not in str(pending.events) and "张三" not in str(pending.events)
    advance_cursor(last_event_id=pending.last_event_id, waiting_for=pending.waiting_for, now=now)
    assert ids(pending_events(limit=100, now=now + GAP_GRACE / 2)) == []

    with session_scope() as session:
        session.add(Event(**held))
    pending = pending_events(limit=100, now=now + GAP_GRACE / 2)
    assert ids(pending) == [late, *rest] and pending.waiting_for is None
    advance_cursor(last_event_id=pending.last_event_id, now=now)
    assert ids(pending_events(limit=100)) == []


def test_an_id_that_never_commits_is_passed_after_the_grace(directory):
    order_in(Status.HANDLING)
    now = utcnow()
    with session_scope() as session:
        rows = session.scalars(select(Event).order_by(Event.id)).all()
        session.delete(rows[1])
        after = [r.id for r in rows[2:]]
    pending = pending_events(limit=100, now=now)
    advance_cursor(last_event_id=pending.last_event_id, waiting_for=pending.waiting_for, now=now)
    assert ids(pending_events(limit=100, now=now + GAP_GRACE - timedelta(seconds=1))) == []
    assert ids(pending_events(limit=100, now=now + GAP_GRACE)) == after
