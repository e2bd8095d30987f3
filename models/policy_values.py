"""Policy values as an admin writes them (time limits, working periods, codes, addresses, shares), each
refused with the value shown as written and a hint of what to write instead."""

import math
import re
from collections.abc import Iterable
from datetime import time
from typing import Annotated, Any

from pydantic import AfterValidator, PlainSerializer, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from models.calendar import Amount, WorkCalendar
from models.enums import ItemType, Urgency

AMOUNT_HINT = 'write e.g. "5 working_days", "8 working_hours" or "30 minutes"'
STAGE_NAMES = ("sign_for", "handling", "return_decision", "review", "return_visit", "extension_decision")
RUNG_ORDER = ("warning", "overdue", "case", "notice")
SCORE_KEYS = (
    "return_rate",
    "rejected_return_rate",
    "overdue_rate",
    "redo_rate",
    "false_completion_rate",
    "late_sign_rate",
    "kb_stale_rate",
)
# A calendar with no local entries answers "does chinese-calendar know this year?".
_LIBRARY_CALENDAR = WorkCalendar()
_CODE = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)*")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PERIOD = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")

KeyPath = tuple[str | int, ...]


def shown(value: object) -> str:
    """A value as an admin wrote it, quoted when it is text."""
    return f'"{value}"' if isinstance(value, str) else str(value)


def problems(found: Iterable[tuple[KeyPath, str]]) -> None:
    """Raise one error carrying several (sub-path, message) problems, so each gets its own line and key."""
    listed = list(found)
    if listed:
        raise PydanticCustomError("policy", "{summary}", {"summary": listed[0][1], "problems": listed})


def library_covers(year: int) -> bool:
    """Whether the installed chinese-calendar has the official arrangement for `year`."""
    return _LIBRARY_CALENDAR.covers(year)


def _refused(template: str, value: object, **context: str) -> PydanticCustomError:
    """An error whose message shows the refused value as the admin wrote it."""
    return PydanticCustomError("policy_value", template, {"value": shown(value), **context})


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _amount(value: object) -> Amount:
    if isinstance(value, Amount):
        return value
    parts = value.split() if isinstance(value, str) else []
    if len(parts) == 2:
        if _number(parts[0]) <= 0:
            raise _refused("{value}: a time limit must be more than zero; " + AMOUNT_HINT, value)
        try:
            return Amount.parse(value)
        except ValueError:
            pass
    raise _refused("{value} is not a time limit; " + AMOUNT_HINT, value)


def _read_period(value: object) -> tuple[time, time] | None:
    match = _PERIOD.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    try:
        return time(int(match[1]), int(match[2])), time(int(match[3]), int(match[4]))
    except ValueError:
        return None


def _period(value: object) -> tuple[time, time]:
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(t, time) for t in value):
        period = value
    else:
        period = _read_period(value)
    if period is None:
        raise _refused('{value} is not a working period; write e.g. "09:00-12:00"', value)
    if period[0] >= period[1]:
        raise _refused("{value}: a working period must end after it starts", value)
    return period


def _code(value: str) -> str:
    if not _CODE.fullmatch(value):
        raise _refused(
            "{value} is not a code; use lowercase letters, digits and underscores, dotted for a subcategory "
            '(e.g. "city_appearance_life_services.manhole_covers")',
            value,
        )
    return value


def _email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise _refused('{value} is not an email address; write e.g. "duban@example.gov.cn"', value)
    return value


def _choice(enum: type[ItemType] | type[Urgency], what: str) -> PlainValidator:
    allowed = ", ".join(member.value for member in enum)

    def check(value: object) -> Any:
        try:
            return enum(value)
        except ValueError:
            template = "{value} is not {what}; expected one of {allowed}"
            raise _refused(template, value, what=what, allowed=allowed) from None

    return PlainValidator(check)


def _fraction(value: float) -> float:
    if not 0 < value < 1:
        raise _refused("{value} is out of range; expected a number between 0 and 1, both excluded (0.8 = 80%)", value)
    return value


def _share(value: float) -> float:
    if not 0 <= value <= 1:
        raise _refused("{value} is out of range; expected a share from 0 to 1 (0.3 = 30%, 1 = all)", value)
    return value


AmountField = Annotated[
    Amount, PlainValidator(_amount), PlainSerializer(str, return_type=str), WithJsonSchema({"type": "string"})
]
PeriodField = Annotated[
    tuple[time, time],
    PlainValidator(_period),
    PlainSerializer(lambda p: f"{p[0]:%H:%M}-{p[1]:%H:%M}", return_type=str),
    WithJsonSchema({"type": "string"}),
]
Code = Annotated[str, AfterValidator(_code)]
Email = Annotated[str, AfterValidator(_email)]
ItemTypeCode = Annotated[ItemType, _choice(ItemType, "an item type"), PlainSerializer(str, return_type=str)]
UrgencyCode = Annotated[Urgency, _choice(Urgency, "an urgency"), PlainSerializer(str, return_type=str)]
OpenFraction = Annotated[float, AfterValidator(_fraction)]
Share = Annotated[float, AfterValidator(_share)]


def category_matches(prefix: str, category: str | None) -> bool:
    """Whether `category` is `prefix` or one of its subcategories."""
    return category is not None and (category == prefix or category.startswith(prefix + "."))
