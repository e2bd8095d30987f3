"""A portal process killed in the middle of a unit's POST: nothing half-written, and the same link works again."""

import threading
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from duban.db import session_scope
from models.base import utcnow
from models.enums import Status
from models.records import ActionToken, Event
from models.work_order import WorkOrder
from tasks.tokens import ORDER, issue_token, token_hash
from tests.factories import lead_actor
from tests.faults import invariants as inv
from tests.faults.processes import Portal, freeze_inside_write, kill9, terminate, wait_until, writer_inside
from tests.tasks.supervision_kit import dispatched, local


@pytest.fixture
def portal(directory, tmp_path, monkeypatch) -> Iterator[Portal]:
    served = Portal(tmp_path, monkeypatch)
    served.start()
    yield served
    if served.process.poll() is None:
        terminate(served.process)


def _link(order_id: int) -> tuple[str, str]:
    with session_scope() as session:
        token, _ = issue_token(session=session, unit_id=lead_actor(order_id).unit_id, order_id=order_id, scope=ORDER,
                               at=utcnow())
        return token, session.get(WorkOrder, order_id).number


def _status(order_id: int) -> str:
    with session_scope(readonly=True) as session:
        return session.get(WorkOrder, order_id).status


def _signed(order_id: int) -> int:
    with session_scope(readonly=True) as session:
        return len(session.scalars(select(Event.id).where(Event.work_order_id == order_id,
                                                          Event.name == "work_order_signed")).all())


def test_portal_killed_mid_post_writes_nothing_and_the_unit_can_send_again_with_the_same_link(
        db_url, portal, fault):
    ids = [dispatched(local(2021, 3, 15, 9, 0)) for _ in range(8)]
    links = {order_id: _link(order_id) for order_id in ids}
    before, numbers = inv.counts(), inv.numbers()
    fault.before(before)
    caught = None
    for order_id in ids:
        token, number = links[order_id]
        answers: list[object] = []

        def post(token=token, number=number, answers=answers) -> None:
            try:
                answers.append(httpx.post(f"{portal.base}/u/{token}/orders/{number}/sign", timeout=30).status_code)
            except httpx.HTTPError as exc:
                answers.append(exc)

        thread = threading.Thread(target=post)
        thread.start()
        slices = freeze_inside_write(portal.process.pid, db_url,
                                     also=lambda o=order_id: _status(o) == Status.DISPATCHED,
                                     missed=lambda t=thread: not t.is_alive(), slice_s=0.001)
        if slices is None:
            assert answers == [303]  # signed before a slice fell inside its transaction: the next order
            continue
        kill9(portal.process)
        thread.join(30)
        assert isinstance(answers[0], httpx.HTTPError), "the unit's browser saw the connection drop"
        caught = order_id
        break
    assert caught is not None, "no POST was caught inside its transaction"
    token, number = links[caught]
    wait_until(lambda: not writer_inside(db_url), "the killed portal's transaction to end")
    fault.injected(f"kill -9 of `duban portal` inside the transaction of a unit's POST (sign for {number})")
    assert _status(caught) == Status.DISPATCHED and _signed(caught) == 0, "nothing of the POST was written"
    with session_scope(readonly=True) as session:
        used = session.scalar(select(ActionToken.used_at).where(ActionToken.token_hash == token_hash(token)))
    assert used is None, "the link was not used up by a submission that never happened"

    portal.start()
    again = httpx.post(f"{portal.base}/u/{token}/orders/{number}/sign", timeout=30)
    assert again.status_code == 303, again.text
    assert _status(caught) == Status.HANDLING and _signed(caught) == 1
    assert httpx.post(f"{portal.base}/u/{token}/orders/{number}/sign", timeout=30).status_code == 410
    after = inv.counts()
    fault.after(after)
    signed = sum(_signed(o) for o in ids)
    assert after.transitions == before.transitions + signed and after.orders == before.orders
    fault.checked(inv.no_order_lost(numbers), inv.no_transition_twice(),
                  f"the link still worked once after the restart, then was used up ({signed} orders signed, each once)")
