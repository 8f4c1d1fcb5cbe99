"""The delete check: now and then, a stream's rows are all exported again under a new table
version, so that the target can tell which of its rows are gone at the source.

No Demandbase API says a record was deleted or merged away. A check exports every row of the
stream (from start_date, in the stream's windows), each record carrying the new version; once
all of them are emitted, the stream says the version is complete (Singer's ACTIVATE_VERSION), and
SQL targets mark deleted, or delete, the rows of older versions. Records of the runs between
two checks carry the last complete version, so a row only ever seen in incremental runs is
judged by the next check like any other. A check that does not finish activates nothing: the
next run checks again.
"""

from __future__ import annotations

import datetime
import typing as t

from tap_demandbase.timestamps import state_datetime

if t.TYPE_CHECKING:
    from collections.abc import Mapping, MutableMapping

#: Stream state key: the last complete table version and when its check ended.
DELETE_CHECK_KEY = "delete_check"
#: Default of delete_check_days.
DEFAULT_CHECK_DAYS = 7.0


def activated_version(state: Mapping[str, t.Any]) -> int | None:
    """Return the stream's last complete table version (None: never checked)."""
    mark = state.get(DELETE_CHECK_KEY)
    version = mark.get("version") if isinstance(mark, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def check_due(
    state: Mapping[str, t.Any], every: datetime.timedelta, now: datetime.datetime
) -> bool:
    """Whether the stream's delete check is due: never done, or done ``every`` ago or more
    (``every`` 0: on every run).
    """
    mark = state.get(DELETE_CHECK_KEY)
    done = state_datetime(mark.get("at")) if isinstance(mark, dict) else None
    return done is None or activated_version(state) is None or now - done >= every


def new_version(now: datetime.datetime, state: Mapping[str, t.Any]) -> int:
    """Return the version of a new check: milliseconds since the epoch, above the last one."""
    version = int(now.timestamp() * 1000)
    last = activated_version(state)
    return max(version, last + 1) if last is not None else version


def mark_checked(state: MutableMapping[str, t.Any], version: int, now: datetime.datetime) -> None:
    """Keep the version a finished check made complete, and when."""
    state[DELETE_CHECK_KEY] = {"version": version, "at": now.isoformat()}
