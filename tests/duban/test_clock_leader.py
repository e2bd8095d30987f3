"""Two real clock processes on one database: one fires, the other stands by and takes over after a kill -9."""

import os
import threading
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from tests.tasks.supervision_kit import escalations, local, rung_events
from tests.tasks.supervision_kit import dispatched as dispatched_at

ROOT = Path(__file__).resolve().parents[2]
LADDER = ["warning", "overdue", "case", "notice"]
LONG_AGO = local(2021, 3, 1, 9, 0)  # every rung of an order dispatched then is due now


class Clock:
    """`duban clock` in its own process group, its output in a file the test reads."""

    def __init__(self, name: str, log_dir: Path) -> None:
        self.log_path = log_dir / f"clock-{name}.log"
        env = {**os.environ, "DUBAN_CLOCK_RUNS_FLOWS": "false", "DUBAN_CLOCK_SAFETY_INTERVAL_S": "1",
               "DUBAN_CLOCK_STANDBY_POLL_S": "0.3"}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "duban", "clock"], cwd=ROOT, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def sweeps(self) -> int:
        return self.log.count(" sweep at ")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        self.process.wait(30)


def wait_for(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s")


def fired_once(order_ids: list[int]) -> bool:
    return all([rung for _, rung, _ in escalations(i)] == LADDER for i in order_ids)


def batch(n: int, offset_minutes: int) -> list[int]:
    return [dispatched_at(LONG_AGO + timedelta(minutes=offset_minutes + i)) for i in range(n)]


def test_one_clock_fires_the_other_stands_by_and_takes_over_after_kill_9(directory, tmp_path):
    first = Clock("first", tmp_path)
    second = None
    try:
        wait_for(lambda: "clock active" in first.log, "the first clock taking the lock")
        second = Clock("second", tmp_path)
        wait_for(lambda: "clock standing by" in second.log, "the second clock standing by")
        assert "held by duban clock" in second.log  # it names the holder, so an operator knows which

        before = batch(3, 0)
        wait_for(lambda: fired_once(before), "the active clock firing every rung")
        time.sleep(2)  # several of the stand-by's polls and the active clock's sweeps
        assert first.sweeps() >= 1 and second.sweeps() == 0
        assert "clock active" not in second.log

        first.kill()
        after = batch(3, 60)
        wait_for(lambda: "clock active" in second.log, "the stand-by taking over", timeout=30)
        assert "taken over from duban clock" in second.log
        wait_for(lambda: fired_once(after), "the new active clock firing the rungs that fell due")
        time.sleep(2)  # more sweeps: nothing already fired may fire again
        assert second.sweeps() >= 1
        for order_id in before + after:
            assert [rung for _, rung, _ in escalations(order_id)] == LADDER
            assert [name for name, _, _ in rung_events(order_id)] == [
                "deadline_warned", "deadline_missed", "case_opened", "unit_put_on_notice"]
    finally:
        first.kill()
        if second is not None:
            second.kill(signal.SIGTERM)
    assert "clock stopped" in second.log  # a clean stop gives the lock back after the scheduler ends


def test_a_clock_whose_lock_connection_is_cut_stops_its_scheduler_before_it_may_lead_again(pg_admin_url, monkeypatch,
                                                                                          caplog):
    from sqlalchemy import create_engine, text

    from duban.clock import lead_or_stand_by
    from duban.db import reset_engines
    from duban.schema import migrate

    monkeypatch.setenv("DUBAN_DATABASE_URL", pg_admin_url)
    monkeypatch.setenv("DUBAN_CLOCK_RUNS_FLOWS", "false")
    monkeypatch.setenv("DUBAN_CLOCK_STANDBY_POLL_S", "0.2")
    reset_engines()
    migrate()
    caplog.set_level("INFO", logger="duban.clock")
    stopped = threading.Event()
    clock = threading.Thread(target=lead_or_stand_by, args=(stopped,), daemon=True)
    clock.start()
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    try:
        wait_for(lambda: "clock started" in caplog.text, "the clock starting")
        with admin.connect() as conn:
            # What a database restart or a lost network does to the lock's session.
            cut = conn.scalar(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                   "WHERE application_name LIKE 'duban clock%' AND datname = current_database()"))
        assert cut == 1
        wait_for(lambda: caplog.text.count("clock started") == 2, "the clock leading again")
        lines = [r.getMessage() for r in caplog.records]
        lost = next(i for i, line in enumerate(lines) if "lost the clock lock" in line)
        assert "clock stopped" in lines[lost + 1:lost + 4]
        assert any(line.startswith("clock active") for line in lines[lost + 1:])
    finally:
        stopped.set()
        clock.join(30)
        admin.dispose()
        reset_engines()
