"""Orders a write transaction holds, so a batch of transitions (a replayed hour, an import) reads each once.

A batch caller holds the orders it is about to move. Until its transaction ends nobody else can
change those rows (FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE on SQLite), so transition() takes
them from here instead of selecting each again, effects find their assignments and notice
sequences here instead of querying, and event rows wait for the next flush to be written in one
executemany. Changed held orders are written the same way at the next flush, one UPDATE ... WHERE id
AND version per group of orders that changed the same columns. An order moved several times since
the last flush is written once with its version moved by the number of transitions, so the rows end
exactly as one UPDATE per transition would leave them. New assignments, notices, reviews and return
visits of held orders are inserted the same way rather than one object at a time (SQLite cannot
return generated ids in order, so the ORM would insert each row on its own). Outside a batch nothing
is held and every path queries as it always did.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session, SessionTransaction

from models.directory import Category, District, Unit
from models.enums import FINAL_STATUSES
from models.records import Event, Notification
from models.work_order import Assignment, WorkOrder
from tasks import held_writes as writes
from tasks.executemany import executemany

_KEY = "duban_held"
_DIRECTORY = "duban_directory"
_FETCHED = "duban_fetched_rows"
_ASSIGNMENTS = "duban_order_assignments"
_CHUNK = 500
_INSERT_EVENT = insert(Event.__table__)


@dataclass
class Held:
    """What one transaction holds; dropped with the transaction."""

    transaction: SessionTransaction
    orders: dict[int, WorkOrder] = field(default_factory=dict)
    # Every assignment of a held order, stored or added in this transaction, in creation order.
    assignments: dict[int, list[Assignment]] = field(default_factory=dict)
    # Notices per (order, kind), counted when the order was held (none for an order inserted here).
    notices: dict[tuple[int, str], int] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    # Held orders with events or changes since the last flush, and how many transitions each took since.
    pending: set[int] = field(default_factory=set)
    moves: dict[int, int] = field(default_factory=dict)
    # Held orders with assignments not flushed yet: a later transition may need their ids.
    unflushed: set[int] = field(default_factory=set)


def current(session: Session) -> Held | None:
    """The holdings of the session's open transaction, if a batch caller made any."""
    held = session.info.get(_KEY)
    if held is None or held.transaction is not session.get_transaction():
        return None
    return held


def _begin(session: Session) -> Held:
    held = current(session)
    if held is None:
        session.connection()
        held = Held(session.get_transaction())
        session.info[_KEY] = held
        _keep_directory(session)
        if not event.contains(session, "after_flush_postexec", _after_flush):
            event.listen(session, "before_flush", _before_flush)
            event.listen(session, "after_flush_postexec", _after_flush)
            event.listen(session, "before_commit", _before_commit)
    return held


def hold_orders(session: Session, ids: Iterable[int]) -> dict[int, WorkOrder]:
    """Lock and load these orders with their assignments and notice counts; the ones that exist, by id."""
    held = _begin(session)
    ids = list(ids)
    wanted = [i for i in dict.fromkeys(ids) if i not in held.orders]
    if wanted:
        session.flush()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        for order in session.scalars(select(WorkOrder).where(WorkOrder.id.in_(chunk)).with_for_update()
                                     .execution_options(populate_existing=True)):
            held.orders[order.id] = order
            held.assignments[order.id] = []
        for assignment in session.scalars(select(Assignment).where(Assignment.work_order_id.in_(chunk))
                                          .order_by(Assignment.id).execution_options(populate_existing=True)):
            held.assignments[assignment.work_order_id].append(assignment)
        for order_id, kind, count in session.execute(
            select(Notification.work_order_id, Notification.kind, func.count())
            .where(Notification.work_order_id.in_(chunk)).group_by(Notification.work_order_id, Notification.kind)
        ):
            held.notices[(order_id, kind)] = count
    return {i: held.orders[i] for i in ids if i in held.orders}


def resume(session: Session, *, drop: Iterable[int] = ()) -> int:
    """Hold again, in the session's new transaction, the open orders its last batch held, but `drop`.

    For a caller that alone writes its orders between its own transactions (a replay, whose other
    writer is the sweep it runs itself and whose orders it names in `drop`): the objects are the rows
    as its last batch left them, so they are locked again (PostgreSQL) but not read again. Had anyone
    else changed one, its version would no longer match and the batch would fail, never overwrite it.
    Returns how many orders are held again.
    """
    previous = session.info.get(_KEY)
    if previous is None or previous.transaction is session.get_transaction():
        return 0
    dropped = set(drop)
    keep = {i: o for i, o in previous.orders.items() if i not in dropped and o.status not in FINAL_STATUSES}
    held = _begin(session)
    held.orders.update(keep)
    held.assignments.update((i, previous.assignments[i]) for i in keep)
    held.notices.update((key, n) for key, n in previous.notices.items() if key[0] in keep)
    if session.get_bind().dialect.name == "postgresql":
        ids = list(keep)
        for start in range(0, len(ids), _CHUNK):
            session.execute(select(WorkOrder.id).where(WorkOrder.id.in_(ids[start:start + _CHUNK])).with_for_update())
    return len(keep)


def hold_new(session: Session, orders: Iterable[WorkOrder]) -> None:
    """Hold orders inserted in this transaction (nobody else can see them yet), with their first events pending."""
    held = _begin(session)
    for order in orders:
        held.orders[order.id] = order
        held.assignments[order.id] = []


def buffer_event(session: Session, row: dict[str, Any]) -> None:
    """Queue an event row of a held order for the next flush."""
    held = current(session)
    held.events.append(row)
    held.pending.add(row["work_order_id"])


def moved(session: Session, order: WorkOrder) -> int:
    """Count one transition of a held order; its version once written."""
    held = current(session)
    held.moves[order.id] = held.moves.get(order.id, 0) + 1
    return order.version + held.moves[order.id]


def version(session: Session, order: WorkOrder) -> int:
    """A held order's version counting the transitions not written yet."""
    held = current(session)
    return order.version + (held.moves.get(order.id, 0) if held else 0)


def is_held(session: Session, order_id: int) -> bool:
    """Whether the open transaction holds this order."""
    held = current(session)
    return held is not None and order_id in held.orders


def held_order(session: Session, order_id: int) -> WorkOrder | None:
    """A held order (its changes since the last flush are in the object, not yet in the row)."""
    held = current(session)
    order = held.orders.get(order_id) if held else None
    if order is not None and order_id in held.unflushed:
        flush(session)
    return order


def assignments_of(session: Session, order_id: int) -> list[Assignment] | None:
    """All assignments of a held order, or of the order one transition is reading; None otherwise (then query)."""
    held = current(session)
    if held is not None:
        return held.assignments.get(order_id)
    reading = session.info.get(_ASSIGNMENTS)
    return reading[1] if reading is not None and reading[0] == order_id else None


@contextmanager
def order_assignments(session: Session, order_id: int) -> Iterator[None]:
    """Read an order's assignments once for one transition outside a batch.

    The unit check, the effect and the deadline refresh each look at the order's assignments; read
    together they cost one statement instead of three. Assignments the effect adds join the list.
    """
    if current(session) is not None:
        yield
        return
    rows = list(session.scalars(select(Assignment).where(Assignment.work_order_id == order_id)
                                .order_by(Assignment.id)))
    session.info[_ASSIGNMENTS] = (order_id, rows)
    try:
        yield
    finally:
        session.info.pop(_ASSIGNMENTS, None)


def add_assignment(session: Session, assignment: Assignment) -> None:
    """Record an assignment just added to a held order, or to the order a transition is reading."""
    held = current(session)
    if held is not None and assignment.work_order_id in held.assignments:
        held.assignments[assignment.work_order_id].append(assignment)
        held.unflushed.add(assignment.work_order_id)
    reading = session.info.get(_ASSIGNMENTS)
    if held is None and reading is not None and reading[0] == assignment.work_order_id:
        reading[1].append(assignment)


def next_notice_seq(session: Session, order_id: int, kind: str) -> int | None:
    """The sequence number of the next notice of this kind for a held order, or None when not held."""
    held = current(session)
    if held is None or order_id not in held.orders:
        return None
    seq = held.notices.get((order_id, kind), 0) + 1
    held.notices[(order_id, kind)] = seq
    return seq


def _keep_directory(session: Session) -> None:
    """Keep the directory's rows referenced for the session's life: the identity map only holds them weakly,
    and effects look a category or unit up on nearly every transition."""
    if _DIRECTORY not in session.info:
        rows = {model: {row.id: row for row in session.scalars(select(model))} for model in (Unit, Category, District)}
        session.info[_DIRECTORY] = {"units": {unit.code: unit.id for unit in rows[Unit].values()}, "rows": rows}


def row(session: Session, model: type[Unit] | type[Category] | type[District], row_id: int) -> Any:
    """A directory row by id: from the session's kept directory when a batch kept it, else session.get.

    A row fetched here is kept for the session's life too: one transition asks for its order's
    category three or four times, and the identity map alone would let go of it in between.
    """
    kept = session.info.get(_DIRECTORY)
    found = kept["rows"][model].get(row_id) if kept is not None else None
    if found is None:
        fetched = session.info.setdefault(_FETCHED, {})
        found = fetched.get((model, row_id))
        if found is None:
            found = fetched[(model, row_id)] = session.get(model, row_id)
    return found


def keep(session: Session, found: Unit | Category | District | None) -> None:
    """Keep a directory row the caller fetched with something else, so `row` finds it without a query."""
    if found is not None:
        session.info.setdefault(_FETCHED, {})[(type(found), found.id)] = found


def unit_id(session: Session, code: str) -> int | None:
    """A unit's id by code while a batch holds orders; None otherwise (then query)."""
    if current(session) is None:
        return None
    return session.info[_DIRECTORY]["units"].get(code)


def write_events(session: Session) -> None:
    """Write the queued event rows now, in one executemany."""
    held = current(session)
    if held is None or not held.events:
        return
    rows, held.events = held.events, []
    held.pending.clear()
    executemany(session.connection(), _INSERT_EVENT, rows)


def flush(session: Session) -> None:
    """Flush the held orders' changes and their queued events."""
    session.flush()
    write_events(session)


def release(session: Session) -> None:
    """Flush, then let go of every held order (the transaction and its locks stay), to bound memory."""
    flush(session)
    held = current(session)
    if held is not None:
        held.orders.clear()
        held.assignments.clear()
        held.notices.clear()



def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    held = current(session)
    if held is not None and held.pending:
        writes.write_orders(session, held)
        held.moves.clear()
        writes.write_assignment_changes(session, held)
        writes.write_assignments(session, held)
        writes.write_added(session, held)
        # The ORM may find nothing left to flush and skip its after-flush events: finish here.
        write_events(session)
        held.unflushed.clear()


def _after_flush(session: Session, _context: Any) -> None:
    # Events of the orders just written follow them, so a query never sees an order without its event.
    write_events(session)
    held = current(session)
    if held is not None:
        held.unflushed.clear()


def _before_commit(session: Session) -> None:
    session.flush()
    write_events(session)
