"""The real APScheduler clock, its job store in Duban's database, across an outage in travelled time."""

import threading
import time
from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import select

from duban.clock import SWEEP_JOB_ID, next_wake, start_clock, stop_clock
from duban.db import session_scope
from duban.settings import get_settings
from models.supervision_records import ClockJob
from tests.tasks.supervision_kit import dispatched, escalations, local, order

DISPATCH = local(2021, 2, 10, 16, 0)   # the eve of the 2021 Spring Festival holiday
WARNING = local(2021, 2, 18, 8, 36)
DEADLINE = local(2021, 2, 18, 9, 0)
NOTICE = local(2021, 2, 22, 9, 0)


def _rungs(order_id: int) -> list[str]:
    return [rung for _, rung, _ in escalations(order_id)]


def _wait_for(predicate, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s")


def test_a_restart_after_an_outage_fires_every_missed_rung_once(directory, monkeypatch):
    monkeypatch.setenv("DUBAN_CLOCK_SAFETY_INTERVAL_S", "3600")
    monkeypatch.setenv("DUBAN_CLOCK_RUNS_FLOWS", "false")
    get_settings.cache_clear()
    order_id = dispatched(DISPATCH)
    try:
        with time_machine.travel(WARNING + timedelta(seconds=2), tick=True):
            start_clock()
            _wait_for(lambda: _rungs(order_id) == ["warning"], "the warning")
            # The clock then sleeps until the next deadline, not for the whole safety interval.
            _wait_for(lambda: next_wake() == DEADLINE, "the wake-up at the deadline")
            stop_clock()
        with session_scope(readonly=True) as session:
            stored = session.get(ClockJob, SWEEP_JOB_ID)
            assert datetime.fromtimestamp(stored.next_run_time, UTC) == DEADLINE

        # Stopped over the deadline, the case rung and the notice rung: nothing fires meanwhile.
        assert _rungs(order_id) == ["warning"]
        with time_machine.travel(NOTICE + timedelta(hours=1), tick=True):
            start_clock()
            _wait_for(lambda: len(_rungs(order_id)) == 4, "the catch-up")
            stop_clock()
            start_clock()  # once more: nothing is due, nothing fires twice
            _wait_for(lambda: next_wake() is not None and next_wake() > NOTICE + timedelta(minutes=30), "a quiet wake")
            stop_clock()
        assert _rungs(order_id) == ["warning", "overdue", "case", "notice"]
        assert [fired_at >= NOTICE for _, _, fired_at in escalations(order_id)] == [False, True, True, True]
        assert order(order_id).next_due_at is None
        with session_scope(readonly=True) as session:
            assert session.scalars(select(ClockJob.id)).all() == [SWEEP_JOB_ID]

        # Stopped in the middle of a sweep: the sweep finishes, the clock stops, a restart fires nothing twice.
        batch = [dispatched(NOTICE + timedelta(days=1)) for _ in range(12)]
        with time_machine.travel(NOTICE + timedelta(days=10), tick=True):
            start_clock()
            _wait_for(lambda: any(escalations(i) for i in batch), "the sweep to begin")
            stopper = threading.Thread(target=stop_clock)
            stopper.start()
            stopper.join(60)
            assert not stopper.is_alive()
            start_clock()
            _wait_for(lambda: all(len(escalations(i)) == 4 for i in batch), "the rest of the sweep")
            stop_clock()
        assert all(_rungs(i) == ["warning", "overdue", "case", "notice"] for i in batch)
    finally:
        stop_clock()
