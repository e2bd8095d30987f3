"""Intake's second half, in batches: received items are screened, answered or dispatched."""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from duban.db import session_scope
from duban.errors import DubanError
from models.base import utcnow
from models.enums import Status
from models.lifecycle import Action
from models.work_order import WorkOrder
from tasks.transitions import Actor, transition

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    """What one intake batch did; `failed` items were left received and will be tried again."""

    dispatched: list[int] = field(default_factory=list)
    closed: dict[str, int] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)


def process_received(*, limit: int = 500, at: datetime | None = None) -> BatchResult:
    """Take the oldest received items and route each to a final status or to a unit, one at a time."""
    at = at or utcnow()
    result = BatchResult()
    with session_scope(readonly=True) as session:
        pending = session.execute(select(WorkOrder.id, WorkOrder.number).where(WorkOrder.status == Status.RECEIVED)
                                  .order_by(WorkOrder.received_at, WorkOrder.id).limit(limit)).all()
    for order_id, number in pending:
        try:
            outcome = _route_one(order_id, at)
        except DubanError as exc:
            log.warning("intake of %s failed: %s", number, exc)
            result.failed.append((number, str(exc)))
            continue
        if outcome == Status.DISPATCHED:
            result.dispatched.append(order_id)
        else:
            result.closed[outcome] = result.closed.get(outcome, 0) + 1
    return result


def _route_one(order_id: int, at: datetime) -> str:
    """One item in its own transaction: triage decides, transition() applies."""
    from tasks.triage import apply_triage

    with session_scope() as session:
        status = apply_triage(session=session, order_id=order_id, at=at)
        if status == Status.RECEIVED:
            status = transition(order_id=order_id, action=Action.DISPATCH, actor=Actor.system(), at=at,
                                 session=session).target
        return status
