"""The events table published as Prefect events, for automations; a cursor makes it resumable and lossless."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prefect.client.orchestration import get_client
from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.db import session_scope
from models.base import utcnow
from models.directory import Category, District, Unit
from models.enums import AssignmentRole
from models.event_cursor import EventCursor
from models.records import Event
from models.work_order import Assignment, WorkOrder

CONSUMER = "prefect-events"
# Stable Prefect event ids: a batch sent again after a crash carries the same ids.
_NAMESPACE = uuid.UUID("6f1c3f4e-5d0b-4a8e-9c61-2f7f0d1b9a44")
# Duban's event names that read better under another verb; the rest keep theirs.
_RENAMED = {"return_approved": ("work_order", "returned")}
# How long a missing event id is waited for before the publisher passes it; Duban's transactions take seconds.
GAP_GRACE = timedelta(seconds=60)


def prefect_event_name(name: str, *, has_order: bool) -> str:
    """`duban.<subject>.<verb>`, e.g. work_order_dispatched -> duban.work_order.dispatched."""
    if name in _RENAMED:
        subject, verb = _RENAMED[name]
    elif name.startswith("work_order_"):
        subject, verb = "work_order", name.removeprefix("work_order_")
    elif name.startswith("case_"):
        subject, verb = "case", name.removeprefix("case_")
    else:
        subject, verb = ("work_order" if has_order else "unit"), name
    return f"duban.{subject}.{verb}"


@dataclass(frozen=True)
class Pending:
    """The next events to publish, the id of the last one, and the missing id the batch stopped before."""

    events: list[dict[str, Any]]
    last_event_id: int
    waiting_for: int | None


def pending_events(*, limit: int, now: datetime | None = None) -> Pending:
    """Events after the cursor as Prefect events with no personal data, stopping before an unsettled gap in ids."""
    now = now or utcnow()
    with session_scope(readonly=True) as session:
        cursor = session.get(EventCursor, CONSUMER)
        after = cursor.last_event_id if cursor else 0
        rows = list(session.scalars(select(Event).where(Event.id > after).order_by(Event.id).limit(limit)))
        kept, expected, waiting = [], after + 1, None
        for row in rows:
            # A missing id is a transaction that drew it and has not committed yet (PostgreSQL sequences), or
            # one that rolled back; it is waited for until GAP_GRACE after it was first seen, then passed.
            settled = (cursor is not None and cursor.gap_at_id == expected and cursor.gap_seen_at is not None
                       and cursor.gap_seen_at <= now - GAP_GRACE)
            if row.id != expected and not settled:
                waiting = expected
                break
            kept.append(row)
            expected = row.id + 1
        lookup = _Lookup.load(session, {row.work_order_id for row in kept if row.work_order_id})
        return Pending([_as_prefect(lookup, row) for row in kept], kept[-1].id if kept else after, waiting)


def advance_cursor(*, last_event_id: int, waiting_for: int | None = None, now: datetime | None = None) -> None:
    """Record that every event up to `last_event_id` was accepted, and since when a missing id is waited for."""
    now = now or utcnow()
    with session_scope() as session:
        cursor = session.get(EventCursor, CONSUMER, with_for_update=True)
        if cursor is None:
            cursor = EventCursor(consumer=CONSUMER, last_event_id=0, updated_at=now)
            session.add(cursor)
        if last_event_id > cursor.last_event_id:
            cursor.last_event_id, cursor.updated_at = last_event_id, now
        if waiting_for != cursor.gap_at_id:
            cursor.gap_at_id, cursor.gap_seen_at = waiting_for, now if waiting_for is not None else None


async def publish_new_events(*, batch: int = 500) -> int:
    """Send every event not yet published, a batch at a time; the cursor moves only after the server accepts."""
    sent = 0
    async with get_client() as client:
        while True:
            pending = pending_events(limit=batch)
            if pending.events:
                response = await client.request("POST", "/events", json=pending.events)
                response.raise_for_status()
            advance_cursor(last_event_id=pending.last_event_id, waiting_for=pending.waiting_for)
            sent += len(pending.events)
            if not pending.events or pending.waiting_for is not None:
                return sent


@dataclass(frozen=True)
class _Lookup:
    """Codes of a batch's orders and of the directory, read once per batch rather than once per event."""

    orders: dict[int, WorkOrder]
    leads: dict[int, str]
    units: dict[int, str]
    categories: dict[int, str]
    districts: dict[int, str]

    @classmethod
    def load(cls, session: Session, order_ids: set[int]) -> "_Lookup":
        orders = {o.id: o for o in session.scalars(select(WorkOrder).where(WorkOrder.id.in_(order_ids)))}
        leads = dict(session.execute(select(Assignment.work_order_id, Unit.code).join(
            Unit, Unit.id == Assignment.unit_id).where(
            Assignment.work_order_id.in_(order_ids), Assignment.role == AssignmentRole.LEAD,
            Assignment.active.is_(True))).all())
        codes = {model: dict(session.execute(select(model.id, model.code)).all())
                 for model in (Unit, Category, District)}
        return cls(orders, leads, codes[Unit], codes[Category], codes[District])


def _as_prefect(lookup: _Lookup, row: Event) -> dict[str, Any]:
    order = lookup.orders.get(row.work_order_id) if row.work_order_id else None
    unit = _unit_of(lookup, row, order)
    related = []
    if unit is not None:
        related.append(_related("unit", f"duban.unit.{unit}", unit))
    if order is not None and order.category_id:
        code = lookup.categories[order.category_id]
        related.append(_related("category", f"duban.category.{code}", code))
    if order is not None and order.district_id:
        code = lookup.districts[order.district_id]
        related.append(_related("district", f"duban.district.{code}", code))
    if order is not None:
        resource = {"prefect.resource.id": f"duban.work-order.{order.number}", "prefect.resource.name": order.number}
    elif unit is not None:
        resource = {"prefect.resource.id": f"duban.unit.{unit}", "prefect.resource.name": unit}
    else:
        resource = {"prefect.resource.id": f"duban.event.{row.id}"}
    # Only codes and states: the payload of the row may quote a citizen, so it is not passed on.
    payload = {"duban_event_id": row.id, "duban_event": row.name, "from_status": row.from_status,
               "to_status": row.to_status, "actor_kind": row.actor_kind}
    if order is not None:
        payload |= {"item_type": order.item_type, "urgency": order.urgency}
    # Row id with its time and name, so two Duban databases on one Prefect server never share an id.
    key = f"{row.id}:{row.at.isoformat()}:{row.name}:{resource['prefect.resource.id']}"
    return {"id": str(uuid.uuid5(_NAMESPACE, key)), "occurred": row.at.isoformat(),
            "event": prefect_event_name(row.name, has_order=order is not None), "resource": resource,
            "related": related, "payload": payload}


def _related(role: str, resource_id: str, name: str) -> dict[str, str]:
    return {"prefect.resource.id": resource_id, "prefect.resource.role": role, "prefect.resource.name": name}


def _unit_of(lookup: _Lookup, row: Event, order: WorkOrder | None) -> str | None:
    """The unit the event is about: the acting unit, the unit an order went to, else the current lead."""
    if row.unit_id:
        return lookup.units.get(row.unit_id)
    code = (row.payload or {}).get("unit")
    if isinstance(code, str) and code in lookup.units.values():
        return code
    return lookup.leads.get(order.id) if order is not None else None
