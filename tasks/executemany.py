"""One INSERT or UPDATE for many rows, compiled once and bound without SQLAlchemy's per-row work.

A batch (a replayed hour, an import) writes millions of rows through a handful of statements. Core's
executemany builds every row's parameters through the compiler's generic path, which costs about as
much as the database's own work; here a statement is compiled once per dialect and set of keys, and
each row becomes a tuple through the same bind processors (JSON; aware UTC times on SQLite in one step
to the same text). Python-side column
defaults are filled as Core fills them. Dialects with named parameters, statements returning rows and
defaults that are SQL expressions take Core's own path.
"""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql.dml import ValuesBase

from models.base import UTCDateTime

# Per placeholder: the row key, its bind processor, and for a column the rows leave out, its Python default.
Placeholder = tuple[str, Callable[[Any], Any] | None, tuple[Any, bool] | None]
_PLANS: dict[tuple[int, str, tuple[str, ...]], tuple[ValuesBase, tuple[str, tuple[Placeholder, ...]] | None]] = {}


def executemany(connection: Connection, statement: ValuesBase, rows: Sequence[dict[str, Any]]) -> int:
    """Execute `statement` once per row (all rows with the same keys); the driver's rowcount (an UPDATE's matches)."""
    if not rows:
        return 0
    keys = tuple(rows[0])
    cache_key = (id(statement), connection.dialect.name, keys)
    cached = _PLANS.get(cache_key)
    if cached is None or cached[0] is not statement:
        cached = _PLANS[cache_key] = (statement, _plan(connection, statement, keys))
    if cached[1] is None:
        return connection.execute(statement, list(rows)).rowcount
    sql, placeholders = cached[1]
    # Column by column: one map() per column costs far less than a Python loop per value.
    columns = []
    for key, bind, default in placeholders:
        if default is None:
            values = list(map(itemgetter(key), rows))
        else:
            arg, call = default
            values = [arg(None) for _ in rows] if call else [arg] * len(rows)
        columns.append(list(map(bind, values)) if bind else values)
    return connection.exec_driver_sql(sql, list(zip(*columns, strict=True))).rowcount


def _plan(connection: Connection, statement: ValuesBase,
          keys: tuple[str, ...]) -> tuple[str, tuple[Placeholder, ...]] | None:
    """The SQL and its placeholders in order; None where Core must do it."""
    compiled = statement.compile(dialect=connection.dialect, column_keys=list(keys))
    if not compiled.positional or compiled.effective_returning or compiled.post_compile_params \
            or compiled.literal_execute_params:
        return None
    defaults = {}
    for column, default in [*((c, c.default) for c in compiled.insert_prefetch),
                            *((c, c.onupdate) for c in compiled.update_prefetch)]:
        if default is None or not (default.is_scalar or default.is_callable):
            return None
        defaults[column.key] = (default.arg, default.is_callable)
    names = compiled.positiontup or []
    if not set(names) <= set(keys) | set(defaults):
        return None
    processors = dict(compiled._bind_processors)
    if connection.dialect.name == "sqlite":
        processors |= {name: sqlite_utc for name in names if isinstance(compiled.binds[name].type, UTCDateTime)}
    return compiled.string, tuple((name, processors.get(name), defaults.get(name)) for name in names)


def sqlite_utc(value: datetime | None) -> str | None:
    """What UTCDateTime and SQLite's DATETIME together store for an aware time, in one step."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: Duban stores aware UTC times only")
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]
