"""Runs Duban's flow runs inside this process, many at once on one event loop.

Prefect's own runner and process worker start a new Python process for every flow run. A
lifecycle run is resumed four to eight times per order, and each new process pays about 1.3
CPU-seconds just to import Prefect: most of an order's cost. Duban's flows are `async def`
and wait on the database and the API, so this executor claims scheduled runs of Duban's
deployments exactly as a worker does (Scheduled -> Pending, which the server grants once) and
executes them with Prefect's own engine in-process. Several executors on several machines
share the work the same way; a crashed executor's runs are recovered by the reconciler. Each run
it takes is labelled `duban.worker` with the executor's name (the UI shows it on the run) and logged.

One part of Prefect's engine is left out here: for every run of a deployment it starts a thread with
an events websocket, to notice a suspension someone requests from outside while the run executes, and
it waits for that thread on the calling thread, twice per run. On a worker's own process that costs
nothing; on this shared event loop it stopped every other run meanwhile, and was most of the executor's
wall time. Duban's runs suspend themselves between steps that take milliseconds, so nothing is lost:
a Suspend pressed in the UI while a step executes is answered at the run's next state change.
"""

import asyncio
import logging
import os
import queue
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from duban.orchestrator import runner_deployments

log = logging.getLogger("duban.executor")


@contextmanager
def _not_observed(flow_run_id: UUID, suspension_request: Any, polling_interval: float = 10) -> Iterator[None]:
    """Stands in for prefect._flow_run_suspension.observe_flow_run_suspension in an executor's process."""
    yield


def _share_the_loop() -> None:
    """Keep Prefect's engine from blocking the executor's event loop on a suspension observer per run."""
    import prefect.flow_engine

    prefect.flow_engine.observe_flow_run_suspension = _not_observed


class Executor:
    """Claims and runs scheduled flow runs of the served deployments, up to `limit` at a time."""

    def __init__(self, *, limit: int = 16, poll_s: float = 1.0, name: str | None = None) -> None:
        _share_the_loop()
        self.limit, self.poll_s = limit, poll_s
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.flows: dict[UUID, Any] = {}
        self.in_flight: dict[UUID, asyncio.Task] = {}
        self.stopping = asyncio.Event()
        self.finished = 0

    async def register(self, names: set[str] | None = None) -> None:
        """Create or update the deployments (with their schedules) and remember their flows."""
        for flow, deployment in await runner_deployments(names):
            self.flows[await deployment.aapply()] = flow

    async def run(self) -> None:
        """Poll and execute until stopped; in-flight runs are given time to reach their next wait."""
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            while not self.stopping.is_set():
                free = self.limit - len(self.in_flight)
                if free > 0:
                    try:
                        await self._claim(client, free)
                    except Exception as exc:  # noqa: BLE001 - the server may be restarting; keep polling
                        log.warning("polling for scheduled runs failed: %s", exc)
                try:
                    await asyncio.wait_for(self.stopping.wait(), timeout=self.poll_s)
                except TimeoutError:
                    pass
            if self.in_flight:
                await asyncio.wait(list(self.in_flight.values()), timeout=30)
        log.info("worker %s stopping: %d flow runs executed", self.name, self.finished)

    async def _claim(self, client, free: int) -> None:
        from prefect.exceptions import Abort, Pause
        from prefect.states import Pending
        from prefect.utilities.engine import propose_state

        runs = await client.get_scheduled_flow_runs_for_deployments(
            deployment_ids=list(self.flows), scheduled_before=datetime.now(UTC), limit=free)
        for run in sorted(runs, key=lambda r: r.next_scheduled_start_time or datetime.min.replace(tzinfo=UTC)):
            if run.id in self.in_flight:
                continue
            try:
                state = await propose_state(client, Pending(), flow_run_id=run.id)
            except (Abort, Pause):
                # Another executor took it, and has perhaps already run it to its next wait (Pause);
                # both are PrefectSignals, BaseExceptions the polling loop would not survive.
                continue
            if not state.is_pending():
                continue
            log.info("worker %s took flow run %s (%s)", self.name, run.name, run.id)
            self.in_flight[run.id] = asyncio.create_task(self._execute(client, run), name=f"flow-run-{run.name}")

    async def _execute(self, client, run) -> None:
        from prefect.exceptions import Pause
        from prefect.flow_engine import run_flow_async

        flow = self.flows[run.deployment_id]
        # A run resumed on the executor that ran its last step keeps its label: one request fewer per step.
        if (run.labels or {}).get("duban.worker") != self.name:
            try:
                await client.update_flow_run_labels(run.id, {"duban.worker": self.name})
            except Exception as exc:  # noqa: BLE001 - a label is for people; the run goes ahead without it
                log.warning("could not label flow run %s: %s", run.name, exc)
        try:
            await run_flow_async(flow, flow_run=run, parameters=run.parameters, return_type="state")
        except Pause:
            pass  # suspended: the run waits on the server with no process, as intended
        except Exception:  # noqa: BLE001 - the engine has already recorded the run's failure
            log.exception("flow run %s ended with an error", run.name)
        finally:
            self.in_flight.pop(run.id, None)
            self.finished += 1


def start_executor(names: set[str] | None = None, *, limit: int = 16, poll_s: float = 1.0,
                   name: str | None = None) -> Callable[[], None]:
    """Run the executor on its own thread and event loop; return a function that stops it.

    Off the main thread, Prefect's engine leaves SIGTERM alone: one signal stops the executor
    cleanly instead of crashing whichever of the in-flight runs happened to be on the stack.
    """
    ready: "queue.Queue[tuple[asyncio.AbstractEventLoop, Executor] | BaseException]" = queue.Queue()

    async def main() -> None:
        executor = Executor(limit=limit, poll_s=poll_s, name=name)
        try:
            await executor.register(names)
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            ready.put(exc)
            return
        ready.put((asyncio.get_running_loop(), executor))
        log.info("worker %s executing %d deployments in-process, up to %d runs at a time", executor.name,
                 len(executor.flows), limit)
        try:
            await executor.run()
        except BaseException:
            # A worker that no longer executes must not look alive: stop the process, and its supervisor
            # (systemd) starts it again; the reconciler restarts the runs it had in flight.
            log.critical("worker %s stopped executing; stopping the process", executor.name, exc_info=True)
            os.kill(os.getpid(), signal.SIGTERM)
            raise

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="duban-executor", daemon=True)
    thread.start()
    started = ready.get()
    if isinstance(started, BaseException):
        raise started
    loop, executor = started

    def stop() -> None:
        if thread.is_alive():
            try:
                loop.call_soon_threadsafe(executor.stopping.set)
            except RuntimeError:
                pass  # the loop ended on its own between the check and the call
            thread.join(60)

    return stop
