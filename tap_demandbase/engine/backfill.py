"""Windows a run exports besides the bookmark's: a lookback before it, and a backfill.

Neither moves the bookmark, which only ever advances.
- A **lookback** re-reads ``lookback_days`` before the day the incremental windows start, on
  every run: rows restated after the fact (Demandbase re-scores past activities) reach the
  target again, as upserts by primary key.
- A **backfill** exports the days from ``backfill_start_date`` up to the stream's first synced
  day (or ``backfill_end_date``), oldest first, a few jobs per run. How far it got is kept in
  the stream's state apart from the bookmark, so it resumes like any job; another start or end
  starts a new backfill.
"""

from __future__ import annotations

import datetime
import threading
import typing as t
from dataclasses import dataclass, field

from tap_demandbase.engine.ledger import filters_from_state

if t.TYPE_CHECKING:
    from collections.abc import Mapping, MutableMapping

    from tap_demandbase.model import Filters

#: Stream state key: how far the stream's backfill is.
BACKFILL_KEY = "backfill"
#: Stream state key: the first day the stream's incremental sync exported.
SYNCED_FROM_KEY = "synced_from"
DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class BackfillRequest:
    """The backfill the settings ask for."""

    start: datetime.date
    #: Its last day (None: the stream's first synced day).
    end: datetime.date | None = None


class JobAllowance:
    """How many backfill jobs the run may still create, shared by its streams."""

    def __init__(self, jobs: int | None) -> None:
        #: None: no limit.
        self.jobs = jobs
        self._lock = threading.Lock()

    def take(self, wanted: int) -> int:
        """Return how many of ``wanted`` jobs may be planned, and count them as planned."""
        with self._lock:
            if self.jobs is None:
                return wanted
            granted = min(wanted, self.jobs)
            self.jobs -= granted
            return granted


@dataclass
class BackfillMark:
    """A stream's backfill in its state: the days asked for and the last day done."""

    start: datetime.date
    end: datetime.date
    through: datetime.date | None = None
    #: Filter sets done of the window that follows ``through`` (one job per filter set).
    filters_done: list[Filters] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """Whether every day of the backfill is exported."""
        return self.through is not None and self.through >= self.end

    @property
    def next_day(self) -> datetime.date:
        """Return the first day still to export."""
        return self.start if self.through is None else self.through + DAY

    def to_state(self) -> dict[str, t.Any]:
        """Return the JSON the STATE message carries."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "through": self.through.isoformat() if self.through else None,
            "filters_done": [dict(f) for f in self.filters_done],
            "finished": self.finished,
        }

    @classmethod
    def from_state(cls, value: t.Any) -> BackfillMark | None:
        """Read a mark back (None: absent or not readable: the backfill starts over)."""
        if not isinstance(value, dict):
            return None
        try:
            through = value.get("through")
            return cls(
                start=datetime.date.fromisoformat(value["start"]),
                end=datetime.date.fromisoformat(value["end"]),
                through=datetime.date.fromisoformat(through) if through else None,
                filters_done=[
                    filters_from_state({"filters": f}) for f in value.get("filters_done") or []
                ],
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def backfill_mark(
    state: MutableMapping[str, t.Any], request: BackfillRequest, first_synced: datetime.date
) -> BackfillMark | None:
    """Return the stream's backfill as its state has it, or a new one when the settings ask
    for other days (written into the state); None when there are no days to backfill.
    """
    end = request.end or first_synced
    if request.start > end:
        return None
    mark = BackfillMark.from_state(state.get(BACKFILL_KEY))
    if mark is None or (mark.start, mark.end) != (request.start, end):
        mark = BackfillMark(request.start, end)
        state[BACKFILL_KEY] = mark.to_state()
    return mark


def first_synced_day(
    state: Mapping[str, t.Any], fallback: datetime.date | None
) -> datetime.date | None:
    """Return the first day the stream's incremental sync exported (the state's, else the
    fallback: start_date's day).
    """
    value = state.get(SYNCED_FROM_KEY)
    try:
        return datetime.date.fromisoformat(value) if isinstance(value, str) else fallback
    except ValueError:
        return fallback


def lookback_window(
    bookmark_day: datetime.date,
    first_window_day: datetime.date | None,
    days: int,
    floor: datetime.date | None,
) -> tuple[datetime.date, datetime.date] | None:
    """Return the days a lookback re-reads: from ``days`` before the bookmark's day (not
    before ``floor``, start_date's day) to the day before the incremental windows start (which
    is after the bookmark's day when the windows up to it are done); None when there are none.
    """
    if first_window_day is None or days <= 0:
        return None
    start = bookmark_day - datetime.timedelta(days=days)
    if floor is not None:
        start = max(start, floor)
    end = first_window_day - DAY
    return (start, end) if start <= end else None
