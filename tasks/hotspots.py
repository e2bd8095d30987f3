"""Hot spots: items per topic (leaf category) and category, per district, against a rolling baseline."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban.db import session_scope
from models.base import utcnow
from models.directory import Category, District
from models.enums import Status
from models.intake import HotSpotAlert, HotSpotLevel
from models.work_order import WorkOrder
from tasks.outbox import enqueue_notice
from tasks.policy_store import current_policy

BASELINE_WINDOWS = 4  # the baseline is the four windows before the current one
ORDERS_LISTED = 200
CITY = "city"


@dataclass(frozen=True)
class HotSpot:
    """One surge: what, where, how many against how many expected, and the orders behind it."""

    alert_id: int
    level: str
    category_code: str
    category_name: str
    district_code: str
    district_name: str
    day: date
    window_days: int
    count: int
    expected: float
    order_numbers: list[str] = field(default_factory=list)

    @property
    def factor(self) -> float | None:
        return round(self.count / self.expected, 1) if self.expected else None


@dataclass
class _Tally:
    recent: list[int] = field(default_factory=list)
    baseline: int = 0


def _local_midnight(day: date, tz: Any) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def _tallies(session: Session, *, start: datetime, window_start: datetime, end: datetime
             ) -> dict[tuple[str, int, int | None], _Tally]:
    """Counts per (level, category, top-level district): the current window's orders and the baseline's count."""
    categories = {cid: parent for cid, parent in session.execute(select(Category.id, Category.parent_id))}
    districts = {did: parent for did, parent in session.execute(select(District.id, District.parent_id))}
    rows = session.execute(
        select(WorkOrder.id, WorkOrder.received_at, WorkOrder.category_id, WorkOrder.district_id).where(
            WorkOrder.received_at >= start, WorkOrder.received_at < end, WorkOrder.category_id.is_not(None),
            WorkOrder.status != Status.INVALID)
    ).all()
    tallies: dict[tuple[str, int, int | None], _Tally] = defaultdict(_Tally)
    for order_id, received_at, category_id, district_id in rows:
        # Streets roll up to their district or county.
        district = (districts.get(district_id) or district_id) if district_id else None
        keys = [(HotSpotLevel.CATEGORY, _top(categories, category_id), district)]
        if categories.get(category_id):
            keys.append((HotSpotLevel.TOPIC, category_id, district))
        for key in keys:
            if received_at >= window_start:
                tallies[key].recent.append(order_id)
            else:
                tallies[key].baseline += 1
    return tallies


def _top(parents: dict[int, int | None], category_id: int) -> int:
    while parents.get(category_id):
        category_id = parents[category_id]
    return category_id


def detect_hot_spots(*, day: date | None = None, at: datetime | None = None) -> list[HotSpot]:
    """Raise an alert (a row and a notice to supervisors) for each surge in the window ending on `day`; once each."""
    at = at or utcnow()
    found = []
    with session_scope() as session:
        policy = current_policy(session).policy
        rules, tz = policy.hot_spots, policy.work_calendar().tz
        day = day or at.astimezone(tz).date()
        window_start = day - timedelta(days=rules.window_days - 1)
        baseline_days = rules.window_days * BASELINE_WINDOWS
        tallies = _tallies(session, start=_local_midnight(window_start - timedelta(days=baseline_days), tz),
                           window_start=_local_midnight(window_start, tz),
                           end=_local_midnight(day + timedelta(days=1), tz))
        for (level, category_id, district_id), tally in sorted(tallies.items(), key=lambda kv: -len(kv[1].recent)):
            count = len(tally.recent)
            expected = round(tally.baseline / baseline_days * rules.window_days, 2)
            if count < rules.min_count or (expected and count < rules.surge_factor * expected):
                continue
            spot = _raise(session, level=level, category_id=category_id, district_id=district_id, day=day,
                          window_days=rules.window_days, orders=tally.recent, expected=expected, at=at,
                          supervisors=list(policy.recipients.supervisors))
            if spot is not None:
                found.append(spot)
    return found


def _raise(session: Session, *, level: str, category_id: int, district_id: int | None, day: date, window_days: int,
           orders: list[int], expected: float, at: datetime, supervisors: list[str]) -> HotSpot | None:
    category = session.get(Category, category_id)
    district = session.get(District, district_id) if district_id else None
    scope = district.code if district else CITY
    if session.scalar(select(HotSpotAlert.id).where(HotSpotAlert.category_id == category_id,
                                                    HotSpotAlert.scope == scope, HotSpotAlert.day == day)):
        return None
    listed = sorted(orders)[-ORDERS_LISTED:]
    alert = HotSpotAlert(category_id=category_id, district_id=district_id, scope=scope, level=level, day=day,
                         window_days=window_days, count=len(orders), expected=expected, order_ids=listed,
                         raised_at=at)
    session.add(alert)
    session.flush()
    numbers = list(session.scalars(select(WorkOrder.number).where(WorkOrder.id.in_(listed)).order_by(WorkOrder.id)))
    spot = HotSpot(alert.id, level, category.code, category.name_zh, scope, district.name_zh if district else "全市",
                   day, window_days, len(orders), expected, numbers)
    enqueue_notice(session, kind="hot_spot_alert", order=None, unit=None, recipients=supervisors, at=at, extra={
        "alert_id": alert.id, "level": level, "category": category.name_zh, "category_code": category.code,
        "district": spot.district_name, "day": day.isoformat(), "window_days": window_days, "count": len(orders),
        "expected": expected, "factor": spot.factor, "order_numbers": numbers,
    })
    return spot


def alert_table(spots: list[HotSpot]) -> list[dict[str, Any]]:
    """One row per hot spot, for the run's table artifact."""
    return [{"热点": s.category_name, "层级": "话题" if s.level == HotSpotLevel.TOPIC else "类别",
             "区县": s.district_name, f"近{s.window_days}天": s.count, "基线": s.expected,
             "倍数": s.factor if s.factor is not None else "新出现", "工单": "、".join(s.order_numbers[:10])}
            for s in spots]
