"""Supervisors' personal accounts for the gateway in front of the Prefect UI, their sessions and the audit trail."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, code_column, enum_check, utcnow


class Role(StrEnum):
    """What a person may do in the Prefect UI; each role includes the ones before it."""

    VIEWER = "viewer"  # runs, artifacts, logs, filters
    DECIDER = "decider"  # also submits resume forms (decisions on orders)
    ADMIN = "admin"  # also deployments, automations, work pools, cancelling and deleting runs


ROLE_RANK = {Role.VIEWER: 0, Role.DECIDER: 1, Role.ADMIN: 2}
ROLE_LABELS = {Role.VIEWER: "查看 viewer", Role.DECIDER: "决定 decider", Role.ADMIN: "管理 admin"}


class User(Base):
    """One person who logs in to the gateway; failed logins are counted here for the lock-out."""

    __tablename__ = "users"
    __table_args__ = (enum_check("role", Role),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(code_column(Role))
    password_hash: Mapped[str] = mapped_column(String(200))
    # The unit this person also acts for (a unit's liaison, a district office that handles and supervises):
    # they may not decide on an order that unit acted on.
    unit_code: Mapped[str | None] = mapped_column(String(64))
    disabled: Mapped[bool] = mapped_column(default=False)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class GatewaySession(Base):
    """A logged-in browser: only the token's hash is stored, so a database reader cannot take over a session."""

    __tablename__ = "gateway_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class AuditEntry(Base):
    """One supervisor action through the gateway: a login, a decision, a cancellation, a configuration change."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_at", "at"), Index("ix_audit_entries_user_at", "user_name", "at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    user_name: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(48))
    target: Mapped[str] = mapped_column(String(300), default="")
    outcome: Mapped[int] = mapped_column(default=200)  # the HTTP status the person got back
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
