"""Notices beyond a unit's own orders: hot spots, knowledge-base upkeep, citizens told of triage, the report.

Each is queued the way its call site queues it, read back from the outbox and rendered; and every kind the code
queues anywhere has a template.
"""

import ast
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from duban.db import session_scope
from duban.errors import NotificationError
from models.directory import Category, District, Unit
from models.enums import Status
from models.policy_values import RUNG_ORDER
from models.records import Notification
from models.supervision import Article
from models.work_order import WorkOrder
from notifications.render import KINDS, TEMPLATES, RenderedMail, render_notice
from tasks.hotspots import _raise
from tasks.kb_upkeep import StaleReport, _fire, record_gap, send_gap_lists
from tasks.report_publish import mail_report, prepare_report
from tasks.triage import _tell_citizen
from tests.factories import T0, order_in
from tests.intake_helpers import code_id, load_articles, new_item, search_ready
from tests.tasks.history_kit import write

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("tasks", "flows", "duban", "portal", "automations", "gateway", "models", "notifications", "bench")
# The citizens' numbers the fixtures use, and any mobile number, must never appear in clear.
CLEAR_PHONES = ("13812341234", "13912345678", "13812345678", "13700001111")
MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
NOISE = "city_appearance_life_services.noise"
FUMES = "city_appearance_life_services.cooking_fumes"


def _context(kind: str) -> dict:
    """The context of the latest notice of a kind, as the relay reads it from the outbox."""
    with session_scope(readonly=True) as session:
        notice = session.scalars(select(Notification).where(Notification.kind == kind)
                                 .order_by(Notification.id.desc())).first()
        assert notice is not None, f"no {kind} notice was queued"
        return dict(notice.context)


def _render(kind: str, context: dict | None = None) -> RenderedMail:
    mail = render_notice(kind=kind, context=context if context is not None else _context(kind))
    for part in (mail.subject, mail.text, mail.html):
        assert not any(phone in part for phone in CLEAR_PHONES), kind
        assert not MOBILE.search(part.replace("data:image/png;base64,", "\n")) or kind == "report", kind
    assert mail.subject.startswith(f"【12345热线督办】{KINDS[kind].title_zh} {KINDS[kind].title_en}")
    assert "<script" not in mail.html
    return mail


# --- every kind the code queues has a template ------------------------------------------------------------------


def _strings(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _expand(node: ast.JoinedStr, where: str) -> set[str]:
    """An f-string kind such as f"kb_stale_{rung}": every value its placeholders can take."""
    values = {"rung": RUNG_ORDER}
    kinds = {""}
    for part in node.values:
        if isinstance(part, ast.Constant):
            kinds = {k + part.value for k in kinds}
            continue
        name = ast.unparse(part.value)
        assert name in values, f"{where}: cannot tell which kinds f-string placeholder {{{name}}} makes"
        kinds = {k + v for k in kinds for v in values[name]}
    return kinds


def _kind_argument(call: ast.Call) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == "kind"), None)


def _resolve(node: ast.expr, function: ast.FunctionDef | None, tree: ast.Module, where: str) -> set[str]:
    """The literal kinds an expression passed as kind= can be: a literal, an f-string, a local or a parameter."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.JoinedStr):
        return _expand(node, where)
    assert isinstance(node, ast.Name) and function is not None, f"{where}: kind={ast.unparse(node)} is not resolvable"
    params = [a.arg for a in function.args.posonlyargs + function.args.args + function.args.kwonlyargs]
    if node.id in params:
        # A helper that forwards its parameter: the kinds its callers in the module pass.
        position = ([a.arg for a in function.args.posonlyargs + function.args.args].index(node.id)
                    if node.id not in [a.arg for a in function.args.kwonlyargs] else None)
        kinds: set[str] = set()
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == function.name:
                argument = next((k.value for k in call.keywords if k.arg == node.id), None)
                if argument is None and position is not None and position < len(call.args):
                    argument = call.args[position]
                assert argument is not None, f"{where}: a call of {function.name} passes no {node.id}"
                kinds |= _resolve(argument, _enclosing(tree, call), tree, f"{where} via line {call.lineno}")
        assert kinds, f"{where}: {function.name} is never called with a {node.id}"
        return kinds
    assigned = [a.value for a in ast.walk(function) if isinstance(a, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == node.id for t in a.targets)]
    kinds = set().union(*(_strings(value) for value in assigned)) if assigned else set()
    assert kinds, f"{where}: kind={node.id} is not assigned a literal in {function.name}"
    return kinds


def _enclosing(tree: ast.Module, target: ast.AST) -> ast.FunctionDef | None:
    found = None
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            if any(node is target for node in ast.walk(function)):
                if found is None or function.lineno > found.lineno:
                    found = function
    return found


def queued_kinds() -> dict[str, set[str]]:
    """Every notice kind an enqueue_notice(...) call in the application code can queue, and where."""
    kinds: dict[str, set[str]] = {}
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for call in ast.walk(tree):
                if not (isinstance(call, ast.Call) and getattr(call.func, "id", getattr(call.func, "attr", None))
                        == "enqueue_notice"):
                    continue
                where = f"{path.relative_to(ROOT)}:{call.lineno}"
                argument = _kind_argument(call)
                assert argument is not None, f"{where}: enqueue_notice without kind="
                for kind in _resolve(argument, _enclosing(tree, call), tree, where):
                    kinds.setdefault(kind, set()).add(where)
    return kinds


def test_every_kind_the_code_queues_has_a_template_and_an_entry():
    kinds = queued_kinds()
    assert {"hot_spot_alert", "kb_gap_list", "kb_stale_warning", "kb_stale_overdue", "kb_stale_case",
            "kb_stale_notice", "merged_into", "merged_outcome", "merge_split", "kb_answer", "report", "dispatch",
            "dispatch_assist", "digest", "action_link"} <= set(kinds), sorted(kinds)
    missing = {kind: sorted(where) for kind, where in kinds.items() if kind not in KINDS}
    assert not missing, f"kinds queued without a template: {missing}"
    for kind in kinds:
        assert (TEMPLATES / f"{KINDS[kind].template}.html.j2").is_file(), kind
    # Titles tell the kinds apart in a mailbox.
    titles = [definition.title_zh for definition in KINDS.values()]
    assert len(titles) == len(set(titles))


def test_an_unknown_kind_is_still_refused():
    with pytest.raises(NotificationError, match="no template for notice kind 'kb_stale_someday'"):
        render_notice(kind="kb_stale_someday", context={"unit_name": "人社局", "articles": []})


# --- supervisors and units --------------------------------------------------------------------------------------


def test_a_hot_spot_alert_names_the_place_the_matter_and_the_counts(directory):
    orders = [new_item(content=f"建宁路工地夜间施工噪音，第{i}户，电话13700001111", at=T0 + timedelta(hours=i),
                       category=NOISE, district="lusong.jianning") for i in range(6)]
    with session_scope() as session:
        spot = _raise(session, level="topic", category_id=code_id(Category, NOISE),
                      district_id=code_id(District, "lusong"), day=date(2021, 3, 15), window_days=7, orders=orders,
                      expected=1.5, at=T0, supervisors=["duban@zz12345.example.gov.cn"])
    mail = _render("hot_spot_alert")
    assert spot.district_name in mail.subject and spot.category_name in mail.subject and "2021-03-15" in mail.subject
    assert "受理 6 件诉求" in mail.text and "基线预期 1.5 件" in mail.text and "4.0 倍" in mail.text
    assert all(number in mail.text for number in spot.order_numbers) and "相关工单（6 件）" in mail.text


def test_a_new_hot_spot_with_no_baseline_says_so():
    context = {"alert_id": 9, "level": "category", "category": "城乡建设", "category_code": "urban", "district": "全市",
               "day": "2021-03-15", "window_days": 7, "count": 5, "expected": 0.0, "factor": None,
               "order_numbers": [f"ZZ2021031500{i}" for i in range(5)]}
    mail = _render("hot_spot_alert", context)
    assert "新出现" in mail.text and "全市" in mail.subject and "受理 5 件诉求" in mail.text


def test_the_gap_list_goes_to_the_owner_unit_and_the_ownerless_ones_to_supervisors(directory):
    fund = code_id(Category, "housing_land.housing_fund")
    with session_scope() as session:
        record_gap(session=session, question="公积金贷款额度怎么算？我电话13812345678", reason="no_article",
                   at=T0, recorded_by="staff-li", category_id=fund)
        record_gap(session=session, question="异地购房能用公积金吗", reason="staff", at=T0, recorded_by="staff-li",
                   category_id=fund)
        record_gap(session=session, question="这个问题不知道归谁", reason="staff", at=T0, recorded_by="staff-li")
    assert send_gap_lists(at=T0 + timedelta(hours=1)).gaps == 3
    with session_scope(readonly=True) as session:
        notices = {n.unit_id: dict(n.context) for n in session.scalars(
            select(Notification).where(Notification.kind == "kb_gap_list"))}
        owner_id = next(u for u in notices if u)
        owner_name = session.get(Unit, owner_id).name_zh
    owned = _render("kb_gap_list", notices[owner_id])
    assert owner_name in owned.subject and f"{owner_name}：" in owned.text
    assert "有 2 个市民问题" in owned.text and "138****5678" in owned.text and "异地购房能用公积金吗" in owned.text
    assert "知识库无相关条目" in owned.text and "话务员记录" in owned.text and "2021-03-15 09:00" in owned.text
    ownerless = _render("kb_gap_list", notices[None])
    assert "这个问题不知道归谁" in ownerless.text and "请指定责任单位" in ownerless.text and "1 个市民问题" in ownerless.text


@pytest.fixture
def articles(directory, tmp_path):
    search_ready(directory)
    load_articles(tmp_path, T0, review_by=date(2021, 4, 30))
    return directory


@pytest.mark.parametrize("rung", RUNG_ORDER)
def test_each_rung_of_the_stale_article_ladder_lists_the_unit_and_its_articles(articles, rung):
    hrss = code_id(Unit, "hrss")
    with session_scope() as session:
        listed = list(session.scalars(select(Article).where(Article.owner_unit_id == hrss).order_by(Article.code)))
        codes = [a.code for a in listed]
        _fire(session, unit_id=hrss, rung=rung, articles=listed, reminders=[], at=T0 + timedelta(days=50),
              report=StaleReport())
        unit_name = session.get(Unit, hrss).name_zh
    context = _context(f"kb_stale_{rung}")
    mail = _render(f"kb_stale_{rung}", context)
    assert unit_name in mail.subject and unit_name in mail.text and len(codes) >= 2
    assert all(code in mail.text for code in codes) and "2021-04-30" in mail.text
    assert f"{len(codes)} 个知识库条目" in mail.text
    if rung in ("case", "notice"):
        assert f"#{context['case_id']}" in mail.text


# --- citizens ---------------------------------------------------------------------------------------------------


def _citizen_order() -> int:
    """The citizen's own item, with their phone typed into the text, and an e-mail address to be told at."""
    return new_item(content="建宁路88号烧烤店油烟熏人，请回电13912345678", at=T0, category=FUMES,
                    district="lusong.jianning", address="芦淞区建宁路88号", email="lisi@example.com")


def _tell(order_id: int, kind: str, extra: dict) -> tuple[str, RenderedMail]:
    with session_scope() as session:
        order = session.get(WorkOrder, order_id)
        number = order.number
        _tell_citizen(session, order, kind, T0, extra)
    mail = _render(kind)
    assert number in mail.subject and f"工单 {number}" in mail.text and "尊敬的市民朋友" in mail.text
    # The citizen's own request, masked; no deadline, no unit links, no other citizen.
    assert "139****5678" in mail.text and "当前时限" not in mail.text and "张" not in mail.text
    assert "<a " not in mail.html and "市民 Citizen" not in mail.text
    return number, mail


def test_a_merged_citizen_is_told_the_master_number(directory):
    master = order_in(Status.HANDLING)
    with session_scope(readonly=True) as session:
        master_number = session.get(WorkOrder, master).number
    _, mail = _tell(_citizen_order(), "merged_into", {"master_number": master_number})
    assert master_number in mail.text and "并入该工单统一办理" in mail.text and "merged into that order" in mail.text


def test_a_merged_citizen_is_told_how_the_master_ended(directory):
    master = order_in(Status.CLOSED)
    with session_scope(readonly=True) as session:
        m = session.get(WorkOrder, master)
        outcome = {"master_number": m.number, "master_status": m.status, "master_status_label": "已办结",
                   "closed_at": m.closed_at.isoformat() if m.closed_at else None}
    assert outcome["closed_at"]
    _, mail = _tell(_citizen_order(), "merged_outcome", outcome)
    assert outcome["master_number"] in mail.text and "现已办结，办结时间" in mail.text
    assert "has now been completed" in mail.text
    ended = _render("merged_outcome", _context("merged_outcome") | {"master_status": "invalid",
                                                                   "master_status_label": "无效", "closed_at": None})
    assert "结束办理（无效）" in ended.text and "ended (invalid)" in ended.text


def test_a_split_citizen_is_told_the_new_number_and_why(directory):
    _, mail = _tell(_citizen_order(), "merge_split", {"new_number": "ZZ20210401000123",
                                                      "reason": "两处烧烤店不是同一家"})
    assert "新工单 ZZ20210401000123" in mail.text and "两处烧烤店不是同一家" in mail.text


def test_a_consultation_answered_from_the_knowledge_base(articles):
    with session_scope(readonly=True) as session:
        article = session.scalar(select(Article).where(Article.code == "KB-HR-001"))
        extra = {"article_code": article.code, "article_title": article.title,
                 "answer": article.body[:2000] + "\n\n<b>咨询电话：13812345678</b>"}
        body = article.body
    _, mail = _tell(_citizen_order(), "kb_answer", extra)
    assert f"{extra['article_code']}《{extra['article_title']}》" in mail.text and body[:20] in mail.text
    assert "&lt;b&gt;" in mail.html and "<b>" not in mail.html and "138****5678" in mail.text


# --- the leaders' report ----------------------------------------------------------------------------------------


def test_the_report_mail_carries_the_paragraphs_the_figures_and_the_charts_only(directory, tmp_path):
    from tasks.history import import_history
    from tests.tasks.test_report import march_2021

    import_history(path=write(tmp_path / "march.jsonl", march_2021()))
    prepared = prepare_report(kind="monthly", period="2021-03")
    assert mail_report(prepared=prepared, at=T0) == 1
    context = _context("report")
    mail = _render("report", context)
    assert "2021年3月" in mail.subject and "月度运行报告" in mail.text and "2021-03-01 至 2021-03-31" in mail.text
    assert "共接通来电13个" in mail.text and "受理有效诉求8件" in mail.text and "accepted 8 valid items" in mail.text
    assert "接通来电 calls_connected  13  8" in mail.text
    assert mail.html.count('<img src="data:image/png;base64,') == 4 and 'alt="Channel mix"' in mail.html
    # The markdown-rendered page passes raw HTML through, so none of it reaches the mail but the checked charts.
    hostile = context | {"report_html": context["report_html"].replace(
        "<table>", '<table><tr><td><b onclick="x()">u</b><script>alert(1)</script></td></tr>', 1)
        + '<img src="data:image/png;base64,AAA" onerror="x()" alt="x"><img src="data:image/png;base64,A"B" alt="y">'}
    rendered = _render("report", hostile)
    assert "onclick" not in rendered.html and "onerror" not in rendered.html
    assert rendered.html.count('<img src="data:image/png;base64,') == 6
