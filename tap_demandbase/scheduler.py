"""Keeps up to ``max_concurrent_jobs`` export jobs in flight ahead of the streams reading them.

Streams still sync one at a time, in order, so the Singer output is the same; only the waiting
on Demandbase's side overlaps. With six streams whose jobs each take T on the server, the run
takes about T plus the download time instead of 6T. With one job at a time (the default, and
what a production tenant allows) every job runs inline in the stream that reads it.
"""

from __future__ import annotations

import threading
import typing as t

from tap_demandbase.background import run_in_background
from tap_demandbase.errors import DemandbaseError

if t.TYPE_CHECKING:
    from concurrent.futures import Future

    from tap_demandbase.jobs import ExportJob

JobKey = tuple[str, t.Any]
JobFactory = t.Callable[[], "ExportJob"]
Planner = t.Callable[[], list[tuple[JobKey, JobFactory]]]


class SyncStopped(DemandbaseError):
    """The sync ended (or failed) while this job was still being waited for."""


class JobScheduler:
    """Starts export jobs early and hands each, completed, to the stream that asks for it."""

    def __init__(self, max_in_flight: int = 1, planner: Planner | None = None) -> None:
        self.max_in_flight = max(1, max_in_flight)
        self._planner = planner
        self._planned: list[tuple[JobKey, JobFactory]] | None = None
        self._running: dict[JobKey, Future[ExportJob]] = {}
        self._stop = threading.Event()

    def sleep(self, seconds: float) -> None:
        """Wait between two status calls; end the wait at once when the sync stops."""
        if self._stop.wait(seconds):
            msg = "the sync stopped while an export job was still being polled"
            raise SyncStopped(msg)

    def completed_job(self, key: JobKey, factory: JobFactory) -> ExportJob:
        """Return the completed job of ``key`` (stream, spec): started ahead if it was planned,
        else obtained now by ``factory``.

        The first call plans every selected stream's first job (in sync order) and starts the
        first ones; the SDK syncs streams in that same order.
        """
        if self._planned is None:
            self._planned = self._planner() if self._planner and self.max_in_flight > 1 else []
            self._start_next()
        future = self._running.get(key)
        if future is None:
            return factory()
        return future.result()

    def release(self, key: JobKey) -> None:
        """The stream has read this job's result: its slot goes to the next planned job."""
        self._running.pop(key, None)
        self._planned = [(k, job) for k, job in self._planned or [] if k != key]
        self._start_next()

    def stop(self) -> None:
        """End background polling; jobs stay on the server (a later run may use them)."""
        self._stop.set()

    def _start_next(self) -> None:
        for key, factory in self._planned or []:
            if len(self._running) >= self.max_in_flight:
                break
            if key not in self._running:
                self._running[key] = run_in_background(f"export-job-{key[0]}", factory)
