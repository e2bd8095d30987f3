"""A lifecycle run killed mid-way comes back through the reconciler; stale decisions are refused."""

import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

from duban.settings import get_settings
from tasks.runs import reconcile_runs
from tasks.sweep import fire_due
from tests.flows import driver as d
from tests.flows.test_lifecycle import dispatched_orders
from tests.prefect_fixtures import free_port


def _state(order_id: int):
    with get_client(sync_client=True) as client:
        return client.read_flow_run(d.run_id(order_id)).state


def _wait_for(order_id: int, predicate, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _state(order_id)
        if predicate(state):
            return state
        time.sleep(0.02)
    raise TimeoutError(f"run of order {order_id} never reached the expected state; last {state}")


def test_killed_run_is_restarted_by_the_reconciler_without_repeating_a_transition(worker, monkeypatch):
    (order_id,) = dispatched_orders(1)
    _wait_for(order_id, lambda s: s.is_paused() and s.state_details.pause_key.startswith("unit-sign"))
    first_run = d.run_id(order_id)
    os.kill(worker.process.pid, signal.SIGSTOP)  # hold the executor so the woken run is caught in flight
    d.sign(order_id)
    os.kill(worker.process.pid, signal.SIGCONT)
    _wait_for(order_id, lambda s: s.is_pending() or s.is_running(), timeout=60)
    os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait(10)
    assert _state(order_id).type.value in {"PENDING", "RUNNING"}  # nobody will ever finish it
    events_before = d.events(order_id)

    monkeypatch.setenv("DUBAN_LOST_RUN_AFTER_S", "1")
    get_settings.cache_clear()
    time.sleep(1.5)
    worker.start()
    result = reconcile_runs()
    assert d.run_id(order_id) != first_run
    assert len(result.restarted) == 1
    state = _wait_for(order_id, lambda s: s.is_paused())
    assert state.state_details.pause_key.startswith("unit-reply")
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(first_run).state.is_cancelled()
    assert d.events(order_id) == events_before
    assert Counter(events_before)["work_order_signed"] == 1

    d.reply(order_id)
    _wait_for(order_id, lambda s: s.is_paused() and s.state_details.pause_key.startswith("reply-review"))
    assert Counter(d.events(order_id)) == Counter(events_before + ["reply_submitted"])


def test_stale_supervisor_decision_is_refused_and_the_form_offered_again(worker):
    (order_id,) = dispatched_orders(1)
    _wait_for(order_id, lambda s: s.is_paused() and s.state_details.pause_key.startswith("unit-sign"))
    d.ask_return(order_id)
    state = _wait_for(order_id, lambda s: s.is_paused() and s.state_details.pause_key.startswith("return-decision"))
    first_key = state.state_details.pause_key
    stale = d.version(order_id) - 1

    from prefect.flow_runs import resume_flow_run

    resume_flow_run(d.run_id(order_id), run_input={"decision": "reject", "reason": "旧表单", "decided_by": "赵督办",
                                                   "order_version": stale})
    state = _wait_for(order_id, lambda s: s.is_paused() and s.state_details.pause_key != first_key)
    assert state.state_details.pause_key.startswith("return-decision")  # offered again, nothing applied
    assert "return_rejected" not in d.events(order_id)
    refusals: list[str] = []
    deadline = time.monotonic() + 30
    while not refusals and time.monotonic() < deadline:  # run logs reach the server in batches
        time.sleep(1)
        with get_client(sync_client=True) as client:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[d.run_id(order_id)])))
        refusals = [log.message for log in logs if "refused" in log.message]
    assert refusals and "赵督办" in refusals[0] and "changed by someone else" in refusals[0]

    d.reject(order_id)
    _wait_for(order_id, lambda s: s.is_paused() and s.state_details.pause_key.startswith("unit-sign"))
    assert d.events(order_id).count("return_rejected") == 1


def test_a_case_the_clock_could_not_tell_the_run_about_is_offered_once_the_reconciler_wakes_it(worker):
    (order_id,) = dispatched_orders(1)
    _wait_for(order_id, lambda s: s.is_paused() and s.state_details.pause_key.startswith("unit-sign"))
    # The clock fires every rung of the sign-for deadline while it cannot reach Prefect: the case is opened
    # and the run, waiting for the unit, is not woken.
    unreachable = f"http://127.0.0.1:{free_port()}/api"
    with temporary_settings({PREFECT_API_URL: unreachable, PREFECT_CLIENT_MAX_RETRIES: 0}):
        fired = fire_due(order_id=order_id, now=datetime.now(UTC) + timedelta(days=10))
    assert "case" in {f.rung for f in fired}
    assert _state(order_id).state_details.pause_key.startswith("unit-sign")

    assert reconcile_runs().woken == [d.number(order_id)]
    _wait_for(order_id, lambda s: s.is_paused() and s.state_details.pause_key.startswith("case-decision"))
