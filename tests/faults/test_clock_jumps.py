"""The wall clock jumps forward and back under a running SLA clock: every rung fires once, and on time."""

from datetime import timedelta

import time_machine

from duban.clock import start_clock, stop_clock
from tests.faults import invariants as inv
from tests.faults.processes import wait_until
from tests.notifications.smtp import use_settings
from tests.tasks.supervision_kit import dispatched, escalations, local

DISPATCH = local(2021, 2, 10, 16, 0)   # the eve of the 2021 Spring Festival holiday
WARNING = local(2021, 2, 18, 8, 36)    # its sign-for warning, then the deadline, then the notice rung
DEADLINE = local(2021, 2, 18, 9, 0)
NOTICE = local(2021, 2, 22, 9, 0)
LADDER = ["warning", "overdue", "case", "notice"]


def _rungs(order_id: int) -> list[str]:
    return [rung for _, rung, _ in escalations(order_id)]


def test_wall_clock_jumping_forward_then_back_fires_each_rung_once_and_keeps_the_sweep_on_time(directory, fault,
                                                                                               monkeypatch):
    use_settings(monkeypatch, clock_runs_flows="false", clock_safety_interval_s="2")
    first = dispatched(DISPATCH)
    before, numbers = inv.counts(), inv.numbers()
    fault.before(before)
    try:
        with time_machine.travel(WARNING - timedelta(hours=1), tick=True) as traveller:
            start_clock()
            assert _rungs(first) == []
            traveller.move_to(NOTICE + timedelta(hours=1), tick=True)
            fault.injected("the wall clock jumped forward 4 days under the running clock (past all four rungs)")
            wait_until(lambda: _rungs(first) == LADDER, "the rungs after the jump forward", timeout=30)

            traveller.move_to(DEADLINE + timedelta(minutes=1), tick=True)
            second = dispatched(DISPATCH)  # due at once in the time set back: warning and overdue
            fault.injected("the wall clock set back 4 days, to just after the deadline; a new order due then")
            wait_until(lambda: _rungs(second) == LADDER[:2], "the new order's rungs after the jump back", timeout=30)
            assert _rungs(first) == LADDER, "nothing fired again, nothing was undone"
            # Stopped before travel ends: the way back to today would be one more jump of five years.
            stop_clock()
    finally:
        stop_clock()
    after = inv.counts()
    fault.after(after)
    assert after.rungs == len(LADDER) + 2
    fault.checked(inv.no_order_lost(numbers), inv.no_transition_twice(), inv.rungs_once(),
                  "the clock swept within its safety interval after each jump")
