"""How a batch writes what its held orders changed: one executemany per group of rows alike.

Called from tasks.held's flush hooks. Changed orders are updated per set of changed columns, each version
checked and moved by the transitions it took; new assignments come back with their ids and become the
session's stored rows; notices, reviews and visits are inserted without being read back.
"""

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm import InstanceState, Session, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.exc import StaleDataError

from models.records import Notification
from models.requests import ReturnVisit, Review
from models.work_order import Assignment, WorkOrder
from tasks.executemany import executemany

if TYPE_CHECKING:
    from tasks.held import Held

_ORDERS = WorkOrder.__table__
_ORDER_COLUMNS = frozenset(c.key for c in _ORDERS.columns) - {"id", "version"}
# Rows a transition adds and never reads back by id: written with one executemany per kind.
_WRITE_ONLY = {model: frozenset(c.key for c in model.__table__.columns) - {"id"}
               for model in (Notification, Review, ReturnVisit)}
_INSERT_ADDED = {model: insert(model.__table__) for model in _WRITE_ONLY}

_ASSIGNMENTS = Assignment.__table__
_ASSIGNMENT_COLUMNS = frozenset(c.key for c in _ASSIGNMENTS.columns) - {"id"}
_ASSIGNMENT_DEFAULTS = {c.key: c.default.arg if c.default is not None and c.default.is_scalar else None
                        for c in _ASSIGNMENTS.columns if c.key != "id"}
_INSERT_ASSIGNMENTS = insert(_ASSIGNMENTS).returning(_ASSIGNMENTS.c.id, _ASSIGNMENTS.c.work_order_id,
                                                     _ASSIGNMENTS.c.unit_id, _ASSIGNMENTS.c.role)


def _changed(obj: Any, columns: frozenset[str]) -> tuple[tuple[str, ...], InstanceState[Any]] | None:
    """The columns of a persistent object whose values differ from the stored row, and its state."""
    state = instance_state(obj)
    if state.key is None or not state.modified:
        return None
    keys = tuple(sorted(key for key, old in state.committed_state.items()
                        if key in columns and state.dict.get(key) != old))
    return (keys, state) if keys else None


def write_orders(session: Session, held: "Held") -> None:
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


def write_assignment_changes(session: Session, held: "Held") -> None:
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


def write_added(session: Session, held: "Held") -> None:
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


def write_assignments(session: Session, held: "Held") -> None:
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
