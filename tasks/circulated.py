"""The circulated notice (通报): units at or above the policy threshold, or with open buck-passing cases."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.db import session_scope
from models.base import utcnow
from models.directory import Unit
from models.enums import CaseKind, CaseStatus
from models.requests import ReturnRequest
from models.supervision import SupervisionCase
from models.supervision_records import CirculatedNotice, Escalation, SupervisionFlag
from models.work_order import WorkOrder
from tasks.outbox import enqueue_notice
from tasks.policy_store import current_policy
from tasks.scorecard import Period, UnitScore

_EVIDENCE_PER_UNIT = 20
_RUNG_EVENTS = {"overdue": "deadline_missed", "case": "case_opened", "notice": "unit_put_on_notice"}


@dataclass(frozen=True)
class NoticeEntry:
    """One unit on the list: why, and the orders and events that show it."""

    unit_code: str
    unit_name: str
    buck_passing_index: float
    reasons: list[str]
    evidence: list[dict[str, Any]]


def draw_notice_list(session: Session, *, period: Period, scores: list[UnitScore]) -> list[NoticeEntry]:
    """The units to name for the period, worst index first; computed, not stored."""
    policy = current_policy(session).policy
    threshold = policy.scorecard.notice_threshold
    units = {u.code: u for u in session.scalars(select(Unit))}
    by_code = {s.unit_code: s for s in scores}
    reasons: dict[str, list[str]] = {}
    for s in scores:
        if s.buck_passing_index >= threshold:
            reasons.setdefault(s.unit_code, []).append(
                f"推诿指数{s.buck_passing_index:.3f}，达到通报线{threshold:g}")
    for case in session.scalars(select(SupervisionCase).where(
            SupervisionCase.kind == CaseKind.BUCK_PASSING, SupervisionCase.status == CaseStatus.OPEN,
            SupervisionCase.opened_at < period.end)):
        number = session.get(WorkOrder, case.work_order_id).number if case.work_order_id else ""
        for code in case.evidence.get("returned_by", []):
            reasons.setdefault(code, []).append(f"推诿扯皮督办案件{case.id}（工单{number}）未结案")
    for unit_id, count in _notice_rungs(session, period):
        code = session.get(Unit, unit_id).code
        reasons.setdefault(code, []).append(f"{count}件工单超期升级至通报")
    entries = []
    for code, why in reasons.items():
        unit = units[code]
        index = by_code[code].buck_passing_index if code in by_code else 0.0
        entries.append(NoticeEntry(code, unit.name_zh, round(index, 4), list(dict.fromkeys(why)),
                                   _evidence(session, unit.id, period)))
    return sorted(entries, key=lambda e: (-e.buck_passing_index, e.unit_code))


def _notice_rungs(session: Session, period: Period) -> list[tuple[int, int]]:
    counts: dict[int, int] = {}
    for (unit_id,) in session.execute(select(Escalation.unit_id).where(
            Escalation.rung == "notice", Escalation.unit_id.is_not(None), Escalation.fired_at >= period.start,
            Escalation.fired_at < period.end)):
        counts[unit_id] = counts.get(unit_id, 0) + 1
    return sorted(counts.items())


def _evidence(session: Session, unit_id: int, period: Period) -> list[dict[str, Any]]:
    """Order numbers and events against the unit in the period, newest first, at most a screenful."""
    found: list[dict[str, Any]] = []
    for number, rung, stage, fired_at in session.execute(
            select(WorkOrder.number, Escalation.rung, Escalation.stage, Escalation.fired_at)
            .join(WorkOrder, WorkOrder.id == Escalation.work_order_id)
            .where(Escalation.unit_id == unit_id, Escalation.rung.in_(tuple(_RUNG_EVENTS)),
                   Escalation.fired_at >= period.start, Escalation.fired_at < period.end)):
        found.append({"order": number, "event": _RUNG_EVENTS[rung], "stage": stage, "at": fired_at.isoformat()})
    for number, kind, at in session.execute(
            select(WorkOrder.number, SupervisionFlag.kind, SupervisionFlag.at)
            .join(WorkOrder, WorkOrder.id == SupervisionFlag.work_order_id)
            .where(SupervisionFlag.unit_id == unit_id, SupervisionFlag.at >= period.start,
                   SupervisionFlag.at < period.end)):
        found.append({"order": number, "event": kind, "at": at.isoformat()})
    for number, decided_at in session.execute(
            select(WorkOrder.number, ReturnRequest.decided_at)
            .join(WorkOrder, WorkOrder.id == ReturnRequest.work_order_id)
            .where(ReturnRequest.unit_id == unit_id, ReturnRequest.decision == "auto_rejected",
                   ReturnRequest.decided_at >= period.start, ReturnRequest.decided_at < period.end)):
        found.append({"order": number, "event": "return_rejected", "automatic": True, "at": decided_at.isoformat()})
    code = session.get(Unit, unit_id).code
    for number, case_id, evidence, opened_at in session.execute(
            select(WorkOrder.number, SupervisionCase.id, SupervisionCase.evidence, SupervisionCase.opened_at)
            .join(WorkOrder, WorkOrder.id == SupervisionCase.work_order_id)
            .where(SupervisionCase.kind == CaseKind.BUCK_PASSING, SupervisionCase.status == CaseStatus.OPEN,
                   SupervisionCase.opened_at < period.end)):
        if code in evidence.get("returned_by", []):
            found.append({"order": number, "event": "case_opened", "case_id": case_id, "kind": CaseKind.BUCK_PASSING,
                          "at": opened_at.isoformat()})
    return sorted(found, key=lambda e: e["at"], reverse=True)[:_EVIDENCE_PER_UNIT]


def circulate_notice(*, period: Period, scores: list[UnitScore], at: datetime | None = None) -> list[NoticeEntry]:
    """Store the period's list and mail it to supervisors, report leaders and the named units' leaders, once.

    A period already circulated keeps its list: running the flow again returns it and mails nothing.
    """
    at = at or utcnow()
    with session_scope() as session:
        stored = list(session.scalars(select(CirculatedNotice).where(CirculatedNotice.period == period.label)
                                      .order_by(CirculatedNotice.buck_passing_index.desc(), CirculatedNotice.id)))
        if stored:
            return [_entry(session, row) for row in stored]
        entries = draw_notice_list(session, period=period, scores=scores)
        if not entries:
            return []
        units = {u.code: u for u in session.scalars(select(Unit).where(Unit.code.in_([e.unit_code for e in entries])))}
        for e in entries:
            session.add(CirculatedNotice(period=period.label, unit_id=units[e.unit_code].id, drawn_at=at,
                                         buck_passing_index=e.buck_passing_index, reasons=e.reasons,
                                         evidence=e.evidence))
        recipients = current_policy(session).policy.recipients
        enqueue_notice(session, kind="circulated_notice", order=None, unit=None, at=at,
                       recipients=[*recipients.supervisors, *recipients.report_leaders,
                                   *(units[e.unit_code].leader_email for e in entries)],
                       extra={"period": period.label, "entries": [_plain(e) for e in entries]})
    return entries


def _entry(session: Session, row: CirculatedNotice) -> NoticeEntry:
    unit = session.get(Unit, row.unit_id)
    return NoticeEntry(unit.code, unit.name_zh, row.buck_passing_index, list(row.reasons), list(row.evidence))


def _plain(entry: NoticeEntry) -> dict[str, Any]:
    return {"unit_code": entry.unit_code, "unit_name": entry.unit_name, "buck_passing_index": entry.buck_passing_index,
            "reasons": entry.reasons, "evidence": entry.evidence}
