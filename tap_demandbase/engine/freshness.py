"""Feeds that stop: how long a stream's bookmark has stood still, across runs.

Demandbase's own sync from the CRM can stall, and a tap that exits 0 every day while nothing new
arrives tells nobody. So the stream state keeps when the bookmark last changed value
(``bookmark_moved_at``, from the engine's clock), and a run whose stream's bookmark has not
moved for longer than ``freshness_warn_hours`` says so in one WARNING. Pure functions of the
values, the moment and the limit: no Singer (the stream hands in its bookmark's value).
"""

from __future__ import annotations

import datetime
import typing as t

from tap_demandbase.timestamps import rfc3339, state_datetime, utc_date

if t.TYPE_CHECKING:
    from collections.abc import MutableMapping

#: Stream state key: when the bookmark last changed value (RFC 3339, UTC).
MOVED_AT_KEY = "bookmark_moved_at"
#: Default of freshness_warn_hours: three days without a new value (0 turns the warning off).
DEFAULT_WARN_HOURS = 72.0


def moved_at(stream_state: t.Mapping[str, t.Any]) -> datetime.datetime | None:
    """Return when the stream's bookmark last moved, if the state says (and can be read)."""
    return state_datetime(stream_state.get(MOVED_AT_KEY))


def note_bookmark(
    stream_state: MutableMapping[str, t.Any],
    before: t.Any,
    after: t.Any,
    now: datetime.datetime,
) -> bool:
    """Note ``now`` as when the bookmark moved if its value changed (``before`` → ``after``),
    or if it has a value and no moment is known yet (a state of an older version: the clock
    starts now). Return whether the state changed.
    """
    if after is None or (after == before and moved_at(stream_state) is not None):
        return False
    stream_state[MOVED_AT_KEY] = rfc3339(now)
    return True


def stale_bookmark_line(
    stream: str,
    bookmark: t.Any,
    stream_state: t.Mapping[str, t.Any],
    now: datetime.datetime,
    hours: float,
) -> str | None:
    """Return the WARNING of a bookmark that has not moved for more than ``hours`` (None: it
    has, the check is off, or the stream has no bookmark or no moment yet).
    """
    since = moved_at(stream_state)
    if hours <= 0 or bookmark is None or since is None:
        return None
    still = now - since
    if still <= datetime.timedelta(hours=hours):
        return None
    return (
        f"Stream '{stream}': its bookmark has not moved for {_duration(still)} (since "
        f"{rfc3339(since)}): its newest value is of {_day(bookmark)}. The source may have "
        "stopped receiving data (a stalled CRM sync in Demandbase, say): check it there. "
        f"freshness_warn_hours={hours:g} (0 turns this warning off)."
    )


def _duration(span: datetime.timedelta) -> str:
    """Return a span as people read it: hours up to two days, then days."""
    hours = span.total_seconds() / 3600
    return f"{hours:.1f} hours" if hours < 48 else f"{hours / 24:.1f} days"


def _day(value: t.Any) -> str:
    """Return the UTC day of a bookmark value (its text, if it is not a date or date-time)."""
    try:
        return utc_date(str(value)).isoformat()
    except (ValueError, TypeError, OverflowError):
        return str(value)
