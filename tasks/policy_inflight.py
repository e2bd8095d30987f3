"""What a policy change does to the orders in flight: deadlines that move, orders that would route elsewhere."""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.calendar import TimeUnit, add_working_time
from models.deadlines import next_checkpoint
from models.directory import Category, District, Unit
from models.policy import Policy
from models.work_order import Assignment, WorkOrder
from tasks.deadlines import STAGE_OF_STATUS, current_stage
from tasks.policy_store import policy_version

IN_FLIGHT = tuple(STAGE_OF_STATUS)
_WORKING = frozenset({TimeUnit.WORKING_HOURS, TimeUnit.WORKING_DAYS})


@dataclass(frozen=True)
class MovedDeadline:
    """One stored due time that the new policy moves."""

    number: str
    field: str
    old: datetime
    new: datetime

    @property
    def hours(self) -> float:
        return (self.new - self.old).total_seconds() / 3600


@dataclass(frozen=True)
class Reroute:
    """An open order the new routing would send to another lead unit."""

    number: str
    category: str | None
    district: str | None
    old_lead: str
    new_lead: str


@dataclass
class OrderPlan:
    """New due times for one in-flight order under the new policy."""

    order: WorkOrder
    moved: list[MovedDeadline] = field(default_factory=list)
    # (assignment, column, new value); the order's own columns use assignment None.
    updates: list[tuple[Assignment | None, str, datetime]] = field(default_factory=list)
    overdue_at_once: bool = False
    escalates_at_once: bool = False
    reroute: Reroute | None = None


def in_flight_orders(session: Session, *, lock: bool = False) -> list[WorkOrder]:
    """Open orders that a unit or the hotline office still has a deadline on, oldest first."""
    query = select(WorkOrder).where(WorkOrder.status.in_(IN_FLIGHT)).order_by(WorkOrder.id)
    return list(session.scalars(query.with_for_update() if lock else query))


def plan_order(session: Session, *, order: WorkOrder, new: Policy, at: datetime) -> OrderPlan:
    """Each of the order's due times shifted by how much the new limit differs from the old one."""
    old = policy_version(session, order.policy_version)
    category = session.get(Category, order.category_id).code if order.category_id else None
    district = session.get(District, order.district_id).code if order.district_id else None
    plan = OrderPlan(order)

    def shift(stage: str, start: datetime | None, due: datetime | None) -> datetime | None:
        if start is None or due is None:
            return None
        # Shifting by the difference keeps whatever moved the deadline before (an approved extension).
        delta = _deadline(new, stage, order, category, start) - _deadline(old, stage, order, category, start)
        return due + delta if delta else None

    def note(assignment: Assignment | None, column: str, label: str, due: datetime | None, moved: datetime | None):
        if moved is not None and due is not None:
            plan.updates.append((assignment, column, moved))
            plan.moved.append(MovedDeadline(order.number, label, due, moved))

    stage = current_stage(order)
    new_stage_due = shift(stage, order.stage_started_at, order.stage_due_at) if stage else None
    note(None, "stage_due_at", "stage_due_at", order.stage_due_at, new_stage_due)
    note(None, "due_at", "due_at", order.due_at, shift("handling", order.dispatched_at, order.due_at))
    assignments = session.scalars(select(Assignment).where(
        Assignment.work_order_id == order.id, Assignment.active.is_(True), Assignment.ended_at.is_(None)))
    lead_code = None
    for assignment in assignments:
        unit = session.get(Unit, assignment.unit_id).code
        if assignment.role == "lead":
            lead_code = unit
        if assignment.signed_at is None:
            note(assignment, "sign_due_at", f"{unit}.sign_due_at", assignment.sign_due_at,
                 shift("sign_for", assignment.dispatched_at, assignment.sign_due_at))
        if assignment.replied_at is None:
            note(assignment, "due_at", f"{unit}.due_at", assignment.due_at,
                 shift("handling", assignment.dispatched_at, assignment.due_at))

    if stage and order.stage_due_at is not None:
        due_now = new_stage_due or order.stage_due_at
        plan.overdue_at_once = order.stage_due_at > at >= due_now
        before = _checkpoint(old, order, category, stage, order.stage_due_at)
        after = _checkpoint(new, order, category, stage, due_now)
        plan.escalates_at_once = after is not None and after <= at and (before is None or before > at)
    if category is not None and lead_code is not None:
        old_lead, new_lead = old.route(category, district)[0], new.route(category, district)[0]
        if old_lead != new_lead:
            plan.reroute = Reroute(order.number, category, district, old_lead, new_lead)
    return plan


def distribution(moved: list[MovedDeadline]) -> dict[str, int]:
    """How many deadlines move by how much, in bins a supervisor reads at a glance."""
    bins = {"earlier by more than 1 day": 0, "earlier by 4 h to 1 day": 0, "earlier by up to 4 h": 0,
            "later by up to 4 h": 0, "later by 4 h to 1 day": 0, "later by more than 1 day": 0}
    for item in moved:
        hours, name = abs(item.hours), "earlier" if item.hours < 0 else "later"
        span = "more than 1 day" if hours > 24 else "4 h to 1 day" if hours > 4 else "up to 4 h"
        bins[f"{name} by {span}"] += 1
    return bins


def _deadline(policy: Policy, stage: str, order: WorkOrder, category: str | None, start: datetime) -> datetime:
    limit = policy.time_limit(stage, item_type=order.item_type, urgency=order.urgency, category=category)
    return add_working_time(start, limit, policy.work_calendar())


def _checkpoint(policy: Policy, order: WorkOrder, category: str | None, stage: str, due: datetime) -> datetime | None:
    """When the next unfired rung of the order's stage falls due under `policy`."""
    limit = policy.time_limit(stage, item_type=order.item_type, urgency=order.urgency, category=category)
    return next_checkpoint(
        started=order.stage_started_at, due=due, fired=order.stage_rung, ladder=policy.escalation.ladder,
        warning_fraction=policy.time_limits.warning_fraction, calendar=policy.work_calendar(),
        working=limit.unit in _WORKING,
    )

