"""The append-only event log, the notification outbox, policy versions, channels and action tokens."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, code_column, enum_check, utcnow
from models.enums import ActorKind, SendState


class Event(Base):
    """One thing that happened to an order (or a unit), named subject + past-tense verb."""

    __tablename__ = "events"
    __table_args__ = (
        enum_check("actor_kind", ActorKind),
        Index("ix_events_order_id", "work_order_id", "id"),
        Index("ix_events_name_at", "name", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    actor_kind: Mapped[str] = mapped_column(code_column(ActorKind))
    actor_id: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime]
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Notification(Base):
    """An outbox row: written with the transition that decided it, sent later by the relay."""

    __tablename__ = "notifications"
    __table_args__ = (
        enum_check("send_state", SendState),
        Index("ix_notifications_due", "send_state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    recipients: Mapped[list[Any]] = mapped_column(default=list)
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Delivery state lives apart from the order's state.
    send_state: Mapped[str] = mapped_column(code_column(SendState), default=SendState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    # Recipients the server already accepted, so a retry after a partial refusal goes to the others only.
    delivered_to: Mapped[list[Any]] = mapped_column(default=list)
    failed_at: Mapped[datetime | None]


class PolicyVersion(Base):
    """A policy.yaml that was applied: content, hash, who, when, why."""

    __tablename__ = "policy_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    content: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text, default="")
    in_flight: Mapped[str] = mapped_column(String(16), default="keep")
    current: Mapped[bool] = mapped_column(default=False)


class ChannelKey(Base):
    """An intake channel and its API key (stored hashed, revocable)."""

    __tablename__ = "channel_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(24))
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class ActionToken(Base):
    """A signed link's server-side half: scoped to a unit and an order, expiring, single-use."""

    __tablename__ = "action_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    work_order_id: Mapped[int | None] = mapped_column(ForeignKey("work_orders.id"))
    scope: Mapped[str] = mapped_column(String(24))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class OrderCounter(Base):
    """The last order number handed out per city and day (numbers are ZZ20210314-000123)."""

    __tablename__ = "order_counters"

    prefix: Mapped[str] = mapped_column(String(16), primary_key=True)
    last: Mapped[int] = mapped_column(default=0)


class RunCursor(Base):
    """How far an order's lifecycle run has told its story, and which form inputs it has applied."""

    __tablename__ = "run_cursors"

    work_order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id"), primary_key=True)
    # Kept apart from the order so that starting a run does not change the order's version.
    flow_run_id: Mapped[str | None] = mapped_column(String(36), index=True)
    started_at: Mapped[datetime | None]
    narrated_event_id: Mapped[int] = mapped_column(default=0)
    applied_inputs: Mapped[list[Any]] = mapped_column(default=list)
