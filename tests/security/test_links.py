"""Unit links beyond tests/portal/test_units.py: no link reaches an order its unit no longer, or never, holds."""

from datetime import timedelta

import httpx
import pytest

from duban.db import session_scope
from models.base import utcnow
from models.enums import Status
from models.lifecycle import Action
from models.records import ActionToken
from tasks.tokens import INBOX, ORDER, issue_token
from tests.factories import T0, lead_actor, step
from tests.portal.live import running_portal
from tests.portal.test_units import _dispatched, _state

NOTHING_WRITTEN = "refused with nothing written"


@pytest.fixture
def client(directory, monkeypatch, tmp_path):
    for base in running_portal(monkeypatch, tmp_path):
        with httpx.Client(base_url=base, timeout=30) as http:
            yield http


def _token(unit_id: int, order_id: int | None, scope: str = ORDER) -> str:
    with session_scope() as session:
        return issue_token(session=session, unit_id=unit_id, order_id=order_id if scope == ORDER else None,
                           scope=scope, at=utcnow())[0]


def _number(order_id: int) -> str:
    from models.work_order import WorkOrder

    with session_scope(readonly=True) as session:
        return session.get(WorkOrder, order_id).number


def _refused(answer: httpx.Response, code: int = 403) -> bool:
    return answer.status_code == code and 'id="refusal"' in answer.text


def test_an_order_link_opens_and_acts_on_its_own_order_only_even_among_its_units_orders(client):
    mine, also_mine = _dispatched(), _dispatched()
    unit = lead_actor(mine).unit_id
    assert lead_actor(also_mine).unit_id == unit
    token = _token(unit, mine)
    other = _number(also_mine)
    before = _state(also_mine)
    assert _refused(client.get(f"/u/{token}/orders/{other}"))
    assert _refused(client.get(f"/u/{token}/orders/{other}/sign"))
    assert _refused(client.post(f"/u/{token}/orders/{other}/sign"))
    assert _state(also_mine) == before, NOTHING_WRITTEN
    assert client.post(f"/u/{token}/orders/{_number(mine)}/sign").status_code == 303


def test_an_inbox_link_cannot_act_on_another_units_order(client):
    mine, theirs = _dispatched(), _dispatched("city_appearance_life_services.manhole_covers")
    assert lead_actor(mine).unit_id != lead_actor(theirs).unit_id
    inbox = _token(lead_actor(mine).unit_id, None, INBOX)
    before = _state(theirs)
    for action, data in (("sign", {}), ("return", {"reason": "不归我们管", "evidence_note": "看过了"}),
                         ("extension", {"reason": "x", "new_due_at": "2031-01-01T09:00"})):
        assert _refused(client.post(f"/u/{inbox}/orders/{_number(theirs)}/{action}", data=data))
    assert _state(theirs) == before, NOTHING_WRITTEN
    assert client.post(f"/u/{inbox}/orders/{_number(mine)}/sign").status_code == 303, "its own orders it may act on"


def test_once_an_order_is_handed_to_another_unit_the_first_units_links_no_longer_reach_it(client):
    order_id = _dispatched()
    first = lead_actor(order_id).unit_id
    order_link, inbox = _token(first, order_id), _token(first, None, INBOX)
    number = _number(order_id)
    assert client.get(f"/u/{order_link}/orders/{number}").status_code == 200
    step(order_id, Action.REQUEST_RETURN, T0 + timedelta(hours=1))
    step(order_id, Action.APPROVE_RETURN, T0 + timedelta(hours=2))
    second = lead_actor(order_id).unit_id
    assert second != first and _state(order_id)[0] == Status.DISPATCHED
    before = _state(order_id)
    for link in (order_link, inbox):
        assert _refused(client.get(f"/u/{link}/orders/{number}"))
        assert _refused(client.post(f"/u/{link}/orders/{number}/sign"))
    assert number not in client.get(f"/u/{inbox}").text
    assert _state(order_id) == before, NOTHING_WRITTEN
    assert client.post(f"/u/{_token(second, order_id)}/orders/{number}/sign").status_code == 303


def test_an_expired_link_cannot_submit_and_no_page_with_a_link_may_be_cached_or_leak_it(client):
    order_id = _dispatched()
    token, number = _token(lead_actor(order_id).unit_id, order_id), _number(order_id)
    page = client.get(f"/u/{token}/orders/{number}")
    # The link is in the address: no shared cache keeps the page, no Referer carries it to another site.
    assert page.headers["cache-control"] == "no-store" and '<meta name="referrer" content="no-referrer">' in page.text
    with session_scope() as session:
        session.execute(ActionToken.__table__.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    before = _state(order_id)
    expired = client.post(f"/u/{token}/orders/{number}/sign")
    assert _refused(expired, 410) and "已过期" in expired.text
    assert _state(order_id) == before, NOTHING_WRITTEN
