"""Progress a person can follow: one INFO line every ``progress_interval_seconds`` per stream.

Job state changes and downloaded parts are logged as they happen, but a long part, a slow
target or a long wait for a job can leave minutes without a word. A daemon thread therefore
logs, at a fixed interval while a stream syncs, what the stream has done so far: records
emitted and their rate, which part of how many, bytes downloaded of the job's total. The
stream only bumps plain counters; the thread reads them.
"""

from __future__ import annotations

import threading
import time
import typing as t

from tap_demandbase.jobs import human_bytes

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable
    from types import TracebackType

    from tap_demandbase.jobs import ExportJob
    from tap_demandbase.results import ResultParts

#: Default of the ``progress_interval_seconds`` setting.
PROGRESS_INTERVAL_SECONDS = 15.0


class SyncProgress:
    """What one stream's sync has done so far, logged every ``interval`` seconds.

    Use as a context manager around the sync: the logging thread runs inside the block only.
    """

    def __init__(
        self,
        stream: str,
        logger: logging.Logger,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.logger = logger
        self.interval = interval
        self.records = 0
        self.part = 0
        self.job: ExportJob | None = None
        self.result: ResultParts | None = None
        self._clock = clock
        self._started = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def track(self, job: ExportJob, result: ResultParts) -> None:
        """Follow a completed job whose parts are now being downloaded and emitted."""
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
        return (
            f"{self.stream}: {self.records:,} records emitted ({self.records / elapsed:,.0f}/s), "
            f"part {max(self.part, 1)} of {result.count}, {human_bytes(result.bytes_downloaded)} "
            f"of {human_bytes(total) if total is not None else 'an unknown total'} downloaded"
        )

    def __enter__(self) -> SyncProgress:
        self._started = self._clock()
        self._thread = threading.Thread(
            target=self._run, name=f"progress-{self.stream}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        """Log the progress line every interval until the stream's sync ends."""
        while not self._stop.wait(self.interval):
            self.logger.info("%s", self.line())
