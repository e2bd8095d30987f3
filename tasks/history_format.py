"""The history file format (docs/history-format.md): its records and the canonical line.

Pure functions, no database: `dump_line` writes the one canonical form (keys at their default left
out) that `duban export`, `duban simulate year` and a re-import all agree on, so files compare byte
for byte; tasks.history_parse reads lines back.
"""

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from duban.errors import ValidationFailed
from models.enums import ActorKind, Urgency
from models.lifecycle import Action

FORMAT = "duban-history"
VERSION = 1
LOCAL = ZoneInfo("Asia/Shanghai")
CALL_CSV_COLUMNS = ("ref", "at", "channel", "outcome", "order", "note")

# Per action: the payload keys the format carries, each with its type and default (REQUIRED: must be given).
REQUIRED = object()
TEXT, BOOL, TEXTS = "text", "true or false", "a list of texts"
OPT_TEXT, OPT_BOOL = "text or null", "true, false or null"
ACTION_FIELDS: dict[Action, dict[str, tuple[str, Any]]] = {
    Action.SCREEN_OUT: {"reason": (TEXT, "")},
    Action.MERGE: {"master": (TEXT, REQUIRED)},
    Action.ANSWER: {"text": (TEXT, "")},
    Action.DISPATCH: {"unit": (OPT_TEXT, None), "assist": (TEXTS, [])},
    Action.SIGN: {},
    Action.REQUEST_RETURN: {"reason": (TEXT, REQUIRED), "suggested_unit": (OPT_TEXT, None), "evidence_note": (TEXT, ""),
                            "evidence_files": (TEXTS, [])},
    Action.APPROVE_RETURN: {"unit": (OPT_TEXT, None), "reason": (TEXT, ""), "designate": (BOOL, False)},
    Action.REJECT_RETURN: {"reason": (TEXT, ""), "automatic": (BOOL, False)},
    Action.REDISPATCH: {"unit": (TEXT, REQUIRED), "reason": (TEXT, ""), "designate": (BOOL, False)},
    Action.REPLY: {"text": (TEXT, REQUIRED), "contacted": (OPT_BOOL, None), "solved": (OPT_BOOL, None),
                   "evidence_files": (TEXTS, []), "adopted": (OPT_BOOL, None)},
    Action.APPROVE_REPLY: {"automatic": (BOOL, False), "reason": (TEXT, "")},
    Action.SEND_BACK: {"reason": (TEXT, REQUIRED)},
    Action.CLOSE: {"satisfaction": (OPT_TEXT, None), "contacted": (BOOL, False), "resolved": (BOOL, False),
                   "comment": (TEXT, "")},
    Action.REDO: {"satisfaction": (OPT_TEXT, None), "contacted": (BOOL, False), "resolved": (BOOL, False),
                  "comment": (TEXT, "")},
}


class HistoryError(ValidationFailed):
    """A history file is invalid; the message names each problem's line and field. Nothing was written."""


@dataclass(frozen=True)
class Header:
    line: int
    version: int
    city: str
    period_from: date | None
    period_to: date | None
    source: str = ""


@dataclass(frozen=True)
class TotalsRecord:
    line: int
    period_from: date
    period_to: date
    calls_connected: int | None
    calls_from_county_platforms: int | None
    valid_items: int | None
    source: str = ""


@dataclass(frozen=True)
class CallRecord:
    line: int
    ref: str
    at: datetime
    channel: str
    outcome: str
    order: str | None = None
    note: str = ""


@dataclass(frozen=True)
class EventRecord:
    at: datetime
    action: Action
    actor_kind: ActorKind
    actor_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class OrderRecord:
    line: int
    number: str
    received_at: datetime
    channel: str
    item_type: str
    content: str
    events: tuple[EventRecord, ...]
    channel_ref: str | None = None
    urgency: str = Urgency.NORMAL.value
    category: str | None = None
    district: str | None = None
    title: str = ""
    address: str = ""
    citizen: dict[str, Any] = field(default_factory=lambda: {"name": "", "phone": "", "email": "",
                                                             "confidential": False})


Record = Header | TotalsRecord | CallRecord | OrderRecord


def ts(moment: datetime) -> str:
    """A time as the format writes it: local time with its offset, seconds unless there are fractions."""
    return moment.astimezone(LOCAL).isoformat()


def actor_text(kind: str, actor_id: str) -> str:
    """`system`, or `kind:id` (a unit by its code)."""
    return "system" if kind == ActorKind.SYSTEM and actor_id == "system" else f"{kind}:{actor_id}"


def _omit_defaults(values: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in defaults or v != defaults[k]}


_ORDER_DEFAULTS = {"channel_ref": None, "urgency": "normal", "category": None, "district": None, "title": "",
                   "address": ""}
CITIZEN_DEFAULT = {"name": "", "phone": "", "email": "", "confidential": False}


def record_dict(record: Record) -> dict[str, Any]:
    """The canonical JSON object of a record."""
    if isinstance(record, OrderRecord):
        events = [{"at": ts(e.at), "action": e.action.value, "actor": actor_text(e.actor_kind, e.actor_id),
                   **({"payload": p} if (p := canonical_payload(e.action, e.payload)) else {})} for e in record.events]
        citizen = _omit_defaults(record.citizen, CITIZEN_DEFAULT)
        values = {"type": "order", "number": record.number, "received_at": ts(record.received_at),
                  "channel": record.channel, "channel_ref": record.channel_ref, "item_type": record.item_type,
                  "urgency": record.urgency, "category": record.category, "district": record.district,
                  "title": record.title, "content": record.content, "address": record.address}
        return _omit_defaults(values, _ORDER_DEFAULTS) | ({"citizen": citizen} if citizen else {}) | {"events": events}
    if isinstance(record, CallRecord):
        return _omit_defaults({"type": "call", "ref": record.ref, "at": ts(record.at), "channel": record.channel,
                               "outcome": record.outcome, "order": record.order, "note": record.note},
                              {"order": None, "note": ""})
    if isinstance(record, TotalsRecord):
        return _omit_defaults({"type": "totals", "from": record.period_from.isoformat(),
                               "to": record.period_to.isoformat(), "calls_connected": record.calls_connected,
                               "calls_from_county_platforms": record.calls_from_county_platforms,
                               "valid_items": record.valid_items, "source": record.source},
                              {"calls_connected": None, "calls_from_county_platforms": None, "valid_items": None,
                               "source": ""})
    return _omit_defaults({"type": "header", "format": FORMAT, "version": record.version, "city": record.city,
                           "from": record.period_from.isoformat() if record.period_from else None,
                           "to": record.period_to.isoformat() if record.period_to else None,
                           "source": record.source}, {"from": None, "to": None, "source": ""})


def dump_line(record: Record) -> str:
    """One canonical line (no newline)."""
    return json.dumps(record_dict(record), ensure_ascii=False, separators=(",", ":"))


def canonical_payload(action: Action, payload: dict[str, Any]) -> dict[str, Any]:
    """An action's payload with the format's keys only, defaults left out."""
    fields = ACTION_FIELDS[action]
    return {k: payload[k] for k in fields if k in payload and payload[k] != fields[k][1]}


def call_csv_row(record: CallRecord) -> list[str]:
    """A call as a row of the call-log CSV."""
    return [record.ref, ts(record.at), record.channel, record.outcome, record.order or "", record.note]
