"""Work orders and the units assigned to them."""

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, code_column, enum_check, utcnow
from models.enums import AssignmentRole, Channel, ItemType, Status, Urgency


class WorkOrder(Base):
    """One valid item (诉求) from intake to its final status."""

    __tablename__ = "work_orders"
    __table_args__ = (
        enum_check("status", Status),
        enum_check("channel", Channel),
        enum_check("item_type", ItemType),
        enum_check("urgency", Urgency),
        UniqueConstraint("channel", "channel_ref", name="uq_work_orders_channel_ref"),
        Index("ix_work_orders_next_due_at", "next_due_at"),
        Index("ix_work_orders_status_received", "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    channel: Mapped[str] = mapped_column(code_column(Channel))
    channel_ref: Mapped[str | None] = mapped_column(String(128))
    item_type: Mapped[str] = mapped_column(code_column(ItemType))
    urgency: Mapped[str] = mapped_column(code_column(Urgency), default=Urgency.NORMAL)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    content: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(String(300), default="")
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"), index=True)
    citizen_name: Mapped[str] = mapped_column(String(100), default="")
    citizen_phone: Mapped[str] = mapped_column(String(40), default="")
    citizen_email: Mapped[str] = mapped_column(String(254), default="")
    confidential: Mapped[bool] = mapped_column(default=False)

    status: Mapped[str] = mapped_column(code_column(Status), default=Status.RECEIVED)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    # The current stage's deadline, when it began, and how far up the escalation ladder it has gone.
    stage_started_at: Mapped[datetime | None]
    stage_due_at: Mapped[datetime | None]
    stage_rung: Mapped[int] = mapped_column(default=0)
    # The promise to the citizen: handling deadline counted from the first dispatch.
    due_at: Mapped[datetime | None]
    next_due_at: Mapped[datetime | None]

    policy_version: Mapped[int] = mapped_column(default=0)
    master_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"), index=True)
    designated_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    return_count: Mapped[int] = mapped_column(default=0)
    redo_count: Mapped[int] = mapped_column(default=0)
    false_completion: Mapped[bool] = mapped_column(default=False)
    answer_article_id: Mapped[int | None] = mapped_column(ForeignKey("kb_articles.id"))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)

    version: Mapped[int] = mapped_column(default=1)
    __mapper_args__ = {"version_id_col": version}

    def __repr__(self) -> str:
        return f"<WorkOrder {self.number} {self.status} v{self.version}>"


class Assignment(Base):
    """A unit's share of an order: lead (主办) or assisting (协办), with its own deadlines."""

    __tablename__ = "assignments"
    __table_args__ = (
        enum_check("role", AssignmentRole),
        Index("ix_assignments_order_unit_active", "work_order_id", "unit_id", "active"),
        Index("ix_assignments_unit_active", "unit_id", "active"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    role: Mapped[str] = mapped_column(code_column(AssignmentRole))
    active: Mapped[bool] = mapped_column(default=True)
    dispatched_at: Mapped[datetime]
    sign_due_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    signed_at: Mapped[datetime | None]
    replied_at: Mapped[datetime | None]
    returned_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    reply_text: Mapped[str] = mapped_column(Text, default="")
    reply_contacted: Mapped[bool | None]
    reply_solved: Mapped[bool | None]
    rung: Mapped[int] = mapped_column(default=0)
    designated: Mapped[bool] = mapped_column(default=False)
