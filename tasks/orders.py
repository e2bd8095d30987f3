"""Creating work orders and reading them back by number."""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.errors import NotFound
from models.base import utcnow
from models.directory import Category, District, Unit
from models.enums import Channel, ItemType, Urgency
from models.records import Event
from models.work_order import Assignment, WorkOrder
from tasks.numbers import allocate_numbers
from tasks.policy_store import current_policy


def create_order(
    *,
    session: Session,
    channel: Channel | str,
    item_type: ItemType | str,
    content: str,
    category_code: str | None = None,
    district_code: str | None = None,
    urgency: Urgency | str = Urgency.NORMAL,
    at: datetime | None = None,
    actor_id: str = "intake",
    **fields: Any,
) -> WorkOrder:
    """Register one valid item as a received order under the current policy, with its first event."""
    at = at or utcnow()
    category_id = _code_id(session, Category, category_code, "category")
    district_id = _code_id(session, District, district_code, "district")
    order = WorkOrder(
        number=allocate_numbers(session, at)[0], channel=Channel(channel), item_type=ItemType(item_type),
        urgency=Urgency(urgency), content=content, category_id=category_id, district_id=district_id,
        received_at=at, updated_at=at, policy_version=current_policy(session).version, **fields,
    )
    session.add(order)
    session.flush()
    session.add(Event(work_order_id=order.id, name="work_order_received", actor_kind="channel",
                      actor_id=actor_id, at=at, from_status=None, to_status=order.status,
                      payload={"channel": order.channel, "item_type": order.item_type}))
    return order


def _code_id(session: Session, model: type, code: str | None, what: str) -> int | None:
    if not code:
        return None
    found = session.scalar(select(model.id).where(model.code == code))
    if found is None:
        raise NotFound(f"unknown {what} code {code!r}; see `duban directory load`")
    return found


def order_by_number(session: Session, number: str) -> WorkOrder:
    """The order with this number, or NotFound."""
    order = session.scalar(select(WorkOrder).where(WorkOrder.number == number))
    if order is None:
        raise NotFound(f"work order {number} does not exist")
    return order


def active_lead(session: Session, order: WorkOrder) -> Assignment | None:
    """The order's active lead assignment, if a unit holds it."""
    return session.scalars(select(Assignment).where(
        Assignment.work_order_id == order.id, Assignment.active.is_(True), Assignment.role == "lead")).first()


def order_tags(session: Session, order: WorkOrder) -> list[str]:
    """unit:, category: and district: tags by which supervisors find the run in the UI."""
    tags = []
    lead = active_lead(session, order)
    if lead is not None:
        tags.append(f"unit:{session.get(Unit, lead.unit_id).code}")
    if order.category_id:
        tags.append(f"category:{session.get(Category, order.category_id).code}")
    if order.district_id:
        tags.append(f"district:{session.get(District, order.district_id).code}")
    return tags
