"""The one place an order's status changes: check, apply the side-effect rule, log, commit."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from duban.db import session_scope
from duban.errors import Conflict, InvalidTransition, NotFound
from models.base import utcnow
from models.enums import ActorKind, Status
from models.lifecycle import TRANSITIONS, UNIT_LEAD_ACTIONS, Action
from models.records import Event
from models.work_order import Assignment, WorkOrder
from tasks import effects, held
from tasks.deadlines import refresh_next_due


@dataclass(frozen=True)
class Actor:
    """Who acts: a unit (by its id), a supervisor or staff member (by name), a channel, or the system."""

    kind: ActorKind
    id: str
    unit_id: int | None = None

    @classmethod
    def system(cls) -> "Actor":
        return cls(ActorKind.SYSTEM, "system")

    @classmethod
    def unit(cls, unit_id: int, code: str) -> "Actor":
        return cls(ActorKind.UNIT, code, unit_id)


@dataclass(frozen=True)
class Change:
    """What one transition did."""

    order_id: int
    number: str
    action: Action
    source: Status
    target: Status
    event: str
    version: int
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)


def transition(
    *,
    order_id: int,
    action: Action | str,
    actor: Actor,
    at: datetime | None = None,
    expected_version: int | None = None,
    payload: dict[str, Any] | None = None,
    session: Session | None = None,
) -> Change:
    """Move an order by one action; inside the caller's session if given, else in its own transaction."""
    if session is None:
        with session_scope() as own:
            return transition(order_id=order_id, action=action, actor=actor, at=at,
                              expected_version=expected_version, payload=payload, session=own)
    at = at or utcnow()
    action = Action(action)
    payload = dict(payload or {})
    # An order a batch holds is locked by this transaction already: reading it again would only cost time.
    order = held.held_order(session, order_id)
    deferred = order is not None
    if order is None:
        order = session.scalars(
            select(WorkOrder).where(WorkOrder.id == order_id).with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
    if order is None:
        raise NotFound(f"work order id {order_id} does not exist")
    current = held.version(session, order) if deferred else order.version
    if expected_version is not None and current != expected_version:
        raise Conflict(order.number, expected_version, current)
    rule = TRANSITIONS[action]
    source = Status(order.status)
    if source not in rule.sources:
        raise InvalidTransition(order.number, source, action)
    if actor.kind not in rule.actors:
        raise InvalidTransition(order.number, source, action, f"a {actor.kind} may not {action}")
    with held.order_assignments(session, order.id):
        if actor.kind == ActorKind.UNIT:
            _check_unit(session, order, action, actor)
        # One UPDATE of the order per transition, so its version moves by exactly one.
        with session.no_autoflush:
            details = effects.apply(session, order=order, action=action, actor=actor, at=at, payload=payload)
            order.status = rule.target
            order.updated_at = at
            refresh_next_due(session, order)
    row = dict(
        work_order_id=order.id, unit_id=actor.unit_id, name=rule.event, actor_kind=actor.kind,
        actor_id=actor.id, at=at, from_status=source, to_status=rule.target,
        payload=effects.loggable(payload) | details,
    )
    if deferred:
        # The batch writes held orders together at its flush, each version moved once per transition;
        # the row is locked, so no one can win a race for it meanwhile.
        held.buffer_event(session, row)
        return Change(order.id, order.number, action, source, rule.target, rule.event, held.moved(session, order),
                      at, details)
    session.add(Event(**row))
    try:
        session.flush()
    except StaleDataError:
        raise Conflict(order.number, expected_version or order.version) from None
    return Change(order.id, order.number, action, source, rule.target, rule.event, order.version, at, details)


def _check_unit(session: Session, order: WorkOrder, action: Action, actor: Actor) -> None:
    """A unit acts only on its own active assignment, and as lead for the lead's actions."""
    cached = held.assignments_of(session, order.id)
    if cached is not None:
        assignment = next((a for a in cached if a.unit_id == actor.unit_id and a.active is not False), None)
    else:
        assignment = session.scalars(
            select(Assignment).where(Assignment.work_order_id == order.id, Assignment.unit_id == actor.unit_id,
                                     Assignment.active.is_(True))
        ).first()
    if assignment is None:
        raise InvalidTransition(order.number, order.status, action, f"unit {actor.id} holds no assignment on it")
    if action in UNIT_LEAD_ACTIONS and assignment.role != "lead":
        raise InvalidTransition(order.number, order.status, action, f"only the lead unit may {action}")
    if action == Action.REQUEST_RETURN and assignment.designated:
        raise InvalidTransition(order.number, order.status, action,
                                f"unit {actor.id} was designated lead unit (首接负责) and may not return it")


def record_event(
    session: Session, *, order: WorkOrder | None, name: str, actor: Actor, at: datetime,
    unit_id: int | None = None, payload: dict[str, Any] | None = None,
) -> Event:
    """Append an event that changes no status (an extension decided, a rung fired, a case opened)."""
    event = Event(
        work_order_id=order.id if order else None, unit_id=unit_id if unit_id is not None else actor.unit_id,
        name=name, actor_kind=actor.kind, actor_id=actor.id, at=at,
        from_status=order.status if order else None, to_status=order.status if order else None,
        payload=payload or {},
    )
    session.add(event)
    return event
