"""Triage of received items: invalid, duplicates merged and split, consultations answered, the rest dispatched."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from duban.db import session_scope
from duban.errors import InvalidTransition
from models.directory import Category, Unit
from models.enums import Status
from models.intake import GapReason, KbGap, MergeLink
from models.lifecycle import Action
from models.records import Event, Notification
from models.work_order import Assignment
from tasks.dispatching import process_received
from tasks.intake import public_status
from tasks.triage import TriageKind, apply_triage, split_merge, tell_merged_outcomes, triage
from tests.factories import STAFF, SUPERVISOR, T0, step
from tests.intake_helpers import code_id, load_articles, new_item, order, search_ready

FUMES = "city_appearance_life_services.cooking_fumes"


@pytest.fixture
def ready(directory, tmp_path):
    search_ready(directory)
    load_articles(tmp_path, T0)
    return directory


def _apply(order_id: int, at=T0) -> Status:
    with session_scope() as session:
        return apply_triage(session=session, order_id=order_id, at=at)


def _events(order_id: int) -> list[tuple[str, dict]]:
    with session_scope(readonly=True) as session:
        return [(e.name, e.payload) for e in session.scalars(
            select(Event).where(Event.work_order_id == order_id).order_by(Event.id))]


def _notices(kind: str) -> list[tuple[list, dict]]:
    with session_scope(readonly=True) as session:
        notices = session.scalars(select(Notification).where(Notification.kind == kind))
        return [(n.recipients, n.context) for n in notices]


def test_items_that_are_not_valid_are_screened_out_with_the_reason(ready):
    for content in ("？？？…… 123", "喂喂", "啊啊啊啊啊啊啊", "测试一下", "打错了不好意思"):
        order_id = new_item(content=content, at=T0)
        decision = triage(order_id=order_id, at=T0)
        assert decision.kind == TriageKind.INVALID and decision.reason, content
        assert _apply(order_id) == Status.INVALID
        assert _events(order_id)[-1] == ("work_order_screened_out", {"reason": decision.reason})
    valid = new_item(content="家里停水三天了测试过水龙头都没水", at=T0, category="urban_rural_planning_construction."
                                                                      "water_supply_drainage")
    assert triage(order_id=valid, at=T0).kind == TriageKind.DISPATCH


def test_duplicates_are_merged_their_citizens_told_and_a_wrong_merge_split(ready):
    _same_matter_at_the_same_place_is_merged_under_the_first()
    _citizens_of_merged_items_are_told_the_outcome_once(T0 + timedelta(days=10))
    _a_supervisor_splits_a_wrong_merge_and_it_is_not_merged_again(T0 + timedelta(days=20))


def _same_matter_at_the_same_place_is_merged_under_the_first() -> None:
    master = new_item(content="建宁路88号楼下烧烤店油烟很大，每晚熏得开不了窗", category=FUMES, at=T0,
                      district="lusong.jianning", address="芦淞区建宁路88号")
    assert _apply(master) == Status.RECEIVED
    later = T0 + timedelta(hours=5)
    duplicate = new_item(content="建宁路88号烧烤店油烟熏人，开不了窗，请管一管", category=FUMES, at=later,
                         district="lusong.jianning", address="芦淞区建宁路 88 号", email="citizen2@example.com")
    elsewhere = new_item(content="建宁路88号楼下烧烤店油烟很大，每晚熏得开不了窗", category=FUMES, at=later,
                         district="hetang.yuetang", address="荷塘区月塘街道幸福小区")
    other_matter = new_item(content="建宁路88号楼下装修噪音很大", at=later, address="芦淞区建宁路88号",
                            category="city_appearance_life_services.noise")
    too_late = new_item(content="建宁路88号楼下烧烤店油烟很大，每晚熏得开不了窗", category=FUMES,
                        at=T0 + timedelta(days=4), address="芦淞区建宁路88号")
    decision = triage(order_id=duplicate, at=later)
    assert decision.kind == TriageKind.DUPLICATE and decision.master_id == master
    assert decision.evidence["place"] == 1.0 and decision.evidence["text"] >= 0.35
    assert _apply(duplicate, later) == Status.MERGED
    for order_id in (elsewhere, other_matter, too_late):
        assert triage(order_id=order_id, at=later).kind == TriageKind.DISPATCH
    assert order(duplicate).master_id == master
    [(recipients, context)] = _notices("merged_into")
    assert recipients == ["citizen2@example.com"] and context["master_number"] == order(master).number
    assert public_status(number=order(duplicate).number).merged_into == order(master).number


def _citizens_of_merged_items_are_told_the_outcome_once(base: datetime) -> None:
    master = new_item(content="建宁路88号楼下烧烤店油烟很大，每晚熏得开不了窗", category=FUMES, at=base,
                      address="芦淞区建宁路88号")
    merged = [new_item(content=f"建宁路88号烧烤店油烟很大熏得开不了窗{n}", category=FUMES, address="芦淞区建宁路88号",
                       at=base + timedelta(minutes=n + 1), email=email)
              for n, email in enumerate(["a@example.com", ""])]
    for order_id in merged:
        assert _apply(order_id, base) == Status.MERGED
    assert tell_merged_outcomes(at=base) == 0
    for i, action in enumerate([Action.DISPATCH, Action.SIGN, Action.REPLY, Action.APPROVE_REPLY, Action.CLOSE]):
        step(master, action, base + timedelta(hours=i + 1))
    assert tell_merged_outcomes(at=base + timedelta(days=1)) == 2
    [(recipients, context)] = _notices("merged_outcome")
    assert recipients == ["a@example.com"] and context["master_status"] == "closed"
    assert _events(merged[1])[-1][1]["by"] == "callback"
    assert tell_merged_outcomes(at=base + timedelta(days=2)) == 0


def _a_supervisor_splits_a_wrong_merge_and_it_is_not_merged_again(base: datetime) -> None:
    new_item(content="建宁路88号楼下烧烤店油烟很大，每晚熏得开不了窗", category=FUMES, at=base,
             address="芦淞区建宁路88号")
    wrong = new_item(content="建宁路88号楼下烧烤店油烟很大熏得开不了窗", category=FUMES, at=base + timedelta(hours=1),
                     address="芦淞区建宁路88号", email="c@example.com")
    assert _apply(wrong, base + timedelta(hours=1)) == Status.MERGED
    with pytest.raises(InvalidTransition, match="only a supervisor"):
        split_merge(order_id=wrong, actor=STAFF, reason="不是同一家店", at=base + timedelta(hours=2))
    with pytest.raises(InvalidTransition, match="needs a reason"):
        split_merge(order_id=wrong, actor=SUPERVISOR, reason=" ", at=base + timedelta(hours=2))
    split = split_merge(order_id=wrong, actor=SUPERVISOR, reason="是隔壁另一家店", at=base + timedelta(hours=2))
    new = order(split.new_order_id)
    assert new.status == Status.RECEIVED and new.extra["split_from"] == order(wrong).number
    assert new.citizen_email == "c@example.com" and new.content == order(wrong).content
    assert triage(order_id=split.new_order_id, at=base + timedelta(hours=3)).kind == TriageKind.DISPATCH
    with session_scope(readonly=True) as session:
        link = session.scalar(select(MergeLink).where(MergeLink.work_order_id == wrong))
        assert link.split_by == SUPERVISOR.id and link.split_order_id == split.new_order_id
    assert ("merge_split", {"master": split.master_number, "new_number": split.new_number,
                            "reason": "是隔壁另一家店"}) in _events(wrong)
    assert _notices("merge_split")[0][1]["new_number"] == split.new_number
    with pytest.raises(InvalidTransition, match="split already"):
        split_merge(order_id=wrong, actor=SUPERVISOR, reason="again", at=base + timedelta(hours=4))
    assert tell_merged_outcomes(at=base + timedelta(days=1)) == 0


def test_consultations_are_answered_from_the_knowledge_base_or_recorded_as_gaps(ready, tmp_path):
    asked = new_item(content="请问社保卡丢了怎么补办？", item_type="consultation", at=T0, email="q@example.com")
    decision = triage(order_id=asked, at=T0)
    assert decision.kind == TriageKind.ANSWER and decision.article_code == "KB-HR-001"
    assert _apply(asked) == Status.ANSWERED
    answered = order(asked)
    assert answered.answer_article_id == decision.article_id and answered.closed_at == T0
    name, payload = _events(asked)[-1]
    assert name == "work_order_answered" and payload["article_code"] == "KB-HR-001"
    [(recipients, context)] = _notices("kb_answer")
    assert recipients == ["q@example.com"] and "12333" in context["answer"]
    assert public_status(number=answered.number).answer_article.startswith("KB-HR-001")
    complaint = new_item(content="社保卡丢了补办很慢，投诉窗口人员态度差", item_type="complaint", at=T0,
                         category="hr_social_security.social_security_card")
    assert triage(order_id=complaint, at=T0).kind == TriageKind.DISPATCH

    asked = new_item(content="公积金贷款额度最多能贷多少钱", item_type="consultation", at=T0,
                     category="housing_land.housing_fund")
    decision = triage(order_id=asked, at=T0)
    assert decision.kind == TriageKind.DISPATCH and decision.gap == GapReason.NO_ARTICLE
    assert _apply(asked) == Status.RECEIVED
    load_articles(tmp_path, T0 - timedelta(days=200), review_by=(T0 - timedelta(days=1)).date())
    stale = new_item(content="请问社保卡丢了怎么补办？", item_type="consultation", at=T0)
    assert triage(order_id=stale, at=T0).gap == GapReason.STALE_ARTICLE
    assert _apply(stale) == Status.RECEIVED
    with session_scope(readonly=True) as session:
        gaps = {g.work_order_id: g for g in session.scalars(select(KbGap))}
        assert gaps[asked].owner_unit_id == code_id(Unit, "housing_fund")
        assert gaps[stale].reason == GapReason.STALE_ARTICLE and gaps[stale].article_id is not None
    assert any(name == "kb_gap_recorded" for name, _ in _events(asked))


def test_an_item_without_a_category_gets_the_suggested_one_before_dispatch(ready):
    item = new_item(content="楼下新开的烧烤店排烟管对着我家窗户，油烟熏得开不了窗", at=T0)
    decision = triage(order_id=item, at=T0)
    assert decision.kind == TriageKind.DISPATCH and decision.category_code == FUMES
    assert decision.category_confidence >= 0.5
    assert _apply(item) == Status.RECEIVED
    assert order(item).category_id == code_id(Category, FUMES)
    assert _events(item)[-1][0] == "category_suggested"
    result = process_received(at=T0 + timedelta(minutes=5))
    assert result.dispatched == [item]
    with session_scope(readonly=True) as session:
        lead = session.scalar(select(Assignment).where(Assignment.work_order_id == item, Assignment.role == "lead"))
        assert lead.unit_id == code_id(Unit, "urban_management")
    with pytest.raises(InvalidTransition, match="only received items"):
        triage(order_id=item, at=T0)
