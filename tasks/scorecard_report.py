"""Scorecards as people read them: a ranking table, a trend chart, the notice list, CSV and JSON."""

import base64
import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from tasks.circulated import NoticeEntry
from tasks.scorecard import Period, ScorecardSet, UnitScore

# Columns of the ranking, in the order a supervisor reads them: (key, header).
RANKING = (
    ("unit_code", "单位"), ("unit_name", "名称"), ("buck_passing_index", "推诿指数"), ("dispatched", "派单"),
    ("response_rate", "响应率"), ("avg_sign_hours", "平均签收(工时)"), ("on_time_rate", "按时办结率"),
    ("resolution_rate", "解决率"), ("satisfaction_rate", "满意率"), ("return_rate", "退单率"),
    ("rejected_return_rate", "退单驳回率"), ("redo_rate", "重办率"), ("false_completions", "虚假办结"),
    ("repeat_complaints", "重复投诉"), ("cases_opened", "督办案件"),
)
_CHART_UNITS = 8


def table_rows(scores: list[UnitScore]) -> list[dict[str, Any]]:
    """One flat row per unit, ranked: the Prefect table artifact and the JSON output."""
    return [{"rank": rank, **s.row()} for rank, s in enumerate(scores, start=1)]


def to_csv(scores: list[UnitScore]) -> str:
    """The ranked rows as CSV with a header line."""
    rows = table_rows(scores)
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


def to_json(scores: list[UnitScore], period: Period) -> str:
    """The period and its ranked rows as JSON."""
    return json.dumps({"period": period.label, "start": period.start.isoformat(), "end": period.end.isoformat(),
                       "units": table_rows(scores)}, ensure_ascii=False, indent=2)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if key == "buck_passing_index":
        return f"{value:.3f}"
    if key.endswith("_rate"):
        return f"{value:.1%}"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def ranking_markdown(scores: list[UnitScore]) -> str:
    """The ranking as a markdown table (rates as percentages)."""
    lines = ["| # | " + " | ".join(h for _, h in RANKING) + " |", "|" + "---|" * (len(RANKING) + 1)]
    for rank, s in enumerate(scores, start=1):
        row = s.row()
        cells = [_cell(k, row[k]) for k, _ in RANKING]
        lines.append(f"| {rank} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def trend_chart(series: dict[str, list[float | None]], periods: list[Period]) -> str:
    """A PNG data URI: the buck-passing index of the worst units over the periods."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    latest = sorted(series, key=lambda code: -(series[code][-1] or 0.0))[:_CHART_UNITS]
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=100)
    labels = [p.label for p in periods]
    for code in latest:
        ax.plot(labels, [v if v is not None else float("nan") for v in series[code]], marker="o", label=code)
    ax.set_ylabel("buck-passing index")
    ax.set_title("Buck-passing index by unit")
    ax.grid(alpha=0.3)
    if latest:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def notice_markdown(entries: list[NoticeEntry]) -> str:
    """The circulated notice list with each unit's reasons and evidence."""
    if not entries:
        return "本期无通报单位。"
    parts = []
    for e in entries:
        evidence = "\n".join(f"  - {item['order']}: {item['event']} ({item['at'][:16]})" for item in e.evidence)
        parts.append(f"- **{e.unit_name}** ({e.unit_code}), 推诿指数 {e.buck_passing_index:.3f}: "
                     + "；".join(e.reasons) + ("\n" + evidence if evidence else ""))
    return "\n".join(parts)


def report_markdown(*, period: Period, scores: list[UnitScore], entries: list[NoticeEntry], chart_uri: str) -> str:
    """The whole scorecard artifact: ranking, trend chart and circulated notice list."""
    return (f"# 单位考评 Unit scorecards {period.label}\n\n"
            f"{period.start:%Y-%m-%d %H:%M} – {period.end:%Y-%m-%d %H:%M} UTC; rates are defined in the README "
            "(Unit scorecards).\n\n## 排名 Ranking\n\n" + ranking_markdown(scores)
            + f"\n\n## 趋势 Trend\n\n![buck-passing index trend]({chart_uri})\n\n"
            "## 通报 Circulated notice\n\n" + notice_markdown(entries) + "\n")


@dataclass(frozen=True)
class Report:
    """What the scorecard flow publishes: the table artifact's rows and the markdown artifact."""

    rows: list[dict[str, Any]]
    markdown: str


def render_report(*, result: ScorecardSet, entries: list[NoticeEntry]) -> Report:
    """The artifacts of one scorecard run."""
    chart = trend_chart(result.trend, result.trend_periods)
    return Report(table_rows(result.scores),
                  report_markdown(period=result.period, scores=result.scores, entries=entries, chart_uri=chart))
