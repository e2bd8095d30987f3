"""Writing notices into the outbox, in the same transaction as the change that decided them."""

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.directory import Category, Unit
from models.privacy import citizen_label, scrub
from models.records import Notification
from models.work_order import WorkOrder
from tasks import held


def order_context(session: Session, order: WorkOrder) -> dict[str, Any]:
    """What any notice may show of an order: no phone number in clear, no confidential name."""
    category = held.row(session, Category, order.category_id) if order.category_id else None
    return {
        "order_number": order.number,
        "item_type": order.item_type,
        "urgency": order.urgency,
        "category": category.name_zh if category else "",
        "category_code": category.code if category else "",
        "title": scrub(order.title),
        "content": scrub(order.content)[:500],
        "address": order.address,
        "citizen": citizen_label(order.citizen_name, order.citizen_phone, order.confidential),
        "due_at": order.stage_due_at.isoformat() if order.stage_due_at else None,
        "status": order.status,
    }


def enqueue_notice(
    session: Session,
    *,
    kind: str,
    order: WorkOrder | None,
    unit: Unit | None,
    recipients: list[str],
    at: datetime,
    extra: dict[str, Any] | None = None,
) -> Notification:
    """Add one notice; its Message-ID is stable (order, kind, sequence) so a resend is the same mail."""
    subject = order.number if order else (unit.code if unit else "duban")
    seq = held.next_notice_seq(session, order.id, kind) if order else None
    if seq is None:
        key_filter = Notification.work_order_id == order.id if order else Notification.unit_id == (unit.id if unit else None)
        stored = session.scalar(select(func.count()).select_from(Notification).where(key_filter, Notification.kind == kind))
        # Notices added in this transaction but not flushed yet count too.
        pending = sum(1 for obj in session.new if isinstance(obj, Notification) and obj.kind == kind
                      and obj.work_order_id == (order.id if order else None))
        seq = stored + pending + 1
    context = order_context(session, order) if order else {}
    if unit is not None:
        context |= {"unit_code": unit.code, "unit_name": unit.name_zh}
    context |= extra or {}
    notice = Notification(
        kind=kind,
        work_order_id=order.id if order else None,
        unit_id=unit.id if unit else None,
        recipients=[r for r in dict.fromkeys(recipients) if r],
        context=context,
        message_id=f"<{subject}.{kind}.{seq}@duban>",
        created_at=at,
        next_attempt_at=at,
    )
    session.add(notice)
    return notice
