"""How far each consumer of the events table has read it (the Prefect event publisher)."""

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class EventCursor(Base):
    """The last event row a consumer has handed on; it resumes after it."""

    __tablename__ = "event_cursors"

    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The first missing id after the cursor, and when it was first seen missing.
    gap_at_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    gap_seen_at: Mapped[datetime | None]
