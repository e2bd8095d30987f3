"""Supervision at city scale, on SQLite and PostgreSQL.

1. 1,000,000 open orders of which 1,000 are due: the due query, a sweep that finds nothing due,
   and a sweep that fires the 1,000 due orders (two rungs each, one transaction per order).
2. A Zhuzhou-size year (83,310 orders handed to units, 25,530 return visits): one month's scorecards.

Run: .venv/bin/python -m bench.bench_sweep [--orders 1000000] [--backends sqlite,postgresql]
PostgreSQL: DUBAN_BENCH_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test); the bench
creates and drops its own database there.
"""

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2021, 6, 15, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Zhuzhou
YEAR = datetime(2021, 1, 1, tzinfo=UTC) - timedelta(hours=8)
CHUNK = 20_000


def _median_ms(fn: Callable[[], object], runs: int = 25) -> float:
    fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def _use(url: str) -> None:
    """Point Duban at `url`, with an empty schema and the demo directory."""
    os.environ["DUBAN_DATABASE_URL"] = url
    import models
    from duban.db import get_engine, reset_engines, session_scope
    from tasks.directory import load_directory
    from tasks.policy_store import forget_policies

    reset_engines()
    forget_policies()
    engine = get_engine(url)
    models.Base.metadata.drop_all(engine)
    models.Base.metadata.create_all(engine)
    with session_scope() as session:
        load_directory(session=session, path=ROOT / "duban" / "data" / "directory.yaml")


def _units() -> dict[str, int]:
    from duban.db import session_scope
    from models.directory import Unit

    with session_scope(readonly=True) as session:
        return {code: unit_id for code, unit_id in session.execute(select(Unit.code, Unit.id))}


def _insert(table, rows: Iterator[dict]) -> None:
    from duban.db import session_scope

    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            with session_scope() as session:
                session.execute(insert(table), batch)
            batch = []
    if batch:
        with session_scope() as session:
            session.execute(insert(table), batch)


def _order(i: int, **fields) -> dict:
    return {"number": f"ZZB{i:09d}", "channel": "hotline", "item_type": "complaint", "urgency": "normal",
            "content": "", "title": "", "address": "", "citizen_name": "", "citizen_phone": "", "citizen_email": "",
            "confidential": False, "policy_version": 0, "stage_rung": 0, "return_count": 0, "redo_count": 0,
            "false_completion": False, "extra": {}, "version": 1, **fields}


def _assignment(**fields) -> dict:
    """An assignment row with every column given, so all rows of one executemany have the same keys."""
    return {"role": "lead", "active": False, "sign_due_at": None, "signed_at": None, "due_at": None,
            "replied_at": None, "returned_at": None, "ended_at": None, "reply_text": "", "reply_contacted": None,
            "reply_solved": None, "rung": 0, "designated": False, **fields}


def open_orders(total: int, due: int) -> dict[str, float]:
    """The sweep over `total` open orders of which `due` are due."""
    from duban.db import session_scope
    from models.work_order import Assignment, WorkOrder
    from tasks.sweep import due_orders, sweep

    rng = random.Random(7)
    category = None
    unit = _units()["housing"]
    with session_scope(readonly=True) as session:
        from models.directory import Category

        category = session.scalar(select(Category.id).where(
            Category.code == "city_appearance_life_services.property_management"))

    def rows() -> Iterator[dict]:
        for i in range(total):
            if i < due:
                # Dispatched three hours ago, sign-for deadline passed an hour ago: warning and overdue due.
                started = NOW - timedelta(hours=3)
                yield _order(i, status="dispatched", category_id=category, received_at=started, updated_at=started,
                             dispatched_at=started, stage_started_at=started, stage_due_at=NOW - timedelta(hours=1),
                             next_due_at=NOW - timedelta(hours=1, minutes=rng.randint(0, 60)))
            else:
                start = NOW - timedelta(days=rng.randint(0, 4))
                yield _order(i, status="handling", category_id=category, received_at=start, updated_at=start,
                             dispatched_at=start, stage_started_at=start, stage_due_at=start + timedelta(days=7),
                             next_due_at=NOW + timedelta(minutes=rng.randint(1, 60 * 24 * 7)))

    began = time.perf_counter()
    _insert(WorkOrder.__table__, rows())
    with session_scope(readonly=True) as session:
        ids = session.scalars(select(WorkOrder.id).where(WorkOrder.next_due_at <= NOW)).all()
    _insert(Assignment.__table__, (_assignment(work_order_id=oid, unit_id=unit, active=True,
                                               dispatched_at=NOW - timedelta(hours=3),
                                               sign_due_at=NOW - timedelta(hours=1), due_at=NOW + timedelta(days=7))
                                   for oid in ids))
    loaded = time.perf_counter() - began
    with session_scope() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("ANALYZE work_orders"))

    def query() -> None:
        with session_scope(readonly=True) as session:
            assert len(due_orders(session, now=NOW, limit=due)) == due

    query_ms = _median_ms(query)
    # The same query without the ORM session around it: what the database itself costs.
    from duban.db import get_engine

    sql = text("SELECT id FROM work_orders WHERE next_due_at <= :now ORDER BY next_due_at LIMIT :n")
    bound = {"now": NOW if get_engine().dialect.name == "postgresql" else NOW.replace(tzinfo=None), "n": due}

    def raw() -> None:
        with get_engine().connect() as conn:
            assert len(conn.execute(sql, bound).all()) == due

    sql_ms = _median_ms(raw)
    empty_ms = _median_ms(lambda: sweep(now=NOW - timedelta(hours=3)))
    began = time.perf_counter()
    report = sweep(now=NOW)
    fire_s = time.perf_counter() - began
    assert report.processed == due and report.counts() == {"warning": due, "overdue": due}, report.counts()
    return {"load_s": loaded, "due_query_ms": query_ms, "due_sql_ms": sql_ms, "empty_sweep_ms": empty_ms,
            "fire_due_s": fire_s}


def zhuzhou_year(orders: int = 83_310, visits: int = 25_530) -> dict[str, float]:
    """A year of orders handed to units, then one month's scorecards (and the flow's six-month trend)."""
    from duban.db import session_scope
    from models.requests import ReturnRequest, ReturnVisit
    from models.work_order import Assignment, WorkOrder
    from tasks.scorecard import build_scorecards, compute_scorecards, parse_period

    rng = random.Random(2021)
    units = list(_units().values())
    weights = [rng.paretovariate(1.2) for _ in units]
    began = time.perf_counter()
    moments = sorted(YEAR + timedelta(seconds=rng.randrange(365 * 86400)) for _ in range(orders))
    _insert(WorkOrder.__table__, (_order(2_000_000 + i, status="closed", received_at=t, updated_at=t, dispatched_at=t,
                                         closed_at=t + timedelta(days=6)) for i, t in enumerate(moments)))
    with session_scope(readonly=True) as session:
        ids = session.scalars(select(WorkOrder.id).where(WorkOrder.number >= "ZZB002000000")
                              .order_by(WorkOrder.id)).all()
    assignments, returns, visit_rows = [], [], []
    for oid, t in zip(ids, moments):
        unit = rng.choices(units, weights)[0]
        signed = t + timedelta(minutes=rng.expovariate(1 / 70))
        replied = t + timedelta(days=rng.uniform(0.5, 7.5))
        if rng.random() < 0.04:
            assignments.append(_assignment(work_order_id=oid, unit_id=unit, dispatched_at=t,
                                           sign_due_at=t + timedelta(hours=2), due_at=t + timedelta(days=7),
                                           ended_at=t + timedelta(hours=1), returned_at=t + timedelta(hours=1)))
            returns.append((oid, unit, t))
            unit, t = rng.choice(units), t + timedelta(hours=1)
        assignments.append(_assignment(work_order_id=oid, unit_id=unit, dispatched_at=t,
                                       sign_due_at=t + timedelta(hours=2), signed_at=signed,
                                       due_at=t + timedelta(days=7), replied_at=replied, ended_at=replied,
                                       reply_text="已办结", reply_solved=True, reply_contacted=True))
    _insert(Assignment.__table__, iter(assignments))
    with session_scope(readonly=True) as session:
        first = {oid: aid for oid, aid in session.execute(
            select(Assignment.work_order_id, Assignment.id).where(Assignment.returned_at.is_not(None)))}
    _insert(ReturnRequest.__table__, ({"work_order_id": oid, "assignment_id": first[oid], "unit_id": unit,
                                       "reason": "不属于本单位", "evidence_note": "", "evidence_files": [],
                                       "requested_at": t, "decision": rng.choice(["approved", "rejected"]),
                                       "decided_at": t + timedelta(minutes=50), "decision_reason": ""}
                                      for oid, unit, t in returns))
    visited = rng.sample(range(len(ids)), visits)
    leads = {a["work_order_id"]: a for a in assignments if a.get("replied_at")}
    for i in visited:
        lead = leads[ids[i]]
        ok = rng.random() < 0.999
        visit_rows.append({"work_order_id": ids[i], "unit_id": lead["unit_id"], "contacted": True, "resolved": ok,
                           "satisfaction": "satisfied" if ok else "unsatisfied", "comment": "", "visited_by": "bench",
                           "visited_at": lead["replied_at"] + timedelta(days=1)})
    _insert(ReturnVisit.__table__, iter(visit_rows))
    loaded = time.perf_counter() - began
    with session_scope() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("ANALYZE"))
    from zoneinfo import ZoneInfo

    period = parse_period("2021-06", ZoneInfo("Asia/Shanghai"))

    def month() -> None:
        with session_scope(readonly=True) as session:
            assert len(compute_scorecards(session, period=period, as_of=NOW + timedelta(days=60))) > 30

    month_s = _median_ms(month, runs=3) / 1000
    began = time.perf_counter()
    build_scorecards(period="2021-06", as_of=NOW + timedelta(days=60), trend_months=6)
    trend_s = time.perf_counter() - began
    return {"load_s": loaded, "month_scorecards_s": month_s, "with_6_month_trend_s": trend_s}


def _postgres_url() -> str:
    base = make_url(os.environ.get("DUBAN_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('DROP DATABASE IF EXISTS "duban_bench_sweep" WITH (FORCE)'))
        conn.execute(text('CREATE DATABASE "duban_bench_sweep"'))
    admin.dispose()
    return base.set(database="duban_bench_sweep").render_as_string(hide_password=False)


def _drop_postgres() -> None:
    from duban.db import reset_engines

    reset_engines()
    base = make_url(os.environ.get("DUBAN_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('DROP DATABASE IF EXISTS "duban_bench_sweep" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db" if backend == "sqlite" else _postgres_url()
            try:
                _use(url)
                sweep_figures = open_orders(args.orders, args.due)
                _use(url)
                year_figures = zhuzhou_year()
            finally:
                if backend != "sqlite":
                    _drop_postgres()
        print(f"{backend}: {args.orders:,} open orders, {args.due:,} due: "
              f"load {sweep_figures['load_s']:.1f} s, due query {sweep_figures['due_query_ms']:.2f} ms "
              f"(SQL alone {sweep_figures['due_sql_ms']:.2f} ms), "
              f"empty sweep {sweep_figures['empty_sweep_ms']:.2f} ms, "
              f"sweep firing {args.due:,} orders {sweep_figures['fire_due_s']:.2f} s")
        print(f"{backend}: Zhuzhou-size year (83,310 orders, 25,530 visits): load {year_figures['load_s']:.1f} s, "
              f"one month's scorecards {year_figures['month_scorecards_s']:.2f} s, "
              f"with a six-month trend {year_figures['with_6_month_trend_s']:.2f} s", flush=True)


if __name__ == "__main__":
    main()
