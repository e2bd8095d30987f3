"""The sections of policy.yaml as pydantic models; each refuses a bad value where it is written."""

from datetime import date, time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from models.policy_values import (
    AMOUNT_HINT,
    RUNG_ORDER,
    SCORE_KEYS,
    STAGE_NAMES,
    AmountField,
    Code,
    Email,
    ItemTypeCode,
    KeyPath,
    OpenFraction,
    PeriodField,
    Share,
    UrgencyCode,
    category_matches,
    library_covers,
    problems,
)


class Section(BaseModel):
    """A block of policy.yaml: unknown keys are typos, so they are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CalendarPolicy(Section):
    """Working hours and the local holiday arrangement on top of chinese-calendar."""

    working_periods: list[PeriodField] = Field(min_length=1)
    years: list[int] = []
    holidays: list[date] = []
    workdays: list[date] = []

    @field_validator("working_periods")
    @classmethod
    def _periods_in_order(cls, periods: list[tuple[time, time]]) -> list[tuple[time, time]]:
        problems(
            ((i,), f"{start:%H:%M}-{end:%H:%M} starts before the previous period ends; "
             "list periods in order, without overlap")
            for i, ((start, end), (_, previous_end)) in enumerate(zip(periods[1:], periods), start=1)
            if start < previous_end
        )
        return periods

    @field_validator("holidays", "workdays")
    @classmethod
    def _dates_in_known_years(cls, days: list[date], info: ValidationInfo) -> list[date]:
        if "years" not in info.data:
            return days
        declared = set(info.data["years"])
        found: list[tuple[KeyPath, str]] = [
            ((i,), f"{day} is in {day.year}, which chinese-calendar does not cover and calendar.years does not "
             f"list; add {day.year} to calendar.years once its whole arrangement is entered")
            for i, day in enumerate(days)
            if day.year not in declared and not library_covers(day.year)
        ]
        holidays = set(info.data.get("holidays", ())) if info.field_name == "workdays" else set()
        found += [
            ((i,), f"{day} is also listed under calendar.holidays; a day is either a holiday or a make-up working day")
            for i, day in enumerate(days)
            if day in holidays
        ]
        problems(found)
        return days

    @model_validator(mode="after")
    def _entered_years_have_holidays(self) -> "CalendarPolicy":
        entered = {day.year for day in self.holidays}
        problems(
            (("years", i), f"{year} is listed as entered but calendar.holidays has no day in {year}; "
             "enter its holidays (and make-up working days under calendar.workdays) first")
            for i, year in enumerate(self.years)
            if year not in entered and not library_covers(year)
        )
        return self

    def day_minutes(self) -> float:
        """Working minutes in one working day."""
        return sum(
            (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute) for start, end in self.working_periods
        )


class StageLimits(Section):
    """The time allowed for each stage of an order."""

    sign_for: AmountField
    handling: AmountField
    return_decision: AmountField
    review: AmountField
    return_visit: AmountField
    extension_decision: AmountField


class RuleMatch(Section):
    """Which orders a time-limit rule applies to; an omitted key matches any value."""

    item_type: ItemTypeCode | None = None
    urgency: UrgencyCode | None = None
    category: Code | None = None

    def matches(self, *, item_type: str, urgency: str, category: str | None) -> bool:
        """Whether an order with these attributes falls under this rule."""
        return (
            (self.item_type is None or self.item_type == item_type)
            and (self.urgency is None or self.urgency == urgency)
            and (self.category is None or category_matches(self.category, category))
        )


class LimitRule(Section):
    """Overrides for the orders matched by `when`; stages it leaves out fall through to later rules."""

    when: RuleMatch
    sign_for: AmountField | None = None
    handling: AmountField | None = None
    return_decision: AmountField | None = None
    review: AmountField | None = None
    return_visit: AmountField | None = None
    extension_decision: AmountField | None = None

    @model_validator(mode="after")
    def _sets_something(self) -> "LimitRule":
        if all(getattr(self, stage) is None for stage in STAGE_NAMES):
            problems([((), "the rule sets no time limit; add at least one of " + ", ".join(STAGE_NAMES))])
        return self


class TimeLimits(Section):
    """Default limits per stage, rules that override them, and when the warning fires."""

    default: StageLimits
    rules: list[LimitRule] = []
    warning_fraction: OpenFraction


class RouteRule(Section):
    """Orders of a category (and optionally a district) go to a lead unit with assisting units."""

    category: Code | None = None
    district: Code | None = None
    lead: Code
    assist: list[Code] = []

    @model_validator(mode="after")
    def _narrow_and_distinct(self) -> "RouteRule":
        found: list[tuple[KeyPath, str]] = []
        if self.category is None and self.district is None:
            found.append(((), "the rule would catch every order; give it a category, a district or both"))
        found += [
            (("assist", i), f'"{unit}" is already the lead unit; a unit cannot assist itself')
            for i, unit in enumerate(self.assist)
            if unit == self.lead
        ]
        problems(found)
        return self

    def matches(self, category: str, district: str | None) -> bool:
        """Whether an order of this category and district is routed by this rule."""
        return (self.category is None or category_matches(self.category, category)) and (
            self.district is None or self.district == district
        )


class Routing(Section):
    """The routing catalogue: the first matching rule wins, else the fallback unit."""

    rules: list[RouteRule] = []
    fallback: Code


class Rung(Section):
    """One step of the escalation ladder."""

    rung: Literal["warning", "overdue", "case", "notice"]
    after: AmountField | None = None


class BuckPassing(Section):
    """What opens a buck-passing supervision case."""

    max_returns: int = Field(ge=1)
    max_units: int = Field(ge=2)
    ping_pong: bool
    max_redos: int = Field(ge=1)
    on_site_categories: list[Code] = []


class Escalation(Section):
    """The ladder climbed by a late stage, and the buck-passing thresholds."""

    ladder: list[Rung] = Field(min_length=1)
    buck_passing: BuckPassing

    @field_validator("ladder")
    @classmethod
    def _rungs_in_order(cls, ladder: list[Rung]) -> list[Rung]:
        found: list[tuple[KeyPath, str]] = []
        order = ", ".join(RUNG_ORDER)
        previous = -1
        for i, step in enumerate(ladder):
            rank = RUNG_ORDER.index(step.rung)
            if rank <= previous:
                wrong = "is listed twice" if rank == previous else f'comes after "{RUNG_ORDER[previous]}"'
                found.append(((i, "rung"), f'"{step.rung}" {wrong}; list rungs once each, in the order {order}'))
            previous = max(previous, rank)
            if step.rung in ("warning", "overdue") and step.after is not None:
                when = "at time_limits.warning_fraction of the limit" if step.rung == "warning" else "at the deadline"
                found.append(((i, "after"), f'the {step.rung} rung fires {when}; remove "after"'))
            if step.rung in ("case", "notice") and step.after is None:
                found.append(((i,), f'the {step.rung} rung needs "after", the delay past the deadline; {AMOUNT_HINT}'))
        problems(found)
        return ladder


class Stages(Section):
    """Optional stages of an item type."""

    review: Literal["human", "auto"]
    return_visit_share: Share


class StagesPolicy(Section):
    """Optional stages by item type, with a default for the others."""

    default: Stages
    by_item_type: dict[ItemTypeCode, Stages] = {}


class Extensions(Section):
    """How much extra time a unit may ask for on one order."""

    max_requests: int = Field(ge=0)
    max_total: AmountField


class Scorecard(Section):
    """Weights of the buck-passing index and the threshold for the circulated notice."""

    weights: dict[str, float]
    notice_threshold: float = Field(ge=0)

    @field_validator("weights")
    @classmethod
    def _known_weights(cls, weights: dict[str, float]) -> dict[str, float]:
        expected = ", ".join(SCORE_KEYS)
        found: list[tuple[KeyPath, str]] = [
            ((key,), f'"{key}" is not a scorecard rate; expected one of {expected}')
            for key in weights
            if key not in SCORE_KEYS
        ]
        found += [
            ((key,), f"{value} is negative; a weight is 0 or more") for key, value in weights.items() if value < 0
        ]
        missing = [key for key in SCORE_KEYS if key not in weights]
        if missing:
            found.append(((), "missing " + ", ".join(missing) + "; give every rate a weight (0 leaves it out)"))
        if not found and not any(weights.values()):
            found.append(((), "every weight is 0; give at least one rate a positive weight"))
        problems(found)
        return weights


class HotSpots(Section):
    """When a category and district count as a hot spot."""

    window_days: int = Field(ge=1)
    surge_factor: float = Field(gt=1)
    min_count: int = Field(ge=1)


class KnowledgeBase(Section):
    """How often units must review their knowledge-base entries, and what it may answer directly."""

    review_every: AmountField
    answerable_item_types: list[ItemTypeCode] = []


class Recipients(Section):
    """Who receives supervision mail and reports."""

    supervisors: list[Email] = Field(min_length=1)
    report_leaders: list[Email] = []
