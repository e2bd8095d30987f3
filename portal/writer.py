"""One portal writer at a time on SQLite, across the portal's worker processes; a submission's transactions.

SQLite lets one writer in at a time, and a writer that finds the database locked sleeps in SQLite's
busy handler in steps that grow to 100 ms: with two portal workers that sleep was the slowest
hundredth of the submissions. The portal's writers queue on a lock file beside the database
instead, and the kernel wakes the next one the moment the last is done. PostgreSQL locks rows, not
the database, and needs none of this.
"""

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from sqlalchemy.orm import Session

from duban.db import get_engine, session_scope

_THREADS = threading.Lock()
# The lock file of the database in use, opened once: (database path, file descriptor).
_OPEN: list[tuple[str, int]] = []


@contextmanager
def one_writer() -> Iterator[None]:
    """Hold the portal's write turn for one write transaction (nothing to hold on PostgreSQL)."""
    url = get_engine().url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        yield
        return
    with _THREADS:
        if not _OPEN or _OPEN[0][0] != url.database:
            while _OPEN:
                os.close(_OPEN.pop()[1])
            _OPEN.append((url.database, os.open(f"{url.database}-writer", os.O_RDWR | os.O_CREAT, 0o600)))
        handle = _OPEN[0][1]
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def reading_then_writing() -> Iterator[tuple[Session, Callable[[], AbstractContextManager[Session]]]]:
    """A session to check a submission in, and one to act in: the same transaction on PostgreSQL.

    PostgreSQL reads without locking, so the check and the action share one transaction there (a
    connection, a begin and a commit fewer, and what the check read stays in the session). On SQLite
    the check's read transaction ends before the write turn, which the portal's processes take one at
    a time, so no thread holds two connections.
    """
    if get_engine().url.get_backend_name() != "sqlite":
        with session_scope() as session:
            yield session, lambda: nullcontext(session)
        return
    with session_scope(readonly=True) as reading:
        @contextmanager
        def writing() -> Iterator[Session]:
            reading.close()
            with one_writer(), session_scope() as session:
                yield session

        yield reading, writing
