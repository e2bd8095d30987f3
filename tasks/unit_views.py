"""What a unit may see: one of its orders with history and what it may do now, and its inbox of open orders."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duban.db import session_scope
from models.directory import Category, Unit
from models.enums import ActorKind, AssignmentRole, Decision, Status
from models.privacy import scrub
from models.records import Event
from models.requests import ExtensionRequest, ReturnRequest
from models.work_order import Assignment, WorkOrder
from tasks import held
from tasks.actions import needs_on_site_evidence
from tasks.deadlines import order_policy
from tasks.outbox import order_context
from tasks.policy_store import current_policy
from tasks.tokens import ORDER, Grant, LinkRefused, check_token

# Statuses in which an order sits in a unit's inbox; after the reply it is the hotline office's turn.
INBOX_STATUSES = (Status.DISPATCHED, Status.RETURN_REQUESTED, Status.HANDLING, Status.REPLIED)
# The clock a unit is measured by runs in these statuses.
_CLOCK_RUNNING = frozenset({Status.DISPATCHED, Status.RETURN_REQUESTED, Status.HANDLING})


@dataclass(frozen=True)
class HistoryRow:
    """One event of an order as a unit sees it."""

    at: datetime
    name: str
    actor_kind: str
    actor: str
    note: str


@dataclass(frozen=True)
class OrderView:
    """An order from the point of view of one unit holding it."""

    id: int
    number: str
    version: int
    status: str
    role: str
    unit_name: str
    category: str
    title: str
    content: str
    address: str
    citizen: str
    received_at: datetime
    dispatched_at: datetime | None
    sign_due_at: datetime | None
    due_at: datetime | None
    deadline: datetime | None
    overdue: bool
    warning: bool
    on_site: bool
    designated: bool
    pending_extension: bool
    pending_return: bool
    actions: tuple[str, ...]
    history: tuple[HistoryRow, ...]
    timezone: str


@dataclass(frozen=True)
class InboxRow:
    """One open order in a unit's inbox."""

    number: str
    category: str
    title: str
    status: str
    role: str
    deadline: datetime | None
    overdue: bool
    warning: bool


_NOT_YOURS = "此工单不在贵单位名下，无法查看或办理。This work order is not with your unit."


class Holding(NamedTuple):
    """An order as the unit holding it reads it: with its assignment and the requests still undecided."""

    order: WorkOrder
    assignment: Assignment
    pending_extension: bool
    pending_return: bool


def _pending(model: type[ExtensionRequest] | type[ReturnRequest]) -> Any:
    return (select(func.count()).select_from(model)
            .where(model.work_order_id == WorkOrder.id, model.decision == Decision.PENDING).scalar_subquery())


def authorized_order(session: Session, *, grant: Grant, number: str | None) -> Holding:
    """The order a grant may open: its own order for an order link, any order the unit holds for an inbox link.

    Without a number, the order an order link was issued for. One statement: the order, the unit's
    assignment, its category (kept for the session) and whether a return or an extension is pending.
    """
    which = WorkOrder.number == number if number is not None else WorkOrder.id == grant.order_id
    found = session.execute(
        select(WorkOrder, Assignment, Category, _pending(ExtensionRequest), _pending(ReturnRequest))
        .join(Assignment, (Assignment.work_order_id == WorkOrder.id) & (Assignment.unit_id == grant.unit_id)
              & Assignment.active.is_(True))
        .outerjoin(Category, Category.id == WorkOrder.category_id)
        .where(which)
        .order_by(Assignment.role.desc()).limit(1)
    ).first()
    # The same answer whether the order exists or not, so a link cannot probe other orders.
    if found is None or (grant.scope == ORDER and found[0].id != grant.order_id):
        raise LinkRefused("not_yours", _NOT_YOURS)
    order, assignment, category, extensions, returns = found
    held.keep(session, category)
    return Holding(order, assignment, bool(extensions), bool(returns))


def _deadline(order: WorkOrder, assignment: Assignment) -> datetime | None:
    return assignment.sign_due_at if order.status in {Status.DISPATCHED, Status.RETURN_REQUESTED} else assignment.due_at


def _flags(session: Session, order: WorkOrder, assignment: Assignment, now: datetime) -> tuple[bool, bool]:
    """(overdue, warning) on the unit's own deadline, the warning at the policy's share of the limit."""
    deadline = _deadline(order, assignment)
    if deadline is None or order.status not in _CLOCK_RUNNING:
        return False, False
    if deadline <= now:
        return True, False
    fraction = order_policy(session, order).time_limits.warning_fraction
    started = assignment.dispatched_at
    return False, order.stage_rung > 0 or now >= started + (deadline - started) * fraction


def _allowed(order: WorkOrder, assignment: Assignment, pending_extension: bool) -> tuple[str, ...]:
    if assignment.role != AssignmentRole.LEAD:
        return ()
    actions: list[str] = []
    if order.status == Status.DISPATCHED:
        actions.append("sign")
        if not assignment.designated:
            actions.append("return")
    if order.status == Status.HANDLING:
        actions.append("reply")
    if order.status in {Status.DISPATCHED, Status.HANDLING} and not pending_extension:
        actions.append("extension")
    return tuple(actions)


def open_order(*, token: str, number: str | None, now: datetime, history: bool = True,
               session: Session | None = None) -> tuple[Grant, OrderView | None]:
    """Check a link and show the order it opens (by number, or its own order); an inbox link alone shows none.

    In the caller's session if given, else in a read-only one of its own.
    """
    if session is None:
        with session_scope(readonly=True) as own:
            return open_order(token=token, number=number, now=now, history=history, session=own)
    grant = check_token(session=session, token=token, at=now)
    if number is None and grant.scope != ORDER:
        return grant, None
    return grant, _view(session, grant, authorized_order(session, grant=grant, number=number), now, history)


def _view(session: Session, grant: Grant, holding: Holding, now: datetime, history: bool) -> OrderView:
    order, assignment, pending_extension, pending_return = holding
    context = order_context(session, order)
    overdue, warning = _flags(session, order, assignment, now)
    return OrderView(
        id=order.id, number=order.number, version=order.version, status=order.status, role=assignment.role,
        unit_name=grant.unit_name, category=context["category"], title=context["title"],
        content=context["content"], address=context["address"], citizen=context["citizen"],
        received_at=order.received_at, dispatched_at=assignment.dispatched_at,
        sign_due_at=assignment.sign_due_at, due_at=assignment.due_at, deadline=_deadline(order, assignment),
        overdue=overdue, warning=warning, on_site=needs_on_site_evidence(session, order),
        designated=assignment.designated, pending_extension=pending_extension, pending_return=pending_return,
        actions=_allowed(order, assignment, pending_extension),
        history=tuple(_history(session, order)) if history else (), timezone=order_policy(session, order).timezone,
    )


def _history(session: Session, order: WorkOrder) -> list[HistoryRow]:
    rows = []
    events = session.execute(
        select(Event, Unit.name_zh)
        .outerjoin(Unit, (Event.actor_kind == ActorKind.UNIT) & (Unit.code == Event.actor_id))
        .where(Event.work_order_id == order.id).order_by(Event.id))
    for event, unit_name in events:
        if event.actor_kind == ActorKind.UNIT:
            actor = unit_name or event.actor_id
        elif event.actor_kind == ActorKind.SYSTEM:
            actor = "系统 system"
        elif event.actor_kind == ActorKind.CHANNEL:
            actor = "受理 intake"
        else:
            actor = "热线办 hotline office"
        payload = event.payload or {}
        note = str(payload.get("reason") or payload.get("text") or "")[:300]
        rows.append(HistoryRow(at=event.at, name=event.name, actor_kind=event.actor_kind, actor=actor, note=note))
    return rows


def inbox_rows(session: Session, *, unit_id: int, now: datetime) -> list[InboxRow]:
    """The unit's open orders, soonest deadline first."""
    found = session.execute(
        select(WorkOrder, Assignment, Category.name_zh)
        .join(Assignment, Assignment.work_order_id == WorkOrder.id)
        .outerjoin(Category, Category.id == WorkOrder.category_id)
        .where(Assignment.unit_id == unit_id, Assignment.active.is_(True), WorkOrder.status.in_(INBOX_STATUSES))
    ).all()
    rows = []
    for order, assignment, category in found:
        overdue, warning = _flags(session, order, assignment, now)
        rows.append(InboxRow(number=order.number, category=category or "", title=scrub(order.title),
                             status=order.status, role=assignment.role, deadline=_deadline(order, assignment),
                             overdue=overdue, warning=warning))
    return sorted(rows, key=lambda r: (r.deadline is None, r.deadline or now, r.number))


def inbox_view(*, grant: Grant, now: datetime) -> tuple[list[InboxRow], str]:
    """The inbox page's rows and the time zone to show them in."""
    with session_scope(readonly=True) as session:
        return inbox_rows(session, unit_id=grant.unit_id, now=now), current_policy(session).policy.timezone


def unit_choices(*, exclude_unit_id: int) -> list[tuple[str, str]]:
    """Active units a return may suggest instead, as (code, name)."""
    with session_scope(readonly=True) as session:
        return [(code, name) for code, name in session.execute(
            select(Unit.code, Unit.name_zh).where(Unit.active.is_(True), Unit.id != exclude_unit_id)
            .order_by(Unit.code))]
