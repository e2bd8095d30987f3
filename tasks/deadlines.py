"""Deadlines of an order's stages under the policy it runs on, and its one indexed next_due_at."""

from datetime import datetime

from sqlalchemy.orm import Session

from models.calendar import add_working_time
from models.deadlines import next_checkpoint
from models.directory import Category
from models.policy import Policy
from models.work_order import WorkOrder
from tasks.policy_store import policy_version


def order_policy(session: Session, order: WorkOrder) -> Policy:
    """The policy version the order runs on."""
    return policy_version(session, order.policy_version)


def stage_deadline(session: Session, order: WorkOrder, stage: str, start: datetime) -> datetime:
    """When a stage begun at `start` must be done, by item type, urgency and category."""
    policy = order_policy(session, order)
    category = session.get(Category, order.category_id) if order.category_id else None
    limit = policy.time_limit(stage, item_type=order.item_type, urgency=order.urgency,
                              category=category.code if category else None)
    return add_working_time(start, limit, policy.work_calendar())


def set_stage(order: WorkOrder, *, started: datetime | None, due: datetime | None) -> None:
    """Begin a new stage: its clock, its deadline, and the ladder from the bottom rung."""
    order.stage_started_at, order.stage_due_at, order.stage_rung = started, due, 0


def refresh_next_due(session: Session, order: WorkOrder) -> None:
    """Recompute next_due_at from the stage deadline and how many rungs have fired."""
    if order.stage_due_at is None:
        order.next_due_at = None
        return
    policy = order_policy(session, order)
    order.next_due_at = next_checkpoint(
        started=order.stage_started_at, due=order.stage_due_at, fired=order.stage_rung,
        ladder=policy.escalation.ladder, warning_fraction=policy.time_limits.warning_fraction,
        calendar=policy.work_calendar(),
    )
