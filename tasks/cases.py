"""Supervision cases (督办): opened by the ladder or by buck-passing detection, decided by supervisors."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from duban.db import session_scope
from duban.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from models.base import utcnow
from models.directory import Unit
from models.enums import ActorKind, AssignmentRole, CaseKind, CaseStatus, Decision, Status, label
from models.lifecycle import Action
from models.requests import ReturnRequest
from models.supervision import SupervisionCase
from models.supervision_records import CaseDecision
from models.work_order import Assignment, WorkOrder
from tasks.deadlines import current_stage, order_policy, refresh_next_due
from tasks.outbox import enqueue_notice
from tasks.policy_store import current_policy

DECISIONS = ("acknowledge", "set_deadline", "designate_lead", "close")
_EVENTS = {
    "acknowledge": "case_acknowledged",
    "set_deadline": "case_deadline_set",
    "designate_lead": "lead_unit_designated",
    "close": "case_closed",
}
# A lead unit can be designated only while a unit holds the order.
_DESIGNATABLE = frozenset({Status.DISPATCHED, Status.RETURN_REQUESTED, Status.HANDLING})


@dataclass(frozen=True)
class CaseView:
    """A case as a supervisor's form or the command line shows it."""

    id: int
    kind: str
    kind_label: str
    status: str
    level: int
    order_id: int | None
    order_number: str | None
    unit_code: str | None
    opened_at: datetime
    on_notice: bool
    evidence: dict[str, Any]
    decision: str
    finding: str
    version: int
    designated_unit_code: str | None


def _system_actor() -> Any:
    # Imported here: tasks.transitions imports tasks.effects, whose hooks import this module.
    from tasks.transitions import Actor

    return Actor.system()


def _record_event(session: Session, **kwargs: Any) -> None:
    from tasks.transitions import record_event

    record_event(session, **kwargs)


def open_case(
    session: Session, *, kind: CaseKind, order: WorkOrder | None, unit: Unit | None, at: datetime,
    evidence: dict[str, Any], once_per_order: bool = False, actor: Any = None,
) -> tuple[int, bool]:
    """Open a case unless one of this kind is already open (or, with once_per_order, ever was); (id, opened)."""
    query = select(SupervisionCase.id).where(SupervisionCase.kind == kind)
    if order is not None:
        query = query.where(SupervisionCase.work_order_id == order.id)
    else:
        query = query.where(SupervisionCase.work_order_id.is_(None), SupervisionCase.unit_id == unit.id)
    if not once_per_order:
        query = query.where(SupervisionCase.status == CaseStatus.OPEN)
    existing = session.scalar(query.order_by(SupervisionCase.id).limit(1))
    if existing is not None:
        return existing, False
    # A Core insert: inside transition() the order's own UPDATE must stay a single pending flush.
    case_id = session.scalar(insert(SupervisionCase.__table__).values(
        work_order_id=order.id if order else None, unit_id=unit.id if unit else None, kind=kind,
        status=CaseStatus.OPEN, opened_at=at, evidence=evidence, level=1, decision="", finding="", on_notice=False,
    ).returning(SupervisionCase.__table__.c.id))
    _record_event(session, order=order, name="case_opened", actor=actor or _system_actor(), at=at,
                  unit_id=unit.id if unit else None, payload={"case_id": case_id, "kind": kind, **_brief(evidence)})
    policy = order_policy(session, order) if order else current_policy(session).policy
    enqueue_notice(session, kind="supervision_case", order=order, unit=unit, recipients=policy.recipients.supervisors,
                   at=at, extra={"case_id": case_id, "case_kind": kind, "case_label": label(kind),
                                 "evidence": evidence})
    return case_id, True


def _brief(evidence: dict[str, Any]) -> dict[str, Any]:
    """The part of a case's evidence worth repeating in the event log."""
    return {k: evidence[k] for k in ("reasons", "stage", "due_at", "units") if k in evidence}


def open_cases(*, order_id: int) -> list[CaseView]:
    """The open cases on one order, oldest first: what the order's run offers a supervisor to decide."""
    return list_cases(order_id=order_id)


def list_cases(*, order_id: int | None = None, unit_code: str | None = None,
               status: CaseStatus | str | None = CaseStatus.OPEN) -> list[CaseView]:
    """Cases filtered by order, unit and status (None: any status), oldest first."""
    with session_scope(readonly=True) as session:
        query = select(SupervisionCase).order_by(SupervisionCase.id)
        if order_id is not None:
            query = query.where(SupervisionCase.work_order_id == order_id)
        if unit_code is not None:
            unit_id = session.scalar(select(Unit.id).where(Unit.code == unit_code))
            if unit_id is None:
                raise NotFound(f"unknown unit code {unit_code!r}")
            query = query.where(SupervisionCase.unit_id == unit_id)
        if status is not None:
            query = query.where(SupervisionCase.status == CaseStatus(status))
        return [case_view(session, case) for case in session.scalars(query)]


def case_view(session: Session, case: SupervisionCase) -> CaseView:
    """A case with what a form needs: its order's number, its unit, the version to send back."""
    order = session.get(WorkOrder, case.work_order_id) if case.work_order_id else None
    unit = session.get(Unit, case.unit_id) if case.unit_id else None
    designated = session.get(Unit, order.designated_unit_id) if order and order.designated_unit_id else None
    return CaseView(
        id=case.id, kind=case.kind, kind_label=label(CaseKind(case.kind)), status=case.status, level=case.level,
        order_id=case.work_order_id, order_number=order.number if order else None,
        unit_code=unit.code if unit else None, opened_at=case.opened_at, on_notice=case.on_notice,
        evidence=dict(case.evidence), decision=case.decision, finding=case.finding,
        version=order.version if order else _revision(session, case.id),
        designated_unit_code=designated.code if designated else None,
    )


def _revision(session: Session, case_id: int) -> int:
    """A unit-level case's version: one more than the decisions taken on it."""
    return 1 + session.scalar(select(func.count()).select_from(CaseDecision).where(CaseDecision.case_id == case_id))


def decide_case(
    *, case_id: int, actor: Any, decision: str, new_due_at: datetime | None = None, unit_code: str | None = None,
    finding: str = "", expected_version: int | None = None, at: datetime | None = None,
) -> CaseView:
    """A supervisor acknowledges a case, sets a new deadline, designates a lead unit, or closes it with a finding.

    expected_version is the order's version for a case on an order (what the order's run showed), the
    case's own version for a unit-level case; a stale one is a Conflict and nothing is written.
    """
    at = at or utcnow()
    if actor.kind != ActorKind.SUPERVISOR:
        raise Forbidden(f"{actor.id} is a {actor.kind}; only a supervisor decides supervision cases")
    if decision not in DECISIONS:
        raise ValidationFailed(f"unknown decision {decision!r}; expected one of {', '.join(DECISIONS)}")
    with session_scope() as session:
        case = session.get(SupervisionCase, case_id, with_for_update=True)
        if case is None:
            raise NotFound(f"supervision case {case_id} does not exist")
        order = _locked_order(session, case.work_order_id)
        if case.status != CaseStatus.OPEN:
            raise ValidationFailed(f"supervision case {case_id} is already closed ({case.finding})")
        current = order.version if order else _revision(session, case.id)
        if expected_version is not None and expected_version != current:
            raise Conflict(order.number if order else f"case {case_id}", expected_version, current)
        unit_id = None
        if decision == "set_deadline":
            _set_deadline(session, case, order, new_due_at, at)
        elif decision == "designate_lead" or (decision == "close" and unit_code):
            unit_id = _designate(session, case, order, unit_code, actor, at)
        if decision == "close":
            _close(session, case, order, finding, at)
        case.decision, case.decided_by = decision, actor.id
        if order is not None:
            order.updated_at = at  # a new version: the order's run re-reads, a stale form is refused
        session.add(CaseDecision(case_id=case.id, decision=decision, actor_kind=actor.kind, actor_id=actor.id, at=at,
                                 new_due_at=new_due_at if decision == "set_deadline" else None, unit_id=unit_id,
                                 finding=finding.strip()))
        _record_event(session, order=order, name=_EVENTS[decision], actor=actor, at=at, unit_id=case.unit_id,
                      payload={"case_id": case.id, "kind": case.kind, "finding": finding.strip(),
                               "new_due_at": new_due_at.isoformat() if new_due_at else None, "unit": unit_code})
        session.flush()
        view = case_view(session, case)
    if view.order_id is not None:
        from tasks.runs import wake_order_run

        wake_order_run(view.order_id)
    return view


def _locked_order(session: Session, order_id: int | None) -> WorkOrder | None:
    if order_id is None:
        return None
    return session.scalars(select(WorkOrder).where(WorkOrder.id == order_id).with_for_update()
                           .execution_options(populate_existing=True)).one()


def _active_lead(session: Session, order: WorkOrder) -> Assignment | None:
    return session.scalars(select(Assignment).where(
        Assignment.work_order_id == order.id, Assignment.active.is_(True), Assignment.role == AssignmentRole.LEAD)
    ).first()


def _set_deadline(session: Session, case: SupervisionCase, order: WorkOrder | None, new_due_at: datetime | None,
                  at: datetime) -> None:
    """A new deadline for the order's current stage, counted from now; the ladder starts again for it."""
    if order is None:
        raise ValidationFailed(f"case {case.id} concerns a unit, not an order: there is no deadline to set")
    if new_due_at is None or new_due_at.tzinfo is None:
        raise ValidationFailed("setting a deadline needs new_due_at, an aware date and time")
    if new_due_at <= at:
        raise ValidationFailed(f"the new deadline {new_due_at.isoformat()} is not after now ({at.isoformat()})")
    stage = current_stage(order)
    if stage is None:
        raise InvalidTransition(order.number, order.status, "set_deadline", "the order has no running deadline")
    lead = _active_lead(session, order)
    if lead is not None and stage == "sign_for":
        lead.sign_due_at = new_due_at
    elif lead is not None and stage == "handling":
        lead.due_at = new_due_at
        order.due_at = max(order.due_at or new_due_at, new_due_at)
    order.stage_started_at, order.stage_due_at, order.stage_rung = at, new_due_at, 0
    refresh_next_due(session, order)


def _designate(session: Session, case: SupervisionCase, order: WorkOrder | None, unit_code: str | None,
               actor: Any, at: datetime) -> int:
    """Make a unit the order's lead unit (首接负责), through transition() where the order must move."""
    from tasks.transitions import transition

    if order is None:
        raise ValidationFailed(f"case {case.id} concerns a unit, not an order: there is no lead unit to designate")
    if not unit_code:
        raise ValidationFailed("designating a lead unit needs unit_code")
    unit = session.scalar(select(Unit).where(Unit.code == unit_code))
    if unit is None:
        raise NotFound(f"unknown unit code {unit_code!r}; see `duban directory load`")
    status = Status(order.status)
    if status not in _DESIGNATABLE:
        raise InvalidTransition(order.number, status, "designate_lead",
                                "a lead unit is designated while a unit holds the order "
                                "(dispatched, return requested or handling)")
    lead = _active_lead(session, order)
    reason = f"督办案件{case.id}：指定{unit.name_zh}为首接负责单位"
    moved = {"unit_code": unit.code, "designate": True, "reason": reason}
    if lead is not None and lead.unit_id == unit.id:
        if status == Status.RETURN_REQUESTED:
            transition(order_id=order.id, action=Action.REJECT_RETURN, actor=actor, at=at, session=session,
                       payload={"reason": reason})
        lead.designated, order.designated_unit_id = True, unit.id
    elif status == Status.RETURN_REQUESTED:
        _pending_return(session, order)
        transition(order_id=order.id, action=Action.APPROVE_RETURN, actor=actor, at=at, session=session,
                   payload=moved)
    else:
        transition(order_id=order.id, action=Action.REDISPATCH, actor=actor, at=at, session=session, payload=moved)
    return unit.id


def _pending_return(session: Session, order: WorkOrder) -> ReturnRequest:
    request = session.scalar(select(ReturnRequest).where(
        ReturnRequest.work_order_id == order.id, ReturnRequest.decision == Decision.PENDING))
    if request is None:
        raise InvalidTransition(order.number, order.status, "designate_lead", "no pending return request")
    return request


def _close(session: Session, case: SupervisionCase, order: WorkOrder | None, finding: str, at: datetime) -> None:
    if not finding.strip():
        raise ValidationFailed("closing a case needs a finding: what was found and what follows")
    if case.kind == CaseKind.BUCK_PASSING and (order is None or order.designated_unit_id is None):
        raise ValidationFailed(f"buck-passing case {case.id} closes only with a designated lead unit; "
                               "designate one first, or give unit_code with the close decision")
    case.status, case.closed_at, case.finding = CaseStatus.CLOSED, at, finding.strip()
