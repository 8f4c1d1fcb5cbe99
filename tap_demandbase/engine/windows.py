"""Dates of a sync: bookmarks read as UTC days, and the range cut into windows."""

from __future__ import annotations

import datetime
import typing as t

from tap_demandbase.errors import BadStateError, quoted
from tap_demandbase.timestamps import is_date, utc_date

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
