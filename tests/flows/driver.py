"""Plays units, supervisors and hotline staff against real lifecycle runs, step by scripted step."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from prefect.client.orchestration import get_client
from sqlalchemy import select

from duban.db import session_scope
from models.directory import Unit
from models.records import Event, RunCursor
from models.work_order import WorkOrder
from tasks import actions
from tasks.orders import active_lead
from tasks.transitions import Actor


def lead(order_id: int) -> Actor:
    with session_scope(readonly=True) as session:
        assignment = active_lead(session, session.get(WorkOrder, order_id))
        unit = session.get(Unit, assignment.unit_id)
        return Actor.unit(unit.id, unit.code)


def version(order_id: int) -> int:
    with session_scope(readonly=True) as session:
        return session.get(WorkOrder, order_id).version


def run_id(order_id: int) -> UUID:
    with session_scope(readonly=True) as session:
        return UUID(session.get(RunCursor, order_id).flow_run_id)


def number(order_id: int) -> str:
    with session_scope(readonly=True) as session:
        return session.get(WorkOrder, order_id).number


def events(order_id: int) -> list[str]:
    with session_scope(readonly=True) as session:
        return list(session.scalars(select(Event.name).where(Event.work_order_id == order_id).order_by(Event.id)))


def resume(order_id: int, **values) -> None:
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(run_id(order_id), run_input={"decided_by": "王督办", "order_version": version(order_id), **values})


# The acts of each party, by the wait a run is suspended in.
def sign(o): actions.sign(order_id=o, actor=lead(o))
def reply(o): actions.reply(order_id=o, actor=lead(o), text="已到现场处理完毕", contacted=True, solved=True)
def ask_return(o): actions.request_return(order_id=o, actor=lead(o), reason="不属于本单位职责",
                                          evidence_note="已到现场核实", suggested_unit_code="urban_management")
def ask_extension(o): actions.request_extension(order_id=o, actor=lead(o), reason="需协调多个部门",
                                                new_due_at=datetime.now(UTC) + timedelta(days=30))
def approve(o): resume(o, decision="approve")
def approve_return(o): resume(o, decision="approve", new_unit="urban_management")
def reject(o): resume(o, decision="reject", reason="请先到现场核实")
def send_back(o): resume(o, decision="send_back", reason="回复过于简单，请补充处理结果")
def satisfied(o): resume(o, contacted=True, resolved=True, satisfaction="satisfied")
def unsatisfied(o): resume(o, contacted=True, resolved=False, satisfaction="unsatisfied", comment="没人来过")


@dataclass
class Script:
    """The acts that take one order through one scenario: (the wait the run must be in, what to do)."""

    order_id: int
    steps: list[tuple[str, Callable[[int], None]]]
    done: list[str] = field(default_factory=list)


def play(scripts: list[Script], timeout: float = 240) -> dict[int, str]:
    """Act whenever a run waits where its script expects; return each run's final state type."""
    deadline = time.monotonic() + timeout
    finals: dict[int, str] = {}
    with get_client(sync_client=True) as client:
        while len(finals) < len(scripts):
            if time.monotonic() > deadline:
                pending = {s.order_id: (s.steps[:1], s.done) for s in scripts if s.order_id not in finals}
                raise TimeoutError(f"scripts did not finish: {pending}")
            for script in scripts:
                if script.order_id in finals:
                    continue
                state = client.read_flow_run(run_id(script.order_id)).state
                if state.is_final():
                    finals[script.order_id] = state.type.value
                    continue
                if not state.is_paused() or not script.steps:
                    continue
                wait, act = script.steps[0]
                key = state.state_details.pause_key or ""
                if key.startswith(f"{wait}-v{version(script.order_id)}-"):
                    try:
                        act(script.order_id)
                    except RuntimeError as exc:
                        # The run is marked suspended a moment before its form's schema is stored.
                        if "schema not found" in str(exc):
                            continue
                        raise
                    script.done.append(wait)
                    script.steps.pop(0)
            time.sleep(0.5)
    return finals
