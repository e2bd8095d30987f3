"""What must hold after any crash: no order lost, no transition twice, every rung once, every notice sent."""

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select

from duban.db import session_scope
from models.enums import SendState
from models.records import Event, Notification
from models.supervision_records import Escalation
from models.work_order import WorkOrder
from tests.notifications.smtp import Received

RUNG_EVENTS = ("deadline_warned", "deadline_missed", "unit_put_on_notice", "deadline_escalated")


@dataclass(frozen=True)
class Counts:
    """What the database holds, in the four numbers every fault report shows."""

    orders: int
    transitions: int
    rungs: int
    notices: int
    sent: int

    def __str__(self) -> str:
        return (f"orders {self.orders}, transitions {self.transitions}, rungs {self.rungs}, "
                f"notices {self.notices} ({self.sent} sent)")


def counts() -> Counts:
    """Orders, status-changing events, fired rungs, and notices (sent ones apart)."""
    with session_scope(readonly=True) as session:
        def count(query) -> int:
            return session.scalar(query) or 0

        return Counts(
            orders=count(select(func.count()).select_from(WorkOrder)),
            transitions=count(select(func.count()).select_from(Event).where(
                (Event.from_status.is_(None)) | (Event.from_status != Event.to_status))),
            rungs=count(select(func.count()).select_from(Escalation)),
            notices=count(select(func.count()).select_from(Notification)),
            sent=count(select(func.count()).select_from(Notification).where(
                Notification.send_state == SendState.SENT)),
        )


def numbers() -> set[str]:
    """Every order number in the database."""
    with session_scope(readonly=True) as session:
        return set(session.scalars(select(WorkOrder.number)))


def no_order_lost(before: set[str]) -> str:
    """Every order there before the fault is there after it."""
    missing = before - numbers()
    assert not missing, f"orders lost: {sorted(missing)}"
    return f"no order lost ({len(before)} orders before, all still there)"


def no_transition_twice() -> str:
    """Each order's status-changing events form one unbroken chain ending at its status: none was applied twice."""
    with session_scope(readonly=True) as session:
        statuses = dict(session.execute(select(WorkOrder.id, WorkOrder.status)).all())
        rows = session.execute(select(Event.work_order_id, Event.name, Event.from_status, Event.to_status)
                               .where(Event.work_order_id.is_not(None)).order_by(Event.id)).all()
    chains: dict[int, list[tuple[str, str | None, str]]] = {}
    for order_id, name, source, target in rows:
        if source is None or source != target:
            chains.setdefault(order_id, []).append((name, source, target))
    transitions = 0
    for order_id, status in statuses.items():
        current = None
        for name, source, target in chains.get(order_id, []):
            assert source == current, f"order {order_id}: {name} from {source} after reaching {current}"
            current = target
            transitions += 1
        assert current == status, f"order {order_id} is {status} but its events end at {current}"
    return f"no transition applied twice ({transitions} transitions, {len(statuses)} unbroken chains)"


def rungs_once() -> str:
    """Each rung of each deadline fired once: one escalation row per key, one rung event per rung."""
    with session_scope(readonly=True) as session:
        keys = list(session.scalars(select(Escalation.key)))
        events = session.execute(select(Event.work_order_id, Event.name, Event.payload)
                                 .where(Event.name.in_(RUNG_EVENTS))).all()
    twice = [key for key, n in Counter(keys).items() if n > 1]
    assert not twice, f"rungs fired twice: {twice}"
    fired = Counter((order_id, name, p.get("stage"), p.get("deadline"), p.get("unit")) for order_id, name, p in events)
    again = [key for key, n in fired.items() if n > 1]
    assert not again, f"rung events recorded twice: {again}"
    return f"every rung fired once ({len(keys)} rungs, {len(events)} rung events, none twice)"


def notices_sent(mails: list[Received], *, failed: int = 0) -> str:
    """Every notice sent (but `failed` incidents) and received at least once; copies share its Message-ID."""
    with session_scope(readonly=True) as session:
        rows = session.execute(select(Notification.message_id, Notification.send_state)).all()
    states = Counter(state for _, state in rows)
    assert states[SendState.FAILED] == failed, f"incidents: {states[SendState.FAILED]}, expected {failed}"
    assert states[SendState.SENT] == len(rows) - failed, f"notices not sent: {states}"
    received = Counter(m.message["Message-ID"] for m in mails)
    sent_ids = {mid for mid, state in rows if state == SendState.SENT}
    assert sent_ids <= set(received), f"sent but never received: {sorted(sent_ids - set(received))}"
    assert set(received) <= {mid for mid, _ in rows}, "a mail arrived that no notice explains"
    duplicates = sum(n - 1 for n in received.values())
    return (f"every notice sent at least once ({len(sent_ids)} sent, {failed} incidents, {len(mails)} mails, "
            f"{duplicates} duplicates recognisable by Message-ID)")
