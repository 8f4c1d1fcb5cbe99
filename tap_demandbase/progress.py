"""Run feedback a person can follow: a progress line every ``progress_interval_seconds`` while a
stream syncs, and the truth about how an interrupted run resumes.

Job state changes and downloaded parts are logged as they happen, but a long part, a slow
target or a long wait for a job can leave minutes without a word. While a stream syncs, a daemon
thread therefore logs at a fixed interval what the stream has done so far: records emitted and
their rate, which part of how many, bytes downloaded of the job's total. The stream only bumps
plain counters (``records``, ``part``) and says which job it waits for and which result it
reads; the thread reads them.

The SDK says "Stream is assumed to be unsorted, progress is not resumable if interrupted" of
every stream whose records are not sorted by the replication key. These streams' records are
not sorted, but an interrupted run does resume: the job ledger in the state names the export job
and the parts already emitted, so the next run reads that job's other parts (no new job). The
progress marker therefore carries a note that says so, and the sync's first line says it too.
"""

from __future__ import annotations

import time
import typing as t

from singer_sdk.helpers._state import PROGRESS_MARKER_NOTE, PROGRESS_MARKERS

from tap_demandbase.engine.background import Loop, start_thread
from tap_demandbase.engine.jobs import human_bytes

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, MutableMapping
    from types import TracebackType

    from tap_demandbase.engine.jobs import ExportJob
    from tap_demandbase.engine.results import ResultParts

#: Default of the ``progress_interval_seconds`` setting.
PROGRESS_INTERVAL_SECONDS = 15.0

#: The note in ``progress_markers`` of a state emitted mid-window (instead of the SDK's
#: "Progress is not resumable if interrupted", which is not true of these streams).
RESUME_NOTE = (
    "Interrupted mid-window: the next run resumes export_job from its next part; the bookmark "
    "advances once the window's job is emitted in full."
)


def mark_resumable(stream_state: MutableMapping[str, t.Any]) -> None:
    """Open the stream's progress markers with the tap's resume note, unless already open.

    Called before the SDK increments the markers, so that the SDK neither writes its own note
    nor logs its "not resumable" warning (both key on the markers being absent).
    """
    stream_state.setdefault(PROGRESS_MARKERS, {PROGRESS_MARKER_NOTE: RESUME_NOTE})


def resume_line(stream: str, replication_key: str | None) -> str:
    """Return the INFO line that says how an interrupted sync of ``stream`` resumes."""
    return (
        f"{stream}: records arrive unsorted by {replication_key}, so the bookmark advances once "
        "a window's export job is emitted in full; an interrupted run resumes that job from its "
        f"next part (bookmarks.{stream}.export_job in the state), without a new job."
    )


class SyncProgress:
    """What one stream's sync has done so far, logged every ``interval`` seconds.

    Lives as long as the stream (the scheduler may start the stream's job before its sync);
    ``with progress:`` around the sync runs the logging thread for that block only.
    """

    def __init__(
        self,
        stream: str,
        logger: logging.Logger,
        interval: float = PROGRESS_INTERVAL_SECONDS,
        *,
        replication_key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.logger = logger
        self.interval = interval
        self.replication_key = replication_key
        self.records = 0
        self.part = 0
        self.job: ExportJob | None = None
        self.result: ResultParts | None = None
        self._clock = clock
        self._started = clock()
        self._loop: Loop | None = None

    def waiting_for(self, job: ExportJob) -> None:
        """Follow a job that is being created, resumed or re-used, until it completes."""
        self.job = job
        self.result = None

    def downloading(self, job: ExportJob, result: ResultParts) -> None:
        """Follow a completed job whose parts are now downloaded and emitted."""
        self.job = job
        self.result = result
        self.part = 0

    def line(self) -> str:
        """Return the progress line for now."""
        elapsed = max(self._clock() - self._started, 1e-6)
        if self.result is None:
            job = self.job
            state = job.status.state.value if job is not None and job.status else None
            waiting = f"{job.label}, {state}" if job is not None and state else "its export job"
            done = f"{self.records:,} records emitted so far; " if self.records else ""
            return f"{self.stream}: {done}waiting for {waiting} ({elapsed:.0f}s into the stream)"
        result = self.result
        total = result.job.file_size_bytes
        downloaded = human_bytes(result.bytes_downloaded)
        return (
            f"{self.stream}: {self.records:,} records emitted ({self.records / elapsed:,.0f}/s), "
            f"part {max(self.part, 1)} of {result.count_text}, {downloaded} "
            f"of {human_bytes(total) if total is not None else 'an unknown total'} downloaded"
        )

    def log_every_interval(self, wait: Callable[[float], bool]) -> None:
        """Log the progress line each time ``wait(interval)`` returns False (timed out), until
        it returns True (the sync ended). The thread passes its loop's ``wait``.
        """
        while not wait(self.interval):
            self.logger.info("%s", self.line())

    def __enter__(self) -> SyncProgress:
        self.logger.info("%s", resume_line(self.stream, self.replication_key))
        self._started = self._clock()
        self.records = 0
        self._loop = start_thread(f"progress-{self.stream}", self.log_every_interval)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None:
            self._loop.stop()
        self._loop = None
