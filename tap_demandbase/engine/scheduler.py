"""Keeps up to ``max_concurrent_jobs`` export jobs in flight ahead of the streams reading them.

Streams still sync one at a time, in order, so the Singer output is the same; only the waiting
on Demandbase's side overlaps. With six streams whose jobs each take T on the server, the run
takes about T plus the download time instead of 6T. With one job at a time (the default, and
what a production tenant allows) every job runs inline in the stream that reads it.
"""

from __future__ import annotations

import typing as t

from tap_demandbase.engine.background import run_in_background

if t.TYPE_CHECKING:
    from concurrent.futures import Future

    from tap_demandbase.engine.jobs import ExportJob
    from tap_demandbase.model import JobSpec

#: A job's identity in a run: the stream it is for and its spec.
JobKey = tuple[str, "JobSpec"]
JobFactory = t.Callable[[], "ExportJob"]


class JobScheduler:
    """Starts export jobs early and hands each, completed, to the stream that asks for it."""

    def __init__(self, max_in_flight: int = 1) -> None:
        self.max_in_flight = max(1, max_in_flight)
        self._planned: list[tuple[JobKey, JobFactory]] = []
        self._running: dict[JobKey, Future[ExportJob]] = {}

    def plan(self, jobs: list[tuple[JobKey, JobFactory]]) -> None:
        """Take the selected streams' first jobs, in the order the streams will ask for them,
        and start the first ones (nothing is started ahead with one job at a time).
        """
        self._planned = list(jobs) if self.max_in_flight > 1 else []
        self._start_next()

    def completed_job(self, key: JobKey, factory: JobFactory) -> ExportJob:
        """Return the completed job of ``key``: started ahead if it was planned, else obtained
        now by ``factory``.
        """
        future = self._running.get(key)
        if future is None:
            return factory()
        return future.result()

    def release(self, key: JobKey) -> None:
        """The stream has read this job's result: its slot goes to the next planned job."""
        self._running.pop(key, None)
        self._planned = [(k, job) for k, job in self._planned if k != key]
        self._start_next()

    def release_stream(self, stream: str) -> None:
        """The stream is done (or failed): its jobs' slots go to the next planned jobs, even a
        job it never asked for (a planned job must not hold a slot for the rest of the run).
        """
        self._running = {k: f for k, f in self._running.items() if k[0] != stream}
        self._planned = [(k, job) for k, job in self._planned if k[0] != stream]
        self._start_next()

    @property
    def in_flight(self) -> list[JobKey]:
        """Return the keys of the jobs started ahead and not yet released."""
        return list(self._running)

    def _start_next(self) -> None:
        for key, factory in self._planned:
            if len(self._running) >= self.max_in_flight:
                break
            if key not in self._running:
                self._running[key] = run_in_background(f"export-job-{key[0]}", factory)
