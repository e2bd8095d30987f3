"""Supervision cases as supervisors decide them: acknowledge, new deadline, lead unit, close with a finding."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from duban.db import session_scope
from duban.errors import Conflict, Forbidden, InvalidTransition, ValidationFailed
from models.directory import Unit
from models.enums import CaseKind, CaseStatus
from models.lifecycle import Action
from models.supervision_records import CaseDecision
from models.work_order import Assignment
from tasks import actions
from tasks.cases import decide_case, list_cases, open_case, open_cases
from tasks.sweep import sweep
from tasks.transitions import transition
from tests.factories import STAFF, SUPERVISOR, T0, lead_actor
from tests.tasks.supervision_kit import dispatched, escalations, local, order, use_policy

DISPATCH = local(2021, 3, 1, 9, 0)      # Monday; sign-for due 11:00
CASE_AT = local(2021, 3, 2, 11, 0)      # one working day after the deadline


def _decisions() -> int:
    with session_scope(readonly=True) as session:
        return session.scalar(select(func.count()).select_from(CaseDecision))


def test_a_case_is_acknowledged_given_a_new_deadline_and_closed(directory):
    order_id = dispatched(DISPATCH)
    sweep(now=CASE_AT)
    [case] = open_cases(order_id=order_id)
    assert case.kind == CaseKind.SIGN_LIMBO and case.version == order(order_id).version

    with pytest.raises(Forbidden):
        decide_case(case_id=case.id, actor=STAFF, decision="acknowledge")
    with pytest.raises(ValidationFailed, match="unknown decision"):
        decide_case(case_id=case.id, actor=SUPERVISOR, decision="ignore")
    seen = decide_case(case_id=case.id, actor=SUPERVISOR, decision="acknowledge", expected_version=case.version,
                       at=CASE_AT + timedelta(minutes=5))
    assert seen.decision == "acknowledge" and seen.status == CaseStatus.OPEN
    with pytest.raises(Conflict):
        decide_case(case_id=case.id, actor=SUPERVISOR, decision="acknowledge", expected_version=case.version)
    assert _decisions() == 1

    new_due = local(2021, 3, 4, 17, 0)
    at = CASE_AT + timedelta(minutes=10)
    with pytest.raises(ValidationFailed, match="not after now"):
        decide_case(case_id=case.id, actor=SUPERVISOR, decision="set_deadline", new_due_at=at, at=at)
    decide_case(case_id=case.id, actor=SUPERVISOR, decision="set_deadline", new_due_at=new_due, at=at)
    moved = order(order_id)
    assert (moved.stage_started_at, moved.stage_due_at, moved.stage_rung) == (at, new_due, 0)
    with session_scope(readonly=True) as session:
        lead = session.scalars(select(Assignment).where(Assignment.work_order_id == order_id)).first()
        assert lead.sign_due_at == new_due
    # The ladder climbs again for the new deadline; the case it reaches is the one still open.
    sweep(now=local(2021, 3, 8, 17, 0))
    assert [rung for _, rung, _ in escalations(order_id)] == ["warning", "overdue", "case"] * 2
    assert len(list_cases(order_id=order_id, status=None)) == 1

    with pytest.raises(ValidationFailed, match="finding"):
        decide_case(case_id=case.id, actor=SUPERVISOR, decision="close")
    closed = decide_case(case_id=case.id, actor=SUPERVISOR, decision="close", finding="单位已签收并说明原因")
    assert closed.status == CaseStatus.CLOSED and open_cases(order_id=order_id) == []
    with pytest.raises(ValidationFailed, match="already closed"):
        decide_case(case_id=case.id, actor=SUPERVISOR, decision="acknowledge")
    assert _decisions() == 3


def test_a_buck_passing_case_closes_only_with_a_lead_unit_that_then_cannot_return(directory, tmp_path, monkeypatch):
    use_policy(tmp_path, monkeypatch, max_returns="2")
    order_id = dispatched(DISPATCH)
    actions.request_return(order_id=order_id, actor=lead_actor(order_id), reason="不归我管", evidence_note="现场核实",
                           at=DISPATCH + timedelta(minutes=10))
    transition(order_id=order_id, action=Action.APPROVE_RETURN, actor=SUPERVISOR, at=DISPATCH + timedelta(minutes=20),
               payload={"unit_code": "urban_management"})
    actions.request_return(order_id=order_id, actor=lead_actor(order_id), reason="应由住建处理",
                           evidence_note="现场核实", at=DISPATCH + timedelta(minutes=30))
    assert open_cases(order_id=order_id) == []  # detected where the return is decided
    transition(order_id=order_id, action=Action.REJECT_RETURN, actor=SUPERVISOR, at=DISPATCH + timedelta(minutes=40),
               payload={"reason": "属于城管职责"})
    actions.request_return(order_id=order_id, actor=lead_actor(order_id), reason="仍不属于本单位",
                           evidence_note="现场核实", at=DISPATCH + timedelta(minutes=50))
    [case] = open_cases(order_id=order_id)
    assert case.kind == CaseKind.BUCK_PASSING and order(order_id).status == "return_requested"
    with pytest.raises(ValidationFailed, match="designated lead unit"):
        decide_case(case_id=case.id, actor=SUPERVISOR, decision="close", finding="推诿属实")
    # Designating the unit that asked to return it refuses that return and makes it the lead for good.
    decide_case(case_id=case.id, actor=SUPERVISOR, decision="designate_lead", unit_code="urban_management",
                at=DISPATCH + timedelta(hours=1))
    designated = order(order_id)
    assert designated.status == "dispatched"
    with session_scope(readonly=True) as session:
        unit_id = session.scalar(select(Unit.id).where(Unit.code == "urban_management"))
        lead = session.scalars(select(Assignment).where(Assignment.work_order_id == order_id,
                                                        Assignment.active.is_(True))).one()
        assert designated.designated_unit_id == unit_id == lead.unit_id and lead.designated
    with pytest.raises(InvalidTransition, match="designated"):
        actions.request_return(order_id=order_id, actor=lead_actor(order_id), reason="再次退单",
                               evidence_note="现场核实", at=DISPATCH + timedelta(hours=2))
    closed = decide_case(case_id=case.id, actor=SUPERVISOR, decision="close",
                         finding="住建、城管互相推诿，指定城管首接负责")
    assert closed.status == CaseStatus.CLOSED and closed.designated_unit_code == "urban_management"

    # Designating another unit while a return waits approves the return to it, designated.
    other = dispatched(DISPATCH)
    sweep(now=CASE_AT)
    actions.request_return(order_id=other, actor=lead_actor(other), reason="不归我管", evidence_note="现场核实",
                           at=CASE_AT + timedelta(minutes=5))
    [limbo] = open_cases(order_id=other)
    view = decide_case(case_id=limbo.id, actor=SUPERVISOR, decision="close", unit_code="tianyuan_gov",
                       finding="改派天元区政府首接负责", at=CASE_AT + timedelta(minutes=30))
    assert view.designated_unit_code == "tianyuan_gov" and order(other).status == "dispatched"
    with pytest.raises(InvalidTransition, match="designated"):
        actions.request_return(order_id=other, actor=lead_actor(other), reason="不归我管", evidence_note="现场核实")


def test_a_unit_level_case_is_decided_with_its_own_version(directory):
    with session_scope() as session:
        unit = session.scalar(select(Unit).where(Unit.code == "hrss"))
        case_id, opened = open_case(session, kind=CaseKind.KB_STALE, order=None, unit=unit, at=T0,
                                    evidence={"reasons": ["知识库条目逾期未复核"]})
        again, reopened = open_case(session, kind=CaseKind.KB_STALE, order=None, unit=unit, at=T0, evidence={})
    assert opened and not reopened and again == case_id
    [case] = list_cases(unit_code="hrss")
    assert (case.order_number, case.version) == (None, 1)
    decide_case(case_id=case_id, actor=SUPERVISOR, decision="acknowledge", expected_version=1)
    with pytest.raises(Conflict):
        decide_case(case_id=case_id, actor=SUPERVISOR, decision="acknowledge", expected_version=1)
    with pytest.raises(ValidationFailed, match="concerns a unit"):
        decide_case(case_id=case_id, actor=SUPERVISOR, decision="set_deadline", new_due_at=T0 + timedelta(days=3))
    done = decide_case(case_id=case_id, actor=SUPERVISOR, decision="close", finding="已复核", expected_version=2)
    assert (done.status, done.version) == (CaseStatus.CLOSED, 3)
