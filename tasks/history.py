"""Importing and exporting a city's history (docs/history-format.md): all or nothing, idempotent, exact."""

import csv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from duban.db import session_scope
from duban.settings import get_settings
from models.history import Call, PublishedTotals
from models.lifecycle import TRANSITIONS
from models.records import Event
from models.work_order import WorkOrder
from tasks import held
from tasks.executemany import executemany
from tasks.history_apply import Lookups, Step, apply_steps, bump_counters, format_payload, load_lookups, receive
from tasks.history_format import (
    LOCAL,
    VERSION,
    CallRecord,
    EventRecord,
    Header,
    HistoryError,
    OrderRecord,
    TotalsRecord,
    call_csv_row,
    dump_line,
    record_dict,
)
from tasks.history_parse import read_records

ACTION_OF_EVENT = {rule.event: action for action, rule in TRANSITIONS.items()}
_INSERT_CALLS = insert(Call.__table__)
_BATCH = 2000

Progress = Callable[[int], None]


@dataclass
class ImportSummary:
    """What an import added, and what it found already there, unchanged."""

    orders_added: int = 0
    orders_unchanged: int = 0
    transitions: int = 0
    calls_added: int = 0
    calls_unchanged: int = 0
    totals_added: int = 0
    totals_unchanged: int = 0
    header: Header | None = None

    @property
    def changed(self) -> bool:
        return bool(self.orders_added or self.calls_added or self.totals_added)


def import_history(*, path: Path, progress: Progress | None = None) -> ImportSummary:
    """Validate every line, then write the whole file in one transaction; a line already imported is skipped."""
    if not path.is_file():
        raise HistoryError(f"{path}: no such file")
    with session_scope(readonly=True) as session:
        lookups = load_lookups(session)
    # First pass: every line checked before anything is written; problems are collected, not just the first.
    for _ in read_records(path, lookups.directory(), keep_going=True, progress=progress):
        pass
    summary = ImportSummary()
    with session_scope() as session:
        orders: list[OrderRecord] = []
        calls: list[CallRecord] = []
        for record in read_records(path, lookups.directory(), progress=progress):
            if isinstance(record, OrderRecord):
                orders.append(record)
                if len(orders) >= _BATCH:
                    _import_orders(session, orders, lookups, summary)
                    orders = []
            elif isinstance(record, CallRecord):
                calls.append(record)
                if len(calls) >= _BATCH:
                    import_calls(session, calls, summary)
                    calls = []
            elif isinstance(record, TotalsRecord):
                import_totals(session, record, summary)
            else:
                summary.header = record
        import_calls(session, calls, summary)
        _import_orders(session, orders, lookups, summary)
    return summary


def _duplicate(records: Sequence[OrderRecord | CallRecord], key: str, what: str) -> None:
    seen: set[str] = set()
    for record in records:
        value = getattr(record, key)
        if value in seen:
            raise HistoryError(f"line {record.line}: {key}: {what} {value} appears twice in the file")
        seen.add(value)


def _import_orders(session: Session, records: list[OrderRecord], lookups: Lookups, summary: ImportSummary) -> None:
    if not records:
        return
    numbers = [r.number for r in records]
    _duplicate(records, "number", "order")
    existing = dict(session.execute(select(WorkOrder.number, WorkOrder.id).where(WorkOrder.number.in_(numbers))).all())
    if existing:
        stored = {r.number: r for r in export_orders(session, list(existing.values()), lookups)}
        for record in records:
            if record.number in existing:
                if dump_line(stored[record.number]) != dump_line(record):
                    raise HistoryError(f"line {record.line}: order {record.number} is already in the database with "
                                       f"different content ({_first_difference(stored[record.number], record)}); "
                                       "nothing was imported")
                summary.orders_unchanged += 1
    new = [r for r in records if r.number not in existing]
    if not new:
        return
    orders = receive(session, new, lookups=lookups, numbers=[r.number for r in new], actor_id="import")
    bump_counters(session, [o.number for o in orders])
    ids = {o.number: o.id for o in orders}

    def order_id_of(number: str) -> int | None:
        return ids.get(number) or session.scalar(select(WorkOrder.id).where(WorkOrder.number == number))

    steps = [Step(ids[r.number], r.line, i, e) for r in new for i, e in enumerate(r.events)]
    summary.transitions += apply_steps(session, steps, lookups=lookups, order_id_of=order_id_of)
    summary.orders_added += len(new)
    # Everything is flushed: let the batch's objects go, the transaction stays open.
    held.release(session)


def _first_difference(stored: OrderRecord, given: OrderRecord) -> str:
    a, b = record_dict(stored), record_dict(given)
    for key in dict.fromkeys([*a, *b]):
        if key == "events":
            for i, (x, y) in enumerate(zip(a["events"], b["events"], strict=False)):
                if x != y:
                    return f"events[{i}]"
            return f"events: {len(a['events'])} stored, {len(b['events'])} in the file"
        if a.get(key) != b.get(key):
            return key
    return "events"


def import_calls(session: Session, records: list[CallRecord], summary: ImportSummary) -> None:
    """Add calls not yet stored; one stored with other content is an error naming its line."""
    if not records:
        return
    _duplicate(records, "ref", "call")
    stored = {c.ref: c for c in session.scalars(select(Call).where(Call.ref.in_([r.ref for r in records])))}
    for record in records:
        if record.ref in stored:
            if dump_line(_call_record(stored[record.ref])) != dump_line(record):
                raise HistoryError(f"line {record.line}: call {record.ref} is already in the database with different "
                                   "content; nothing was imported")
            summary.calls_unchanged += 1
    new = [dict(ref=r.ref, at=r.at, channel=r.channel, outcome=r.outcome, order_number=r.order, note=r.note)
           for r in records if r.ref not in stored]
    if new:
        # Not the ORM's bulk insert: that one splits the rows wherever a None column comes or goes.
        executemany(session.connection(), _INSERT_CALLS, new)
        summary.calls_added += len(new)


def import_totals(session: Session, record: TotalsRecord, summary: ImportSummary) -> None:
    """Add a period's published totals unless stored; stored with other figures is an error."""
    stored = session.scalar(select(PublishedTotals).where(PublishedTotals.period_from == record.period_from,
                                                          PublishedTotals.period_to == record.period_to))
    if stored is None:
        session.add(PublishedTotals(period_from=record.period_from, period_to=record.period_to,
                                    calls_connected=record.calls_connected,
                                    calls_from_county_platforms=record.calls_from_county_platforms,
                                    valid_items=record.valid_items, source=record.source))
        summary.totals_added += 1
    elif dump_line(_totals_record(stored)) != dump_line(record):
        raise HistoryError(f"line {record.line}: totals for {record.period_from} to {record.period_to} are already "
                           "in the database with different figures; nothing was imported")
    else:
        summary.totals_unchanged += 1


def _call_record(call: Call) -> CallRecord:
    return CallRecord(0, call.ref, call.at, call.channel, call.outcome, call.order_number, call.note)


def _totals_record(totals: PublishedTotals) -> TotalsRecord:
    return TotalsRecord(0, totals.period_from, totals.period_to, totals.calls_connected,
                        totals.calls_from_county_platforms, totals.valid_items, totals.source)


def local_bounds(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """[start, end) in aware time of the local days from date_from to date_to, both included."""
    return (datetime.combine(date_from, time(), LOCAL),
            datetime.combine(date_to + timedelta(days=1), time(), LOCAL))


def export_orders(session: Session, ids: Sequence[int], lookups: Lookups) -> list[OrderRecord]:
    """The orders with these ids as records (in the order given), their transitions as events."""
    categories, districts, units = lookups.codes("categories"), lookups.codes("districts"), lookups.codes("units")
    by_id = {o.id: o for o in session.scalars(select(WorkOrder).where(WorkOrder.id.in_(ids)))}
    orders = [by_id[i] for i in ids if i in by_id]
    events: dict[int, list[EventRecord]] = {i: [] for i in ids}
    for row in session.execute(
        select(Event.work_order_id, Event.name, Event.at, Event.actor_kind, Event.actor_id, Event.payload)
        .where(Event.work_order_id.in_(ids), Event.name.in_(list(ACTION_OF_EVENT))).order_by(Event.id)
    ):
        action = ACTION_OF_EVENT[row.name]
        events[row.work_order_id].append(EventRecord(row.at, action, row.actor_kind, row.actor_id,
                                                     format_payload(action, row.payload or {}, units)))
    return [OrderRecord(
        0, o.number, o.received_at, o.channel, o.item_type, o.content, tuple(events[o.id]), channel_ref=o.channel_ref,
        urgency=o.urgency, category=categories.get(o.category_id), district=districts.get(o.district_id),
        title=o.title, address=o.address,
        citizen={"name": o.citizen_name, "phone": o.citizen_phone, "email": o.citizen_email,
                 "confidential": o.confidential},
    ) for o in orders]


@dataclass
class ExportSummary:
    """What an export wrote."""

    orders: int = 0
    calls: int = 0
    totals: int = 0
    path: Path | None = None


def export_history(*, path: Path, date_from: date, date_to: date, progress: Progress | None = None
                   ) -> ExportSummary:
    """Write the period's calls and the orders received in it, in the import format; a .csv path gets the call log."""
    if date_to < date_from:
        raise HistoryError(f"--to {date_to} is before --from {date_from}")
    start, end = local_bounds(date_from, date_to)
    summary = ExportSummary(path=path)
    tmp = path.with_name(path.name + ".part")
    with session_scope(readonly=True) as session, tmp.open("w", encoding="utf-8", newline="") as out:
        if path.suffix.lower() == ".csv":
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(("ref", "at", "channel", "outcome", "order", "note"))
            for call in _calls(session, start, end):
                writer.writerow(call_csv_row(call))
                summary.calls += 1
        else:
            header = Header(0, VERSION, get_settings().city_code, date_from, date_to)
            out.write(dump_line(header) + "\n")
            for totals in session.scalars(select(PublishedTotals).order_by(PublishedTotals.period_from,
                                                                           PublishedTotals.period_to)):
                out.write(dump_line(_totals_record(totals)) + "\n")
                summary.totals += 1
            for call in _calls(session, start, end):
                out.write(dump_line(call) + "\n")
                summary.calls += 1
            lookups = load_lookups(session)
            for ids in _order_batches(session, start, end):
                for record in export_orders(session, ids, lookups):
                    out.write(dump_line(record) + "\n")
                summary.orders += len(ids)
                if progress:
                    progress(len(ids))
    tmp.replace(path)
    return summary


def _calls(session: Session, start: datetime, end: datetime) -> Iterator[CallRecord]:
    query = select(Call).where(Call.at >= start, Call.at < end).order_by(Call.at, Call.ref)
    for call in session.scalars(query.execution_options(yield_per=5000)):
        yield _call_record(call)


def _order_batches(session: Session, start: datetime, end: datetime) -> Iterator[list[int]]:
    """Ids of orders received in [start, end), by received time then number, a batch at a time."""
    rows = session.execute(select(WorkOrder.id).where(WorkOrder.received_at >= start, WorkOrder.received_at < end)
                           .order_by(WorkOrder.received_at, WorkOrder.number)).scalars().all()
    for i in range(0, len(rows), _BATCH):
        yield list(rows[i:i + _BATCH])
