"""Supervision flows: the deadline sweep, and the monthly scorecards with the circulated notice."""

from datetime import datetime

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.cache_policies import NO_CACHE

from tasks import buck_passing, circulated, scorecard, scorecard_report, sweep

run_sweep = task(sweep.sweep, name="sweep-due-orders", cache_policy=NO_CACHE)
link_repeats = task(buck_passing.link_repeat_complaints, name="link-repeat-complaints", cache_policy=NO_CACHE)
build_scorecards = task(scorecard.build_scorecards, name="compute-scorecards", cache_policy=NO_CACHE)
circulate = task(circulated.circulate_notice, name="circulate-notice", cache_policy=NO_CACHE)
render_report = task(scorecard_report.render_report, name="render-scorecard-report", cache_policy=NO_CACHE)


@flow(name="sweep-deadlines", description="Fire every escalation rung that is due: warnings, overdue notices, "
      "supervision cases, the circulated notice. The clock starts it only when something is due.")
async def sweep_deadlines(now: datetime | None = None) -> dict[str, int]:
    """Run the supervision sweep once; the run fails if any order could not be processed."""
    logger = get_run_logger()
    report = run_sweep(now=now)
    counts = report.counts()
    logger.info("Swept %d due orders at %s: %s; %d skipped (another sweeper had them).", report.processed,
                report.now.isoformat(), counts or "no rung", report.skipped)
    for fired in report.fired:
        logger.info("%s: %s %s%s", fired.number, fired.stage, fired.rung,
                    f" ({fired.unit_code})" if fired.unit_code else "")
    if report.failed:
        raise RuntimeError(f"{len(report.failed)} orders failed in the sweep: {report.failed}")
    return counts


@flow(name="publish-scorecards", description="Unit scorecards for a period (the previous month by default) "
      "with ranking and trend, and the circulated notice list mailed to supervisors and unit leaders.")
async def publish_scorecards(period: str | None = None, as_of: datetime | None = None,
                             trend_months: int = 6) -> dict[str, int]:
    """Link repeat complaints, compute the scorecards, circulate the notice, publish the artifacts."""
    logger = get_run_logger()
    result = build_scorecards(period=period, as_of=as_of, trend_months=trend_months)
    linked = link_repeats(since=result.period.start, until=result.period.end, window_days=result.repeat_window_days)
    if linked:
        logger.info("Linked %d repeat complaints; counting them in.", linked)
        result = build_scorecards(period=result.period.label, as_of=as_of, trend_months=trend_months)
    entries = circulate(period=result.period, scores=result.scores)
    report = render_report(result=result, entries=entries)
    slug = result.period.label.replace("..", "-to-")
    await acreate_table_artifact(key=f"unit-scorecard-{slug}", table=report.rows,
                                 description=f"Unit scorecards {result.period.label}, ranked by buck-passing index")
    await acreate_markdown_artifact(key="unit-scorecards", markdown=report.markdown,
                                    description=f"Unit scorecards {result.period.label}: ranking, trend, notice")
    logger.info("Scorecards %s: %d units, %d on the circulated notice.", result.period.label, len(result.scores),
                len(entries))
    return {"units": len(result.scores), "circulated": len(entries), "repeat_complaints_linked": linked}
