"""Unit action links: signed, expiring, single-use, scoped to one unit and one order or the unit's inbox."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from duban.db import session_scope
from models.base import utcnow
from models.enums import Status
from models.records import ActionToken, Notification
from models.work_order import Assignment, WorkOrder
from tasks.tokens import (
    INBOX,
    ORDER,
    LinkRefused,
    Grant,
    check_token,
    issue_token,
    request_fresh_link,
    token_hash,
    use_token,
)
from tasks.unit_views import authorized_order
from tests.factories import lead_actor, order_in


def _issue(order_id: int | None, scope: str = ORDER, unit_id: int | None = None, **kw) -> str:
    unit_id = unit_id or lead_actor(order_id).unit_id
    with session_scope() as session:
        token, _ = issue_token(session=session, unit_id=unit_id, order_id=order_id, scope=scope,
                               at=kw.pop("at", utcnow()), **kw)
    return token


def _use(token: str, at=None) -> tuple[Grant, str]:
    """Use a link up for one submission that commits: its grant and the fresh link that follows it."""
    at = at or utcnow()
    with session_scope() as session:
        grant = check_token(session=session, token=token, at=at)
        return grant, use_token(session=session, grant=grant, at=at)


def _refusal(token: str, at=None) -> str:
    with session_scope(readonly=True) as session, pytest.raises(LinkRefused) as refused:
        check_token(session=session, token=token, at=at or utcnow())
    return refused.value.reason


def test_only_a_hash_is_stored_and_forged_altered_or_unknown_links_are_refused_as_invalid(directory):
    order_id = order_in(Status.DISPATCHED)
    token = _issue(order_id)
    with session_scope(readonly=True) as session:
        stored = session.scalars(select(ActionToken.token_hash)).one()
        grant = check_token(session=session, token=token, at=utcnow())
    assert stored == token_hash(token) and token not in stored
    assert (grant.unit_id, grant.order_id, grant.scope) == (lead_actor(order_id).unit_id, order_id, ORDER)
    nonce, signature = token.split(".")
    assert _refusal(f"{nonce}.{'A' * len(signature)}") == "invalid"
    assert _refusal(f"{nonce[:-1]}{'B' if nonce[-1] != 'B' else 'C'}.{signature}") == "invalid"
    assert _refusal("not-a-token") == "invalid"
    with session_scope() as session:
        session.execute(ActionToken.__table__.delete())
    assert _refusal(token) == "invalid", "a genuinely signed token without its row"


def test_a_link_expires_works_for_one_submission_and_is_followed_by_a_fresh_one(directory):
    order_id = order_in(Status.DISPATCHED)
    issued = utcnow()
    token = _issue(order_id, at=issued)
    assert _refusal(token, at=issued + timedelta(hours=72)) == "expired"
    grant, successor = _use(token, at=issued + timedelta(hours=71))
    with pytest.raises(LinkRefused) as again:
        _use(token)
    assert again.value.reason == "used" and again.value.renewable
    with session_scope(readonly=True) as session:
        follow = check_token(session=session, token=successor, at=utcnow())
    assert (follow.unit_id, follow.order_id, follow.scope) == (grant.unit_id, grant.order_id, ORDER)
    seeded = _issue(order_id, seed="notice:1:order")
    assert _issue(order_id, seed="notice:1:order") == seeded and _issue(order_id, seed="notice:2:order") != seeded
    with session_scope(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(ActionToken)) == 4, "link, successor, two seeded"


def test_a_submission_refused_after_using_its_link_gives_the_link_back_and_withdraws_the_fresh_one(directory):
    order_id = order_in(Status.DISPATCHED)
    token = _issue(order_id)
    with pytest.raises(RuntimeError), session_scope() as session:
        grant = check_token(session=session, token=token, at=utcnow())
        refused_successor = use_token(session=session, grant=grant, at=utcnow())
        raise RuntimeError("the action was refused")
    assert _refusal(refused_successor) == "invalid"
    again, successor = _use(token)
    assert again.token_id == grant.token_id and successor not in (token, refused_successor)
    assert _refusal(token) == "used"


def test_of_two_simultaneous_submissions_with_one_link_only_one_gets_it(directory):
    order_id = order_in(Status.DISPATCHED)
    token = _issue(order_id)
    with session_scope(readonly=True) as session:
        grant = check_token(session=session, token=token, at=utcnow())
    _use(token)
    # The second had checked the link before the first used it up: using it is what refuses it.
    with pytest.raises(LinkRefused) as late, session_scope() as session:
        use_token(session=session, grant=grant, at=utcnow())
    assert late.value.reason == "used"
    with session_scope(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(ActionToken)) == 2, "the link and one successor"


def test_an_order_link_opens_only_its_order_and_an_inbox_link_only_the_units_own(directory):
    mine, theirs = order_in(Status.DISPATCHED), order_in(Status.DISPATCHED)
    with session_scope() as session:
        # Hand the second order to another unit, so the two units differ.
        other = session.scalars(select(Assignment).where(Assignment.work_order_id == theirs,
                                                         Assignment.role == "lead")).one()
        other.unit_id = lead_actor(mine).unit_id + 1
        numbers = {o.id: o.number for o in session.scalars(select(WorkOrder))}
    order_token, inbox_token = _issue(mine), _issue(None, scope=INBOX, unit_id=lead_actor(mine).unit_id)
    with session_scope(readonly=True) as session:
        order_grant = check_token(session=session, token=order_token, at=utcnow())
        inbox_grant = check_token(session=session, token=inbox_token, at=utcnow())
        assert authorized_order(session, grant=order_grant, number=numbers[mine])[0].id == mine
        assert authorized_order(session, grant=inbox_grant, number=numbers[mine])[0].id == mine
        for grant in (order_grant, inbox_grant):
            for number in (numbers[theirs], "ZZ20990101-999999"):
                with pytest.raises(LinkRefused) as refused:
                    authorized_order(session, grant=grant, number=number)
                assert refused.value.reason == "not_yours"


def test_asking_for_a_fresh_link_queues_one_mail_to_the_units_registered_address(directory):
    order_id = order_in(Status.DISPATCHED)
    token = _issue(order_id)
    _use(token)
    for _ in range(3):
        request_fresh_link(token=token)
    with session_scope(readonly=True) as session:
        [(recipients, notice_order)] = session.execute(select(Notification.recipients, Notification.work_order_id)
                                                       .where(Notification.kind == "action_link")).all()
        lead = session.scalars(select(Notification.recipients).where(Notification.kind == "dispatch")).one()
    assert recipients == lead and notice_order == order_id
    with pytest.raises(LinkRefused):
        request_fresh_link(token="forged.token")
