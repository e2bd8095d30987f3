"""Intake in batches: received items are screened, answered or dispatched; dispatched ones get a run."""

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks import dispatching, runs

process_received = task(dispatching.process_received, name="triage-and-dispatch", cache_policy=NO_CACHE)
start_order_runs = task(runs.start_order_runs, name="start-lifecycle-runs", cache_policy=NO_CACHE)


@flow(name="intake-items", description="Screen, answer or dispatch received items; start a lifecycle run per dispatched order.")
async def intake_items(limit: int = 500) -> dict[str, int]:
    """One batch of received items; fails if any item failed, after doing all the others."""
    logger = get_run_logger()
    result = process_received(limit=limit)
    started = start_order_runs(order_ids=result.dispatched)
    logger.info("Dispatched %d, closed without a unit %s, lifecycle runs started %d.",
                len(result.dispatched), result.closed or "none", len(started))
    for number, error in result.failed:
        logger.error("Item %s stays received: %s", number, error)
    if result.failed:
        raise RuntimeError(f"{len(result.failed)} of the batch's items failed; they stay received and are retried")
    return {"dispatched": len(result.dispatched), **result.closed}
