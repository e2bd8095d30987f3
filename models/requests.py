"""What units and staff ask for or record beside the status: returns, extensions, reviews, visits."""

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, code_column, enum_check, utcnow
from models.enums import Decision, Satisfaction


class ReturnRequest(Base):
    """A unit's request to give an order back (退单), with its on-site evidence and the decision."""

    __tablename__ = "return_requests"
    __table_args__ = (enum_check("decision", Decision),)

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    suggested_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    evidence_note: Mapped[str] = mapped_column(Text, default="")
    evidence_files: Mapped[list[Any]] = mapped_column(default=list)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decision: Mapped[str] = mapped_column(code_column(Decision), default=Decision.PENDING)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    new_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))


class ExtensionRequest(Base):
    """A unit's request for more time (延期); approved, it moves the deadline, pending, it stops nothing."""

    __tablename__ = "extension_requests"
    __table_args__ = (enum_check("decision", Decision),)

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    requested_due_at: Mapped[datetime]
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decision: Mapped[str] = mapped_column(code_column(Decision), default=Decision.PENDING)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    granted_due_at: Mapped[datetime | None]


class Review(Base):
    """The hotline office's review of a unit's reply: approved, or sent back with a reason."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"))
    approved: Mapped[bool]
    automatic: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    reviewed_by: Mapped[str] = mapped_column(String(100))
    reviewed_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReturnVisit(Base):
    """A return visit (回访) to the citizen after the reply."""

    __tablename__ = "return_visits"
    __table_args__ = (enum_check("satisfaction", Satisfaction),)

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    contacted: Mapped[bool]
    resolved: Mapped[bool]
    satisfaction: Mapped[str] = mapped_column(code_column(Satisfaction))
    comment: Mapped[str] = mapped_column(Text, default="")
    visited_by: Mapped[str] = mapped_column(String(100))
    visited_at: Mapped[datetime] = mapped_column(default=utcnow)
