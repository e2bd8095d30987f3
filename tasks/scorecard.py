"""Unit scorecards: per unit and period, the rates the hotline office holds units to, and the buck-passing index.

Every rate is defined in the README ("Unit scorecards"); the code follows those definitions word for word.
"""

import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from duban.errors import ValidationFailed
from models.base import utcnow
from models.calendar import WorkCalendar
from models.directory import Unit
from models.enums import AssignmentRole, Decision, Satisfaction
from models.policy_values import SCORE_KEYS
from models.requests import ReturnRequest, ReturnVisit
from models.supervision import Article, SupervisionCase
from models.supervision_records import Escalation, SupervisionFlag
from models.work_order import Assignment
from tasks.policy_store import current_policy

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_RANGE = re.compile(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})")
_REJECTED = (Decision.REJECTED, Decision.AUTO_REJECTED)


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, named as the admin wrote it (a month, or a range of local dates)."""

    label: str
    start: datetime
    end: datetime


def parse_period(text: str, tz: ZoneInfo) -> Period:
    """A month "2021-03" or an inclusive range of local dates "2021-03-01..2021-03-15"."""
    text = text.strip()
    if match := _MONTH.fullmatch(text):
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12:
            raise ValidationFailed(f"period {text!r}: month {month} does not exist; write e.g. 2021-03")
        return month_period(year, month, tz)
    if match := _RANGE.fullmatch(text):
        try:
            first, last = date.fromisoformat(match[1]), date.fromisoformat(match[2])
        except ValueError as exc:
            raise ValidationFailed(f"period {text!r}: {exc}; write e.g. 2021-03-01..2021-03-15") from None
        if last < first:
            raise ValidationFailed(f"period {text!r} ends before it starts")
        return Period(text, _midnight(first, tz), _midnight(last + timedelta(days=1), tz))
    raise ValidationFailed(f"period {text!r} is neither a month (2021-03) nor a date range (2021-03-01..2021-03-15)")


def month_period(year: int, month: int, tz: ZoneInfo) -> Period:
    """The local calendar month as a period."""
    following = date(year + month // 12, month % 12 + 1, 1)
    return Period(f"{year:04d}-{month:02d}", _midnight(date(year, month, 1), tz), _midnight(following, tz))


def previous_months(period: Period, count: int, tz: ZoneInfo) -> list[Period]:
    """The `count` months ending with the month `period` starts in, oldest first (for trends)."""
    local = period.start.astimezone(tz)
    months = []
    year, month = local.year, local.month
    for _ in range(count):
        months.append(month_period(year, month, tz))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return months[::-1]


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(ZoneInfo("UTC"))


@dataclass
class UnitScore:
    """One unit's numbers for one period; a rate is None when its denominator is 0."""

    unit_code: str
    unit_name: str
    dispatched: int = 0
    assisted: int = 0
    sign_counted: int = 0
    signed_on_time: int = 0
    response_rate: float | None = None
    late_sign_rate: float | None = None
    avg_sign_hours: float | None = None
    handling_counted: int = 0
    completed_on_time: int = 0
    on_time_rate: float | None = None
    overdue_rate: float | None = None
    assist_deadlines_missed: int = 0
    visits: int = 0
    resolved: int = 0
    satisfied: int = 0
    resolution_rate: float | None = None
    satisfaction_rate: float | None = None
    redos: int = 0
    redo_rate: float | None = None
    returned: int = 0
    return_rate: float | None = None
    returns_decided: int = 0
    returns_rejected: int = 0
    returns_auto_rejected: int = 0
    rejected_return_rate: float | None = None
    false_completions: int = 0
    false_completion_rate: float | None = None
    repeat_complaints: int = 0
    cases_opened: int = 0
    kb_articles: int = 0
    kb_stale: int = 0
    kb_stale_rate: float | None = None
    buck_passing_index: float = 0.0
    _sign_hours: list[float] = field(default_factory=list, repr=False)

    def row(self) -> dict[str, Any]:
        """The numbers as a flat dict (rates rounded to 4 places) for tables, JSON and CSV."""
        data = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in data.items()}


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def compute_scorecards(session: Session, *, period: Period, as_of: datetime | None = None) -> list[UnitScore]:
    """Every unit with something to account for in the period, ranked by buck-passing index, highest first."""
    as_of = as_of or utcnow()
    policy = current_policy(session).policy
    calendar = policy.work_calendar()
    units = {uid: (code, name) for uid, code, name in session.execute(select(Unit.id, Unit.code, Unit.name_zh))}
    scores: dict[int, UnitScore] = {}

    def score(unit_id: int) -> UnitScore:
        if unit_id not in scores:
            scores[unit_id] = UnitScore(*units[unit_id])
        return scores[unit_id]

    in_period = and_(Assignment.dispatched_at >= period.start, Assignment.dispatched_at < period.end)
    _cohort(session, in_period, as_of, calendar, score)
    returned: dict[int, set[int]] = defaultdict(set)
    for assignment_id, unit_id, decision in session.execute(
            select(ReturnRequest.assignment_id, Assignment.unit_id, ReturnRequest.decision)
            .join(Assignment, Assignment.id == ReturnRequest.assignment_id)
            .where(Assignment.role == AssignmentRole.LEAD, in_period)):
        s = score(unit_id)
        returned[unit_id].add(assignment_id)
        s.returns_decided += decision != Decision.PENDING
        s.returns_rejected += decision in _REJECTED
        s.returns_auto_rejected += decision == Decision.AUTO_REJECTED
    for unit_id, assignments in returned.items():
        score(unit_id).returned = len(assignments)
    for unit_id, count in session.execute(select(Assignment.unit_id, func.count()).where(
            Assignment.role == AssignmentRole.ASSIST, in_period).group_by(Assignment.unit_id)):
        score(unit_id).assisted = count
    for unit_id, count in session.execute(select(Escalation.unit_id, func.count()).where(
            Escalation.stage == "assist_handling", Escalation.rung == "overdue", Escalation.fired_at >= period.start,
            Escalation.fired_at < period.end).group_by(Escalation.unit_id)):
        score(unit_id).assist_deadlines_missed = count
    for unit_id, satisfaction, resolved in session.execute(
            select(ReturnVisit.unit_id, ReturnVisit.satisfaction, ReturnVisit.resolved).where(
                ReturnVisit.unit_id.is_not(None), ReturnVisit.visited_at >= period.start,
                ReturnVisit.visited_at < period.end)):
        s = score(unit_id)
        s.visits += 1
        s.resolved += bool(resolved)
        s.satisfied += satisfaction != Satisfaction.UNSATISFIED
        s.redos += satisfaction == Satisfaction.UNSATISFIED
    for unit_id, kind, count in session.execute(
            select(SupervisionFlag.unit_id, SupervisionFlag.kind, func.count()).where(
                SupervisionFlag.unit_id.is_not(None), SupervisionFlag.at >= period.start,
                SupervisionFlag.at < period.end).group_by(SupervisionFlag.unit_id, SupervisionFlag.kind)):
        if kind == "false_completion":
            score(unit_id).false_completions = count
        elif kind == "repeat_complaint":
            score(unit_id).repeat_complaints = count
    for unit_id, count in session.execute(select(SupervisionCase.unit_id, func.count()).where(
            SupervisionCase.unit_id.is_not(None), SupervisionCase.opened_at >= period.start,
            SupervisionCase.opened_at < period.end).group_by(SupervisionCase.unit_id)):
        score(unit_id).cases_opened = count
    last_day = (period.end - timedelta(microseconds=1)).astimezone(ZoneInfo(policy.timezone)).date()
    for unit_id, total, stale in session.execute(
            select(Article.owner_unit_id, func.count(), func.sum(case((Article.review_by < last_day, 1), else_=0)))
            .where(Article.active.is_(True), Article.owner_unit_id.is_not(None)).group_by(Article.owner_unit_id)):
        if unit_id in scores:
            scores[unit_id].kb_articles, scores[unit_id].kb_stale = total, int(stale or 0)
    weights = policy.scorecard.weights
    for s in scores.values():
        _finish(s, weights)
    return sorted(scores.values(), key=lambda s: (-s.buck_passing_index, s.unit_code))


def _cohort(session: Session, in_period: Any, as_of: datetime, calendar: WorkCalendar, score: Any) -> None:
    """Sign-for and handling outcomes of the lead assignments dispatched in the period."""
    for (unit_id, dispatched_at, sign_due_at, signed_at, due_at, replied_at, active, ended_at) in session.execute(
            select(Assignment.unit_id, Assignment.dispatched_at, Assignment.sign_due_at, Assignment.signed_at,
                   Assignment.due_at, Assignment.replied_at, Assignment.active, Assignment.ended_at)
            .where(Assignment.role == AssignmentRole.LEAD, in_period)):
        s = score(unit_id)
        s.dispatched += 1
        if sign_due_at is not None:
            if signed_at is not None:
                s.sign_counted += 1
                s.signed_on_time += signed_at <= sign_due_at
                s._sign_hours.append(calendar.working_seconds_between(dispatched_at, signed_at) / 3600)
            elif not _excluded(active, ended_at, sign_due_at, as_of):
                s.sign_counted += 1
        if due_at is not None:
            if replied_at is not None:
                s.handling_counted += 1
                s.completed_on_time += replied_at <= due_at
            elif not _excluded(active, ended_at, due_at, as_of):
                s.handling_counted += 1


def _excluded(active: bool, ended_at: datetime | None, due_at: datetime, as_of: datetime) -> bool:
    """Not done, and not late either: still within its time, or it left the unit before its deadline."""
    if active:
        return due_at > as_of
    return ended_at is not None and ended_at <= due_at


def _finish(s: UnitScore, weights: dict[str, float]) -> None:
    s.response_rate = _rate(s.signed_on_time, s.sign_counted)
    s.late_sign_rate = None if s.response_rate is None else 1 - s.response_rate
    s.avg_sign_hours = sum(s._sign_hours) / len(s._sign_hours) if s._sign_hours else None
    s.on_time_rate = _rate(s.completed_on_time, s.handling_counted)
    s.overdue_rate = None if s.on_time_rate is None else 1 - s.on_time_rate
    s.resolution_rate = _rate(s.resolved, s.visits)
    s.satisfaction_rate = _rate(s.satisfied, s.visits)
    s.redo_rate = _rate(s.redos, s.visits)
    s.return_rate = _rate(s.returned, s.dispatched)
    s.rejected_return_rate = _rate(s.returns_rejected, s.returns_decided)
    s.false_completion_rate = _rate(s.false_completions, s.visits)
    s.kb_stale_rate = _rate(s.kb_stale, s.kb_articles)
    s.buck_passing_index = sum(weights[key] * (getattr(s, key) or 0.0) for key in SCORE_KEYS)


def trend(session: Session, *, periods: list[Period], as_of: datetime | None = None) -> dict[str, list[float | None]]:
    """The buck-passing index of each unit over consecutive periods (None where it had nothing to account for)."""
    series: dict[str, list[float | None]] = defaultdict(lambda: [None] * len(periods))
    for i, period in enumerate(periods):
        for s in compute_scorecards(session, period=period, as_of=as_of):
            series[s.unit_code][i] = s.buck_passing_index
    return dict(series)


@dataclass(frozen=True)
class ScorecardSet:
    """A period's scorecards with the trend of each unit's index over the months before it."""

    period: Period
    scores: list[UnitScore]
    trend_periods: list[Period]
    trend: dict[str, list[float | None]]
    repeat_window_days: int


def default_period(now: datetime, tz: ZoneInfo) -> Period:
    """The last whole month before `now`, local time."""
    local = now.astimezone(tz)
    year, month = (local.year - 1, 12) if local.month == 1 else (local.year, local.month - 1)
    return month_period(year, month, tz)


def build_scorecards(*, period: str | None = None, as_of: datetime | None = None,
                     trend_months: int = 6) -> ScorecardSet:
    """Scorecards of a period ("2021-03", "2021-03-01..2021-03-15"; default the last month) and their trend."""
    from duban.db import session_scope
    from duban.settings import get_settings

    if not 1 <= trend_months <= 36:
        raise ValidationFailed(f"trend_months {trend_months} is out of range; expected 1 to 36")
    with session_scope(readonly=True) as session:
        tz = ZoneInfo(current_policy(session).policy.timezone)
        chosen = parse_period(period, tz) if period else default_period(as_of or utcnow(), tz)
        scores = compute_scorecards(session, period=chosen, as_of=as_of)
        months = previous_months(chosen, trend_months, tz)
        series = trend(session, periods=months[:-1], as_of=as_of) if len(months) > 1 else {}
        series = {code: [*series.get(code, [None] * (len(months) - 1)), None] for code in
                  set(series) | {s.unit_code for s in scores}}
        for s in scores:
            series[s.unit_code][-1] = s.buck_passing_index
    return ScorecardSet(chosen, scores, months[:-1] + [chosen], series, get_settings().repeat_complaint_window_days)
