"""Profiles of a hotline year: the figures a city published, and the shape the generator gives what they leave open.

The Zhuzhou profile reads the published 2021 figures (duban/data/profiles/zhuzhou-2021.json) and
adds what the newspaper does not say: items per category below rank one, the channel mix, how
many orders were screened out or merged, which subtopics the hot topics are. Another city is a
JSON file of the same shape; a city ten times larger is the same profile with --scale 10.
"""

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from duban.errors import ValidationFailed

PROFILES = Path(__file__).resolve().parent.parent / "duban" / "data" / "profiles"

# The newspaper names subtopics and hot topics in words; these are their subcategory codes in the demo directory.
TOPIC_CODES = {
    "social security card application and loss reporting": "hr_social_security.social_security_card",
    "medical insurance settlement in other places": "hr_social_security.remote_medical_settlement",
    "information inquiry and correction for insured persons": "hr_social_security.insured_information",
    "endowment insurance payment for landless farmers": "hr_social_security.landless_farmer_pension",
    "social insurance payment for urban residents": "hr_social_security.resident_insurance",
    "unemployment subsidy": "hr_social_security.unemployment_subsidy",
    "vocational qualification certificate examination": "hr_social_security.vocational_qualification",
    "epidemic prevention policy": "emergency_management.epidemic_prevention",
    "ride-hailing services": "transportation.ride_hailing",
    "driving schools": "transportation.driving_schools",
    "noise": "city_appearance_life_services.noise",
    "cooking fumes": "city_appearance_life_services.cooking_fumes",
    "garbage station odour": "city_appearance_life_services.garbage_station_odour",
    "property management": "city_appearance_life_services.property_management",
    "financial investment": "finance_commerce.financial_investment",
    "consumer rights protection": "finance_commerce.consumer_rights",
}

# What the published figures leave open, for Zhuzhou 2021 (assumptions, stated in the README).
ZHUZHOU_SHAPE: dict[str, Any] = {
    # Items of the categories ranked 2 to 10 (only rank 1's count was published).
    "category_items": [56000, 47000, 41000, 35500, 30000, 26000, 22000, 18500, 15000],
    # Items handed to units per hot topic, in the published order, so they rank in that order.
    "hot_topic_handed": [7200, 6000, 5000, 4400, 3900, 3400, 3000, 2600, 2200],
    # No other subtopic sends more items to units than this, so the hot topics stay on top.
    "other_handed_cap": 1800,
    "channel_shares": {"hotline": 0.70, "county_platform": 0.18, "wechat": 0.045, "online_post": 0.03,
                       "mayor_mailbox": 0.02, "police_110": 0.015, "weibo": 0.01},
    "invalid_orders": 1500,
    "merged_orders": 2000,
    "call_outcomes": {"dropped": 0.30, "progress_query": 0.25, "repeat": 0.15, "outside_remit": 0.12,
                      "transferred": 0.10, "harassment": 0.08},
    "handed_item_types": {"complaint": 0.38, "help_request": 0.30, "consultation": 0.14, "report": 0.10,
                          "suggestion": 0.06, "praise": 0.02},
    "answered_item_types": {"consultation": 0.96, "help_request": 0.04},
    "suggestions_adopted_share": 0.35,
    "urgent_share": 0.03,
    "very_urgent_share": 0.005,
    # Units that misbehave, so supervision has something to find.
    "buck_passers": 3, "late_units": 3, "false_closers": 2,
    "return_share": 0.10, "late_share": 0.15, "send_back_share": 0.01,
}

# Subcategory weights within each top category, in the directory's order.
SUBTOPIC_WEIGHTS: dict[str, list[float]] = {
    "hr_social_security": [0.27, 0.20, 0.16, 0.12, 0.10, 0.09, 0.06],
    "emergency_management": [0.55, 0.15, 0.12, 0.10, 0.08],
    "urban_rural_planning_construction": [0.22, 0.20, 0.18, 0.18, 0.10, 0.12],
    "housing_land": [0.25, 0.25, 0.15, 0.15, 0.20],
    "transportation": [0.30, 0.25, 0.15, 0.15, 0.15],
    "public_security": [0.35, 0.20, 0.20, 0.15, 0.10],
    "city_appearance_life_services": [0.08, 0.07, 0.07, 0.20, 0.18, 0.16, 0.24],
    "finance_commerce": [0.25, 0.30, 0.20, 0.15, 0.10],
    "resources_environment": [0.25, 0.20, 0.20, 0.15, 0.20],
    "science_education_culture_health": [0.25, 0.15, 0.15, 0.20, 0.15, 0.10],
}


@dataclass(frozen=True)
class Profile:
    """A year to generate: the published figures (scaled) and the shape around them."""

    name: str
    year: int
    calls_connected: int
    calls_from_county_platforms: int
    valid_items: int
    handed_to_units: int
    completion_rate_pct: float
    return_visits: int
    satisfaction_rate_pct: float
    prior_calls_connected: int | None
    prior_valid_items: int | None
    categories: tuple[tuple[str, int], ...]
    hot_topics: tuple[tuple[str, int], ...]
    other_handed_cap: int
    scale: float = 1.0
    source: str = ""
    shape: dict[str, Any] = field(default_factory=dict)

    @property
    def direct_answers(self) -> int:
        return self.valid_items - self.handed_to_units


def _scaled(value: int | None, scale: float) -> int | None:
    return None if value is None else int(round(value * scale))


def load_profile(name: str, *, year: int, scale: float = 1.0) -> Profile:
    """The named profile (`zhuzhou`) or a profile JSON file, for `year`, every count multiplied by `scale`."""
    if not 0 < scale <= 100:
        raise ValidationFailed(f"--scale {scale} is out of range; expected more than 0 and at most 100")
    path = PROFILES / "zhuzhou-2021.json" if name == "zhuzhou" else Path(name)
    if not path.is_file():
        raise ValidationFailed(f'unknown profile "{name}": use zhuzhou or the path of a profile JSON file')
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValidationFailed(f"{path}: not a readable JSON profile ({exc})") from None
    shape = {**ZHUZHOU_SHAPE, **data.get("shape", {})}
    try:
        profile = _profile(data, shape, path)
    except KeyError as exc:
        raise ValidationFailed(f"{path}: the profile lacks {exc.args[0]}") from None
    return _scale(replace(profile, year=year), scale)


def _profile(data: dict[str, Any], shape: dict[str, Any], path: Path) -> Profile:
    top = data["top_categories_in_rank_order"]
    counts = [top[0]["items"], *shape["category_items"]]
    if len(counts) != len(top):
        raise ValidationFailed(f"{path}: {len(top)} top categories but {len(counts)} item counts "
                               "(the first from the file, the others from shape.category_items)")
    if counts != sorted(counts, reverse=True):
        raise ValidationFailed(f"{path}: category item counts {counts} are not in rank order")
    hot = [TOPIC_CODES.get(t, t) for t in data.get("hot_topic_codes", data["hot_topics"])]
    unknown = [t for t in hot if "." not in t]
    if unknown:
        raise ValidationFailed(f"{path}: hot topics {unknown} have no subcategory code; give hot_topic_codes")
    handed = shape["hot_topic_handed"]
    if len(handed) != len(hot) or handed != sorted(handed, reverse=True) or handed[-1] <= shape["other_handed_cap"]:
        raise ValidationFailed(f"{path}: shape.hot_topic_handed needs one falling count per hot topic, each above "
                               "shape.other_handed_cap")
    return Profile(
        name=path.stem.split("-")[0] if path.parent == PROFILES else str(path), year=data["year"],
        calls_connected=data["calls_connected"],
        calls_from_county_platforms=data["calls_from_county_platforms"], valid_items=data["valid_items_accepted"],
        handed_to_units=data["handed_to_units"], completion_rate_pct=data["handed_to_units_completion_rate_pct"],
        return_visits=data["return_visits"], satisfaction_rate_pct=data["satisfaction_rate_pct"],
        prior_calls_connected=data.get("calls_connected_prior_year_derived"),
        prior_valid_items=data.get("valid_items_prior_year_derived"),
        categories=tuple((c["code"], n) for c, n in zip(top, counts, strict=True)),
        hot_topics=tuple(zip(hot, handed, strict=True)), other_handed_cap=shape["other_handed_cap"],
        source=data.get("about", ""), shape=shape,
    )


def _scale(profile: Profile, scale: float) -> Profile:
    if scale == 1.0:
        return profile
    s = lambda n: _scaled(n, scale)  # noqa: E731
    return replace(
        profile, scale=scale, calls_connected=s(profile.calls_connected),
        calls_from_county_platforms=s(profile.calls_from_county_platforms), valid_items=s(profile.valid_items),
        handed_to_units=s(profile.handed_to_units), return_visits=s(profile.return_visits),
        prior_calls_connected=s(profile.prior_calls_connected), prior_valid_items=s(profile.prior_valid_items),
        categories=tuple((c, s(n)) for c, n in profile.categories),
        hot_topics=tuple((c, s(n)) for c, n in profile.hot_topics), other_handed_cap=s(profile.other_handed_cap),
        shape={**profile.shape, "invalid_orders": s(profile.shape["invalid_orders"]),
               "merged_orders": s(profile.shape["merged_orders"])},
    )


def apportion(total: int, weights: list[float], caps: list[int] | None = None) -> list[int]:
    """Whole numbers summing to `total` in proportion to `weights` (largest remainder), none above its cap."""
    n = len(weights)
    caps = caps or [total] * n
    if total > sum(caps):
        raise ValidationFailed(f"cannot share {total} out under caps summing to {sum(caps)}")
    result = [0] * n
    open_ = [i for i in range(n) if weights[i] > 0 and caps[i] > 0]
    left = total
    while left > 0 and open_:
        weight = sum(weights[i] for i in open_)
        exact = {i: left * weights[i] / weight for i in open_}
        share = {i: min(int(exact[i]), caps[i] - result[i]) for i in open_}
        given = sum(share.values())
        if given == 0:
            # Hand out the remainder one by one, largest fraction first.
            for i in sorted(open_, key=lambda i: (exact[i] - int(exact[i]), -i), reverse=True)[:left]:
                result[i] += 1
            left = total - sum(result)
        else:
            for i in open_:
                result[i] += share[i]
            left -= given
        open_ = [i for i in open_ if result[i] < caps[i]]
    if left:
        raise ValidationFailed(f"cannot share {total} out: {left} left once every weighted share is full")
    return result
