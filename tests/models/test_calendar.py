"""Working-time arithmetic around Spring Festival and National Day, make-up working days included."""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from models.calendar import Amount, CalendarNotCovered, TimeUnit, WorkCalendar, add_working_time

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


@pytest.mark.parametrize(
    ("day", "weekday", "workday"),
    [
        ("2021-02-07", "Sun", True),  # make-up day before Spring Festival 2021
        ("2021-02-10", "Wed", True),
        ("2021-02-11", "Thu", False),
        ("2021-02-17", "Wed", False),
        ("2021-02-20", "Sat", True),
        ("2021-09-18", "Sat", True),
        ("2021-10-01", "Fri", False),
        ("2021-10-07", "Thu", False),
        ("2021-10-09", "Sat", True),
        ("2024-02-04", "Sun", True),
        ("2024-02-10", "Sat", False),
        ("2024-02-16", "Fri", False),
        ("2024-02-18", "Sun", True),
        ("2024-09-29", "Sun", True),
        ("2024-10-07", "Mon", False),
        ("2024-10-12", "Sat", True),
    ],
)
def test_official_arrangement_is_what_the_cases_below_assume(day: str, weekday: str, workday: bool) -> None:
    d = date.fromisoformat(day)
    assert d.strftime("%a") == weekday
    assert chinese_calendar.is_workday(d) is workday
    assert CAL.is_workday(d) is workday


@pytest.mark.parametrize(
    ("start", "amount", "due"),
    [
        # Spring Festival 2021: Feb 11-17 off, Sat Feb 20 worked.
        (at(2021, 2, 10, 16), "5 working_days", at(2021, 2, 23, 16)),
        (at(2021, 2, 10, 17), "2 working_hours", at(2021, 2, 18, 10, 30)),
        (at(2021, 2, 20, 10), "1 working_days", at(2021, 2, 22, 10)),
        (at(2021, 2, 20, 16, 30), "2 working_hours", at(2021, 2, 22, 10)),
        (at(2021, 2, 7, 9), "4 working_hours", at(2021, 2, 7, 14, 30)),
        # National Day 2021: Sat Sep 18 worked, Sep 19-21 and Oct 1-7 off, Sat Oct 9 worked.
        (at(2021, 9, 17, 17), "1 working_hours", at(2021, 9, 18, 9, 30)),
        (at(2021, 9, 18, 16), "1 working_days", at(2021, 9, 22, 16)),
        (at(2021, 9, 30, 15), "3 working_days", at(2021, 10, 11, 15)),
        # Spring Festival 2024: Sun Feb 4 worked, Feb 10-17 off, Sun Feb 18 worked.
        (at(2024, 2, 2, 16), "1 working_days", at(2024, 2, 4, 16)),
        (at(2024, 2, 9, 16), "2 working_days", at(2024, 2, 19, 16)),
        # National Day 2024: Sun Sep 29 worked, Oct 1-7 off, Sat Oct 12 worked.
        (at(2024, 9, 30, 17), "2 working_hours", at(2024, 10, 8, 10, 30)),
        (at(2024, 9, 27, 10), "3 working_days", at(2024, 10, 8, 10)),
        (at(2024, 9, 27, 10), "10 working_days", at(2024, 10, 16, 10)),
        # An ordinary week (Mon 2024-03-04): lunch break, period ends, starts outside hours.
        (at(2024, 3, 4, 11), "2 working_hours", at(2024, 3, 4, 14, 30)),
        (at(2024, 3, 4, 10), "2 working_hours", at(2024, 3, 4, 12)),
        (at(2024, 3, 4, 15, 30), "2 working_hours", at(2024, 3, 4, 17, 30)),
        (at(2024, 3, 4, 12, 30), "1 working_hours", at(2024, 3, 4, 14, 30)),
        (at(2024, 3, 4, 20), "1 working_hours", at(2024, 3, 5, 10)),
        (at(2024, 3, 4, 7), "1 working_days", at(2024, 3, 5, 9)),
        (at(2024, 3, 4, 12, 15), "1 working_days", at(2024, 3, 5, 13, 30)),
        (at(2024, 3, 4, 20), "1 working_days", at(2024, 3, 6, 9)),
        (at(2024, 3, 2, 10), "1 working_days", at(2024, 3, 5, 9)),
        (at(2024, 3, 4, 9), "0.5 working_days", at(2024, 3, 4, 14)),
        (at(2024, 3, 4, 14), "1.5 working_days", at(2024, 3, 5, 17, 30)),
        (at(2024, 3, 4, 9), "14 working_hours", at(2024, 3, 5, 17, 30)),
        # Plain clock time ignores the holiday.
        (at(2021, 2, 10, 16), "30 minutes", at(2021, 2, 10, 16, 30)),
        (at(2021, 2, 10, 16), "1.5 hours", at(2021, 2, 10, 17, 30)),
        (at(2021, 2, 10, 16), "24 hours", at(2021, 2, 11, 16)),
    ],
)
def test_add_working_time(start: datetime, amount: str, due: datetime) -> None:
    result = add_working_time(start, Amount.parse(amount), CAL)
    assert result == due
    assert result.tzinfo is UTC


def test_start_in_another_zone_is_read_as_the_same_instant() -> None:
    start = datetime(2021, 2, 10, 8, 0, tzinfo=UTC)  # 16:00 in Shanghai
    assert add_working_time(start, Amount(5, TimeUnit.WORKING_DAYS), CAL) == datetime(2021, 2, 23, 8, 0, tzinfo=UTC)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_working_time(datetime(2024, 3, 4, 9), Amount(1, TimeUnit.WORKING_HOURS), CAL)
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.working_seconds_between(at(2024, 3, 4, 9), datetime(2024, 3, 4, 10))


def test_2027_is_not_covered_until_entered() -> None:
    assert CAL.covers(2026) and not CAL.covers(2027) and not CAL.covers(2003)
    with pytest.raises(CalendarNotCovered, match="2027") as caught:
        add_working_time(at(2026, 12, 31, 16), Amount(5, TimeUnit.WORKING_DAYS), CAL)
    assert caught.value.year == 2027
    assert "policy.yaml" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_working_time_up_to_the_last_evening_of_a_covered_year_needs_no_later_year() -> None:
    # A deadline on 31 December after hours (an extension to that day): its warning is counted within 2026.
    # The default periods: 09:00-12:00 and 13:30-17:30, seven working hours.
    assert CAL.working_seconds_between(at(2026, 12, 31, 10), at(2026, 12, 31, 18)) == 6 * 3600
    assert CAL.working_seconds_between(at(2026, 12, 30, 18), at(2026, 12, 31, 23, 59)) == 7 * 3600
    with pytest.raises(CalendarNotCovered, match="2027"):
        CAL.working_seconds_between(at(2026, 12, 31, 9), at(2027, 1, 4, 9))


def test_2027_works_once_entered_in_policy() -> None:
    cal = WorkCalendar(extra_years=frozenset({2027}), extra_holidays=frozenset({date(2027, 1, 1)}))
    assert cal.covers(2027)
    assert not cal.is_workday(date(2027, 1, 1)) and cal.is_workday(date(2027, 1, 4))
    assert add_working_time(at(2026, 12, 31, 16), Amount(1, TimeUnit.WORKING_DAYS), cal) == at(2027, 1, 4, 16)


def test_local_overrides_beat_the_official_arrangement() -> None:
    saturday, monday = date(2024, 3, 2), date(2024, 3, 4)
    cal = WorkCalendar(extra_workdays=frozenset({saturday}), extra_holidays=frozenset({monday}))
    assert add_working_time(at(2024, 3, 1, 17), Amount(1, TimeUnit.WORKING_HOURS), cal) == at(2024, 3, 2, 9, 30)
    assert add_working_time(at(2024, 3, 2, 10), Amount(1, TimeUnit.WORKING_DAYS), cal) == at(2024, 3, 5, 10)
    both = WorkCalendar(extra_workdays=frozenset({monday}), extra_holidays=frozenset({monday}))
    assert both.is_workday(monday)


@pytest.mark.parametrize(
    ("start", "end", "seconds"),
    [
        (at(2024, 3, 4, 9), at(2024, 3, 4, 17, 30), 7 * 3600),
        (at(2024, 3, 4, 8), at(2024, 3, 4, 13), 3 * 3600),
        (at(2021, 2, 10, 16), at(2021, 2, 18, 10, 30), 3 * 3600),
        (at(2024, 9, 27, 10), at(2024, 10, 8, 10), 3 * 7 * 3600),
        (at(2024, 3, 4, 12), at(2024, 3, 4, 9), 0),
    ],
)
def test_working_seconds_between(start: datetime, end: datetime, seconds: int) -> None:
    assert CAL.working_seconds_between(start, end) == seconds


@pytest.mark.parametrize("hours", [0.25, 1, 3, 6.5, 7, 20, 100])
def test_working_seconds_between_inverts_working_hours(hours: float) -> None:
    start = at(2021, 2, 9, 11, 20)
    due = add_working_time(start, Amount(hours, TimeUnit.WORKING_HOURS), CAL)
    assert CAL.working_seconds_between(start, due) == hours * 3600


@pytest.mark.parametrize(
    "periods",
    [(), ((time(12), time(9)),), ((time(9), time(12)), (time(11), time(17)))],
)
def test_bad_working_periods_are_refused(periods: tuple) -> None:
    with pytest.raises(ValueError, match="period"):
        WorkCalendar(periods=periods)


@pytest.mark.parametrize("text", ["5 working_days", "2 working_hours", "30 minutes", "1.5 hours", "0.25 working_days"])
def test_amount_round_trips(text: str) -> None:
    amount = Amount.parse(text)
    assert str(amount) == text
    assert Amount.parse(str(amount)) == amount


def test_amount_parse_reads_singular_and_spacing() -> None:
    assert Amount.parse("  1 working_day ") == Amount(1.0, TimeUnit.WORKING_DAYS)
    assert Amount.parse("1 HOUR").unit is TimeUnit.HOURS


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "cannot read"),
        ("5", "cannot read"),
        ("5 working days", "cannot read"),
        ("five working_days", "not a number"),
        ("5 fortnights", "unknown unit 'fortnights'"),
        ("0 hours", "must be positive"),
        ("-1 hours", "must be positive"),
        ("nan hours", "must be positive"),
    ],
)
def test_amount_parse_explains_bad_input(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as caught:
        Amount.parse(text)
    assert "working_days" in str(caught.value) and "1.5 hours" in str(caught.value)
