"""Side effects of each transition, as small rules keyed by action, run inside transition()."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.errors import InvalidTransition, NotFound
from models.directory import Category, District, Unit
from models.enums import AssignmentRole, Decision, Satisfaction
from models.lifecycle import Action
from models.requests import ReturnRequest, ReturnVisit, Review
from models.work_order import Assignment, WorkOrder
from tasks import held
from tasks.deadlines import order_policy, set_stage, stage_deadline
from tasks.outbox import enqueue_notice

# Payload keys that may hold what a citizen or a unit typed: kept in the event only as given, never phones.
_PRIVATE_KEYS = frozenset({"citizen_name", "citizen_phone", "citizen_email"})


@dataclass
class Ctx:
    session: Session
    order: WorkOrder
    actor: Any
    at: datetime
    payload: dict[str, Any]


Effect = Callable[[Ctx], dict[str, Any]]
_EFFECTS: dict[Action, Effect] = {}


def effect(action: Action) -> Callable[[Effect], Effect]:
    def register(fn: Effect) -> Effect:
        _EFFECTS[action] = fn
        return fn
    return register


def apply(session: Session, *, order: WorkOrder, action: Action, actor: Any, at: datetime,
          payload: dict[str, Any]) -> dict[str, Any]:
    """Run the action's rule; what it returns is added to the event's payload."""
    rule = _EFFECTS.get(action)
    return rule(Ctx(session, order, actor, at, payload)) if rule else {}


def loggable(payload: dict[str, Any]) -> dict[str, Any]:
    """The part of an action's payload fit for the event log."""
    return {k: v for k, v in payload.items() if k not in _PRIVATE_KEYS}


def _lead(ctx: Ctx) -> Assignment:
    cached = held.assignments_of(ctx.session, ctx.order.id)
    if cached is not None:
        lead = next((a for a in cached if a.active is not False and a.role == AssignmentRole.LEAD), None)
    else:
        lead = ctx.session.scalars(
            select(Assignment).where(Assignment.work_order_id == ctx.order.id, Assignment.active.is_(True),
                                     Assignment.role == AssignmentRole.LEAD)
        ).first()
    if lead is None:
        raise InvalidTransition(ctx.order.number, ctx.order.status, "lookup", "the order has no active lead unit")
    return lead


def _unit(session: Session, unit_id: int | None = None, code: str | None = None) -> Unit:
    if not unit_id and code:
        unit_id = held.unit_id(session, code)
    unit = held.row(session, Unit, unit_id) if unit_id else session.scalar(select(Unit).where(Unit.code == code))
    if unit is None:
        raise NotFound(f"unit {unit_id or code!r} does not exist; load it with `duban directory load`")
    return unit


def _assign(ctx: Ctx, unit: Unit, role: AssignmentRole, *, designated: bool = False) -> Assignment:
    """Hand the order to a unit: its own sign-for and handling deadlines counted from now."""
    assignment = Assignment(
        work_order_id=ctx.order.id, unit_id=unit.id, role=role, dispatched_at=ctx.at, designated=designated,
        sign_due_at=stage_deadline(ctx.session, ctx.order, "sign_for", ctx.at),
        due_at=stage_deadline(ctx.session, ctx.order, "handling", ctx.at),
    )
    ctx.session.add(assignment)
    held.add_assignment(ctx.session, assignment)
    notice = "dispatch" if role == AssignmentRole.LEAD else "dispatch_assist"
    enqueue_notice(ctx.session, kind=notice, order=ctx.order, unit=unit, recipients=[unit.email], at=ctx.at,
                   extra={"role": role.value, "sign_due_at": assignment.sign_due_at.isoformat(),
                          "handling_due_at": assignment.due_at.isoformat()})
    return assignment


def _end_lead(ctx: Ctx, *, returned: bool) -> Assignment:
    lead = _lead(ctx)
    lead.active, lead.ended_at = False, ctx.at
    if returned:
        lead.returned_at = ctx.at
    return lead


def _route(ctx: Ctx) -> tuple[Unit, list[Unit]]:
    """The lead and assisting units: named in the payload, else by the policy's routing catalogue."""
    p = ctx.payload
    if p.get("unit_id") or p.get("unit_code"):
        lead = _unit(ctx.session, p.get("unit_id"), p.get("unit_code"))
        assist = [_unit(ctx.session, code=c) for c in p.get("assist", [])]
        return lead, assist
    category = held.row(ctx.session, Category, ctx.order.category_id) if ctx.order.category_id else None
    district = held.row(ctx.session, District, ctx.order.district_id) if ctx.order.district_id else None
    lead_code, assist_codes = order_policy(ctx.session, ctx.order).route(
        category.code if category else "", district.code if district else None)
    return _unit(ctx.session, code=lead_code), [_unit(ctx.session, code=c) for c in assist_codes if c != lead_code]


@effect(Action.DISPATCH)
def _dispatch(ctx: Ctx) -> dict[str, Any]:
    lead_unit, assist_units = _route(ctx)
    lead = _assign(ctx, lead_unit, AssignmentRole.LEAD)
    for unit in assist_units:
        _assign(ctx, unit, AssignmentRole.ASSIST)
    ctx.order.dispatched_at = ctx.at
    ctx.order.due_at = lead.due_at
    set_stage(ctx.order, started=ctx.at, due=lead.sign_due_at)
    return {"unit": lead_unit.code, "assist": [u.code for u in assist_units], "due_at": lead.due_at.isoformat()}


@effect(Action.SIGN)
def _sign(ctx: Ctx) -> dict[str, Any]:
    lead = _lead(ctx)
    lead.signed_at = ctx.at
    # The handling clock started at dispatch: time spent before signing counts.
    set_stage(ctx.order, started=lead.dispatched_at, due=lead.due_at)
    return {"unit": ctx.actor.id}


@effect(Action.REQUEST_RETURN)
def _request_return(ctx: Ctx) -> dict[str, Any]:
    lead = _lead(ctx)
    p = ctx.payload
    if not str(p.get("reason", "")).strip():
        raise InvalidTransition(ctx.order.number, ctx.order.status, Action.REQUEST_RETURN,
                                "a return request needs a reason")
    request = ReturnRequest(
        work_order_id=ctx.order.id, assignment_id=lead.id, unit_id=lead.unit_id, reason=p["reason"],
        suggested_unit_id=p.get("suggested_unit_id"), evidence_note=p.get("evidence_note", ""),
        evidence_files=p.get("evidence_files", []), requested_at=ctx.at,
    )
    ctx.session.add(request)
    ctx.session.flush()
    set_stage(ctx.order, started=ctx.at, due=stage_deadline(ctx.session, ctx.order, "return_decision", ctx.at))
    return {"return_request_id": request.id, "unit": ctx.actor.id}


def _pending_return(ctx: Ctx) -> ReturnRequest:
    request = ctx.session.scalars(
        select(ReturnRequest).where(ReturnRequest.work_order_id == ctx.order.id,
                                    ReturnRequest.decision == Decision.PENDING).order_by(ReturnRequest.id.desc())
    ).first()
    if request is None:
        raise InvalidTransition(ctx.order.number, ctx.order.status, "decide_return", "no pending return request")
    return request


@effect(Action.APPROVE_RETURN)
def _approve_return(ctx: Ctx) -> dict[str, Any]:
    request = _pending_return(ctx)
    new_unit_id = ctx.payload.get("unit_id") or request.suggested_unit_id
    if new_unit_id is None and not ctx.payload.get("unit_code"):
        raise InvalidTransition(ctx.order.number, ctx.order.status, Action.APPROVE_RETURN,
                                "approving a return needs the unit to re-dispatch to")
    new_unit = _unit(ctx.session, new_unit_id, ctx.payload.get("unit_code"))
    old = _end_lead(ctx, returned=True)
    if new_unit.id == old.unit_id:
        raise InvalidTransition(ctx.order.number, ctx.order.status, Action.APPROVE_RETURN,
                                "re-dispatch to the unit that returned it; reject the return instead")
    request.decision, request.decided_at, request.decided_by = Decision.APPROVED, ctx.at, ctx.actor.id
    request.decision_reason, request.new_unit_id = ctx.payload.get("reason", ""), new_unit.id
    ctx.order.return_count += 1
    designated = bool(ctx.payload.get("designate"))
    lead = _assign(ctx, new_unit, AssignmentRole.LEAD, designated=designated)
    if designated:
        ctx.order.designated_unit_id = new_unit.id
    set_stage(ctx.order, started=ctx.at, due=lead.sign_due_at)
    old_unit = held.row(ctx.session, Unit, old.unit_id)
    enqueue_notice(ctx.session, kind="return_decision", order=ctx.order, unit=old_unit,
                   recipients=[old_unit.email], at=ctx.at, extra={"approved": True, "new_unit": new_unit.name_zh})
    return {"from_unit": old_unit.code, "unit": new_unit.code, "designated": designated} | _after_return(ctx)


@effect(Action.REJECT_RETURN)
def _reject_return(ctx: Ctx) -> dict[str, Any]:
    request = _pending_return(ctx)
    automatic = bool(ctx.payload.get("automatic"))
    request.decision = Decision.AUTO_REJECTED if automatic else Decision.REJECTED
    request.decided_at, request.decided_by = ctx.at, ctx.actor.id
    request.decision_reason = ctx.payload.get("reason", "")
    lead = _lead(ctx)
    # Back to the same unit, whose sign-for deadline kept running while it argued.
    set_stage(ctx.order, started=lead.dispatched_at, due=lead.sign_due_at)
    unit = held.row(ctx.session, Unit, lead.unit_id)
    enqueue_notice(ctx.session, kind="return_decision", order=ctx.order, unit=unit, recipients=[unit.email],
                   at=ctx.at, extra={"approved": False, "reason": request.decision_reason, "automatic": automatic})
    return {"unit": unit.code, "automatic": automatic} | _after_return(ctx)


@effect(Action.REDISPATCH)
def _redispatch(ctx: Ctx) -> dict[str, Any]:
    new_unit = _unit(ctx.session, ctx.payload.get("unit_id"), ctx.payload.get("unit_code"))
    old = _end_lead(ctx, returned=False)
    designated = bool(ctx.payload.get("designate"))
    lead = _assign(ctx, new_unit, AssignmentRole.LEAD, designated=designated)
    if designated:
        ctx.order.designated_unit_id = new_unit.id
    set_stage(ctx.order, started=ctx.at, due=lead.sign_due_at)
    return {"from_unit": held.row(ctx.session, Unit, old.unit_id).code, "unit": new_unit.code, "designated": designated}


@effect(Action.REPLY)
def _reply(ctx: Ctx) -> dict[str, Any]:
    text = str(ctx.payload.get("text", "")).strip()
    if not text:
        raise InvalidTransition(ctx.order.number, ctx.order.status, Action.REPLY, "a reply needs its text")
    lead = _lead(ctx)
    lead.replied_at, lead.reply_text = ctx.at, text
    lead.reply_contacted = ctx.payload.get("contacted")
    lead.reply_solved = ctx.payload.get("solved")
    review = order_policy(ctx.session, ctx.order).stages_for(ctx.order.item_type).review
    due = stage_deadline(ctx.session, ctx.order, "review", ctx.at) if review == "human" else None
    set_stage(ctx.order, started=ctx.at if due else None, due=due)
    return {"unit": ctx.actor.id, "on_time": bool(lead.due_at and ctx.at <= lead.due_at), "review": review}


@effect(Action.APPROVE_REPLY)
def _approve_reply(ctx: Ctx) -> dict[str, Any]:
    lead = _lead(ctx)
    ctx.session.add(Review(work_order_id=ctx.order.id, assignment_id=lead.id, approved=True,
                           automatic=ctx.payload.get("automatic", False), reason=ctx.payload.get("reason", ""),
                           reviewed_by=ctx.actor.id, reviewed_at=ctx.at))
    visit = wants_visit(ctx.session, ctx.order)
    ctx.order.extra = {**ctx.order.extra, "visit": visit}
    due = stage_deadline(ctx.session, ctx.order, "return_visit", ctx.at) if visit else None
    set_stage(ctx.order, started=ctx.at if visit else None, due=due)
    return {"visit": visit}


def wants_visit(session: Session, order: WorkOrder) -> bool:
    """Whether this order is in the policy's return-visit share; stable for the order number."""
    share = order_policy(session, order).stages_for(order.item_type).return_visit_share
    digest = sum(order.number.encode()) * 2654435761 % 10_000
    return digest < share * 10_000


@effect(Action.SEND_BACK)
def _send_back(ctx: Ctx) -> dict[str, Any]:
    reason = str(ctx.payload.get("reason", "")).strip()
    if not reason:
        raise InvalidTransition(ctx.order.number, ctx.order.status, Action.SEND_BACK, "sending back needs a reason")
    lead = _lead(ctx)
    ctx.session.add(Review(work_order_id=ctx.order.id, assignment_id=lead.id, approved=False, reason=reason,
                           reviewed_by=ctx.actor.id, reviewed_at=ctx.at))
    lead.replied_at = None
    set_stage(ctx.order, started=lead.dispatched_at, due=lead.due_at)
    unit = held.row(ctx.session, Unit, lead.unit_id)
    enqueue_notice(ctx.session, kind="reply_sent_back", order=ctx.order, unit=unit, recipients=[unit.email],
                   at=ctx.at, extra={"reason": reason})
    return {"unit": unit.code}


def _visit(ctx: Ctx, lead: Assignment | None) -> ReturnVisit | None:
    p = ctx.payload
    if "satisfaction" not in p:
        return None
    visit = ReturnVisit(
        work_order_id=ctx.order.id, unit_id=lead.unit_id if lead else None, contacted=bool(p.get("contacted")),
        resolved=bool(p.get("resolved")), satisfaction=Satisfaction(p["satisfaction"]),
        comment=p.get("comment", ""), visited_by=ctx.actor.id, visited_at=ctx.at,
    )
    ctx.session.add(visit)
    # A unit that said it was solved, when the citizen says nobody came or it is unsolved.
    if lead is not None and lead.reply_solved and (not visit.resolved or lead.reply_contacted and not visit.contacted):
        ctx.order.false_completion = True
    return visit


def _last_lead(ctx: Ctx) -> Assignment | None:
    cached = held.assignments_of(ctx.session, ctx.order.id)
    if cached is not None:
        leads = [a for a in cached if a.role == AssignmentRole.LEAD]
        return max(leads, key=lambda a: (a.active is not False, a.id or 0), default=None)
    return ctx.session.scalars(
        select(Assignment).where(Assignment.work_order_id == ctx.order.id, Assignment.role == AssignmentRole.LEAD)
        .order_by(Assignment.active.desc(), Assignment.id.desc())
    ).first()


def _active(ctx: Ctx) -> list[Assignment]:
    cached = held.assignments_of(ctx.session, ctx.order.id)
    if cached is not None:
        return [a for a in cached if a.active is not False]
    return list(ctx.session.scalars(
        select(Assignment).where(Assignment.work_order_id == ctx.order.id, Assignment.active.is_(True))))


@effect(Action.CLOSE)
def _close(ctx: Ctx) -> dict[str, Any]:
    lead = _last_lead(ctx)
    visit = _visit(ctx, lead)
    if visit is not None and visit.satisfaction == Satisfaction.UNSATISFIED:
        raise InvalidTransition(ctx.order.number, ctx.order.status, Action.CLOSE,
                                "the citizen is not satisfied: redo the order instead of closing it")
    for assignment in _active(ctx):
        assignment.ended_at = ctx.at
    ctx.order.closed_at = ctx.at
    set_stage(ctx.order, started=None, due=None)
    return {"visited": visit is not None, "false_completion": ctx.order.false_completion} | _after_visit(
        ctx, lead, visit, redo=False)


@effect(Action.REDO)
def _redo(ctx: Ctx) -> dict[str, Any]:
    lead = _lead(ctx)
    visit = _visit(ctx, lead)
    ctx.order.redo_count += 1
    lead.replied_at = None
    lead.due_at = stage_deadline(ctx.session, ctx.order, "handling", ctx.at)
    set_stage(ctx.order, started=ctx.at, due=lead.due_at)
    unit = held.row(ctx.session, Unit, lead.unit_id)
    enqueue_notice(ctx.session, kind="redo", order=ctx.order, unit=unit, recipients=[unit.email], at=ctx.at,
                   extra={"comment": ctx.payload.get("comment", ""), "redo_count": ctx.order.redo_count})
    return {"unit": unit.code, "redo_count": ctx.order.redo_count, "false_completion": ctx.order.false_completion} \
        | _after_visit(ctx, lead, visit, redo=True)


# Buck-passing detection runs with the decision it is about, in the same transaction (tasks.buck_passing);
# imported when called because tasks.buck_passing builds on tasks.transitions, which imports this module.
def _after_return(ctx: Ctx) -> dict[str, Any]:
    from tasks.buck_passing import after_return_decided

    return after_return_decided(ctx.session, order=ctx.order, at=ctx.at)


def _after_visit(ctx: Ctx, lead: Assignment | None, visit: ReturnVisit | None, *, redo: bool) -> dict[str, Any]:
    from tasks.buck_passing import after_visit

    return after_visit(ctx.session, order=ctx.order, at=ctx.at, lead=lead, visit=visit, redo=redo)


def _finish(ctx: Ctx) -> None:
    ctx.order.closed_at = ctx.at
    set_stage(ctx.order, started=None, due=None)


@effect(Action.ANSWER)
def _answer(ctx: Ctx) -> dict[str, Any]:
    ctx.order.answer_article_id = ctx.payload.get("article_id")
    _finish(ctx)
    return {}


@effect(Action.SCREEN_OUT)
def _screen_out(ctx: Ctx) -> dict[str, Any]:
    _finish(ctx)
    return {}


@effect(Action.MERGE)
def _merge(ctx: Ctx) -> dict[str, Any]:
    master = ctx.session.get(WorkOrder, ctx.payload.get("master_id"))
    if master is None or master.id == ctx.order.id or master.master_id is not None:
        raise InvalidTransition(ctx.order.number, ctx.order.status, Action.MERGE,
                                "merging needs an existing master order that is not itself merged")
    ctx.order.master_id = master.id
    _finish(ctx)
    return {"master": master.number}
