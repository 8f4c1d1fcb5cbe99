"""One export job's life: create → poll → completed, or a clear error.

Status calls are the scarcest part of Demandbase's budget (production allows 300 a day), so the
polls follow the stream's job history (``polling.py``), or double from ``poll_interval_seconds``
up to ``max_poll_interval_seconds`` without one.
A job that outlives ``job_timeout_seconds`` is cancelled rather than left to spend quota (when
the API can cancel; otherwise it stays in the ledger and the next run resumes it).
"""

from __future__ import annotations

import datetime
import logging
import typing as t
from dataclasses import dataclass

from tap_demandbase.engine.polling import PollSchedule
from tap_demandbase.errors import ApiRequestError, ExportJobError, JobSlotBusyError
from tap_demandbase.model import JobState, PollPolicy, ReuseRule, cancel_verb, usable_result

if t.TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from tap_demandbase.engine.clock import Clock
    from tap_demandbase.model import ExportApi, JobSpec, JobStatus

#: An existing job older than this is never re-used: re-use rescues a job that a run created
#: and died before recording, not a snapshot of hours ago (its rows would be stale).
REUSE_MAX_AGE = datetime.timedelta(hours=2)

#: Default pause before a new job replaces one that ended ``failed`` (max_job_attempts and
#: job_retry_cooldown_seconds: the settings' defaults are these constants).
DEFAULT_COOLDOWN_SECONDS = 60.0
DEFAULT_MAX_ATTEMPTS = 3

#: Waits before asking again for a job that the API just created but does not find yet (404):
#: APIs are eventually consistent. About 10 seconds in all, then the 404 is an error.
NOT_FOUND_AFTER_CREATE_WAITS = (0.5, 1.0, 2.0, 2.5, 4.0)


def reuse_rule(
    last_job_created_at: datetime.datetime | None,
    exclude: Collection[str] = (),
    *,
    now: datetime.datetime,
    max_age: datetime.timedelta | None = None,
) -> ReuseRule:
    """Return which existing jobs may be re-used: created less than ``max_age`` (default
    REUSE_MAX_AGE) ago, after the last job the stream finished with, and not one found unusable.
    """
    oldest = now - (max_age or REUSE_MAX_AGE)
    if last_job_created_at is not None:
        oldest = max(oldest, last_job_created_at)
    return ReuseRule(created_after=oldest, exclude=frozenset(exclude))


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
        clock: Clock,
        schedule: PollSchedule | None = None,
    ) -> None:
        self.api = api
        self.spec = spec
        self.policy = policy
        self.schedule = schedule or PollSchedule(policy)
        #: Seconds from this run's create to the job seen completed (None: not created here).
        self.server_seconds: float | None = None
        self._created_here = False
        self.logger = logger
        self.status: JobStatus | None = None
        self.status_calls = 0
        self.clock = clock
        self._started = 0.0
        self._state_since = 0.0
        self._seen_by_get = False
        self._warned_statuses: set[str] = set()

    @property
    def status_id(self) -> str:
        """Return the job's id (empty before it is created)."""
        return self.status.id if self.status else ""

    @property
    def label(self) -> str:
        """Name the job in log lines: entity, id and window."""
        job_id = self.status.id if self.status else "(not created)"
        return f"{self.spec.entity} export job {job_id} ({self.spec.describe_window()})"

    def create(self, rule: ReuseRule | None = None) -> JobStatus:
        """Create the job on the API (``rule``: which job a lost create answer may stand for).

        While the API refuses it because another job runs (one started elsewhere, say), the
        create is tried again after the same doubling waits as polling, until the job timeout.
        """
        self._started = self._state_since = self.clock.monotonic()
        self.status = self._create_when_a_slot_is_free(rule)
        self._created_here = True
        self.logger.info(
            "%s created: %s, %d fields", self.label, self.status.status_name, len(self.spec.fields)
        )
        self._warn_if_unknown(self.status)
        return self.status

    def _create_when_a_slot_is_free(self, rule: ReuseRule | None) -> JobStatus:
        waits = self.policy.intervals()
        while True:
            try:
                return self.api.create_job(self.spec, rule)
            except JobSlotBusyError as exc:
                elapsed = self.clock.monotonic() - self._started
                if elapsed >= self.policy.timeout:
                    msg = (
                        f"{self.label}: the API still refused a new job after {elapsed:.0f}s "
                        f"(job_timeout_seconds={self.policy.timeout:.0f}): {exc}. Run the tap "
                        "again once the other export job has finished."
                    )
                    raise ExportJobError(msg) from None
                wait = min(next(waits), self.policy.timeout - elapsed)
                self.logger.info(
                    "%s not created yet: %s; trying again in %.0fs", self.label, exc, wait
                )
                self.clock.sleep(wait)

    def attach(self, status: JobStatus, why: str) -> JobStatus:
        """Take over a job that already exists (left by a crashed run, or an equivalent one)."""
        self._started = self._state_since = self.clock.monotonic()
        self.status = status
        self._seen_by_get = True
        self.logger.info("%s %s: %s", self.label, why, status.status_name)
        self._warn_if_unknown(status)
        return status

    def _warn_if_unknown(self, status: JobStatus) -> None:
        """Say once per status word that the API reported a status this tap does not know."""
        if status.state is JobState.UNKNOWN and status.status_name not in self._warned_statuses:
            self._warned_statuses.add(status.status_name)
            self.logger.warning(
                "%s is in status '%s', which the API contract does not define; waiting for it "
                "as for a running job",
                self.label,
                status.status_name,
            )

    def wait_until_completed(self) -> JobStatus:
        """Poll until the job is completed; raise ExportJobError if it fails, is cancelled or
        outlives the timeout (in which case it is cancelled first).
        """
        status = self.status or self.create()
        self.logger.debug("%s: %s", self.label, self.schedule.describe())
        intervals = self.schedule.waits()
        while not status.state.is_terminal:
            elapsed = self.clock.monotonic() - self._started
            if elapsed >= self.policy.timeout:
                status = self._cancel_for_timeout(elapsed)
                break
            self.clock.sleep(min(next(intervals), max(0.0, self.policy.timeout - elapsed)))
            status = self._refresh()
        return self._completed_or_raise(status)

    def _refresh(self) -> JobStatus:
        """Ask the API for the job's status and log a state change."""
        assert self.status is not None
        previous = self.status.status_name
        status = self._get_status()
        self.status = status
        if status.status_name != previous:
            now = self.clock.monotonic()
            self.logger.info(
                "%s %s → %s after %.1fs %s (%.1fs since creation)%s",
                self.label,
                previous,
                status.status_name,
                now - self._state_since,
                previous,
                now - self._started,
                self._result_summary(status),
            )
            self._state_since = now
            if status.state is JobState.COMPLETED and self._created_here:
                self.server_seconds = now - self._started
            self._warn_if_unknown(status)
        else:
            self.logger.debug("%s still %s", self.label, status.status_name)
        return status

    def _get_status(self) -> JobStatus:
        """GET the job; a 404 before the API has once found the job it just created is asked
        again a few times (eventual consistency), and only then is an error.
        """
        assert self.status is not None
        waits = iter(() if self._seen_by_get else NOT_FOUND_AFTER_CREATE_WAITS)
        while True:
            self.status_calls += 1
            try:
                status = self.api.get_job(self.status.id)
            except ApiRequestError as exc:
                wait = next(waits, None) if exc.status == 404 else None
                if wait is None:
                    raise
                self.logger.info(
                    "%s is not found yet right after its creation; asking again in %.1fs",
                    self.label,
                    wait,
                )
                self.clock.sleep(wait)
                continue
            self._seen_by_get = True
            return status

    @staticmethod
    def _result_summary(status: JobStatus) -> str:
        """Return the completed job's size for the log, saying so when the API did not."""
        if status.state is not JobState.COMPLETED:
            return ""
        rows = "an unknown number of rows" if status.record_count is None else (
            f"{status.record_count} rows"
        )  # fmt: skip
        parts = "" if status.file_parts is None else f" in {status.file_parts} part(s)"
        size = "" if status.file_size_bytes is None else f", {human_bytes(status.file_size_bytes)}"
        return f": {rows}{parts}{size}"

    def _cancel_for_timeout(self, elapsed: float) -> JobStatus:
        """Cancel a job that took too long; use it after all if it finished meanwhile. An API
        without cancel leaves the job running: it stays in the ledger for the next run.
        """
        assert self.status is not None
        cancel = cancel_verb(self.api)
        if cancel is None:
            msg = (
                f"{self.label} is still {self.status.status_name} after {elapsed:.0f}s "
                f"(job_timeout_seconds={self.policy.timeout:.0f}); the API cannot cancel it, so it "
                "stays in the state and the next run resumes it. Raise job_timeout_seconds, or "
                "export smaller windows."
            )
            raise ExportJobError(msg)
        self.logger.warning(
            "%s still %s after %.0fs (job_timeout_seconds=%.0f): cancelling it",
            self.label,
            self.status.status_name,
            elapsed,
            self.policy.timeout,
        )
        if cancel.cancel_job(self.status.id) is None:
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
            raise JobFailedError(msg)
        if status.state is JobState.EXPIRED:
            msg = f"{self.label} expired before its result could be downloaded"
            raise JobFailedError(msg)
        msg = f"{self.label} was cancelled ({reason}); run the tap again to export it anew"
        raise ExportJobError(msg)


@dataclass(frozen=True)
class AttemptPolicy:
    """How often a job that ends ``failed`` is tried again, and after what pause."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    cooldown: float = DEFAULT_COOLDOWN_SECONDS


def resumable_status(
    api: ExportApi, job_id: str, spec: JobSpec, logger: logging.Logger, now: datetime.datetime
) -> JobStatus | None:
    """Return a job left by an earlier run if it can still deliver; log why not otherwise."""
    try:
        status = api.get_job(job_id)
    except ApiRequestError as exc:
        if exc.status != 404:
            raise
        logger.warning("Export job %s from the state no longer exists; exporting anew", job_id)
        return None
    if status.entity and status.entity != spec.entity:
        logger.warning(
            "Export job %s from the state exports %s, not %s: ignoring it and exporting the "
            "%s window anew",
            job_id,
            status.entity,
            spec.entity,
            spec.describe_window(),
        )
        return None
    if usable_result(status, now, unknown_ok=True):
        return status
    reason = status.error_message or ("its result expired" if status.expires_at else "")
    logger.warning(
        "Export job %s from the state is %s%s; exporting its window anew",
        job_id,
        status.status_name,
        f" ({reason})" if reason else "",
    )
    return None


def run_until_completed(
    make_job: Callable[[], ExportJob],
    attempts: AttemptPolicy,
    *,
    start: Callable[[ExportJob], None],
) -> ExportJob:
    """Start a job (``start`` creates, resumes or re-uses it) and wait for its result; a job
    that ends ``failed`` is replaced by a new one after a cooldown, up to ``max_attempts``.
    """
    for attempt in range(1, attempts.max_attempts + 1):
        job = make_job()
        start(job)
        try:
            job.wait_until_completed()
        except JobFailedError:
            if attempt == attempts.max_attempts:
                raise
            job.logger.warning(
                "%s failed (attempt %d of %d); trying a new job in %.0fs",
                job.label, attempt, attempts.max_attempts, attempts.cooldown,
            )  # fmt: skip
            job.clock.sleep(attempts.cooldown)
            continue
        return job
    msg = "max_job_attempts must be at least 1"  # pragma: no cover
    raise ExportJobError(msg)  # pragma: no cover


class JobFailedError(ExportJobError):
    """The job ended ``failed`` on Demandbase's side."""
