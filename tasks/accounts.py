"""Supervisors' accounts: passwords, sessions, lock-out, the audit trail, and who may decide on an order."""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select

from duban.db import get_engine, session_scope
from duban.errors import DubanError, Forbidden, NotFound, ValidationFailed
from duban.settings import get_settings
from models.accounts import AuditEntry, GatewaySession, Role, User
from models.base import utcnow
from models.directory import Unit
from models.enums import ActorKind
from models.records import Event
from models.work_order import WorkOrder

_HASHER = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("not-a-password-of-anyone")
_NAME = re.compile(r"^[^\s/\\:]{1,100}$")
MIN_PASSWORD = 10


class LoginRefused(DubanError):
    """A login was refused; the message says why without telling whether the name exists."""


class SessionInvalid(DubanError):
    """A session cookie is unknown, forged, expired, or belongs to a disabled account."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code  # unknown, expired or disabled: the login page explains each
        super().__init__(message)


@dataclass(frozen=True)
class Login:
    """A fresh session: the cookie's token (shown once), its CSRF token and when it ends."""

    token: str
    csrf_token: str
    expires_at: datetime
    name: str
    role: Role


@dataclass(frozen=True)
class SessionUser:
    """Who a valid session belongs to."""

    name: str
    role: Role
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class AuditRow:
    """One line of `duban audit`."""

    at: datetime
    user: str
    action: str
    target: str
    outcome: int
    details: dict[str, Any]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"the password is too short: use at least {MIN_PASSWORD} characters")


def _user(session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user named {name!r}; see `duban user list`")
    return user


def _check_unit(session, unit: str | None) -> None:
    if unit is not None and session.scalar(select(Unit.id).where(Unit.code == unit)) is None:
        raise ValidationFailed(f"unit {unit!r} is not in the directory; see `duban directory load` for the codes")


def add_user(*, name: str, role: str, password: str, unit: str | None = None) -> None:
    """Create an account with a role, and the unit the person also acts for if any; the password is stored
    as an argon2 hash only."""
    if not _NAME.match(name):
        raise ValidationFailed(f"user name {name!r} is invalid: 1 to 100 characters, no spaces, '/', '\\' or ':'")
    if role not in set(Role):
        raise ValidationFailed(f"role {role!r} is unknown: use one of {', '.join(Role)}")
    _check_password(password)
    with session_scope() as session:
        if session.scalar(select(User.id).where(User.name == name)) is not None:
            raise ValidationFailed(f"a user named {name!r} exists already; use `duban user reset-password`")
        _check_unit(session, unit)
        session.add(User(name=name, role=role, password_hash=_HASHER.hash(password), unit_code=unit))


def set_unit(*, name: str, unit: str | None) -> None:
    """Record the unit a person also acts for, or none."""
    with session_scope() as session:
        _check_unit(session, unit)
        _user(session, name).unit_code = unit


def disable_user(*, name: str) -> None:
    """Disable an account and end its sessions at once."""
    with session_scope() as session:
        user = _user(session, name)
        user.disabled = True
        session.execute(delete(GatewaySession).where(GatewaySession.user_id == user.id))


def reset_password(*, name: str, password: str) -> None:
    """Set a new password, lift a lock-out, and end the account's sessions."""
    _check_password(password)
    with session_scope() as session:
        user = _user(session, name)
        user.password_hash, user.password_changed_at = _HASHER.hash(password), utcnow()
        user.failed_logins, user.locked_until = 0, None
        session.execute(delete(GatewaySession).where(GatewaySession.user_id == user.id))


def list_users() -> list[tuple[str, str, bool, str | None]]:
    """Every account: name, role, whether it is disabled, and the unit the person also acts for."""
    with session_scope(readonly=True) as session:
        return [(u.name, u.role, u.disabled, u.unit_code) for u in session.scalars(select(User).order_by(User.name))]


def login(*, name: str, password: str, at: datetime | None = None) -> Login:
    """Check a password and open a session; count failures and lock the account after too many."""
    at = at or utcnow()
    settings = get_settings()
    # A refusal is raised after the commit, so the failure count and the audit line are kept.
    refusal: str | None = None
    with session_scope() as session:
        user = session.scalar(select(User).where(User.name == name))
        if user is not None and user.locked_until is not None and user.locked_until > at:
            _audit(session, user=name, action="login_refused", target="locked", outcome=403, at=at)
            refusal = (f"this account is locked after {settings.gateway_max_failed_logins} wrong passwords "
                       f"until {user.locked_until:%H:%M} UTC; ask an admin to reset the password")
        elif not _password_ok(user, password):
            if user is not None:
                user.failed_logins += 1
                if user.failed_logins >= settings.gateway_max_failed_logins:
                    user.failed_logins = 0
                    user.locked_until = at + timedelta(minutes=settings.gateway_lockout_minutes)
            _audit(session, user=name[:100], action="login_failed", target="", outcome=401, at=at)
            refusal = "wrong name or password (or the account is disabled)"
        else:
            user.failed_logins, user.locked_until = 0, None
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            expires = at + timedelta(minutes=settings.gateway_session_minutes)
            session.add(GatewaySession(token_hash=_digest(token), user_id=user.id, csrf_token=csrf,
                                       created_at=at, expires_at=expires))
            _audit(session, user=name, action="login", target="", outcome=200, at=at)
            opened = Login(token, csrf, expires, user.name, Role(user.role))
    if refusal is not None:
        raise LoginRefused(refusal)
    return opened


def _password_ok(user: User | None, password: str) -> bool:
    try:
        _HASHER.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return user is not None and not user.disabled


def session_user(*, token: str, at: datetime | None = None) -> SessionUser:
    """The person behind a session token, or SessionInvalid saying why not."""
    at = at or utcnow()
    # Every proxied request asks this: one Core query, without the ORM's unit of work.
    query = (select(User.name, User.role, User.disabled, GatewaySession.csrf_token, GatewaySession.expires_at)
             .join(User, User.id == GatewaySession.user_id).where(GatewaySession.token_hash == _digest(token)))
    with get_engine().execution_options(duban_readonly=True).connect() as connection:
        row = connection.execute(query).first()
    if row is None:
        raise SessionInvalid("unknown", "this session is not known (logged out, or a forged cookie); log in again")
    if row.expires_at <= at:
        raise SessionInvalid("expired", "this session has expired; log in again")
    if row.disabled:
        raise SessionInvalid("disabled", "this account is disabled; ask an admin")
    return SessionUser(row.name, Role(row.role), row.csrf_token, row.expires_at)


def logout(*, token: str) -> None:
    """End a session, and every expired one with it."""
    with session_scope() as session:
        session.execute(delete(GatewaySession).where(
            (GatewaySession.token_hash == _digest(token)) | (GatewaySession.expires_at <= utcnow())))


def _audit(session, *, user: str, action: str, target: str, outcome: int, at: datetime,
           details: dict[str, Any] | None = None) -> None:
    session.add(AuditEntry(at=at, user_name=user, action=action, target=target[:300], outcome=outcome,
                           details=details or {}))


def record_audit(*, user: str, action: str, target: str, outcome: int, details: dict[str, Any] | None = None,
                 at: datetime | None = None) -> None:
    """Append one supervisor action to the audit trail."""
    with session_scope() as session:
        _audit(session, user=user, action=action, target=target, outcome=outcome, at=at or utcnow(), details=details)


def audit_trail(*, start: datetime, end: datetime, user: str | None = None) -> list[AuditRow]:
    """Every audited action from start (inclusive) to end (exclusive), oldest first, optionally one person's."""
    if end <= start:
        raise ValidationFailed(f"--to ({end:%Y-%m-%d %H:%M}) must be after --from ({start:%Y-%m-%d %H:%M})")
    query = select(AuditEntry).where(AuditEntry.at >= start, AuditEntry.at < end)
    if user:
        query = query.where(AuditEntry.user_name == user)
    with session_scope(readonly=True) as session:
        return [AuditRow(e.at, e.user_name, e.action, e.target, e.outcome, e.details)
                for e in session.scalars(query.order_by(AuditEntry.at, AuditEntry.id))]


def check_decider(*, order_number: str, user: str) -> None:
    """Refuse a decision by a person recorded as a unit-side actor on the order, or who acts for a unit that is."""
    with session_scope(readonly=True) as session:
        order_id = session.scalar(select(WorkOrder.id).where(WorkOrder.number == order_number))
        if order_id is None:
            return  # not a work order's run (a report or a sweep): nothing to compare with
        unit = session.scalar(select(User.unit_code).where(User.name == user))
        acted = session.execute(select(Event.actor_id, Event.name).where(
            Event.work_order_id == order_id, Event.actor_kind == ActorKind.UNIT,
            Event.actor_id.in_({user, unit} - {None})).order_by(Event.id).limit(1)).first()
    if acted is None:
        return
    did = (f"acted on work order {order_number} for the unit ({acted.name})" if acted.actor_id == user else
           f"acts for {unit}, which acted on work order {order_number} ({acted.name}),")
    raise Forbidden(f"{user} {did} and may not also decide on it; another supervisor must decide")
