"""Dates of a sync: bookmarks read as UTC days, and the range cut into windows."""

from __future__ import annotations

import datetime
import typing as t

import pendulum


def plan_windows(
    start: datetime.date, end: datetime.date, days: int | None
) -> list[tuple[datetime.date, datetime.date]]:
    """Split [start, end] (inclusive UTC days) into consecutive windows of ``days`` days.

    The windows are contiguous and cover the range exactly: each day is in exactly one.
    """
    if not days:
        return [(start, end)]
    windows = []
    while start <= end:
        last = min(start + datetime.timedelta(days=days - 1), end)
        windows.append((start, last))
        start = last + datetime.timedelta(days=1)
    return windows


def utc_date(value: str | datetime.datetime) -> datetime.date:
    """Return the UTC calendar date of a bookmark, start_date or end_date value.

    Raises:
        ValueError: The value is not a date or date-time.
    """
    moment: t.Any = pendulum.instance(value) if isinstance(value, datetime.datetime) else value
    if isinstance(moment, str):
        moment = pendulum.parse(moment)
    if isinstance(moment, datetime.datetime):
        return moment.astimezone(datetime.timezone.utc).date()
    if isinstance(moment, datetime.date):
        return moment
    raise ValueError(f"{value!r} is not a date")


def is_date(value: t.Any) -> bool:
    """Whether a bookmark is a date or date-time string."""
    if not isinstance(value, str):
        return False
    try:
        utc_date(value)
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def state_datetime(value: t.Any) -> datetime.datetime | None:
    """Read a timestamp the tap wrote into the state; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)
