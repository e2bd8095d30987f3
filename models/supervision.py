"""Supervision cases (督办) and knowledge-base articles, the two things units are held to."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, code_column, enum_check, utcnow
from models.enums import CaseKind, CaseStatus


class SupervisionCase(Base):
    """A matter the hotline office supervises: an overdue order, a buck-passing pattern, a stale KB."""

    __tablename__ = "supervision_cases"
    __table_args__ = (
        enum_check("kind", CaseKind),
        enum_check("status", CaseStatus),
        Index("ix_supervision_cases_order_kind", "work_order_id", "kind", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    kind: Mapped[str] = mapped_column(code_column(CaseKind))
    level: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(code_column(CaseStatus), default=CaseStatus.OPEN)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    decision: Mapped[str] = mapped_column(String(40), default="")
    finding: Mapped[str] = mapped_column(Text, default="")
    decided_by: Mapped[str | None] = mapped_column(String(100))
    on_notice: Mapped[bool] = mapped_column(default=False)


class Article(Base):
    """A knowledge-base article that answers consultations; its owner unit keeps it current."""

    __tablename__ = "kb_articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    owner_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    review_by: Mapped[date]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    active: Mapped[bool] = mapped_column(default=True)
