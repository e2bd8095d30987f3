"""One portal writer at a time on SQLite, across the portal's worker processes.

SQLite lets one writer in at a time, and a writer that finds the database locked sleeps in SQLite's
busy handler in steps that grow to 100 ms: with two portal workers that sleep was the slowest
hundredth of the submissions. The portal's writers queue on a lock file beside the database
instead, and the kernel wakes the next one the moment the last is done. PostgreSQL locks rows, not
the database, and needs none of this.
"""

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from duban.db import get_engine

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
