"""One holder at a time per database: a PostgreSQL session advisory lock, or a file lock beside a SQLite file.

The database forgets a session lock the moment its connection ends, and the kernel a file lock the
moment its process ends, so a holder that dies (kill -9, a crash, a machine lost with TCP keepalive
noticing) frees it without anyone cleaning up.
"""

import fcntl
import logging
import os
import socket
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, create_engine, make_url, text
from sqlalchemy.pool import NullPool

from duban.settings import ROOT, get_settings

log = logging.getLogger(__name__)

# pg_try_advisory_lock(int, int): Duban's own class of locks, then which one.
LOCK_CLASS = 0x0D0BA2
CLOCK_LOCK = 1
MIGRATION_LOCK = 2
POLICY_LOCK = 3


def whoami() -> str:
    """This process as another one's log names it."""
    return f"{socket.gethostname()} pid {os.getpid()}"


class Leadership(Protocol):
    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True when this process holds it now."""

    def still_held(self) -> bool:
        """Whether this process still holds the lock it took (False once the connection to it is gone)."""

    def holder(self) -> str:
        """Who holds the lock, as far as can be told."""

    def release(self) -> None:
        """Give the lock up (a no-op when not held)."""


class PostgresLock:
    """A session advisory lock on its own connection, outside the pool, kept alive by TCP keepalives."""

    def __init__(self, url: str, key: int, name: str) -> None:
        self.key, self.name = key, name
        self.engine = create_engine(url, poolclass=NullPool, connect_args={
            "application_name": f"duban {name} {whoami()}"[:63],
            # Keepalives both ways, each noticing a silent peer within idle + interval * count = 25 s: the
            # server's side ends the session of a holder whose machine vanished, freeing the lock (its own
            # default waits about two hours); the holder's side notices that its database is gone.
            "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
            "options": "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3",
        })
        self.connection: Connection | None = None
        self.seen_holder: str | None = None

    def try_acquire(self) -> bool:
        if self.connection is not None:
            return self.still_held()
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = connection.scalar(text("SELECT pg_try_advisory_lock(:cls, :key)"),
                                      {"cls": LOCK_CLASS, "key": self.key})
            if taken:
                self.connection = connection
                return True
            self.seen_holder = self._holder(connection)
        finally:
            if self.connection is not connection:
                connection.close()
        return False

    def still_held(self) -> bool:
        if self.connection is None:
            return False
        try:
            return bool(self.connection.scalar(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                "AND classid = :cls AND objid = :key AND objsubid = 2 AND granted"),
                {"cls": LOCK_CLASS, "key": self.key}))
        except Exception as exc:  # noqa: BLE001 - a lost connection is a lost lock, whatever the error
            log.error("the %s lock's connection failed (%s): the lock is lost", self.name, exc)
            self._drop()
            return False

    def holder(self) -> str:
        if self.seen_holder is not None:
            return self.seen_holder  # read by the attempt that just failed
        with self.engine.connect() as connection:
            return self._holder(connection)

    def _holder(self, connection: Connection) -> str:
        found = connection.execute(text(
            "SELECT a.application_name, a.client_addr FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.classid = :cls AND l.objid = :key AND l.objsubid = 2 "
            "AND l.granted"), {"cls": LOCK_CLASS, "key": self.key}).first()
        if found is None:
            return "nobody (it was let go a moment ago)"
        return f"{found.application_name or 'a session'} from {found.client_addr or 'a local socket'}"

    def release(self) -> None:
        if self.connection is not None:
            try:
                self.connection.execute(text("SELECT pg_advisory_unlock(:cls, :key)"),
                                        {"cls": LOCK_CLASS, "key": self.key})
            except Exception:  # noqa: BLE001 - closing the session below frees it anyway
                pass
            self._drop()

    def _drop(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - already broken
                pass


class FileLock:
    """flock() on a file beside the SQLite database: SQLite runs on one machine, and so does its clock."""

    def __init__(self, path: Path, name: str) -> None:
        self.path, self.name = path, name
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        if self.fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"duban {self.name} {whoami()}\n".encode())
        self.fd = fd
        return True

    def still_held(self) -> bool:
        return self.fd is not None

    def holder(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8").strip() or "a process that has not written its name yet"
        except OSError:
            return "nobody"

    def release(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def leadership(name: str, key: int, url: str | None = None) -> Leadership:
    """The lock called `name` for this database: advisory on PostgreSQL, a file lock beside a SQLite file."""
    url = url or get_settings().database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return PostgresLock(url, key, name)
    database = parsed.database
    if not database or database == ":memory:":
        return FileLock(ROOT / "var" / f"{name}.lock", name)
    return FileLock(Path(f"{database}.{name}.lock"), name)
