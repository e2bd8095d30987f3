"""Waking the lifecycle runs of orders that units acted on, after the response, off the request's path.

A unit's submission is answered as soon as its transaction commits. A thread of the portal process
then reschedules the suspended runs of the orders acted on, all that queued meanwhile at once, over
one Prefect client it keeps open (a client opened per wake-up cost about 20 ms of CPU and over 100 ms
of wall time). A wake-up lost here, because the process ended first or Prefect was down, is not lost
for the order: the reconciler wakes every run that waits on an older version of its order.
"""

import logging
import threading
import time
from contextlib import suppress
from typing import Any

from tasks.runs import wake_order_runs

log = logging.getLogger(__name__)
GATHER_S = 0.05


class Waker:
    """A queue of orders whose runs should wake, drained by one daemon thread."""

    def __init__(self) -> None:
        self._pending: set[int] = set()
        self._busy = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._client: Any = None

    def wake_soon(self, order_id: int) -> None:
        """Queue the order's run to be woken; returns at once."""
        with self._changed:
            self._pending.add(order_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._drain, name="duban-waker", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def settle(self, timeout: float) -> bool:
        """Wait until every wake-up queued so far was tried; False if the time ran out first."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending and not self._busy, timeout)

    def _drain(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending)
            # A moment for the rest of a burst to queue: one query and one read of runs serve them all.
            time.sleep(GATHER_S)
            with self._changed:
                batch, self._pending, self._busy = sorted(self._pending), set(), True
            try:
                wake_order_runs(order_ids=batch, client=self._open_client)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive a database or network failure
                log.warning("could not wake the runs of orders %s (%s); the reconciler will", batch, exc)
                self._close_client()
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()

    def _open_client(self) -> Any:
        # Opened on the first order that has a run: a portal without Prefect never asks for a client.
        if self._client is None:
            from prefect.client.orchestration import get_client

            self._client = get_client(sync_client=True).__enter__()
        return self._client

    def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with suppress(Exception):
                client.__exit__(None, None, None)


WAKER = Waker()
