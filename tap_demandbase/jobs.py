"""One export job's life: create → poll with exponential backoff → completed, or a clear error.

Status calls are the scarcest part of Demandbase's budget (production allows 300 a day), so the
wait between two polls doubles from ``poll_interval_seconds`` up to ``max_poll_interval_seconds``.
A job that outlives ``job_timeout_seconds`` is cancelled rather than left to spend quota.
"""

from __future__ import annotations

import logging
import time
import typing as t
from dataclasses import dataclass

from tap_demandbase.api import JobState
from tap_demandbase.errors import ExportJobError

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tap_demandbase.api import ExportApi, JobSpec, JobStatus


@dataclass(frozen=True)
class PollPolicy:
    """How often to ask for a job's status, and for how long."""

    first_interval: float = 2.0
    max_interval: float = 600.0
    timeout: float = 6 * 3600.0

    def intervals(self) -> Iterator[float]:
        """Yield the waits between status calls: doubling from the first, capped."""
        wait = self.first_interval
        while True:
            yield min(wait, self.max_interval)
            wait *= 2


def human_bytes(size: int | None) -> str:
    """Return a byte count as people read it in logs."""
    if size is None:
        return "? bytes"
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"  # pragma: no cover


class ExportJob:
    """Drives one export job on the API until its result can be downloaded."""

    def __init__(
        self,
        api: ExportApi,
        spec: JobSpec,
        policy: PollPolicy,
        logger: logging.Logger,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.spec = spec
        self.policy = policy
        self.logger = logger
        self.status: JobStatus | None = None
        self.status_calls = 0
        self._sleep = sleep
        self._clock = clock
        self._started = 0.0
        self._state_since = 0.0

    @property
    def status_id(self) -> str:
        """Return the job's id (empty before it is created)."""
        return self.status.id if self.status else ""

    @property
    def label(self) -> str:
        """Name the job in log lines: entity, id and window."""
        job_id = self.status.id if self.status else "(not created)"
        return f"{self.spec.entity} export job {job_id} ({self.spec.describe_window()})"

    def create(self) -> JobStatus:
        """Create the job on the API."""
        self._started = self._state_since = self._clock()
        self.status = self.api.create_job(self.spec)
        self.logger.info(
            "%s created: %s, %d fields", self.label, self.status.state.value, len(self.spec.fields)
        )
        return self.status

    def wait_until_completed(self) -> JobStatus:
        """Poll until the job is completed; raise ExportJobError if it fails, is cancelled or
        outlives the timeout (in which case it is cancelled first).
        """
        status = self.status or self.create()
        intervals = self.policy.intervals()
        while not status.state.is_terminal:
            elapsed = self._clock() - self._started
            if elapsed >= self.policy.timeout:
                status = self._cancel_for_timeout(elapsed)
                break
            self._sleep(min(next(intervals), max(0.0, self.policy.timeout - elapsed)))
            status = self._refresh()
        return self._completed_or_raise(status)

    def _refresh(self) -> JobStatus:
        """Ask the API for the job's status and log a state change."""
        assert self.status is not None
        previous = self.status.state
        self.status_calls += 1
        status = self.api.get_job(self.status.id)
        self.status = status
        if status.state != previous:
            now = self._clock()
            self.logger.info(
                "%s %s → %s after %.1fs %s (%.1fs since creation)%s",
                self.label,
                previous.value,
                status.state.value,
                now - self._state_since,
                previous.value,
                now - self._started,
                self._result_summary(status),
            )
            self._state_since = now
        else:
            self.logger.debug("%s still %s", self.label, status.state.value)
        return status

    @staticmethod
    def _result_summary(status: JobStatus) -> str:
        if status.state is not JobState.COMPLETED:
            return ""
        return (
            f": {status.record_count} rows in {status.file_parts} part(s), "
            f"{human_bytes(status.file_size_bytes)}"
        )

    def _cancel_for_timeout(self, elapsed: float) -> JobStatus:
        """Cancel a job that took too long; use it after all if it finished meanwhile."""
        assert self.status is not None
        self.logger.warning(
            "%s still %s after %.0fs (job_timeout_seconds=%.0f): cancelling it",
            self.label,
            self.status.state.value,
            elapsed,
            self.policy.timeout,
        )
        if self.api.cancel_job(self.status.id) is None:
            return self._refresh()
        msg = (
            f"{self.label} did not finish within job_timeout_seconds={self.policy.timeout:.0f} "
            "and was cancelled. Raise job_timeout_seconds, or export smaller windows."
        )
        raise ExportJobError(msg)

    def _completed_or_raise(self, status: JobStatus) -> JobStatus:
        if status.state is JobState.COMPLETED:
            return status
        reason = status.error_message or "no reason given"
        if status.state is JobState.FAILED:
            msg = f"{self.label} failed on Demandbase's side: {reason}"
        else:
            msg = f"{self.label} was cancelled ({reason}); run the tap again to export it anew"
        raise ExportJobError(msg)
