"""One Singer stream per Demandbase entity type: bookmark → export job → parts → records.

Nothing here knows HTTP or the API's JSON; the stream only turns its bookmark and selection
into a JobSpec, and the job's parts into records the SDK emits with the bookmark and STATE.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import sys
import typing as t
from dataclasses import dataclass, field, replace

import pendulum
from singer_sdk import Stream
from singer_sdk.exceptions import SyncLifecycleSignal
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from typing_extensions import override

from tap_demandbase.api import JobSpec
from tap_demandbase.batches import batch_writer
from tap_demandbase.errors import (
    ApiRequestError,
    AuthError,
    BadStateError,
    ConfigError,
    DemandbaseError,
    InconsistentResultError,
    MalformedResultError,
    QuotaExceededError,
    TargetGoneError,
)
from tap_demandbase.jobs import (
    AttemptPolicy,
    ExportJob,
    PollPolicy,
    human_bytes,
    resumable_status,
    reuse_rule,
    run_until_completed,
)
from tap_demandbase.ledger import LedgerEntry, clear_entry, read_entry, write_entry
from tap_demandbase.progress import PROGRESS_INTERVAL_SECONDS, SyncProgress, mark_resumable
from tap_demandbase.records import CsvPartReader
from tap_demandbase.results import ResultParts
from tap_demandbase.scheduler import JobScheduler
from tap_demandbase.schema import date_fields
from tap_demandbase.writer import FastSingerWriter

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from singer_sdk import Tap
    from singer_sdk.helpers import types
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
    from singer_sdk.singerlib import Catalog, MetadataMapping

    from tap_demandbase.api import ExportApi
    from tap_demandbase.results import DownloadedPart

PRIMARY_KEY = "id"
#: Stream state key: creation time of the last job this stream finished with (all its rows
#: emitted, or its result rejected as inconsistent). No older job is ever re-used.
LAST_JOB_KEY = "last_job_created_at"
#: Stream state key: the last day of the windows (all but the final one of a run) already
#: exported, so that a later run does not export finished windows, empty ones included, again.
WINDOWS_DONE_KEY = "windows_done"


@dataclass(frozen=True)
class ExportSettings:
    """What every stream's export job shares: the API, polling, filters and the end date."""

    api: ExportApi
    poll_policy: PollPolicy
    scheduler: JobScheduler
    end_date: datetime.datetime | None = None
    account_list_id: str | None = None
    window_days: int | None = None
    download_stall_seconds: float = 60.0
    attempts: AttemptPolicy = field(default_factory=AttemptPolicy)
    failures: list[str] = field(default_factory=list)


class _OneLineErrors(logging.Filter):
    """Drop the SDK's generic "unhandled error" line for errors the tap reports in one line,
    and for the SDK's own stop signals (``--test`` stops each stream after one record).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            str(record.msg).startswith("An unhandled error occurred")
            and isinstance(sys.exc_info()[1], (DemandbaseError, SyncLifecycleSignal))
        )


def plan_windows(
    start: datetime.date, end: datetime.date, days: int | None
) -> list[tuple[datetime.date, datetime.date]]:
    """Split [start, end] (inclusive UTC days) into consecutive windows of ``days`` days.

    The windows are contiguous and cover the range exactly: each day is in exactly one.
    """
    if not days:
        return [(start, end)]
    windows = []
    while start <= end:
        last = min(start + datetime.timedelta(days=days - 1), end)
        windows.append((start, last))
        start = last + datetime.timedelta(days=1)
    return windows


def utc_date(value: str | datetime.datetime) -> datetime.date:
    """Return the UTC calendar date of a bookmark, start_date or end_date value.

    Raises:
        ValueError: The value is not a date or date-time.
    """
    moment: t.Any = pendulum.instance(value) if isinstance(value, datetime.datetime) else value
    if isinstance(moment, str):
        moment = pendulum.parse(moment)
    if isinstance(moment, datetime.datetime):
        return moment.astimezone(datetime.timezone.utc).date()
    if isinstance(moment, datetime.date):
        return moment
    raise ValueError(f"{value!r} is not a date")


def _is_date(value: t.Any) -> bool:
    """Whether a bookmark is a date or date-time string."""
    if not isinstance(value, str):
        return False
    try:
        utc_date(value)
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def _state_datetime(value: t.Any) -> datetime.datetime | None:
    """Read a timestamp the tap wrote into the state; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


class ExportStream(Stream):
    """The records of one entity type, exported by one job per sync from the bookmark's day.

    The bookmark is the greatest replication-key value seen; the next job starts on that UTC
    day, so the bookmark's day is read again (at-least-once; targets de-duplicate on ``id``).

    Records leave the CSV reader already typed by the schema, so the SDK's per-record type
    conformance is off, and when no stream map or flattening changes records they go straight to
    the orjson writer (see ``_write_record_message``).
    """

    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(
        self,
        tap: Tap,
        *,
        name: str,
        schema: dict[str, t.Any],
        replication_key: str,
        export: ExportSettings,
        key_from_settings: bool = False,
    ) -> None:
        super().__init__(tap, schema=schema, name=name)
        self.logger.addFilter(_OneLineErrors())
        self.export = export
        self.primary_keys = [PRIMARY_KEY]
        self.replication_key = replication_key
        self._key_from_settings = key_from_settings
        self.last_job: ExportJob | None = None
        self._direct_writer: FastSingerWriter | None = None
        self._direct_checked = False
        self._time_extracted: str | None = None
        self._max_replication_value: t.Any = None
        self._window_rows = 0
        self._final_end: datetime.date | None = None
        interval = float(self.config.get("progress_interval_seconds") or PROGRESS_INTERVAL_SECONDS)
        self.progress = SyncProgress(name, self.logger, interval, replication_key=replication_key)

    @property
    def is_sorted(self) -> bool:
        """False, and said so: an export job's rows come in no particular order. What makes an
        interrupted sync resumable is the job ledger, not the order (see progress.py).
        """
        return False

    @property
    def metadata(self) -> MetadataMapping:
        """Catalog metadata, listing every date field as a valid replication key."""
        metadata = super().metadata
        metadata.root.valid_replication_keys = date_fields(self.schema)
        return metadata

    @override
    def apply_catalog(self, catalog: Catalog) -> None:
        """Apply the catalog, except that replication_keys in the settings beats its key.

        A catalog discovered before the setting was added still names the old key, and the
        SDK would silently take it.
        """
        chosen = self.replication_key
        super().apply_catalog(catalog)
        if self._key_from_settings and self.replication_key != chosen:
            self.logger.info(
                "Setting replication_keys.%s='%s' overrides the catalog's replication key '%s'",
                self.name, chosen, self.replication_key,
            )  # fmt: skip
            self.replication_key = chosen

    def selected_fields(self) -> tuple[str, ...]:
        """Return the fields to export: the selected ones, always with key and bookmark."""
        mask = self.mask
        keys = [PRIMARY_KEY, *([self.replication_key] if self.replication_key else [])]
        chosen = [
            name
            for name in self.schema["properties"]
            if name in keys or mask.get(("properties", name), True)
        ]
        return tuple(chosen)

    def start_value(self) -> str | None:
        """Return where this sync starts: the bookmark, or start_date when it is later.

        Read from the state directly (not from the SDK's starting marker), because an
        overlapped job is created before the SDK begins this stream.
        """
        state = self.stream_state
        bookmark = state.get("replication_key_value")
        if state.get("replication_key") != self.replication_key:
            bookmark = None
        if bookmark not in (None, "") and not _is_date(bookmark):
            shown = repr(bookmark) if len(repr(bookmark)) <= 60 else repr(bookmark)[:57] + "..."
            msg = (
                f"the bookmark in the state (bookmarks.{self.name}.replication_key_value = "
                f"{shown}) is not a date. Fix it or remove it from the state file given with "
                "--state, then run again."
            )
            raise BadStateError(msg)
        start_date = self.config.get("start_date")
        if bookmark and start_date:
            return self.compare_start_date(str(bookmark), start_date)
        return str(bookmark) if bookmark else start_date

    def compare_start_date(self, value: str, start_date_value: str) -> str:
        """Return the later of bookmark and start_date (the SDK's starting marker).

        A bookmark that is not a date yields start_date here, so that the SDK (which calls
        this before the stream's records) does not crash on it: ``start_value`` then fails
        this stream alone with one line naming the state.
        """
        if not _is_date(value):
            return start_date_value
        return super().compare_start_date(value, start_date_value)

    def windows_done_through(self) -> datetime.date | None:
        """Return the last day of the windows an earlier run finished (for this replication
        key and account list), if any.
        """
        done = self.stream_state.get(WINDOWS_DONE_KEY)
        if not isinstance(done, dict) or done.get("field") != self.replication_key:
            return None
        if done.get("account_list_id") != self.export.account_list_id:
            return None
        try:
            return datetime.date.fromisoformat(str(done.get("through")))
        except ValueError:
            return None

    def job_spec(self) -> JobSpec | None:
        """Return the export of this sync as one spec, or None when the range is empty.

        It starts on the bookmark's day (read again: the overlap day), or the day after the
        windows an earlier run finished, whichever is later.
        """
        start_value = self.start_value()
        start = utc_date(start_value) if start_value else None
        done = self.windows_done_through()
        if done is not None and (start is None or start <= done):
            start = done + datetime.timedelta(days=1)
        end = utc_date(self.export.end_date or datetime.datetime.now(datetime.timezone.utc))
        if start and start > end:
            self.logger.info(
                "Nothing to export for %s: start %s is after end %s", self.name, start, end
            )
            return None
        return JobSpec(
            entity=self.name,
            fields=self.selected_fields(),
            date_field=self.replication_key,
            start=start,
            end=end,
            account_list_id=self.export.account_list_id,
        )

    def window_specs(self) -> list[JobSpec]:
        """Return this sync's export jobs, oldest first: a job left in the ledger by an earlier
        run comes first (it is resumed), then ``window_days`` windows up to end_date.
        """
        whole = self.job_spec()
        self._final_end = whole.end if whole is not None else None
        entry = read_entry(self.stream_state)
        specs: list[JobSpec] = []
        if entry is not None and entry.spec.entity != self.name:
            self.logger.warning(
                "The state of stream '%s' names export job %s of entity '%s': ignoring it",
                self.name,
                entry.job_id,
                entry.spec.entity,
            )
        elif entry is not None:
            # The ledger's window, with the fields selected now: a job with more fields is
            # read without the extra columns; one lacking a field is replaced by a new job.
            specs.append(replace(entry.spec, fields=self.selected_fields()))
            if whole is not None and entry.spec.end and whole.end and entry.spec.end < whole.end:
                next_day = entry.spec.end + datetime.timedelta(days=1)
                whole = replace(whole, start=max(whole.start or next_day, next_day))
            else:
                whole = None
        if whole is not None and whole.start and whole.end:
            specs += [
                replace(whole, start=start, end=end)
                for start, end in plan_windows(whole.start, whole.end, self.export.window_days)
            ]
        elif whole is not None:
            specs.append(whole)
        return specs

    def prefetch_first_job(self) -> tuple[tuple[str, JobSpec], t.Callable[[], ExportJob]] | None:
        """Return the key and the maker of this sync's first job, for the scheduler to start."""
        try:
            specs = self.window_specs()
        except DemandbaseError:
            return None  # the stream reports it itself, when its turn comes
        if not specs:
            return None
        spec = specs[0]
        return (self.name, spec), lambda: self._completed_job(spec, record_in_ledger=False)

    def get_records(self, context: types.Context | None) -> Iterable[dict[str, t.Any]]:
        """Export each window and yield its rows as typed records."""
        with self._failure_kept_to_this_stream(), self.progress as progress:
            for spec in self.window_specs():
                for part, reader in self._window_parts(spec, context):
                    self._time_extracted = datetime.datetime.now(datetime.timezone.utc).isoformat()
                    for record in reader.records(part):
                        self._window_rows += 1
                        progress.records += 1
                        yield record

    def get_batches(
        self, batch_config: BatchConfig, context: types.Context | None = None
    ) -> Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Export each window and turn each of its result parts into one batch file."""
        storage = batch_config.storage
        stem = f"{storage.prefix or ''}{self.tap_name}--{self.name}"
        with self._failure_kept_to_this_stream(), self.progress as progress:
            for spec in self.window_specs():
                writer = None  # one per window: its reader (the window's fields) is the same
                for part, reader in self._window_parts(spec, context):
                    if writer is None:
                        writer = batch_writer(batch_config.encoding, reader, self.replication_key)
                    write, extension = writer
                    job_id = self.last_job.status_id if self.last_job else "job"
                    batch = write(part, storage, f"{stem}-{job_id}-{part.number}.{extension}")
                    self._window_rows += batch.rows
                    progress.records += batch.rows
                    if batch.max_replication_value is not None and self.replication_key:
                        latest = {self.replication_key: batch.max_replication_value}
                        self._increment_stream_state(latest)
                    yield batch_config.encoding, [storage.get_url(batch.filename)]

    # One window: job → parts → ledger and bookmark ------------------------------------------

    def _window_parts(
        self, spec: JobSpec, context: types.Context | None
    ) -> Iterator[tuple[DownloadedPart, CsvPartReader]]:
        """Yield the parts of the window's completed job that are still to be emitted.

        Around each part the ledger and the progress marker move on and STATE is emitted; after
        the last one the bookmark advances and the ledger entry goes.
        """
        key = (self.name, spec)
        job = self.export.scheduler.completed_job(key, lambda: self._completed_job(spec))
        self.last_job = job
        entry = self._record_in_ledger(job)
        assert job.status is not None
        reader = CsvPartReader(self.name, self.schema["properties"], spec.fields)
        parts = ResultParts(
            self.export.api,
            job.status,
            self.logger,
            skip=set(entry.parts_done),
            stall_seconds=self.export.download_stall_seconds,
        )
        self.progress.downloading(job, parts)
        if entry.parts_done:
            self.logger.info(
                "%s: parts %s were emitted by an earlier run; reading the others",
                job.label,
                ", ".join(map(str, sorted(entry.parts_done))),
            )
        if entry.max_replication_value is not None and self.replication_key:
            self._increment_stream_state({self.replication_key: entry.max_replication_value})
        self._window_rows = 0
        try:
            for part in parts:
                self.progress.part = part.number
                rows_before = self._window_rows
                yield part, reader
                entry.parts_done[part.number] = self._window_rows - rows_before
                entry.max_replication_value = self._max_replication_value
                self._advance_bookmark(context)
                write_entry(self.stream_state, entry)
                self._emit_state()
        except ApiRequestError as exc:
            if exc.status == 404:  # a part the job lists is not there: the result is broken
                self._reject(entry, "a part of its result is missing (404)")
            raise
        self._check_complete(job, parts, entry)
        try:
            parts.check_total_size()
        except InconsistentResultError:
            self._reject(entry, "its parts' bytes disagree with file_size_bytes")
            raise
        self.export.scheduler.release(key)
        self._advance_bookmark(context)
        clear_entry(self.stream_state)
        self._finished_with(entry)
        if self._window_done_for_good(spec, entry) and spec.end is not None:
            self.stream_state[WINDOWS_DONE_KEY] = {
                "field": spec.date_field,
                "account_list_id": spec.account_list_id,
                "through": spec.end.isoformat(),
            }
        self.finalize_state_progress_markers(self.stream_state)

    def _window_done_for_good(self, spec: JobSpec, entry: LedgerEntry) -> bool:
        """Whether a window just emitted never needs exporting again: it is not the last
        window of this run (that one is read again from the bookmark's day), and all its days
        had ended when its job was created (so no row could still come).
        """
        if spec.end is None or self._final_end is None or spec.end >= self._final_end:
            return False
        created = _state_datetime(entry.created_at) or datetime.datetime.now(datetime.timezone.utc)
        return spec.end < created.astimezone(datetime.timezone.utc).date()

    def _finished_with(self, entry: LedgerEntry) -> None:
        """Remember the creation time of a job the stream is done with: no job created
        before it is re-used (its snapshot would be older than what was already emitted).
        """
        created = _state_datetime(entry.created_at)
        last = _state_datetime(self.stream_state.get(LAST_JOB_KEY))
        if created is not None and (last is None or created > last):
            self.stream_state[LAST_JOB_KEY] = created.isoformat()

    def _reject(self, entry: LedgerEntry, reason: str) -> None:
        """Mark the ledger's job as inconsistent and emit STATE: the next run exports its
        window with a new job instead of trusting (or re-using) this one.
        """
        entry.inconsistent = reason
        write_entry(self.stream_state, entry)
        self._finished_with(entry)
        self._emit_state()

    def _completed_job(self, spec: JobSpec, *, record_in_ledger: bool = True) -> ExportJob:
        """Resume the job the ledger names, re-use an equivalent one, or create one; wait until
        it is completed, trying anew (up to max_job_attempts) when it fails.
        """
        entry = read_entry(self.stream_state)
        resume_id = self._resumable_id(entry, spec)
        api = self.export.api
        exclude = {entry.job_id} if entry is not None else set()

        def start(job: ExportJob) -> None:
            nonlocal resume_id
            self.progress.waiting_for(job)
            rule = reuse_rule(_state_datetime(self.stream_state.get(LAST_JOB_KEY)), exclude)
            if resume_id and (status := resumable_status(api, resume_id, spec, self.logger)):
                job.attach(status, "resumed from the state")
            elif status := api.find_equivalent_job(spec, rule):
                job.attach(status, "re-used: an equivalent job already exists")
            else:
                job.create(rule)
            resume_id = None
            exclude.add(job.status_id)
            if record_in_ledger:
                self._record_in_ledger(job)

        def make_job() -> ExportJob:
            return ExportJob(
                api, spec, self.export.poll_policy, self.logger, sleep=self.export.scheduler.sleep
            )

        return run_until_completed(
            make_job, self.export.attempts, start=start, sleep=self.export.scheduler.sleep
        )

    def _resumable_id(self, entry: LedgerEntry | None, spec: JobSpec) -> str | None:
        """Return the ledger's job id if that job can deliver ``spec``; say why not if it
        exports this window but cannot.
        """
        if entry is None or entry.spec.entity != spec.entity:
            return None
        if replace(entry.spec, fields=spec.fields) != spec:
            return None  # another window (or filters): not this window's job
        if entry.inconsistent:
            self.logger.warning(
                "Export job %s from the state delivered an inconsistent result (%s); "
                "exporting its window anew",
                entry.job_id,
                entry.inconsistent,
            )
            return None
        if not entry.spec.covers(spec):
            missing = sorted(set(spec.fields) - set(entry.spec.fields))
            self.logger.info(
                "Export job %s from the state lacks the now selected field(s) %s; exporting "
                "its window anew",
                entry.job_id,
                ", ".join(missing),
            )
            return None
        return entry.job_id

    def _record_in_ledger(self, job: ExportJob) -> LedgerEntry:
        """Put the job in the stream's ledger (keeping parts done if it is the same job) and
        emit STATE, so that a crash from here on re-attaches to it.
        """
        assert job.status is not None
        entry = read_entry(self.stream_state)
        if entry is None or entry.job_id != job.status.id:
            created = job.status.created_at or datetime.datetime.now(datetime.timezone.utc)
            entry = LedgerEntry(job.status.id, job.spec, created.isoformat())
        write_entry(self.stream_state, entry)
        self._emit_state()
        return entry

    def _emit_state(self) -> None:
        """Emit STATE now (after the records before it, which the writer flushes first)."""
        self.state_manager.is_flushed = False
        self._write_state_message()

    def _check_complete(self, job: ExportJob, parts: ResultParts, entry: LedgerEntry) -> None:
        """Log the job's totals; fail when the rows of all its parts (those emitted by earlier
        runs included) disagree with the job's record_count, and mark the job as inconsistent
        so that the next run exports the window anew instead of trusting it.
        """
        self.logger.info(
            "%s: emitted %d records from %d part(s), %s downloaded, %d status calls",
            job.label, self._window_rows, parts.count - len(parts.skip),
            human_bytes(parts.bytes_downloaded), job.status_calls,
        )  # fmt: skip
        expected = parts.job.record_count
        rows = entry.rows_done()
        if expected is None:
            return
        if rows is None:
            self.logger.warning(
                "%s: the rows of parts emitted by an earlier version of the tap were not "
                "counted; the check against record_count=%d is skipped",
                job.label,
                expected,
            )
            return
        if rows != expected:
            self._reject(entry, f"its parts held {rows} rows, record_count={expected}")
            msg = (
                f"{job.label}: the parts held {rows} rows but the job reported "
                f"record_count={expected}. The bookmark was not advanced: the next run exports "
                "this window again with a new job. Report the job to Demandbase support if it "
                "persists."
            )
            raise MalformedResultError(msg)

    @contextlib.contextmanager
    def _failure_kept_to_this_stream(self) -> Iterator[None]:
        """Let one stream fail without stopping the others; the run still ends non-zero.

        The bookmark does not move past what a failed stream finished, and its ledger entry
        stays so that the next run re-attaches. A spent quota or a refused token stops the
        whole run at once: no other stream could succeed.
        """
        try:
            yield
        except (QuotaExceededError, AuthError, ConfigError, TargetGoneError):
            raise
        except DemandbaseError as exc:
            self.stream_state.pop("progress_markers", None)
            self._max_replication_value = None
            self.logger.warning("Stream '%s' failed; the other streams go on: %s", self.name, exc)
            self.export.failures.append(f"Stream '{self.name}' failed: {exc}")

    def _write_record_message(self, record: types.Record) -> None:
        """Write a RECORD message, bypassing the SDK's per-record work when it changes nothing.

        Overrides a private SDK hook (stable across singer-sdk 0.54.x, which pyproject pins and
        tests/test_record_path.py checks record for record against the SDK's own path). Records
        are already typed and hold only selected fields, so popping deselected properties and
        building message objects is waste when the only stream map is the identity.
        """
        if not self._direct_checked:
            self._direct_writer = self._fast_writer()
            self._direct_checked = True
        if self._direct_writer is not None:
            self._direct_writer.write_record(self.name, record, self._time_extracted)
            self.state_manager.is_flushed = False
        else:
            super()._write_record_message(record)

    def _fast_writer(self) -> FastSingerWriter | None:
        """Return the tap's writer when records can skip the SDK's map/flatten machinery."""
        writer = self._tap.message_writer
        maps = self.stream_maps
        identity = (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == self.name
            and not maps[0].flattening_enabled
        )
        return writer if identity and isinstance(writer, FastSingerWriter) else None

    def _process_record(
        self,
        record: types.Record,
        child_context: types.Context | None = None,
        partition_context: types.Context | None = None,
    ) -> None:
        """Skip the SDK's per-record child-stream and partition work: these streams have none.

        Overrides a private SDK hook (singer-sdk 0.54.x, pinned).
        """
        if self.child_streams or partition_context:
            super()._process_record(record, child_context, partition_context)

    def _increment_stream_state(
        self, latest_record: types.Record, *, context: types.Context | None = None
    ) -> None:
        """Track the greatest replication-key value; hand it to the SDK once per part.

        Overrides a private SDK hook (singer-sdk 0.54.x, pinned): the SDK's own version costs a
        state lookup and two conversions per record. Values are normalised RFC 3339 UTC
        date-times or YYYY-MM-DD dates, so comparing the strings compares the instants.
        """
        value = latest_record.get(self.replication_key) if self.replication_key else None
        if value is not None and (
            self._max_replication_value is None or value > self._max_replication_value
        ):
            self._max_replication_value = value

    def _advance_bookmark(self, context: types.Context | None) -> None:
        """Give the SDK the greatest replication-key value seen so far (its progress marker)."""
        if self._max_replication_value is not None and self.replication_key:
            latest = {self.replication_key: self._max_replication_value}
            mark_resumable(self.stream_state)  # the ledger resumes it: no "not resumable" note
            super()._increment_stream_state(latest, context=context)
