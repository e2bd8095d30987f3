"""`duban serve`: every long-running part of Duban, or one role of it per machine."""

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from enum import StrEnum

from duban.executor import start_executor
from duban.orchestrator import ensure_server, prefect_env
from duban.processes import die_with_parent, stop_child

log = logging.getLogger(__name__)


class Role(StrEnum):
    ALL = "all"  # the embedded default: server if none, mail sink, portal, clock, relay and flows
    WEB = "web"  # the portal (unit pages and intake API)
    CLOCK = "clock"  # the APScheduler clock that wakes the supervision sweep
    RELAY = "relay"  # the notification relay
    WORKER = "worker"  # serves the Prefect deployments


# Services other parts of Duban add: role -> starter returning a stop function.
SERVICES: dict[Role, list[Callable[[ExitStack], None]]] = {role: [] for role in Role}


def child(stack: ExitStack, *args: str) -> subprocess.Popen:
    """Start a `duban ...` child process that is stopped when serve stops, or dies with it."""
    process = subprocess.Popen([sys.executable, "-m", "duban", *args], start_new_session=True,
                               preexec_fn=die_with_parent)
    stack.callback(stop_child, process)
    return process


def configure_logging() -> None:
    """Duban's own log lines to stderr, each with its process, for a service's journal or log file."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s")
    # Others' INFO lines are one per HTTP request or per wake-up of the clock's job: warnings only from them.
    for name in ("duban", "apscheduler.scheduler", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.INFO)


def drain_to_prefect(timeout_s: float = 10) -> None:
    """Send the log lines and events this process still holds to the Prefect server, waiting a bounded time."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=timeout_s)


def serve(role: Role, *, start_server: bool = True) -> None:
    """Run the role's services until interrupted."""
    from duban.settings import get_settings

    configure_logging()
    # Blocked before any thread starts, so every thread inherits it and sigwait below receives them.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    os.environ.update(prefect_env())
    settings = get_settings()
    if settings.migrate_on_start:
        from duban.db import get_engine
        from duban.schema import migrate

        migrate()
        get_engine().dispose()  # the services open their own connections; keep none idle in this process
        log.info("database at the newest revision")
    with ExitStack() as stack:
        if role == Role.ALL and start_server:
            server = ensure_server()
            if server is not None:
                stack.callback(stop_child, server)
                # Runs after every service stopped, before the server does: what they logged reaches it now,
                # instead of the process retrying a server that is gone for a minute at exit.
                stack.callback(drain_to_prefect)
        for each in set(Role) if role == Role.ALL else {role}:
            for start in SERVICES[each]:
                start(stack)
        if role in {Role.ALL, Role.WORKER}:
            stack.callback(start_executor(limit=settings.worker_limit, name=settings.worker_name or None))
        log.info("serving role %s", role.value)
        received = signal.sigwait({signal.SIGINT, signal.SIGTERM})
        log.info("stopping on %s", signal.Signals(received).name)
