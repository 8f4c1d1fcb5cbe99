"""Export jobs: their wall-clock life cycle, result cache and the daily quota.

A job is ``pending`` for ``pending_seconds``, then ``processing`` for at least its processing time
(``processing_seconds``, varied by ``processing_seconds_jitter``: :func:`processing_seconds_of`)
and until its files are written (by a worker thread, so a large export really takes time), then
``completed`` -- or ``failed`` if a ``fail_jobs`` fault was due when it was created, or
``cancelled`` (``export_v1``'s ``DELETE``). Its recorded times are exact: created on a whole
millisecond, processing from ``created + pending``, completed at ``created + pending + processing``
(later only if writing took longer), whenever and however often it is polled. Each job works from a
snapshot of the settings taken at creation, so changing knobs mid-run affects only later jobs. The
store knows no dialect: each emulator describes its jobs in its own JSON, read through
:meth:`JobStore.view`.

Identical exports (same entity, fields, filters and data/file knobs) share one set of part files
when ``cache_results`` is on, so benchmarks pay generation once; they still go through the full
pending/processing timing. Damaged (``malformed``) results are never cached.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

from tap_demandbase.sandbox.data import Filters
from tap_demandbase.sandbox.entities import DEFAULT_ROWS
from tap_demandbase.sandbox.files import ExportCancelled, ResultFiles, served_size, write_export
from tap_demandbase.sandbox.settings import CommonSettings

_T = TypeVar("_T")

#: A job's statuses (the words of the ``export_v1`` contract; other dialects rename them).
STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
ACTIVE = ("pending", "processing")


class QuotaExceeded(Exception):
    """The daily job or byte quota is spent; ``resets_at`` is the next UTC midnight."""

    def __init__(self, resets_at: str) -> None:
        super().__init__(f"export quota spent until {resets_at}")
        self.resets_at = resets_at


@dataclass
class Job:
    """One export job and everything needed to run and describe it.

    ``writer`` (None: :func:`write_export` of ``fields``) lets a dialect lay out its own result
    files; ``cache_key`` then names everything that writer's output depends on beyond the
    generic key. ``updated_at`` is the time of the last status change.
    """

    id: str
    entity: str
    fields: list[str]
    filters: Filters
    filters_json: dict[str, object]
    settings: CommonSettings
    will_fail: bool
    defect: str | None
    created_at: float = field(default_factory=lambda: round(time.time(), 3))
    status: str = "pending"
    completed_at: float | None = None
    result: ResultFiles | None = None
    error_message: str | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    writer: ResultWriter | None = None
    cache_key: tuple[object, ...] = ()
    updated_at: float = 0.0
    status_calls: int = 0
    #: The bytes downloads of the whole result send (the gzip copies, when served so).
    served_bytes: int = 0

    #: The sandbox's 1st, 2nd... job (the jitter sequence's index).
    number: int = 0
    #: How long it is processing (at least): ``processing_seconds_of`` its settings and number.
    processing_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.updated_at = self.updated_at or self.created_at

    def set_status(self, status: str, at: float | None = None) -> None:
        """Move to ``status`` at ``at`` (default: now; callers hold the store's lock)."""
        self.status = status
        self.updated_at = time.time() if at is None else at

    @property
    def expires_at(self) -> float | None:
        """Return when the result stops being downloadable (None before completion)."""
        if self.completed_at is None:
            return None
        return self.completed_at + self.settings.result_ttl_seconds


#: Writes a job's result files into a directory; a dialect's own file layout (see ``Job``).
ResultWriter = Callable[[Path, Job], ResultFiles]


class JobStore:
    """All jobs of one sandbox, their worker threads, the result cache and quota counters."""

    def __init__(self, settings: CommonSettings, directory: Path) -> None:
        self.settings = settings
        self.directory = directory
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._workers: list[threading.Thread] = []
        self._cache: dict[tuple[object, ...], ResultFiles] = {}
        self._cache_locks: dict[tuple[object, ...], threading.Lock] = {}
        self._bytes_by_day: dict[str, int] = {}
        self._created = 0  # jobs ever created: ids stay unique across reset()

    def create(
        self,
        entity: str,
        fields: list[str],
        filters: Filters,
        filters_json: dict[str, object],
        *,
        job_id: str | None = None,
        writer: ResultWriter | None = None,
        cache_key: tuple[object, ...] = (),
    ) -> Job:
        """Create a job (already validated) and start its worker.

        ``job_id`` (default ``job-000001``, ...) must be unique; ``writer`` and ``cache_key``
        are a dialect's result layout (see :class:`Job`).

        Raises:
            QuotaExceeded: ``quota_exhausted_after_jobs`` jobs exist already, or today's
                completed exports reached ``quota_bytes``.
        """
        live = self.settings
        with self._lock:
            limit = live.quota_exhausted_after_jobs
            spent = self._bytes_by_day.get(live.utc_today().isoformat(), 0)
            if (limit is not None and len(self._jobs) >= limit) or spent >= live.quota_bytes:
                raise QuotaExceeded(rfc3339(next_utc_midnight(live.utc_today())))
            self._created += 1
            job = Job(
                number=self._created,
                processing_seconds=processing_seconds_of(live, self._created),
                id=job_id or f"job-{self._created:06d}",
                entity=entity,
                fields=fields,
                filters=filters,
                filters_json=filters_json,
                settings=live.snapshot(),
                will_fail=live.consume("fail_jobs", entity),
                defect=live.malformed.get(entity),
                writer=writer,
                cache_key=cache_key,
            )
            self._jobs[job.id] = job
            worker = threading.Thread(target=self._run, args=(job,), name=job.id, daemon=True)
            self._workers.append(worker)
        worker.start()
        return job

    def get(self, job_id: str) -> Job | None:
        """Return the job called ``job_id``, if any."""
        with self._lock:
            return self._jobs.get(job_id)

    def count_status_call(self, job: Job) -> int:
        """Count a status call of ``job``; return how many it has had, this one included."""
        with self._lock:
            job.status_calls += 1
            return job.status_calls

    def view(self, job: Job, render: Callable[[Job], _T]) -> _T:
        """Return ``render(job)``, read consistently with respect to its worker."""
        with self._lock:
            return render(job)

    def view_all(self, render: Callable[[Job], _T]) -> list[_T]:
        """Return ``render(job)`` of every job, oldest first, all read in one consistent moment."""
        with self._lock:
            return [render(job) for job in self._jobs.values()]

    def all_jobs(self) -> list[Job]:
        """Return every job, oldest first (read each through :meth:`view`)."""
        with self._lock:
            return list(self._jobs.values())

    def reset(self) -> None:
        """Forget every job (stopping those still running) and today's exported bytes.

        Job ids are not re-used, so a client holding an old id gets a 404, never another job.
        """
        with self._lock:
            for job in self._jobs.values():
                job.cancelled.set()
            self._jobs.clear()
            self._bytes_by_day.clear()

    def cancel(self, job: Job) -> bool:
        """Cancel ``job`` if it is pending or processing; return whether it was."""
        with self._lock:
            if job.status not in ACTIVE:
                return False
            job.set_status("cancelled")
            job.cancelled.set()
            return True

    def part_file(self, job_id: str, part: int) -> Path | None:
        """Return part ``part`` of a completed, unexpired job's result, else None."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status != "completed" or job.result is None:
                return None
            if (job.expires_at or 0.0) < time.time():
                return None
            if not 1 <= part <= len(job.result.parts):
                return None
            return job.result.parts[part - 1]

    def close(self) -> None:
        """Stop every worker (their jobs are left as they are) and wait briefly for them."""
        with self._lock:
            for job in self._jobs.values():
                job.cancelled.set()
            workers = list(self._workers)
        for worker in workers:
            worker.join(timeout=5)

    def _run(self, job: Job) -> None:
        """Drive ``job`` through its life cycle (runs in the job's own thread)."""
        settings = job.settings
        processing_at = job.created_at + settings.pending_seconds
        if job.cancelled.wait(max(0.0, processing_at - time.time())):
            return
        with self._lock:
            if job.status != "pending":
                return
            job.set_status("processing", at=processing_at)
        result: ResultFiles | None = None
        error = f"Export failed: simulated internal error while exporting {job.entity}"
        if not job.will_fail:
            try:
                result = self._produce(job)
                job.served_bytes = served_size(result, settings)
            except ExportCancelled:
                return
            except Exception as exc:  # a disk problem: the job fails, like a real one would
                error = f"Export failed: {exc}"
        # Done at the planned instant, or when the files were written if that took longer.
        done_at = max(processing_at + job.processing_seconds, round(time.time(), 3))
        if job.cancelled.wait(max(0.0, done_at - time.time())):
            return
        with self._lock:
            if job.status != "processing":
                return
            if result is None:
                job.error_message = error
                job.set_status("failed", at=done_at)
                return
            job.result = result
            job.set_status("completed", at=done_at)
            job.completed_at = job.updated_at
            day = self.settings.utc_today().isoformat()
            self._bytes_by_day[day] = self._bytes_by_day.get(day, 0) + result.total_bytes

    def _produce(self, job: Job) -> ResultFiles:
        """Write ``job``'s part files, or reuse those of an identical earlier export."""
        settings = job.settings
        if job.defect is not None or not settings.cache_results:
            return self._write(job)
        key = (
            job.entity,
            tuple(job.fields),
            job.filters,
            settings.seed,
            tuple(settings.row_count(name) for name in DEFAULT_ROWS),
            settings.data_start,
            settings.data_days,
            settings.rows_per_part,
            settings.column_order,
            settings.bom,
            settings.bom_led_rows,
            job.writer is not None,
            job.cache_key,
            settings.empty_results_have_parts,
            settings.data_key(),
        )
        with self._lock:
            key_lock = self._cache_locks.setdefault(key, threading.Lock())
        with key_lock:  # an identical export running concurrently is waited for, then reused
            cached = self._cache.get(key)
            if cached is not None and all(path.exists() for path in cached.parts):
                return cached
            result = self._write(job)
            self._cache[key] = result
            return result

    def _write(self, job: Job) -> ResultFiles:
        if job.writer is not None:
            return job.writer(self.directory / job.id, job)
        return write_export(
            self.directory / job.id,
            job.settings,
            job.entity,
            job.fields,
            job.filters,
            defect=job.defect,
            cancelled=job.cancelled.is_set,
        )


def processing_seconds_of(settings: CommonSettings, number: int) -> float:
    """Return how long the sandbox's ``number``-th job (1, 2, ...) is processing, at least.

    ``processing_seconds`` times ``1 + processing_seconds_jitter * u``, with ``u`` in
    ``[-1, 1]`` a fixed function of ``seed`` and ``number``; rounded to the millisecond, as
    the job's timestamps are.
    """
    u = zlib.crc32(f"{settings.seed}:job:{number}".encode()) / 0xFFFFFFFF * 2 - 1
    seconds = settings.processing_seconds * (1 + settings.processing_seconds_jitter * u)
    return round(max(0.0, seconds), 3)


def rfc3339(ts: float) -> str:
    """Return epoch seconds ``ts`` as an RFC 3339 UTC timestamp, like ``2024-01-05T10:20:30Z``;
    with milliseconds when ``ts`` has them (``2024-01-05T10:20:30.250Z``).
    """
    millis = round(ts * 1000)
    moment = datetime.fromtimestamp(millis // 1000, timezone.utc)
    fraction = f".{millis % 1000:03d}" if millis % 1000 else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def next_utc_midnight(day: date) -> float:
    """Return the epoch seconds of 00:00 UTC after ``day`` (when the day's counters restart)."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return (midnight + timedelta(days=1)).timestamp()
