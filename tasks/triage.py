"""Triage of one received item: invalid, a duplicate to merge, a consultation to answer, or one to dispatch."""

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.db import session_scope
from duban.errors import InvalidTransition, NotFound
from duban.settings import get_settings
from models.base import utcnow
from models.directory import Category, District
from models.enums import FINAL_STATUSES, ActorKind, Status, label
from models.intake import GapReason, MergeLink
from models.lifecycle import Action
from models.privacy import scrub
from models.supervision import Article
from models.work_order import WorkOrder
from tasks.classify import suggest_category
from tasks.kb import search_articles
from tasks.kb_upkeep import record_gap
from tasks.orders import create_order
from tasks.outbox import enqueue_notice
from tasks.policy_store import current_policy
from tasks.transitions import Actor, record_event, transition

# Statuses an earlier item may be in to be the master of a duplicate: still being handled.
MASTER_STATUSES = (Status.RECEIVED, Status.DISPATCHED, Status.RETURN_REQUESTED, Status.HANDLING, Status.REPLIED,
                   Status.VISITING)
_MEANINGFUL = re.compile(r"[\u3400-\u9fffA-Za-z]")
_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
_NOT_PLACE = re.compile(r"[\W_]+")
_MISDIAL = re.compile(r"测试|试一下|试试|test|打错|误拨|无声|没有说话|不说话|挂断")
_FILLER = re.compile(r"一下|不好意思|对不起|你好|您好|喂|了|的|啊|吗|呢|吧|好|电话|来电")
SAME_PLACE = 0.6
CANDIDATE_LIMIT = 500


class TriageKind(StrEnum):
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    ANSWER = "answer"
    DISPATCH = "dispatch"


@dataclass(frozen=True)
class TriageDecision:
    """What should happen to a received item, and why; apply_triage carries it out."""

    order_id: int
    number: str
    kind: TriageKind
    reason: str
    master_id: int | None = None
    master_number: str | None = None
    article_id: int | None = None
    article_code: str | None = None
    score: float | None = None
    category_code: str | None = None
    category_confidence: float | None = None
    gap: GapReason | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def invalid_reason(content: str) -> str | None:
    """Why an item's text is not a valid item (无效诉求), or None."""
    meaningful = _MEANINGFUL.findall(content)
    if not meaningful:
        return "没有可识别的诉求内容（只有符号或数字）"
    if len(meaningful) < 4:
        return "内容过短，无法识别诉求"
    if len(set(meaningful)) <= 2:
        return "内容为重复字符，无法识别诉求"
    if _MISDIAL.search(content.lower()):
        rest = _FILLER.sub("", _MISDIAL.sub("", content.lower()))
        if len(_MEANINGFUL.findall(rest)) < 4:
            return "测试、误拨或无声来电"
    return None


def _bigrams(text: str) -> set[str]:
    return {run[i:i + 2] for run in _CJK_RUN.findall(scrub(text)) for i in range(len(run) - 1)} | set(
        re.findall(r"[a-z0-9]{2,}", text.lower()))


def similarity(a: str, b: str) -> float:
    """Dice coefficient of the two texts' character bigrams, 0 to 1."""
    x, y = _bigrams(a), _bigrams(b)
    return round(2 * len(x & y) / (len(x) + len(y)), 4) if x and y else 0.0


def _place(address: str) -> str:
    return _NOT_PLACE.sub("", unicodedata.normalize("NFKC", address)).lower()


def place_similarity(a: WorkOrder, b: WorkOrder) -> float:
    """1 for the same address, a bigram similarity of two addresses, 0.6 for the same district with no address."""
    pa, pb = _place(a.address), _place(b.address)
    if pa and pb:
        if pa == pb or (min(len(pa), len(pb)) >= 4 and (pa in pb or pb in pa)):
            return 1.0
        return similarity(pa, pb)
    return SAME_PLACE if a.district_id and a.district_id == b.district_id else 0.0


def _find_master(session: Session, order: WorkOrder, category_id: int) -> tuple[WorkOrder, float, dict] | None:
    """The earlier open item of the same category at the same place with similar text, if any."""
    settings = get_settings()
    since = order.received_at - timedelta(hours=settings.duplicate_window_hours)
    excluded = set(order.extra.get("not_duplicate_of", [])) | {order.id}
    candidates = session.scalars(
        select(WorkOrder).where(
            WorkOrder.category_id == category_id, WorkOrder.status.in_([s.value for s in MASTER_STATUSES]),
            WorkOrder.received_at >= since, WorkOrder.received_at <= order.received_at, WorkOrder.id < order.id,
        ).order_by(WorkOrder.received_at.desc()).limit(CANDIDATE_LIMIT)
    ).all()
    best = None
    for candidate in candidates:
        if candidate.id in excluded:
            continue
        place = place_similarity(order, candidate)
        if place < SAME_PLACE:
            continue
        text = similarity(order.content, candidate.content)
        # Without an address only the district matched: ask for nearly the same words.
        needed = settings.duplicate_min_similarity if place > SAME_PLACE else max(settings.duplicate_min_similarity,
                                                                                 0.6)
        if text < needed:
            continue
        score = round((place + text) / 2, 4)
        if best is None or score > best[1]:
            best = (candidate, score, {"place": place, "text": text})
    return best


def triage(*, order_id: int, at: datetime, session: Session | None = None) -> TriageDecision:
    """Decide what to do with one received item; reads only."""
    if session is None:
        with session_scope(readonly=True) as own:
            return triage(order_id=order_id, at=at, session=own)
    order = session.get(WorkOrder, order_id)
    if order is None:
        raise NotFound(f"work order id {order_id} does not exist")
    if order.status != Status.RECEIVED:
        raise InvalidTransition(order.number, order.status, "triage", "only received items are triaged")
    base = {"order_id": order.id, "number": order.number}
    reason = invalid_reason(f"{order.title} {order.content}")
    if reason:
        return TriageDecision(**base, kind=TriageKind.INVALID, reason=reason)

    suggestion_code = suggestion_confidence = None
    category_id = order.category_id
    if category_id is None:
        suggestion = suggest_category(session=session, text=f"{order.title} {order.content}")
        suggestion_code, suggestion_confidence = suggestion.code, suggestion.confidence
        if suggestion.code and suggestion.confidence >= get_settings().classify_min_confidence:
            category_id = session.scalar(select(Category.id).where(Category.code == suggestion.code))
    suggested = {"category_code": suggestion_code, "category_confidence": suggestion_confidence}

    if category_id is not None:
        found = _find_master(session, order, category_id)
        if found:
            master, score, evidence = found
            return TriageDecision(**base, kind=TriageKind.DUPLICATE, master_id=master.id, master_number=master.number,
                                  score=score, evidence=evidence, reason=f"与{master.number}为同一地点的同一诉求",
                                  **suggested)

    policy = current_policy(session).policy
    if order.item_type not in policy.knowledge_base.answerable_item_types:
        return TriageDecision(**base, kind=TriageKind.DISPATCH, reason="需交承办单位办理", **suggested)
    hits = search_articles(session=session, question=f"{order.title} {order.content}", limit=3)
    best = hits[0] if hits else None
    if best is None or best.score < get_settings().kb_answer_min_score:
        return TriageDecision(**base, kind=TriageKind.DISPATCH, gap=GapReason.NO_ARTICLE,
                              score=best.score if best else None, reason="知识库无可答复的条目，转承办单位答复",
                              evidence={"hits": [(h.code, h.score) for h in hits]}, **suggested)
    today = at.astimezone(policy.work_calendar().tz).date()
    if best.review_by < today:
        return TriageDecision(**base, kind=TriageKind.DISPATCH, gap=GapReason.STALE_ARTICLE, article_id=best.article_id,
                              article_code=best.code, score=best.score,
                              reason=f"知识库条目{best.code}已过复核期限，不能据此答复", **suggested)
    return TriageDecision(**base, kind=TriageKind.ANSWER, article_id=best.article_id, article_code=best.code,
                          score=best.score, reason=f"依据知识库条目{best.code}《{best.title}》直接答复", **suggested)


def _tell_citizen(session: Session, order: WorkOrder, kind: str, at: datetime, extra: dict[str, Any]) -> None:
    """Mail the citizen when they gave an address; hotline staff call the others back from the event log."""
    if order.citizen_email:
        enqueue_notice(session, kind=kind, order=order, unit=None, recipients=[order.citizen_email], at=at,
                       extra=extra)


def apply_triage(*, session: Session, order_id: int, at: datetime, decision: TriageDecision | None = None,
                 actor: Actor | None = None) -> Status:
    """Carry out a triage decision through transition(); an item to dispatch stays received for the caller."""
    actor = actor or Actor.system()
    decision = decision or triage(order_id=order_id, at=at, session=session)
    order = session.get(WorkOrder, order_id)
    if decision.kind == TriageKind.INVALID:
        return transition(order_id=order_id, action=Action.SCREEN_OUT, actor=actor, at=at, session=session,
                          payload={"reason": decision.reason}).target
    if decision.kind == TriageKind.DUPLICATE:
        change = transition(order_id=order_id, action=Action.MERGE, actor=actor, at=at, session=session,
                            payload={"master_id": decision.master_id, "score": decision.score,
                                     "reason": decision.reason})
        session.add(MergeLink(work_order_id=order_id, master_id=decision.master_id, score=decision.score or 0.0,
                              evidence=decision.evidence, merged_at=at, merged_by=actor.id))
        _tell_citizen(session, order, "merged_into", at, {"master_number": decision.master_number})
        return change.target
    if decision.kind == TriageKind.ANSWER:
        article = session.get(Article, decision.article_id)
        change = transition(order_id=order_id, action=Action.ANSWER, actor=actor, at=at, session=session,
                            payload={"article_id": article.id, "article_code": article.code,
                                     "article_title": article.title, "score": decision.score})
        _tell_citizen(session, order, "kb_answer", at, {"article_code": article.code, "article_title": article.title,
                                                        "answer": article.body[:2000]})
        return change.target
    if decision.gap is not None:
        article = session.get(Article, decision.article_id) if decision.article_id else None
        gap = record_gap(session=session, question=order.content, reason=decision.gap, at=at, recorded_by=actor.id,
                         order=order, article=article)
        session.flush()
        record_event(session, order=order, name="kb_gap_recorded", actor=actor, at=at,
                     payload={"gap_id": gap.id, "reason": decision.gap.value, "article": decision.article_code})
    if order.category_id is None and decision.category_code and (
            decision.category_confidence or 0) >= get_settings().classify_min_confidence:
        order.category_id = session.scalar(select(Category.id).where(Category.code == decision.category_code))
        order.updated_at = at
        record_event(session, order=order, name="category_suggested", actor=actor, at=at,
                     payload={"category": decision.category_code, "confidence": decision.category_confidence})
    session.flush()
    return Status.RECEIVED


@dataclass(frozen=True)
class Split:
    """A wrong merge undone: the item lives on as a new order that is triaged again, never into that master."""

    original_number: str
    master_number: str
    new_order_id: int
    new_number: str


def split_merge(*, order_id: int, actor: Actor, reason: str, at: datetime) -> Split:
    """A supervisor splits a wrongly merged item off its master; the citizen is told the new number."""
    if actor.kind != ActorKind.SUPERVISOR:
        raise InvalidTransition("-", Status.MERGED, "split_merge", "only a supervisor may split a merge")
    if not reason.strip():
        raise InvalidTransition("-", Status.MERGED, "split_merge", "splitting a merge needs a reason")
    with session_scope() as session:
        link = session.scalar(select(MergeLink).where(MergeLink.work_order_id == order_id).with_for_update())
        original = session.get(WorkOrder, order_id)
        if original is None:
            raise NotFound(f"work order id {order_id} does not exist")
        if link is None or link.split_at is not None:
            raise InvalidTransition(original.number, original.status, "split_merge",
                                    "it is not merged under a master (or was split already)")
        master = session.get(WorkOrder, link.master_id)
        category = session.get(Category, original.category_id) if original.category_id else None
        district = session.get(District, original.district_id) if original.district_id else None
        new = create_order(
            session=session, channel=original.channel, item_type=original.item_type, content=original.content,
            category_code=category.code if category else None, district_code=district.code if district else None,
            urgency=original.urgency, at=at, actor_id=actor.id, title=original.title, address=original.address,
            citizen_name=original.citizen_name, citizen_phone=original.citizen_phone,
            citizen_email=original.citizen_email, confidential=original.confidential,
            extra={**original.extra, "split_from": original.number,
                   "not_duplicate_of": sorted(set(original.extra.get("not_duplicate_of", [])) | {master.id})},
        )
        link.split_at, link.split_by, link.split_reason, link.split_order_id = at, actor.id, reason, new.id
        payload = {"master": master.number, "new_number": new.number, "reason": reason}
        record_event(session, order=original, name="merge_split", actor=actor, at=at, payload=payload)
        record_event(session, order=master, name="duplicate_split_off", actor=actor, at=at,
                     payload={"split": original.number, "new_number": new.number})
        _tell_citizen(session, original, "merge_split", at, {"new_number": new.number, "reason": reason})
        return Split(original.number, master.number, new.id, new.number)


def tell_merged_outcomes(*, at: datetime | None = None) -> int:
    """Tell the citizens of merged items how their master ended, once it reached a final status."""
    at = at or utcnow()
    told = 0
    with session_scope() as session:
        links = session.scalars(
            select(MergeLink).join(WorkOrder, WorkOrder.id == MergeLink.master_id)
            .where(MergeLink.told_at.is_(None), MergeLink.split_at.is_(None),
                   WorkOrder.status.in_([s.value for s in FINAL_STATUSES]))
            .order_by(MergeLink.id)
        ).all()
        for link in links:
            master = session.get(WorkOrder, link.master_id)
            merged = session.get(WorkOrder, link.work_order_id)
            outcome = {"master_number": master.number, "master_status": master.status,
                       "master_status_label": label(Status(master.status)),
                       "closed_at": master.closed_at.isoformat() if master.closed_at else None}
            _tell_citizen(session, merged, "merged_outcome", at, outcome)
            link.told_at = at
            record_event(session, order=merged, name="merged_citizen_told", actor=Actor.system(), at=at,
                         payload={**outcome, "by": "email" if merged.citizen_email else "callback"})
            told += 1
    return told
