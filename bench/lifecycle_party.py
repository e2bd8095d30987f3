"""The people of the lifecycle benchmark: units sign and reply, a supervisor reviews, staff visit."""

import time
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.flow_runs import resume_flow_run
from sqlalchemy import select

from duban.db import session_scope
from models.directory import Unit
from models.lifecycle import Action
from models.records import RunCursor
from models.work_order import WorkOrder
from tasks import actions
from tasks.orders import active_lead, create_order
from tasks.runs import start_order_runs
from tasks.transitions import Actor, transition


def wait_registered(timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with get_client(sync_client=True) as client:
                client.read_deployment_by_name("run-order-lifecycle/lifecycle")
                return
        except Exception:  # noqa: BLE001 - not registered yet
            time.sleep(0.5)
    raise TimeoutError("the worker did not register the deployments")


def dispatch(n: int) -> list[int]:
    ids = []
    with session_scope() as session:
        for i in range(n):
            order = create_order(session=session, channel="hotline", item_type="complaint",
                                 category_code="city_appearance_life_services.noise", content=f"噪音扰民 {i}")
            ids.append(order.id)
    with session_scope() as session:
        for order_id in ids:
            transition(order_id=order_id, action=Action.DISPATCH, actor=Actor.system(), session=session)
    start_order_runs(order_ids=ids)
    return ids


def _actor(session, order: WorkOrder) -> Actor:
    unit = session.get(Unit, active_lead(session, order).unit_id)
    return Actor.unit(unit.id, unit.code)


def play(ids: list[int], timeout: float = 1800) -> int:
    """Act on every waiting run until all are completed; return how many flow runs the orders took."""
    with session_scope(readonly=True) as session:
        runs = {UUID(r): o for o, r in session.execute(select(RunCursor.work_order_id, RunCursor.flow_run_id)
                                                       .where(RunCursor.work_order_id.in_(ids)))}
    acted: set[tuple[UUID, str]] = set()
    done: set[UUID] = set()
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while len(done) < len(runs):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(runs) - len(done)} orders did not finish")
            for start in range(0, len(runs), 200):
                batch = list(runs)[start:start + 200]
                for run in client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=batch)),
                                                 limit=200):
                    if run.state.is_completed():
                        done.add(run.id)
                    elif run.state.is_paused() and (run.id, run.state.state_details.pause_key) not in acted:
                        if _act(runs[run.id], run.id, run.state.state_details.pause_key):
                            acted.add((run.id, run.state.state_details.pause_key))
            time.sleep(0.5)
    return len(acted) + len(runs)


def _act(order_id: int, run_id: UUID, key: str) -> bool:
    with session_scope(readonly=True) as session:
        order = session.get(WorkOrder, order_id)
        version, actor = order.version, _actor(session, order)
    if f"-v{version}-" not in key:
        return False
    try:
        if key.startswith("unit-sign"):
            actions.sign(order_id=order_id, actor=actor)
        elif key.startswith("unit-reply"):
            actions.reply(order_id=order_id, actor=actor, text="已处理", contacted=True, solved=True)
        elif key.startswith("reply-review"):
            resume_flow_run(run_id, run_input={"decision": "approve", "decided_by": "bench", "order_version": version})
        elif key.startswith("return-visit"):
            resume_flow_run(run_id, run_input={"contacted": True, "resolved": True, "satisfaction": "satisfied",
                                               "decided_by": "bench", "order_version": version})
    except RuntimeError as exc:
        if "schema not found" in str(exc):
            return False
        raise
    return True
