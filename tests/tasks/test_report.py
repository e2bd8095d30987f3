"""The report on a small hand-made history whose every figure is counted by hand below."""

import json
from datetime import date

import pytest

from duban.db import session_scope
from tasks.history import import_history
from tasks.report import build_report
from tasks.report_render import paragraph_zh, render_charts, render_html, render_json, render_markdown
from tests.tasks.history_kit import at, call, ev, full_lifecycle, order, write

NOISE = "city_appearance_life_services.noise"
FUMES = "city_appearance_life_services.cooking_fumes"


def march_2021() -> list[dict]:
    """Ten orders received in March 2021, one in February, three calls in March and one in February."""
    return [
        {"type": "totals", "from": "2020-03-01", "to": "2020-03-31", "calls_connected": 8, "valid_items": 5},
        call("C1", at("2021-02-27", "10:00")),
        call("C2", at("2021-03-02", "10:00")),
        call("C3", at("2021-03-03", "11:00"), channel="county_platform", outcome="repeat"),
        call("C4", at("2021-03-04", "12:00"), outcome="harassment"),
        order("K", at("2021-02-26"), item_type="consultation", category="hr_social_security.unemployment_subsidy",
              events=[ev(at("2021-02-26", "09:05"), "answer", "staff:desk-01")]),
        order("A", at("2021-03-01"), item_type="consultation", category="hr_social_security.social_security_card",
              events=[ev(at("2021-03-01", "09:05"), "answer", "staff:desk-01", text="知识库答复")]),
        order("B", at("2021-03-01", "10:00"), item_type="consultation",
              category="hr_social_security.remote_medical_settlement",
              events=[ev(at("2021-03-01", "10:05"), "answer", "staff:desk-01")]),
        full_lifecycle("C", "2021-03-02", "ecology_environment", NOISE, channel="wechat", district="tianyuan"),
        order("D", at("2021-03-03"), channel="county_platform", item_type="help_request",
              category="transportation.ride_hailing", district="liling", events=[
                  ev(at("2021-03-03", "09:10"), "dispatch", "staff:desk-03", unit="liling_12345"),
                  ev(at("2021-03-03", "09:30"), "sign", "unit:liling_12345"),
                  ev(at("2021-03-04", "10:00"), "reply", "unit:liling_12345", text="已处理", solved=True),
                  ev(at("2021-03-04", "10:01"), "approve_reply", "system", automatic=True),
                  ev(at("2021-03-04", "10:02"), "close", "system")]),
        order("E", at("2021-03-08", "10:00"), category=NOISE, events=[
            ev(at("2021-03-08", "10:05"), "dispatch", "staff:desk-01", unit="urban_management"),
            ev(at("2021-03-08", "11:00"), "request_return", "unit:urban_management", reason="不属于本单位职责",
               evidence_note="已到现场"),
            ev(at("2021-03-08", "15:00"), "reject_return", "supervisor:office-2", reason="请按职责办理"),
            ev(at("2021-03-09", "09:00"), "sign", "unit:urban_management"),
            # Due 5 working days after the dispatch (Monday 15 March 10:05); replied two days late.
            ev(at("2021-03-17", "10:00"), "reply", "unit:urban_management", text="已处理", contacted=True,
               solved=True),
            ev(at("2021-03-17", "11:00"), "approve_reply", "supervisor:office-1"),
            ev(at("2021-03-18", "11:00"), "close", "staff:desk-02", satisfaction="basically", contacted=True,
               resolved=True)]),
        order("F", at("2021-03-09"), item_type="suggestion", category="transportation.driving_schools", events=[
            ev(at("2021-03-09", "09:10"), "dispatch", "staff:desk-01", unit="transport"),
            ev(at("2021-03-09", "10:00"), "sign", "unit:transport"),
            ev(at("2021-03-10", "10:00"), "reply", "unit:transport", text="建议已采纳", adopted=True),
            ev(at("2021-03-10", "10:01"), "approve_reply", "system", automatic=True),
            ev(at("2021-03-10", "10:02"), "close", "system")]),
        order("G", at("2021-03-10"), category=FUMES, events=[
            ev(at("2021-03-10", "09:10"), "dispatch", "staff:desk-01", unit="urban_management"),
            ev(at("2021-03-10", "09:30"), "sign", "unit:urban_management"),
            ev(at("2021-03-10", "14:00"), "reply", "unit:urban_management", text="已处理", contacted=True,
               solved=True),
            ev(at("2021-03-10", "15:00"), "approve_reply", "supervisor:office-1"),
            ev(at("2021-03-11", "10:00"), "redo", "staff:desk-02", satisfaction="unsatisfied",
               comment="无人联系"),
            ev(at("2021-03-12", "10:00"), "reply", "unit:urban_management", text="再次处理", contacted=True,
               solved=True),
            ev(at("2021-03-12", "11:00"), "approve_reply", "supervisor:office-1"),
            ev(at("2021-03-15", "10:00"), "close", "staff:desk-02", satisfaction="satisfied", contacted=True,
               resolved=True)]),
        order("H", at("2021-03-11"), item_type="consultation",
              events=[ev(at("2021-03-11", "09:02"), "screen_out", "staff:desk-01", reason="无实质诉求")]),
        order("I", at("2021-03-11", "10:00"), item_type="consultation",
              category="hr_social_security.social_security_card",
              events=[ev(at("2021-03-11", "10:05"), "merge", "staff:desk-01", master="A")]),
        order("J", at("2021-03-12"), category="emergency_management.epidemic_prevention", events=[
            ev(at("2021-03-12", "09:10"), "dispatch", "staff:desk-01", unit="health"),
            ev(at("2021-03-12", "09:40"), "sign", "unit:health")]),
    ]


@pytest.fixture
def march(directory, tmp_path) -> dict:
    import_history(path=write(tmp_path / "march.jsonl", march_2021()))
    with session_scope(readonly=True) as session:
        return build_report(session, date_from=date(2021, 3, 1), date_to=date(2021, 3, 31))


def test_every_figure_matches_the_count_by_hand(march):
    """Intake, categories, handling, visits, suggestions and supervision findings of March 2021."""
    # 3 March calls + 10 March orders (H screened out and I merged count as calls, not valid items).
    assert march["calls_connected"] == 13
    assert march["calls_from_county_platforms"] == 2  # call C3 and order D
    assert march["valid_items_accepted"] == 8  # A B C D E F G J
    assert {c["channel"]: c["items"] for c in march["valid_items_by_channel"]} == {
        "hotline": 6, "wechat": 1, "county_platform": 1}
    assert march["valid_items_by_channel"][0] == {"channel": "hotline", "items": 6, "share_pct": 75.0}
    assert march["calls_not_valid"] == {"call_log": 3, "screened_out": 1, "merged": 1,
                                        "by_outcome": {"dropped": 1, "repeat": 1, "harassment": 1}}
    assert (march["direct_answers"], march["direct_answers_share_pct"]) == (2, 25.0)
    # Year on year against the published March 2020 totals: (13-8)/8 and (8-5)/5.
    assert (march["calls_yoy_growth_pct"], march["valid_items_yoy_growth_pct"]) == (62.5, 60.0)
    assert march["previous"]["source"] == "published totals"
    assert march["monthly"] == [{"month": "2021-03", "valid_items": 8, "calls": 13}]
    ranking = [(c["rank"], c["code"], c["items"]) for c in march["top_categories_in_rank_order"]]
    # Ties rank by code: hr_social_security before transportation.
    assert ranking == [(1, "city_appearance_life_services", 3), (2, "hr_social_security", 2),
                       (3, "transportation", 2), (4, "emergency_management", 1)]
    assert [(s["code"], s["items"]) for s in march["top_categories_in_rank_order"][0]["subtopics"]] == [
        (NOISE, 2), (FUMES, 1)]
    assert [(t["code"], t["handed"]) for t in march["hot_topics"]] == [
        (NOISE, 2), (FUMES, 1), ("emergency_management.epidemic_prevention", 1),
        ("transportation.driving_schools", 1), ("transportation.ride_hailing", 1)]
    assert march["handed_to_units"] == 6  # C D E F G J
    assert march["handed_to_units_completed"] == 5  # J is still being handled
    assert march["handed_to_units_completion_rate_pct"] == 83.3
    # C satisfied, E basically, G unsatisfied then satisfied: 3 of 4 visits satisfied or basically.
    assert march["return_visits"] == 4
    assert march["satisfaction_rate_pct"] == 75.0
    assert (march["suggestions_forwarded"], march["suggestions_adopted"]) == (1, 1)
    s = march["supervision"]
    # E replied after its deadline; J's deadline passed in March without a reply.
    assert (s["lead_assignments"], s["overdue"], s["overdue_rate_pct"]) == (6, 2, 33.3)
    assert (s["returns"], s["returns_rejected"], s["returns_auto_rejected"]) == (1, 1, 0)
    assert (s["false_completions"], s["redo_orders"]) == (1, 1)
    units = [(u["code"], u["handed"], u["overdue"]) for u in march["units"]]
    assert units == [("urban_management", 2, 1), ("ecology_environment", 1, 0), ("health", 1, 1),
                     ("liling_12345", 1, 0), ("transport", 1, 0)]


def test_a_previous_period_with_records_is_compared_figure_by_figure(directory, tmp_path):
    lines = march_2021()[1:] + [full_lifecycle("P", "2020-03-05", "ecology_environment", NOISE)]
    import_history(path=write(tmp_path / "two-years.jsonl", lines))
    with session_scope(readonly=True) as session:
        report = build_report(session, date_from=date(2021, 3, 1), date_to=date(2021, 3, 31), compare_previous=True)
    previous = report["previous"]
    assert previous["source"] == "records"
    assert (previous["calls_connected"], previous["valid_items_accepted"], previous["handed_to_units"]) == (1, 1, 1)
    assert report["valid_items_yoy_growth_pct"] == 700.0  # (8 - 1) / 1


def test_the_markdown_prints_the_newspaper_paragraph_and_four_charts(march):
    paragraph = paragraph_zh(march)
    assert paragraph.startswith("2021年3月，株洲市12345热线共接通来电13个（含县市区平台2个），同比增长62.5%")
    assert "受理有效诉求8件，同比增长60.0%" in paragraph
    assert "转交承办单位办理6件，办结率83.3%；直接答复2件；回访4件，满意率75.0%" in paragraph
    assert "诉求量排名前十的类别依次为城市管理市容和生活服务（3件，主要涉及噪音扰民、餐饮油烟）" in paragraph
    charts = render_charts(march)
    assert set(charts) == {"categories", "channels", "monthly", "units"}
    markdown = render_markdown(march, charts)
    assert markdown.count("](data:image/png;base64,") == 4
    assert "| 2021-03 | 13 | 8 |" in markdown
    html = render_html(march)
    assert html.count('<img src="data:image/png;base64,') == 4 and "<table>" in html
    assert json.loads(render_json(march))["valid_items_accepted"] == 8


def test_a_period_that_ends_before_it_starts_is_refused(directory):
    from duban.errors import ValidationFailed

    with session_scope(readonly=True) as session, pytest.raises(ValidationFailed, match="before --from"):
        build_report(session, date_from=date(2021, 3, 31), date_to=date(2021, 3, 1))
