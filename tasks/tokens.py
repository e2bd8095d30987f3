"""Unit action links: signed, expiring, single-use tokens backed by a row, for one order or a unit's inbox."""

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.orm import Session

from duban.db import session_scope
from duban.errors import Forbidden, NotFound
from duban.settings import get_settings
from models.base import utcnow
from models.directory import Unit
from models.records import ActionToken, Notification
from models.work_order import WorkOrder
from tasks.outbox import enqueue_notice

ORDER = "order"
INBOX = "inbox"
Scope = Literal["order", "inbox"]
Refusal = Literal["invalid", "expired", "used", "not_yours"]
_TOKENS = ActionToken.__table__
FORGED = "此链接无效，请使用邮件中的完整链接。This link is not valid; use the whole link from the mail."
USED = "此链接已使用过，不能再次使用。This link has already been used."


class LinkRefused(Forbidden):
    """A link that may not be used: forged, expired, already used, or for another unit's order."""

    def __init__(self, reason: Refusal, message: str) -> None:
        self.reason = reason
        super().__init__(message)

    @property
    def renewable(self) -> bool:
        """Expired and used links belong to a real unit, which may ask for a fresh one by email."""
        return self.reason in {"expired", "used"}


@dataclass(frozen=True)
class Grant:
    """What a valid token allows: one unit, on one order or on its inbox, until it expires."""

    token_id: int
    unit_id: int
    unit_code: str
    unit_name: str
    order_id: int | None
    scope: str
    expires_at: datetime


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _key() -> bytes:
    return get_settings().secret_key.get_secret_value().encode()


def _signature(nonce: str) -> str:
    return _b64(hmac.new(_key(), f"duban-link:{nonce}".encode(), hashlib.sha256).digest()[:16])


def _new_token(seed: str | None) -> str:
    """nonce.signature; a seed (a notice and a scope) gives the same token every time it is rendered."""
    if seed is None:
        nonce = _b64(secrets.token_bytes(16))
    else:
        nonce = _b64(hmac.new(_key(), f"duban-seed:{seed}".encode(), hashlib.sha256).digest()[:16])
    return f"{nonce}.{_signature(nonce)}"


def token_hash(token: str) -> str:
    """What the database keeps of a token: its SHA-256, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def link_url(token: str) -> str:
    """The portal address a token opens."""
    return f"{get_settings().portal_base_url.rstrip('/')}/u/{token}"


@dataclass(frozen=True)
class TokenRequest:
    """One link to issue: for a unit, on an order (scope order) or on its inbox; a seed makes it repeatable."""

    unit_id: int
    order_id: int | None
    scope: Scope
    seed: str | None = None


def issue_tokens(*, session: Session, requests: list[TokenRequest], at: datetime) -> list[tuple[str, datetime]]:
    """Tokens and their expiry, in the order asked; a seed already issued gives back the same token and row."""
    for request in requests:
        if request.scope == ORDER and request.order_id is None:
            raise ValueError("an order link needs the order it opens")
    tokens = [_new_token(r.seed) for r in requests]
    digests = [token_hash(t) for t in tokens]
    # Only a seeded token can exist already; a random one is new by construction.
    seeded = {d for d, r in zip(digests, requests, strict=True) if r.seed is not None}
    known = dict(session.execute(select(ActionToken.token_hash, ActionToken.expires_at)
                                 .where(ActionToken.token_hash.in_(seeded))).all()) if seeded else {}
    expires = at + timedelta(hours=get_settings().link_ttl_hours)
    rows = {}
    for request, digest in zip(requests, digests, strict=True):
        if digest not in known and digest not in rows:
            rows[digest] = {"token_hash": digest, "unit_id": request.unit_id, "scope": request.scope,
                            "work_order_id": request.order_id if request.scope == ORDER else None,
                            "created_at": at, "expires_at": expires, "used_at": None}
    if rows:
        session.execute(insert(_TOKENS), list(rows.values()))
    return [(token, known.get(digest, expires)) for token, digest in zip(tokens, digests, strict=True)]


def issue_token(*, session: Session, unit_id: int, order_id: int | None, scope: Scope, at: datetime,
                seed: str | None = None) -> tuple[str, datetime]:
    """One token for a unit on one order (scope order) or on its inbox; returns it and its expiry."""
    [issued] = issue_tokens(session=session, requests=[TokenRequest(unit_id, order_id, scope, seed)], at=at)
    return issued


def check_token(*, session: Session, token: str, at: datetime) -> Grant:
    """The grant of a token that is genuine, unused and unexpired; LinkRefused says which it is not."""
    row = _row(session, token)
    if row.used_at is not None:
        raise LinkRefused("used", USED)
    if row.expires_at <= at:
        raise LinkRefused("expired", "此链接已过期。This link has expired.")
    return Grant(row.id, row.unit_id, row.code, row.name_zh, row.work_order_id, row.scope, row.expires_at)


def looks_signed(token: str) -> bool:
    """Whether a token carries a valid signature; checked before anything else is read or parsed."""
    nonce, _, signature = token.partition(".")
    return bool(nonce) and hmac.compare_digest(signature, _signature(nonce))


# Every page and submission checks its link first: one Core statement, no ORM objects to build.
_UNITS = Unit.__table__
_GRANT = (select(_TOKENS.c.id, _TOKENS.c.unit_id, _TOKENS.c.work_order_id, _TOKENS.c.scope, _TOKENS.c.expires_at,
                 _TOKENS.c.used_at, _UNITS.c.code, _UNITS.c.name_zh)
          .join(_UNITS, _UNITS.c.id == _TOKENS.c.unit_id).where(_TOKENS.c.token_hash == bindparam("digest")))


def _row(session: Session, token: str) -> Row:
    """The token's row with its unit's code and name; a bad signature is refused before the database is asked."""
    forged = LinkRefused("invalid", FORGED)
    if not looks_signed(token):
        raise forged
    found = session.connection().execute(_GRANT, {"digest": token_hash(token)}).first()
    if found is None:
        raise forged
    return found


def use_token(*, session: Session, grant: Grant, at: datetime) -> str:
    """Use a checked token up in the caller's transaction; returns the fresh token the page after it carries.

    Of two simultaneous submissions only one gets it; the caller's rollback gives it back and drops the fresh one.
    """
    taken = session.execute(update(_TOKENS).where(_TOKENS.c.id == grant.token_id, _TOKENS.c.used_at.is_(None))
                            .values(used_at=at))
    if taken.rowcount != 1:
        raise LinkRefused("used", USED)
    successor, _ = issue_token(session=session, unit_id=grant.unit_id, order_id=grant.order_id,
                               scope=ORDER if grant.scope == ORDER else INBOX, at=at)
    return successor


def request_fresh_link(*, token: str, at: datetime | None = None) -> str:
    """Mail a fresh link to the unit's registered address (never to whoever asks); returns the unit's name."""
    at = at or utcnow()
    with session_scope() as session:
        row = _row(session, token)
        unit = session.get(Unit, row.unit_id)
        if unit is None:
            raise NotFound(f"unit {row.unit_id} no longer exists")
        order = session.get(WorkOrder, row.work_order_id) if row.work_order_id else None
        waiting = session.scalar(select(Notification.id).where(
            Notification.kind == "action_link", Notification.unit_id == unit.id, Notification.send_state == "pending",
            Notification.work_order_id == order.id if order else Notification.work_order_id.is_(None)))
        # One fresh link waiting to go out is enough; pressing the button again does not queue more mail.
        if waiting is None:
            enqueue_notice(session, kind="action_link", order=order, unit=unit, recipients=[unit.email], at=at)
        return unit.name_zh
