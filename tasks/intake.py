"""Registering items from every channel: one at a time over the API, or a whole file in bulk; idempotent."""

import csv
import io
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from duban.db import session_scope
from duban.errors import NotFound, ValidationFailed
from models.base import utcnow
from models.directory import Category, District, Unit
from models.enums import FINAL_STATUSES, Status, label
from models.intake import IntakeToken, MergeLink
from models.records import Event
from models.supervision import Article
from models.work_order import Assignment, WorkOrder
from tasks.channels import ChannelIdentity
from tasks.executemany import executemany
from tasks.intake_item import IntakeItem, ItemInvalid, parse_item
from tasks.numbers import LOCAL, allocate_numbers
from tasks.policy_store import current_number

BULK_BATCH = 2000
_CSV_TRUE = {"true", "1", "yes", "是", "y"}
_CSV_FALSE = {"false", "0", "no", "否", "n"}


@dataclass(frozen=True)
class Receipt:
    """What a channel gets back: the order number, and whether this call created it."""

    order_id: int
    number: str
    status: str
    received_at: datetime
    created: bool
    token: str | None = None


def scoped_ref(channel: ChannelIdentity, ref: str | None) -> str | None:
    """The stored reference: the channel's own id prefixed with its name, so two channels never collide."""
    return f"{channel.name}:{ref}" if ref else None


# Intake is the hottest write path: statements are built once and run as Core, not through the unit of work.
_ORDERS, _EVENTS, _TOKENS = WorkOrder.__table__, Event.__table__, IntakeToken.__table__
_BY_REF = select(_ORDERS.c.id, _ORDERS.c.number, _ORDERS.c.status, _ORDERS.c.received_at).where(
    _ORDERS.c.channel == bindparam("channel"), _ORDERS.c.channel_ref == bindparam("ref"))
_TOKEN_OF = select(_TOKENS.c.token).where(_TOKENS.c.work_order_id == bindparam("order_id"))
_INSERT_ORDER = _ORDERS.insert().returning(_ORDERS.c.id)
# A batch's rows go through tasks.executemany: compiled once, each row bound without Core's per-row work.
_ORDERS_INSERT, _EVENTS_INSERT = _ORDERS.insert(), _EVENTS.insert()
DIRECTORY_TTL_S = 300
_DIRECTORY: dict[str, tuple[float, dict[str, int], dict[str, int]]] = {}


def directory_codes(session: Session, *, refresh: bool = False) -> tuple[dict[str, int], dict[str, int]]:
    """Category and district ids by code, cached per process; a code not found reloads them once."""
    url = session.get_bind().url.render_as_string(hide_password=True)
    cached = _DIRECTORY.get(url)
    if refresh or cached is None or time.monotonic() - cached[0] > DIRECTORY_TTL_S:
        categories = dict(session.execute(select(Category.code, Category.id)).all())
        districts = dict(session.execute(select(District.code, District.id)).all())
        cached = _DIRECTORY[url] = (time.monotonic(), categories, districts)
    return cached[1], cached[2]


def _directory_ids(session: Session, item: IntakeItem) -> tuple[int | None, int | None]:
    categories, districts = directory_codes(session)
    if (item.category and item.category not in categories) or (item.district and item.district not in districts):
        categories, districts = directory_codes(session, refresh=True)
    problems = []
    if item.category and item.category not in categories:
        problems.append(("category", f"unknown category code {item.category!r}; the directory lists the codes"))
    if item.district and item.district not in districts:
        problems.append(("district", f"unknown district code {item.district!r}; the directory lists the codes"))
    if problems:
        raise ItemInvalid(problems)
    return categories.get(item.category or ""), districts.get(item.district or "")


def _extra(item: IntakeItem, more: dict[str, Any] | None) -> dict[str, Any]:
    extra = dict(more or {})
    if item.lat is not None:
        extra |= {"lat": item.lat, "long": item.long}
    return extra


def _existing(session: Session, channel: ChannelIdentity, ref: str | None) -> Receipt | None:
    if ref is None:
        return None
    connection = session.connection()
    row = connection.execute(_BY_REF, {"channel": channel.channel.value, "ref": ref}).first()
    if row is None:
        return None
    token = connection.execute(_TOKEN_OF, {"order_id": row.id}).scalar()
    return Receipt(row.id, row.number, row.status, row.received_at, created=False, token=token)


Entry = tuple[IntakeItem, int | None, int | None]


def _insert(session: Session, entries: list[Entry], *, channel: ChannelIdentity, at: datetime, policy_version: int,
            extra: dict[str, Any] | None = None) -> list[tuple[int, str, datetime]]:
    """Number and insert received orders with their first event; (id, number, received_at) in entry order."""
    by_day: dict[str, list[int]] = {}
    for index, (item, _, _) in enumerate(entries):
        by_day.setdefault(f"{(item.received_at or at).astimezone(LOCAL):%Y%m%d}", []).append(index)
    numbers: list[str] = [""] * len(entries)
    for indexes in by_day.values():
        first = entries[indexes[0]][0]
        for index, number in zip(indexes, allocate_numbers(session, first.received_at or at, len(indexes)),
                                 strict=True):
            numbers[index] = number
    rows = [_order_row(number, item, category_id, district_id, channel, at, policy_version, extra)
            for number, (item, category_id, district_id) in zip(numbers, entries, strict=True)]
    connection = session.connection()
    if len(rows) == 1:
        ids = [connection.execute(_INSERT_ORDER, rows[0]).scalar_one()]
    else:
        # A plain executemany and one lookup by number: RETURNING in parameter order is row by row on SQLite.
        executemany(connection, _ORDERS_INSERT, rows)
        by_number = dict(connection.execute(select(_ORDERS.c.number, _ORDERS.c.id).where(
            _ORDERS.c.number.in_([row["number"] for row in rows]))).all())
        ids = [by_number[row["number"]] for row in rows]
    executemany(connection, _EVENTS_INSERT, [
        {"work_order_id": order_id, "unit_id": None, "name": "work_order_received", "actor_kind": "channel",
         "actor_id": channel.name, "at": row["received_at"], "from_status": None, "to_status": Status.RECEIVED.value,
         "payload": {"channel": channel.channel.value, "item_type": row["item_type"]}}
        for order_id, row in zip(ids, rows, strict=True)
    ])
    return [(order_id, row["number"], row["received_at"]) for order_id, row in zip(ids, rows, strict=True)]


def register_item(*, channel: ChannelIdentity, item: IntakeItem, at: datetime | None = None,
                  extra: dict[str, Any] | None = None, with_token: bool = False) -> Receipt:
    """Register one item as a received order; the same channel reference again returns the first one."""
    ref = scoped_ref(channel, item.channel_ref)
    try:
        with session_scope() as session:
            found = _existing(session, channel, ref)
            if found is not None:
                return found
            category_id, district_id = _directory_ids(session, item)
            [(order_id, number, received)] = _insert(
                session, [(item, category_id, district_id)], channel=channel, at=at or utcnow(),
                policy_version=current_number(session), extra=extra)
            token = None
            if with_token:
                token = secrets.token_hex(16)
                session.connection().execute(_TOKENS.insert(), {"token": token, "work_order_id": order_id,
                                                                "created_at": received})
            return Receipt(order_id, number, Status.RECEIVED.value, received, created=True, token=token)
    except IntegrityError:
        # Another request with the same reference committed first: answer as its resubmission.
        with session_scope(readonly=True) as session:
            found = _existing(session, channel, ref)
        if found is None:
            raise
        return found


@dataclass(frozen=True)
class LineError:
    line: int
    field: str
    message: str


@dataclass
class BulkReport:
    """What a file intake did; lines with errors were refused whole and nothing of them was written."""

    lines: int = 0
    created: int = 0
    existing: int = 0
    errors: list[LineError] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)


def read_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, raw record) from JSON Lines or CSV; a line that cannot be read yields the error text."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationFailed(f"{path}: not UTF-8 text (byte {exc.start}); save the CSV as UTF-8") from None
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for row in reader:
            yield reader.line_num, _csv_record(row)
        return
    if suffix not in (".jsonl", ".ndjson", ".json"):
        raise ValidationFailed(f"{path}: unknown file type {suffix!r}; use .jsonl (JSON Lines) or .csv")
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield number, "not UTF-8 text"
            except ValueError as exc:
                yield number, f"not valid JSON: {exc}"


def _csv_record(row: dict[str | None, Any]) -> dict[str, Any] | str:
    if None in row:
        return "the line has more cells than the header has columns"
    record: dict[str, Any] = {}
    for key, value in row.items():
        if value in (None, ""):
            continue
        if key == "confidential" and value.strip().lower() in _CSV_TRUE | _CSV_FALSE:
            value = value.strip().lower() in _CSV_TRUE
        record[key] = value
    return record


def intake_file(*, path: Path, channel: ChannelIdentity, at: datetime | None = None,
                progress: Callable[[int], None] | None = None) -> BulkReport:
    """Register every valid line of a file in batches; each line needs its channel_ref, so a rerun adds nothing."""
    if not path.is_file():
        raise ValidationFailed(f"{path}: no such file")
    at = at or utcnow()
    report = BulkReport()
    with session_scope(readonly=True) as session:
        categories, districts = directory_codes(session, refresh=True)
        policy_version = current_number(session)
    seen: set[str] = set()
    batch: list[tuple[int, IntakeItem, int | None, int | None]] = []
    for number, record in read_lines(path):
        report.lines += 1
        checked = _checked(record, categories, districts)
        if isinstance(checked, list):
            report.errors += [LineError(number, f, m) for f, m in checked]
        else:
            item, category_id, district_id = checked
            ref = scoped_ref(channel, item.channel_ref)
            if ref in seen:
                report.existing += 1
            else:
                seen.add(ref)
                batch.append((number, item, category_id, district_id))
        if len(batch) >= BULK_BATCH:
            _write_batch(batch, channel, at, policy_version, report)
            batch.clear()
        if progress is not None:
            progress(1)
    if batch:
        _write_batch(batch, channel, at, policy_version, report)
    return report


def _checked(record: Any, categories: dict[str, int], districts: dict[str, int]
             ) -> list[tuple[str, str]] | tuple[IntakeItem, int | None, int | None]:
    """The item with its directory ids, or the (field, message) problems that refuse the line."""
    if isinstance(record, str):
        return [("line", record)]
    try:
        item = parse_item(record)
    except ItemInvalid as exc:
        return exc.problems
    problems = []
    if item.channel_ref is None:
        problems.append(("channel_ref", "is required in a file, so that running the import again adds nothing twice"))
    if item.category and item.category not in categories:
        problems.append(("category", f"unknown category code {item.category!r}"))
    if item.district and item.district not in districts:
        problems.append(("district", f"unknown district code {item.district!r}"))
    if problems:
        return problems
    return item, categories.get(item.category or ""), districts.get(item.district or "")


def _write_batch(batch: list[tuple[int, IntakeItem, int | None, int | None]], channel: ChannelIdentity,
                 at: datetime, policy_version: int, report: BulkReport) -> None:
    """One transaction per batch: skip references already stored, number and insert the rest."""
    with session_scope() as session:
        refs = [scoped_ref(channel, item.channel_ref) for _, item, _, _ in batch]
        stored = set(session.scalars(select(_ORDERS.c.channel_ref).where(
            _ORDERS.c.channel == channel.channel.value, _ORDERS.c.channel_ref.in_(refs))))
        fresh = [(item, category_id, district_id)
                 for (_, item, category_id, district_id), ref in zip(batch, refs, strict=True) if ref not in stored]
        report.existing += len(batch) - len(fresh)
        if fresh:
            inserted = _insert(session, fresh, channel=channel, at=at, policy_version=policy_version)
            report.created += len(inserted)
            report.numbers += [number for _, number, _ in inserted]


def _order_row(number: str, item: IntakeItem, category_id: int | None, district_id: int | None,
               channel: ChannelIdentity, at: datetime, policy_version: int,
               extra: dict[str, Any] | None) -> dict[str, Any]:
    received = item.received_at or at
    return {
        "number": number, "channel": channel.channel.value, "channel_ref": scoped_ref(channel, item.channel_ref),
        "item_type": item.item_type.value, "urgency": item.urgency.value, "category_id": category_id,
        "title": item.title, "content": item.content, "address": item.address, "district_id": district_id,
        "citizen_name": item.citizen_name, "citizen_phone": item.citizen_phone, "citizen_email": item.citizen_email,
        "confidential": item.confidential, "status": Status.RECEIVED.value, "received_at": received,
        "updated_at": received, "stage_rung": 0, "policy_version": policy_version, "return_count": 0,
        "redo_count": 0, "false_completion": False, "extra": _extra(item, extra), "version": 1,
    }


@dataclass(frozen=True)
class PublicEvent:
    at: datetime
    event: str
    status: str | None
    status_label: str


@dataclass(frozen=True)
class PublicStatus:
    """What anyone holding the number may see: no content, no address, nothing about the citizen."""

    number: str
    status: str
    status_label: str
    status_label_en: str
    final: bool
    item_type: str
    category: str | None
    district: str | None
    received_at: datetime
    closed_at: datetime | None
    unit: str | None
    answer_article: str | None
    merged_into: str | None
    history: list[PublicEvent]


def public_status(*, number: str) -> PublicStatus:
    """An order's status and history by number, fit for the public."""
    with session_scope(readonly=True) as session:
        order = session.scalar(select(WorkOrder).where(WorkOrder.number == number))
        if order is None:
            raise NotFound(f"no item numbered {number}")
        category = session.get(Category, order.category_id) if order.category_id else None
        district = session.get(District, order.district_id) if order.district_id else None
        unit = session.scalar(select(Unit.name_zh).join(Assignment, Assignment.unit_id == Unit.id).where(
            Assignment.work_order_id == order.id, Assignment.role == "lead").order_by(Assignment.id.desc()))
        article = session.get(Article, order.answer_article_id) if order.answer_article_id else None
        link = session.scalar(select(MergeLink).where(MergeLink.work_order_id == order.id,
                                                      MergeLink.split_at.is_(None)))
        master = session.get(WorkOrder, link.master_id).number if link else None
        events = session.execute(select(Event.at, Event.name, Event.to_status).where(
            Event.work_order_id == order.id).order_by(Event.id)).all()
        status = Status(order.status)
        return PublicStatus(
            number=order.number, status=status.value, status_label=label(status), status_label_en=label(status, "en"),
            final=status in FINAL_STATUSES, item_type=order.item_type,
            category=category.name_zh if category else None, district=district.name_zh if district else None,
            received_at=order.received_at, closed_at=order.closed_at, unit=unit,
            answer_article=f"{article.code} {article.title}" if article else None, merged_into=master,
            history=[PublicEvent(at, name, to, label(Status(to)) if to else "") for at, name, to in events],
        )
