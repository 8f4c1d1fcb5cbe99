"""One stream's export in one run: plan its windows (the bookmark's, a lookback's, a
backfill's or a delete check's), hand them out one by one (each a ``WindowExport``,
``engine/window.py``), and move the bookmark and ``windows_done`` as they finish.

No Singer here. The stream hands in its state (a dict the engine writes its ledger into) and a
``checkpoint`` callback that emits STATE; the stream hands back, for each part, what it emitted
(``PartResult``).

A window whose rows come from several jobs (one per filter set the dialect gives) is done only
when all of them are: until then the bookmark does not move and the window is not marked done,
so that a filter set whose job never ran is exported by the next run over the whole window.
"""

from __future__ import annotations

import datetime
import typing as t
from dataclasses import dataclass, field, replace

from tap_demandbase.engine.backfill import (
    BACKFILL_KEY,
    SYNCED_FROM_KEY,
    BackfillMark,
    BackfillRequest,
    JobAllowance,
    backfill_mark,
    first_synced_day,
    lookback_window,
)
from tap_demandbase.engine.budget import DEFERRED_KEY, DailyBudget
from tap_demandbase.engine.deletes import (
    activated_version,
    check_due,
    mark_checked,
    new_version,
)
from tap_demandbase.engine.fields import FieldDrops, StreamFields
from tap_demandbase.engine.jobs import (
    AttemptPolicy,
    ExportJob,
    run_until_completed,
)
from tap_demandbase.engine.ledger import (
    LedgerEntry,
    Purpose,
    SplitWindow,
    clear_split_window,
    read_ahead,
    read_entries,
    read_entry,
    read_split_window,
    take_ahead,
    write_ahead,
    write_entry,
    write_split_window,
)
from tap_demandbase.engine.results import DEFAULT_STALL_SECONDS, ResultParts
from tap_demandbase.engine.scheduler import LedgerJournal
from tap_demandbase.engine.stream_state import (
    LAST_JOB_KEY,
    WINDOWS_DONE_KEY,
    done_filters,
    windows_done_day,
)
from tap_demandbase.engine.tally import RunTally
from tap_demandbase.engine.window import (
    JobStarter,
    WindowExport,
    WindowProgress,
    greatest,
    ledger_entry,
)
from tap_demandbase.engine.windows import plan_windows
from tap_demandbase.errors import (
    DemandbaseError,
)
from tap_demandbase.model import JobSpec, PollPolicy
from tap_demandbase.timestamps import state_datetime

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Iterable, Iterator, MutableMapping

    from tap_demandbase.engine.clock import Clock
    from tap_demandbase.engine.results import PartOpener
    from tap_demandbase.engine.scheduler import JobFactory, JobKey, JobScheduler
    from tap_demandbase.model import ExportApi, Filters


@dataclass(frozen=True)
class RunContext:
    """What every stream's export shares in one run.

    ``end_day`` is computed once, when the run starts: every stream and every job spec of the
    run uses the same last day, so a run that crosses midnight UTC does not plan a job ahead
    for one day and ask for another (which would orphan the job and spend quota on nothing).
    """

    api: ExportApi
    opener: PartOpener
    clock: Clock
    scheduler: JobScheduler
    end_day: datetime.date
    poll_policy: PollPolicy
    attempts: AttemptPolicy = field(default_factory=AttemptPolicy)
    window_days: int | None = None
    stall_seconds: float = DEFAULT_STALL_SECONDS
    #: What the run did so far (jobs, bytes, records), for its summary line.
    tally: RunTally = field(default_factory=RunTally)
    #: Jobs the job threads created, on their way into the streams' ledgers.
    journal: LedgerJournal = field(default_factory=lambda: LedgerJournal(write_ahead))
    #: The tenant's daily limits across runs (None: the API states none).
    budget: DailyBudget | None = None
    #: Backfill jobs the run may still plan, shared by its streams.
    backfill_jobs: JobAllowance = field(default_factory=lambda: JobAllowance(None))
    #: The fields each stream's jobs go without in this run (the API no longer has them).
    fields: FieldDrops = field(default_factory=FieldDrops)


class Checkpoint(t.Protocol):
    """Emits STATE after giving the stream's bookmark a value (None: unchanged)."""

    def __call__(self, value: t.Any, *, window_done: bool = False) -> None:
        """``window_done``: a window is done in full, so the bookmark may become final."""
        ...


class JobWatcher(t.Protocol):
    """Follows a stream's jobs for people (progress lines): what is waited for, what is read."""

    def waiting_for(self, job: ExportJob) -> None:
        """A job is being created, resumed or re-used, and will be waited for."""
        ...

    def downloading(self, job: ExportJob, result: ResultParts) -> None:
        """A completed job's parts are now downloaded and emitted."""
        ...


@dataclass(frozen=True)
class StreamRequest:
    """What the stream asks of the engine: its entity, fields, bookmark field and first day."""

    name: str
    fields: tuple[str, ...]
    replication_key: str | None
    start: datetime.date | None
    #: The longest window the API accepts for this stream (None: any), whatever window_days.
    max_window_days: int | None = None
    #: A stream whose last finished job is younger than this is skipped (None: never).
    min_interval: datetime.timedelta | None = None
    #: start_date's day: no lookback goes before it, and a backfill ends there by default.
    start_date: datetime.date | None = None
    #: Days re-read before the first day of the incremental windows, every run.
    lookback_days: int = 0
    backfill: BackfillRequest | None = None
    #: How often every row is exported again to find the deleted ones (None: never).
    delete_check: datetime.timedelta | None = None
    #: The property identifying a record (never dropped from a job, like the bookmark's).
    primary_key: str | None = None
    #: Every property of the stream's catalog, selected or not (empty: just ``fields``).
    catalog_fields: tuple[str, ...] = ()

    @property
    def key_fields(self) -> set[str]:
        """Return the fields a job of the stream cannot go without: its keys."""
        return {k for k in (self.primary_key, self.replication_key) if k}

    def window_days(self, configured: int | None) -> int | None:
        """Return the days of each window: the configured ones, within the API's maximum."""
        days = [d for d in (configured, self.max_window_days) if d]
        return min(days) if days else None


class StreamExport:
    """The windows of one stream in one run, oldest first."""

    def __init__(
        self,
        run: RunContext,
        request: StreamRequest,
        state: MutableMapping[str, t.Any],
        logger: logging.Logger,
        checkpoint: Checkpoint,
        watcher: JobWatcher | None = None,
        version_complete: Callable[[int], None] | None = None,
    ) -> None:
        self.run = run
        self.request = request
        self.state = state
        self.logger = logger
        self._emit_state = checkpoint
        self.watcher = watcher
        #: Says that every row of a table version is emitted (a delete check finished).
        self._version_complete = version_complete
        #: The table version this run's records carry (None: the stream was never checked).
        self.version: int | None = None
        self._checks_left = 0
        run.journal.register(request.name, state)
        self._specs: list[JobSpec] | None = None
        self._due: list[JobSpec] | None = None
        self._entries: list[LedgerEntry] | None = None
        self._filter_sets: list[Filters] | None = None
        #: Specs of windows that are not the bookmark's → what they are for.
        self._purposes: dict[JobSpec, Purpose] = {}
        #: Server seconds of the jobs completed in this run (appended by job threads).
        self.durations: list[float] = []
        #: The fields the stream's jobs go without in this run (the API no longer has them).
        self.fields = StreamFields(
            run.api,
            run.fields,
            request.name,
            selected=request.fields,
            catalog=request.catalog_fields,
            keys=request.key_fields,
            logger=logger,
        )

    # Planning ---------------------------------------------------------------------------------

    def specs(self) -> list[JobSpec]:
        """Return this run's jobs for the stream (planned once per run): the lookback's
        windows, then the bookmark's (a job the ledger names first: it is resumed; then the
        windows up to the run's end day, one job per window and filter set, less the filter
        sets of a window already done), then the backfill's.
        """
        if self._specs is None:
            specs = self.due_specs()
            if specs or self.skipped_because() is None:
                backfill = self._extra_specs("backfill", self._backfill_windows(), allowance=True)
                specs = specs + [s for s in backfill if s not in specs]
            self._specs = specs
        return self._specs

    def take_plan_of(self, other: StreamExport) -> None:
        """Take the plan another export of this stream made on a stand-in state (its specs,
        their purposes, and what it wrote into that state), so that the run plans once.
        """
        self.state.update({k: v for k, v in other.state.items() if k not in self.state})
        self._specs, self._due = other._specs, other._due
        self._purposes, self._filter_sets = other._purposes, other._filter_sets
        self.durations = other.durations
        self.version, self._checks_left = other.version, other._checks_left

    def due_specs(self) -> list[JobSpec]:
        """Return the jobs this run owes the stream: the lookback's and the bookmark's (none
        when the stream is skipped), planned once per run.
        """
        if self._due is None:
            skipped = self.skipped_because()
            if skipped is not None:
                self.logger.info("Stream '%s' skipped: %s", self.request.name, skipped)
                self._due = []
                return self._due
            self.remember_first_synced_day()
            self.version = activated_version(self.state)
            if self._delete_check_due():
                self._due = self._extra_specs("check", self._check_windows())
                self._checks_left = len(self._due)
                self.version = new_version(self.run.clock.now(), self.state)
                return self._due
            split = read_split_window(self.state)
            incremental = [
                spec for spec in self._planned_specs() if split is None or not split.did(spec)
            ]
            lookback = self._extra_specs("lookback", self._lookback_windows())
            self._due = lookback + [s for s in incremental if s not in lookback]
        return self._due

    def _delete_check_due(self) -> bool:
        """Whether this run exports every row again to find the deleted ones."""
        every = self.request.delete_check
        return every is not None and check_due(self.state, every, self.run.clock.now())

    def _check_windows(self) -> list[tuple[datetime.date | None, datetime.date | None]]:
        """Return the windows of a delete check: every row, from start_date, in the stream's
        windows (one window of all rows without a bookmark field or start_date).
        """
        start = self.request.start_date
        if not self.request.replication_key:
            return [(None, None)]
        if start is None:
            return [(None, self.run.end_day)]
        days = self.request.window_days(self.run.window_days)
        return list(plan_windows(start, self.run.end_day, days))

    def check_job_done(self) -> None:
        """Count a delete check's job done; after its last one, the version is complete."""
        self._checks_left -= 1
        if self._checks_left == 0 and self.version is not None:
            mark_checked(self.state, self.version, self.run.clock.now())
            if self._version_complete is not None:
                self._version_complete(self.version)

    def purpose_of(self, spec: JobSpec) -> Purpose:
        """Return what a planned job is for: the bookmark's windows, a lookback, a backfill."""
        return self._purposes.get(spec, "incremental")

    def _extra_specs(
        self,
        purpose: Purpose,
        windows: t.Sequence[tuple[datetime.date | None, datetime.date | None]],
        *,
        allowance: bool = False,
    ) -> list[JobSpec]:
        """Return the jobs of a lookback or a backfill: its jobs in the ledger (resumed), then
        one per window and filter set (a backfill's within the run's allowance).
        """
        entries = [e for e in self._ledger_entries() if e.purpose == purpose]
        resumed = [replace(e.spec, fields=self.request.fields) for e in entries]
        half_done = self._backfill_half_done() if purpose == "backfill" else set()
        new = [
            spec
            for start, end in windows
            for f in self.filter_sets()
            if (spec := self._spec(start, end, f)) not in resumed
            and (spec.start, spec.filters) not in half_done
        ]
        if allowance:
            new = new[: self.run.backfill_jobs.take(len(new))]
        for spec in resumed + new:
            self._purposes[spec] = purpose
        return resumed + new

    def _lookback_windows(self) -> list[tuple[datetime.date, datetime.date]]:
        """Return the lookback's windows: from lookback_days before the bookmark's day to the
        incremental windows' first day, once the stream has a bookmark (a first sync starts at
        start_date anyway).
        """
        bookmark = state_datetime(self.state.get("replication_key_value"))
        if not self.request.replication_key or bookmark is None:
            return []
        day = bookmark.astimezone(datetime.timezone.utc).date()
        request = self.request
        span = lookback_window(day, self._range()[0], request.lookback_days, request.start_date)
        if span is None:
            return []
        return plan_windows(*span, self.request.window_days(self.run.window_days))

    def _backfill_windows(self) -> list[tuple[datetime.date, datetime.date]]:
        """Return the backfill's windows still to export, oldest first (its state is written
        here when the settings start a new one).
        """
        wanted = self.request.backfill
        if wanted is None or not self.request.replication_key:
            return []
        first = first_synced_day(self.state, self.request.start_date or self._range()[0])
        mark = backfill_mark(self.state, wanted, first or wanted.start)
        if mark is None or mark.finished:
            return []
        days = self.request.window_days(self.run.window_days)
        return plan_windows(mark.next_day, mark.end, days)

    def _backfill_half_done(self) -> set[tuple[datetime.date | None, Filters]]:
        """Return the (first day, filters) of the backfill's jobs already done in the window it
        is at (a window exported by several jobs, one per filter set, half done).
        """
        mark = BackfillMark.from_state(self.state.get(BACKFILL_KEY))
        return set() if mark is None else {(mark.next_day, f) for f in mark.filters_done}

    def backfill_window_done(self, spec: JobSpec) -> None:
        """Count a backfill job's filter set done; once all of its window are, the backfill
        is done through the window's last day (and said finished after its last window).
        """
        mark = BackfillMark.from_state(self.state.get(BACKFILL_KEY))
        if mark is None or spec.start != mark.next_day:
            return
        mark.filters_done.append(spec.filters)
        if not set(self.filter_sets()) - set(mark.filters_done):
            mark.through, mark.filters_done = spec.end, []
            if mark.finished:
                self.logger.info(
                    "The backfill of stream '%s' from %s to %s is finished",
                    self.request.name, mark.start, mark.end,
                )  # fmt: skip
        self.state[BACKFILL_KEY] = mark.to_state()

    def remember_first_synced_day(self) -> None:
        """Keep the day a stream's first sync starts on (a backfill ends there by default)."""
        if (
            self.request.replication_key
            and SYNCED_FROM_KEY not in self.state
            and self.state.get("replication_key_value") is None
            and self.request.start is not None
        ):
            self.state[SYNCED_FROM_KEY] = self.request.start.isoformat()

    def skipped_because(self) -> str | None:
        """Say why this run skips the stream (None: it does not): its last finished job is
        younger than its min_interval_hours. A stream with jobs in flight, or deferred by the
        budget, is never skipped.
        """
        interval = self.request.min_interval
        last = state_datetime(self.state.get(LAST_JOB_KEY))
        if not interval or last is None or read_entries(self.state):
            return None
        if self.state.get(DEFERRED_KEY) is not None:
            return None
        age = self.run.clock.now() - last
        if age >= interval:
            return None
        hours = interval.total_seconds() / 3600
        return (
            f"its last job was created {age.total_seconds() / 3600:.1f} h ago, less than "
            f"min_interval_hours={hours:g}; it is due again at {last + interval:%Y-%m-%d %H:%M} UTC"
        )

    def filter_sets(self) -> list[Filters]:
        """Return the filter sets of each window's jobs (the dialect's, asked once per run)."""
        if self._filter_sets is None:
            self._filter_sets = self.run.api.job_filters(self.request.name)
        return self._filter_sets

    def _planned_specs(self) -> list[JobSpec]:
        start, end = self._range()
        filter_sets = self.filter_sets()
        entries = [e for e in self._ledger_entries() if e.purpose == "incremental"]
        specs: list[JobSpec] = []
        for entry in entries:
            # The ledger's windows, with the fields selected now: a job with more fields is
            # read without the extra columns; one lacking a field is replaced by a new job.
            window = [replace(entry.spec, fields=self.request.fields)]
            window += [
                self._spec(entry.spec.start, entry.spec.end, f)
                for f in filter_sets
                if f != entry.spec.filters
            ]
            specs += [spec for spec in window if spec not in specs]
        if entries:
            last = entries[-1].spec.end
            if last is None or (start and start > end) or last >= end:
                return specs
            start = max(start or last, last + datetime.timedelta(days=1))
        if start is not None and start > end:
            self.logger.info(
                "Nothing to export for %s: start %s is after end %s", self.request.name, start, end
            )
            return specs
        windows: list[tuple[datetime.date | None, datetime.date]] = [(start, end)]
        if start is not None:
            windows = list(plan_windows(start, end, self.request.window_days(self.run.window_days)))
        return specs + [self._spec(s, e, f) for s, e in windows for f in filter_sets]

    def _spec(
        self, start: datetime.date | None, end: datetime.date | None, filters: Filters
    ) -> JobSpec:
        return JobSpec(
            entity=self.request.name,
            fields=self.request.fields,
            date_field=self.request.replication_key,
            start=start,
            end=end,
            filters=filters,
        )

    def _range(self) -> tuple[datetime.date | None, datetime.date]:
        """Return the days to export: from the bookmark's day (read again: the overlap day),
        or the day after the windows an earlier run finished, whichever is later, to the end
        (no start: all rows).
        """
        start = self.request.start
        done = self._windows_done_through()
        if done is not None and (start is None or start <= done):
            start = done + datetime.timedelta(days=1)
        return start, self.run.end_day

    def _windows_done_through(self) -> datetime.date | None:
        """Return the last day of the windows an earlier run finished (for this replication
        key and these filters), if any.
        """
        done = self.state.get(WINDOWS_DONE_KEY)
        if not isinstance(done, dict) or done.get("field") != self.request.replication_key:
            return None
        if done_filters(done) != self.filter_sets():
            return None
        try:
            return windows_done_day(done.get("through"))
        except ValueError:
            return None

    def _ledger_entries(self) -> list[LedgerEntry]:
        """Return the ledger's jobs that are this stream's windows, oldest window first, as the
        run found them (read, and each one ignored said, once per run).
        """
        if self._entries is None:
            self._entries = self._usable_entries(self.filter_sets())
        return self._entries

    def _usable_entries(self, filter_sets: list[Filters]) -> list[LedgerEntry]:
        """Return the ledger's jobs that are this stream's windows, oldest window first; say
        why of each that is not.
        """
        usable = []
        for entry in read_entries(self.state):
            if entry.spec.entity != self.request.name:
                self.logger.warning(
                    "The state of stream '%s' names export job %s of entity '%s': ignoring it",
                    self.request.name, entry.job_id, entry.spec.entity,
                )  # fmt: skip
            elif entry.spec.filters not in filter_sets:
                self.logger.warning(
                    "Export job %s from the state has other filters than the settings ask for "
                    "now: ignoring it",
                    entry.job_id,
                )
            else:
                usable.append(entry)
        return sorted(
            usable,
            key=lambda e: (e.spec.start or datetime.date.min, e.spec.end or datetime.date.max),
        )

    def planned_jobs(self) -> list[tuple[JobKey, JobFactory]]:
        """Return the key and the maker of each of this stream's jobs, for the scheduler to
        start as slots free up (in background threads: what they create reaches the ledger
        through the run's journal). Empty when the stream cannot plan: it reports that itself
        when its turn comes.
        """
        try:
            specs = self.specs()
        except DemandbaseError:
            return []
        return [((self.request.name, spec), self.job_maker(spec)) for spec in specs]

    def job_maker(self, spec: JobSpec) -> JobFactory:
        """Return what gets ``spec``'s job completed: the ledger's job resumed, an equivalent
        one re-used, or one created, then waited for and tried anew (up to max_job_attempts)
        when it fails. The state is read now, on this thread; the job runs in a job thread.
        """
        starter = JobStarter(self, spec)

        def completed() -> ExportJob:
            self.fields.check()
            job = run_until_completed(starter.new_job, self.run.attempts, start=starter.start)
            if job.server_seconds is not None:
                self.durations.append(job.server_seconds)  # the next jobs poll by it
            return job

        return completed

    def checkpoint(self, value: t.Any, *, window_done: bool = False) -> None:
        """Emit STATE after giving the bookmark ``value`` (None: unchanged), with every job the
        job threads created so far in its stream's ledger.
        """
        self.run.journal.apply()
        if self.run.budget is not None:
            for name, state in self.run.journal.states():
                self.run.budget.write_usage(name, state)
        self._emit_state(value, window_done=window_done)

    def waiting_for(self, spec: JobSpec) -> None:
        """While the stream waits for ``spec``'s job: emit STATE if job threads created jobs
        since the last one, the awaited job as the one the ledger is reading.
        """
        applied = self.run.journal.apply()
        if self._promote(spec) or applied:
            self._emit_state(None)

    def _promote(self, spec: JobSpec) -> bool:
        """Make the job created ahead for ``spec``'s window the one the ledger is reading;
        return whether there was one.
        """
        ahead = job_of_window(read_ahead(self.state) or [], spec)
        if ahead is None:
            return False
        take_ahead(self.state, ahead.job_id)
        current = read_entry(self.state)
        if current is not None:
            write_ahead(self.state, current)
        write_entry(self.state, ahead)
        return True

    # Windows ----------------------------------------------------------------------------------

    def windows(self) -> Iterator[WindowExport]:
        """Yield each window's export in turn."""
        for spec in self.specs():
            yield WindowExport(self, spec)

    def record_in_ledger(self, job: ExportJob) -> LedgerEntry:
        """Make the job the one the stream's ledger is reading (keeping parts done if it is the
        same job) and emit STATE, so that a crash from here on re-attaches to it.
        """
        assert job.status is not None
        self.run.journal.apply()
        entry = read_entry(self.state)
        ahead = take_ahead(self.state, job.status.id)
        later = None
        if entry is None or entry.job_id != job.status.id:
            later = entry  # another window's job, read later: it waits ahead
            purpose = self.purpose_of(replace(job.spec, fields=self.request.fields))
            entry = ahead or ledger_entry(job, self.run.clock, purpose, self.fields.dropped())
        write_entry(self.state, entry)
        if later is not None and any(job_of_window([later], s) for s in self._specs or []):
            write_ahead(self.state, later)
        self.checkpoint(None)
        return entry

    def keep_unfinished_job(self, spec: JobSpec) -> None:
        """Make the job of a window that could not be read (it failed, timed out, or its run
        stops) the one the ledger names for the next run, and emit STATE.
        """
        self.run.journal.apply()
        self._promote(spec)
        self._emit_state(None)

    def resumable_id(self, spec: JobSpec) -> str | None:
        """Return the ledger's job id if that job can deliver ``spec``; say why not if it
        exports this window but cannot.
        """
        entry = job_of_window(read_entries(self.state), spec)
        if entry is None:
            return None  # no job of this window (and filters) in the ledger
        if entry.inconsistent:
            self.logger.warning(
                "Export job %s from the state delivered an inconsistent result (%s); "
                "exporting its window anew",
                entry.job_id, entry.inconsistent,
            )  # fmt: skip
            return None
        if entry.dropped and set(spec.fields) - set(entry.spec.fields) <= set(entry.dropped):
            spec = self.fields.resumed_without(entry.job_id, entry.dropped, spec)
        if not entry.spec.covers(spec):
            missing = sorted(set(spec.fields) - set(entry.spec.fields))
            self.logger.info(
                "Export job %s from the state lacks the now selected field(s) %s; exporting "
                "its window anew",
                entry.job_id, ", ".join(missing),
            )  # fmt: skip
            return None
        return entry.job_id

    def finished_with(self, entry: LedgerEntry) -> None:
        """Remember the creation time of a job the stream is done with: no job created
        before it is re-used (its snapshot would be older than what was already emitted).
        """
        created = state_datetime(entry.created_at)
        last = state_datetime(self.state.get(LAST_JOB_KEY))
        if created is not None and (last is None or created > last):
            self.state[LAST_JOB_KEY] = created.isoformat()

    def window_value(self, spec: JobSpec, progress: WindowProgress) -> t.Any:
        """Return the value the bookmark may take while a job emits: the greatest of its
        window so far when every other filter set of the window is done; else None (a
        filter set still to come may hold older rows, which the next run must start before).
        """
        if self.purpose_of(spec) not in ("incremental", "check"):
            return None  # a lookback or a backfill never moves the bookmark
        split = self._split_window(spec)
        if not set(self.filter_sets()) - set(split.done) - {spec.filters}:
            return greatest(split.max_replication_value, progress.max_value)
        return None

    def filter_set_done(self, spec: JobSpec, max_value: t.Any, *, for_good: bool) -> None:
        """Count a job's filter set as done in its window and emit STATE; once every filter
        set of the window is, the window is done: the bookmark takes its greatest value, and
        ``for_good`` windows are marked done for later runs.
        """
        split = self._split_window(spec)
        split.add(spec.filters, max_value, for_good=for_good)
        if spec.date_field and set(self.filter_sets()) - set(split.done):
            write_split_window(self.state, split)
            self.checkpoint(None)
            return
        clear_split_window(self.state)
        if split.for_good:
            self.state[WINDOWS_DONE_KEY] = {
                "field": spec.date_field,
                "filters": [dict(f) for f in self.filter_sets()],
                "through": str(spec.end),
            }
        self.checkpoint(split.max_replication_value, window_done=True)

    def _split_window(self, spec: JobSpec) -> SplitWindow:
        """Return what the state says is done of the job's window (nothing if it names another
        window, or none).
        """
        split = read_split_window(self.state)
        return split if split is not None and split.holds(spec) else SplitWindow.of(spec)

    def reject(self, entry: LedgerEntry, reason: str) -> None:
        """Mark the ledger's job as inconsistent and emit STATE: the next run exports its
        window with a new job instead of trusting (or re-using) this one.
        """
        entry.inconsistent = reason
        write_entry(self.state, entry)
        self.finished_with(entry)
        self.checkpoint(None)


def job_of_window(entries: Iterable[LedgerEntry], spec: JobSpec) -> LedgerEntry | None:
    """Return the ledger's job of ``spec``'s window and filters (whatever its fields), if any."""
    return next((e for e in entries if replace(e.spec, fields=spec.fields) == spec), None)
