"""The synthetic year: the profile's totals met exactly, rhythms, holidays, misbehaving units, determinism."""

import json
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import pytest

from duban.errors import ValidationFailed
from tasks.history_apply import load_lookups
from tasks.history_format import LOCAL, CallRecord, OrderRecord
from tasks.history_parse import read_records
from tasks.simulate import simulate_year
from tasks.simulate_profile import apportion, load_profile

SEED = json.loads((Path(__file__).resolve().parents[2] / "duban/data/profiles/zhuzhou-2021.json").read_text())
SCALE = 0.005


@pytest.fixture(scope="module")
def year(tmp_path_factory) -> tuple[Path, list[CallRecord], list[OrderRecord]]:
    out = tmp_path_factory.mktemp("simulate") / "year.jsonl"
    simulate_year(profile=load_profile("zhuzhou", year=2021, scale=SCALE), seed=7, out=out)
    records = list(read_records(out))
    return (out, [r for r in records if isinstance(r, CallRecord)], [r for r in records if isinstance(r, OrderRecord)])


def _scaled(key: str) -> int:
    return round(SEED[key] * SCALE)


def test_totals_follow_the_published_figures_exactly(year):
    _, calls, orders = year
    valid = [o for o in orders if o.events[0].action not in ("screen_out", "merge")]
    handed = [o for o in valid if o.events[0].action == "dispatch"]
    assert len(calls) + len(orders) == _scaled("calls_connected")
    county = sum(1 for c in calls if c.channel == "county_platform") + sum(
        1 for o in orders if o.channel == "county_platform")
    assert county == _scaled("calls_from_county_platforms")
    assert len(valid) == _scaled("valid_items_accepted")
    assert len(handed) == _scaled("handed_to_units")
    visits = sum(1 for o in handed for e in o.events if "satisfaction" in e.payload)
    assert visits == _scaled("return_visits")
    end = datetime(2022, 1, 1, tzinfo=LOCAL)
    completed = sum(1 for o in handed if o.events[-1].action == "close" and o.events[-1].at < end)
    assert completed / len(handed) == pytest.approx(SEED["handed_to_units_completion_rate_pct"] / 100, abs=0.005)
    tops = Counter(o.category.split(".")[0] for o in valid if o.category)
    ranked = [code for code, _ in tops.most_common(10)]
    assert ranked == [c["code"] for c in SEED["top_categories_in_rank_order"]]
    assert tops["hr_social_security"] == round(85534 * SCALE)


def test_the_year_has_rhythms_and_holidays(year):
    _, _, orders = year
    per_day = Counter(o.received_at.astimezone(LOCAL).date() for o in orders)
    weekdays = [n for d, n in per_day.items() if d.weekday() < 5 and d.month in (3, 4, 5, 6)]
    weekends = [n for d, n in per_day.items() if d.weekday() >= 5 and d.month in (3, 4, 5, 6)]
    assert sum(weekdays) / len(weekdays) > 1.2 * sum(weekends) / len(weekends)
    spring_festival = sum(per_day[date(2021, 2, d)] for d in range(11, 18))
    a_week_later = sum(per_day[date(2021, 3, d)] for d in range(8, 15))
    assert spring_festival < 0.7 * a_week_later
    hours = Counter(o.received_at.astimezone(LOCAL).hour for o in orders)
    assert hours[10] > 5 * hours[3]


def test_a_few_units_pass_the_buck_run_late_or_close_falsely(year):
    _, _, orders = year
    actions = Counter(e.action for o in orders for e in o.events)
    assert actions["request_return"] > 0 and actions["reject_return"] > 0
    assert actions["redo"] == max(1, round(SEED["return_visits"] * SCALE * (100 - SEED["satisfaction_rate_pct"]) / 100))
    assert actions["merge"] > 0 and actions["screen_out"] > 0
    returners = {e.actor_id for o in orders for e in o.events if e.action == "request_return"}
    assert 1 <= len(returners) <= 3


def test_the_file_validates_against_the_directory_and_the_same_seed_gives_the_same_bytes(year, directory, tmp_path):
    path, _, _ = year
    from duban.db import session_scope

    with session_scope(readonly=True) as session:
        known = load_lookups(session).directory()
    assert sum(1 for _ in read_records(path, known, keep_going=True)) > 0
    again = tmp_path / "again.jsonl"
    simulate_year(profile=load_profile("zhuzhou", year=2021, scale=SCALE), seed=7, out=again)
    assert again.read_bytes() == path.read_bytes()
    other = tmp_path / "other.jsonl"
    simulate_year(profile=load_profile("zhuzhou", year=2021, scale=SCALE), seed=8, out=other)
    assert other.read_bytes() != path.read_bytes()


def test_profiles_scale_and_bad_parameters_are_refused(tmp_path):
    larger = load_profile("zhuzhou", year=2021, scale=10)
    assert (larger.valid_items, larger.handed_to_units) == (3_799_460, 833_100)
    assert larger.categories[0] == ("hr_social_security", 855_340)
    with pytest.raises(ValidationFailed, match="--scale 0"):
        load_profile("zhuzhou", year=2021, scale=0)
    with pytest.raises(ValidationFailed, match='unknown profile "nowhere"'):
        load_profile("nowhere", year=2021)
    custom = dict(SEED, hot_topics=["noise"], shape={"hot_topic_handed": [100], "other_handed_cap": 200})
    (tmp_path / "city.json").write_text(json.dumps(custom), encoding="utf-8")
    with pytest.raises(ValidationFailed, match="each above shape.other_handed_cap"):
        load_profile(str(tmp_path / "city.json"), year=2021)
    with pytest.raises(ValidationFailed, match="does not know 2030"):
        simulate_year(profile=load_profile("zhuzhou", year=2030, scale=0.001), seed=1, out=tmp_path / "y.jsonl")


def test_apportion_meets_the_total_and_the_caps():
    assert apportion(10, [1, 1, 1]) == [4, 3, 3]
    assert apportion(100, [5, 3, 2], [30, 100, 100]) == [30, 42, 28]
    assert sum(apportion(379946, [0.7, 0.18, 0.045, 0.03, 0.02, 0.015, 0.01])) == 379946
    with pytest.raises(ValidationFailed):
        apportion(10, [1, 1], [3, 3])
