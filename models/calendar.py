"""Working-time arithmetic on the Chinese public-holiday calendar: pure functions, no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar

from duban.errors import CalendarNotCovered

__all__ = ["Amount", "CalendarNotCovered", "TimeUnit", "WorkCalendar", "add_working_time"]

_ONE_DAY = timedelta(days=1)
_US_PER_SECOND = 1_000_000
_US_PER_HOUR = 3600 * _US_PER_SECOND


class TimeUnit(StrEnum):
    """How an amount of time is counted."""

    WORKING_HOURS = "working_hours"
    WORKING_DAYS = "working_days"
    HOURS = "hours"
    MINUTES = "minutes"


_UNITS = frozenset(u.value for u in TimeUnit)
_ACCEPTED = (
    "a positive number, one space and a unit among "
    + ", ".join(u.value for u in TimeUnit)
    + ' (for example "5 working_days", "2 working_hours", "30 minutes", "1.5 hours")'
)


@dataclass(frozen=True)
class Amount:
    """A time limit such as "5 working_days"; the value is always positive."""

    value: float
    unit: TimeUnit

    def __post_init__(self) -> None:
        if self.unit not in _UNITS:
            raise ValueError(f"unknown time unit {self.unit!r}: expected {_ACCEPTED}")
        value = float(self.value)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"time amount must be positive, got {self.value!r}: expected {_ACCEPTED}")
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "unit", TimeUnit(self.unit))

    @classmethod
    def parse(cls, text: str) -> Amount:
        """Read "5 working_days", "2 working_hours", "30 minutes" or "1.5 hours"."""
        parts = str(text).split()
        if len(parts) != 2:
            raise ValueError(f"cannot read time amount {text!r}: expected {_ACCEPTED}")
        number, unit = parts[0], parts[1].lower()
        # "1 working_day" is how people write it in policy.yaml; accept the singular.
        if unit not in _UNITS and unit + "s" in _UNITS:
            unit += "s"
        try:
            value = float(number)
        except ValueError:
            raise ValueError(
                f"cannot read time amount {text!r}: {number!r} is not a number; expected {_ACCEPTED}"
            ) from None
        if unit not in _UNITS:
            raise ValueError(f"cannot read time amount {text!r}: unknown unit {parts[1]!r}; expected {_ACCEPTED}")
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"cannot read time amount {text!r}: the number must be positive; expected {_ACCEPTED}")
        return cls(value, TimeUnit(unit))

    def __str__(self) -> str:
        number = str(int(self.value)) if self.value.is_integer() else repr(self.value)
        return f"{number} {self.unit.value}"


@lru_cache(maxsize=None)
def _library_covers(year: int) -> bool:
    """Whether chinese-calendar has the official arrangement for `year`."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def _time_us(t: time | datetime) -> int:
    """Microseconds since local midnight."""
    return ((t.hour * 60 + t.minute) * 60 + t.second) * _US_PER_SECOND + t.microsecond


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}; "
            "attach a zone, for example ZoneInfo('Asia/Shanghai') or UTC"
        )


@dataclass(frozen=True)
class WorkCalendar:
    """Working days (official arrangement plus local overrides) and the working periods within each."""

    tz: ZoneInfo = ZoneInfo("Asia/Shanghai")
    periods: tuple[tuple[time, time], ...] = ((time(9, 0), time(12, 0)), (time(13, 30), time(17, 30)))
    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    extra_years: frozenset[int] = frozenset()
    # (start, end, working microseconds before start) per period, in microseconds since midnight.
    _spans: tuple[tuple[int, int, int], ...] = field(init=False, repr=False, compare=False)
    _day_us: int = field(init=False, repr=False, compare=False)
    # The year replay asks about the same few hundred dates millions of times.
    _workdays: dict[date, bool] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        periods = tuple((start, end) for start, end in self.periods)
        if not periods:
            raise ValueError("a working calendar needs at least one working period")
        spans, before, previous_end = [], 0, -1
        for start, end in periods:
            start_us, end_us = _time_us(start), _time_us(end)
            if start_us >= end_us:
                raise ValueError(f"working period {start}-{end} must end after it starts")
            if start_us < previous_end:
                raise ValueError(f"working periods must be sorted and must not overlap: {periods}")
            spans.append((start_us, end_us, before))
            before += end_us - start_us
            previous_end = end_us
        object.__setattr__(self, "periods", periods)
        object.__setattr__(self, "extra_holidays", frozenset(self.extra_holidays))
        object.__setattr__(self, "extra_workdays", frozenset(self.extra_workdays))
        object.__setattr__(self, "extra_years", frozenset(self.extra_years))
        object.__setattr__(self, "_spans", tuple(spans))
        object.__setattr__(self, "_day_us", before)

    def covers(self, year: int) -> bool:
        """Whether working days of `year` are known (chinese-calendar or entered in policy.yaml)."""
        return year in self.extra_years or _library_covers(year)

    def is_workday(self, d: date) -> bool:
        """Whether `d` is a working day; raises CalendarNotCovered for a year nobody entered."""
        known = self._workdays.get(d)
        if known is None:
            known = self._workdays[d] = self._lookup(d)
        return known

    def _lookup(self, d: date) -> bool:
        if d in self.extra_workdays:
            return True
        if d in self.extra_holidays:
            return False
        if _library_covers(d.year):
            return chinese_calendar.is_workday(d)
        if d.year in self.extra_years:
            return d.weekday() < 5
        raise CalendarNotCovered(d.year)

    def working_seconds_between(self, start: datetime, end: datetime) -> float:
        """Working seconds from `start` to `end` (0 when `end` is not after `start`)."""
        _require_aware("start", start)
        _require_aware("end", end)
        if end <= start:
            return 0.0
        first, offset = self._position(start)
        last, end_offset = self._end_position(end)
        if first == last:
            return (end_offset - offset) / _US_PER_SECOND
        total = self._day_us - offset + end_offset
        d = self._next_workday(first)
        while d < last:
            total += self._day_us
            d = self._next_workday(d)
        return total / _US_PER_SECOND

    def _next_workday(self, d: date) -> date:
        cache = self._workdays
        d += _ONE_DAY
        while not (cache[d] if d in cache else self.is_workday(d)):
            d += _ONE_DAY
        return d

    def _position(self, moment: datetime) -> tuple[date, int]:
        """Working day and working microseconds already elapsed in it; outside working time, the next period start."""
        local = moment.astimezone(self.tz)
        d = local.date()
        if self.is_workday(d):
            now = _time_us(local)
            for start, end, before in self._spans:
                if now < start:
                    return d, before
                if now < end:
                    return d, before + now - start
        return self._next_workday(d), 0

    def _end_position(self, moment: datetime) -> tuple[date, int]:
        """As _position, but a moment after a working day's last period is the end of that day: counting up to
        it needs no later day (which may fall in a year nobody has entered yet, for a deadline of 31 December)."""
        local = moment.astimezone(self.tz)
        if _time_us(local) >= self._spans[-1][1] and self.is_workday(local.date()):
            return local.date(), self._day_us
        return self._position(moment)

    def _instant(self, d: date, offset: int, at_period_end: bool) -> datetime:
        """UTC instant `offset` working microseconds into workday `d`; a boundary gives a period end if asked."""
        for start, end, before in self._spans:
            after = before + end - start
            if offset < after or (at_period_end and offset == after):
                break
        local = datetime(d.year, d.month, d.day, tzinfo=self.tz) + timedelta(microseconds=start + offset - before)
        return local.astimezone(UTC)

    def _advance(self, d: date, offset: int, amount: int) -> datetime:
        """Consume `amount` working microseconds from position (d, offset)."""
        day_us = self._day_us
        if amount > day_us - offset:
            amount -= day_us - offset
            d = self._next_workday(d)
            while amount > day_us:
                amount -= day_us
                d = self._next_workday(d)
            offset = 0
        return self._instant(d, offset + amount, at_period_end=True)


def add_working_time(start: datetime, amount: Amount, calendar: WorkCalendar) -> datetime:
    """The aware UTC instant `amount` after `start` on `calendar`.

    WORKING_HOURS counts only time inside working periods of working days; a result exactly at a
    period end is that period end (12:00, 17:30), not the next period start.
    WORKING_DAYS: a start outside working time first moves to the next working period start. The
    whole part N then gives the same position in working time N working days later (the same clock
    time for a start inside working time), and a fraction f adds f times the day's working time
    like WORKING_HOURS. HOURS and MINUTES are elapsed time, calendar ignored.
    """
    _require_aware("start", start)
    unit, value = amount.unit, amount.value
    if unit is TimeUnit.HOURS:
        return start.astimezone(UTC) + timedelta(hours=value)
    if unit is TimeUnit.MINUTES:
        return start.astimezone(UTC) + timedelta(minutes=value)
    d, offset = calendar._position(start)
    if unit is TimeUnit.WORKING_HOURS:
        return calendar._advance(d, offset, round(value * _US_PER_HOUR))
    whole = int(value)
    for _ in range(whole):
        d = calendar._next_workday(d)
    rest = round((value - whole) * calendar._day_us)
    if rest == 0:
        return calendar._instant(d, offset, at_period_end=False)
    return calendar._advance(d, offset, rest)
