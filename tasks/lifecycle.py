"""What an order's lifecycle run reads and writes: its next step, its story, and supervisors' decisions."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from duban.db import session_scope
from duban.errors import NotFound, ValidationFailed
from models.directory import Category, Unit
from models.enums import FINAL_STATUSES, ActorKind, CaseKind, CaseStatus, Decision, ItemType, Status, label
from models.lifecycle import Action
from models.records import Event, RunCursor
from models.requests import ExtensionRequest, ReturnRequest
from models.supervision import SupervisionCase
from models.work_order import WorkOrder
from tasks.actions import decide_extension, record_visit
from tasks.cases import decide_case
from tasks.deadlines import order_policy
from tasks.markup import typed
from tasks.orders import active_lead as _active_lead, order_tags
from tasks.transitions import Actor, transition

LOCAL = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Step:
    """What the run does next: an automatic action, a wait for a unit or staff, or a supervisor's form."""

    kind: str  # "done", "auto", "wait", "form"
    name: str  # the action, the wait's subject, or the form's name
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    """An order as its lifecycle run sees it, with no personal data."""

    order_id: int
    number: str
    status: str
    version: int
    tags: list[str]
    step: Step
    story: list[str]
    last_event_id: int


def read_snapshot(*, number: str) -> Snapshot:
    """Read the order, plan its next step, and tell what happened since the run last looked."""
    with session_scope(readonly=True) as session:
        order = session.scalar(select(WorkOrder).where(WorkOrder.number == number))
        if order is None:
            raise NotFound(f"work order {number} does not exist")
        cursor = session.get(RunCursor, order.id)
        since = cursor.narrated_event_id if cursor else 0
        events = list(session.scalars(
            select(Event).where(Event.work_order_id == order.id, Event.id > since).order_by(Event.id)))
        return Snapshot(
            order_id=order.id, number=order.number, status=order.status, version=order.version,
            tags=order_tags(session, order), step=plan(session, order),
            story=[tell(session, order, e) for e in events],
            last_event_id=events[-1].id if events else since,
        )


def plan(session: Session, order: WorkOrder) -> Step:
    """The next step for the order's status, from the database alone."""
    status = Status(order.status)
    if status in FINAL_STATUSES:
        return Step("done", status)
    if status == Status.RECEIVED:
        return Step("wait", "intake")
    if status == Status.RETURN_REQUESTED:
        return Step("form", "return-decision", _return_context(session, order))
    if status in {Status.DISPATCHED, Status.HANDLING}:
        extension = session.scalars(select(ExtensionRequest).where(
            ExtensionRequest.work_order_id == order.id, ExtensionRequest.decision == Decision.PENDING)).first()
        if extension is not None:
            return Step("form", "extension-decision", _extension_context(session, order, extension))
        case = _case_to_decide(session, order)
        if case is not None:
            return Step("form", "case-decision", _case_context(session, order, case))
        return Step("wait", "unit-sign" if status == Status.DISPATCHED else "unit-reply", _unit_context(session, order))
    if status == Status.REPLIED:
        if order_policy(session, order).stages_for(order.item_type).review == "human":
            return Step("form", "reply-review", _reply_context(session, order))
        return Step("auto", Action.APPROVE_REPLY)
    if status == Status.VISITING:
        if not order.extra.get("visit"):
            return Step("auto", Action.CLOSE)
        return Step("form", "return-visit", _reply_context(session, order))
    raise AssertionError(f"no step planned for status {status}")


def _local(at: datetime | None) -> str:
    return at.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M") if at else "-"


def _base(session: Session, order: WorkOrder) -> dict[str, Any]:
    category = session.get(Category, order.category_id) if order.category_id else None
    return {"number": order.number, "version": order.version, "item_type": label(ItemType(order.item_type)),
            "category": category.name_zh if category else "未分类", "due": _local(order.stage_due_at)}


def _unit_context(session: Session, order: WorkOrder) -> dict[str, Any]:
    lead = _active_lead(session, order)
    unit = session.get(Unit, lead.unit_id) if lead else None
    return _base(session, order) | {"unit": unit.name_zh if unit else "-", "unit_code": unit.code if unit else ""}


def _return_context(session: Session, order: WorkOrder) -> dict[str, Any]:
    request = session.scalars(select(ReturnRequest).where(
        ReturnRequest.work_order_id == order.id, ReturnRequest.decision == Decision.PENDING)
        .order_by(ReturnRequest.id.desc())).first()
    unit = session.get(Unit, request.unit_id) if request else None
    suggested = session.get(Unit, request.suggested_unit_id) if request and request.suggested_unit_id else None
    return _base(session, order) | {
        "unit": unit.name_zh if unit else "-", "unit_code": unit.code if unit else "",
        "reason": request.reason if request else "", "evidence": request.evidence_note if request else "",
        "evidence_files": len(request.evidence_files) if request else 0,
        "suggested_code": suggested.code if suggested else "", "return_count": order.return_count,
        "units": unit_choices(session, exclude={unit.code} if unit else set()),
    }


def _case_to_decide(session: Session, order: WorkOrder) -> SupervisionCase | None:
    """An open case a supervisor has not looked at yet, or a buck-passing case, which ends only with a designation."""
    return session.scalars(select(SupervisionCase).where(
        SupervisionCase.work_order_id == order.id, SupervisionCase.status == CaseStatus.OPEN,
        or_(SupervisionCase.decision == "", SupervisionCase.kind == CaseKind.BUCK_PASSING))
        .order_by(SupervisionCase.id)).first()


def _case_context(session: Session, order: WorkOrder, case: SupervisionCase) -> dict[str, Any]:
    lead = _active_lead(session, order)
    unit = session.get(Unit, lead.unit_id) if lead else None
    reasons = case.evidence.get("reasons") or [case.evidence.get("stage", "")]
    return _base(session, order) | {
        "case_id": case.id, "case_kind": label(CaseKind(case.kind)), "buck_passing": case.kind == CaseKind.BUCK_PASSING,
        "level": case.level, "opened": _local(case.opened_at), "reasons": "; ".join(str(r) for r in reasons if r),
        "unit": unit.name_zh if unit else "-", "unit_code": unit.code if unit else "",
        "units": unit_choices(session), "return_count": order.return_count,
    }


def _extension_context(session: Session, order: WorkOrder, request: ExtensionRequest) -> dict[str, Any]:
    unit = session.get(Unit, request.unit_id)
    return _base(session, order) | {"unit": unit.name_zh, "extension_id": request.id, "reason": request.reason,
                                    "requested_due": _local(request.requested_due_at)}


def _reply_context(session: Session, order: WorkOrder) -> dict[str, Any]:
    lead = _active_lead(session, order)
    unit = session.get(Unit, lead.unit_id) if lead else None
    return _base(session, order) | {"unit": unit.name_zh if unit else "-", "reply": lead.reply_text if lead else "",
                                    "contacted": bool(lead and lead.reply_contacted),
                                    "solved": bool(lead and lead.reply_solved)}


def unit_choices(session: Session, exclude: set[str] = frozenset()) -> list[str]:
    """Active units as "code" choices for a supervisor's dropdown."""
    return [code for code in session.scalars(select(Unit.code).where(Unit.active.is_(True)).order_by(Unit.code))
            if code not in exclude]


def tell(session: Session, order: WorkOrder, event: Event) -> str:
    """One event in plain words: when, who, what; never a citizen's name or phone."""
    p = event.payload or {}
    who = event.actor_id
    if event.actor_kind == ActorKind.UNIT and event.unit_id:
        unit = session.get(Unit, event.unit_id)
        who = unit.name_zh if unit else who
    what = {
        "work_order_received": "受理 received",
        "work_order_dispatched": f"派单 dispatched to {p.get('unit')}, handling due {p.get('due_at', '')[:16]}",
        "work_order_signed": "签收 signed for",
        "return_requested": f"申请退单 asked to return it: {p.get('reason', '')}",
        "return_approved": f"同意退单 return approved, re-dispatched to {p.get('unit')}",
        "return_rejected": f"驳回退单 return rejected: {p.get('reason', '')}",
        "work_order_redispatched": f"改派 re-dispatched to {p.get('unit')}",
        "reply_submitted": "办结回复 replied" + (" on time" if p.get("on_time") else " late"),
        "reply_approved": "审核通过 reply approved" + (" (return visit)" if p.get("visit") else ""),
        "reply_sent_back": f"退回 reply sent back: {p.get('reason', '')}",
        "work_order_closed": "办结 closed",
        "work_order_reopened": "重办 reopened after an unsatisfied return visit",
        "extension_requested": f"申请延期 asked for an extension to {str(p.get('requested_due_at', ''))[:16]}",
        "extension_approved": f"同意延期 extension granted to {str(p.get('granted_due_at', ''))[:16]}",
        "extension_rejected": "驳回延期 extension refused",
        "policy_migrated": f"策略迁移 moved to policy version {p.get('to_version')}: " + ", ".join(
            f"{k} {str(v.get('to', ''))[:16]}" for k, v in (p.get("moved") or {}).items()),
    }.get(event.name, event.name.replace("_", " "))
    return f"{_local(event.at)} {who}: {what}"


def mark_told(*, order_id: int, last_event_id: int) -> None:
    """Remember how far the run has told the order's story."""
    with session_scope() as session:
        cursor = session.get(RunCursor, order_id) or RunCursor(work_order_id=order_id, applied_inputs=[])
        cursor.narrated_event_id = max(cursor.narrated_event_id or 0, last_event_id)
        session.add(cursor)


def timeline(*, number: str) -> list[dict[str, str]]:
    """The order's whole history as rows for the run's timeline artifact."""
    with session_scope(readonly=True) as session:
        order = session.scalar(select(WorkOrder).where(WorkOrder.number == number))
        events = session.scalars(select(Event).where(Event.work_order_id == order.id).order_by(Event.id))
        # The UI renders each cell as markdown: what people typed (reasons, names) is shown as typed.
        return [{"time": _local(e.at), "event": e.name, "by": typed(e.actor_id), "status": e.to_status or "",
                 "story": typed(tell(session, order, e).split(": ", 1)[-1])} for e in events]


def was_applied(*, order_id: int, key: str) -> bool:
    """Whether a form input was already applied (or refused) for this order."""
    with session_scope(readonly=True) as session:
        cursor = session.get(RunCursor, order_id)
        return cursor is not None and key in (cursor.applied_inputs or [])


def apply_form(*, order_id: int, form: str, key: str, values: dict[str, Any], by: str) -> str:
    """Apply a supervisor's or staff member's form at most once; return what happened, in words.

    The decision commits first and the input is marked applied after, refused or not: a crash in
    between makes the run look at it again, and the order's version then refuses a second application.
    """
    with session_scope(readonly=True) as session:
        cursor = session.get(RunCursor, order_id)
        if cursor is not None and key in cursor.applied_inputs:
            return f"input {key} was applied before"
    try:
        return _decide(order_id, form, values, by)
    finally:
        with session_scope() as session:
            cursor = session.get(RunCursor, order_id) or RunCursor(work_order_id=order_id, narrated_event_id=0)
            cursor.applied_inputs = [*(cursor.applied_inputs or []), key]
            session.add(cursor)


def _decide(order_id: int, form: str, values: dict[str, Any], by: str) -> str:
    if not by.strip():
        raise ValidationFailed("the form was submitted without a name in 'Decided By': type your name in it, or "
                               "submit it through the Duban gateway, which signs it with your account")
    actor = Actor(ActorKind.STAFF if form == "return-visit" else ActorKind.SUPERVISOR, by)
    version = values.get("order_version")
    match form:
        case "return-decision" if values["decision"] == "approve":
            change = transition(order_id=order_id, action=Action.APPROVE_RETURN, actor=actor,
                                expected_version=version, payload={
                                    "unit_code": values.get("new_unit") or None, "reason": values.get("reason", ""),
                                    "designate": bool(values.get("designate_lead"))})
            return f"return approved by {by}; re-dispatched ({change.details.get('unit')})"
        case "return-decision":
            transition(order_id=order_id, action=Action.REJECT_RETURN, actor=actor, expected_version=version,
                       payload={"reason": values.get("reason", "")})
            return f"return rejected by {by}"
        case "extension-decision":
            decide_extension(request_id=values.get("extension_id") or _pending_extension(order_id), actor=actor,
                             approve=values["decision"] == "approve", reason=values.get("reason", ""),
                             expected_version=version)
            return f"extension {values['decision']}d by {by}"
        case "reply-review" if values["decision"] == "approve":
            transition(order_id=order_id, action=Action.APPROVE_REPLY, actor=actor, expected_version=version,
                       payload={"reason": values.get("reason", "")})
            return f"reply approved by {by}"
        case "reply-review":
            transition(order_id=order_id, action=Action.SEND_BACK, actor=actor, expected_version=version,
                       payload={"reason": values.get("reason", "")})
            return f"reply sent back by {by}"
        case "return-visit":
            outcome = record_visit(order_id=order_id, actor=actor, contacted=values["contacted"],
                                   resolved=values["resolved"], satisfaction=values["satisfaction"],
                                   comment=values.get("comment", ""), expected_version=version)
            return f"return visit recorded by {by}: {outcome.status}"
        case "case-decision":
            due = values.get("new_due")
            view = decide_case(case_id=values.get("case_id") or _open_case(order_id), actor=actor,
                               decision=values["decision"], unit_code=values.get("unit") or None,
                               new_due_at=datetime.strptime(due, "%Y-%m-%d %H:%M").replace(tzinfo=LOCAL) if due else None,
                               finding=values.get("finding", ""), expected_version=version)
            return f"case {view.id} ({view.kind_label}): {values['decision']} by {by}"
    raise ValueError(f"unknown form {form!r}")


def _open_case(order_id: int) -> int:
    with session_scope(readonly=True) as session:
        case = _case_to_decide(session, session.get(WorkOrder, order_id))
        if case is None:
            raise NotFound("no supervision case of this order waits for a decision")
        return case.id


def _pending_extension(order_id: int) -> int:
    with session_scope(readonly=True) as session:
        request_id = session.scalar(select(ExtensionRequest.id).where(
            ExtensionRequest.work_order_id == order_id, ExtensionRequest.decision == Decision.PENDING))
    if request_id is None:
        raise NotFound("no extension request of this order waits for a decision")
    return request_id


def apply_automatic(*, order_id: int, action: str, version: int) -> str:
    """The system's own step (automatic review, closing without a visit)."""
    change = transition(order_id=order_id, action=Action(action), actor=Actor.system(), expected_version=version,
                        payload={"automatic": True})
    return f"{change.event} (automatic)"
