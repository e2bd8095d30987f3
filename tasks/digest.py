"""The periodic digest: each unit with open orders gets one notice listing them with their deadlines."""

from datetime import datetime

from sqlalchemy import select

from duban.db import session_scope
from models.base import utcnow
from models.directory import Unit
from models.work_order import Assignment, WorkOrder
from tasks.outbox import enqueue_notice
from tasks.policy_store import current_policy
from tasks.unit_views import INBOX_STATUSES, inbox_rows


def enqueue_digests(*, at: datetime | None = None, working_days_only: bool = True) -> int:
    """Queue one digest per active unit holding open orders, in one transaction; returns how many."""
    at = at or utcnow()
    with session_scope() as session:
        calendar = current_policy(session).policy.work_calendar()
        # A daily schedule, and the working calendar (make-up working days included) decides.
        if working_days_only and not calendar.is_workday(at.astimezone(calendar.tz).date()):
            return 0
        unit_ids = list(session.scalars(
            select(Assignment.unit_id).distinct()
            .join(WorkOrder, WorkOrder.id == Assignment.work_order_id)
            .join(Unit, Unit.id == Assignment.unit_id)
            .where(Assignment.active.is_(True), WorkOrder.status.in_(INBOX_STATUSES), Unit.active.is_(True))
            .order_by(Assignment.unit_id)
        ))
        for unit_id in unit_ids:
            unit = session.get(Unit, unit_id)
            rows = inbox_rows(session, unit_id=unit_id, now=at)
            orders = [{"order_number": r.number, "category": r.category, "title": r.title, "status": r.status,
                       "role": r.role, "due_at": r.deadline.isoformat() if r.deadline else None,
                       "overdue": r.overdue, "warning": r.warning} for r in rows]
            enqueue_notice(session, kind="digest", order=None, unit=unit, recipients=[unit.email], at=at,
                           extra={"orders": orders, "overdue_count": sum(r.overdue for r in rows),
                                  "as_of": at.isoformat()})
        return len(unit_ids)
