"""Run feedback a person can follow: a progress line every ``progress_interval_seconds`` while a
stream syncs, and the truth about how an interrupted run resumes.

Job state changes and downloaded parts are logged as they happen, but a long part, a slow
target or a long wait for a job can leave minutes without a word. While a stream syncs, a daemon
thread therefore logs at a fixed interval what the stream has done so far: records emitted and
their rate while emitting (the time spent waiting for jobs is counted apart: averaged over the
wait, the rate would say nothing about the emitting), which part of how many, bytes downloaded
of the job's total. The stream only bumps plain counters (``records``, ``part``) and says which
job it waits for and which result it reads; the thread reads them.

The SDK says "Stream is assumed to be unsorted, progress is not resumable if interrupted" of
every stream whose records are not sorted by the replication key. These streams' records are
not sorted, but an interrupted run does resume: the job ledger in the state names the export job
and the parts already emitted, so the next run reads that job's other parts (no new job). The
progress marker therefore carries a note that says so; the run says it once (``RESUME_LINE``),
and each stream at DEBUG.
"""

from __future__ import annotations

import threading
import time
import typing as t

from tap_demandbase.engine.background import Loop, start_thread
from tap_demandbase.engine.jobs import human_bytes
from tap_demandbase.sdk_compat import PROGRESS_MARKER_NOTE, PROGRESS_MARKERS

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, MutableMapping, Sequence

    from tap_demandbase.engine.jobs import ExportJob
    from tap_demandbase.engine.results import ResultParts
    from tap_demandbase.engine.tally import TallySnapshot
    from tap_demandbase.model import JobSpec

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


#: How an interrupted run resumes, said once per run (the SDK would call it not resumable).
RESUME_LINE = (
    "Records arrive in no particular order: a bookmark advances once a window's job is emitted "
    "in full, and an interrupted run resumes that job from its next part."
)


def resume_line(stream: str, replication_key: str | None) -> str:
    """Return the DEBUG line that says how an interrupted sync of ``stream`` resumes."""
    if replication_key is None:
        return (
            f"{stream}: FULL_TABLE, no bookmark; an interrupted run resumes the export job "
            f"from its next part (bookmarks.{stream}.export_job in the state), without a new job."
        )
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
        self._lock = threading.Lock()
        #: Seconds spent per phase ("wait": for a job; "emit": reading and emitting its
        #: parts), the current phase and since when.
        self._seconds = {"wait": 0.0, "emit": 0.0}
        self._phase: t.Literal["wait", "emit"] | None = None
        self._phase_since = self._started

    def waiting_for(self, job: ExportJob) -> None:
        """Follow a job that is being created, resumed or re-used, until it completes (from
        a background thread too, when the job is started ahead).
        """
        self.job = job
        self.result = None
        self._enter_phase("wait")

    def downloading(self, job: ExportJob, result: ResultParts) -> None:
        """Follow a completed job whose parts are now downloaded and emitted."""
        self.job = job
        self.result = result
        self.part = 0
        self._enter_phase("emit")

    def _enter_phase(self, phase: t.Literal["wait", "emit"] | None) -> None:
        """Close the current phase's time and start ``phase`` (None: neither)."""
        with self._lock:
            now = self._clock()
            if self._phase is not None:
                self._seconds[self._phase] += now - self._phase_since
            self._phase, self._phase_since = phase, now

    def seconds(self, phase: t.Literal["wait", "emit"]) -> float:
        """Return the seconds spent so far waiting for jobs ("wait") or emitting ("emit")."""
        with self._lock:
            ongoing = self._clock() - self._phase_since if self._phase == phase else 0.0
            return self._seconds[phase] + ongoing

    def line(self) -> str:
        """Return the progress line for now."""
        elapsed = self._clock() - self._started
        waited = self.seconds("wait")
        if self.result is None:
            job = self.job
            state = job.status.state.value if job is not None and job.status else None
            waiting = f"{job.label}, {state}" if job is not None and state else "its export job"
            done = f"{self.records:,} records emitted so far; " if self.records else ""
            return (
                f"{self.stream}: {done}waiting for {waiting} ({waited:.0f}s waiting, "
                f"{elapsed:.0f}s into the stream)"
            )
        result = self.result
        total = result.job.file_size_bytes
        emitting = self.seconds("emit")
        rate = self.records / max(emitting, 1e-6)
        after = f", after {waited:.0f}s waiting for jobs" if waited >= 0.5 else ""
        return (
            f"{self.stream}: {self.records:,} records emitted ({rate:,.0f}/s over {emitting:.0f}s "
            f"emitting{after}), part {max(self.part, 1)} of {result.count_text}, "
            f"{human_bytes(result.bytes_downloaded)} of "
            f"{human_bytes(total) if total is not None else 'an unknown total'} downloaded"
        )

    def log_every_interval(self, wait: Callable[[float], bool]) -> None:
        """Log the progress line each time ``wait(interval)`` returns False (timed out), until
        it returns True (the sync ended). The thread passes its loop's ``wait``.
        """
        while not wait(self.interval):
            self.logger.info("%s", self.line())

    def __enter__(self) -> SyncProgress:
        self.logger.debug("%s", resume_line(self.stream, self.replication_key))
        with self._lock:
            self._started = self._phase_since = self._clock()
            self._seconds = {"wait": 0.0, "emit": 0.0}
        self.records = 0
        self._loop = start_thread(f"progress-{self.stream}", self.log_every_interval)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None:
            self._loop.stop()
        self._loop = None
        self._enter_phase(None)


def plural(count: int, noun: str) -> str:
    """Return ``1 stream``, ``2 streams``: a count with its noun."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def nothing_selected_line(catalog_streams: int) -> str:
    """Say that the catalog selects no stream (the run exports nothing), and how to select."""
    if not catalog_streams:
        return "The catalog has no stream: nothing is exported. Run --discover to write one."
    return (
        f"No stream of the catalog's {catalog_streams} is selected: nothing is exported. Select "
        'streams (metadata "selected": true; with Meltano: meltano select tap-demandbase ...).'
    )


def plan_line(plans: Sequence[tuple[str, Sequence[JobSpec] | str | None, str]]) -> str:
    """Return the line a sync starts with: the selected streams and the jobs each needs (None:
    the stream cannot be planned; its own error follows when its turn comes), streams that
    need the same jobs said together.
    """
    jobs = sum(len(specs) for _, specs, _ in plans if not isinstance(specs, (str, type(None))))
    groups: dict[tuple[int | None, str, str], list[str]] = {}
    for stream, specs, note in plans:
        groups.setdefault((*_jobs_needed(specs), note), []).append(stream)
    described = []
    for (count, what, note), streams in groups.items():
        each = " each" if count and len(streams) > 1 else ""
        needed = (
            f"{plural(count, 'job')}{each} ({what}{'; ' + note if note else ''})" if count else what
        )
        described.append(f"{', '.join(streams)}: {needed}")
    return (
        f"Plan: {plural(len(plans), 'stream')}, {plural(jobs, 'export job')}. "
        f"{'; '.join(described)}"
    )


def _jobs_needed(specs: Sequence[JobSpec] | str | None) -> tuple[int | None, str]:
    """Return how many jobs a stream needs and their span (``2024-01-01..2024-04-30``, ``all
    rows``), or, for none, why: nothing to export, skipped (the text says why), not planned.
    """
    if isinstance(specs, str):
        return None, specs
    if specs is None:
        return None, "not planned (its error follows)"
    if not specs:
        return None, "nothing to export"
    first, last = specs[0], specs[-1]
    return len(
        specs
    ), f"{first.start or '…'}..{last.end or '…'}" if first.date_field else "all rows"


def _extra_rows(what: str, rows: int | None) -> list[str]:
    """Say the rows of lookback or backfill windows, when some ran."""
    return [] if rows is None else [f"{what} {plural(rows, 'row')}"]


def summary_line(run: TallySnapshot, failures: int, calls: str | None) -> str:
    """Return the line a sync ends with: streams, records and the rate while emitting, jobs
    created, re-used or resumed and the time spent waiting for them, bytes, failures, duration
    and the API calls (the dialect's words).
    """
    rate = ""
    if run.records and run.emit_seconds > 0:
        rate = f" ({run.records / run.emit_seconds:,.0f}/s while emitting)"
    jobs = run.jobs
    said = [
        plural(run.streams, "stream"),
        f"{plural(run.records, 'record')}{rate}",
        f"jobs: {jobs.created} created, {jobs.reused} re-used, {jobs.resumed} resumed "
        f"({run.wait_seconds:.1f}s waiting for them)",
        f"{human_bytes(run.bytes_downloaded)} downloaded",
        *_extra_rows("the lookback re-read", run.lookback_rows),
        *_extra_rows("backfill windows brought", run.backfill_rows),
        *_extra_rows("the delete check read", run.check_rows),
        plural(failures, "failure") if failures else "no failure",
        f"{run.seconds:.1f}s in all",
    ]
    return f"Run summary: {', '.join(said)}" + (f"; {calls}" if calls else "")
