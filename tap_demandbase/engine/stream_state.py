"""What the engine keeps in a stream's state besides the ledger, and how a run reads back a
state an earlier run (or another version) left: a part it cannot read only costs work, so it is
reported and done without (``unusable_state``), never a failure.
"""

from __future__ import annotations

import datetime
import typing as t
from dataclasses import dataclass

from tap_demandbase.engine.ledger import (
    AHEAD_KEY,
    LEDGER_KEY,
    SPLIT_WINDOW_KEY,
    filters_from_state,
    read_ahead,
    read_entry,
    read_split_window,
)
from tap_demandbase.timestamps import state_datetime

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from tap_demandbase.model import Filters


#: Stream state key: creation time of the last job this stream finished with (all its rows
#: emitted, or its result rejected as inconsistent). No older job is ever re-used.
LAST_JOB_KEY = "last_job_created_at"

#: Stream state key: the last day of the windows (all but the final one of a run) already
#: exported, so that a later run does not export finished windows, empty ones included, again.
WINDOWS_DONE_KEY = "windows_done"


def windows_done_day(value: t.Any) -> datetime.date:
    """Return the last day of the windows a ``windows_done`` mark says are done.

    Raises:
        ValueError: not a YYYY-MM-DD day, or the calendar's last (no window follows it).
    """
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a day")
    day = datetime.date.fromisoformat(value)
    if day == datetime.date.max:
        raise ValueError("no day follows it")
    return day


@dataclass(frozen=True)
class UnusableState:
    """A part of a stream's state, left by an earlier run, that the engine cannot read. Each
    only saves work (no row depends on it), so the run can do without it.
    """

    #: Its key in the stream's state, dotted below the top (``windows_done.through``).
    key: str
    value: t.Any
    #: What is wrong with it (``is not a date``).
    problem: str
    #: What the run does without it.
    without: str

    @property
    def top_key(self) -> str:
        """Return the key of the stream's state that holds it (what is dropped)."""
        return self.key.split(".", 1)[0]


def unusable_state(stream_state: Mapping[str, t.Any]) -> list[UnusableState]:
    """Return the parts of a stream's state the engine cannot read (null counts as absent)."""
    value = stream_state.get
    again = "finished windows are exported again from the bookmark's day"
    checks: list[tuple[str, t.Any, bool, str, str]] = []
    if value(LEDGER_KEY) is not None:
        readable = read_entry(stream_state) is not None
        problem = "is not an export job this version can read"
        without = "its job is not resumed (an equivalent job may be re-used)"
        checks.append((LEDGER_KEY, value(LEDGER_KEY), readable, problem, without))
    if value(AHEAD_KEY) is not None:
        readable = read_ahead(stream_state) is not None
        problem = "is not a list of export jobs this version can read"
        without = "those jobs are not resumed (equivalent jobs may be re-used)"
        checks.append((AHEAD_KEY, value(AHEAD_KEY), readable, problem, without))
    if value(SPLIT_WINDOW_KEY) is not None:
        readable = read_split_window(stream_state) is not None
        problem = "is not the filter sets done of a window"
        without = "every filter set of that window is exported again"
        checks.append((SPLIT_WINDOW_KEY, value(SPLIT_WINDOW_KEY), readable, problem, without))
    done = value(WINDOWS_DONE_KEY)
    if done is not None and not isinstance(done, dict):
        checks.append((WINDOWS_DONE_KEY, done, False, "is not an object", again))
    elif done is not None:
        through = done.get("through")
        checks.append(
            (
                f"{WINDOWS_DONE_KEY}.through",
                through,
                _is_day(through),
                "is not a date before 9999-12-31",
                again,
            )
        )
    if value(LAST_JOB_KEY) is not None:
        readable = state_datetime(value(LAST_JOB_KEY)) is not None
        without = "any recent equivalent job may be re-used"
        checks.append((LAST_JOB_KEY, value(LAST_JOB_KEY), readable, "is not a timestamp", without))
    return [
        UnusableState(key, shown, problem, without)
        for key, shown, readable, problem, without in checks
        if not readable
    ]


def _is_day(value: t.Any) -> bool:
    try:
        windows_done_day(value)
    except ValueError:
        return False
    return True


def done_filters(done: dict[str, t.Any]) -> list[Filters]:
    """Read the filter sets a ``windows_done`` mark was made for (older versions: one
    ``account_list_id``).
    """
    sets = done.get("filters")
    if isinstance(sets, list):
        return [filters_from_state({"filters": f}) for f in sets if isinstance(f, dict)]
    return [filters_from_state(done)]
