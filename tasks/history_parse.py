"""Reading history files: every line parsed and checked, each problem named by line and field."""

import csv
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from models.enums import ActorKind, Channel, ItemType, Status, Urgency
from models.history import CallOutcome
from models.lifecycle import TRANSITIONS, Action
from tasks.history_format import (
    ACTION_FIELDS,
    BOOL,
    CALL_CSV_COLUMNS,
    CITIZEN_DEFAULT,
    FORMAT,
    OPT_BOOL,
    OPT_TEXT,
    REQUIRED,
    TEXT,
    TEXTS,
    VERSION,
    CallRecord,
    EventRecord,
    Header,
    HistoryError,
    OrderRecord,
    Record,
    TotalsRecord,
    canonical_payload,
    ts,
)

_MAX_ERRORS = 20
_SATISFACTION = ("satisfied", "basically", "unsatisfied")
_UNIT_KEYS = frozenset({"unit", "suggested_unit"})
_ORDER_KEYS = ("type", "number", "received_at", "channel", "channel_ref", "item_type", "urgency", "category",
               "district", "title", "content", "address", "citizen", "events")
_CITIZEN_KEYS = ("name", "phone", "email", "confidential")
_CHANNELS = tuple(c.value for c in Channel)
_ITEM_TYPES = tuple(i.value for i in ItemType)
_URGENCIES = tuple(u.value for u in Urgency)
_OUTCOMES = tuple(o.value for o in CallOutcome)
_ACTIONS = {a.value: a for a in Action}
_ACTOR_KINDS = {k.value: k for k in ActorKind}
_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


class _Line:
    """Problems found on one line, each as `field: message`."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def text(self, obj: dict[str, Any], key: str, where: str, *, required: bool = True, max_len: int = 0,
             nullable: bool = False, default: Any = "") -> Any:
        if key not in obj:
            if required:
                self.add(where + key, "required key is missing")
            return default
        value = obj[key]
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            self.add(where + key, f"{json.dumps(value, ensure_ascii=False)[:40]} is not text")
            return default
        if required and not value.strip():
            self.add(where + key, "must not be empty")
        if max_len and len(value) > max_len:
            self.add(where + key, f"is {len(value)} characters long; at most {max_len}")
        return value

    def choice(self, obj: dict[str, Any], key: str, where: str, allowed: tuple[str, ...], *,
               default: str | None = None) -> str:
        if key not in obj and default is not None:
            return default
        value = self.text(obj, key, where)
        if isinstance(value, str) and value and value not in allowed:
            self.add(where + key, f'"{value}" is not allowed; expected one of {", ".join(allowed)}')
        return value

    def moment(self, obj: dict[str, Any], key: str, where: str) -> datetime | None:
        value = self.text(obj, key, where)
        if not isinstance(value, str) or not value:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.add(where + key, f'"{value}" is not a time; write e.g. 2021-03-15T09:00:00+08:00')
            return None
        if parsed.tzinfo is None:
            self.add(where + key, f'"{value}" has no UTC offset; write e.g. 2021-03-15T09:00:00+08:00')
            return None
        return parsed

    def day(self, obj: dict[str, Any], key: str, where: str, *, required: bool = True) -> date | None:
        value = self.text(obj, key, where, required=required, nullable=not required, default=None)
        if not isinstance(value, str):
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.add(where + key, f'"{value}" is not a date; write e.g. 2021-01-01')
            return None

    def count(self, obj: dict[str, Any], key: str) -> int | None:
        value = obj.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            self.add(key, f"{json.dumps(value)} is not a count (a whole number, 0 or more)")
            return None
        return value

    def known_keys(self, obj: dict[str, Any], allowed: tuple[str, ...] | dict[str, Any], where: str) -> None:
        for key in obj:
            if key not in allowed:
                self.add(where + key, f"unknown key; expected one of {', '.join(allowed)}")


@dataclass(frozen=True)
class Directory:
    """Codes a file may refer to."""

    categories: frozenset[str]
    districts: frozenset[str]
    units: frozenset[str]


def parse_line(text: str, line: int, directory: Directory | None = None) -> Record:
    """One line as a record; HistoryError naming the line and every bad field."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HistoryError(f"line {line}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise HistoryError(f"line {line}: expected a JSON object with a type key")
    check = _Line()
    kind = obj.get("type")
    parsers: dict[str, Callable[[dict[str, Any], int, _Line, Directory | None], Record]] = {
        "order": _order, "call": _call, "totals": _totals, "header": _header}
    if kind not in parsers:
        raise HistoryError(f'line {line}: type: {json.dumps(kind)} is not a record type; expected one of '
                           f'{", ".join(parsers)}')
    record = parsers[kind](obj, line, check, directory)
    if check.problems:
        raise HistoryError("\n".join(f"line {line}: {p}" for p in check.problems))
    return record


def _header(obj: dict[str, Any], line: int, check: _Line, _directory: Directory | None) -> Header:
    check.known_keys(obj, ("type", "format", "version", "city", "from", "to", "source"), "")
    if obj.get("format") != FORMAT:
        check.add("format", f'expected "{FORMAT}"')
    if obj.get("version") != VERSION:
        check.add("version", f"{json.dumps(obj.get('version'))} is not supported; this Duban reads version {VERSION}")
    return Header(line, VERSION, check.text(obj, "city", "", max_len=4), check.day(obj, "from", "", required=False),
                  check.day(obj, "to", "", required=False), check.text(obj, "source", "", required=False))


def _totals(obj: dict[str, Any], line: int, check: _Line, _directory: Directory | None) -> TotalsRecord:
    keys = ("type", "from", "to", "calls_connected", "calls_from_county_platforms", "valid_items", "source")
    check.known_keys(obj, keys, "")
    start, end = check.day(obj, "from", ""), check.day(obj, "to", "")
    if start and end and end < start:
        check.add("to", f"{end} is before from ({start})")
    return TotalsRecord(line, start, end, check.count(obj, "calls_connected"),
                        check.count(obj, "calls_from_county_platforms"), check.count(obj, "valid_items"),
                        check.text(obj, "source", "", required=False))


def _call(obj: dict[str, Any], line: int, check: _Line, _directory: Directory | None) -> CallRecord:
    check.known_keys(obj, ("type", "ref", "at", "channel", "outcome", "order", "note"), "")
    return CallRecord(line, check.text(obj, "ref", "", max_len=64), check.moment(obj, "at", ""),
                      check.choice(obj, "channel", "", _CHANNELS),
                      check.choice(obj, "outcome", "", _OUTCOMES),
                      check.text(obj, "order", "", required=False, nullable=True, max_len=32, default=None),
                      check.text(obj, "note", "", required=False))


def _order(obj: dict[str, Any], line: int, check: _Line, directory: Directory | None) -> OrderRecord:
    check.known_keys(obj, _ORDER_KEYS, "")
    number = check.text(obj, "number", "", max_len=32)
    if isinstance(number, str) and number and not _NUMBER.match(number):
        check.add("number", f'"{number}" is not an order number (letters, digits, "-", "_", "."; at most 32)')
    received = check.moment(obj, "received_at", "")
    values = {
        "channel": check.choice(obj, "channel", "", _CHANNELS),
        "item_type": check.choice(obj, "item_type", "", _ITEM_TYPES),
        "urgency": check.choice(obj, "urgency", "", _URGENCIES, default="normal"),
        "channel_ref": check.text(obj, "channel_ref", "", required=False, nullable=True, max_len=128, default=None),
        "category": check.text(obj, "category", "", required=False, nullable=True, max_len=128, default=None),
        "district": check.text(obj, "district", "", required=False, nullable=True, max_len=64, default=None),
        "title": check.text(obj, "title", "", required=False, max_len=200),
        "content": check.text(obj, "content", ""),
        "address": check.text(obj, "address", "", required=False, max_len=300),
    }
    if directory is not None:
        for key, known in (("category", directory.categories), ("district", directory.districts)):
            if values[key] and values[key] not in known:
                check.add(key, f'unknown {key} "{values[key]}"; load the directory that has it first')
    citizen = dict(CITIZEN_DEFAULT)
    given = obj.get("citizen", {})
    if not isinstance(given, dict):
        check.add("citizen", "expected an object with name, phone, email, confidential")
    else:
        check.known_keys(given, _CITIZEN_KEYS, "citizen.")
        for key, limit in (("name", 100), ("phone", 40), ("email", 254)):
            citizen[key] = check.text(given, key, "citizen.", required=False, max_len=limit)
        if not isinstance(given.get("confidential", False), bool):
            check.add("citizen.confidential", "expected true or false")
        else:
            citizen["confidential"] = given.get("confidential", False)
    events = _events(obj.get("events"), received, check, directory)
    return OrderRecord(line, number, received, events=events, citizen=citizen, **values)


def _events(given: Any, received: datetime | None, check: _Line, directory: Directory | None
            ) -> tuple[EventRecord, ...]:
    if not isinstance(given, list):
        check.add("events", "expected a list of events (it may be empty)")
        return ()
    events: list[EventRecord] = []
    status, last = Status.RECEIVED, received
    for i, obj in enumerate(given):
        where = f"events[{i}]."
        if not isinstance(obj, dict):
            check.add(f"events[{i}]", "expected an object with at, action, actor, payload")
            continue
        check.known_keys(obj, ("at", "action", "actor", "payload"), where)
        at = check.moment(obj, "at", where)
        action_text = check.choice(obj, "action", where, tuple(_ACTIONS))
        actor = check.text(obj, "actor", where, max_len=120)
        payload = obj.get("payload", {})
        action = _ACTIONS.get(action_text)
        if action is None or at is None or not isinstance(actor, str):
            continue
        if last is not None and at < last:
            check.add(where + "at", f"{obj['at']} is earlier than the event before it ({ts(last)})")
        last = at
        rule = TRANSITIONS[action]
        if status not in rule.sources:
            check.add(where + "action", f"{action} is not allowed when the order is {status}; allowed: "
                      f"{', '.join(a for a, r in TRANSITIONS.items() if status in r.sources) or 'nothing (final)'}")
        status = rule.target
        kind, _, actor_id = actor.partition(":")
        if actor == "system":
            kind, actor_id = ActorKind.SYSTEM.value, "system"
        if kind not in _ACTOR_KINDS or not actor_id:
            check.add(where + "actor", f'"{actor}" is not an actor; write system, staff:ID, supervisor:ID or unit:CODE')
            continue
        if kind not in rule.actors:
            check.add(where + "actor", f"a {kind} may not {action}; allowed: {', '.join(sorted(rule.actors))}")
        if kind == ActorKind.UNIT and directory is not None and actor_id not in directory.units:
            check.add(where + "actor", f'unknown unit "{actor_id}"; load the directory that has it first')
        events.append(EventRecord(at, action, _ACTOR_KINDS[kind], actor_id,
                                  _payload(action, payload, where + "payload.", check, directory)))
    return tuple(events)


def _payload(action: Action, payload: Any, where: str, check: _Line, directory: Directory | None) -> dict[str, Any]:
    if not isinstance(payload, dict):
        check.add(where.rstrip("."), "expected an object")
        return {}
    fields = ACTION_FIELDS[action]
    if fields:
        check.known_keys(payload, fields, where)
    for key in payload if not fields else ():
        check.add(where + key, f"{action} takes no payload")
    for key, (kind, default) in fields.items():
        if key not in payload:
            if default is REQUIRED:
                check.add(where + key, "required key is missing")
            continue
        value = payload[key]
        fits = {TEXT: isinstance(value, str), BOOL: isinstance(value, bool),
                OPT_TEXT: value is None or isinstance(value, str), OPT_BOOL: value is None or isinstance(value, bool),
                TEXTS: isinstance(value, list) and all(isinstance(v, str) for v in value)}[kind]
        if not fits:
            check.add(where + key, f"{json.dumps(value, ensure_ascii=False)[:40]} is not {kind}")
        elif default is REQUIRED and kind == TEXT and not value.strip():
            check.add(where + key, "must not be empty")
        elif key == "satisfaction" and value is not None and value not in _SATISFACTION:
            check.add(where + key, f'"{value}" is not allowed; expected one of {", ".join(_SATISFACTION)}')
        elif directory is not None and key in _UNIT_KEYS and value and value not in directory.units:
            check.add(where + key, f'unknown unit "{value}"; load the directory that has it first')
        elif directory is not None and key == "assist" and fits:
            for code in value:
                if code not in directory.units:
                    check.add(where + key, f'unknown unit "{code}"; load the directory that has it first')
    if action == Action.REDO and payload.get("satisfaction") not in (None, "unsatisfied"):
        check.add(where + "satisfaction", "a redo follows an unsatisfied visit; write unsatisfied or leave it out")
    if action == Action.CLOSE and payload.get("satisfaction") == "unsatisfied":
        check.add(where + "satisfaction", "an unsatisfied visit sends the order back: use the redo action")
    return canonical_payload(action, payload)


def read_records(path: Path, directory: Directory | None = None, *, keep_going: bool = False,
                 progress: Callable[[int], None] | None = None) -> Iterator[Record]:
    """The file's records in order; a JSON Lines file or a call-log CSV. Raises on the first bad line unless
    keep_going, which collects up to 20 problems and raises them together at the end."""
    problems: list[str] = []
    lines = _csv_lines(path) if path.suffix.lower() == ".csv" else _jsonl_lines(path)
    first = True
    for number, text, size in lines:
        if progress:
            progress(size)
        if not text.strip():
            continue
        try:
            record = parse_line(text, number, directory)
            if first and not isinstance(record, Header) and path.suffix.lower() != ".csv":
                raise HistoryError(f'line {number}: the file must start with a header line '
                                   f'{{"type":"header","format":"{FORMAT}","version":{VERSION},"city":"ZZ"}}')
            if not first and isinstance(record, Header):
                raise HistoryError(f"line {number}: type: a second header; only the first line is one")
        except HistoryError as exc:
            if not keep_going:
                raise HistoryError(f"{path.name}: {exc}") from None
            problems += str(exc).splitlines()
            if len(problems) >= _MAX_ERRORS:
                break
            first = False
            continue
        first = False
        yield record
    if problems:
        more = " (stopped after 20; fix these and check again)" if len(problems) >= _MAX_ERRORS else ""
        raise HistoryError(f"{path.name}: {len(problems)} problem{'s' if len(problems) > 1 else ''}{more}:\n"
                           + "\n".join(problems[:_MAX_ERRORS]))


def _jsonl_lines(path: Path) -> Iterator[tuple[int, str, int]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield number, raw.decode("utf-8"), len(raw)
            except UnicodeDecodeError as exc:
                raise HistoryError(f"{path.name}: line {number}: not UTF-8 text ({exc.reason})") from None


def _csv_lines(path: Path) -> Iterator[tuple[int, str, int]]:
    """A call-log CSV's rows as call lines (the header row names the columns)."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = csv.reader(handle)
        header = next(rows, None)
        if header is None or tuple(h.strip() for h in header) != CALL_CSV_COLUMNS:
            raise HistoryError(f"{path.name}: line 1: a call-log CSV starts with the columns "
                               f"{','.join(CALL_CSV_COLUMNS)}")
        for row in rows:
            if len(row) != len(CALL_CSV_COLUMNS):
                raise HistoryError(f"{path.name}: line {rows.line_num}: expected {len(CALL_CSV_COLUMNS)} columns "
                                   f"({','.join(CALL_CSV_COLUMNS)}), found {len(row)}")
            obj: dict[str, Any] = {"type": "call", **dict(zip(CALL_CSV_COLUMNS, row, strict=True))}
            obj["order"] = obj["order"] or None
            yield rows.line_num, json.dumps(obj, ensure_ascii=False), sum(len(c) + 1 for c in row)
