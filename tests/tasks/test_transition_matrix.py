"""The transition matrix: every action from every status, allowed or refused, on both databases."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from duban.db import session_scope
from duban.errors import InvalidTransition
from models.enums import Status
from models.lifecycle import TRANSITIONS, Action
from models.records import Event
from tasks.transitions import transition
from tests.factories import T0, actor_and_payload, order_in
from tests.tasks.test_transitions import _counts

PAIRS = [(status, action) for status in Status for action in Action]


@pytest.mark.parametrize(("status", "action"), PAIRS, ids=[f"{s}-{a}" for s, a in PAIRS])
def test_transition_matrix(shared_directory, status, action):
    order_id = order_in(status)
    actor, payload = actor_and_payload(order_id, action)
    before = _counts(order_id)
    at = T0 + timedelta(hours=2)
    if status in TRANSITIONS[action].sources:
        change = transition(order_id=order_id, action=action, actor=actor, at=at, payload=payload)
        events, _, new_status, version = _counts(order_id)
        assert events == before[0] + 1
        assert new_status == TRANSITIONS[action].target == change.target
        assert version == before[3] + 1
        with session_scope(readonly=True) as session:
            last = session.scalars(select(Event).where(Event.work_order_id == order_id)
                                   .order_by(Event.id.desc())).first()
            assert (last.name, last.from_status, last.to_status, last.at) == (
                TRANSITIONS[action].event, status, new_status, at)
    else:
        with pytest.raises(InvalidTransition) as caught:
            transition(order_id=order_id, action=action, actor=actor, at=at, payload=payload)
        assert str(status) in str(caught.value) and str(action) in str(caught.value)
        assert _counts(order_id) == before
