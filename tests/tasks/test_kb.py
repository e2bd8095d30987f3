"""The knowledge base: Chinese full-text search on both databases, import, staleness ladder, gaps, upkeep rate."""

from datetime import UTC, date, datetime, timedelta

import pytest
import yaml
from sqlalchemy import inspect, select, text

from duban.db import get_engine, session_scope
from duban.errors import ValidationFailed
from duban.settings import get_settings
from models.directory import Unit
from models.enums import CaseKind
from models.intake import GapReason, KbReminder
from models.records import Notification
from models.supervision import Article, SupervisionCase
from tasks.kb import import_articles, review_article, search_articles
from tasks.kb_upkeep import kb_stale_rate, record_gap, remind_stale_articles, send_gap_lists
from tests.factories import T0
from tests.intake_helpers import ARTICLES, code_id, load_articles, search_ready


@pytest.fixture
def kb(directory, tmp_path):
    search_ready(directory)
    load_articles(tmp_path, T0, review_by=date(2021, 4, 30))
    return directory


def _search(question: str) -> list[tuple[str, float]]:
    with session_scope(readonly=True) as session:
        return [(hit.code, hit.score) for hit in search_articles(session=session, question=question)]


def test_chinese_questions_find_their_article_through_the_database_index(kb):
    engine = get_engine(kb)
    if engine.dialect.name == "sqlite":
        assert inspect(engine).has_table("kb_articles_fts")
    else:
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT count(*) FROM pg_indexes WHERE indexname = "
                                          "'ix_kb_articles_search_trgm'")) == 1
    expectations = {
        "请问社保卡丢了怎么补办？": "KB-HR-001",
        "新领的社保卡怎么激活金融功能": "KB-HR-002",
        "新房子想开通天然气，燃气开户要带什么": "KB-GAS-001",
        "离职了公积金能不能提取出来": "KB-HF-001",
    }
    for question, code in expectations.items():
        hits = _search(question)
        assert hits and hits[0][0] == code, (question, hits)
        assert hits[0][1] >= get_settings().kb_answer_min_score, (question, hits)
    assert all(score < 0.5 for _, score in _search("小区里的流浪狗咬人了"))
    assert _search("？？？ 123") == []
    # The index follows edits and deactivation.
    with session_scope() as session:
        article = session.scalar(select(Article).where(Article.code == "KB-GAS-001"))
        article.body += "燃气表出现故障可拨打客服热线报修。"
    assert _search("燃气表故障报修")[0][0] == "KB-GAS-001"
    with session_scope() as session:
        session.scalar(select(Article).where(Article.code == "KB-GAS-001")).active = False
    assert "KB-GAS-001" not in [code for code, _ in _search("燃气开户")]


def test_a_bad_import_file_is_refused_whole_a_good_one_is_idempotent_and_gaps_are_listed(kb, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump([
        {"code": "KB-NEW-1", "title": "新条目", "body": "正文", "owner_unit": "hrss"},
        {"code": "KB-NEW-2", "title": "", "body": "正文", "owner_unit": "no_such_unit"},
        {"code": "KB-NEW-3", "title": "标题", "body": "正文", "owner_unit": "hrss", "review_by": "someday",
         "category": "nope", "colour": "red"},
        {"code": "KB-NEW-1", "title": "重复", "body": "正文", "owner_unit": "hrss"},
    ], allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValidationFailed) as refused, session_scope() as session:
        import_articles(session=session, path=bad, at=T0)
    message = str(refused.value)
    for phrase in ("record 2 (KB-NEW-2): title: is required", "owner_unit: unknown code 'no_such_unit'",
                   "review_by: 'someday' is not a date", "category: unknown code 'nope'", "colour: unknown field",
                   "'KB-NEW-1' appears more than once"):
        assert phrase in message
    with session_scope(readonly=True) as session:
        assert session.scalar(select(Article).where(Article.code == "KB-NEW-1")) is None
    good = tmp_path / "good.csv"
    good.write_text("code,title,body,keywords,owner_unit,review_by\n"
                    "KB-WATER-1,停水通知查询,计划停水会提前一天在官网和公众号公告。,停水|水压,water_utility,2021-06-30\n",
                    encoding="utf-8")
    with session_scope() as session:
        first = import_articles(session=session, path=good, at=T0)
    with session_scope() as session:
        again = import_articles(session=session, path=good, at=T0)
    assert (first.created, again.created, again.unchanged) == (1, 0, 1)
    assert _search("为什么停水了")[0][0] == "KB-WATER-1"
    _unanswered_questions_are_listed_to_their_owner_unit_once()


def _notices(kind: str) -> list[Notification]:
    with session_scope() as session:
        return list(session.scalars(select(Notification).where(Notification.kind == kind).order_by(Notification.id)))


def _local(day: str, hour: int) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+08:00").astimezone(UTC)


def test_stale_articles_climb_the_ladder_once_per_rung_until_reviewed(kb):
    assert remind_stale_articles(at=_local("2021-04-10", 12)).reminders == 0
    warned = remind_stale_articles(at=_local("2021-04-26", 12))
    assert warned.reminders == len(ARTICLES)
    [hrss_warning] = [n for n in _notices("kb_stale_warning") if n.context["unit_code"] == "hrss"]
    assert {a["code"] for a in hrss_warning.context["articles"]} == {"KB-HR-001", "KB-HR-002"}
    assert remind_stale_articles(at=_local("2021-04-27", 12)).reminders == 0
    remind_stale_articles(at=_local("2021-05-01", 12))
    overdue = [n for n in _notices("kb_stale_overdue") if n.context["unit_code"] == "hrss"]
    assert len(overdue) == 1 and len(overdue[0].recipients) == 2
    case_run = remind_stale_articles(at=_local("2021-05-07", 12))
    assert case_run.cases_opened == 3 and case_run.put_on_notice == 0
    with session_scope(readonly=True) as session:
        case = session.scalar(select(SupervisionCase).where(SupervisionCase.unit_id == code_id(Unit, "hrss")))
        assert case.kind == CaseKind.KB_STALE and case.evidence["articles"] == ["KB-HR-001", "KB-HR-002"]
        case_id = case.id
    assert _notices("kb_stale_case")[0].recipients == ["duban@zz12345.example.gov.cn"]
    assert remind_stale_articles(at=_local("2021-05-11", 12)).put_on_notice == 3
    with session_scope(readonly=True) as session:
        assert session.get(SupervisionCase, case_id).on_notice is True
        assert len(session.scalars(select(KbReminder)).all()) == 4 * len(ARTICLES)
    assert remind_stale_articles(at=_local("2021-05-12", 12)).reminders == 0
    with session_scope() as session:
        due = review_article(session=session, code="KB-HR-001", reviewed_by="hrss-zhang", at=_local("2021-05-08", 10))
        review_article(session=session, code="KB-HR-002", reviewed_by="hrss-zhang", at=_local("2021-04-20", 10))
    assert due > date(2021, 7, 1)
    hrss = code_id(Unit, "hrss")
    # KB-HR-001 was reviewed after its review-by date inside May; KB-HR-002 in time.
    assert kb_stale_rate(unit_id=hrss, period=(date(2021, 5, 1), date(2021, 6, 1))) == 0.5
    assert kb_stale_rate(unit_id=hrss, period=(date(2021, 4, 1), date(2021, 5, 1))) == 0.0
    assert kb_stale_rate(unit_id=code_id(Unit, "gas_company"), period=(date(2021, 5, 1), date(2021, 6, 1))) == 1.0
    assert kb_stale_rate(unit_id=code_id(Unit, "forestry"), period=(date(2021, 5, 1), date(2021, 6, 1))) == 0.0
    later = remind_stale_articles(at=_local("2021-05-20", 12))
    assert "KB-HR-001" not in {row["code"] for row in later.rows}


def _unanswered_questions_are_listed_to_their_owner_unit_once() -> None:
    with session_scope() as session:
        category = session.scalar(select(Article.category_id).where(Article.code == "KB-HF-001"))
        record_gap(session=session, question="公积金贷款额度怎么算？我电话13812345678", reason=GapReason.NO_ARTICLE,
                   at=T0, recorded_by="staff-li", category_id=category)
        record_gap(session=session, question="异地购房能用公积金吗", reason=GapReason.STAFF, at=T0,
                   recorded_by="staff-li", category_id=category)
        record_gap(session=session, question="这个问题不知道归谁", reason=GapReason.STAFF, at=T0,
                   recorded_by="staff-li")
    sent = send_gap_lists(at=T0 + timedelta(hours=1))
    assert (sent.units, sent.gaps) == (2, 3)
    lists = {n.context.get("unit_code"): n for n in _notices("kb_gap_list")}
    housing = lists["housing_fund"]
    assert housing.recipients == ["12345@gjj.example.gov.cn"]
    assert housing.context["count"] == 2
    assert "138****5678" in housing.context["questions"][0]["question"]
    assert "13812345678" not in str(housing.context)
    assert lists[None].recipients == ["duban@zz12345.example.gov.cn"]
    assert send_gap_lists(at=T0 + timedelta(hours=2)).gaps == 0
