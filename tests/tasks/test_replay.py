"""simulate -> replay -> report: the published figures come back out of Duban's own records."""

import gc
import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from duban.db import session_scope
from duban.errors import ValidationFailed
from models.records import Event
from tasks.replay import replay, supervision_sweep
from tasks.report import build_report
from tasks.report_check import check_report
from tasks.report_render import paragraph_zh
from tasks.simulate import simulate_year
from tasks.simulate_profile import load_profile
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


def test_a_replayed_year_reports_the_published_figures(directory, generated):
    summary = replay(path=generated)
    # Every valid item, plus the 1,500 screened out and 2,000 merged of the profile, scaled.
    assert summary.orders == round(SEED["valid_items_accepted"] * SCALE) + round(1500 * SCALE) + round(2000 * SCALE)
    assert summary.sweeps > 0 and summary.rungs > 0
    with session_scope(readonly=True) as session:
        report = build_report(session, date_from=date(2021, 1, 1), date_to=date(2021, 12, 31))
        fired = session.scalar(select(func.count()).select_from(Event).where(Event.name == "deadline_missed"))
    checks = check_report(report, SEED, scale=SCALE)
    assert {c.figure for c in checks} >= {"calls_connected", "valid_items_accepted", "handed_to_units",
                                         "return_visits", "direct_answers", "satisfaction_rate_pct",
                                         "top_categories_in_rank_order", "top_category_subtopics", "hot_topics"}
    assert [c for c in checks if not c.ok] == []
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
    with session_scope() as session:
        before = _pragmas(session)
    with pytest.raises(ValidationFailed, match=r"line 2: events\[1\] \(sign\)"):
        replay(path=write(tmp_path / "refused.jsonl", [refused]), sweep=None)
    with session_scope() as session:
        assert _pragmas(session) == before


def test_a_report_that_disagrees_with_published_figures_names_each_figure(directory, generated):
    replay(path=generated, sweep=None)
    with session_scope(readonly=True) as session:
        report = build_report(session, date_from=date(2021, 1, 1), date_to=date(2021, 12, 31))
    altered = {**SEED, "return_visits": SEED["return_visits"] * 1.05,
               "top_categories_in_rank_order": list(reversed(SEED["top_categories_in_rank_order"]))}
    wrong = {c.figure for c in check_report(report, altered, scale=SCALE) if not c.ok}
    assert wrong == {"return_visits", "top_categories_in_rank_order"}


def test_duban_report_check_prints_each_figure_and_fails_on_one_that_differs(directory, generated, tmp_path):
    replay(path=generated, sweep=None)
    scaled = {key: SEED[key] * SCALE for key in ("calls_connected", "valid_items_accepted")}
    agreeing, differing = tmp_path / "agreeing.json", tmp_path / "differing.json"
    agreeing.write_text(json.dumps(scaled))
    differing.write_text(json.dumps({**scaled, "valid_items_accepted": scaled["valid_items_accepted"] * 1.1}))
    command = [sys.executable, "-m", "duban", "report", "--from", "2021-01-01", "--to", "2021-12-31",
               "--format", "json", "--check"]
    env = {**os.environ, "DUBAN_DATABASE_URL": directory}
    ok = subprocess.run([*command, str(agreeing)], capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "all 2 figures agree with agreeing.json" in ok.stderr
    assert json.loads(ok.stdout)["valid_items_accepted"] > 0
    bad = subprocess.run([*command, str(differing)], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 1
    assert "1 of 2 figures differ from differing.json: valid_items_accepted" in bad.stderr


def test_the_sweeps_share_the_replays_roomy_sqlite_connection_and_it_is_restored_after(directory, tmp_path):
    late = _signed_late("X3")
    seen: list[tuple[int, int]] = []

    def sweep(now):
        with session_scope() as session:
            seen.append(_pragmas(session))
        return supervision_sweep(now)

    with session_scope() as session:
        before = _pragmas(session)
    summary = replay(path=write(tmp_path / "late.jsonl", [late]), sweep=sweep)
    assert summary.sweeps == len(seen) > 0 and summary.rungs > 0
    if directory.startswith("sqlite"):
        assert set(seen) == {(-256 * 1024, 16384)} and before == (-2000, 1000)
    with session_scope() as session:
        assert _pragmas(session) == before


def _pragmas(session) -> tuple[int, int]:
    if session.get_bind().dialect.name != "sqlite":
        return (0, 0)
    return tuple(session.connection().exec_driver_sql(f"PRAGMA {name}").scalar()
                 for name in ("cache_size", "wal_autocheckpoint"))


def test_the_collector_runs_less_often_during_the_replay_and_as_before_after(directory, tmp_path):
    before = gc.get_threshold()
    during: list[tuple[int, int, int]] = []

    def sweep(now):
        during.append(gc.get_threshold())
        return supervision_sweep(now)

    replay(path=write(tmp_path / "late.jsonl", [_signed_late("X4")]), sweep=sweep)
    assert during and all(t[0] > before[0] for t in during)
    assert gc.get_threshold() == before


def _signed_late(number: str) -> dict:
    """An order its unit signs for four days after dispatch: the sweep has deadlines to find meanwhile."""
    return order(number, at("2021-03-01"), category="city_appearance_life_services.noise", events=[
        ev(at("2021-03-01", "09:05"), "dispatch", "staff:desk-01", unit="ecology_environment"),
        ev(at("2021-03-05", "10:05"), "sign", "unit:ecology_environment")])
