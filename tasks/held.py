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

from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, event, func, insert, select, update
from sqlalchemy.orm import InstanceState, Session, SessionTransaction, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.exc import StaleDataError

from models.directory import Category, District, Unit
from models.enums import FINAL_STATUSES
from models.records import Event, Notification
from models.requests import ReturnVisit, Review
from models.work_order import Assignment, WorkOrder
from tasks.executemany import executemany

_KEY = "duban_held"
_DIRECTORY = "duban_directory"
_FETCHED = "duban_fetched_rows"
_ASSIGNMENTS = "duban_order_assignments"
_CHUNK = 500
_ORDERS = WorkOrder.__table__
_INSERT_EVENT = insert(Event.__table__)
_ORDER_COLUMNS = frozenset(c.key for c in _ORDERS.columns) - {"id", "version"}
# Rows a transition adds and never reads back by id: written with one executemany per kind.
_WRITE_ONLY = {model: frozenset(c.key for c in model.__table__.columns) - {"id"}
               for model in (Notification, Review, ReturnVisit)}
_INSERT_ADDED = {model: insert(model.__table__) for model in _WRITE_ONLY}


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


def _changed(obj: Any, columns: frozenset[str]) -> tuple[tuple[str, ...], InstanceState[Any]] | None:
    """The columns of a persistent object whose values differ from the stored row, and its state."""
    state = instance_state(obj)
    if state.key is None or not state.modified:
        return None
    keys = tuple(sorted(key for key, old in state.committed_state.items()
                        if key in columns and state.dict.get(key) != old))
    return (keys, state) if keys else None


def _write_orders(session: Session, held: Held) -> None:
    """UPDATE the changed held orders in one executemany per set of changed columns, version checked."""
    groups: dict[tuple[str, ...], list[InstanceState[WorkOrder]]] = defaultdict(list)
    for order_id in held.pending:
        order = held.orders.get(order_id)
        found = _changed(order, _ORDER_COLUMNS) if order is not None else None
        if found:
            groups[found[0]].append(found[1])
    for keys, states in groups.items():
        rows = [{"_id": s.dict["id"], "_old": s.dict["version"],
                 "_new": s.dict["version"] + held.moves.get(s.dict["id"], 1), **{key: s.dict[key] for key in keys}}
                for s in states]
        written = executemany(session.connection(), _update_statement(_ORDERS, keys, versioned=True), rows)
        if written != len(rows):
            raise StaleDataError(f"{len(rows) - written} of {len(rows)} held work orders were changed by someone else")
        for row, state in zip(rows, states, strict=True):
            state.dict["version"] = row["_new"]
        # What the ORM does to an object it has just written: nothing left to flush for it.
        InstanceState._commit_all_states([(s, s.dict) for s in states], session.identity_map)


def _write_assignment_changes(session: Session, held: Held) -> None:
    """UPDATE the held orders' changed assignments, one executemany per set of changed columns."""
    groups: dict[tuple[str, ...], list[InstanceState[Assignment]]] = defaultdict(list)
    for order_id in held.pending:
        for assignment in held.assignments.get(order_id, ()):
            found = _changed(assignment, _ASSIGNMENT_COLUMNS)
            if found:
                groups[found[0]].append(found[1])
    for keys, states in groups.items():
        rows = [{"_id": s.dict["id"], **{key: s.dict[key] for key in keys}} for s in states]
        executemany(session.connection(), _update_statement(_ASSIGNMENTS, keys, versioned=False), rows)
        InstanceState._commit_all_states([(s, s.dict) for s in states], session.identity_map)


_UPDATES: dict[tuple[str, tuple[str, ...]], Any] = {}


def _update_statement(table: Any, keys: tuple[str, ...], *, versioned: bool) -> Any:
    """UPDATE <table> SET <keys> WHERE id (and version, moving it), built once per table and set of columns."""
    if (table.name, keys) not in _UPDATES:
        statement = update(table).where(table.c.id == bindparam("_id")).values({key: bindparam(key) for key in keys})
        if versioned:
            statement = statement.where(table.c.version == bindparam("_old")).values(version=bindparam("_new"))
        _UPDATES[(table.name, keys)] = statement
    return _UPDATES[(table.name, keys)]


def _write_added(session: Session, held: Held) -> None:
    """INSERT the notices, reviews and visits added for held orders, one executemany per kind and shape."""
    groups: dict[tuple[type, tuple[str, ...]], list[dict[str, Any]]] = defaultdict(list)
    for obj in list(session.new):
        columns = _WRITE_ONLY.get(type(obj))
        if columns is None or obj.work_order_id not in held.orders:
            continue
        values = {key: value for key, value in instance_state(obj).dict.items() if key in columns}
        groups[(type(obj), tuple(sorted(values)))].append(values)
        session.expunge(obj)
    for (model, _), rows in groups.items():
        executemany(session.connection(), _INSERT_ADDED[model], rows)


_ASSIGNMENTS = Assignment.__table__
_ASSIGNMENT_COLUMNS = frozenset(c.key for c in _ASSIGNMENTS.columns) - {"id"}
_ASSIGNMENT_DEFAULTS = {c.key: c.default.arg if c.default is not None and c.default.is_scalar else None
                        for c in _ASSIGNMENTS.columns if c.key != "id"}
_INSERT_ASSIGNMENTS = insert(_ASSIGNMENTS).returning(_ASSIGNMENTS.c.id, _ASSIGNMENTS.c.work_order_id,
                                                     _ASSIGNMENTS.c.unit_id, _ASSIGNMENTS.c.role)


def _write_assignments(session: Session, held: Held) -> None:
    """INSERT the held orders' new assignments at once and make them the session's persistent rows.

    Within one flush an order took one transition, so (order, unit, role) names each new assignment;
    should two share it (a unit named twice), the ORM inserts them one by one as it would anyway.
    """
    added = [obj for obj in session.new if type(obj) is Assignment and obj.work_order_id in held.orders]
    if not added or len({(a.work_order_id, a.unit_id, a.role) for a in added}) != len(added):
        return
    rows = []
    for obj in added:
        values = instance_state(obj).dict
        for key, default in _ASSIGNMENT_DEFAULTS.items():
            values.setdefault(key, default)
        rows.append({key: values[key] for key in _ASSIGNMENT_DEFAULTS})
    ids = {(order_id, unit_id, role): row_id for row_id, order_id, unit_id, role in
           session.connection().execute(_INSERT_ASSIGNMENTS, rows)}
    for obj in added:
        session.expunge(obj)
        obj.id = ids[(obj.work_order_id, obj.unit_id, obj.role)]
        make_transient_to_detached(obj)
        session.add(obj)
        # The object is now the stored row: nothing of it is pending.
        InstanceState._commit_all_states([(instance_state(obj), instance_state(obj).dict)], session.identity_map)


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    held = current(session)
    if held is not None and held.pending:
        _write_orders(session, held)
        held.moves.clear()
        _write_assignment_changes(session, held)
        _write_assignments(session, held)
        _write_added(session, held)
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
