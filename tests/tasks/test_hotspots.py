"""Hot spots: a synthetic surge over the rolling baseline raises one alert per topic and district, with its orders."""

import json
from datetime import date, datetime, timedelta

from sqlalchemy import select

from duban.db import session_scope
from models.intake import HotSpotAlert
from models.records import Notification
from models.work_order import WorkOrder
from tasks.hotspots import alert_table, detect_hot_spots
from tasks.intake import intake_file
from tasks.transitions import Actor, transition
from tests.intake_helpers import channel

DAY = date(2021, 3, 21)  # the window is 15 to 21 March; the baseline the 28 days before


def _items(code: str, district: str | None, per_day: dict[date, int], prefix: str) -> list[dict]:
    items = []
    for day, count in per_day.items():
        for n in range(count):
            moment = datetime.fromisoformat(f"{day}T09:00:00+08:00") + timedelta(minutes=n)
            items.append({"content": f"{prefix}第{n}条", "item_type": "complaint", "category": code,
                          "channel_ref": f"{code.rsplit('.', 1)[-1]}-{day}-{n}", "received_at": moment.isoformat(),
                          **({"district": district} if district else {})})
    return items


def _days(first: date, last: date, count: int) -> dict[date, int]:
    return {first + timedelta(days=i): count for i in range((last - first).days + 1)}


def test_a_surge_over_the_baseline_raises_one_alert_with_its_orders(directory, tmp_path):
    baseline = (date(2021, 2, 15), date(2021, 3, 14))
    items = (
        _items("city_appearance_life_services.noise", "lusong.jianning", _days(*baseline, 1), "噪音基线")
        + _items("city_appearance_life_services.noise", "lusong.jianning",
                 {DAY - timedelta(days=i): 5 for i in range(5)}, "广场舞噪音")
        + _items("city_appearance_life_services.cooking_fumes", "tianyuan", _days(baseline[0], DAY, 4), "油烟常态")
        + _items("transportation.ride_hailing", "hetang", {DAY: 15}, "网约车")
        + _items("transportation.driving_schools", None, {DAY - timedelta(days=1): 22}, "驾校退费")
        + _items("city_appearance_life_services.garbage_station_odour", "shifeng", {DAY: 25}, "垃圾站")
    )
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(json.dumps(i, ensure_ascii=False) for i in items), encoding="utf-8")
    identity, _ = channel("hotline")
    assert intake_file(path=path, channel=identity).created == len(items)
    with session_scope() as session:
        for order_id in session.scalars(select(WorkOrder.id).where(WorkOrder.content.like("垃圾站%"))):
            transition(order_id=order_id, action="screen_out", actor=Actor.system(), session=session,
                       at=datetime.fromisoformat(f"{DAY}T12:00:00+08:00"))

    at = datetime.fromisoformat(f"{DAY}T23:00:00+08:00")
    spots = detect_hot_spots(day=DAY, at=at)
    found = {(s.level, s.category_code, s.district_code): s for s in spots}
    assert set(found) == {
        ("topic", "city_appearance_life_services.noise", "lusong"),
        ("category", "city_appearance_life_services", "lusong"),
        ("topic", "transportation.driving_schools", "city"),
        ("category", "transportation", "city"),
    }, set(found)
    noise = found[("topic", "city_appearance_life_services.noise", "lusong")]
    assert noise.count == 25 and noise.expected == 7.0 and noise.factor == 3.6 and noise.window_days == 7
    assert len(noise.order_numbers) == 25 and noise.district_name == "芦淞区" and noise.category_name == "噪音扰民"
    assert found[("topic", "transportation.driving_schools", "city")].factor is None
    with session_scope(readonly=True) as session:
        notices = {n.context["alert_id"]: n for n in session.scalars(
            select(Notification).where(Notification.kind == "hot_spot_alert"))}
        noise_notice = notices[noise.alert_id]
        assert noise_notice.recipients == ["duban@zz12345.example.gov.cn"]
        assert noise_notice.context["order_numbers"] == noise.order_numbers and noise_notice.context["count"] == 25
        stored = session.get(HotSpotAlert, noise.alert_id)
        assert stored.day == DAY and len(stored.order_ids) == 25 and stored.scope == "lusong"
    assert detect_hot_spots(day=DAY, at=at) == []
    rows = alert_table(spots)
    assert rows[0]["热点"] and {"区县", "近7天", "基线", "倍数", "工单"} <= set(rows[0])
    assert any(r["倍数"] == "新出现" for r in rows)
