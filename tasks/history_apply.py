"""History records run through Duban's own intake and transition(), a batch at a time.

Import and replay share this engine: orders are registered as intake registers them (status
received, a work_order_received event, the policy version in force), then each recorded action goes
through transition() at its recorded time, so deadlines, assignments, notices and events are the
ones Duban itself derives. A batch holds its orders (tasks.held): each is read once per batch and
written once per wave, its version moved once per transition.
"""

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from duban.errors import DubanError, NotFound
from duban.settings import get_settings
from models.directory import Category, District, Unit
from models.enums import ActorKind
from models.lifecycle import Action
from models.records import OrderCounter
from models.work_order import WorkOrder
from tasks import held
from tasks.executemany import executemany
from tasks.history_format import LOCAL, EventRecord, HistoryError, OrderRecord, canonical_payload
from tasks.history_parse import Directory
from tasks.numbers import allocate_numbers
from tasks.policy_store import current_policy
from tasks.transitions import Actor, transition

RECEIVED_EVENT = "work_order_received"
_INSERT_ORDERS = insert(WorkOrder.__table__)
_BY_NUMBERS = select(WorkOrder).where(WorkOrder.number.in_(bindparam("numbers", expanding=True)))


@dataclass(frozen=True)
class Lookups:
    """The directory's codes and ids, read once per run."""

    categories: dict[str, int]
    districts: dict[str, int]
    units: dict[str, int]

    def directory(self) -> Directory:
        return Directory(frozenset(self.categories), frozenset(self.districts), frozenset(self.units))

    def codes(self, table: str) -> dict[int, str]:
        return {v: k for k, v in getattr(self, table).items()}


def load_lookups(session: Session) -> Lookups:
    """Codes to ids of categories, districts and units."""
    return Lookups(*(dict(session.execute(select(model.code, model.id)).all()) for model in (Category, District, Unit)))


def allocate(session: Session, records: Sequence[OrderRecord]) -> list[str]:
    """Duban's own numbers for these orders, one reservation per local day."""
    numbers: list[str] = []
    for _, day in groupby(records, key=lambda r: r.received_at.astimezone(LOCAL).date()):
        day = list(day)
        numbers += allocate_numbers(session, day[0].received_at, len(day))
    return numbers


def receive(session: Session, records: Sequence[OrderRecord], *, lookups: Lookups, numbers: Sequence[str],
            actor_id: str, policy_version: int | None = None) -> list[WorkOrder]:
    """Register orders as intake does, in one batch, under these numbers; they stay held for the transaction."""
    version = current_policy(session).version if policy_version is None else policy_version
    rows = [dict(
        number=number, channel=r.channel, channel_ref=r.channel_ref, item_type=r.item_type, urgency=r.urgency,
        category_id=lookups.categories[r.category] if r.category else None,
        district_id=lookups.districts[r.district] if r.district else None, title=r.title, content=r.content,
        address=r.address, citizen_name=r.citizen["name"], citizen_phone=r.citizen["phone"],
        citizen_email=r.citizen["email"], confidential=r.citizen["confidential"], received_at=r.received_at,
        updated_at=r.received_at, policy_version=version,
    ) for number, r in zip(numbers, records, strict=True)]
    # One executemany INSERT, then the rows read back as the session's objects: cheaper than the ORM
    # inserting them one object at a time, and the same rows.
    executemany(session.connection(), _INSERT_ORDERS, rows)
    by_number: dict[str, WorkOrder] = {}
    for start in range(0, len(rows), 500):
        by_number.update((o.number, o) for o in session.scalars(_BY_NUMBERS, {"numbers": numbers[start:start + 500]}))
    orders = [by_number[number] for number in numbers]
    held.hold_new(session, orders)
    for order in orders:
        held.buffer_event(session, dict(
            work_order_id=order.id, unit_id=None, name=RECEIVED_EVENT, actor_kind=ActorKind.CHANNEL,
            actor_id=actor_id, at=order.received_at, from_status=None, to_status=order.status,
            payload={"channel": order.channel, "item_type": order.item_type}))
    held.write_events(session)
    return orders


_DUBAN_NUMBER = re.compile(r"^([A-Z]{2,4}\d{8})-(\d{6})$")


def bump_counters(session: Session, numbers: Iterable[str]) -> None:
    """Move the per-day counters past imported numbers, so Duban never hands one out again."""
    city = get_settings().city_code
    last: dict[str, int] = {}
    for number in numbers:
        match = _DUBAN_NUMBER.match(number)
        if match and match.group(1).startswith(city):
            last[match.group(1)] = max(last.get(match.group(1), 0), int(match.group(2)))
    if not last:
        return
    stored = dict(session.execute(select(OrderCounter.prefix, OrderCounter.last)
                                  .where(OrderCounter.prefix.in_(list(last)))).all())
    for prefix, seq in last.items():
        if prefix not in stored:
            session.execute(insert(OrderCounter).values(prefix=prefix, last=seq))
        elif stored[prefix] < seq:
            session.get(OrderCounter, prefix).last = seq


@dataclass(frozen=True)
class Step:
    """One recorded action of one order, to be applied at its time."""

    order_id: int
    line: int
    index: int
    event: EventRecord


def apply_steps(session: Session, steps: Sequence[Step], *, lookups: Lookups,
                order_id_of: Callable[[str], int | None]) -> int:
    """Apply steps through transition(): step k of every order in wave k, a flush between waves, so a
    transition finds what the one before it created already written (ids included)."""
    held.hold_orders(session, [s.order_id for s in steps if not held.is_held(session, s.order_id)])
    waves: list[list[Step]] = []
    depth: dict[int, int] = {}
    for step in steps:
        k = depth.get(step.order_id, 0)
        depth[step.order_id] = k + 1
        if k == len(waves):
            waves.append([])
        waves[k].append(step)
    for wave in waves:
        for step in wave:
            event = step.event
            try:
                transition(order_id=step.order_id, action=event.action, actor=_actor(event, lookups),
                           at=event.at, payload=transition_payload(event, lookups, order_id_of), session=session)
            except DubanError as exc:
                raise HistoryError(f"line {step.line}: events[{step.index}] ({event.action}): {exc}") from None
        held.flush(session)
    return len(steps)


def _actor(event: EventRecord, lookups: Lookups) -> Actor:
    if event.actor_kind == ActorKind.UNIT:
        return Actor(ActorKind.UNIT, event.actor_id, lookups.units[event.actor_id])
    return Actor(event.actor_kind, event.actor_id)


def transition_payload(event: EventRecord, lookups: Lookups, order_id_of: Callable[[str], int | None]
                       ) -> dict[str, Any]:
    """What the action's service call would pass to transition() for this recorded event."""
    p, action = event.payload, event.action
    if action == Action.DISPATCH:
        return {"unit_code": p["unit"], "assist": p.get("assist", [])} if p.get("unit") else {}
    if action == Action.REQUEST_RETURN:
        suggested = p.get("suggested_unit")
        return {"reason": p["reason"], "suggested_unit_id": lookups.units[suggested] if suggested else None,
                "evidence_note": p.get("evidence_note", ""), "evidence_files": p.get("evidence_files", [])}
    if action in (Action.APPROVE_RETURN, Action.REDISPATCH):
        unit = {"unit_code": p["unit"]} if p.get("unit") else {}
        return unit | {"reason": p.get("reason", ""), "designate": p.get("designate", False)}
    if action == Action.MERGE:
        master = order_id_of(p["master"])
        if master is None:
            raise NotFound(f"master order {p['master']} is neither earlier in the file nor in the database")
        return {"master_id": master}
    if action == Action.REPLY:
        reply = {"text": p["text"], "contacted": p.get("contacted"), "solved": p.get("solved"),
                 "evidence_files": p.get("evidence_files", [])}
        return reply | ({"adopted": p["adopted"]} if p.get("adopted") is not None else {})
    if action in (Action.CLOSE, Action.REDO):
        if p.get("satisfaction") is None:
            return {}
        return {"satisfaction": p["satisfaction"], "contacted": p.get("contacted", False),
                "resolved": p.get("resolved", False), "comment": p.get("comment", "")}
    return dict(p)


def format_payload(action: Action, stored: dict[str, Any], unit_codes: dict[int, str]) -> dict[str, Any]:
    """The format's payload of an event row: the action's input, read back from what transition() logged."""
    if action == Action.DISPATCH:
        p = {"unit": stored.get("unit"), "assist": stored.get("assist", [])}
    elif action == Action.REQUEST_RETURN:
        suggested = stored.get("suggested_unit_id")
        p = {"reason": stored.get("reason", ""), "suggested_unit": unit_codes.get(suggested) if suggested else None,
             "evidence_note": stored.get("evidence_note", ""), "evidence_files": stored.get("evidence_files", [])}
    elif action in (Action.APPROVE_RETURN, Action.REDISPATCH):
        p = {"unit": stored.get("unit"), "reason": stored.get("reason", ""),
             "designate": bool(stored.get("designated"))}
    elif action == Action.MERGE:
        p = {"master": stored.get("master")}
    else:
        p = stored
    return canonical_payload(action, p)
