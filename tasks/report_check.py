"""A report set against published figures: which agree, within what, and which do not.

A city that imports its past years checks Duban's report of them against the figures it once
published; the synthetic year is checked the same way against the Zhuzhou 2021 figures.
Totals agree within 1%, rates (percentages) within one percentage point, rankings exactly.
"""

from dataclasses import dataclass
from typing import Any

from tasks.simulate_profile import TOPIC_CODES

TOTALS = {"calls_connected": "calls_connected", "calls_from_county_platforms": "calls_from_county_platforms",
          "valid_items_accepted": "valid_items_accepted", "handed_to_units": "handed_to_units",
          "return_visits": "return_visits", "direct_answers": "direct_answers_derived"}
RATES = ("handed_to_units_completion_rate_pct", "satisfaction_rate_pct", "calls_yoy_growth_pct",
         "valid_items_yoy_growth_pct")
RELATIVE, POINTS = 0.01, 1.0


@dataclass(frozen=True)
class Check:
    figure: str
    ours: Any
    published: Any
    tolerance: str
    ok: bool


def check_report(report: dict[str, Any], published: dict[str, Any], *, scale: float = 1.0) -> list[Check]:
    """Every figure the published record has, compared; `scale` shrinks published totals for a scaled year."""
    checks = []
    for ours_key, key in TOTALS.items():
        if published.get(key) is not None:
            expected = published[key] * scale
            checks.append(Check(ours_key, report[ours_key], round(expected), "1%",
                                abs(report[ours_key] - expected) <= RELATIVE * expected))
    for key in RATES:
        if published.get(key) is not None:
            checks.append(Check(key, report[key], published[key], "1 point",
                                abs(report[key] - published[key]) <= POINTS))
    ranking = [c["code"] for c in published.get("top_categories_in_rank_order", [])]
    if ranking:
        ours = [c["code"] for c in report["top_categories_in_rank_order"]][:len(ranking)]
        checks.append(Check("top_categories_in_rank_order", ours, ranking, "same order", ours == ranking))
        first = published["top_categories_in_rank_order"][0]
        if first.get("items"):
            items = report["top_categories_in_rank_order"][0]["items"]
            checks.append(Check("top_category_items", items, round(first["items"] * scale), "1%",
                                abs(items - first["items"] * scale) <= RELATIVE * first["items"] * scale))
        if first.get("subtopics"):
            ours_topics = [s["code"] for s in report["top_categories_in_rank_order"][0]["subtopics"]]
            expected_topics = [TOPIC_CODES.get(t, t) for t in first["subtopics"]]
            checks.append(Check("top_category_subtopics", ours_topics, expected_topics, "same order",
                                ours_topics == expected_topics))
    if published.get("hot_topics"):
        ours_hot = [t["code"] for t in report["hot_topics"]]
        expected_hot = [TOPIC_CODES.get(t, t) for t in published["hot_topics"]]
        checks.append(Check("hot_topics", ours_hot, expected_hot, "same order", ours_hot == expected_hot))
    return checks
