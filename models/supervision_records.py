"""What supervision writes down: fired rungs, flags against units, case decisions, the circulated notice."""

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, LargeBinary, String, Text, Unicode, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Escalation(Base):
    """One rung fired for one deadline; the unique key is what makes a rung fire exactly once."""

    __tablename__ = "escalations"
    __table_args__ = (
        Index("ix_escalations_unit_fired", "unit_id", "fired_at"),
        Index("ix_escalations_order", "work_order_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # order, assignment, stage, deadline and rung: the same deadline re-entered (a rejected return
    # puts the order back on the unit's unchanged sign-for deadline) finds its rungs already fired.
    key: Mapped[str] = mapped_column(String(160), unique=True)
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"))
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    stage: Mapped[str] = mapped_column(String(24))
    rung: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime]
    scheduled_at: Mapped[datetime]
    fired_at: Mapped[datetime]
    case_id: Mapped[int | None] = mapped_column(ForeignKey("supervision_cases.id"))


class SupervisionFlag(Base):
    """A mark against a unit that is not a status: a suspected false completion, a repeat complaint."""

    __tablename__ = "supervision_flags"
    __table_args__ = (Index("ix_supervision_flags_unit_at", "unit_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(24))
    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    related_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"))
    at: Mapped[datetime]
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)


class CaseDecision(Base):
    """One decision a supervisor took on a case; the case's history, oldest first."""

    __tablename__ = "case_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("supervision_cases.id"), index=True)
    decision: Mapped[str] = mapped_column(String(24))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime]
    new_due_at: Mapped[datetime | None]
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    finding: Mapped[str] = mapped_column(Text, default="")


class CirculatedNotice(Base):
    """A unit named on a period's circulated notice (通报), with why and the evidence."""

    __tablename__ = "circulated_notices"
    __table_args__ = (UniqueConstraint("period", "unit_id", name="uq_circulated_notices_period_unit"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    drawn_at: Mapped[datetime]
    buck_passing_index: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    evidence: Mapped[list[Any]] = mapped_column(default=list)


class ClockJob(Base):
    """APScheduler's job store table, declared here so migrations and tests create it like any other.

    The columns are those APScheduler's SQLAlchemyJobStore defines; it only holds the clock's wake-up,
    never a deadline.
    """

    __tablename__ = "clock_jobs"

    id: Mapped[str] = mapped_column(Unicode(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25), index=True)
    job_state: Mapped[bytes] = mapped_column(LargeBinary)
