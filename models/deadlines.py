"""When each rung of the escalation ladder falls due for an order's current stage."""

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from models.calendar import Amount, TimeUnit, WorkCalendar, add_working_time


class RungLike(Protocol):
    rung: str
    after: Amount | None


def rung_time(
    rung: RungLike, *, started: datetime, due: datetime, warning_fraction: float, calendar: WorkCalendar,
    working: bool = False,
) -> datetime:
    """The moment one rung fires: a share of the limit for the warning, the deadline or a delay after it."""
    if rung.rung == "warning":
        # A limit in working time is shared out in working time, so a warning never lands on a
        # holiday or a night in between; clock limits (and stages with no working time) in clock time.
        seconds = calendar.working_seconds_between(started, due) if working else 0.0
        if seconds > 0:
            return add_working_time(started, Amount(seconds * warning_fraction / 3600, TimeUnit.WORKING_HOURS),
                                    calendar)
        return started + (due - started) * warning_fraction
    if rung.after is None:
        return due
    return add_working_time(due, rung.after, calendar)


def next_checkpoint(
    *,
    started: datetime | None,
    due: datetime | None,
    fired: int,
    ladder: Sequence[RungLike],
    warning_fraction: float,
    calendar: WorkCalendar,
    working: bool = False,
) -> datetime | None:
    """The time of the first rung not fired yet, or None once the ladder is climbed or nothing is due."""
    if started is None or due is None or fired >= len(ladder):
        return None
    return rung_time(ladder[fired], started=started, due=due, warning_fraction=warning_fraction, calendar=calendar,
                     working=working)
