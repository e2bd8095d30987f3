"""The hotline's report for any period: the figures a city publishes, computed from Duban's own records.

Every figure is a count or a share over orders received in the period (calls and visits over their
own times); the README defines each one with its numerator and denominator. Each figure is one
grouped query, so a year of 380,000 orders reports in seconds.
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, func, select
from sqlalchemy.orm import Session

from duban.errors import ValidationFailed
from models.directory import Category, Unit
from models.enums import Decision, Satisfaction, Status
from models.history import Call, PublishedTotals
from models.records import Event
from models.requests import ReturnRequest, ReturnVisit
from models.supervision import SupervisionCase
from models.supervision_records import CirculatedNotice
from models.work_order import Assignment, WorkOrder
from tasks.history import local_bounds

TOP = 10
HOT_TOPICS = 9
SUBTOPICS = 7
UNITS = 15
_NOT_VALID = (Status.INVALID.value, Status.MERGED.value)
_COUNTY = "county_platform"


@dataclass(frozen=True)
class Period:
    """Local days from `start` to `end`, both included."""

    start: date
    end: date

    def bounds(self) -> tuple[datetime, datetime]:
        return local_bounds(self.start, self.end)

    def year_before(self) -> "Period":
        return Period(_year_before(self.start), _year_before(self.end))


def _year_before(day: date) -> date:
    return day.replace(year=day.year - 1) if not (day.month == 2 and day.day == 29) else day.replace(
        year=day.year - 1, day=28)


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _growth(now: int, before: int | None) -> float | None:
    return round(100 * (now - before) / before, 1) if before else None


def build_report(session: Session, *, date_from: date, date_to: date, compare_previous: bool = False
                 ) -> dict[str, Any]:
    """Every figure of the period, year on year where the year before is known."""
    if date_to < date_from:
        raise ValidationFailed(f"--to {date_to} is before --from {date_from}")
    period = Period(date_from, date_to)
    report = _figures(session, period)
    before = period.year_before()
    previous = _figures(session, before) if _has_records(session, before) else None
    if previous is not None:
        previous["source"] = "records"
    else:
        previous = _published(session, before)
    report["calls_yoy_growth_pct"] = _growth(report["calls_connected"], (previous or {}).get("calls_connected"))
    report["valid_items_yoy_growth_pct"] = _growth(report["valid_items_accepted"],
                                                   (previous or {}).get("valid_items_accepted"))
    report["previous"] = previous if compare_previous or previous is None else _headline(previous)
    return report


def _headline(figures: dict[str, Any]) -> dict[str, Any]:
    keys = ("period", "source", "calls_connected", "calls_from_county_platforms", "valid_items_accepted")
    return {k: figures.get(k) for k in keys}


def _has_records(session: Session, period: Period) -> bool:
    start, end = period.bounds()
    return bool(session.scalar(select(WorkOrder.id).where(WorkOrder.received_at >= start,
                                                          WorkOrder.received_at < end).limit(1))
                or session.scalar(select(Call.id).where(Call.at >= start, Call.at < end).limit(1)))


def _published(session: Session, period: Period) -> dict[str, Any] | None:
    row = session.scalar(select(PublishedTotals).where(PublishedTotals.period_from == period.start,
                                                       PublishedTotals.period_to == period.end))
    if row is None:
        return None
    return {"period": {"from": period.start.isoformat(), "to": period.end.isoformat()},
            "source": f"published totals ({row.source})" if row.source else "published totals",
            "calls_connected": row.calls_connected, "calls_from_county_platforms": row.calls_from_county_platforms,
            "valid_items_accepted": row.valid_items}


def _figures(session: Session, period: Period) -> dict[str, Any]:
    start, end = period.bounds()
    received = and_(WorkOrder.received_at >= start, WorkOrder.received_at < end)
    valid = and_(received, WorkOrder.status.not_in(_NOT_VALID))
    out: dict[str, Any] = {"period": {"from": period.start.isoformat(), "to": period.end.isoformat()}}
    out.update(_intake(session, received, start, end))
    out.update(_categories(session, valid))
    out.update(_handling(session, valid, start, end))
    out["supervision"] = _supervision(session, valid, start, end)
    out["units"] = _units(session, start, end)
    out["monthly"] = _monthly(session, period)
    return out


def _intake(session: Session, received: Any, start: datetime, end: datetime) -> dict[str, Any]:
    by_channel: dict[str, int] = {}
    orders = county = answered = screened = merged = 0
    for channel, status, count in session.execute(
            select(WorkOrder.channel, WorkOrder.status, func.count()).where(received)
            .group_by(WorkOrder.channel, WorkOrder.status)):
        orders += count
        county += count if channel == _COUNTY else 0
        if status == Status.INVALID:
            screened += count
        elif status == Status.MERGED:
            merged += count
        else:
            by_channel[channel] = by_channel.get(channel, 0) + count
            answered += count if status == Status.ANSWERED else 0
    calls = county_calls = 0
    outcomes: dict[str, int] = {}
    for channel, outcome, count in session.execute(
            select(Call.channel, Call.outcome, func.count()).where(Call.at >= start, Call.at < end)
            .group_by(Call.channel, Call.outcome)):
        calls += count
        county_calls += count if channel == _COUNTY else 0
        outcomes[outcome] = outcomes.get(outcome, 0) + count
    valid = sum(by_channel.values())
    return {
        "calls_connected": calls + orders, "calls_from_county_platforms": county_calls + county,
        "valid_items_accepted": valid,
        "valid_items_by_channel": [{"channel": c, "items": n, "share_pct": _pct(n, valid)}
                                   for c, n in sorted(by_channel.items(), key=lambda kv: (-kv[1], kv[0]))],
        "calls_not_valid": {"call_log": calls, "screened_out": screened, "merged": merged, "by_outcome": outcomes},
        "direct_answers": answered, "direct_answers_share_pct": _pct(answered, valid),
    }


def _categories(session: Session, valid: Any) -> dict[str, Any]:
    handed = case((WorkOrder.dispatched_at.is_not(None), 1), else_=0)
    rows = session.execute(select(WorkOrder.category_id, func.count(), func.sum(handed)).where(valid)
                           .group_by(WorkOrder.category_id)).all()
    categories = {c.id: c for c in session.scalars(select(Category))}
    by_code = {c.code: c for c in categories.values()}
    tops: dict[str, int] = {}
    subs: dict[str, list[tuple[str, int]]] = {}
    handed_by_sub: list[tuple[str, int]] = []
    unclassified = 0
    for category_id, items, handed_items in rows:
        if category_id is None:
            unclassified += items
            continue
        code = categories[category_id].code
        top = code.split(".", 1)[0]
        tops[top] = tops.get(top, 0) + items
        if "." in code:
            subs.setdefault(top, []).append((code, items))
            handed_by_sub.append((code, handed_items or 0))
    valid_total = sum(tops.values()) + unclassified
    ranking = sorted(tops.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    name = lambda code: {"code": code, "name_zh": by_code[code].name_zh, "name_en": by_code[code].name_en}  # noqa: E731
    return {
        "top_categories_in_rank_order": [
            {"rank": i, **name(code), "items": n, "share_pct": _pct(n, valid_total),
             "subtopics": [{**name(s), "items": m} for s, m in sorted(subs.get(code, []),
                                                                      key=lambda kv: (-kv[1], kv[0]))[:SUBTOPICS]]}
            for i, (code, n) in enumerate(ranking, start=1)],
        "unclassified_items": unclassified,
        "hot_topics": [{**name(code), "handed": n} for code, n in
                       sorted(handed_by_sub, key=lambda kv: (-kv[1], kv[0]))[:HOT_TOPICS] if n],
    }


def _handling(session: Session, valid: Any, start: datetime, end: datetime) -> dict[str, Any]:
    closed = case((and_(WorkOrder.status == Status.CLOSED, WorkOrder.closed_at < end), 1), else_=0)
    handed, completed = session.execute(select(func.count(), func.sum(closed))
                                        .where(valid, WorkOrder.dispatched_at.is_not(None))).one()
    completed = completed or 0
    visits = dict(session.execute(select(ReturnVisit.satisfaction, func.count())
                                  .where(ReturnVisit.visited_at >= start, ReturnVisit.visited_at < end)
                                  .group_by(ReturnVisit.satisfaction)).all())
    total_visits = sum(visits.values())
    satisfied = visits.get(Satisfaction.SATISFIED, 0) + visits.get(Satisfaction.BASICALLY, 0)
    forwarded, adopted = _suggestions(session, valid)
    return {
        "handed_to_units": handed, "handed_to_units_completed": completed,
        "handed_to_units_completion_rate_pct": _pct(completed, handed),
        "return_visits": total_visits, "visits_by_satisfaction": visits,
        "satisfaction_rate_pct": _pct(satisfied, total_visits),
        "suggestions_forwarded": forwarded, "suggestions_adopted": adopted,
        "suggestions_adoption_rate_pct": _pct(adopted, forwarded),
    }


def _suggestions(session: Session, valid: Any) -> tuple[int, int]:
    """Suggestions handed to units, and those whose unit's last reply says adopted."""
    suggestion = and_(valid, WorkOrder.item_type == "suggestion", WorkOrder.dispatched_at.is_not(None))
    forwarded = session.scalar(select(func.count()).where(suggestion))
    last: dict[int, bool] = {}
    for order_id, payload in session.execute(
            select(Event.work_order_id, Event.payload).join(WorkOrder, WorkOrder.id == Event.work_order_id)
            .where(suggestion, Event.name == "reply_submitted").order_by(Event.id)):
        last[order_id] = bool((payload or {}).get("adopted"))
    return forwarded, sum(last.values())


def _overdue() -> Any:
    """A lead assignment whose handling deadline passed before it replied, returned, ended, or the period did."""
    finished = func.coalesce(Assignment.replied_at, Assignment.returned_at, Assignment.ended_at,
                             bindparam("period_end", type_=Assignment.replied_at.type))
    return case((and_(Assignment.due_at.is_not(None), finished > Assignment.due_at), 1), else_=0)


def _supervision(session: Session, valid: Any, start: datetime, end: datetime) -> dict[str, Any]:
    lead = and_(Assignment.role == "lead", Assignment.dispatched_at >= start, Assignment.dispatched_at < end)
    assignments, overdue = session.execute(select(func.count(), func.sum(_overdue())).where(lead),
                                           {"period_end": end}).one()
    decisions = dict(session.execute(select(ReturnRequest.decision, func.count())
                                     .where(ReturnRequest.requested_at >= start, ReturnRequest.requested_at < end)
                                     .group_by(ReturnRequest.decision)).all())
    cases = dict(session.execute(select(SupervisionCase.kind, func.count())
                                 .where(SupervisionCase.opened_at >= start, SupervisionCase.opened_at < end)
                                 .group_by(SupervisionCase.kind)).all())
    rungs = dict(session.execute(select(Event.name, func.count())
                                 .where(Event.name.in_(("deadline_warned", "deadline_missed", "unit_put_on_notice")),
                                        Event.at >= start, Event.at < end).group_by(Event.name)).all())
    named = set(session.scalars(select(Event.unit_id).distinct().where(
        Event.name == "unit_put_on_notice", Event.at >= start, Event.at < end, Event.unit_id.is_not(None))))
    named |= set(session.scalars(select(CirculatedNotice.unit_id).distinct().where(
        CirculatedNotice.drawn_at >= start, CirculatedNotice.drawn_at < end)))
    flags = session.execute(select(func.sum(case((WorkOrder.false_completion.is_(True), 1), else_=0)),
                                   func.sum(case((WorkOrder.redo_count > 0, 1), else_=0))).where(valid)).one()
    units = {u.id: u for u in session.scalars(select(Unit).where(Unit.id.in_(named)))} if named else {}
    return {
        "lead_assignments": assignments, "overdue": overdue or 0, "overdue_rate_pct": _pct(overdue or 0, assignments),
        "returns": sum(decisions.values()), "returns_approved": decisions.get(Decision.APPROVED, 0),
        "returns_rejected": decisions.get(Decision.REJECTED, 0) + decisions.get(Decision.AUTO_REJECTED, 0),
        "returns_auto_rejected": decisions.get(Decision.AUTO_REJECTED, 0),
        "warnings": rungs.get("deadline_warned", 0), "overdue_notices": rungs.get("deadline_missed", 0),
        "cases": cases, "cases_total": sum(cases.values()),
        "false_completions": flags[0] or 0, "redo_orders": flags[1] or 0,
        "units_on_notice": sorted(({"code": u.code, "name_zh": u.name_zh, "name_en": u.name_en}
                                   for u in units.values()), key=lambda u: u["code"]),
    }


def _units(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Lead units by the orders dispatched to them in the period."""
    returned = case((Assignment.returned_at.is_not(None), 1), else_=0)
    replied = case((Assignment.replied_at.is_not(None), 1), else_=0)
    rows = session.execute(
        select(Assignment.unit_id, func.count(), func.sum(_overdue()), func.sum(returned), func.sum(replied))
        .where(Assignment.role == "lead", Assignment.dispatched_at >= start, Assignment.dispatched_at < end)
        .group_by(Assignment.unit_id), {"period_end": end}).all()
    units = {u.id: u for u in session.scalars(select(Unit))}
    ranked = sorted(rows, key=lambda r: (-r[1], units[r[0]].code))[:UNITS]
    return [{"code": units[u].code, "name_zh": units[u].name_zh, "name_en": units[u].name_en, "handed": n,
             "overdue": o or 0, "returned": r or 0, "replied": p or 0, "overdue_rate_pct": _pct(o or 0, n)}
            for u, n, o, r, p in ranked]


def _monthly(session: Session, period: Period) -> list[dict[str, Any]]:
    """Valid items and calls per local month of the period."""
    months: list[tuple[str, date]] = []
    day = period.start
    while day <= period.end:
        months.append((f"{day:%Y-%m}", day))
        day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    bounds = [local_bounds(first, first)[0] for _, first in months] + [period.bounds()[1]]

    def per_month(column: Any, *where: Any) -> dict[int, int]:
        # Bucketed in a subquery, so the GROUP BY names the bucket rather than repeating its CASE.
        months_of = select(case(*[(column < b, i) for i, b in enumerate(bounds[1:])], else_=len(months))
                           .label("month")).where(column >= bounds[0], column < bounds[-1], *where).subquery()
        return dict(session.execute(select(months_of.c.month, func.count()).group_by(months_of.c.month)).all())

    valid = per_month(WorkOrder.received_at, WorkOrder.status.not_in(_NOT_VALID))
    orders = per_month(WorkOrder.received_at)
    calls = per_month(Call.at)
    return [{"month": label, "valid_items": valid.get(i, 0), "calls": orders.get(i, 0) + calls.get(i, 0)}
            for i, (label, _) in enumerate(months)]

