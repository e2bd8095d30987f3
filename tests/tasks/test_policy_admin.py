"""Policy versions: the preview of a change, apply with keep or migrate, rollback, refusals."""

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from duban.db import session_scope
from duban.errors import PolicyError
from duban.settings import get_settings
from models.enums import Status
from models.records import Event, PolicyVersion
from models.work_order import WorkOrder
from tasks.policy_admin import apply_policy, diff_policy, history, rollback_policy, version_text
from tasks.policy_store import current_policy
from tests.factories import T0, new_order, order_in

ROOT = Path(__file__).resolve().parents[2]
BASE = get_settings().policy_file.read_text(encoding="utf-8")  # version 0: the suite's policy.yaml
NOISE = "{category: city_appearance_life_services.noise, lead: ecology_environment, assist: [public_security]}"
AT = T0 + timedelta(days=1)


def with_complaint_handling(amount: str, text: str = BASE) -> str:
    """The shipped policy with a time limit rule for complaints appended to time_limits.rules."""
    anchor = "    - when: {item_type: praise}         # passing thanks on to a unit\n      handling: 10 working_days\n"
    assert anchor in text
    return text.replace(anchor, anchor + f"    - when: {{item_type: complaint}}\n      handling: {amount}\n")


def snapshot(order_id: int) -> tuple:
    with session_scope(readonly=True) as session:
        order = session.get(WorkOrder, order_id)
        return order.stage_due_at, order.due_at, order.next_due_at, order.policy_version


def apply(text: str, in_flight: str, reason: str = "complaints are handled faster") -> int:
    with session_scope() as session:
        return apply_policy(session=session, text=text, source="new.yaml", reason=reason, by="admin-zhao",
                            in_flight=in_flight, at=AT).number


def test_diff_reports_exactly_the_moved_deadlines_and_rerouted_orders(directory):
    handling, dispatched, closed = order_in(Status.HANDLING), order_in(Status.DISPATCHED), order_in(Status.CLOSED)
    text = with_complaint_handling("3 working_days").replace(NOISE, NOISE.replace("ecology_environment",
                                                                                    "urban_management"))
    with session_scope(readonly=True) as session:
        diff = diff_policy(session=session, text=text, source="new.yaml", at=AT)
        numbers = {i: session.get(WorkOrder, i).number for i in (handling, dispatched, closed)}
    assert diff.in_flight == 2
    assert {(m.number, m.field) for m in diff.moved} == {
        (numbers[handling], "stage_due_at"), (numbers[handling], "due_at"),
        (numbers[handling], "ecology_environment.due_at"), (numbers[handling], "public_security.due_at"),
        (numbers[dispatched], "due_at"), (numbers[dispatched], "ecology_environment.due_at"),
        (numbers[dispatched], "public_security.due_at"),
    }
    # Two working days of seven hours earlier, whatever the weekend in between.
    assert all(m.new < m.old and m.new.weekday() < 5 for m in diff.moved)
    assert diff.as_json()["moved_distribution"]["earlier by more than 1 day"] == 7
    assert {(r.number, r.old_lead, r.new_lead) for r in diff.rerouted} == {
        (numbers[handling], "ecology_environment", "urban_management"),
        (numbers[dispatched], "ecology_environment", "urban_management"),
    }
    kinds = {(c.kind, c.key, c.old, c.new) for c in diff.changes}
    assert ("time limits", "time_limits.rules[item_type=complaint].handling", None, "3 working_days") in kinds
    assert ("routing", "routing.rules[category=city_appearance_life_services.noise].lead",
            "ecology_environment", "urban_management") in kinds
    assert diff.overdue_at_once == [] and diff.escalate_at_once == []


def test_diff_names_orders_that_would_be_overdue_at_once(directory):
    handling = order_in(Status.HANDLING)
    with session_scope(readonly=True) as session:
        diff = diff_policy(session=session, text=with_complaint_handling("1 working_hours"), source="new.yaml",
                           at=AT)
        number = session.get(WorkOrder, handling).number
    assert diff.overdue_at_once == [number]
    assert diff.escalate_at_once == [number]


def test_apply_keep_leaves_in_flight_deadlines_and_new_orders_take_the_new_version(directory):
    handling = order_in(Status.HANDLING)
    before = snapshot(handling)
    with session_scope(readonly=True) as session:
        assert current_policy(session).version == 0
    assert apply(with_complaint_handling("3 working_days"), "keep") == 1
    assert snapshot(handling) == before
    fresh = new_order(at=AT)
    assert snapshot(fresh)[3] == 1
    with session_scope(readonly=True) as session:
        assert current_policy(session).version == 1
        assert session.scalars(select(Event).where(Event.name == "policy_migrated")).all() == []
        row = session.scalar(select(PolicyVersion).where(PolicyVersion.number == 1))
        assert (row.created_by, row.reason, row.in_flight, row.current) == (
            "admin-zhao", "complaints are handled faster", "keep", True)
        assert row.content == with_complaint_handling("3 working_days") and len(row.content_hash) == 64


def test_apply_migrate_moves_deadlines_and_writes_one_event_per_order(directory):
    handling, dispatched, closed = order_in(Status.HANDLING), order_in(Status.DISPATCHED), order_in(Status.CLOSED)
    text = with_complaint_handling("3 working_days")
    with session_scope(readonly=True) as session:
        expected = {(m.number, m.field): m.new for m in
                    diff_policy(session=session, text=text, source="new.yaml", at=AT).moved}
    old_handling, old_dispatched = snapshot(handling), snapshot(dispatched)
    assert apply(text, "migrate") == 1
    new_handling, new_dispatched = snapshot(handling), snapshot(dispatched)
    with session_scope(readonly=True) as session:
        number = session.get(WorkOrder, handling).number
        events = session.scalars(select(Event).where(Event.name == "policy_migrated").order_by(Event.id)).all()
        migrated = [(e.work_order_id, e.payload["from_version"], e.payload["to_version"]) for e in events]
        moved = events[0].payload["moved"]
    assert new_handling[0] == expected[(number, "stage_due_at")] < old_handling[0]
    assert new_handling[2] < old_handling[2] and new_handling[3] == 1
    assert new_dispatched[0] == old_dispatched[0] and new_dispatched[1] < old_dispatched[1]
    assert migrated == [(handling, 0, 1), (dispatched, 0, 1)]
    assert moved["stage_due_at"]["to"] == expected[(number, "stage_due_at")].isoformat()
    assert snapshot(closed)[3] == 0


def test_rollback_is_a_new_version_equal_to_the_old_one_with_its_in_flight_choice(directory):
    handling = order_in(Status.HANDLING)
    original = snapshot(handling)
    apply(with_complaint_handling("3 working_days"), "migrate")
    apply(with_complaint_handling("4 working_days"), "keep")
    with session_scope() as session:
        applied = rollback_policy(session=session, number=0, reason="the council withdrew it", by="admin-zhao",
                                  in_flight="migrate", at=AT)
    assert applied.number == 3 and applied.migrated == 1
    assert snapshot(handling)[:2] == original[:2]
    with session_scope() as session:
        again = rollback_policy(session=session, number=1, reason="back to three days", by="admin-zhao",
                                in_flight=None, at=AT)
        listed = history(session=session)
        assert version_text(session=session, number=4) == version_text(session=session, number=1)
    assert again.in_flight == "migrate" and again.number == 4
    assert [(v.number, v.current) for v in listed] == [(0, False), (1, False), (2, False), (3, False), (4, True)]
    assert listed[4].content_hash == listed[1].content_hash and listed[3].content_hash == listed[0].content_hash
    assert listed[4].reason == "rollback to version 1: back to three days"


REFUSED = [
    (BASE.replace("{category: hr_social_security, lead: hrss}", "{category: hr_social_security, lead: hrsss}"),
     'routing.rules[5].lead: unknown unit "hrsss"'),
    (BASE.replace("    - {category: hr_social_security.remote_medical_settlement, lead: medical_security, "
                  "assist: [hrss]}\n", "").replace(
        "    - {category: hr_social_security, lead: hrss}\n",
        "    - {category: hr_social_security, lead: hrss}\n    - {category: hr_social_security.remote_medical_"
        "settlement, lead: medical_security, assist: [hrss]}\n"),
     "routing.rules[5]: never used: new.yaml:"),
    (BASE.replace("handling: 5 working_days", "handling: 0 working_days", 1), "time_limits.default.handling"),
    (with_complaint_handling("3 working_days").replace("{item_type: complaint}", "{category: emergency_management}"),
     "time_limits.rules[6].handling: never used"),
    (with_complaint_handling("3 working_days").replace("{item_type: complaint}\n      handling: 3 working_days",
                                                       "{item_type: praise}\n      return_visit: 1 working_days"),
     "time_limits.rules[6].return_visit: unreachable stage: praise orders never enter return_visit"),
    (BASE.replace("    - rung: warning\n    - rung: overdue\n", "    - rung: overdue\n    - rung: warning\n"),
     'escalation.ladder[1].rung: "warning" comes after "overdue"'),
]


def test_a_broken_or_inconsistent_policy_is_refused_naming_the_key_and_line(directory):
    for text, named in REFUSED:
        assert text != BASE
        with pytest.raises(PolicyError) as refused:
            apply(text, "migrate")
        assert named in str(refused.value)
        assert "new.yaml:" in str(refused.value)
    with session_scope(readonly=True) as session:
        assert session.scalars(select(PolicyVersion)).all() == []


def test_apply_needs_a_reason_and_a_change(directory):
    with pytest.raises(PolicyError, match="reason is required"):
        apply(with_complaint_handling("3 working_days"), "keep", reason=" ")
    with pytest.raises(PolicyError, match="nothing to apply"):
        apply(BASE, "keep")
    with pytest.raises(PolicyError, match="keep or migrate"):
        apply(with_complaint_handling("3 working_days"), "later")


def test_two_admins_applying_at_once_take_turns(directory):
    second_started, results = threading.Event(), {}

    def second() -> None:
        second_started.set()
        results["second"] = apply(with_complaint_handling("4 working_days"), "keep", reason="four days")

    with session_scope() as session:
        results["first"] = apply_policy(session=session, text=with_complaint_handling("3 working_days"),
                                        source="new.yaml", reason="three days", by="admin-zhao", in_flight="keep",
                                        at=AT).number
        thread = threading.Thread(target=second)
        thread.start()
        second_started.wait(5)
        thread.join(1)  # the second waits for the first to commit
        assert thread.is_alive()
    thread.join(30)
    assert results == {"first": 1, "second": 2}
    with session_scope(readonly=True) as session:
        rows = session.scalars(select(PolicyVersion).order_by(PolicyVersion.number)).all()
        assert [(row.number, row.reason, row.current) for row in rows] == [
            (1, "three days", False), (2, "four days", True)]
        assert current_policy(session).version == 2
