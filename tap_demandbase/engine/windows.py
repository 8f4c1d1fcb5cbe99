"""Dates of a sync: bookmarks read as UTC days, and the range cut into windows."""

from __future__ import annotations

import datetime
import typing as t

import pendulum

from tap_demandbase.errors import BadStateError, quoted

if t.TYPE_CHECKING:
    from collections.abc import Mapping


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


def first_day(
    stream: str, state: Mapping[str, t.Any], replication_key: str | None, start_date: str | None
) -> datetime.date | None:
    """Return the UTC day a sync starts on: the bookmark's day (read again: the overlap day)
    or start_date's, whichever is later; None when neither is set (all rows).

    Raises:
        BadStateError: the bookmark is not a date (named with its state key).
    """
    bookmark = state.get("replication_key_value")
    if state.get("replication_key") != replication_key:
        bookmark = None
    if bookmark not in (None, "") and not is_date(bookmark):
        msg = (
            f"the bookmark in the state (bookmarks.{stream}.replication_key_value = "
            f"{quoted(bookmark)}) is not a date. Fix it or remove it from the state file given "
            "with --state, then run again."
        )
        raise BadStateError(msg)
    days = [utc_date(value) for value in (bookmark, start_date) if value]
    return max(days) if days else None
