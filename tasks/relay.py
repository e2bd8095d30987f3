"""The outbox relay: claim due notices, render them with fresh links, send, and mark sent, retry or incident."""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from duban.db import session_scope
from duban.errors import NotificationError
from duban.settings import Settings, get_settings
from models.base import utcnow
from models.directory import Unit
from models.enums import SendState
from models.records import Notification
from models.work_order import WorkOrder
from notifications.render import kind_of, render_notice
from notifications.sender import Delivery, MailSender, OutgoingMail
from tasks.deadlines import order_policy
from tasks.policy_store import current_policy
from tasks.tokens import INBOX, ORDER, TokenRequest, issue_tokens, link_url
from tasks.transitions import Actor, record_event

log = logging.getLogger(__name__)
# Sent notices are recorded together, this many at a time: a commit per notice cost as much as rendering it.
MARK_EVERY = 50


@dataclass
class RelayReport:
    """What one relay pass did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    incidents: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """The pass's numbers, for a log line or a flow's result."""
        return {"claimed": self.claimed, "sent": self.sent, "retried": self.retried, "failed": self.failed}


def backoff(attempts: int, settings: Settings | None = None) -> timedelta:
    """The wait before the next attempt after `attempts` failed ones: doubling, capped."""
    s = settings or get_settings()
    return timedelta(seconds=min(s.relay_backoff_s * 2 ** max(attempts - 1, 0), s.relay_backoff_max_s))


def claim_due(*, session: Session, now: datetime, limit: int, lease: timedelta) -> list[int]:
    """Take up to `limit` due notices for this relay; the caller's commit makes the claim visible."""
    # Backoff lives in next_attempt_at: a failed notice is given its next time when it fails, so the
    # query that picks due rows is what enforces the backoff, on the (send_state, next_attempt_at) index.
    # The claim pushes next_attempt_at past a lease: a relay that dies mid-send leaves the notice
    # due again once the lease ends, and it is sent then.
    ids = list(session.scalars(
        select(Notification.id)
        .where(Notification.send_state == SendState.PENDING, Notification.next_attempt_at <= now)
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ))
    if ids:
        session.execute(update(Notification).where(Notification.id.in_(ids)).values(
            attempts=Notification.attempts + 1, claimed_until=now + lease, next_attempt_at=now + lease))
    return ids


def relay_once(*, now: datetime | None = None, limit: int | None = None) -> RelayReport:
    """One pass: claim what is due, send each, record a failure at once and the sent ones in groups."""
    settings = get_settings()
    now = now or utcnow()
    report = RelayReport()
    with session_scope() as session:
        ids = claim_due(session=session, now=now, limit=limit or settings.relay_batch_size,
                        lease=timedelta(seconds=settings.relay_lease_s))
    report.claimed = len(ids)
    if not ids:
        return report
    sent: list[dict[str, Any]] = []
    try:
        with MailSender(settings) as sender:
            for item in _prepare(ids, now):
                if isinstance(item.mail, NotificationError):
                    delivery = Delivery(error=str(item.mail), permanent=True)
                else:
                    delivery = sender.send(item.mail)
                delivered = list(dict.fromkeys([*item.delivered_before, *delivery.accepted]))
                if delivery.outcome == "sent":
                    report.sent += 1
                    sent.append({"notice_id": item.notice_id, "delivered": delivered})
                    if len(sent) >= MARK_EVERY:
                        _mark_sent(sent, now)
                else:
                    _record(report, _mark(item=item, delivery=delivery, delivered=delivered, now=now,
                                          settings=settings), item.notice_id)
    finally:
        _mark_sent(sent, now)
    return report


def _record(report: RelayReport, outcome: str, notice_id: int) -> None:
    if outcome == "retry":
        report.retried += 1
    else:
        report.failed += 1
        report.incidents.append(notice_id)


@dataclass(frozen=True)
class Prepared:
    """A claimed notice ready to go: its mail, or why it cannot be rendered; and who already has it."""

    notice_id: int
    mail: OutgoingMail | NotificationError
    delivered_before: tuple[str, ...]


def _prepare(ids: list[int], now: datetime) -> list[Prepared]:
    """Render every claimed notice; the tokens its links carry are committed before anything is sent."""
    prepared: list[Prepared] = []
    with session_scope() as session:
        default_zone = current_policy(session).policy.timezone
        notices = list(session.scalars(select(Notification).where(Notification.id.in_(ids))
                                       .order_by(Notification.id)))
        order_ids = {n.work_order_id for n in notices if n.work_order_id}
        orders = {o.id: o for o in session.scalars(select(WorkOrder).where(WorkOrder.id.in_(order_ids)))}
        links = _links(session, notices, now)
        for notice in notices:
            order = orders.get(notice.work_order_id)
            zone = order_policy(session, order).timezone if order else default_zone
            try:
                mail: OutgoingMail | NotificationError = _outgoing(notice, order, links.get(notice.id, {}), zone)
            except NotificationError as exc:
                log.error("notice %s (%s) cannot be rendered: %s", notice.id, notice.message_id, exc)
                mail = exc
            prepared.append(Prepared(notice.id, mail, tuple(notice.delivered_to)))
    return prepared


def _outgoing(notice: Notification, order: WorkOrder | None, links: dict[str, Any], zone: str) -> OutgoingMail:
    rendered = render_notice(kind=notice.kind, context=notice.context, links=links, timezone=zone)
    pending = tuple(r for r in notice.recipients if r not in set(notice.delivered_to))
    headers = {"X-Duban-Kind": notice.kind}
    if order is not None:
        headers["X-Duban-Order"] = order.number
    return OutgoingMail(message_id=notice.message_id, recipients=pending, subject=rendered.subject,
                        text=rendered.text, html=rendered.html, headers=headers)


def _takes_links(notice: Notification, unit: Unit | None) -> bool:
    """Links only when every recipient belongs to the unit (its mailbox, its leader); never for the office."""
    try:
        if unit is None or not kind_of(notice.kind, notice.context).links:
            return False
    except NotificationError:
        return False  # rendering says what is wrong with the kind
    own = {a.lower() for a in (unit.email, unit.leader_email) if a}
    return {r.lower() for r in notice.recipients} <= own


def _links(session: Session, notices: list[Notification], now: datetime) -> dict[int, dict[str, Any]]:
    """The order and inbox links of each notice that takes them, issued for the whole batch at once."""
    unit_ids = {n.unit_id for n in notices if n.unit_id}
    units = {u.id: u for u in session.scalars(select(Unit).where(Unit.id.in_(unit_ids)))}
    requests: list[TokenRequest] = []
    owners: list[tuple[int, str]] = []
    for notice in notices:
        if not _takes_links(notice, units.get(notice.unit_id)):
            continue
        # Seeded by the notice, so a resend carries the very same links as the first attempt.
        if notice.work_order_id is not None:
            requests.append(TokenRequest(notice.unit_id, notice.work_order_id, ORDER, f"notice:{notice.id}:order"))
            owners.append((notice.id, "order"))
        requests.append(TokenRequest(notice.unit_id, None, INBOX, f"notice:{notice.id}:inbox"))
        owners.append((notice.id, "inbox"))
    links: dict[int, dict[str, Any]] = {}
    for (notice_id, name), (token, expires) in zip(owners, issue_tokens(session=session, requests=requests, at=now),
                                                   strict=True):
        links.setdefault(notice_id, {})[name] = link_url(token)
        links[notice_id]["expires_at"] = expires.isoformat()
    return links


_SENT = (update(Notification.__table__).where(Notification.__table__.c.id == bindparam("notice_id"))
         .values(send_state=SendState.SENT, sent_at=bindparam("sent_at"), claimed_until=None, last_error="",
                 delivered_to=bindparam("delivered")))


def _mark_sent(sent: list[dict[str, Any]], now: datetime) -> None:
    """Record the notices sent since the last call, in one statement; empties the list."""
    # This relay holds the claims, nothing else writes these rows. A relay that dies before recording
    # leaves them due again once their lease ends: they go out once more with the same Message-ID.
    if not sent:
        return
    with session_scope() as session:
        session.connection().execute(_SENT, [row | {"sent_at": now} for row in sent])
    sent.clear()


def _mark(*, item: Prepared, delivery: Delivery, delivered: list[str], now: datetime, settings: Settings) -> str:
    """Record a result other than sent: a retry after backoff, or an incident once permanent or out of attempts."""
    with session_scope() as session:
        notice = session.get(Notification, item.notice_id)
        notice.delivered_to, notice.claimed_until = delivered, None
        outcome = delivery.outcome
        if outcome == "retry" and notice.attempts >= settings.relay_max_attempts:
            outcome = "failed"
            notice.last_error = f"gave up after {notice.attempts} attempts; last: {delivery.reason}"
        else:
            notice.last_error = delivery.reason
        if outcome == "retry":
            notice.next_attempt_at = now + backoff(notice.attempts, settings)
            log.warning("notice %s will be retried at %s: %s", notice.message_id, notice.next_attempt_at,
                        delivery.reason)
        else:
            notice.send_state, notice.failed_at = SendState.FAILED, now
            order = session.get(WorkOrder, notice.work_order_id) if notice.work_order_id else None
            record_event(session, order=order, name="notification_failed", actor=Actor.system(), at=now,
                         unit_id=notice.unit_id, payload={"notification_id": notice.id, "kind": notice.kind,
                                                          "message_id": notice.message_id,
                                                          "error": notice.last_error})
            log.error("notice %s is an incident: %s", notice.message_id, notice.last_error)
    return outcome


def incident_rows(*, since: datetime | None = None, limit: int = 200) -> list[dict[str, str]]:
    """Notices that became incidents (since a time, if given), newest first: order, kind, to whom, and why."""
    with session_scope(readonly=True) as session:
        query = (select(Notification, WorkOrder.number)
                 .outerjoin(WorkOrder, WorkOrder.id == Notification.work_order_id)
                 .where(Notification.send_state == SendState.FAILED)
                 .order_by(Notification.failed_at.desc(), Notification.id.desc()).limit(limit))
        if since is not None:
            query = query.where(Notification.failed_at >= since)
        return [
            {"notice": str(n.id), "order": number or "", "kind": n.kind, "recipients": ", ".join(n.recipients),
             "attempts": str(n.attempts), "failed_at": n.failed_at.isoformat() if n.failed_at else "",
             "error": n.last_error}
            for n, number in session.execute(query)
        ]
