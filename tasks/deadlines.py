"""Deadlines of an order's stages under the policy it runs on, and its one indexed next_due_at."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.calendar import Amount, TimeUnit, WorkCalendar, add_working_time
from models.deadlines import next_checkpoint
from models.directory import Category
from models.enums import AssignmentRole, Status
from models.policy import Policy
from models.work_order import Assignment, WorkOrder
from tasks import held
from tasks.policy_store import policy_version

# The stage the order's own deadline belongs to, by status; the unit holds the order in the unit stages.
STAGE_OF_STATUS = {
    Status.DISPATCHED: "sign_for",
    Status.HANDLING: "handling",
    Status.RETURN_REQUESTED: "return_decision",
    Status.REPLIED: "review",
    Status.VISITING: "return_visit",
}
UNIT_STAGES = frozenset({"sign_for", "handling"})
ASSIST_STAGE = "assist_handling"
# Assisting units owe their share while the order is being handled; the lead's reply ends it.
_ASSIST_STATUSES = frozenset({Status.DISPATCHED, Status.RETURN_REQUESTED, Status.HANDLING})
_WORKING_UNITS = frozenset({TimeUnit.WORKING_HOURS, TimeUnit.WORKING_DAYS})


# Per policy object: its working calendar and the limits already looked up. Policies are parsed once per
# version and never change, and both lookups sit on the path of every transition.
_MEMO: dict[int, tuple[Policy, WorkCalendar, dict[tuple[str, str, str, str | None], Amount]]] = {}


def _memo(policy: Policy) -> tuple[Policy, WorkCalendar, dict[tuple[str, str, str, str | None], Amount]]:
    memo = _MEMO.get(id(policy))
    if memo is None or memo[0] is not policy:
        if len(_MEMO) > 16:
            _MEMO.clear()
        memo = _MEMO[id(policy)] = (policy, policy.work_calendar(), {})
    return memo


def _limit(session: Session, order: WorkOrder, policy: Policy, stage: str) -> Amount:
    category = held.row(session, Category, order.category_id).code if order.category_id else None
    limits = _memo(policy)[2]
    key = (stage, order.item_type, order.urgency, category)
    if key not in limits:
        limits[key] = policy.time_limit(stage, item_type=order.item_type, urgency=order.urgency, category=category)
    return limits[key]


def order_policy(session: Session, order: WorkOrder) -> Policy:
    """The policy version the order runs on."""
    return policy_version(session, order.policy_version)


def stage_deadline(session: Session, order: WorkOrder, stage: str, start: datetime) -> datetime:
    """When a stage begun at `start` must be done, by item type, urgency and category."""
    policy = order_policy(session, order)
    return add_working_time(start, _limit(session, order, policy, stage), _memo(policy)[1])


def set_stage(order: WorkOrder, *, started: datetime | None, due: datetime | None) -> None:
    """Begin a new stage: its clock, its deadline, and the ladder from the bottom rung."""
    order.stage_started_at, order.stage_due_at, order.stage_rung = started, due, 0


def refresh_next_due(session: Session, order: WorkOrder) -> None:
    """Recompute next_due_at: the earliest unfired rung of the stage and of each assisting unit's deadline."""
    times = [stage_checkpoint(session, order)]
    times += [assist_checkpoint(session, order, assist) for assist in pending_assists(session, order)]
    order.next_due_at = min((t for t in times if t is not None), default=None)


def current_stage(order: WorkOrder) -> str | None:
    """The stage the order's own deadline belongs to (None once nothing is due)."""
    return STAGE_OF_STATUS.get(Status(order.status)) if order.stage_due_at is not None else None


def counts_working_time(session: Session, order: WorkOrder, stage: str) -> bool:
    """Whether the policy writes this stage's limit in working time (the warning is then shared out in it)."""
    return _limit(session, order, order_policy(session, order), stage).unit in _WORKING_UNITS


def stage_checkpoint(session: Session, order: WorkOrder) -> datetime | None:
    """When the next rung of the order's own stage falls due."""
    stage = current_stage(order)
    if stage is None:
        return None
    policy = order_policy(session, order)
    return next_checkpoint(
        started=order.stage_started_at, due=order.stage_due_at, fired=order.stage_rung,
        ladder=policy.escalation.ladder, warning_fraction=policy.time_limits.warning_fraction,
        calendar=_memo(policy)[1], working=counts_working_time(session, order, stage),
    )


def pending_assists(session: Session, order: WorkOrder) -> list[Assignment]:
    """Active assisting assignments still owing their share, stored or added in this transaction."""
    if Status(order.status) not in _ASSIST_STATUSES:
        return []
    cached = held.assignments_of(session, order.id)
    if cached is not None:
        found = {id(a): a for a in cached}
    else:
        stored = session.scalars(select(Assignment).where(
            Assignment.work_order_id == order.id, Assignment.active.is_(True), Assignment.role == AssignmentRole.ASSIST))
        added = (obj for obj in session.new if isinstance(obj, Assignment) and obj.work_order_id == order.id)
        found = {id(a): a for a in [*stored, *added]}
    # Column defaults apply at insert: an assignment added in this transaction has active None.
    return [a for a in found.values() if a.role == AssignmentRole.ASSIST and a.active is not False
            and a.replied_at is None and a.ended_at is None and a.due_at is not None]


def assist_checkpoint(session: Session, order: WorkOrder, assist: Assignment) -> datetime | None:
    """When the next rung of an assisting unit's own handling deadline falls due."""
    policy = order_policy(session, order)
    return next_checkpoint(
        started=assist.dispatched_at, due=assist.due_at, fired=assist.rung or 0, ladder=policy.escalation.ladder,
        warning_fraction=policy.time_limits.warning_fraction, calendar=_memo(policy)[1],
        working=counts_working_time(session, order, "handling"),
    )
