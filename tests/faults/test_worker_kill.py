"""Lifecycle runs killed with their worker: mid-transition, and several in flight; the reconciler brings them back."""

import os
import signal
import time
from collections import Counter

from prefect.client.orchestration import get_client

from duban.settings import get_settings
from models.enums import Status
from tasks.runs import reconcile_runs
from tests.faults import invariants as inv
from tests.faults.processes import (
    freeze_inside_write,
    kill9,
    slow_inserts,
    wait_until,
    writer_inside,
    writes_held,
)
from tests.flows import driver as d
from tests.flows.test_lifecycle import dispatched_orders
from tests.notifications.smtp import use_settings
from tests.prefect_fixtures import production_database


def _state(order_id: int):
    with get_client(sync_client=True) as client:
        return client.read_flow_run(d.run_id(order_id)).state


def _waiting(order_id: int, wait: str) -> bool:
    state = _state(order_id)
    return state.is_paused() and (state.state_details.pause_key or "").startswith(f"{wait}-v{d.version(order_id)}-")


def _status(order_id: int) -> str:
    from duban.db import session_scope
    from models.work_order import WorkOrder

    with session_scope(readonly=True) as session:
        return session.get(WorkOrder, order_id).status


def _drive(ids: list[int], steps: list[tuple[str, object]]) -> None:
    """Take every order through the steps, acting whenever its run waits where the step expects."""
    for wait, act in steps:
        pending = set(ids)
        while pending:
            for order_id in list(pending):
                if _waiting(order_id, wait):
                    try:
                        act(order_id)
                    except RuntimeError as exc:  # the form's schema is stored a moment after the suspension
                        if "schema not found" not in str(exc):
                            raise
                        continue
                    pending.discard(order_id)
            time.sleep(0.2)


def _restart_and_reconcile(worker, monkeypatch) -> list[str]:
    use_settings(monkeypatch, lost_run_after_s="1")
    worker.start()
    time.sleep(1.1)  # the killed runs' last state change is now older than DUBAN_LOST_RUN_AFTER_S
    restarted = reconcile_runs().restarted
    get_settings.cache_clear()
    return restarted


@production_database
def test_lifecycle_run_killed_inside_a_decisions_transaction_applies_it_once_after_the_restart(
        smtp, worker, db_url, fault, monkeypatch):
    ids = dispatched_orders(3)
    _drive(ids, [("unit-sign", d.sign), ("unit-reply", d.reply)])
    wait_until(lambda: all(_waiting(o, "reply-review") for o in ids), "every run waiting for its reply review")
    before, numbers = inv.counts(), inv.numbers()
    fault.before(before)
    caught = None
    with slow_inserts(db_url, "events"):
        for order_id in ids:
            d.approve(order_id)
            slices = freeze_inside_write(worker.process.pid, db_url,
                                         also=lambda o=order_id: _status(o) == Status.REPLIED,
                                         missed=lambda o=order_id: _status(o) != Status.REPLIED)
            if slices is not None:
                caught = order_id
                kill9(worker.process)
                break
        assert caught is not None, "no run was caught inside the decision's transaction"
        wait_until(lambda: not writer_inside(db_url), "the killed run's transaction to end")
    first_run = d.run_id(caught)
    fault.injected(f"kill -9 of the worker while {d.number(caught)}'s run was inside the transaction applying "
                   "a supervisor's reply approval (event inserts slowed down to hold it open)")
    assert _status(caught) == Status.REPLIED and "reply_approved" not in d.events(caught)

    restarted = _restart_and_reconcile(worker, monkeypatch)
    assert d.number(caught) in restarted and d.run_id(caught) != first_run
    wait_until(lambda: _status(caught) != Status.REPLIED, "the decision applied by the restarted run", timeout=90)
    assert Counter(d.events(caught))["reply_approved"] == 1
    after = inv.counts()
    fault.after(after)
    approved = sum(1 for o in ids if "reply_approved" in d.events(o))
    assert after.orders == before.orders and after.transitions >= before.transitions + approved
    fault.checked(inv.no_order_lost(numbers), inv.no_transition_twice(),
                  f"the decision submitted before the kill was applied once, by the restarted run "
                  f"({len(restarted)} run restarted)")


@production_database
def test_worker_killed_with_runs_in_flight_loses_no_order_and_repeats_no_transition(smtp, worker, db_url, fault,
                                                                                    monkeypatch):
    ids = dispatched_orders(4)
    wait_until(lambda: all(_waiting(o, "unit-sign") for o in ids), "every run waiting for its unit")
    before, numbers = inv.counts(), inv.numbers()
    fault.before(before)
    os.kill(worker.process.pid, signal.SIGSTOP)  # every run woken before the worker polls again: one claim for all
    for order_id in ids:
        d.sign(order_id)  # committed at once; each wakes its run

    def claimed() -> list[str]:
        return [_state(o).type.value for o in ids]

    # A woken run reads the order, then records how far it has told its story: held at that write, the
    # worker has claimed every run (its event loop waits on the one that is running).
    with writes_held(db_url, "run_cursors"):
        os.kill(worker.process.pid, signal.SIGCONT)
        wait_until(lambda: set(claimed()) == {"PENDING", "RUNNING"}, "every woken run claimed by the worker")
        kill9(worker.process)
    wait_until(lambda: not writer_inside(db_url), "the killed worker's transactions to end")
    fault.injected(f"kill -9 of the worker with all {len(ids)} lifecycle runs in flight ({', '.join(claimed())}), "
                   "one of them held at its first write")
    signed = inv.counts()
    assert signed.transitions == before.transitions + len(ids), "the units' actions stay committed"

    restarted = _restart_and_reconcile(worker, monkeypatch)
    assert sorted(restarted) == sorted(d.number(o) for o in ids)
    wait_until(lambda: all(_waiting(o, "unit-reply") for o in ids), "every restarted run waiting for the reply")
    after = inv.counts()
    fault.after(after)
    assert after.transitions == signed.transitions, "the restarted runs changed nothing by themselves"
    assert all(Counter(d.events(o))["work_order_signed"] == 1 for o in ids)
    fault.checked(inv.no_order_lost(numbers), inv.no_transition_twice(),
                  f"{len(restarted)} runs restarted by the reconciler, each waiting for its unit's reply")
