"""What the monthly and annual report flows publish: the period, the rendered report, the mail to the leaders."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from duban.db import session_scope
from duban.errors import ValidationFailed
from models.base import utcnow
from tasks.history_format import LOCAL
from tasks.outbox import enqueue_notice
from tasks.policy_store import current_policy
from tasks.report import build_report
from tasks.report_render import paragraph_en, paragraph_zh, period_zh, render_charts, render_html, render_markdown


@dataclass(frozen=True)
class PreparedReport:
    """A period's report, rendered for an artifact and a mail."""

    kind: str
    date_from: date
    date_to: date
    slug: str
    markdown: str
    table: list[dict[str, Any]]
    figures: dict[str, Any]


def report_period(*, kind: str, period: str | None = None, today: date | None = None) -> tuple[date, date, str]:
    """(first day, last day, slug) of a month `YYYY-MM` or a year `YYYY`; by default the one before today."""
    today = today or datetime.now(LOCAL).date()
    try:
        if kind == "monthly":
            last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
            first = date.fromisoformat(f"{period}-01") if period else last_month
            following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
            return first, following - timedelta(days=1), f"{first:%Y-%m}"
        if kind == "annual":
            year = int(period) if period else today.year - 1
            return date(year, 1, 1), date(year, 12, 31), str(year)
    except ValueError:
        raise ValidationFailed(f"period {period!r} is not a {'month YYYY-MM' if kind == 'monthly' else 'year YYYY'}")\
            from None
    raise ValidationFailed(f"report kind {kind!r} is not monthly or annual")


def prepare_report(*, kind: str, period: str | None = None, today: date | None = None) -> PreparedReport:
    """The period's figures, compared with the year before, as markdown with charts and as a table."""
    start, end, slug = report_period(kind=kind, period=period, today=today)
    with session_scope(readonly=True) as session:
        figures = build_report(session, date_from=start, date_to=end, compare_previous=True)
    previous = figures.get("previous") or {}
    keys = ("calls_connected", "calls_from_county_platforms", "valid_items_accepted", "handed_to_units",
            "handed_to_units_completion_rate_pct", "direct_answers", "return_visits", "satisfaction_rate_pct",
            "suggestions_forwarded", "suggestions_adopted")
    table = [{"figure": key, "value": figures.get(key), "year_before": previous.get(key)} for key in keys]
    table += [{"figure": f"supervision.{k}", "value": v, "year_before": (previous.get("supervision") or {}).get(k)}
              for k, v in figures["supervision"].items() if isinstance(v, int)]
    return PreparedReport(kind, start, end, slug, render_markdown(figures, render_charts(figures)), table, figures)


def mail_report(*, prepared: PreparedReport, at: datetime | None = None) -> int:
    """Queue the report for the leaders in policy.yaml (recipients.report_leaders); how many recipients."""
    at = at or utcnow()
    figures = prepared.figures
    with session_scope() as session:
        leaders = list(current_policy(session).policy.recipients.report_leaders)
        if not leaders:
            return 0
        enqueue_notice(session, kind="report", order=None, unit=None, recipients=leaders, at=at, extra={
            "report_kind": prepared.kind, "period": prepared.slug, "period_label": period_zh(figures),
            "date_from": prepared.date_from.isoformat(), "date_to": prepared.date_to.isoformat(),
            "paragraph_zh": paragraph_zh(figures), "paragraph_en": paragraph_en(figures),
            "figures": prepared.table, "report_html": render_html(figures),
        })
    return len(leaders)
