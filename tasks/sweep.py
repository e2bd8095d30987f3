"""The supervision sweep: one indexed query for due orders, then each due rung fired once, order by order."""

import logging
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import exists, func, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from duban.db import session_scope
from models.base import utcnow
from models.directory import Category, Unit
from models.enums import AssignmentRole, CaseKind
from models.policy import Policy
from models.supervision import SupervisionCase
from models.supervision_records import Escalation
from models.work_order import Assignment, WorkOrder
from tasks.cases import open_case
from tasks.deadlines import (
    ASSIST_STAGE,
    UNIT_STAGES,
    assist_checkpoint,
    current_stage,
    order_policy,
    pending_assists,
    refresh_next_due,
    stage_checkpoint,
)
from tasks.outbox import enqueue_notice

log = logging.getLogger(__name__)

STAGE_LABELS = {
    "sign_for": "签收", "handling": "办理", "return_decision": "退单审核", "review": "回复审核",
    "return_visit": "回访", ASSIST_STAGE: "协办",
}
# The case a late stage turns into at the ladder's third rung.
_CASE_KIND = {"sign_for": CaseKind.SIGN_LIMBO, "handling": CaseKind.OVERDUE, ASSIST_STAGE: CaseKind.OVERDUE}


@dataclass(frozen=True)
class Fired:
    """One rung that fired."""

    order_id: int
    number: str
    stage: str
    rung: str
    unit_code: str | None
    case_id: int | None


@dataclass
class SweepReport:
    """What one sweep did."""

    now: datetime
    due: int = 0
    processed: int = 0
    skipped: int = 0
    fired: list[Fired] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """How many rungs of each kind fired."""
        return dict(Counter(f.rung for f in self.fired))


def due_orders(session: Session, *, now: datetime, limit: int, passed: Collection[int] = ()) -> list[int]:
    """Ids of orders due at `now`, earliest first, but those passed over; one range scan of the next_due_at index."""
    query = select(WorkOrder.id).where(WorkOrder.next_due_at <= now)
    if passed:
        query = query.where(WorkOrder.id.not_in(passed))
    return list(session.scalars(query.order_by(WorkOrder.next_due_at).limit(limit)))


def anything_due(*, now: datetime) -> bool:
    """Whether any order is due at `now` (the clock asks before starting Prefect work)."""
    with session_scope(readonly=True) as session:
        return bool(session.scalar(select(exists().where(WorkOrder.next_due_at <= now))))


def earliest_due() -> datetime | None:
    """The earliest next_due_at of all orders: where the clock sets its next wake-up."""
    with session_scope(readonly=True) as session:
        return session.scalar(select(func.min(WorkOrder.next_due_at)))


def sweep(*, now: datetime | None = None, batch_size: int = 200) -> SweepReport:
    """Fire every rung due at `now` (explicit, for a replay in simulated time); one transaction per order."""
    report = SweepReport(now=now or utcnow())
    # A processed order leaves the due range; these stay in it and are not asked for again in this sweep.
    passed: set[int] = set()
    seen: set[int] = set()
    while True:
        with session_scope(readonly=True) as session:
            batch = due_orders(session, now=report.now, limit=batch_size, passed=passed)
        if not batch:
            return report
        for order_id in batch:
            if order_id in seen:
                # Due again after its own sweep (a transition raced it): the next sweep takes it.
                passed.add(order_id)
                continue
            seen.add(order_id)
            report.due += 1
            try:
                fired = fire_due(order_id=order_id, now=report.now)
            except (IntegrityError, StaleDataError):
                # Another sweeper got there first; the rung is its to fire.
                fired = None
            except Exception as exc:  # noqa: BLE001 - one bad order must not stop the others
                log.exception("sweep: order id %s failed", order_id)
                report.failed[order_id] = f"{type(exc).__name__}: {exc}"
                passed.add(order_id)
                continue
            if fired is None:
                report.skipped += 1
                passed.add(order_id)
            else:
                report.processed += 1
                report.fired += fired


def fire_due(*, order_id: int, now: datetime) -> list[Fired] | None:
    """Claim one due order and fire its due rungs; None when another sweeper holds it or it is no longer due."""
    with session_scope() as session:
        query = (select(WorkOrder).where(WorkOrder.id == order_id, WorkOrder.next_due_at <= now)
                 .execution_options(populate_existing=True))
        # SQLite writers already hold the database lock from BEGIN IMMEDIATE; PostgreSQL claims the row.
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        order = session.scalars(query).one_or_none()
        if order is None:
            return None
        # One UPDATE of the order, however many rungs a long outage left to catch up.
        with session.no_autoflush:
            fired = fire_order(session, order=order, now=now)
        opened_case = any(f.case_id is not None for f in fired)
        if not opened_case:
            _write_clock_columns(session, order)
    if opened_case:
        from tasks.runs import wake_order_run

        wake_order_run(order_id)
    return fired


def fire_order(session: Session, *, order: WorkOrder, now: datetime) -> list[Fired]:
    """Fire the order's own rungs and its assisting units' rungs due at `now`, then move next_due_at on."""
    policy = order_policy(session, order)
    ladder = policy.escalation.ladder
    fired: list[Fired] = []
    # Held for the whole call: the identity map is weak, and every checkpoint and notice asks for it.
    category = session.get(Category, order.category_id) if order.category_id else None
    stage = current_stage(order)
    if stage is not None:
        lead = session.scalars(select(Assignment).where(
            Assignment.work_order_id == order.id, Assignment.active.is_(True),
            Assignment.role == AssignmentRole.LEAD)).first()
        unit = session.get(Unit, lead.unit_id) if lead and stage in UNIT_STAGES else None
        while (at := stage_checkpoint(session, order)) is not None and at <= now:
            fired += _fire(session, policy, order=order, assignment=lead, unit=unit, stage=stage,
                           rung=ladder[order.stage_rung].rung, due=order.stage_due_at, scheduled=at, now=now)
            order.stage_rung += 1
    for assist in pending_assists(session, order):
        unit = session.get(Unit, assist.unit_id)
        while (at := assist_checkpoint(session, order, assist)) is not None and at <= now:
            fired += _fire(session, policy, order=order, assignment=assist, unit=unit, stage=ASSIST_STAGE,
                           rung=ladder[assist.rung].rung, due=assist.due_at, scheduled=at, now=now)
            assist.rung += 1
    refresh_next_due(session, order)
    del category
    return fired


# What firing rungs changes on the order itself: the clock's bookkeeping, not what a decision decides.
_CLOCK_COLUMNS = frozenset({"stage_rung", "next_due_at"})


def _write_clock_columns(session: Session, order: WorkOrder) -> None:
    """Write the rung count and the next due time without moving the order's version.

    A decision form carries the version it was drawn for, and a changed version refuses it as stale: a warning
    firing while a supervisor reads the reply must not throw their decision away. The version still guards
    this write (the row is the sweeper's: locked on PostgreSQL, under the write lock on SQLite). A rung that
    opens a case is written the versioned way instead: the order's run must then offer the case's decision,
    and a run the sweep could not wake is found by the reconciler by its version.
    """
    state = inspect(order)
    changed = {key: state.dict[key] for key in state.committed_state}  # the attributes set since the load
    if not changed or not changed.keys() <= _CLOCK_COLUMNS:
        return  # anything more is a change to the order, written by the ORM's versioned UPDATE
    table = WorkOrder.__table__
    with session.no_autoflush:  # a flush now would write the order the versioned way first
        written = session.execute(update(table).where(table.c.id == order.id, table.c.version == order.version)
                                  .values(**changed)).rowcount
    if written != 1:
        raise StaleDataError(f"work order {order.number} changed while its rungs fired")
    for key, value in changed.items():
        set_committed_value(order, key, value)


def _fire(session: Session, policy: Policy, *, order: WorkOrder, assignment: Assignment | None, unit: Unit | None,
          stage: str, rung: str, due: datetime, scheduled: datetime, now: datetime) -> list[Fired]:
    """One rung: an event, a notice, and for the case rung a case; nothing when this deadline's rung already fired."""
    from tasks.transitions import Actor, record_event

    key = f"{order.id}:{assignment.id if assignment else 0}:{stage}:{due.timestamp():.0f}:{rung}"
    if session.scalar(select(exists().where(Escalation.key == key))):
        return []
    role = assignment.role if assignment is not None and unit is not None else None
    facts = {"stage": stage, "stage_label": STAGE_LABELS[stage], "rung": rung, "deadline": due.isoformat(),
             "scheduled_at": scheduled.isoformat(), "role": role, "unit": unit.code if unit else None}
    system = Actor.system()
    unit_id = unit.id if unit else None
    office = policy.recipients.supervisors
    case_id = None
    if rung == "warning":
        record_event(session, order=order, name="deadline_warned", actor=system, at=now, unit_id=unit_id, payload=facts)
        enqueue_notice(session, kind="deadline_warning", order=order, unit=unit, at=now, extra=facts,
                       recipients=[unit.email] if unit else office)
    elif rung == "overdue":
        record_event(session, order=order, name="deadline_missed", actor=system, at=now, unit_id=unit_id, payload=facts)
        enqueue_notice(session, kind="overdue_notice", order=order, unit=unit, at=now, extra=facts,
                       recipients=[unit.email, unit.leader_email] if unit else office)
    elif rung == "case":
        kind = _CASE_KIND.get(stage, CaseKind.DECISION_OVERDUE)
        case_id, _ = open_case(session, kind=kind, order=order, unit=unit, at=now, evidence={
            **facts, "reasons": [f"{STAGE_LABELS[stage]}超过期限"], "due_at": due.isoformat()})
    elif unit is not None:
        record_event(session, order=order, name="unit_put_on_notice", actor=system, at=now, unit_id=unit_id,
                     payload=facts)
        for case in session.scalars(select(SupervisionCase).where(
                SupervisionCase.work_order_id == order.id, SupervisionCase.unit_id == unit.id,
                SupervisionCase.status == "open")):
            case.on_notice = True
        enqueue_notice(session, kind="circulated_notice", order=order, unit=unit, at=now, extra=facts,
                       recipients=[*office, *policy.recipients.report_leaders, unit.leader_email])
    else:
        # The hotline office's own stage: nobody to name on the notice, so its leaders are told instead.
        record_event(session, order=order, name="deadline_escalated", actor=system, at=now, payload=facts)
        enqueue_notice(session, kind="overdue_notice", order=order, unit=None, at=now, extra=facts,
                       recipients=[*office, *policy.recipients.report_leaders])
    session.add(Escalation(key=key, work_order_id=order.id, assignment_id=assignment.id if assignment else None,
                           unit_id=unit_id, stage=stage, rung=rung, due_at=due, scheduled_at=scheduled, fired_at=now,
                           case_id=case_id))
    return [Fired(order.id, order.number, stage, rung, unit.code if unit else None, case_id)]
