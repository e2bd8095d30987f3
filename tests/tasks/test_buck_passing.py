"""Buck-passing and perfunctory handling: each pattern opens exactly one case, flags count against the unit."""

from datetime import timedelta

from sqlalchemy import select

from duban.db import session_scope
from models.enums import CaseKind, Decision
from models.lifecycle import Action
from models.records import Event
from models.requests import ReturnRequest
from models.supervision import SupervisionCase
from models.supervision_records import SupervisionFlag
from tasks import actions
from tasks.buck_passing import link_repeat_complaints
from tasks.transitions import transition
from tests.factories import STAFF, SUPERVISOR, T0, lead_actor
from tests.tasks.supervision_kit import dispatched, order, use_policy

CABLES = "city_appearance_life_services.cables"  # an on-site category: returns need evidence from the scene


def ask_return(order_id: int, at, *, evidence: bool = True):
    return actions.request_return(order_id=order_id, actor=lead_actor(order_id), reason="不属于本单位职责",
                                  evidence_note="已到现场核实" if evidence else "", at=at)


def pass_on(order_id: int, to: str, at) -> None:
    """The lead asks to return the order and the hotline office hands it to `to`."""
    ask_return(order_id, at)
    transition(order_id=order_id, action=Action.APPROVE_RETURN, actor=SUPERVISOR, at=at + timedelta(minutes=5),
               payload={"unit_code": to, "reason": "改派"})


def bounce(order_id: int, at) -> None:
    """The lead asks to return the order and the hotline office refuses."""
    ask_return(order_id, at)
    transition(order_id=order_id, action=Action.REJECT_RETURN, actor=SUPERVISOR, at=at + timedelta(minutes=5),
               payload={"reason": "属于本单位职责"})


def cases(order_id: int) -> list[tuple[str, list[str]]]:
    with session_scope(readonly=True) as session:
        return [(c.kind, c.evidence.get("reasons", [])) for c in session.scalars(
            select(SupervisionCase).where(SupervisionCase.work_order_id == order_id).order_by(SupervisionCase.id))]


def case_events(order_id: int) -> int:
    with session_scope(readonly=True) as session:
        return len(session.scalars(select(Event).where(Event.work_order_id == order_id,
                                                       Event.name == "case_opened")).all())


def test_each_buck_passing_pattern_opens_exactly_one_case(directory, tmp_path, monkeypatch):
    use_policy(tmp_path, monkeypatch, max_returns="3", max_units="3", ping_pong="true")
    t = T0
    ping_pong, many_units, many_returns = (dispatched(t) for _ in range(3))
    on_site = dispatched(t, category=CABLES)

    pass_on(ping_pong, "urban_management", t)                   # housing -> urban_management
    assert cases(ping_pong) == []
    pass_on(ping_pong, "housing", t + timedelta(hours=1))       # -> back to housing, which returned it
    pass_on(many_units, "urban_management", t)
    pass_on(many_units, "tianyuan_gov", t + timedelta(hours=1))  # a third unit
    pass_on(many_returns, "urban_management", t)
    bounce(many_returns, t + timedelta(hours=1))
    assert cases(many_returns) == []
    bounce(many_returns, t + timedelta(hours=2))                 # the third return request
    for _ in range(3):
        outcome = ask_return(on_site, t, evidence=False)
        assert outcome.auto_rejected
        t += timedelta(hours=1)

    assert cases(ping_pong) == [(CaseKind.BUCK_PASSING, ["往返推诿：工单被退回到曾退单的单位"])]
    assert cases(many_units) == [(CaseKind.BUCK_PASSING, ["经手3个单位（阈值3）"])]
    assert cases(many_returns) == [(CaseKind.BUCK_PASSING, ["退单3次（阈值3）"])]
    assert cases(on_site) == [(CaseKind.BUCK_PASSING, ["退单3次（阈值3）"])]
    with session_scope(readonly=True) as session:
        decisions = session.scalars(select(ReturnRequest.decision).where(ReturnRequest.work_order_id == on_site)).all()
        assert decisions == [Decision.AUTO_REJECTED] * 3
        evidence = session.scalar(select(SupervisionCase.evidence).where(SupervisionCase.work_order_id == ping_pong))
        assert evidence["units"] == ["housing", "urban_management"]
        assert evidence["returned_by"] == ["housing", "urban_management"]

    # More of the same never opens a second case on the order.
    pass_on(ping_pong, "urban_management", t + timedelta(hours=5))
    bounce(many_returns, t + timedelta(hours=5))
    ask_return(on_site, t + timedelta(hours=5), evidence=False)
    for order_id in (ping_pong, many_units, many_returns, on_site):
        assert len(cases(order_id)) == 1 and case_events(order_id) == 1


def _to_visit(order_id: int, at, *, solved: bool = True, contacted: bool = True) -> None:
    """Sign (first time), reply and approve: the order waits for its return visit."""
    if order(order_id).status == "dispatched":
        transition(order_id=order_id, action=Action.SIGN, actor=lead_actor(order_id), at=at)
    transition(order_id=order_id, action=Action.REPLY, actor=lead_actor(order_id), at=at + timedelta(hours=1),
               payload={"text": "已联系市民并处理完毕", "contacted": contacted, "solved": solved})
    transition(order_id=order_id, action=Action.APPROVE_REPLY, actor=SUPERVISOR, at=at + timedelta(hours=2))


def test_redos_open_one_case_and_a_false_completion_is_flagged(directory, tmp_path, monkeypatch):
    use_policy(tmp_path, monkeypatch, max_redos="2")
    order_id = dispatched(T0)
    for day in range(3):
        _to_visit(order_id, T0 + timedelta(days=day))
        # The unit said it contacted the citizen and solved it; the citizen says nobody came.
        actions.record_visit(order_id=order_id, actor=STAFF, contacted=False, resolved=False,
                             satisfaction="unsatisfied", comment="没有人来过", at=T0 + timedelta(days=day, hours=3))
        assert [kind for kind, _ in cases(order_id)] == ([] if day == 0 else [CaseKind.REDO])
    assert order(order_id).false_completion and order(order_id).redo_count == 3
    with session_scope(readonly=True) as session:
        flags = session.scalars(select(SupervisionFlag).where(SupervisionFlag.work_order_id == order_id)).all()
        assert [(f.kind, f.evidence["visit_contacted"], f.evidence["reply_solved"]) for f in flags] == [
            ("false_completion", False, True)] * 3
        reopened = session.scalars(select(Event).where(Event.work_order_id == order_id,
                                                       Event.name == "work_order_reopened")).all()
        assert [e.payload["suspected_false_completion"] for e in reopened] == ["housing"] * 3
    assert case_events(order_id) == 1

    # A unit that said it was solved and the citizen agrees: no flag.
    honest = dispatched(T0)
    _to_visit(honest, T0)
    actions.record_visit(order_id=honest, actor=STAFF, contacted=True, resolved=True, satisfaction="satisfied",
                         at=T0 + timedelta(hours=3))
    assert order(honest).status == "closed" and not order(honest).false_completion
    with session_scope(readonly=True) as session:
        assert session.scalars(select(SupervisionFlag).where(SupervisionFlag.work_order_id == honest)).all() == []


def test_repeat_complaints_are_linked_to_the_unit_that_closed_as_solved(directory):
    address = "天元区泰山路 88 号"
    first = dispatched(T0, address=address)
    _to_visit(first, T0)
    actions.record_visit(order_id=first, actor=STAFF, contacted=True, resolved=True, satisfaction="satisfied",
                         at=T0 + timedelta(hours=3))
    again = dispatched(T0 + timedelta(days=10), address="天元区泰山路88号")
    elsewhere = dispatched(T0 + timedelta(days=10), address="芦淞区建设路 1 号")
    too_late = dispatched(T0 + timedelta(days=200), address=address)
    linked = link_repeat_complaints(since=T0, until=T0 + timedelta(days=365), window_days=90)
    assert linked == 1
    assert link_repeat_complaints(since=T0, until=T0 + timedelta(days=365), window_days=90) == 0
    with session_scope(readonly=True) as session:
        flags = session.scalars(select(SupervisionFlag).where(SupervisionFlag.kind == "repeat_complaint")).all()
        assert [(f.work_order_id, f.related_order_id) for f in flags] == [(again, first)]
        assert {f.work_order_id for f in flags}.isdisjoint({elsewhere, too_late})
        assert flags[0].at == T0 + timedelta(days=10)
        event = session.scalars(select(Event).where(Event.work_order_id == again,
                                                    Event.name == "repeat_complaint_linked")).one()
        assert event.payload["unit"] == "housing" and event.payload["earlier_order"] == order(first).number
