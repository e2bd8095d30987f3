"""Duban's parts as real processes, killed with SIGKILL at a moment the test has checked from outside."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from duban.db import get_engine
from tests.prefect_fixtures import stop

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
        # A backend with a transaction id has written (or locked rows) in a transaction not yet ended.
        return bool(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL")).scalar())


def _stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in {"T", "t"}


def freeze_inside_write(pid: int, url: str, *, also: Callable[[], bool] = lambda: True,
                        missed: Callable[[], bool] = lambda: False, slice_s: float = 0.002,
                        timeout: float = 60) -> int | None:
    """Run the process in short slices until it is frozen inside a write transaction and `also` holds.

    The process stays stopped (SIGSTOP) at that moment, so the kill that follows lands exactly there:
    a transaction begun, nothing committed. Returns how many slices it took, or None (the process
    running on) once `missed` says the moment has passed.
    """
    deadline = time.monotonic() + timeout
    slices = 0
    while True:
        os.kill(pid, signal.SIGCONT)
        time.sleep(slice_s)
        os.kill(pid, signal.SIGSTOP)
        while not _stopped(pid):
            time.sleep(0.0005)
        slices += 1
        if writer_inside(url) and also():
            return slices
        if missed():
            os.kill(pid, signal.SIGCONT)
            return None
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGCONT)
            raise AssertionError(f"process {pid} was never caught inside a write transaction in {timeout:.0f} s")
