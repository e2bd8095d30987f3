"""Keep exactly one live lifecycle run per open dispatched order."""

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks import runs

reconcile = task(runs.reconcile_runs, name="reconcile-runs", cache_policy=NO_CACHE)


@flow(name="reconcile-lifecycle-runs", description="Restart lost lifecycle runs, cancel duplicates, wake runs whose order moved on.")
async def reconcile_lifecycle_runs() -> dict[str, int]:
    """One reconciliation pass."""
    logger = get_run_logger()
    result = reconcile()
    for what in ("started", "restarted", "cancelled", "woken"):
        numbers = getattr(result, what)
        if numbers:
            logger.info("%s %d: %s", what, len(numbers), ", ".join(numbers[:50]))
    logger.info("Checked %d open dispatched orders.", result.checked)
    return {"checked": result.checked, "started": len(result.started), "restarted": len(result.restarted),
            "cancelled": len(result.cancelled), "woken": len(result.woken)}
