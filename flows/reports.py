"""The hotline's monthly and annual reports: published as artifacts and mailed to the leaders in policy.yaml."""

from datetime import date
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE

from tasks import report_publish

prepare = task(report_publish.prepare_report, name="compute-hotline-report", cache_policy=NO_CACHE)
mail = task(report_publish.mail_report, name="mail-hotline-report", cache_policy=NO_CACHE)


async def _publish(kind: str, period: str | None, today: date | None) -> dict[str, Any]:
    logger = get_run_logger()
    prepared = prepare(kind=kind, period=period, today=today)
    await acreate_markdown_artifact(key=f"hotline-report-{kind}", markdown=prepared.markdown,
                                    description=f"12345 hotline {kind} report {prepared.slug}, with charts")
    await acreate_table_artifact(key=f"hotline-report-{kind}-{prepared.slug}", table=prepared.table,
                                 description=f"12345 hotline {kind} report {prepared.slug}: the figures")
    recipients = mail(prepared=prepared)
    if not recipients:
        logger.warning("No report leaders in policy.yaml (recipients.report_leaders): the %s report %s was "
                       "published as artifacts only.", kind, prepared.slug)
    logger.info("Published the %s report %s: %d valid items, mailed to %d leaders.", kind, prepared.slug,
                prepared.figures["valid_items_accepted"], recipients)
    return {"period": prepared.slug, "valid_items": prepared.figures["valid_items_accepted"], "mailed": recipients}


@flow(name="publish-monthly-report", description="The hotline's report for a month (the previous one by "
      "default): figures, rankings and charts as artifacts, mailed to the leaders in policy.yaml.")
async def publish_monthly_report(month: str | None = None, today: date | None = None) -> dict[str, Any]:
    """Publish the report of `month` (YYYY-MM), or of the month before `today`."""
    return await _publish("monthly", month, today)


@flow(name="publish-annual-report", description="The hotline's report for a year (the previous one by "
      "default), laid out as the city publishes it, as artifacts and mailed to the leaders in policy.yaml.")
async def publish_annual_report(year: str | None = None, today: date | None = None) -> dict[str, Any]:
    """Publish the report of `year` (YYYY), or of the year before `today`."""
    return await _publish("annual", year, today)
