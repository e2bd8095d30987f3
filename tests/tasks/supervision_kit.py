"""Helpers for the supervision tests: local times, policy variants, orders at a given moment, what fired."""

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from duban.db import session_scope
from duban.settings import get_settings
from models.lifecycle import Action
from models.records import Event, Notification
from models.supervision_records import Escalation
from models.work_order import WorkOrder
from tasks.policy_store import forget_policies
from tasks.transitions import Actor, transition
from tests.factories import new_order

ROOT = Path(__file__).resolve().parents[2]
CST = ZoneInfo("Asia/Shanghai")
# Lead housing, no assisting unit: the order's own ladder alone.
PLAIN = "city_appearance_life_services.property_management"
RUNG_EVENTS = ("deadline_warned", "deadline_missed", "case_opened", "unit_put_on_notice", "deadline_escalated")


def local(*args: int) -> datetime:
    """An aware time in Zhuzhou."""
    return datetime(*args, tzinfo=CST)


def use_policy(tmp_path: Path, monkeypatch, **replacements: str) -> None:
    """Run on the suite's policy.yaml with lines replaced, e.g. max_returns="9" (the key's value in the file)."""
    text = get_settings().policy_file.read_text(encoding="utf-8")
    for key, value in replacements.items():
        lines = [line for line in text.splitlines() if line.strip().startswith(f"{key}:")]
        assert len(lines) == 1, key
        indent = lines[0][: len(lines[0]) - len(lines[0].lstrip())]
        text = text.replace(lines[0], f"{indent}{key}: {value}")
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("DUBAN_POLICY_FILE", str(path))
    get_settings.cache_clear()
    forget_policies()


def dispatched(at: datetime, category: str = PLAIN, **fields) -> int:
    """A complaint received and dispatched at `at`."""
    order_id = new_order(category=category, at=at, **fields)
    transition(order_id=order_id, action=Action.DISPATCH, actor=Actor.system(), at=at)
    return order_id


def order(order_id: int) -> WorkOrder:
    """The order as stored now, detached with its columns loaded."""
    with session_scope(readonly=True) as session:
        found = session.get(WorkOrder, order_id)
        session.expunge(found)
        return found


def rung_events(order_id: int) -> list[tuple[str, str, str | None]]:
    """(event, stage, unit) of each rung event of the order, in order."""
    with session_scope(readonly=True) as session:
        return [(e.name, e.payload.get("stage"), e.payload.get("unit")) for e in session.scalars(
            select(Event).where(Event.work_order_id == order_id, Event.name.in_(RUNG_EVENTS)).order_by(Event.id))]


def escalations(order_id: int) -> list[tuple[str, str, datetime]]:
    """(stage, rung, fired_at) of each fired rung of the order."""
    with session_scope(readonly=True) as session:
        return [(e.stage, e.rung, e.fired_at) for e in session.scalars(
            select(Escalation).where(Escalation.work_order_id == order_id).order_by(Escalation.id))]


def notices(order_id: int) -> list[tuple[str, list[str]]]:
    """(kind, recipients) of the order's notices, in order."""
    with session_scope(readonly=True) as session:
        return [(n.kind, list(n.recipients)) for n in session.scalars(
            select(Notification).where(Notification.work_order_id == order_id).order_by(Notification.id))]
