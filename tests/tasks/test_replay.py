"""simulate -> replay -> report: the published figures come back out of Duban's own records."""

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from duban.db import session_scope
from duban.errors import ValidationFailed
from models.records import Event
from tasks.replay import replay
from tasks.report import build_report
from tasks.report_render import paragraph_zh
from tasks.simulate import simulate_year
from tasks.simulate_profile import TOPIC_CODES, load_profile
from tests.tasks.history_kit import at, ev, order, write

SEED = json.loads((Path(__file__).resolve().parents[2] / "duban/data/profiles/zhuzhou-2021.json").read_text())
SCALE = 0.004


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("replay") / "year.jsonl"
    profile = load_profile("zhuzhou", year=2021, scale=SCALE)
    # Late units late more often, so a year this small still gives the sweep deadlines to find.
    simulate_year(profile=replace(profile, shape={**profile.shape, "late_share": 0.6}), seed=1, out=out)
    return out


def close(value: float, published: float, relative: float = 0.01) -> bool:
    return abs(value - published) <= relative * published


def test_a_replayed_year_reports_the_published_figures(directory, generated):
    summary = replay(path=generated)
    # Every valid item, plus the 1,500 screened out and 2,000 merged of the profile, scaled.
    assert summary.orders == round(SEED["valid_items_accepted"] * SCALE) + round(1500 * SCALE) + round(2000 * SCALE)
    assert summary.sweeps > 0 and summary.rungs > 0
    with session_scope(readonly=True) as session:
        report = build_report(session, date_from=date(2021, 1, 1), date_to=date(2021, 12, 31))
        fired = session.scalar(select(func.count()).select_from(Event).where(Event.name == "deadline_missed"))
    for key in ("calls_connected", "calls_from_county_platforms", "valid_items_accepted", "handed_to_units",
                "return_visits"):
        assert close(report[key], SEED[key] * SCALE), key
    assert close(report["direct_answers"], SEED["direct_answers_derived"] * SCALE)
    for key in ("handed_to_units_completion_rate_pct", "satisfaction_rate_pct"):
        assert abs(report[key] - SEED[key]) <= 1.0, key
    for key in ("calls_yoy_growth_pct", "valid_items_yoy_growth_pct"):
        assert abs(report[key] - SEED[key]) <= 1.0, key
    assert [c["code"] for c in report["top_categories_in_rank_order"]] == [
        c["code"] for c in SEED["top_categories_in_rank_order"]]
    assert close(report["top_categories_in_rank_order"][0]["items"], 85534 * SCALE)
    assert [s["code"] for s in report["top_categories_in_rank_order"][0]["subtopics"]] == [
        TOPIC_CODES[t] for t in SEED["top_categories_in_rank_order"][0]["subtopics"]]
    assert [t["code"] for t in report["hot_topics"]] == [TOPIC_CODES[t] for t in SEED["hot_topics"]]
    shares = {c["channel"]: c["share_pct"] for c in report["valid_items_by_channel"]}
    assert shares["hotline"] == pytest.approx(70.0, abs=1) and shares["county_platform"] == pytest.approx(18, abs=1)
    findings = report["supervision"]
    assert findings["overdue"] > 0 and findings["returns"] > 0 and findings["false_completions"] > 0
    assert fired == findings["overdue_notices"] > 0
    paragraph = paragraph_zh(report)
    assert paragraph.startswith(f"2021年，株洲市12345热线共接通来电{report['calls_connected']}个（含县市区平台")
    assert "诉求量排名前十的类别依次为人力资源和社会保障" in paragraph and "满意率" in paragraph


def test_replay_refuses_a_period_the_database_already_holds(directory, tmp_path):
    path = write(tmp_path / "one.jsonl", [order("X1", at("2021-03-01"), item_type="consultation",
                                                events=[ev(at("2021-03-01", "09:05"), "answer", "staff:desk-01")])],
                 header={"type": "header", "format": "duban-history", "version": 1, "city": "ZZ",
                         "from": "2021-03-01", "to": "2021-03-31"})
    first = replay(path=path, sweep=None)
    assert (first.orders, first.transitions) == (1, 1)
    with pytest.raises(ValidationFailed, match="already holds 1 orders received between 2021-03-01 and 2021-03-31"):
        replay(path=path, sweep=None)


def test_replay_names_the_line_of_an_action_duban_refuses(directory, tmp_path):
    refused = order("X2", at("2021-03-01"), category="city_appearance_life_services.noise", events=[
        ev(at("2021-03-01", "09:05"), "dispatch", "staff:desk-01", unit="ecology_environment"),
        ev(at("2021-03-01", "10:05"), "sign", "unit:housing")])
    with pytest.raises(ValidationFailed, match=r"line 2: events\[1\] \(sign\)"):
        replay(path=write(tmp_path / "refused.jsonl", [refused]), sweep=None)
