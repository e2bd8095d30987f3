"""The SLA clock killed between firing a rung and recording it: a restart fires every rung, each once."""

from collections import Counter

from sqlalchemy import func, select

from duban.db import session_scope
from models.records import Event
from models.supervision_records import Escalation
from tests.faults import invariants as inv
from tests.faults.processes import freeze_inside_write, kill9, spawn, terminate, wait_until, writer_inside
from tests.notifications.smtp import use_settings
from tests.tasks.supervision_kit import dispatched, local

ORDERS = 30
LADDER = 4  # warning, overdue, case, notice: all long due for an order dispatched in 2021


def _rungs_by_order() -> Counter:
    with session_scope(readonly=True) as session:
        return Counter(dict(session.execute(select(Escalation.work_order_id, func.count())
                                            .group_by(Escalation.work_order_id)).all()))


def _rung_events_by_order() -> Counter:
    with session_scope(readonly=True) as session:
        return Counter(dict(session.execute(
            select(Event.work_order_id, func.count())
            .where(Event.name.in_([*inv.RUNG_EVENTS, "case_opened"])).group_by(Event.work_order_id)).all()))


def test_clock_killed_inside_a_rungs_transaction_loses_and_repeats_nothing(db_url, directory, fault, tmp_path,
                                                                           monkeypatch):
    use_settings(monkeypatch, clock_runs_flows="false", clock_safety_interval_s="3600")
    ids = [dispatched(local(2021, 3, 15, 9, 0)) for _ in range(ORDERS)]
    before, numbers = inv.counts(), inv.numbers()
    fault.before(before)

    clock = spawn("clock", log=tmp_path / "clock-1.log")
    try:
        # Frozen at a moment when the sweep is under way and a rung's transaction is open, then killed there.
        slices = freeze_inside_write(clock.pid, db_url,
                                     also=lambda: 0 < sum(_rungs_by_order().values()) < ORDERS * LADDER)
        at_kill = _rungs_by_order()
        kill9(clock)
    finally:
        if clock.poll() is None:
            kill9(clock)
    wait_until(lambda: not writer_inside(db_url), "the killed clock's transaction to end")
    done = sum(1 for n in at_kill.values() if n == LADDER)
    fault.injected(f"kill -9 of `duban clock` inside an order's rung transaction (after {slices} 2 ms slices), "
                   f"{done} of {ORDERS} orders swept")
    recorded = _rungs_by_order()
    assert recorded == at_kill, "what the killed transaction wrote was rolled back"
    assert set(recorded.values()) <= {LADDER} and _rung_events_by_order() == recorded, "no order half-swept"
    assert 0 < done < ORDERS
    mid = inv.counts()
    fault.say("at kill", mid)

    clock = spawn("clock", log=tmp_path / "clock-2.log")
    try:
        wait_until(lambda: _rungs_by_order() == Counter({i: LADDER for i in ids}), "the restarted clock's catch-up")
    finally:
        terminate(clock)
    after = inv.counts()
    fault.after(after)
    assert after.rungs == ORDERS * LADDER and _rung_events_by_order() == _rungs_by_order()
    assert after.transitions == before.transitions, "a rung changes no status"
    fault.checked(inv.no_order_lost(numbers), inv.no_transition_twice(), inv.rungs_once(),
                  f"no order half-swept: each of {ORDERS} orders has its {LADDER} rungs with their events")
