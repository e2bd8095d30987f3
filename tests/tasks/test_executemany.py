"""tasks.executemany writes the very rows Core's executemany writes, on both databases."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import bindparam, insert, select, text, update

from duban.db import session_scope
from models.records import Event
from models.work_order import WorkOrder
from tasks.executemany import executemany, sqlite_utc

CST = timezone(timedelta(hours=8))
ORDERS = WorkOrder.__table__
EVENTS = Event.__table__


def _orders(prefix: str) -> list[dict]:
    # Columns with Python-side defaults (status, urgency, extra, version, ...) are left out on purpose.
    at = [datetime(2021, 2, 11, 23, 59, 59, i * 1000, tzinfo=CST) for i in range(3)]
    return [dict(number=f"{prefix}-{i}", channel="hotline", item_type="complaint", content=f"内容 {i}",
                 received_at=at[i], updated_at=at[i]) for i in range(3)]


def _raw(session, table: str, where: str) -> list[tuple]:
    """The stored values as the database holds them, ids and numbers aside."""
    rows = session.execute(text(f"SELECT * FROM {table} WHERE {where} ORDER BY id")).all()
    return [tuple(v for k, v in row._mapping.items() if k not in ("id", "number", "work_order_id")) for row in rows]


def test_inserts_store_what_core_stores_defaults_included(db_url):
    with session_scope() as session:
        session.connection().execute(insert(ORDERS), _orders("core"))
        executemany(session.connection(), insert(ORDERS), _orders("fast"))
    with session_scope() as session:
        core, fast = _raw(session, "work_orders", "number LIKE 'core-%'"), _raw(session, "work_orders",
                                                                                "number LIKE 'fast-%'")
        assert fast == core and len(fast) == 3
        order_id = session.scalar(select(WorkOrder.id).limit(1))
        events = [dict(work_order_id=order_id, unit_id=None, name="work_order_received", actor_kind="channel",
                       actor_id="test", at=datetime(2021, 2, 12, i, tzinfo=UTC), from_status=None,
                       to_status="received", payload={"渠道": "hotline", "n": i}) for i in range(3)]
        session.connection().execute(insert(EVENTS), events)
        executemany(session.connection(), insert(EVENTS), events)
    with session_scope() as session:
        stored = _raw(session, "events", "1 = 1")
        assert stored[3:] == stored[:3] and len({repr(s) for s in stored}) == 3
        read = session.scalars(select(Event).order_by(Event.id)).all()
        assert [(e.at, e.payload) for e in read[3:]] == [(e["at"], e["payload"]) for e in events]


def test_a_versioned_update_counts_the_rows_it_matched(db_url):
    with session_scope() as session:
        executemany(session.connection(), insert(ORDERS), _orders("v"))
    with session_scope() as session:
        ids = session.scalars(select(WorkOrder.id).order_by(WorkOrder.id)).all()
        statement = (update(ORDERS).where(ORDERS.c.id == bindparam("_id"), ORDERS.c.version == bindparam("_old"))
                     .values(status=bindparam("status"), next_due_at=bindparam("next_due_at"),
                             version=bindparam("_new")))
        due = datetime(2021, 2, 18, 9, tzinfo=CST)
        rows = [{"_id": i, "_old": 1, "_new": 2, "status": "dispatched", "next_due_at": due} for i in ids]
        rows[-1]["_old"] = 7  # someone else moved this one
        assert executemany(session.connection(), statement, rows) == 2
    with session_scope() as session:
        stored = session.execute(select(WorkOrder.status, WorkOrder.next_due_at, WorkOrder.version)
                                 .order_by(WorkOrder.id)).all()
        assert stored == [("dispatched", due, 2), ("dispatched", due, 2), ("received", None, 1)]


def test_sqlite_times_are_the_text_core_stores():
    from sqlalchemy.dialects import sqlite

    core = insert(EVENTS).compile(dialect=sqlite.dialect(), column_keys=["at"])._bind_processors["at"]
    for moment in (datetime(2021, 1, 1, tzinfo=UTC), datetime(2021, 10, 1, 0, 0, 0, 5, tzinfo=CST),
                   datetime(2021, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
                   datetime(2021, 2, 12, 8, tzinfo=ZoneInfo("Asia/Shanghai")),
                   datetime(2021, 6, 1, tzinfo=ZoneInfo("UTC"))):
        assert sqlite_utc(moment) == core(moment)
    assert sqlite_utc(None) is None
    with pytest.raises(ValueError, match="naive datetime"):
        sqlite_utc(datetime(2021, 1, 1))
