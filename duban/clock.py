"""The SLA clock: APScheduler wakes the supervision sweep at the earliest deadline and on a safety interval.

The database holds the deadlines (work_orders.next_due_at); the job store, a table in the same
database, holds only the wake-up. A start after any outage wakes at once and the sweep fires every
rung that fell due meanwhile, each once. Several processes cannot share one job store, so a clock
started with `duban serve` or `duban clock` first takes the clock lock (duban/leader.py): the one
that gets it runs the scheduler, any other stands by and takes over when the lock comes free.
"""

import asyncio
import logging
import signal
import threading
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from duban.db import get_engine
from duban.leader import CLOCK_LOCK, Leadership, leadership
from duban.settings import get_settings
from models.base import utcnow
from models.supervision_records import ClockJob

log = logging.getLogger(__name__)

SWEEP_JOB_ID = "supervision-sweep"
_lock = threading.Lock()
_scheduler: BackgroundScheduler | None = None
# APScheduler's shutdown holds its job-store lock while it waits for a running job, and the job asks
# for that lock to move its next wake-up: so the clock lets a sweep in progress finish before shutting
# down, and a sweep that starts while the clock stops does nothing.
_sweeping = threading.Lock()
_stopping = threading.Event()


class _Scheduler(BackgroundScheduler):
    """Never sleeps past the safety interval, even when the wall clock is set back.

    APScheduler computes its next wake-up in wall-clock time: after the clock is set back a day, the
    sweep's next run lies a day ahead, and deadlines falling in between would wait for it.
    """

    def _process_jobs(self) -> float | None:
        wait = super()._process_jobs()
        interval = get_settings().clock_safety_interval_s
        job = self.get_job(SWEEP_JOB_ID)
        now = datetime.now(UTC)
        if job is not None and job.next_run_time is not None \
                and job.next_run_time > now + timedelta(seconds=interval):
            log.warning("the sweep's next wake-up %s is past the safety interval: the wall clock went back; "
                        "sweeping now", job.next_run_time.isoformat())
            self.modify_job(SWEEP_JOB_ID, next_run_time=now)
        return interval if wait is None else min(wait, interval)


def register_jobs(scheduler: BackgroundScheduler, *, first_run: datetime) -> None:
    """Every job of the clock, in one place: explicit ids, replaced on start, a missed run runs once, late."""
    scheduler.add_job(
        wake_sweep, trigger=IntervalTrigger(seconds=get_settings().clock_safety_interval_s, timezone=UTC),
        id=SWEEP_JOB_ID, name="supervision sweep", replace_existing=True, misfire_grace_time=None, coalesce=True,
        max_instances=1, next_run_time=first_run,
    )


def start_clock() -> BackgroundScheduler:
    """Start the clock in this process (`duban serve` and `duban clock` call it); idempotent."""
    global _scheduler
    with _lock:
        if _scheduler is not None and _scheduler.running:
            return _scheduler
        scheduler = _Scheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=get_engine(), tablename=ClockJob.__tablename__)},
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        scheduler.start(paused=True)
        register_jobs(scheduler, first_run=_first_wake(utcnow()))
        scheduler.resume()
        _scheduler = scheduler
    log.info("clock started: sweep at %s, then at least every %d s", scheduler.get_job(SWEEP_JOB_ID).next_run_time,
             get_settings().clock_safety_interval_s)
    return scheduler


def stop_clock() -> None:
    """Stop the clock, letting a sweep in progress finish; its job stays in the store for the next start."""
    global _scheduler
    _stopping.set()
    try:
        with _sweeping:
            with _lock:
                scheduler, _scheduler = _scheduler, None
            if scheduler is not None and scheduler.running:
                scheduler.shutdown(wait=True)
                log.info("clock stopped")
    finally:
        _stopping.clear()


def lead_or_stand_by(stopped: threading.Event, lock: Leadership | None = None) -> None:
    """Run the clock while holding the clock lock; without it, stand by and poll until it comes free."""
    lock = lock or leadership("clock", CLOCK_LOCK)
    poll = get_settings().clock_standby_poll_s
    waiting_on = None
    while not stopped.is_set():
        try:
            acquired = lock.try_acquire()
            holder = None if acquired else lock.holder()
        except Exception as exc:  # noqa: BLE001 - the database may be restarting; try again
            log.warning("cannot reach the clock lock (%s); trying again in %.1f s", exc, poll)
            stopped.wait(poll)
            continue
        if not acquired:
            if holder != waiting_on:
                log.info("clock standing by: the clock lock is held by %s; checking every %.1f s", holder, poll)
                waiting_on = holder
            stopped.wait(poll)
            continue
        log.info("clock active: this process holds the clock lock%s", f" (taken over from {waiting_on})"
                 if waiting_on else "")
        waiting_on = None
        try:
            start_clock()
            while not stopped.wait(poll):
                if not lock.still_held():
                    # Another clock may take it now; two sweeps meanwhile still fire each rung once.
                    log.error("clock lost the clock lock; stopping the scheduler and standing by")
                    break
        except Exception:  # noqa: BLE001 - give the lock up so a healthy clock can take over
            log.exception("clock failed; giving up the clock lock")
            stopped.wait(poll)
        finally:
            stop_clock()
            lock.release()


def serve_clock(stack: ExitStack) -> None:
    """Run the clock (or its stand-by) as one of `duban serve`'s services; it stops when serve does."""
    stopped = threading.Event()
    thread = threading.Thread(target=lead_or_stand_by, args=(stopped,), name="duban-clock", daemon=True)
    thread.start()

    def stop() -> None:
        stopped.set()
        thread.join(120)

    stack.callback(stop)


def next_wake() -> datetime | None:
    """When the running clock wakes the sweep next (None when it is not running)."""
    scheduler = _scheduler
    job = scheduler.get_job(SWEEP_JOB_ID) if scheduler is not None else None
    return job.next_run_time if job is not None else None


def _first_wake(now: datetime) -> datetime:
    """At once when a deadline passed while the clock was stopped, else the earliest deadline or the interval."""
    from tasks.sweep import earliest_due

    interval = now + timedelta(seconds=get_settings().clock_safety_interval_s)
    earliest = earliest_due()
    return min(interval, max(earliest, now)) if earliest is not None else interval


def wake_sweep() -> None:
    """The clock's job: sweep when something is due, then wake again at the earliest deadline."""
    from tasks.sweep import anything_due, earliest_due

    if _stopping.is_set() or not _sweeping.acquire(blocking=False):
        return
    try:
        now = utcnow()
        if anything_due(now=now):
            run_sweep(now=now)
        if _stopping.is_set():
            return
        earliest = earliest_due()
        scheduler, wake = _scheduler, next_wake()
        # A deadline still passed after the sweep is an order that failed: it waits for the safety interval.
        if scheduler is not None and earliest is not None and wake is not None and utcnow() < earliest < wake:
            scheduler.modify_job(SWEEP_JOB_ID, next_run_time=earliest)
    finally:
        _sweeping.release()


def run_sweep(*, now: datetime) -> None:
    """Sweep as a Prefect flow run (so it shows in the UI), or in this process when Prefect is off or down."""
    from tasks.sweep import sweep

    settings = get_settings()
    if settings.clock_runs_flows:
        try:
            from flows.supervision import sweep_deadlines

            asyncio.run(sweep_deadlines(now=now))
            return
        except Exception as exc:  # noqa: BLE001 - a deadline must not wait for the orchestrator
            log.warning("sweep flow run failed (%s); sweeping in this process instead", exc)
    report = sweep(now=now, batch_size=settings.sweep_batch_size)
    if report.fired or report.failed:
        log.info("sweep at %s: %s, %d failed", now.isoformat(), report.counts(), len(report.failed))


def run_clock() -> None:
    """Run the clock, or stand by for it, in the foreground until interrupted (`duban clock`)."""
    from duban.serve import configure_logging

    configure_logging()
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    lead_or_stand_by(stopped)
