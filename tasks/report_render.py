"""The report as markdown (the newspaper's paragraph first), HTML and JSON, with its charts as PNG data URIs."""

import base64
import html
import io
import json
from typing import Any

from duban.settings import get_settings
from models.enums import Channel, label
from models.history import CALL_OUTCOME_LABELS, CallOutcome

CHANNEL_ORDER = ("hotline", "mayor_mailbox", "weibo", "wechat", "online_post", "police_110", "county_platform",
                 "open311")


def period_zh(report: dict[str, Any]) -> str:
    """`2021年`, `2021年3月`, or `2021-03-05至2021-04-04`."""
    start, end = report["period"]["from"], report["period"]["to"]
    if start[5:] == "01-01" and end[5:] == "12-31" and start[:4] == end[:4]:
        return f"{start[:4]}年"
    if start[:7] == end[:7] and start[8:] == "01" and _last_day(end):
        return f"{start[:4]}年{int(start[5:7])}月"
    return f"{start}至{end}"


def _last_day(day: str) -> bool:
    from datetime import date, timedelta

    return (date.fromisoformat(day) + timedelta(days=1)).day == 1


def _yoy_zh(value: float | None) -> str:
    if value is None:
        return ""
    return f"，同比{'增长' if value >= 0 else '下降'}{abs(value):.1f}%"


def _yoy_en(value: float | None) -> str:
    return "" if value is None else f" ({value:+.1f}% year on year)"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def paragraph_zh(report: dict[str, Any]) -> str:
    """The figures in the layout of the newspaper's paragraph."""
    city = get_settings().city_name_zh
    channels = "、".join(label(Channel(c["channel"])) for c in sorted(
        report["valid_items_by_channel"], key=lambda c: CHANNEL_ORDER.index(c["channel"])))
    tops = report["top_categories_in_rank_order"]
    first = tops[0] if tops else None
    ranking = ""
    if first:
        subtopics = "、".join(s["name_zh"] for s in first["subtopics"])
        rest = "、".join(c["name_zh"] for c in tops[1:])
        ranking = (f"诉求量排名前十的类别依次为{first['name_zh']}（{first['items']}件，主要涉及{subtopics}）"
                   f"{'、' + rest if rest else ''}。")
    hot = "、".join(t["name_zh"] for t in report["hot_topics"])
    s = report["supervision"]
    return (
        f"{period_zh(report)}，{city}12345热线共接通来电{report['calls_connected']}个"
        f"（含县市区平台{report['calls_from_county_platforms']}个）{_yoy_zh(report['calls_yoy_growth_pct'])}；"
        f"通过{channels}等渠道受理有效诉求{report['valid_items_accepted']}件"
        f"{_yoy_zh(report['valid_items_yoy_growth_pct'])}。{ranking}"
        f"转交承办单位办理{report['handed_to_units']}件，办结率{_rate(report['handed_to_units_completion_rate_pct'])}；"
        f"直接答复{report['direct_answers']}件；回访{report['return_visits']}件，"
        f"满意率{_rate(report['satisfaction_rate_pct'])}。"
        + (f"群众反映的热点问题主要集中在{hot}等方面。" if hot else "")
        + f"转交建议{report['suggestions_forwarded']}件，采纳{report['suggestions_adopted']}件。"
        f"督办方面，超期办理{s['overdue']}件，退单{s['returns']}件（驳回{s['returns_rejected']}件），"
        f"立案督办{s['cases_total']}件，{len(s['units_on_notice'])}个单位被列入通报。"
    )


def paragraph_en(report: dict[str, Any]) -> str:
    """The same paragraph in English."""
    city = get_settings().city_name_en
    p = report["period"]
    tops = ", ".join(f"{c['name_en']} ({c['items']})" for c in report["top_categories_in_rank_order"])
    hot = ", ".join(t["name_en"].lower() for t in report["hot_topics"])
    return (
        f"From {p['from']} to {p['to']}, the {city} 12345 hotline connected {report['calls_connected']} calls "
        f"({report['calls_from_county_platforms']} from county platforms){_yoy_en(report['calls_yoy_growth_pct'])} "
        f"and accepted {report['valid_items_accepted']} valid items{_yoy_en(report['valid_items_yoy_growth_pct'])}. "
        f"The top ten categories: {tops}. {report['handed_to_units']} items were handed to units "
        f"({_rate(report['handed_to_units_completion_rate_pct'])} completed) and {report['direct_answers']} answered "
        f"directly; {report['return_visits']} return visits found {_rate(report['satisfaction_rate_pct'])} satisfied."
        + (f" Hot topics: {hot}." if hot else "")
    )


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _change(now: Any, before: Any) -> str:
    if not isinstance(now, int | float) or not isinstance(before, int | float) or not before:
        return ""
    return f"{100 * (now - before) / before:+.1f}%"


def render_markdown(report: dict[str, Any], charts: dict[str, str] | None = None) -> str:
    """The report as markdown: the paragraph, the figures, the rankings, the charts as data URIs."""
    charts = charts if charts is not None else render_charts(report)
    s = report["supervision"]
    previous = report.get("previous") or {}
    figures = [
        ("calls connected 接通来电", "calls_connected"),
        ("from county platforms 县市区平台", "calls_from_county_platforms"),
        ("valid items 有效诉求", "valid_items_accepted"), ("handed to units 转交承办单位", "handed_to_units"),
        ("completion rate 办结率 %", "handed_to_units_completion_rate_pct"),
        ("direct answers 直接答复", "direct_answers"),
        ("return visits 回访", "return_visits"), ("satisfaction rate 满意率 %", "satisfaction_rate_pct"),
        ("suggestions forwarded 转交建议", "suggestions_forwarded"),
        ("suggestions adopted 采纳建议", "suggestions_adopted"),
    ]
    parts = [
        f"# {period_zh(report)}12345热线运行报告 · 12345 hotline report {report['period']['from']} to "
        f"{report['period']['to']}", "", paragraph_zh(report), "", paragraph_en(report), "",
        "## 主要数据 Figures", "",
        _table(["figure", "this period", "year before", "change"],
               [[name, report.get(key), previous.get(key), _change(report.get(key), previous.get(key))]
                for name, key in figures]),
        "", f"Year before: {previous.get('source', 'no records and no published totals')}.", "",
        "## 诉求来源 Valid items by channel", "",
        _table(["channel", "items", "share %"], [[f"{label(Channel(c['channel']))} {c['channel']}", c["items"],
                                                 c["share_pct"]] for c in report["valid_items_by_channel"]]),
        "", _image("Channel mix", charts.get("channels")), "",
        "## 未形成有效诉求的来电 Calls that did not become valid items", "",
        _table(["outcome", "calls"], [[f"{CALL_OUTCOME_LABELS[CallOutcome(k)][0]} {k}", n]
                                      for k, n in sorted(report["calls_not_valid"]["by_outcome"].items())]
               + [["screened out as invalid 无效", report["calls_not_valid"]["screened_out"]],
                  ["merged as duplicates 合并", report["calls_not_valid"]["merged"]]]),
        "", "## 诉求量前十类别 Top ten categories", "",
        _table(["rank", "category", "items", "share %", "leading subtopics"],
               [[c["rank"], f"{c['name_zh']} {c['name_en']}", c["items"], c["share_pct"],
                 "、".join(f"{t['name_zh']}({t['items']})" for t in c["subtopics"][:3])]
                for c in report["top_categories_in_rank_order"]]),
        "", _image("Category ranking", charts.get("categories")), "",
        "## 热点问题 Hot topics", "",
        _table(["rank", "subtopic", "handed to units"],
               [[i, f"{t['name_zh']} {t['name_en']}", t["handed"]] for i, t in enumerate(report["hot_topics"], 1)]),
        "", "## 月度诉求量 Monthly volume", "",
        _table(["month", "calls", "valid items"], [[m["month"], m["calls"], m["valid_items"]]
                                                   for m in report["monthly"]]),
        "", _image("Monthly volume", charts.get("monthly")), "",
        "## 承办单位 Units by orders handed to them", "",
        _table(["unit", "handed", "replied", "overdue", "overdue %", "returned"],
               [[f"{u['name_zh']} ({u['code']})", u["handed"], u["replied"], u["overdue"], u["overdue_rate_pct"],
                 u["returned"]] for u in report["units"]]),
        "", _image("Unit ranking", charts.get("units")), "",
        "## 督办情况 Supervision findings", "",
        _table(["finding", "count"], [
            ["overdue lead assignments 超期办理",
             f"{s['overdue']} of {s['lead_assignments']} ({_rate(s['overdue_rate_pct'])})"],
            ["returns requested 退单申请", s["returns"]], ["returns approved 同意退单", s["returns_approved"]],
            ["returns rejected 驳回退单", s["returns_rejected"]],
            ["rejected automatically, no on-site evidence 无现场证据自动驳回", s["returns_auto_rejected"]],
            ["warnings 催办", s["warnings"]], ["overdue notices 超期通知", s["overdue_notices"]],
            ["supervision cases 督办立案", s["cases_total"]],
            ["suspected false completions 疑似虚假办结", s["false_completions"]],
            ["orders redone 重办工单", s["redo_orders"]],
        ] + [[f"cases: {kind}", n] for kind, n in sorted(s["cases"].items())]),
        "", "通报单位 Units on the circulated notice: "
        + ("、".join(f"{u['name_zh']}" for u in s["units_on_notice"]) or "none"), "",
    ]
    return "\n".join(parts)


def _image(title: str, uri: str | None) -> str:
    return f"![{title}]({uri})" if uri else ""


def render_json(report: dict[str, Any]) -> str:
    """The report as JSON (keys as in the published figures where they exist)."""
    return json.dumps(report, ensure_ascii=False, indent=2, default=str)


def render_html(report: dict[str, Any]) -> str:
    """A standalone HTML page: the markdown's content with real tables and images."""
    import markdown_it

    body = markdown_it.MarkdownIt("commonmark").enable("table").render(render_markdown(report))
    title = html.escape(f"{period_zh(report)}12345热线运行报告")
    return (f"<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{title}</title><style>"
            "body{font-family:sans-serif;max-width:980px;margin:2em auto;line-height:1.6}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
            "img{max-width:100%}</style></head><body>" + body + "</body></html>")


def render_charts(report: dict[str, Any]) -> dict[str, str]:
    """Category ranking, monthly volume, channel mix and unit ranking as PNG data URIs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts: dict[str, str] = {}
    tops = report["top_categories_in_rank_order"]
    if tops:
        charts["categories"] = _barh(plt, [c["name_en"] for c in tops], [c["items"] for c in tops],
                                     "Top ten categories (valid items)")
    if report["valid_items_by_channel"]:
        channels = report["valid_items_by_channel"]
        charts["channels"] = _barh(plt, [label(Channel(c["channel"]), "en") for c in channels],
                                   [c["items"] for c in channels], "Valid items by channel")
    if report["monthly"]:
        fig, ax = plt.subplots(figsize=(8, 3.2))
        months = [m["month"] for m in report["monthly"]]
        ax.bar(months, [m["valid_items"] for m in report["monthly"]], color="#3b6ea5", label="valid items")
        ax.plot(months, [m["calls"] for m in report["monthly"]], color="#c0504d", marker="o", label="calls")
        ax.set_title("Monthly volume")
        ax.legend()
        ax.tick_params(axis="x", labelrotation=45)
        charts["monthly"] = _png(plt, fig)
    if report["units"]:
        units = report["units"]
        fig, ax = plt.subplots(figsize=(8, 0.35 * len(units) + 1))
        names = [u["name_en"] or u["code"] for u in units][::-1]
        ax.barh(names, [u["handed"] - u["overdue"] for u in units][::-1], color="#3b6ea5", label="on time")
        ax.barh(names, [u["overdue"] for u in units][::-1], left=[u["handed"] - u["overdue"] for u in units][::-1],
                color="#c0504d", label="overdue")
        ax.set_title("Units by orders handed to them")
        ax.legend()
        charts["units"] = _png(plt, fig)
    return charts


def _barh(plt: Any, names: list[str], values: list[int], title: str) -> str:
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1))
    ax.barh(names[::-1], values[::-1], color="#3b6ea5")
    ax.set_title(title)
    return _png(plt, fig)


def _png(plt: Any, fig: Any) -> str:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
