"""The Prefect server down while units act in the portal: the actions commit; the runs catch up once it is back."""

import time
from collections import Counter
from urllib.parse import urlparse

import httpx

from models.enums import Status
from tasks.runs import reconcile_runs
from tests.faults import invariants as inv
from tests.faults.outage import Outage
from tests.faults.processes import Portal, terminate, wait_until
from tests.faults.test_portal_kill import _link, _status
from tests.faults.test_worker_kill import _state, _waiting
from tests.flows import driver as d
from tests.flows.test_lifecycle import dispatched_orders
from tests.prefect_fixtures import Worker, _wait, deployed, production_database

def _still_waiting(order_id: int, wait: str) -> bool:
    """Suspended where it was, on the order's version from before the unit acted."""
    state = _state(order_id)
    return state.is_paused() and (state.state_details.pause_key or "").startswith(f"{wait}-v")


# A unit's page must answer at once even when the orchestrator does not: the action is committed before.
PROMPT_S = 5.0


@production_database
def test_prefect_down_while_units_act_commits_their_actions_and_the_reconciler_resumes_the_runs(
        directory, prefect_client_env, smtp, fault, tmp_path, monkeypatch):
    outage = Outage(urlparse(prefect_client_env).port)
    worker = Worker(outage.api, directory, tmp_path)
    portal = Portal(tmp_path, monkeypatch)
    worker.start()
    portal.start(PREFECT_API_URL=outage.api)
    try:
        _wait(deployed, 90, "serving the deployments")
        ids = dispatched_orders(4)
        wait_until(lambda: all(_waiting(o, "unit-sign") for o in ids), "every run waiting for its unit", timeout=90)
        links = {o: _link(o) for o in ids}
        before, numbers = inv.counts(), inv.numbers()
        fault.before(before)

        took: dict[str, list[float]] = {}
        for mode, orders in (("refused", ids[:2]), ("bad_gateway", ids[2:])):
            outage.set(mode)
            for order_id in orders:
                token, number = links[order_id]
                start = time.monotonic()
                answer = httpx.post(f"{portal.base}/u/{token}/orders/{number}/sign", timeout=120)
                took.setdefault(mode, []).append(time.monotonic() - start)
                assert answer.status_code == 303, answer.text
        fault.injected("the Prefect server unreachable for the worker and the portal (connection refused, then a "
                       "proxy answering 502) while units signed 4 orders in the portal")
        fault.say("timing", ", ".join(f"{mode}: slowest POST {max(t):.2f} s" for mode, t in took.items()))
        assert all(_status(o) == Status.HANDLING for o in ids), "every unit's action committed"
        assert max(max(t) for t in took.values()) < PROMPT_S, took
        assert all(_still_waiting(o, "unit-sign") for o in ids), "nobody could wake the runs meanwhile"
        during = inv.counts()
        fault.say("down", during)
        assert during.transitions == before.transitions + len(ids)

        outage.set("up")
        woken = reconcile_runs().woken
        # The portal retries a 502 in the background for a while, so those runs may be awake already.
        assert set(woken) >= {d.number(o) for o in ids[:2]}
        wait_until(lambda: all(_waiting(o, "unit-reply") for o in ids), "every run caught up", timeout=90)
    finally:
        worker.stop()
        terminate(portal.process)
        outage.close()
    after = inv.counts()
    fault.after(after)
    assert after.transitions == during.transitions
    assert all(Counter(d.events(o))["work_order_signed"] == 1 for o in ids)
    fault.checked(inv.no_order_lost(numbers), inv.no_transition_twice(),
                  f"the reconciler woke {len(woken)} runs once the server was back; each now waits for the reply")
