"""Intake channels and their API keys: a key is shown once, stored only as a hash, and revocable."""

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from duban.db import session_scope
from duban.errors import Forbidden, NotFound, ValidationFailed
from duban.settings import get_settings
from models.base import utcnow
from models.enums import Channel
from models.records import ChannelKey

KEY_PREFIX = "dbk_"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{1,63}")
# Every intake request presents its key: a short memory of good keys saves a query each time. A key
# revoked by another process stops working within this many seconds; in this process, at once.
KEY_MEMORY_S = 5.0
_KNOWN: dict[tuple[str, str], tuple[float, "ChannelIdentity"]] = {}


@dataclass(frozen=True)
class ChannelIdentity:
    """Who is submitting: the channel's registered name and its kind (hotline, weibo, open311, ...)."""

    id: int
    name: str
    channel: Channel


_BY_HASH = select(ChannelKey.id, ChannelKey.name, ChannelKey.channel, ChannelKey.revoked_at).where(
    ChannelKey.key_hash == bindparam("key_hash"))


@dataclass(frozen=True)
class ChannelInfo:
    name: str
    channel: str
    created_at: datetime
    revoked_at: datetime | None


def hash_key(key: str) -> str:
    """The stored form of a key.

    Keys are 256 random bits, so a fast hash is as safe as a slow one here and lets every request
    find its channel with one indexed lookup instead of verifying against each stored key.
    """
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def add_channel(*, session: Session, name: str, channel: Channel | str | None = None,
                at: datetime | None = None) -> tuple[ChannelIdentity, str]:
    """Register a channel (or give a revoked one a new key); returns the identity and the key, shown once."""
    at = at or utcnow()
    if not _NAME.fullmatch(name):
        raise ValidationFailed(f"channel name {name!r} is invalid: use 2 to 64 lowercase letters, digits, '_' or '-'")
    kind = _kind(name, channel)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = session.scalar(select(ChannelKey).where(ChannelKey.name == name))
    if row is not None and row.revoked_at is None:
        raise ValidationFailed(f"channel {name!r} already has a live key; revoke it first with "
                               f"`duban channel revoke {name}`, then add it again for a new key")
    if row is None:
        row = ChannelKey(name=name, channel=kind, key_hash=hash_key(key), created_at=at)
        session.add(row)
    else:
        row.channel, row.key_hash, row.created_at, row.revoked_at = kind, hash_key(key), at, None
    session.flush()
    return ChannelIdentity(row.id, row.name, kind), key


def _kind(name: str, channel: Channel | str | None) -> Channel:
    allowed = ", ".join(c.value for c in Channel)
    given = channel if channel is not None else name
    try:
        return Channel(given)
    except ValueError:
        if channel is None:
            raise ValidationFailed(f"{name!r} is not a channel kind; name the kind with --channel, one of: {allowed}") \
                from None
        raise ValidationFailed(f"unknown channel kind {channel!r}; expected one of: {allowed}") from None


def revoke_channel(*, session: Session, name: str, at: datetime | None = None) -> ChannelInfo:
    """Revoke a channel's key at once; its items stay, new submissions with the key are refused."""
    row = session.scalar(select(ChannelKey).where(ChannelKey.name == name))
    if row is None:
        raise NotFound(f"no channel named {name!r}; `duban channel list` shows them")
    if row.revoked_at is None:
        row.revoked_at = at or utcnow()
    _KNOWN.clear()
    return ChannelInfo(row.name, row.channel, row.created_at, row.revoked_at)


def list_channels(*, session: Session) -> list[ChannelInfo]:
    """Every registered channel, live and revoked."""
    rows = session.scalars(select(ChannelKey).order_by(ChannelKey.name))
    return [ChannelInfo(r.name, r.channel, r.created_at, r.revoked_at) for r in rows]


def channel_by_name(*, session: Session, name: str) -> ChannelIdentity:
    """A live channel by name (for file intake run by an admin, who needs no key)."""
    row = session.scalar(select(ChannelKey).where(ChannelKey.name == name))
    if row is None:
        raise NotFound(f"no channel named {name!r}; create it with `duban channel add {name}`")
    if row.revoked_at is not None:
        raise Forbidden(f"channel {name!r} was revoked on {row.revoked_at:%Y-%m-%d}; add it again for a new key")
    return ChannelIdentity(row.id, row.name, Channel(row.channel))


def authenticate(*, key: str | None) -> ChannelIdentity:
    """The live channel a key belongs to, or Forbidden naming what was wrong."""
    if not key:
        raise Forbidden("no API key was sent; send the channel's key in the X-API-Key header (Open311: api_key)")
    key_hash = hash_key(key)
    memory_key = (get_settings().database_url, key_hash)
    remembered = _KNOWN.get(memory_key)
    if remembered and time.monotonic() - remembered[0] < KEY_MEMORY_S:
        return remembered[1]
    with session_scope(readonly=True) as session:
        row = session.execute(_BY_HASH, {"key_hash": key_hash}).first()
    if row is None:
        raise Forbidden("the API key is not valid; ask the hotline office for the channel's key")
    if row.revoked_at is not None:
        raise Forbidden(f"the API key of channel {row.name!r} was revoked; ask the hotline office for a new one")
    identity = ChannelIdentity(row.id, row.name, Channel(row.channel))
    _KNOWN[memory_key] = (time.monotonic(), identity)
    return identity
