"""Keeps up to ``max_concurrent_jobs`` export jobs in flight ahead of the streams reading them.

Streams still sync one at a time, in order, so the Singer output is the same; only the waiting
on Demandbase's side overlaps. With six streams whose jobs each take T on the server, the run
takes about T plus the download time instead of 6T. With one job at a time (the default, and
what a production tenant allows) every job runs inline in the stream that reads it.
"""

from __future__ import annotations

import threading
import typing as t
from concurrent.futures import Future

from tap_demandbase.errors import DemandbaseError

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from tap_demandbase.jobs import ExportJob

JobFactory = t.Callable[[], "ExportJob | None"]
Planner = t.Callable[[], list[tuple[str, JobFactory]]]


class SyncStopped(DemandbaseError):
    """The sync ended (or failed) while this job was still being waited for."""


class JobScheduler:
    """Starts export jobs early and hands each, completed, to the stream that asks for it."""

    def __init__(self, max_in_flight: int = 1, planner: Planner | None = None) -> None:
        self.max_in_flight = max(1, max_in_flight)
        self._planner = planner
        self._planned: list[tuple[str, JobFactory]] | None = None
        self._running: dict[str, Future[ExportJob | None]] = {}
        self._stop = threading.Event()

    def sleep(self, seconds: float) -> None:
        """Wait between two status calls; end the wait at once when the sync stops."""
        if self._stop.wait(seconds):
            msg = "the sync stopped while an export job was still being polled"
            raise SyncStopped(msg)

    def completed_job(self, stream: str, factory: JobFactory) -> ExportJob | None:
        """Return the stream's job once completed (None: nothing to export).

        The first call plans every selected stream's job (in sync order) and starts the first
        ones; the SDK syncs streams in that same order.
        """
        if self._planned is None:
            self._planned = self._planner() if self._planner and self.max_in_flight > 1 else []
            self._start_next()
        future = self._running.get(stream)
        if future is None:
            return _run(factory)
        return future.result()

    def release(self, stream: str) -> None:
        """The stream has read its job's result: its slot goes to the next planned job."""
        self._running.pop(stream, None)
        self._planned = [(name, job) for name, job in self._planned or [] if name != stream]
        self._start_next()

    def stop(self) -> None:
        """End background polling; jobs stay on the server (a later run may use them)."""
        self._stop.set()

    def _start_next(self) -> None:
        for name, factory in self._planned or []:
            if len(self._running) >= self.max_in_flight:
                break
            if name not in self._running:
                self._running[name] = _in_background(name, factory)


def _in_background(name: str, factory: JobFactory) -> Future[ExportJob | None]:
    """Run a job in a daemon thread, so that a failed sync never waits for it at exit."""
    future: Future[ExportJob | None] = Future()

    def work() -> None:
        future.set_running_or_notify_cancel()
        try:
            future.set_result(_run(factory))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=work, name=f"export-job-{name}", daemon=True).start()
    return future


def _run(factory: Callable[[], ExportJob | None]) -> ExportJob | None:
    """Create a job and wait until it is completed."""
    job = factory()
    if job is not None:
        job.wait_until_completed()
    return job
