"""`duban replay FILE`: a recorded or generated year run through Duban itself, in simulated time.

Orders are registered by the intake path and every recorded action goes through transition() at
its recorded time (tasks.history_apply); after each simulated hour with something due, the
supervision sweep runs with that hour as `now`, so warnings, overdue notices, cases and the
circulated notice fire as they would have. A local day's work commits at once, and so does the part
of it before each sweep (the sweep works in its own transactions); a crash leaves whole days, or a day
up to a sweep, never half an order.
"""

import gc
import heapq
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duban.db import session_scope
from duban.errors import ValidationFailed
from models.work_order import WorkOrder
from tasks import held
from tasks.history import ImportSummary, import_calls, import_totals, local_bounds
from tasks.history_apply import Lookups, Step, allocate, apply_steps, load_lookups, receive
from tasks.history_format import (
    LOCAL,
    CallRecord,
    EventRecord,
    Header,
    HistoryError,
    OrderRecord,
    TotalsRecord,
)
from tasks.history_parse import read_records
from tasks.policy_store import current_policy

HOUR = timedelta(hours=1)
_CACHE_KIB = 256 * 1024
_CHECKPOINT_PAGES = 16384
_GC_THRESHOLDS = (50_000, 20, 100)
_EARLIEST_DUE = select(func.min(WorkOrder.next_due_at))
Sweep = Callable[[datetime], Any]


@dataclass
class ReplaySummary:
    """What the replay did, and how long it took."""

    orders: int = 0
    transitions: int = 0
    calls: int = 0
    hours: int = 0
    sweeps: int = 0
    rungs: int = 0
    sweep_seconds: float = 0.0
    seconds: float = 0.0
    first: datetime | None = None
    last: datetime | None = None
    rung_counts: dict[str, int] = field(default_factory=dict)


def supervision_sweep(now: datetime) -> dict[str, int]:
    """The supervision sweep at `now` (tasks.sweep); how many rungs of each kind fired."""
    from tasks.sweep import sweep

    report = sweep(now=now)
    if report.failed:
        raise ValidationFailed(f"the supervision sweep at {now:%Y-%m-%d %H:%M} failed for orders "
                               f"{sorted(report.failed)[:5]}: {next(iter(report.failed.values()))}")
    return report.counts()


def replay(*, path: Path, sweep: Sweep | None = supervision_sweep,
           progress: Callable[[int], None] | None = None) -> ReplaySummary:
    """Replay the file hour by hour: intake, transitions at their times, the sweep after each hour."""
    started = time.perf_counter()
    summary = ReplaySummary()
    records = read_records(path, progress=progress)
    header = next(records, None)
    if not isinstance(header, Header):
        raise HistoryError(f"{path.name}: empty file")
    with session_scope() as session:
        lookups = load_lookups(session)
        if not lookups.units:
            raise ValidationFailed("the database has no directory; run `duban directory load` first")
        _refuse_overlap(session, header)
        with _sqlite_room(session), _fewer_collections():
            clock = _Clock(session, lookups, sweep, summary)
            for record in _preamble(session, records, summary):
                clock.add(record)
            clock.finish()
    summary.seconds = time.perf_counter() - started
    return summary


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Python's cyclic garbage collector run about seventy times less often while the replay runs.

    A replay keeps a day of held orders, their assignments and the actions still to come alive, so the
    default thresholds have the collector walk that heap again and again (a tenth of the replay's time)
    for objects that reference counting frees anyway.
    """
    before = gc.get_threshold()
    gc.set_threshold(*_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


@contextmanager
def _sqlite_room(session: Session) -> Iterator[None]:
    """On SQLite, for the replay's connection and while it runs: a page cache the size of a year's hot pages,
    and a checkpoint every 64 MiB of log rather than every 4 MiB; both as they were afterwards.

    SQLite keeps 2 MB of pages by default, so a year's indexes would go back and forth to the operating
    system on every hour's writes, and it would copy the log back (two fsyncs) about ten times as often.
    The replay and the sweeps it runs share one pooled connection, and so its cache.
    """
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    # The driver's own connection: set back even when the session failed, and on the connection that was set.
    raw = session.connection().connection.dbapi_connection
    settings = {"cache_size": -_CACHE_KIB, "wal_autocheckpoint": _CHECKPOINT_PAGES}
    before = {name: raw.execute(f"PRAGMA {name}").fetchone()[0] for name in settings}
    for name, value in settings.items():
        raw.execute(f"PRAGMA {name}={int(value)}")
    try:
        yield
    finally:
        for name, value in before.items():
            raw.execute(f"PRAGMA {name}={int(value)}")


def _refuse_overlap(session: Session, header: Header) -> None:
    if header.period_from is None or header.period_to is None:
        return
    start, end = local_bounds(header.period_from, header.period_to)
    held = session.scalar(select(func.count()).select_from(WorkOrder)
                          .where(WorkOrder.received_at >= start, WorkOrder.received_at < end))
    if held:
        raise ValidationFailed(f"the database already holds {held} orders received between {header.period_from} and "
                               f"{header.period_to}; replay into an empty database (or import the file instead)")


def _preamble(session: Session, records: Iterator[Any], summary: ReplaySummary) -> Iterator[OrderRecord]:
    """Write the totals and the call log as they come; yield the orders."""
    calls: list[CallRecord] = []
    done = ImportSummary()
    for record in records:
        if isinstance(record, OrderRecord):
            if calls:
                import_calls(session, calls, done)
                calls = []
            yield record
        elif isinstance(record, CallRecord):
            calls.append(record)
            if len(calls) >= 5000:
                import_calls(session, calls, done)
                calls = []
        elif isinstance(record, TotalsRecord):
            import_totals(session, record, done)
    import_calls(session, calls, done)
    summary.calls = done.calls_added


class _Clock:
    """Simulated time: a local day of orders is read ahead and numbered at once, then run hour by hour;
    recorded actions wait in a heap for their hour."""

    def __init__(self, session: Session, lookups: Lookups, sweep: Sweep | None, summary: ReplaySummary) -> None:
        self.session, self.lookups, self.sweep, self.summary = session, lookups, sweep, summary
        self.day: list[OrderRecord] = []
        # (POSIX time, sequence, order id, line, index, event): floats compare faster than aware datetimes.
        self.waiting: list[tuple[float, int, int, int, int, EventRecord]] = []
        self.ids: dict[str, int] = {}
        self.seq = 0
        self.hour: datetime | None = None
        self.next_due: datetime | None = None
        # Orders the sweep may have changed since they were last held: read again before the next step.
        self.stale: set[int] = set()
        self.open_day: object = None

    def add(self, record: OrderRecord) -> None:
        if self.day and _local_day(record) != _local_day(self.day[0]):
            self._run_day()
        self.day.append(record)

    def finish(self) -> None:
        self._run_day()
        while self.waiting:
            self._step([])
        self.session.commit()

    def _run_day(self) -> None:
        if not self.day:
            return
        day, self.day = self.day, []
        if self.hour is None:
            self.hour = _hour(day[0].received_at)
            self.summary.first = day[0].received_at
        numbers = allocate(self.session, day)
        version = current_policy(self.session).version
        i = 0
        while i < len(day):
            end = self.hour + HOUR
            j = i
            while j < len(day) and day[j].received_at < end:
                j += 1
            self._step(day[i:j], numbers[i:j], version, cap=_hour(day[j].received_at) if j < len(day) else None)
            i = j

    def _step(self, arrivals: list[OrderRecord], numbers: list[str] | None = None, version: int = 0,
              cap: datetime | None = None) -> None:
        """Run the current hour if anything happens in it, then move to the next hour with something to do."""
        end = self.hour + HOUR
        due = self.next_due is not None and self.next_due <= end
        if arrivals or (self.waiting and self.waiting[0][0] < end.timestamp()) or due:
            self._run_hour(arrivals, numbers or [], version)
        # With nothing known ahead (the day's last arrivals came), one hour on: the next day's orders may be near.
        upcoming = [end]
        if self.waiting:
            upcoming.append(_hour(self.waiting[0][5].at))
        if self.next_due is not None:
            upcoming.append(_hour(self.next_due))
        if cap is not None:
            upcoming.append(cap)
        self.hour = max(end, min(upcoming[1:] or upcoming))

    def _run_hour(self, arrivals: list[OrderRecord], numbers: list[str], version: int) -> None:
        end = self.hour + HOUR
        session = self.session
        day = self.hour.astimezone(LOCAL).date()
        if day != self.open_day:
            # A local day commits at once (and before each sweep, which works in its own transactions).
            session.commit()
            self.open_day = day
        held.resume(session, drop=self.stale)
        self.stale = set()
        if arrivals:
            orders = receive(session, arrivals, lookups=self.lookups, numbers=numbers, actor_id="replay",
                             policy_version=version)
            for record, order in zip(arrivals, orders, strict=True):
                self.ids[record.number] = order.id
                for index, event in enumerate(record.events):
                    self.seq += 1
                    heapq.heappush(self.waiting, (event.at.timestamp(), self.seq, order.id, record.line, index, event))
            self.summary.orders += len(orders)
        steps: list[Step] = []
        limit = end.timestamp()
        while self.waiting and self.waiting[0][0] < limit:
            _, _, order_id, line, index, event = heapq.heappop(self.waiting)
            steps.append(Step(order_id, line, index, event))
        if steps:
            self.summary.transitions += apply_steps(session, steps, lookups=self.lookups, order_id_of=self.ids.get)
            self.summary.last = steps[-1].event.at
        if self.sweep is not None:
            self.next_due = session.scalar(_EARLIEST_DUE)
        self.summary.hours += 1
        if self.next_due is not None and self.next_due <= end:
            self._sweep(end)

    def _sweep(self, now: datetime) -> None:
        """The sweep at the end of an hour a deadline fell in; then the next deadline."""
        started = time.perf_counter()
        self.stale |= set(self.session.scalars(select(WorkOrder.id).where(WorkOrder.next_due_at <= now)))
        self.session.commit()
        fired = self.sweep(now) or {}
        self.summary.sweeps += 1
        self.summary.sweep_seconds += time.perf_counter() - started
        for rung, count in fired.items():
            self.summary.rung_counts[rung] = self.summary.rung_counts.get(rung, 0) + count
            self.summary.rungs += count
        self.next_due = self.session.scalar(_EARLIEST_DUE)
        self.session.commit()


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _local_day(record: OrderRecord) -> object:
    return record.received_at.astimezone(LOCAL).date()
