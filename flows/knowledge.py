"""Scheduled upkeep of intake: stale knowledge-base articles and unanswered questions, and hot spots."""

from datetime import date, datetime

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE

from tasks import hotspots, kb_upkeep, triage
from tasks.markup import typed_rows

remind_stale = task(kb_upkeep.remind_stale_articles, name="remind-stale-articles", cache_policy=NO_CACHE)
send_gap_lists = task(kb_upkeep.send_gap_lists, name="send-kb-gap-lists", cache_policy=NO_CACHE)
tell_merged = task(triage.tell_merged_outcomes, name="tell-merged-citizens", cache_policy=NO_CACHE)
detect = task(hotspots.detect_hot_spots, name="detect-hot-spots", cache_policy=NO_CACHE)
alert_table = task(hotspots.alert_table, name="hot-spot-table", cache_policy=NO_CACHE)


@flow(name="remind-stale-articles",
      description="Remind owner units of knowledge-base articles due for review, escalate the overdue ones by the "
                  "policy's ladder, and send each unit the questions the knowledge base could not answer.")
async def remind_stale_articles(at: datetime | None = None) -> dict[str, int]:
    """One upkeep pass over the knowledge base."""
    logger = get_run_logger()
    report = remind_stale(at=at)
    gaps = send_gap_lists(at=at)
    logger.info("Articles reminded %d, stale cases opened %d, units put on notice %d; "
                "%d unanswered questions sent to %d units.",
                report.reminders, report.cases_opened, report.put_on_notice, gaps.gaps, gaps.units)
    if report.rows:
        await acreate_table_artifact(key="kb-stale-articles", table=typed_rows(report.rows),
                                     description="Knowledge-base articles past or near their review-by date")
    return {"reminders": report.reminders, "cases_opened": report.cases_opened,
            "put_on_notice": report.put_on_notice, "gaps_sent": gaps.gaps}


@flow(name="detect-hot-spots",
      description="Count items per topic and district against the rolling baseline; alert supervisors to each "
                  "surge with the orders behind it.")
async def detect_hot_spots(day: date | None = None, at: datetime | None = None) -> dict[str, int]:
    """One hot-spot pass for the window ending on `day` (default: today)."""
    logger = get_run_logger()
    spots = detect(day=day, at=at)
    for spot in spots:
        logger.info("Hot spot: %s in %s, %d items in %d days against %.1f expected.",
                    spot.category_name, spot.district_name, spot.count, spot.window_days, spot.expected)
    if spots:
        await acreate_table_artifact(key="hot-spots", table=alert_table(spots),
                                     description="Topics and categories surging over their rolling baseline")
    return {"hot_spots": len(spots)}


@flow(name="tell-merged-citizens",
      description="Tell the citizens of merged duplicate items how their master order ended.")
async def tell_merged_citizens(at: datetime | None = None) -> int:
    """One pass over merged items whose master reached a final status."""
    told = tell_merged(at=at)
    get_run_logger().info("Citizens of %d merged items told their master's outcome.", told)
    return told
