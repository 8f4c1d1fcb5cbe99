"""What one run did, counted as it happens, for the one summary line a run ends with.

Jobs may be started ahead in background threads (``scheduler.py``), so every count is taken
under a lock. No Singer and no API words here: the tap turns a ``RunTally`` into its line.
"""

from __future__ import annotations

import threading
import time
import typing as t
from dataclasses import dataclass

if t.TYPE_CHECKING:
    from collections.abc import Callable


class JobStart(t.NamedTuple):
    """How a window got its job: created, re-used (an equivalent job was listed) or resumed
    (the state names it).
    """

    created: int
    reused: int
    resumed: int


@dataclass(frozen=True)
class TallySnapshot:
    """The counts of a run at one moment."""

    streams: int
    records: int
    jobs: JobStart
    bytes_downloaded: int
    emit_seconds: float
    wait_seconds: float
    seconds: float
    #: Rows re-read by lookback windows (days before the bookmark's; None: none ran).
    lookback_rows: int | None = None
    #: Rows of backfill windows (days before the first synced day; None: none ran).
    backfill_rows: int | None = None
    #: Rows of delete checks (every row again; None: none ran).
    check_rows: int | None = None


class RunTally:
    """Counts a run's streams, records, jobs, bytes and time (emitting, and waiting for jobs)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._streams = 0
        self._records = 0
        self._jobs = {"created": 0, "reused": 0, "resumed": 0}
        self._bytes = 0
        self._emit_seconds = 0.0
        self._wait_seconds = 0.0
        self._rows_by_purpose: dict[str, int] = {}

    def rows_for(self, purpose: str, rows: int) -> None:
        """Count the rows of a window that was not the bookmark's (lookback, backfill)."""
        with self._lock:
            self._rows_by_purpose[purpose] = self._rows_by_purpose.get(purpose, 0) + rows

    def job_started(self, how: t.Literal["created", "reused", "resumed"]) -> None:
        """Count a window's job: created, re-used or resumed."""
        with self._lock:
            self._jobs[how] += 1

    def downloaded(self, size: int) -> None:
        """Count the bytes of a window's result parts."""
        with self._lock:
            self._bytes += size

    def stream_synced(self, records: int, emit_seconds: float, wait_seconds: float) -> None:
        """Count a stream once its sync is over (or failed): its records, and the time it spent
        emitting them and waiting for its jobs.
        """
        with self._lock:
            self._streams += 1
            self._records += records
            self._emit_seconds += emit_seconds
            self._wait_seconds += wait_seconds

    def snapshot(self) -> TallySnapshot:
        """Return the counts so far, and the seconds since the run started."""
        with self._lock:
            return TallySnapshot(
                streams=self._streams,
                records=self._records,
                jobs=JobStart(**self._jobs),
                bytes_downloaded=self._bytes,
                emit_seconds=self._emit_seconds,
                wait_seconds=self._wait_seconds,
                seconds=self._clock() - self._started,
                lookback_rows=self._rows_by_purpose.get("lookback"),
                backfill_rows=self._rows_by_purpose.get("backfill"),
                check_rows=self._rows_by_purpose.get("check"),
            )
