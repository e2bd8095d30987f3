"""Scorecards against a small history computed by hand, and the circulated notice drawn from them."""

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from duban.db import session_scope
from duban.errors import ValidationFailed
from models.directory import Unit
from models.lifecycle import Action
from models.records import Notification
from models.supervision import Article
from tasks import actions
from tasks.circulated import circulate_notice
from tasks.scorecard import build_scorecards, compute_scorecards, parse_period
from tasks.transitions import transition
from tests.factories import STAFF, SUPERVISOR, lead_actor
from tests.tasks.supervision_kit import CST, dispatched, local

AS_OF = local(2021, 4, 1, 8, 0)


def _sign_reply_visit(order_id: int, *, signed, replied, visited, satisfaction: str, resolved: bool,
                      solved: bool = True) -> None:
    transition(order_id=order_id, action=Action.SIGN, actor=lead_actor(order_id), at=signed)
    transition(order_id=order_id, action=Action.REPLY, actor=lead_actor(order_id), at=replied,
               payload={"text": "已到现场处理", "contacted": True, "solved": solved})
    transition(order_id=order_id, action=Action.APPROVE_REPLY, actor=SUPERVISOR, at=replied + timedelta(hours=1))
    actions.record_visit(order_id=order_id, actor=STAFF, contacted=True, resolved=resolved,
                         satisfaction=satisfaction, at=visited)


def _history() -> None:
    """March 2021 (Monday the 1st). Sign-for 2 working hours, handling 5 working days, 08:30-12:00, 14:00-17:30."""
    # A, housing: signed in 0.5 h, replied on time, citizen satisfied.
    a = dispatched(local(2021, 3, 1, 9, 0))
    _sign_reply_visit(a, signed=local(2021, 3, 1, 9, 30), replied=local(2021, 3, 3, 10, 0),
                      visited=local(2021, 3, 4, 10, 0), satisfaction="satisfied", resolved=True)
    # B, housing: signed 3.5 working hours late (due 11:00), replied after its 9 March deadline saying
    # "solved"; the citizen says unsolved: a redo and a suspected false completion.
    b = dispatched(local(2021, 3, 2, 9, 0))
    _sign_reply_visit(b, signed=local(2021, 3, 2, 14, 30), replied=local(2021, 3, 10, 10, 0),
                      visited=local(2021, 3, 11, 10, 0), satisfaction="unsatisfied", resolved=False)
    # C: housing returns it within its sign-for time (excluded from its timeliness, counted as a return);
    # urban_management signs in 0.5 h, replies on time, the citizen is satisfied.
    c = dispatched(local(2021, 3, 3, 9, 0))
    actions.request_return(order_id=c, actor=lead_actor(c), reason="属城管职责", evidence_note="已到现场",
                           at=local(2021, 3, 3, 9, 30))
    transition(order_id=c, action=Action.APPROVE_RETURN, actor=SUPERVISOR, at=local(2021, 3, 3, 10, 0),
               payload={"unit_code": "urban_management"})
    _sign_reply_visit(c, signed=local(2021, 3, 3, 10, 30), replied=local(2021, 3, 5, 10, 0),
                      visited=local(2021, 3, 6, 10, 0), satisfaction="satisfied", resolved=True)
    # D, cables (on-site), urban_management: returns it without evidence (refused automatically), never signs.
    d = dispatched(local(2021, 3, 4, 9, 0), category="city_appearance_life_services.cables")
    assert actions.request_return(order_id=d, actor=lead_actor(d), reason="不归我管",
                                  at=local(2021, 3, 4, 9, 10)).auto_rejected
    # E, housing: dispatched on the last afternoon; its deadlines fall after AS_OF, so it counts only as dispatched.
    dispatched(local(2021, 3, 31, 16, 0))
    with session_scope() as session:
        housing = session.scalar(select(Unit.id).where(Unit.code == "housing"))
        session.add_all([
            Article(code="kb-1", title="物业费", body="…", owner_unit_id=housing, review_by=date(2021, 2, 1)),
            Article(code="kb-2", title="维修基金", body="…", owner_unit_id=housing, review_by=date(2021, 6, 1)),
        ])


def test_scorecards_match_the_hand_computed_history_and_draw_the_notice(directory):
    _history()
    period = parse_period("2021-03", CST)
    with session_scope(readonly=True) as session:
        scores = {s.unit_code: s for s in compute_scorecards(session, period=period, as_of=AS_OF)}
    housing, urban = scores["housing"].row(), scores["urban_management"].row()
    assert {k: housing[k] for k in housing if k not in ("unit_name",)} == {
        "unit_code": "housing", "dispatched": 4, "assisted": 0,
        "sign_counted": 2, "signed_on_time": 1, "response_rate": 0.5, "late_sign_rate": 0.5, "avg_sign_hours": 2.0,
        "handling_counted": 2, "completed_on_time": 1, "on_time_rate": 0.5, "overdue_rate": 0.5,
        "assist_deadlines_missed": 0,
        "visits": 2, "resolved": 1, "satisfied": 1, "resolution_rate": 0.5, "satisfaction_rate": 0.5,
        "redos": 1, "redo_rate": 0.5,
        "returned": 1, "return_rate": 0.25, "returns_decided": 1, "returns_rejected": 0, "returns_auto_rejected": 0,
        "rejected_return_rate": 0.0, "false_completions": 1, "false_completion_rate": 0.5, "repeat_complaints": 0,
        "cases_opened": 0, "kb_articles": 2, "kb_stale": 1, "kb_stale_rate": 0.5,
        # 0.15*0.25 + 0.2*0 + 0.2*0.5 + 0.15*0.5 + 0.2*0.5 + 0.05*0.5 + 0.05*0.5
        "buck_passing_index": 0.3625,
    }
    assert (urban["dispatched"], urban["sign_counted"], urban["signed_on_time"], urban["avg_sign_hours"]) == (
        2, 2, 1, 0.5)
    assert (urban["handling_counted"], urban["completed_on_time"], urban["visits"], urban["satisfaction_rate"]) == (
        2, 1, 1, 1.0)
    assert (urban["returned"], urban["returns_decided"], urban["returns_auto_rejected"],
            urban["rejected_return_rate"]) == (1, 1, 1, 1.0)
    assert urban["kb_stale_rate"] is None
    # 0.15*0.5 + 0.2*1 + 0.2*0.5 + 0 + 0 + 0.05*0.5 + 0
    assert urban["buck_passing_index"] == 0.4
    # The cables order's four assisting units are counted, with nothing against them.
    assert {code: s.assisted for code, s in scores.items() if s.assisted} == {
        "china_telecom": 1, "china_mobile": 1, "china_unicom": 1, "power_supply": 1}
    assert list(scores)[:2] == ["urban_management", "housing"]

    # Later, when E's sign-for deadline has passed unsigned, it counts against housing's response rate.
    with session_scope(readonly=True) as session:
        later = {s.unit_code: s for s in compute_scorecards(session, period=period, as_of=local(2021, 4, 1, 10, 0))}
    assert (later["housing"].sign_counted, later["housing"].signed_on_time) == (3, 1)

    # The circulated notice names the units at or above the threshold (0.25), once per period.
    result = build_scorecards(period="2021-03", as_of=AS_OF, trend_months=3)
    assert [p.label for p in result.trend_periods] == ["2021-01", "2021-02", "2021-03"]
    assert result.trend["housing"] == [None, None, pytest.approx(0.3625)]
    entries = circulate_notice(period=result.period, scores=result.scores, at=AS_OF)
    assert [(e.unit_code, e.buck_passing_index) for e in entries] == [("urban_management", 0.4), ("housing", 0.3625)]
    assert all("推诿指数" in e.reasons[0] for e in entries)
    housing = {(item["order"][:10], item["event"]) for item in entries[1].evidence}
    assert ("ZZ20210302", "false_completion") in housing
    assert [item["event"] for item in entries[0].evidence] == ["return_rejected"]
    again = circulate_notice(period=result.period, scores=result.scores, at=AS_OF + timedelta(days=1))
    assert [(e.unit_code, e.reasons) for e in again] == [(e.unit_code, e.reasons) for e in entries]
    with session_scope(readonly=True) as session:
        sent = session.scalars(select(Notification).where(Notification.kind == "circulated_notice")).all()
        assert len(sent) == 1 and sent[0].context["period"] == "2021-03"
        leaders = set(session.scalars(select(Unit.leader_email).where(Unit.code.in_(["housing", "urban_management"]))))
        assert {"duban@zz12345.example.gov.cn", "leaders@zz12345.example.gov.cn"} | leaders == set(sent[0].recipients)


def test_periods_are_local_months_or_date_ranges():
    march = parse_period("2021-03", CST)
    assert (march.start, march.end) == (local(2021, 3, 1), local(2021, 4, 1))
    days = parse_period("2021-03-01..2021-03-15", CST)
    assert (days.start, days.end) == (local(2021, 3, 1), local(2021, 3, 16))
    for bad, why in (("2021-13", "month 13"), ("2021-03-15..2021-03-01", "ends before"), ("march", "neither")):
        with pytest.raises(ValidationFailed, match=why):
            parse_period(bad, CST)
