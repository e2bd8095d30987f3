"""Work-order numbers: city prefix, local date, a per-day sequence (ZZ20210314-000123)."""

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from duban.settings import get_settings
from models.records import OrderCounter

LOCAL = ZoneInfo("Asia/Shanghai")


def allocate_numbers(session: Session, at: datetime, count: int = 1) -> list[str]:
    """Reserve `count` consecutive numbers for the local day of `at`; safe across processes."""
    prefix = f"{get_settings().city_code}{at.astimezone(LOCAL):%Y%m%d}"
    last = session.scalar(
        update(OrderCounter).where(OrderCounter.prefix == prefix)
        .values(last=OrderCounter.last + count).returning(OrderCounter.last)
    )
    if last is None:
        try:
            with session.begin_nested():
                session.execute(insert(OrderCounter).values(prefix=prefix, last=count))
            last = count
        except IntegrityError:
            return allocate_numbers(session, at, count)
    return [f"{prefix}-{n:06d}" for n in range(last - count + 1, last + 1)]


def peek_last(session: Session, prefix: str) -> int:
    """The last number handed out under a prefix (0 when none)."""
    return session.scalar(select(OrderCounter.last).where(OrderCounter.prefix == prefix)) or 0
