"""Notification flows: relay the outbox once and show supervisors what could not be sent; queue unit digests."""

from datetime import timedelta

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE

from models.base import utcnow
from tasks import digest, relay
from tasks.markup import typed_rows

relay_pass = task(relay.relay_once, name="relay-outbox", cache_policy=NO_CACHE)
list_incidents = task(relay.incident_rows, name="list-notice-incidents", cache_policy=NO_CACHE)
queue_digests = task(digest.enqueue_digests, name="queue-unit-digests", cache_policy=NO_CACHE)


@flow(name="relay-notifications", description="Send every due notice from the outbox once, and publish the "
      "notices that became incidents (a 5xx reply, or out of retries) as an artifact for supervisors.")
async def relay_notifications(limit: int | None = None, lookback_minutes: int = 15) -> dict[str, int]:
    """One relay pass; incidents from this pass or any relay in the last `lookback_minutes` become an artifact."""
    logger = get_run_logger()
    started = utcnow()
    report = relay_pass(limit=limit)
    counts = report.counts()
    logger.info("Relayed the outbox: %d sent, %d to retry, %d incidents.", report.sent, report.retried,
                report.failed)
    incidents = list_incidents(since=started - timedelta(minutes=lookback_minutes))
    if incidents:
        logger.warning("%d notices could not be delivered; see the notification-incidents artifact.",
                       len(incidents))
        await acreate_table_artifact(key="notification-incidents", table=typed_rows(incidents),
                                     description="Notices that could not be delivered: the order, the kind, the "
                                                 "recipients, and the mail server's reply. Fix the address or the "
                                                 "server, then contact the unit another way.")
    return counts | {"incidents_listed": len(incidents)}


@flow(name="send-unit-digests", description="Queue each unit's digest of its open orders, with deadlines and "
      "warnings; the relay sends them.")
async def send_unit_digests(working_days_only: bool = True) -> dict[str, int]:
    """Queue the digests (on working days only, unless told otherwise); returns how many units get one."""
    units = queue_digests(working_days_only=working_days_only)
    get_run_logger().info("Queued digests for %d units.", units)
    return {"units": units}
