"""Duban's parts as real processes, killed with SIGKILL at a moment the test has checked from outside."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

from duban.db import get_engine
from tests.notifications.smtp import use_settings
from tests.prefect_fixtures import free_port, stop

ROOT = Path(__file__).resolve().parents[2]


def spawn(*args: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`python -m duban ARGS` in its own process group, with this test's DUBAN_* settings."""
    out = open(log, "ab")  # noqa: SIM115 - the child writes to it as long as it lives
    try:
        return subprocess.Popen([sys.executable, "-m", "duban", *args], cwd=ROOT, env={**os.environ, **(env or {})},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        out.close()


def kill9(process: subprocess.Popen) -> None:
    """SIGKILL the whole process group, as a power cut or the OOM killer would, and reap it."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def terminate(process: subprocess.Popen) -> None:
    """A clean stop (SIGTERM, then SIGKILL after a grace period)."""
    stop(process)


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 60, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(every)


def writer_inside(url: str) -> bool:
    """Whether another process holds an open write transaction on the database right now."""
    if url.startswith("sqlite"):
        probe = sqlite3.connect(make_url(url).database, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return True
            raise
        finally:
            probe.close()
    with get_engine(url).connect() as conn:
        # A backend with a transaction id has written (or locked rows) in a transaction not yet ended,
        # and is not committing it right now.
        return bool(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL "
            "AND NOT (state = 'active' AND query ILIKE 'commit%')")).scalar())


@contextmanager
def writes_held(url: str, table: str) -> Iterator[None]:
    """No one else may write (SQLite: the write lock; PostgreSQL: `table`) until the block ends."""
    if url.startswith("sqlite"):
        holder = sqlite3.connect(make_url(url).database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    with get_engine(url).connect() as conn, conn.begin():
        conn.execute(text(f"LOCK TABLE {table} IN EXCLUSIVE MODE"))
        yield


@contextmanager
def slow_inserts(url: str, table: str) -> Iterator[None]:
    """Every insert into `table` takes a while, as on a saturated disk: a transaction stays open long enough."""
    engine = get_engine(url)
    with engine.begin() as conn:
        if url.startswith("sqlite"):
            # No sleep in SQLite: the trigger counts a cross join of the units, about 0.1 s per statement.
            work = "SELECT count(*) FROM units a, units b, units c, units d;" * 5
            conn.execute(text(f"CREATE TRIGGER fault_slow AFTER INSERT ON {table} BEGIN {work} END"))
        else:
            conn.execute(text("CREATE FUNCTION fault_slow() RETURNS trigger LANGUAGE plpgsql AS "
                              "$$ BEGIN PERFORM pg_sleep(0.5); RETURN NEW; END $$"))
            conn.execute(text(f"CREATE TRIGGER fault_slow AFTER INSERT ON {table} "
                              "FOR EACH ROW EXECUTE FUNCTION fault_slow()"))
    try:
        yield
    finally:
        with engine.begin() as conn:
            if url.startswith("sqlite"):
                conn.execute(text("DROP TRIGGER fault_slow"))
            else:
                conn.execute(text(f"DROP TRIGGER fault_slow ON {table}"))
                conn.execute(text("DROP FUNCTION fault_slow()"))


def _stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in {"T", "t"}


def freeze_inside_write(pid: int, url: str, *, also: Callable[[], bool] = lambda: True,
                        missed: Callable[[], bool] = lambda: False, slice_s: float = 0.002,
                        timeout: float = 60) -> int | None:
    """Run the process in short slices, frozen (SIGSTOP) after each, until it is frozen inside a write
    transaction (begun, nothing committed) and `also` holds.

    The process stays stopped at that moment, so the kill that follows lands exactly there. Returns
    how many slices it took, or None (the process running on) once `missed` says the moment has passed.
    """
    def inside() -> bool:
        return writer_inside(url) and also()

    deadline = time.monotonic() + timeout
    slices = 0
    while True:
        os.kill(pid, signal.SIGCONT)
        time.sleep(slice_s)
        os.kill(pid, signal.SIGSTOP)
        while not _stopped(pid):
            time.sleep(0.0005)
        slices += 1
        # Checked twice, a moment apart: a COMMIT the process sent just before it stopped is done by then.
        if inside() and (time.sleep(0.05) or inside()):
            return slices
        if missed():
            os.kill(pid, signal.SIGCONT)
            return None
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGCONT)
            raise AssertionError(f"process {pid} was never caught inside a write transaction within {timeout:.0f} s")


class Portal:
    """`duban portal` on a free port, restartable."""

    def __init__(self, tmp_path, monkeypatch) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.tmp_path, self.starts, self.process = tmp_path, 0, None
        use_settings(monkeypatch, portal_base_url=self.base, upload_dir=str(tmp_path / "uploads"))

    def start(self, **env: str) -> None:
        self.starts += 1
        self.process = spawn("portal", "--port", str(self.port), log=self.tmp_path / f"portal-{self.starts}.log",
                             env=env)
        wait_until(self._up, "the portal to answer")

    def _up(self) -> bool:
        try:
            return httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False
