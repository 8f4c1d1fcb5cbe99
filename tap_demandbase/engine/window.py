"""One window of a stream in one run: its job's attempts (the ledger's job first, else an
equivalent one re-used, else a new one; never paid for twice), the parts still to emit, and
the ledger entry and bookmark moved with each part the stream reports done.
"""

from __future__ import annotations

import datetime
import typing as t
from dataclasses import dataclass

from tap_demandbase.engine.budget import JobCost, StreamDeferredError
from tap_demandbase.engine.jobs import (
    ExportJob,
    human_bytes,
    resumable_status,
    reuse_rule,
)
from tap_demandbase.engine.ledger import (
    LedgerEntry,
    Purpose,
    clear_entry,
    read_entries,
    write_entry,
)
from tap_demandbase.engine.polling import (
    HISTORY_SIZE,
    PollSchedule,
    job_history,
    remember_duration,
)
from tap_demandbase.engine.results import ResultParts
from tap_demandbase.engine.stream_state import LAST_JOB_KEY
from tap_demandbase.errors import (
    ApiRequestError,
    DemandbaseError,
    InconsistentResultError,
    MalformedResultError,
    UnknownFieldsError,
)
from tap_demandbase.model import JobSpec, listing_verb
from tap_demandbase.timestamps import state_datetime

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from tap_demandbase.engine.clock import Clock
    from tap_demandbase.engine.export import StreamExport
    from tap_demandbase.engine.results import DownloadedPart
    from tap_demandbase.engine.scheduler import JobKey
    from tap_demandbase.model import ReuseRule


@dataclass(frozen=True)
class PartResult:
    """What the stream emitted from one part: its rows and their greatest bookmark value."""

    rows: int
    max_value: t.Any = None


@dataclass
class WindowProgress:
    """How far one window is: rows emitted by this run, and the greatest bookmark value of
    the window so far (parts emitted by earlier runs included, from the ledger).
    """

    rows: int = 0
    parts: int = 0
    max_value: t.Any = None

    def add(self, result: PartResult) -> None:
        """Count a part the stream has emitted."""
        self.rows += result.rows
        self.parts += 1
        self.max_value = greatest(self.max_value, result.max_value)


def greatest(current: t.Any, value: t.Any) -> t.Any:
    """Return the greater bookmark value (normalised RFC 3339 UTC text compares as instants)."""
    if value is None:
        return current
    return value if current is None or value > current else current


def ledger_entry(
    job: ExportJob, clock: Clock, purpose: Purpose, dropped: Mapping[str, str]
) -> LedgerEntry:
    """Return a new ledger entry for a job that exists (``dropped``: the fields the run drops,
    kept for those the job goes without).
    """
    assert job.status is not None
    created = job.status.created_at or clock.now()
    gone = {f: api for f, api in dropped.items() if f not in job.spec.fields}
    return LedgerEntry(job.status.id, job.spec, created.isoformat(), purpose=purpose, dropped=gone)


class JobStarter:
    """Starts each attempt of one window's job: the ledger's job first (once), else an
    equivalent job that may be re-used, else a new one; never a job an attempt already used.

    Made on the main thread, when the run is planned (it reads the state there); started in a
    job thread, which posts each job it starts to the run's journal instead of the state.
    """

    def __init__(self, stream: StreamExport, spec: JobSpec) -> None:
        self.stream = stream
        #: The job as planned, and as it is sent (less the fields the run drops by then).
        self.planned = self.spec = spec
        self.resume_id = stream.resumable_id(spec)
        self.exclude = {entry.job_id for entry in read_entries(stream.state)}
        self.last_job = state_datetime(stream.state.get(LAST_JOB_KEY))
        self.history = job_history(stream.state)

    def _check_budget(self) -> None:
        """Defer the stream when today's budget has no room for one more job."""
        budget, name = self.stream.run.budget, self.stream.request.name
        if budget is None:
            return
        needs = {"create": 1, "status": self.schedule().expected_calls()}
        if self.stream.run.api.capabilities.can_list_jobs:
            needs["list"] = 1
        short = budget.shortfall(JobCost(needs))
        if short is not None:
            raise StreamDeferredError(budget.defer_message(name, short))

    def new_job(self) -> ExportJob:
        """Return the window's job, not yet started (the fields the run drops left out)."""
        run = self.stream.run
        self.spec = self.stream.fields.without_dropped(self.spec)
        logger = self.stream.logger
        return ExportJob(run.api, self.spec, run.poll_policy, logger, run.clock, self.schedule())

    def schedule(self) -> PollSchedule:
        """Return the job's polling: learned from the stream's last jobs, this run's included."""
        history = (*self.history, *self.stream.durations)[-HISTORY_SIZE:]
        return PollSchedule(self.stream.run.poll_policy, history)

    def start(self, job: ExportJob) -> None:
        """Give ``job`` its API job (resumed, re-used or created) and post it to the journal."""
        stream, run = self.stream, self.stream.run
        if stream.watcher is not None:
            stream.watcher.waiting_for(job)
        max_age = run.api.capabilities.reuse_max_age
        rule = reuse_rule(self.last_job, self.exclude, now=run.clock.now(), max_age=max_age)
        resumed = (
            resumable_status(run.api, self.resume_id, self.spec, stream.logger, run.clock.now())
            if self.resume_id
            else None
        )
        if resumed is not None:
            job.attach(resumed, "resumed from the state")
            run.tally.job_started("resumed")
        elif (listing := listing_verb(run.api)) and (
            reused := listing.find_equivalent_job(self.spec, rule)
        ):
            job.attach(reused, "re-used: an equivalent job already exists")
            run.tally.job_started("reused")
        else:
            self._check_budget()
            self._create(job, rule)
            run.tally.job_started("created")
        self.resume_id = None
        self.exclude.add(job.status_id)
        purpose = stream.purpose_of(self.planned)
        entry = ledger_entry(job, run.clock, purpose, stream.fields.dropped())
        run.journal.post(stream.request.name, entry)

    def _create(self, job: ExportJob, rule: ReuseRule) -> None:
        """Create the job; a create refused for fields the API no longer has is sent again
        without them (each time with fewer fields: it never loops).
        """
        while True:
            try:
                job.create(rule)
                return
            except UnknownFieldsError as refusal:
                self.spec = job.spec = self.stream.fields.drop_refused(job.spec, refusal)


class WindowExport:
    """One window: its completed job, its parts still to emit, its ledger entry.

    Used as a context manager: whatever happens, the window's job gives its scheduler slot back.
    """

    def __init__(self, stream: StreamExport, spec: JobSpec) -> None:
        self.stream = stream
        self.spec = spec
        self.key: JobKey = (stream.request.name, spec)
        self.progress = WindowProgress()
        self._job: ExportJob | None = None
        self._entry: LedgerEntry | None = None
        self._parts: ResultParts | None = None

    def __enter__(self) -> WindowExport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stream.run.scheduler.release(self.key)
        if self._parts is not None:
            self.stream.run.tally.downloaded(self._parts.bytes_downloaded)

    @property
    def job(self) -> ExportJob:
        """Return the window's job, completed (waited for on first use)."""
        if self._job is None:
            stream = self.stream
            try:
                self._job = stream.run.scheduler.completed_job(
                    self.key,
                    stream.job_maker(self.spec),
                    while_waiting=lambda: stream.waiting_for(self.spec),
                )
            except DemandbaseError:
                stream.keep_unfinished_job(self.spec)
                raise
            self._entry = stream.record_in_ledger(self._job)
            self.progress.max_value = self._entry.max_replication_value
        return self._job

    @property
    def dropped_fields(self) -> tuple[str, ...]:
        """Return the stream's selected fields the window's job does not export (the API no
        longer has them): their values are null in every record.
        """
        exported = set(self.job.spec.fields)
        return tuple(f for f in self.stream.request.fields if f not in exported)

    @property
    def entry(self) -> LedgerEntry:
        """Return the window's ledger entry (after its job is complete)."""
        _ = self.job
        assert self._entry is not None
        return self._entry

    def parts(self) -> Iterator[DownloadedPart]:
        """Yield the parts of the window's job that are still to be emitted, each on disk.

        The stream reports each part with ``part_done`` before asking for the next one.
        """
        job, entry, run = self.job, self.entry, self.stream.run
        assert job.status is not None
        self._parts = ResultParts(
            run.api,
            run.opener,
            job.status,
            self.stream.logger,
            skip=set(entry.parts_done),
            stall_seconds=run.stall_seconds,
        )
        if self.stream.watcher is not None:
            self.stream.watcher.downloading(job, self._parts)
        if entry.parts_done:
            done = ", ".join(map(str, sorted(entry.parts_done)))
            self.stream.logger.info(
                "%s: %s emitted by an earlier run; reading the others",
                job.label,
                f"part {done} was" if len(entry.parts_done) == 1 else f"parts {done} were",
            )
        if self.progress.max_value is not None:
            self.stream.checkpoint(self.stream.window_value(self.spec, self.progress))
        try:
            yield from self._parts
        except ApiRequestError as exc:
            if exc.status == 404:  # a part the job lists is not there: the result is broken
                self.stream.reject(entry, "a part of its result is missing (404)")
            raise

    def part_done(self, part: DownloadedPart, result: PartResult) -> None:
        """Record a part the stream has emitted: ledger, bookmark, STATE."""
        self.progress.add(result)
        self.entry.parts_done[part.number] = result.rows
        self.entry.max_replication_value = self.progress.max_value
        write_entry(self.stream.state, self.entry)
        self.stream.checkpoint(self.stream.window_value(self.spec, self.progress))

    def finish(self) -> None:
        """Check the job's totals, then let its ledger entry go and count its filter set done
        (the window is done when all its filter sets are; see ``StreamExport.filter_set_done``).

        Raises:
            MalformedResultError: the rows or bytes disagree with what the job reported (the
                job is marked inconsistent: the next run exports the window anew).
        """
        stream, entry, parts = self.stream, self.entry, self._parts
        assert parts is not None, "finish() after parts()"
        self._check_rows(parts)
        try:
            parts.check_total_size()
        except InconsistentResultError:
            stream.reject(entry, "its parts' bytes disagree with file_size_bytes")
            raise
        clear_entry(stream.state)
        if self.job.server_seconds is not None:
            remember_duration(stream.state, self.job.server_seconds)
        stream.finished_with(entry)
        purpose = stream.purpose_of(self.spec)
        if purpose in ("incremental", "check"):
            for_good = self._done_for_good()
            if purpose == "check":
                stream.run.tally.rows_for(purpose, self.progress.rows)
                stream.check_job_done()
            stream.filter_set_done(self.spec, self.progress.max_value, for_good=for_good)
            return
        stream.run.tally.rows_for(purpose, self.progress.rows)
        if purpose == "backfill":
            stream.backfill_window_done(self.spec)
        stream.checkpoint(None)

    def _check_rows(self, parts: ResultParts) -> None:
        """Log the job's totals; fail when the rows of all its parts (those emitted by earlier
        runs included) disagree with the job's record_count.
        """
        job, entry, logger = self.job, self.entry, self.stream.logger
        took = (
            "" if job.server_seconds is None else f" after {job.server_seconds:.0f}s on the server"
        )
        logger.info(
            "%s: emitted %d records from %d part(s), %s downloaded, %d status calls%s",
            job.label, self.progress.rows, parts.parts_read,
            human_bytes(parts.bytes_downloaded), job.status_calls, took,
        )  # fmt: skip
        expected = parts.job.record_count
        rows = entry.rows_done()
        if expected is None:
            return
        if rows is None:
            logger.warning(
                "%s: the rows of parts emitted by an earlier version of the tap were not "
                "counted; the check against record_count=%d is skipped",
                job.label, expected,
            )  # fmt: skip
            return
        if rows != expected:
            self.stream.reject(entry, f"its parts held {rows} rows, record_count={expected}")
            msg = (
                f"{job.label}: the parts held {rows} rows but the job reported "
                f"record_count={expected}. The bookmark was not advanced: the next run exports "
                "this window again with a new job. Report the job to Demandbase support if it "
                "persists."
            )
            raise MalformedResultError(msg)

    def _done_for_good(self) -> bool:
        """Whether this window never needs exporting again: it is not the run's last (that one
        is read again from the bookmark's day), and all its days had ended when its job was
        created (so no row could still come).
        """
        end = self.spec.end
        if end is None or end >= self.stream.run.end_day:
            return False
        created = state_datetime(self.entry.created_at) or self.stream.run.clock.now()
        return end < created.astimezone(datetime.timezone.utc).date()
