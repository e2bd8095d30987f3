"""Actor rights, versions, batches and concurrent writers on both databases (the matrix: test_transition_matrix)."""

import multiprocessing as mp

import pytest
from sqlalchemy import func, select

from duban.db import session_scope
from duban.errors import Conflict, InvalidTransition
from models.enums import ActorKind, Status
from models.lifecycle import TRANSITIONS, Action
from models.records import Event, Notification
from models.work_order import Assignment, WorkOrder
from tests.factories import PATHS, SUPERVISOR, lead_actor, order_in
from tasks.transitions import Actor, transition

def _counts(order_id: int) -> tuple[int, int, str, int]:
    with session_scope(readonly=True) as session:
        events = session.scalar(select(func.count()).select_from(Event).where(Event.work_order_id == order_id))
        notices = session.scalar(select(func.count()).select_from(Notification))
        order = session.get(WorkOrder, order_id)
        return events, notices, order.status, order.version


def test_every_status_is_reachable_by_its_path(directory):
    for status, path in PATHS.items():
        assert order_in(status) and (path == [] or TRANSITIONS[path[-1]].target == status)


def test_unit_cannot_act_on_an_order_it_does_not_hold(directory):
    order_id = order_in(Status.DISPATCHED)
    stranger = Actor(ActorKind.UNIT, "not-the-unit", unit_id=lead_actor(order_id).unit_id + 1000)
    with pytest.raises(InvalidTransition, match="holds no assignment"):
        transition(order_id=order_id, action=Action.SIGN, actor=stranger)
    assert _counts(order_id)[2] == Status.DISPATCHED


def test_supervisor_cannot_sign_for_a_unit(directory):
    order_id = order_in(Status.DISPATCHED)
    with pytest.raises(InvalidTransition, match="supervisor may not sign"):
        transition(order_id=order_id, action=Action.SIGN, actor=SUPERVISOR)


def test_stale_version_is_a_conflict(directory):
    order_id = order_in(Status.DISPATCHED)
    version = _counts(order_id)[3]
    transition(order_id=order_id, action=Action.SIGN, actor=lead_actor(order_id), expected_version=version)
    with pytest.raises(Conflict, match="changed by someone else"):
        transition(order_id=order_id, action=Action.REPLY, actor=lead_actor(order_id), expected_version=version,
                   payload={"text": "done"})


def test_batch_of_transitions_commits_once_and_rolls_back_whole(directory):
    ids = [order_in(Status.RECEIVED) for _ in range(3)]
    with pytest.raises(InvalidTransition):
        with session_scope() as session:
            for order_id in ids:
                transition(order_id=order_id, action=Action.DISPATCH, actor=Actor.system(), session=session)
            transition(order_id=ids[0], action=Action.DISPATCH, actor=Actor.system(), session=session)
    assert [_counts(i)[2] for i in ids] == [Status.RECEIVED] * 3
    with session_scope() as session:
        for order_id in ids:
            transition(order_id=order_id, action=Action.DISPATCH, actor=Actor.system(), session=session)
    assert [_counts(i)[2] for i in ids] == [Status.DISPATCHED] * 3


def test_dispatch_starts_the_clock_and_sets_next_due(directory):
    order_id = order_in(Status.DISPATCHED)
    with session_scope(readonly=True) as session:
        order = session.get(WorkOrder, order_id)
        lead = session.scalars(select(Assignment).where(Assignment.work_order_id == order_id)).first()
        assert order.stage_due_at == lead.sign_due_at > order.dispatched_at
        assert order.dispatched_at < order.next_due_at <= order.stage_due_at
        assert order.due_at == lead.due_at


def _contend(url: str, order_id: int, version: int, action: str, barrier, results) -> None:
    import os

    os.environ["DUBAN_DATABASE_URL"] = url
    from duban.db import reset_engines

    reset_engines()
    actor = lead_actor(order_id)
    payload = {"reason": "不属于本单位职责", "evidence_note": "现场核实"} if action == "request_return" else {}
    barrier.wait()
    try:
        transition(order_id=order_id, action=action, actor=actor, expected_version=version, payload=payload)
        results.put(("won", action))
    except (Conflict, InvalidTransition) as exc:
        results.put(("lost", type(exc).__name__))


def test_two_processes_conflicting_exactly_one_wins(directory):
    ctx = mp.get_context("spawn")
    for _ in range(3):
        order_id = order_in(Status.DISPATCHED)
        version = _counts(order_id)[3]
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_contend, args=(directory, order_id, version, action, barrier, results))
                 for action in ("sign", "request_return")]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        outcomes = sorted(results.get(timeout=5) for _ in procs)
        assert [o[0] for o in outcomes] == ["lost", "won"]
        assert outcomes[0][1] == "Conflict"
        events, _, status, new_version = _counts(order_id)
        assert new_version == version + 1
        assert status == (Status.HANDLING if outcomes[1][1] == "sign" else Status.RETURN_REQUESTED)
