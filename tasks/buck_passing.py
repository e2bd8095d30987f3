"""Buck-passing and perfunctory handling, detected where returns, redos and closings are decided."""

import re
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from duban.db import session_scope
from models.base import utcnow
from models.directory import Unit
from models.enums import AssignmentRole, CaseKind, ItemType, Status
from models.requests import ReturnRequest, ReturnVisit
from models.supervision_records import SupervisionFlag
from models.work_order import Assignment, WorkOrder
from tasks.cases import open_case
from tasks.deadlines import order_policy

# New items of these types can be repeat complaints about a matter a unit said it had solved.
_COMPLAINT_TYPES = (ItemType.COMPLAINT, ItemType.HELP_REQUEST, ItemType.REPORT)
_SPACE = re.compile(r"\s+")


def _lead_path(session: Session, order: WorkOrder) -> list[Assignment]:
    """The order's lead assignments in dispatch order, including one added in this transaction."""
    stored = list(session.scalars(select(Assignment).where(
        Assignment.work_order_id == order.id, Assignment.role == AssignmentRole.LEAD).order_by(Assignment.id)))
    added = [obj for obj in session.new if isinstance(obj, Assignment) and obj.work_order_id == order.id
             and obj.role == AssignmentRole.LEAD and obj not in stored]
    return stored + added


def after_return_decided(session: Session, *, order: WorkOrder, at: datetime) -> dict[str, Any]:
    """After a return is approved or rejected: open one buck-passing case when the order crossed a threshold."""
    rules = order_policy(session, order).escalation.buck_passing
    requests = list(session.scalars(select(ReturnRequest).where(ReturnRequest.work_order_id == order.id)
                                    .order_by(ReturnRequest.id)))
    path = _lead_path(session, order)
    units = list(dict.fromkeys(a.unit_id for a in path))
    returners = list(dict.fromkeys(r.unit_id for r in requests))
    current = next((a for a in reversed(path) if a.active is not False), None)
    reasons = []
    if len(requests) >= rules.max_returns:
        reasons.append(f"退单{len(requests)}次（阈值{rules.max_returns}）")
    if len(units) >= rules.max_units:
        reasons.append(f"经手{len(units)}个单位（阈值{rules.max_units}）")
    # Ping-pong: the order came back to a unit that had returned it on an earlier assignment (A -> B -> A).
    if rules.ping_pong and current is not None and any(
            r.unit_id == current.unit_id and r.assignment_id != current.id for r in requests):
        reasons.append("往返推诿：工单被退回到曾退单的单位")
    if not reasons:
        return {}
    codes = _codes(session, set(units) | set(returners))
    evidence = {
        "reasons": reasons,
        "units": [codes[u] for u in units],
        "returned_by": [codes[u] for u in returners],
        "returns": [{"unit": codes[r.unit_id], "requested_at": r.requested_at.isoformat(), "decision": r.decision,
                     "reason": r.reason, "on_site_evidence": bool(r.evidence_note or r.evidence_files)}
                    for r in requests],
    }
    last = requests[-1].unit_id if requests else units[-1]
    case_id, opened = open_case(session, kind=CaseKind.BUCK_PASSING, order=order, unit=session.get(Unit, last),
                                at=at, evidence=evidence, once_per_order=True)
    return {"buck_passing_case": case_id} if opened else {}


def after_visit(session: Session, *, order: WorkOrder, at: datetime, lead: Assignment | None,
                visit: ReturnVisit | None, redo: bool) -> dict[str, Any]:
    """After a return visit: flag a suspected false completion, and open a case after too many redos."""
    details: dict[str, Any] = {}
    if visit is not None and lead is not None and is_false_completion(lead, visit):
        unit = session.get(Unit, lead.unit_id)
        session.add(SupervisionFlag(
            key=f"false_completion:{order.id}:{at.timestamp():.6f}", kind="false_completion", work_order_id=order.id,
            unit_id=unit.id, at=at, evidence={
                "reply": lead.reply_text[:300], "reply_contacted": lead.reply_contacted,
                "reply_solved": lead.reply_solved, "visit_contacted": visit.contacted,
                "visit_resolved": visit.resolved, "satisfaction": visit.satisfaction, "comment": visit.comment[:300]}))
        details["suspected_false_completion"] = unit.code
    rules = order_policy(session, order).escalation.buck_passing
    if redo and order.redo_count >= rules.max_redos and lead is not None:
        unit = session.get(Unit, lead.unit_id)
        case_id, opened = open_case(session, kind=CaseKind.REDO, order=order, unit=unit, at=at, once_per_order=True,
                                    evidence={"reasons": [f"重办{order.redo_count}次（阈值{rules.max_redos}）"],
                                              "units": [unit.code], "redo_count": order.redo_count})
        if opened:
            details["redo_case"] = case_id
    return details


def is_false_completion(lead: Assignment, visit: ReturnVisit) -> bool:
    """The unit said it was solved, while the citizen says it is unsolved or, told of contact, that nobody came."""
    return bool(lead.reply_solved) and (not visit.resolved or bool(lead.reply_contacted) and not visit.contacted)


def _codes(session: Session, unit_ids: set[int]) -> dict[int, str]:
    return dict(session.execute(select(Unit.id, Unit.code).where(Unit.id.in_(unit_ids))).all()) if unit_ids else {}


def normalise_address(address: str) -> str:
    """An address compared for repeat complaints: whitespace and full-width spaces ignored."""
    return _SPACE.sub("", address or "").replace("\u3000", "")


def link_repeat_complaints(*, since: datetime, until: datetime, window_days: int,
                           at: datetime | None = None) -> int:
    """Link items received in [since, until) to an order closed as solved at the same address and category.

    The earlier order must have closed within window_days before the new item arrived; each new item
    is linked once, and counts against the unit that closed the earlier order. Returns new links.
    """
    from tasks.transitions import Actor, record_event

    at = at or utcnow()
    linked = 0
    with session_scope() as session:
        new_items = session.execute(select(WorkOrder.id, WorkOrder.category_id, WorkOrder.address,
                                           WorkOrder.received_at).where(
            WorkOrder.received_at >= since, WorkOrder.received_at < until, WorkOrder.category_id.is_not(None),
            WorkOrder.address != "", WorkOrder.item_type.in_(_COMPLAINT_TYPES),
            WorkOrder.status.not_in((Status.INVALID, Status.MERGED)),
            ~exists().where(SupervisionFlag.kind == "repeat_complaint", SupervisionFlag.work_order_id == WorkOrder.id),
        )).all()
        if not new_items:
            return 0
        closed: dict[tuple[int, str], list[tuple[datetime, int]]] = defaultdict(list)
        for order_id, category_id, address, closed_at in session.execute(
                select(WorkOrder.id, WorkOrder.category_id, WorkOrder.address, WorkOrder.closed_at).where(
                    WorkOrder.status == Status.CLOSED, WorkOrder.closed_at >= since - timedelta(days=window_days),
                    WorkOrder.closed_at < until, WorkOrder.address != "", WorkOrder.category_id.is_not(None))):
            closed[(category_id, normalise_address(address))].append((closed_at, order_id))
        for order_id, category_id, address, received_at in new_items:
            earlier = [(c, o) for c, o in closed.get((category_id, normalise_address(address)), [])
                       if o != order_id and received_at - timedelta(days=window_days) <= c < received_at]
            match = next((found for found in sorted(earlier, reverse=True)
                          if _closed_as_solved(session, found[1])), None)
            if match is None:
                continue
            earlier_id, unit_id = match[1], _closed_as_solved(session, match[1])
            order, earlier_order = session.get(WorkOrder, order_id), session.get(WorkOrder, earlier_id)
            session.add(SupervisionFlag(key=f"repeat_complaint:{order_id}", kind="repeat_complaint",
                                        work_order_id=order_id, unit_id=unit_id, related_order_id=earlier_id,
                                        at=received_at, evidence={"earlier_order": earlier_order.number,
                                                                  "closed_at": match[0].isoformat()}))
            record_event(session, order=order, name="repeat_complaint_linked", actor=Actor.system(), at=at,
                         unit_id=unit_id, payload={"earlier_order": earlier_order.number,
                                                   "unit": session.get(Unit, unit_id).code})
            linked += 1
    return linked


def _closed_as_solved(session: Session, order_id: int) -> int | None:
    """The unit that closed the order saying it was solved (and no visit said otherwise), else None."""
    lead = session.scalars(select(Assignment).where(
        Assignment.work_order_id == order_id, Assignment.role == AssignmentRole.LEAD)
        .order_by(Assignment.id.desc())).first()
    if lead is None or not lead.reply_solved:
        return None
    last_visit = session.scalars(select(ReturnVisit).where(ReturnVisit.work_order_id == order_id)
                                 .order_by(ReturnVisit.id.desc())).first()
    return lead.unit_id if last_visit is None or last_visit.resolved else None
