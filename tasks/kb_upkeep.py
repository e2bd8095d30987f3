"""Keeping the knowledge base current: gaps listed to owner units, staleness reminders up the ladder, the rate."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.db import session_scope
from models.base import utcnow
from models.deadlines import rung_time
from models.directory import Category, District, Unit
from models.enums import CaseKind, CaseStatus
from models.intake import GapReason, KbGap, KbReminder, KbReview
from models.privacy import scrub
from models.supervision import Article, SupervisionCase
from models.work_order import WorkOrder
from tasks.outbox import enqueue_notice
from tasks.policy_store import current_policy
from tasks.transitions import Actor, record_event

GAP_LIST_MAX = 200  # questions per mail; the rest follow in the next list


def owner_for(session: Session, *, category_id: int | None, district_id: int | None) -> int | None:
    """The unit that should write an article for a category: the routing catalogue's lead unit."""
    if category_id is None:
        return None
    policy = current_policy(session).policy
    category = session.get(Category, category_id)
    district = session.get(District, district_id) if district_id else None
    district_code = district.code.split(".", 1)[0] if district else None
    lead, _ = policy.route(category.code, district_code)
    return session.scalar(select(Unit.id).where(Unit.code == lead))


def record_gap(*, session: Session, question: str, reason: GapReason, at: datetime, recorded_by: str,
               order: WorkOrder | None = None, category_id: int | None = None,
               article: Article | None = None) -> KbGap:
    """Record a question the knowledge base could not answer, owned by the unit that should answer it."""
    category_id = category_id or (order.category_id if order else None) or (article.category_id if article else None)
    owner = article.owner_unit_id if article and article.owner_unit_id else owner_for(
        session, category_id=category_id, district_id=order.district_id if order else None)
    gap = KbGap(question=question[:4000], work_order_id=order.id if order else None, category_id=category_id,
                owner_unit_id=owner, article_id=article.id if article else None, reason=reason, asked_at=at,
                recorded_by=recorded_by)
    session.add(gap)
    return gap


@dataclass(frozen=True)
class GapLists:
    units: int
    gaps: int


def send_gap_lists(*, at: datetime | None = None) -> GapLists:
    """Mail each owner unit the questions it has not been sent yet; gaps with no owner go to supervisors."""
    at = at or utcnow()
    with session_scope() as session:
        gaps = session.scalars(select(KbGap).where(KbGap.listed_at.is_(None)).order_by(KbGap.id)).all()
        by_unit: dict[int | None, list[KbGap]] = defaultdict(list)
        for gap in gaps:
            if len(by_unit[gap.owner_unit_id]) < GAP_LIST_MAX:
                by_unit[gap.owner_unit_id].append(gap)
        numbers = dict(session.execute(select(WorkOrder.id, WorkOrder.number).where(
            WorkOrder.id.in_({g.work_order_id for g in gaps if g.work_order_id}))).all())
        supervisors = current_policy(session).policy.recipients.supervisors
        for unit_id, listed in by_unit.items():
            unit = session.get(Unit, unit_id) if unit_id else None
            questions = [{"asked_at": g.asked_at.isoformat(), "question": scrub(g.question)[:300],
                          "order_number": numbers.get(g.work_order_id), "reason": g.reason,
                          "article_id": g.article_id} for g in listed]
            enqueue_notice(session, kind="kb_gap_list", order=None, unit=unit,
                           recipients=[unit.email] if unit else list(supervisors), at=at,
                           extra={"questions": questions, "count": len(questions)})
            for gap in listed:
                gap.listed_at = at
        return GapLists(units=len(by_unit), gaps=sum(len(v) for v in by_unit.values()))


def review_deadline(review_by: date, tz: Any) -> datetime:
    """An article is stale from the first moment after its review-by day."""
    return datetime.combine(review_by + timedelta(days=1), time(0), tzinfo=tz)


@dataclass
class StaleReport:
    """What one staleness pass did, and a row per article reminded, for the run's artifact."""

    reminders: int = 0
    cases_opened: int = 0
    put_on_notice: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)


_RUNG_EVENT = {"warning": "kb_review_due_warned", "overdue": "kb_review_overdue", "case": "kb_stale_case_opened",
               "notice": "kb_stale_case_put_on_notice"}


def remind_stale_articles(*, at: datetime | None = None) -> StaleReport:
    """Climb the policy's escalation ladder for each article past (or near) its review-by date; each rung once."""
    at = at or utcnow()
    report = StaleReport()
    with session_scope() as session:
        policy = current_policy(session).policy
        calendar = policy.work_calendar()
        fired = {(r.article_id, r.review_by, r.rung) for r in session.scalars(select(KbReminder))}
        last_review = dict(session.execute(select(KbReview.article_id, KbReview.reviewed_at)
                                           .order_by(KbReview.reviewed_at)).all())
        due_now: dict[tuple[int, str], list[Article]] = defaultdict(list)
        added: dict[int, list[KbReminder]] = defaultdict(list)
        articles = session.scalars(select(Article).where(Article.active.is_(True), Article.owner_unit_id.is_not(None))
                                   .order_by(Article.code)).all()
        for article in articles:
            due = review_deadline(article.review_by, calendar.tz)
            started = min(last_review.get(article.id, article.updated_at), due)
            reached = _reached(policy, started=started, due=due, at=at)
            new = [rung for rung in reached if (article.id, article.review_by, rung) not in fired]
            for rung in new:
                reminder = KbReminder(article_id=article.id, unit_id=article.owner_unit_id,
                                      review_by=article.review_by, rung=rung, sent_at=at)
                session.add(reminder)
                added[article.owner_unit_id].append(reminder)
            if new:
                # Only the highest rung reached speaks; the lower ones it overtook are recorded as passed.
                due_now[(article.owner_unit_id, reached[-1])].append(article)
        for (unit_id, rung), listed in sorted(due_now.items()):
            _fire(session, unit_id=unit_id, rung=rung, articles=listed, reminders=added[unit_id], at=at,
                  report=report)
    return report


def _reached(policy: Any, *, started: datetime, due: datetime, at: datetime) -> list[str]:
    """The ladder's rungs whose moment has come; every rung after the warning fires at or after the deadline."""
    reached = []
    for rung in policy.escalation.ladder:
        if rung.rung != "warning" and at < due:
            break
        # The warning shares out the review period in clock time: it is months long, and its start may lie
        # in a year the working calendar no longer covers.
        moment = rung_time(rung, started=started, due=due, calendar=policy.work_calendar(),
                           warning_fraction=policy.time_limits.warning_fraction)
        if at >= moment:
            reached.append(rung.rung)
    return reached


def _fire(session: Session, *, unit_id: int, rung: str, articles: list[Article], reminders: list[KbReminder],
          at: datetime, report: StaleReport) -> None:
    policy = current_policy(session).policy
    unit = session.get(Unit, unit_id)
    listed = [{"code": a.code, "title": a.title, "review_by": a.review_by.isoformat()} for a in articles]
    report.reminders += len(articles)
    report.rows += [{"unit": unit.name_zh, "rung": rung, **entry} for entry in listed]
    extra: dict[str, Any] = {"articles": listed, "rung": rung}
    if rung in ("case", "notice"):
        case = _open_case(session, unit, articles, at, report)
        extra["case_id"] = case.id
        if rung == "notice" and not case.on_notice:
            case.on_notice, case.level = True, max(case.level, 2)
            report.put_on_notice += 1
        for reminder in reminders:
            reminder.case_id = case.id
    recipients = {
        "warning": [unit.email],
        "overdue": [unit.email, unit.leader_email],
        "case": list(policy.recipients.supervisors),
        "notice": list(policy.recipients.supervisors) + list(policy.recipients.report_leaders),
    }[rung]
    enqueue_notice(session, kind=f"kb_stale_{rung}", order=None, unit=unit, recipients=recipients, at=at, extra=extra)
    record_event(session, order=None, name=_RUNG_EVENT[rung], actor=Actor.system(), at=at, unit_id=unit_id,
                 payload={"articles": [a.code for a in articles]})


def _open_case(session: Session, unit: Unit, articles: list[Article], at: datetime,
               report: StaleReport) -> SupervisionCase:
    """The unit's one open stale-knowledge-base case, opened now if there is none."""
    case = session.scalar(select(SupervisionCase).where(
        SupervisionCase.unit_id == unit.id, SupervisionCase.kind == CaseKind.KB_STALE,
        SupervisionCase.status == CaseStatus.OPEN))
    codes = [a.code for a in articles]
    if case is None:
        case = SupervisionCase(unit_id=unit.id, kind=CaseKind.KB_STALE, opened_at=at, evidence={"articles": codes},
                               finding=f"{unit.name_zh}的知识库条目逾期未复核：{'、'.join(codes)}")
        session.add(case)
        report.cases_opened += 1
    else:
        case.evidence = {**case.evidence, "articles": sorted(set(case.evidence.get("articles", [])) | set(codes))}
    session.flush()
    return case


def kb_stale_rate(*, unit_id: int, period: tuple[date, date], session: Session | None = None) -> float:
    """Share (0 to 1) of a unit's active articles that were past their review-by date during [start, end)."""
    if session is None:
        with session_scope(readonly=True) as own:
            return kb_stale_rate(unit_id=unit_id, period=period, session=own)
    start, end = period
    tz = current_policy(session).policy.work_calendar().tz
    articles = session.execute(select(Article.id, Article.review_by).where(
        Article.owner_unit_id == unit_id, Article.active.is_(True))).all()
    if not articles:
        return 0.0
    reviews: dict[int, list[tuple[date, date]]] = defaultdict(list)
    for article_id, reviewed_at, was_due in session.execute(
        select(KbReview.article_id, KbReview.reviewed_at, KbReview.was_due)
        .where(KbReview.article_id.in_([a.id for a in articles])).order_by(KbReview.reviewed_at)
    ):
        reviews[article_id].append((reviewed_at.astimezone(tz).date(), was_due))
    last_day = end - timedelta(days=1)
    stale = 0
    for article_id, review_by in articles:
        history = reviews.get(article_id, [])
        late_in_period = any(start <= day < end and day > was_due for day, was_due in history)
        # The review-by date in force at the end is what the first review after the period found due.
        in_force = next((was_due for day, was_due in history if day >= end), review_by)
        if late_in_period or in_force < last_day:
            stale += 1
    return stale / len(articles)
