"""The supervision sweep in simulated time: each rung once, at the right working time, whatever happens."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from duban.db import get_engine, session_scope
from duban.errors import Conflict
from models.enums import CaseKind, Status
from models.lifecycle import Action
from models.records import Notification
from models.requests import ExtensionRequest
from models.supervision import SupervisionCase
from models.work_order import Assignment
from tasks import actions
from tasks.cases import open_cases
from tasks.lifecycle import apply_form
from tasks.sweep import due_orders, sweep
from tasks.transitions import transition
from tests.factories import SUPERVISOR, lead_actor
from tests.tasks.supervision_kit import (
    dispatched,
    escalations,
    local,
    notices,
    order,
    rung_events,
)

# Wednesday 10 February 2021, 16:00, the eve of the Spring Festival holiday (11 to 17 February off;
# Saturday 20 February is a make-up working day). Sign-for limit 2 working hours, periods 08:30-12:00
# and 14:00-17:30: 1.5 h on the 10th, 0.5 h on Thursday the 18th.
DISPATCH = local(2021, 2, 10, 16, 0)
WARNING = local(2021, 2, 18, 8, 36)     # 80% of 2 working hours: 96 minutes, 90 of them on the 10th
DEADLINE = local(2021, 2, 18, 9, 0)
CASE = local(2021, 2, 19, 9, 0)         # 1 working day after the deadline
NOTICE = local(2021, 2, 22, 9, 0)       # 3 working days: the 19th, Saturday the 20th (make-up day), the 22nd
SECOND = timedelta(seconds=1)


def test_every_rung_fires_once_at_its_working_time_across_the_spring_festival(directory):
    order_id = dispatched(DISPATCH)
    assert order(order_id).next_due_at == WARNING
    version = order(order_id).version
    nothing = sweep(now=DISPATCH + timedelta(minutes=1))
    assert (nothing.due, nothing.processed, nothing.fired, order(order_id).version) == (0, 0, [], version)
    timeline = [
        (local(2021, 2, 14, 12, 0), []),                     # mid-holiday: nothing, though 80% of clock time passed
        (WARNING - SECOND, []),
        (WARNING, ["deadline_warned"]),
        (WARNING, []),
        (DEADLINE - SECOND, []),
        (DEADLINE, ["deadline_missed"]),
        (CASE - SECOND, []),
        (CASE, ["case_opened"]),
        (local(2021, 2, 20, 9, 0), []),
        (NOTICE - SECOND, []),
        (NOTICE, ["unit_put_on_notice"]),
        (NOTICE + timedelta(days=30), []),
    ]
    seen = 0
    for now, expected in timeline:
        report = sweep(now=now)
        events = [name for name, _, _ in rung_events(order_id)]
        assert events[seen:] == expected, now
        assert [f.rung for f in report.fired] == [e and {"deadline_warned": "warning", "deadline_missed": "overdue",
                                                         "case_opened": "case", "unit_put_on_notice": "notice"}[e]
                                                  for e in expected]
        seen = len(events)
    assert [(stage, rung) for stage, rung, _ in escalations(order_id)] == [
        ("sign_for", "warning"), ("sign_for", "overdue"), ("sign_for", "case"), ("sign_for", "notice")]
    assert [fired_at for _, _, fired_at in escalations(order_id)] == [WARNING, DEADLINE, CASE, NOTICE]
    kinds = [kind for kind, _ in notices(order_id)]
    assert kinds == ["dispatch", "deadline_warning", "overdue_notice", "supervision_case", "circulated_notice"]
    overdue_to = dict(notices(order_id))["overdue_notice"]
    assert len(overdue_to) == 2 and all("@" in r for r in overdue_to)  # the unit and its leader
    assert order(order_id).next_due_at is None
    assert order(order_id).version == version + 1  # the case rung alone moved it: the run offers the case


def test_an_outage_over_every_deadline_is_caught_up_once(directory):
    first, second = dispatched(DISPATCH), dispatched(DISPATCH + timedelta(minutes=5))
    with session_scope(readonly=True) as session:
        assert due_orders(session, now=NOTICE, limit=10) == [first, second]
        assert due_orders(session, now=NOTICE, limit=10, passed={first}) == [second]
        assert due_orders(session, now=DISPATCH, limit=10) == []
    report = sweep(now=NOTICE + timedelta(hours=3))
    assert report.processed == 2 and report.counts() == {"warning": 2, "overdue": 2, "case": 2, "notice": 2}
    assert sweep(now=NOTICE + timedelta(hours=4)).fired == []
    for order_id in (first, second):
        assert [name for name, _, _ in rung_events(order_id)] == [
            "deadline_warned", "deadline_missed", "case_opened", "unit_put_on_notice"]
        # Sign-for limbo escalates like an overdue order: a case for the hotline office, then the notice.
        cases = open_cases(order_id=order_id)
        assert [(c.kind, c.unit_code, c.evidence["stage"], c.on_notice) for c in cases] == [
            (CaseKind.SIGN_LIMBO, "housing", "sign_for", True)]
        case_notice = [recipients for kind, recipients in notices(order_id) if kind == "supervision_case"]
        assert case_notice == [["duban@zz12345.example.gov.cn"]]


def test_deadlines_move_only_when_a_supervisor_moves_them(directory):
    # A rejected return puts the order back on its unchanged sign-for deadline: nothing fires twice.
    returned = dispatched(DISPATCH)
    sweep(now=DEADLINE)
    actions.request_return(order_id=returned, actor=lead_actor(returned), reason="不属于本单位职责",
                           evidence_note="已到现场核实", at=DEADLINE + timedelta(minutes=10))
    transition(order_id=returned, action=Action.REJECT_RETURN, actor=SUPERVISOR, at=DEADLINE + timedelta(hours=1),
               payload={"reason": "属于本单位职责"})
    assert order(returned).stage_due_at == DEADLINE and order(returned).stage_rung == 0
    assert sweep(now=DEADLINE + timedelta(hours=2)).fired == []
    sweep(now=CASE)
    assert [name for name, _, _ in rung_events(returned)] == ["deadline_warned", "deadline_missed", "case_opened"]

    # An approved extension moves the deadline; a pending request stops nothing.
    held, extended = dispatched(DISPATCH), dispatched(DISPATCH)
    for order_id in (held, extended):
        transition(order_id=order_id, action=Action.SIGN, actor=lead_actor(order_id), at=DISPATCH + timedelta(hours=1))
    handling_due = order(held).stage_due_at
    assert handling_due == local(2021, 2, 23, 16, 0)  # 5 working days: 18, 19, 20 (make-up), 22, 23
    for order_id in (held, extended):
        actions.request_extension(order_id=order_id, actor=lead_actor(order_id), reason="需协调多个部门",
                                  new_due_at=local(2021, 3, 2, 16, 0), at=local(2021, 2, 19, 10, 0))
    with session_scope(readonly=True) as session:
        request_id = session.scalar(select(ExtensionRequest.id).where(ExtensionRequest.work_order_id == extended))
    actions.decide_extension(request_id=request_id, actor=SUPERVISOR, approve=True, at=local(2021, 2, 19, 11, 0))
    assert order(extended).stage_due_at == local(2021, 3, 2, 16, 0)
    sweep(now=handling_due)
    assert "deadline_missed" in [name for name, _, _ in rung_events(held)]
    assert "deadline_missed" not in [name for name, _, _ in rung_events(extended)]
    sweep(now=local(2021, 3, 2, 16, 0))
    assert [e for e in rung_events(extended) if e[0] == "deadline_missed"] == [
        ("deadline_missed", "handling", "housing")]


def _fired(report, order_id: int) -> list[tuple[str, str, str | None]]:
    return [(f.stage, f.rung, f.unit_code) for f in report.fired if f.order_id == order_id]


def test_assisting_units_and_the_office_are_held_to_their_own_deadlines(directory):
    assisted = dispatched(DISPATCH, category="city_appearance_life_services.noise")  # assisted by public_security
    office = dispatched(DISPATCH)
    for order_id in (assisted, office):
        transition(order_id=order_id, action=Action.SIGN, actor=lead_actor(order_id),
                   at=DISPATCH + timedelta(minutes=30))
    with session_scope(readonly=True) as session:
        assist = session.scalars(select(Assignment).where(Assignment.work_order_id == assisted,
                                                          Assignment.role == "assist")).one()
        assert assist.due_at == local(2021, 2, 23, 16, 0)
    transition(order_id=office, action=Action.REPLY, actor=lead_actor(office), at=local(2021, 2, 18, 10, 0),
               payload={"text": "已处理", "contacted": True, "solved": True})
    assert order(office).stage_due_at == local(2021, 2, 19, 10, 0)  # human review, 1 working day

    # Lead and assisting unit both hold 5 working days from dispatch; the assisting unit's warning is its own.
    report = sweep(now=local(2021, 2, 22, 16, 0))
    assert sorted(_fired(report, assisted)) == [
        ("assist_handling", "warning", "public_security"), ("handling", "warning", "ecology_environment")]
    transition(order_id=assisted, action=Action.REPLY, actor=lead_actor(assisted), at=local(2021, 2, 22, 17, 0),
               payload={"text": "已处理", "contacted": True, "solved": True})
    # The lead's reply ends what the assisting unit owed; only the office's review deadline is left:
    # 1 working day from 17:00 on the 22nd, warned at 80% of its 7 working hours (15:36 on the 23rd).
    assert order(assisted).next_due_at == local(2021, 2, 23, 15, 36)
    assert _fired(sweep(now=local(2021, 2, 23, 16, 0)), assisted) == [("review", "warning", None)]

    # The office's own late review: supervisors are warned, a case opens, the report leaders are told.
    assert [(stage, rung) for stage, rung, _ in escalations(office)] == [
        ("review", "warning"), ("review", "overdue"), ("review", "case"), ("review", "notice")]
    assert [c.kind for c in open_cases(order_id=office)] == [CaseKind.DECISION_OVERDUE]
    assert rung_events(office)[-1] == ("deadline_escalated", "review", None)
    assert "leaders@zz12345.example.gov.cn" in notices(office)[-1][1]


def test_a_rung_firing_leaves_a_decision_drawn_before_it_valid(directory):
    # The reply waits for the office's review: 1 working day from 10:00 on the 18th, warned at 08:36 on the 19th.
    order_id = dispatched(DISPATCH)
    transition(order_id=order_id, action=Action.SIGN, actor=lead_actor(order_id), at=DISPATCH + timedelta(minutes=30))
    transition(order_id=order_id, action=Action.REPLY, actor=lead_actor(order_id), at=local(2021, 2, 18, 10, 0),
               payload={"text": "已处理", "contacted": True, "solved": True})
    drawn = order(order_id).version  # the version the supervisor's review form carries
    assert _fired(sweep(now=local(2021, 2, 19, 9, 0)), order_id) == [("review", "warning", None)]
    assert (order(order_id).stage_rung, order(order_id).version) == (1, drawn)

    decided = apply_form(order_id=order_id, form="reply-review", key="review-1", by="wang.fang",
                         values={"decision": "approve", "reason": "", "order_version": drawn})
    assert decided == "reply approved by wang.fang"
    assert (order(order_id).status, order(order_id).version) == (Status.VISITING, drawn + 1)
    # What a decision decides moving on still refuses a form drawn before it.
    with pytest.raises(Conflict):
        apply_form(order_id=order_id, form="return-visit", key="visit-1", by="li.na", values={
            "contacted": True, "resolved": True, "satisfaction": "satisfied", "order_version": drawn})


def test_the_due_query_reads_the_next_due_index(db_url):
    with session_scope(readonly=True) as session:
        engine = get_engine()
        query = "SELECT id FROM work_orders WHERE next_due_at <= :now ORDER BY next_due_at LIMIT 10"
        if engine.dialect.name == "postgresql":
            session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(session.scalars(text("EXPLAIN " + query), {"now": NOTICE}))
        else:
            plan = "\n".join(str(row[-1]) for row in session.execute(text("EXPLAIN QUERY PLAN " + query),
                                                                     {"now": NOTICE.replace(tzinfo=None)}))
    assert "ix_work_orders_next_due_at" in plan


def test_two_sweepers_racing_fire_each_rung_once(directory):
    ids = [dispatched(DISPATCH + timedelta(minutes=i)) for i in range(6)]
    barrier = threading.Barrier(2)
    reports = []

    def race() -> None:
        barrier.wait()
        reports.append(sweep(now=NOTICE + timedelta(hours=1)))

    sweepers = [threading.Thread(target=race) for _ in range(2)]
    for t in sweepers:
        t.start()
    for t in sweepers:
        t.join(60)
    assert sum(len(r.fired) for r in reports) == 4 * len(ids) and not any(r.failed for r in reports)
    assert sum(r.processed for r in reports) == len(ids)  # each order claimed by exactly one sweeper
    for order_id in ids:
        assert [rung for _, rung, _ in escalations(order_id)] == ["warning", "overdue", "case", "notice"]
    with session_scope(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(SupervisionCase)) == len(ids)
        assert session.scalar(select(func.count()).select_from(Notification)
                              .where(Notification.kind == "circulated_notice")) == len(ids)
