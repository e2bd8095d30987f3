"""Publish Duban's events to Prefect, so admins can build automations on them."""

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks import prefect_events

publish_pass = task(prefect_events.publish_new_events, name="publish-duban-events", cache_policy=NO_CACHE)


@flow(name="publish-events", description="Send every row of Duban's events table not yet published as a Prefect "
      "event (duban.work_order.dispatched, duban.case.opened, ...), resuming after the last one the server accepted.")
async def publish_events(batch: int = 500) -> int:
    """One pass: publish what is new since the cursor."""
    sent = await publish_pass(batch=batch)
    get_run_logger().info("Published %d Duban events to Prefect.", sent)
    return sent
