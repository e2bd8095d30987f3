"""Policy versions for admins: preview a change, apply it (keeping or migrating orders in flight), roll back."""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from duban.errors import NotFound, PolicyError
from duban.leader import LOCK_CLASS, POLICY_LOCK
from models.directory import Category, District, Unit
from models.enums import ActorKind
from models.policy import Policy, check_references, parse_policy
from models.policy_checks import consistency_problems
from models.records import PolicyVersion
from tasks.deadlines import refresh_next_due
from tasks.policy_inflight import MovedDeadline, Reroute, distribution, in_flight_orders, plan_order
from tasks.policy_store import current_policy, policy_version
from tasks.transitions import Actor, record_event

IN_FLIGHT_CHOICES = ("keep", "migrate")
# Lists whose entries are named by what they match rather than by position, so a reordering reads as one.
_KEYED = {
    "time_limits.rules": lambda rule: ",".join(f"{k}={v}" for k, v in rule["when"].items() if v is not None),
    "routing.rules": lambda rule: ",".join(f"{k}={rule[k]}" for k in ("category", "district") if rule.get(k)),
    "escalation.ladder": lambda rung: rung["rung"],
}
_KEY_FIELDS = {"time_limits.rules": ("when",), "routing.rules": ("category", "district"),
               "escalation.ladder": ("rung",)}
_KINDS = (("time_limits.warning_fraction", "thresholds"), ("time_limits", "time limits"), ("routing", "routing"),
          ("escalation.ladder", "ladder"), ("escalation.buck_passing", "thresholds"),
          ("scorecard.notice_threshold", "thresholds"), ("stages", "stages"))


@dataclass(frozen=True)
class PolicyChange:
    """One value the new policy changes."""

    kind: str
    key: str
    old: Any
    new: Any


@dataclass
class PolicyDiff:
    """What a new policy changes, and what it would do to the orders in flight."""

    from_version: int
    changes: list[PolicyChange]
    in_flight: int
    moved: list[MovedDeadline] = field(default_factory=list)
    rerouted: list[Reroute] = field(default_factory=list)
    overdue_at_once: list[str] = field(default_factory=list)
    escalate_at_once: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The diff as plain JSON values."""
        return {
            "from_version": self.from_version,
            "changes": [{"kind": c.kind, "key": c.key, "old": c.old, "new": c.new} for c in self.changes],
            "in_flight": self.in_flight,
            "moved_deadlines": [{"order": m.number, "field": m.field, "old": m.old.isoformat(),
                                 "new": m.new.isoformat(), "hours": round(m.hours, 2)} for m in self.moved],
            "moved_distribution": distribution(self.moved),
            "rerouted": [{"order": r.number, "category": r.category, "district": r.district,
                          "old_lead": r.old_lead, "new_lead": r.new_lead} for r in self.rerouted],
            "overdue_at_once": self.overdue_at_once,
            "escalate_at_once": self.escalate_at_once,
        }


@dataclass(frozen=True)
class VersionInfo:
    """One applied policy version, as listed by `duban policy history`."""

    number: int
    content_hash: str
    created_at: datetime | None
    created_by: str
    reason: str
    in_flight: str
    current: bool


@dataclass(frozen=True)
class Applied:
    """The version an apply recorded, and the orders it migrated."""

    number: int
    content_hash: str
    in_flight: str
    migrated: int
    moved: list[MovedDeadline]


def validated(*, session: Session, text: str, source: str) -> Policy:
    """The policy parsed and checked against itself and the directory; PolicyError listing every problem."""
    policy = parse_policy(text, source=source)
    found = consistency_problems(policy)
    units = set(session.scalars(select(Unit.code)))
    if not units:
        raise PolicyError(f"{source}: the directory is empty, so the policy's units cannot be checked; "
                          "load it first with `duban directory load`")
    found += check_references(policy, units=units, categories=set(session.scalars(select(Category.code))),
                              districts=set(session.scalars(select(District.code))))
    if found:
        count = f"{len(found)} problem" + ("s" if len(found) > 1 else "")
        raise PolicyError(f"{source}: refused, {count}:\n" + "\n".join(found))
    return policy


def diff_policy(*, session: Session, text: str, source: str, at: datetime) -> PolicyDiff:
    """Compare a new policy with the one in force and its effect on every order in flight at `at`."""
    new = validated(session=session, text=text, source=source)
    in_force = current_policy(session)
    orders = in_flight_orders(session)
    result = PolicyDiff(in_force.version, policy_changes(in_force.policy, new), len(orders))
    for order in orders:
        plan = plan_order(session, order=order, new=new, at=at)
        result.moved += plan.moved
        if plan.reroute:
            result.rerouted.append(plan.reroute)
        if plan.overdue_at_once:
            result.overdue_at_once.append(order.number)
        if plan.escalates_at_once:
            result.escalate_at_once.append(order.number)
    return result


def policy_changes(old: Policy, new: Policy) -> list[PolicyChange]:
    """Every value that differs between two policies, named by its dotted key."""
    before, after = _flatten(old.model_dump(mode="json"), ""), _flatten(new.model_dump(mode="json"), "")
    keys = list(before) + [key for key in after if key not in before]
    return [PolicyChange(_kind(key), key, before.get(key), after.get(key))
            for key in keys if before.get(key) != after.get(key)]


def apply_policy(*, session: Session, text: str, source: str, reason: str, by: str, in_flight: str,
                 at: datetime) -> Applied:
    """Record a new current version; with `migrate` move every in-flight order onto it, one event each."""
    if in_flight not in IN_FLIGHT_CHOICES:
        raise PolicyError(f'--in-flight "{in_flight}" is not a choice; use keep or migrate')
    if not reason.strip():
        raise PolicyError("a reason is required: say why the policy changes (--reason TEXT)")
    if not by.strip():
        raise PolicyError("say who applies the change (--by NAME)")
    new = validated(session=session, text=text, source=source)
    _one_apply_at_a_time(session)
    in_force = current_policy(session)
    if new.content_hash() == in_force.policy.content_hash():
        raise PolicyError(f"{source}: nothing to apply: its values equal policy version {in_force.version}, "
                          "which is in force")
    number = (session.scalar(select(func.max(PolicyVersion.number))) or 0) + 1
    session.execute(update(PolicyVersion).where(PolicyVersion.current.is_(True)).values(current=False))
    session.add(PolicyVersion(number=number, content=text, content_hash=new.content_hash(), created_at=at,
                              created_by=by, reason=reason, in_flight=in_flight, current=True))
    session.flush()
    moved: list[MovedDeadline] = []
    migrated = 0
    if in_flight == "migrate":
        actor = Actor(ActorKind.SUPERVISOR, by)
        for order in in_flight_orders(session, lock=True):
            plan = plan_order(session, order=order, new=policy_version(session, number), at=at)
            for assignment, column, value in plan.updates:
                setattr(assignment if assignment is not None else order, column, value)
            previous = order.policy_version
            order.policy_version, order.updated_at = number, at
            refresh_next_due(session, order)
            record_event(session, order=order, name="policy_migrated", actor=actor, at=at, payload={
                "from_version": previous, "to_version": number, "reason": reason,
                "moved": {m.field: {"from": m.old.isoformat(), "to": m.new.isoformat()} for m in plan.moved},
            })
            moved += plan.moved
            migrated += 1
        session.flush()
    return Applied(number, new.content_hash(), in_flight, migrated, moved)


def _one_apply_at_a_time(session: Session) -> None:
    """Two admins applying at once take turns: the second numbers its version after the first's.

    SQLite's writers already take turns; on PostgreSQL a transaction lock is held until the apply commits.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(LOCK_CLASS, POLICY_LOCK)))


def rollback_policy(*, session: Session, number: int, reason: str, by: str, in_flight: str | None,
                    at: datetime) -> Applied:
    """A new version equal to version `number`, applied with the in-flight choice that version was."""
    row = session.scalar(select(PolicyVersion).where(PolicyVersion.number == number))
    if row is None and number != 0:
        raise NotFound(f"policy version {number} does not exist; see `duban policy history`")
    choice = in_flight or (row.in_flight if row is not None else "keep")
    return apply_policy(session=session, text=version_text(session=session, number=number),
                        source=f"policy version {number}", reason=f"rollback to version {number}: {reason}",
                        by=by, in_flight=choice, at=at)


def version_text(*, session: Session, number: int) -> str:
    """The text of a version as it was applied (version 0: the policy file in settings)."""
    if number == 0:
        return policy_version(session, 0).source_text
    content = session.scalar(select(PolicyVersion.content).where(PolicyVersion.number == number))
    if content is None:
        raise NotFound(f"policy version {number} does not exist; see `duban policy history`")
    return content


def history(*, session: Session) -> list[VersionInfo]:
    """Every version, oldest first, the policy file in settings as version 0."""
    rows = list(session.scalars(select(PolicyVersion).order_by(PolicyVersion.number)))
    base = policy_version(session, 0)
    listed = [VersionInfo(0, base.content_hash(), None, "policy file", base.source, "keep",
                          not any(row.current for row in rows))]
    return listed + [VersionInfo(row.number, row.content_hash, row.created_at, row.created_by, row.reason,
                                 row.in_flight, row.current) for row in rows]


def _flatten(value: Any, path: str) -> dict[str, Any]:
    if isinstance(value, dict):
        found: dict[str, Any] = {}
        for key, item in value.items():
            found |= _flatten(item, f"{path}.{key}" if path else key)
        return found
    if isinstance(value, list) and path in _KEYED:
        found, seen = {}, {}
        for item in value:
            name = _KEYED[path](item)
            seen[name] = seen.get(name, 0) + 1
            label = f"{path}[{name}]" + (f"#{seen[name]}" if seen[name] > 1 else "")
            rest = {k: v for k, v in item.items() if k not in _KEY_FIELDS[path] and v not in (None, [])}
            found |= _flatten(rest, label) if rest else {label: "(present)"}
        return found
    return {path: json.dumps(value, ensure_ascii=False) if isinstance(value, list) else value}


def _kind(key: str) -> str:
    return next((kind for prefix, kind in _KINDS if key.startswith(prefix)), key.split(".", 1)[0].split("[")[0])
