"""What units, staff and supervisors do to an order: each commits a transition, then wakes the order's run.

A unit's action may also run inside a caller's session (the portal uses its link up in the same
transaction): the caller then commits, and wakes the run once it has.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duban.db import session_scope
from duban.errors import InvalidTransition, NotFound, ValidationFailed
from models.base import utcnow
from models.directory import Category, Unit
from models.enums import ActorKind, Decision
from models.lifecycle import Action
from models.policy_values import category_matches
from models.requests import ExtensionRequest
from models.work_order import Assignment, WorkOrder
from tasks import held
from tasks.deadlines import order_policy, refresh_next_due
from tasks.outbox import enqueue_notice
from tasks.runs import wake_order_run
from tasks.transitions import Actor, Change, record_event, transition

ON_SITE_REJECTION = "在须现场核实的类别中退单未附现场核实证据（照片或核实说明），系统自动驳回"


@dataclass(frozen=True)
class Outcome:
    """What an action did, for the page or API that asked."""

    order_number: str
    status: str
    message: str
    auto_rejected: bool = False


def _committed(order_id: int, session: Session | None, work: Callable[[Session], Outcome]) -> Outcome:
    """Run the work in the caller's session (the caller commits and wakes), or commit it here and wake the run."""
    if session is not None:
        return work(session)
    with session_scope() as own:
        outcome = work(own)
    wake_order_run(order_id)
    return outcome


def _act(order_id: int, action: Action, actor: Actor, payload: dict[str, Any], at: datetime | None,
         expected_version: int | None, session: Session | None = None) -> Change:
    change = transition(order_id=order_id, action=action, actor=actor, at=at, payload=payload,
                        expected_version=expected_version, session=session)
    if session is None:
        wake_order_run(order_id)
    return change


def sign(*, order_id: int, actor: Actor, at: datetime | None = None, expected_version: int | None = None,
         session: Session | None = None) -> Outcome:
    """A unit signs for an order (签收)."""
    change = _act(order_id, Action.SIGN, actor, {}, at, expected_version, session)
    return Outcome(change.number, change.target, "已签收")


def reply(*, order_id: int, actor: Actor, text: str, contacted: bool, solved: bool,
          evidence_files: list[str] | None = None, at: datetime | None = None,
          expected_version: int | None = None, session: Session | None = None) -> Outcome:
    """The lead unit replies with the result (办结回复)."""
    payload = {"text": text, "contacted": contacted, "solved": solved, "evidence_files": evidence_files or []}
    change = _act(order_id, Action.REPLY, actor, payload, at, expected_version, session)
    return Outcome(change.number, change.target, "已提交办结回复")


def request_return(*, order_id: int, actor: Actor, reason: str, suggested_unit_code: str | None = None,
                   evidence_note: str = "", evidence_files: list[str] | None = None,
                   at: datetime | None = None, expected_version: int | None = None,
                   session: Session | None = None) -> Outcome:
    """A unit asks to give the order back; without on-site evidence where policy requires it, refused at once."""
    at = at or utcnow()

    def work(session: Session) -> Outcome:
        suggested = _unit_id(session, suggested_unit_code)
        payload = {"reason": reason, "suggested_unit_id": suggested, "evidence_note": evidence_note.strip(),
                   "evidence_files": evidence_files or []}
        change = transition(order_id=order_id, action=Action.REQUEST_RETURN, actor=actor, at=at, payload=payload,
                            expected_version=expected_version, session=session)
        order = session.get(WorkOrder, order_id)
        if needs_on_site_evidence(session, order) and not (payload["evidence_note"] or payload["evidence_files"]):
            change = transition(order_id=order_id, action=Action.REJECT_RETURN, actor=Actor.system(), at=at,
                                payload={"reason": ON_SITE_REJECTION, "automatic": True}, session=session)
            return Outcome(change.number, change.target, ON_SITE_REJECTION, auto_rejected=True)
        return Outcome(change.number, change.target, "退单申请已提交，等待热线办审核")

    return _committed(order_id, session, work)


def needs_on_site_evidence(session: Session, order: WorkOrder) -> bool:
    """Whether the order's category is one where units must go to the scene before returning it."""
    if order.category_id is None:
        return False
    code = held.row(session, Category, order.category_id).code
    on_site = order_policy(session, order).escalation.buck_passing.on_site_categories
    return any(category_matches(prefix, code) for prefix in on_site)


def _unit_id(session: Session, code: str | None) -> int | None:
    if not code:
        return None
    unit_id = session.scalar(select(Unit.id).where(Unit.code == code))
    if unit_id is None:
        raise NotFound(f"unknown unit code {code!r}")
    return unit_id


def request_extension(*, order_id: int, actor: Actor, reason: str, new_due_at: datetime,
                      at: datetime | None = None, session: Session | None = None) -> Outcome:
    """A unit asks for more time (延期); the deadline keeps running until a supervisor approves."""
    at = at or utcnow()
    if not reason.strip():
        raise ValidationFailed("an extension request needs a reason")

    def work(session: Session) -> Outcome:
        # Fresh from the locked row, not what the caller's session read before (the portal's check).
        order = session.scalars(select(WorkOrder).where(WorkOrder.id == order_id).with_for_update()
                                .execution_options(populate_existing=True)).one_or_none()
        if order is None:
            raise NotFound(f"work order id {order_id} does not exist")
        lead = _lead_of(session, order, actor)
        if order.status not in {"dispatched", "handling"}:
            raise InvalidTransition(order.number, order.status, "request_extension",
                                    "extensions are asked for while the order is being handled")
        if new_due_at <= (lead.due_at or at):
            raise ValidationFailed(f"the new deadline must be after the current one ({lead.due_at:%Y-%m-%d %H:%M} UTC)")
        limits = order_policy(session, order).extensions
        asked = session.scalar(select(func.count()).select_from(ExtensionRequest)
                               .where(ExtensionRequest.work_order_id == order.id))
        if asked >= limits.max_requests:
            raise ValidationFailed(f"this order already had {asked} extension requests; policy allows {limits.max_requests}")
        pending = session.scalar(select(func.count()).select_from(ExtensionRequest).where(
            ExtensionRequest.work_order_id == order.id, ExtensionRequest.decision == Decision.PENDING))
        if pending:
            raise ValidationFailed("an extension request for this order is already waiting for a decision")
        request = ExtensionRequest(work_order_id=order.id, assignment_id=lead.id, unit_id=lead.unit_id, reason=reason,
                                   requested_due_at=new_due_at, requested_at=at)
        session.add(request)
        order.updated_at = at  # a new version, so the order's run sees there is something to decide
        session.flush()
        record_event(session, order=order, name="extension_requested", actor=actor, at=at,
                     payload={"extension_request_id": request.id, "requested_due_at": new_due_at.isoformat()})
        return Outcome(order.number, order.status, "延期申请已提交，等待热线办审核")

    return _committed(order_id, session, work)


def _lead_of(session: Session, order: WorkOrder, actor: Actor) -> Assignment:
    lead = session.scalars(select(Assignment).where(
        Assignment.work_order_id == order.id, Assignment.unit_id == actor.unit_id, Assignment.active.is_(True),
        Assignment.role == "lead").execution_options(populate_existing=True)).first()
    if actor.kind != ActorKind.UNIT or lead is None:
        raise InvalidTransition(order.number, order.status, "request_extension",
                                f"{actor.id} is not the lead unit of this order")
    return lead


def decide_extension(*, request_id: int, actor: Actor, approve: bool, reason: str = "",
                     granted_due_at: datetime | None = None, at: datetime | None = None,
                     expected_version: int | None = None) -> Outcome:
    """A supervisor approves (moving the deadline) or rejects an extension request."""
    at = at or utcnow()
    if actor.kind != ActorKind.SUPERVISOR:
        raise InvalidTransition("-", "-", "decide_extension", "only a supervisor decides extensions")
    with session_scope() as session:
        request = session.get(ExtensionRequest, request_id)
        if request is None:
            raise NotFound(f"extension request {request_id} does not exist")
        order = session.scalars(select(WorkOrder).where(WorkOrder.id == request.work_order_id).with_for_update()
                                .execution_options(populate_existing=True)).one()
        if request.decision != Decision.PENDING:
            raise InvalidTransition(order.number, order.status, "decide_extension",
                                    f"extension request {request_id} was already {request.decision}")
        if expected_version is not None and order.version != expected_version:
            from duban.errors import Conflict

            raise Conflict(order.number, expected_version, order.version)
        request.decided_at, request.decided_by, request.decision_reason = at, actor.id, reason
        request.decision = Decision.APPROVED if approve else Decision.REJECTED
        assignment = session.get(Assignment, request.assignment_id)
        if approve:
            request.granted_due_at = granted_due_at or request.requested_due_at
            assignment.due_at = request.granted_due_at
            order.due_at = max(order.due_at or request.granted_due_at, request.granted_due_at)
            if order.status == "handling" and assignment.active:
                order.stage_due_at, order.stage_rung = request.granted_due_at, 0
        order.updated_at = at
        refresh_next_due(session, order)
        record_event(session, order=order, name="extension_approved" if approve else "extension_rejected",
                     actor=actor, at=at, unit_id=request.unit_id,
                     payload={"extension_request_id": request.id, "reason": reason,
                              "granted_due_at": request.granted_due_at.isoformat() if approve else None})
        unit = session.get(Unit, request.unit_id)
        enqueue_notice(session, kind="extension_decision", order=order, unit=unit, recipients=[unit.email], at=at,
                       extra={"approved": approve, "reason": reason,
                              "granted_due_at": request.granted_due_at.isoformat() if approve else None})
        number, status = order.number, order.status
    wake_order_run(request.work_order_id)
    return Outcome(number, status, "延期已批准" if approve else "延期申请被驳回")


def record_visit(*, order_id: int, actor: Actor, contacted: bool, resolved: bool, satisfaction: str,
                 comment: str = "", at: datetime | None = None, expected_version: int | None = None) -> Outcome:
    """Hotline staff record a return visit: not satisfied sends the order back for redo, else it closes."""
    action = Action.REDO if satisfaction == "unsatisfied" else Action.CLOSE
    payload = {"contacted": contacted, "resolved": resolved, "satisfaction": satisfaction, "comment": comment}
    change = _act(order_id, action, actor, payload, at, expected_version)
    return Outcome(change.number, change.target, "已退回重办" if action == Action.REDO else "已办结")
