"""What a city's past brings beside its work orders: the call log and the totals it once published."""

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, code_column, enum_check
from models.enums import Channel


class CallOutcome(StrEnum):
    """Why a connected call did not become a valid item (有效诉求)."""

    DROPPED = "dropped"
    PROGRESS_QUERY = "progress_query"
    REPEAT = "repeat"
    OUTSIDE_REMIT = "outside_remit"
    TRANSFERRED = "transferred"
    HARASSMENT = "harassment"


CALL_OUTCOME_LABELS: dict[CallOutcome, tuple[str, str]] = {
    CallOutcome.DROPPED: ("未说明诉求即挂断", "hung up before stating a matter"),
    CallOutcome.PROGRESS_QUERY: ("查询办理进度", "asked about an existing order"),
    CallOutcome.REPEAT: ("重复来电", "the same matter again"),
    CallOutcome.OUTSIDE_REMIT: ("非政务服务事项", "not a government service matter"),
    CallOutcome.TRANSFERRED: ("转接110/119/120等", "put through to an emergency or other hotline"),
    CallOutcome.HARASSMENT: ("骚扰电话", "nuisance call"),
}


class Call(Base):
    """A connected call (or message) that did not become a valid item; valid items are work orders."""

    __tablename__ = "calls"
    __table_args__ = (
        enum_check("channel", Channel),
        enum_check("outcome", CallOutcome),
        Index("ix_calls_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True)
    at: Mapped[datetime]
    channel: Mapped[str] = mapped_column(code_column(Channel))
    outcome: Mapped[str] = mapped_column(code_column(CallOutcome))
    # The order a progress query or repeat call was about, by number (it may predate Duban).
    order_number: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")


class PublishedTotals(Base):
    """Totals a period was published with, for a period whose records Duban does not hold (year on year)."""

    __tablename__ = "published_totals"
    __table_args__ = (UniqueConstraint("period_from", "period_to", name="uq_published_totals_period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period_from: Mapped[date]
    period_to: Mapped[date]
    calls_connected: Mapped[int | None]
    calls_from_county_platforms: Mapped[int | None]
    valid_items: Mapped[int | None]
    source: Mapped[str] = mapped_column(Text, default="")
