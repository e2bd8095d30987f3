"""Orders through their whole lifecycle on a real Prefect server, with real served deployments."""

from collections import Counter

from sqlalchemy import select

from duban.db import session_scope
from models.enums import Status
from models.lifecycle import Action
from models.work_order import WorkOrder
from tasks.runs import start_order_runs
from tasks.transitions import Actor, transition
from tests.factories import new_order
from tests.flows import driver as d

HAPPY = [("unit-sign", d.sign), ("unit-reply", d.reply), ("reply-review", d.approve), ("return-visit", d.satisfied)]
SCENARIOS = {
    "happy": HAPPY,
    "return approved": [("unit-sign", d.ask_return), ("return-decision", d.approve_return), *HAPPY],
    "return rejected": [("unit-sign", d.ask_return), ("return-decision", d.reject), *HAPPY],
    "extension granted": [("unit-sign", d.sign), ("unit-reply", d.ask_extension), ("extension-decision", d.approve),
                          *HAPPY[1:]],
    "reply sent back": [*HAPPY[:2], ("reply-review", d.send_back), *HAPPY[1:]],
    "visit not satisfied": [*HAPPY[:3], ("return-visit", d.unsatisfied), *HAPPY[1:]],
}
EXPECTED = {
    "happy": [],
    "return approved": ["return_requested", "return_approved"],
    "return rejected": ["return_requested", "return_rejected"],
    "extension granted": ["extension_requested", "extension_approved"],
    "reply sent back": ["reply_submitted", "reply_sent_back"],
    "visit not satisfied": ["reply_submitted", "reply_approved", "work_order_reopened"],
}
HAPPY_EVENTS = ["work_order_received", "work_order_dispatched", "work_order_signed", "reply_submitted",
                "reply_approved", "work_order_closed"]


def dispatched_orders(n: int) -> list[int]:
    ids = []
    for _ in range(n):
        order_id = new_order(category="city_appearance_life_services.noise", item_type="complaint")
        transition(order_id=order_id, action=Action.DISPATCH, actor=Actor.system())
        ids.append(order_id)
    start_order_runs(order_ids=ids)
    return ids


def test_every_scenario_ends_closed_with_its_events(worker):
    ids = dispatched_orders(len(SCENARIOS))
    scripts = {name: d.Script(order_id, list(steps)) for (name, steps), order_id in zip(SCENARIOS.items(), ids)}
    finals = d.play(list(scripts.values()))
    assert set(finals.values()) == {"COMPLETED"}
    with session_scope(readonly=True) as session:
        statuses = {o.id: o.status for o in session.scalars(select(WorkOrder).where(WorkOrder.id.in_(ids)))}
    assert set(statuses.values()) == {Status.CLOSED}
    for name, script in scripts.items():
        events = d.events(script.order_id)
        assert events[:2] == HAPPY_EVENTS[:2] and events[-1] == "work_order_closed", (name, events)
        counts = Counter(events)
        for event in EXPECTED[name]:
            assert counts[event] >= 1, (name, events)
        if name == "happy":
            assert events == HAPPY_EVENTS
        if name == "return approved":
            assert counts["work_order_signed"] == 1 and events.index("return_approved") < events.index("work_order_signed")
        if name in {"reply sent back", "visit not satisfied"}:
            assert counts["reply_submitted"] == 2
