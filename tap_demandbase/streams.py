"""One Singer stream per Demandbase entity type: the SDK's side of the engine.

The engine (``engine/export.py``) plans the windows and runs their jobs; this module turns the
stream's bookmark and selection into the engine's request, the parts it hands out into records
or batch files, and its checkpoints into the SDK's bookmark and STATE messages.
"""

from __future__ import annotations

import contextlib
import datetime
import typing as t
from dataclasses import dataclass

from singer_sdk.singerlib import Metadata
from typing_extensions import override

from tap_demandbase.engine.backfill import BackfillRequest
from tap_demandbase.engine.budget import DEFERRED_KEY, StreamDeferredError
from tap_demandbase.engine.export import StreamExport, StreamRequest
from tap_demandbase.engine.freshness import note_bookmark, stale_bookmark_line
from tap_demandbase.engine.window import PartResult, greatest
from tap_demandbase.engine.windows import first_day
from tap_demandbase.errors import RUN_STOPPING_ERRORS, DemandbaseError, TargetGoneError
from tap_demandbase.model import CALLS_FOR
from tap_demandbase.progress import SyncProgress
from tap_demandbase.record_path import FastRecordStream
from tap_demandbase.records.batches import batch_writer
from tap_demandbase.records.columnar import import_polars_meanwhile
from tap_demandbase.records.reader import CsvPartReader
from tap_demandbase.schema import date_fields
from tap_demandbase.sdk_compat import BOOKMARK_VALUE_KEY, PROGRESS_MARKERS
from tap_demandbase.timestamps import is_date, utc_date

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from singer_sdk import Tap
    from singer_sdk.helpers import types
    from singer_sdk.singerlib import Catalog, MetadataMapping

    from tap_demandbase.discovery import StreamSpec
    from tap_demandbase.engine.export import RunContext
    from tap_demandbase.engine.scheduler import JobFactory, JobKey
    from tap_demandbase.engine.window import WindowExport
    from tap_demandbase.model import JobSpec
    from tap_demandbase.run import SyncRun
    from tap_demandbase.sdk_compat import BaseBatchFileEncoding, BatchConfig

__all__ = ["BOOKMARK_VALUE_KEY", "ExportStream", "FieldMetadata"]


@dataclass(slots=True)
class FieldMetadata(Metadata):
    """A property's catalog metadata, with the field's API name (``api-name``): job requests
    and result headers use it, so a sync given the catalog needs no discovery call.
    """

    api_name: str | None = None


class ExportStream(FastRecordStream):
    """The records of one entity type, exported by one job per window from the bookmark's day.

    The bookmark is the greatest replication-key value seen; the next run starts on that UTC
    day, so the bookmark's day is read again (at-least-once; targets de-duplicate on ``id``).

    Records leave the CSV reader already typed by the schema (``record_path.py`` writes them).
    """

    def __init__(
        self,
        tap: Tap,
        spec: StreamSpec,
        *,
        sync: SyncRun,
        column_names: Callable[[str], tuple[str, ...]] | None = None,
    ) -> None:
        super().__init__(tap, schema=spec.schema, name=spec.name)
        #: The sync this stream is part of: it plans the run and gathers the failures.
        self.sync_run = sync
        self.run: RunContext = sync.context
        self.primary_keys = [spec.primary_key] if spec.primary_key else []
        self.replication_key = spec.replication_key
        self._key_from_settings = spec.key_from_settings
        self.max_window_days = spec.max_window_days
        #: Property → the field's API name (catalog metadata ``api-name``).
        self.api_names = dict(spec.api_names)
        #: A field's API name → the header names of its result column (the dialect's).
        self.column_names = column_names
        self._export: StreamExport | None = None
        self._planned_on_stand_in = False
        interval = float(self.setting_or_default("progress_interval_seconds"))
        self.progress = SyncProgress(
            spec.name, self.logger, interval, replication_key=spec.replication_key
        )

    @property
    @override
    def is_sorted(self) -> bool:
        """False, and said so: an export job's rows come in no particular order. What makes an
        interrupted sync resumable is the job ledger, not the order (see progress.py).
        """
        return False

    def setting_or_default(self, name: str) -> t.Any:
        """Return a tap setting, or its schema default."""
        return self.sync_run.settings.value(name)

    @property
    @override
    def metadata(self) -> MetadataMapping:
        """Catalog metadata, listing every date field as a valid replication key."""
        metadata = super().metadata
        metadata.root.valid_replication_keys = date_fields(self.schema)
        for name, api_name in self.api_names.items():
            breadcrumb = ("properties", name)
            entry = metadata.get(breadcrumb)
            if entry is not None and not isinstance(entry, FieldMetadata):
                metadata[breadcrumb] = FieldMetadata(
                    inclusion=entry.inclusion,
                    selected=entry.selected,
                    selected_by_default=entry.selected_by_default,
                    api_name=api_name,
                )
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

    @override
    def log_sync_costs(self) -> None:
        """Log the stream's costs; the SDK calls this for every stream once all have synced
        (``Tap.sync_all`` and ``Stream.sync`` are final), so the run learns here that the
        sync is over (``sdk_compat.py`` lists this reliance).
        """
        super().log_sync_costs()
        self.sync_run.sync_over(self.name)

    # The engine's request -----------------------------------------------------------------

    @property
    def export(self) -> StreamExport:
        """Return the engine's export of this stream for this run (planned once).

        Before the stream's sync, a stream that has no state yet is planned on a stand-in
        (the SDK's ``stream_state`` would add an entry to the state, and a state that is not
        empty is emitted before the first SCHEMA); its sync then takes over that plan.
        """
        has_state = self.name in self.tap_state.get("bookmarks", {})
        if self._export is None and not has_state:
            self._export = self._export_on({})
            self._planned_on_stand_in = True
            # Jobs created ahead still reach the real state, and the next STATE.
            self.run.journal.register(self.name, lambda: self.stream_state)
            return self._export
        if self._export is not None and (
            (self._planned_on_stand_in and not has_state) or self._export.state is self.stream_state
        ):
            return self._export
        planned, self._export = self._export, self._export_on(self.stream_state)
        if planned is not None and self._planned_on_stand_in:
            self._export.take_plan_of(planned)
        self._planned_on_stand_in = False
        return self._export

    def _export_on(self, state: dict[str, t.Any]) -> StreamExport:
        request = StreamRequest(
            name=self.name,
            fields=self.selected_fields(),
            replication_key=self.replication_key,
            start=self._start_day(state),
            max_window_days=self.max_window_days,
            min_interval=self._min_interval(),
            start_date=self._setting_day("start_date"),
            lookback_days=int(self._per_stream("lookback_days") or 0),
            backfill=self._backfill(),
            delete_check=self._delete_check(),
            primary_key=self.primary_keys[0] if self.primary_keys else None,
            catalog_fields=tuple(self.schema["properties"]),
        )
        return StreamExport(
            self.run,
            request,
            state,
            self.logger,
            self._checkpoint,
            self.progress,
            version_complete=self.write_activate_version,
        )

    def _per_stream(self, name: str) -> t.Any:
        """Return a setting that is one value for every stream, or an object of stream → value."""
        return self.sync_run.settings.per_stream(name, self.name)

    def _min_interval(self) -> datetime.timedelta | None:
        """Return min_interval_hours for this stream."""
        hours = self._per_stream("min_interval_hours")
        return datetime.timedelta(hours=float(hours)) if hours else None

    def _setting_day(self, name: str) -> datetime.date | None:
        """Return the UTC day of a date-time setting (checked by the tap's settings)."""
        value = self.config.get(name)
        return utc_date(value) if value else None

    def _delete_check(self) -> datetime.timedelta | None:
        """Return how often the stream's rows are all exported again to find deleted ones
        (detect_deletes, delete_check_days; None: off, or no primary key to tell rows by).
        """
        if not self.config.get("detect_deletes") or not self.primary_keys:
            return None
        return datetime.timedelta(days=float(self.setting_or_default("delete_check_days")))

    def _backfill(self) -> BackfillRequest | None:
        """Return the backfill the settings ask for (backfill_start_date, backfill_end_date)."""
        start = self._setting_day("backfill_start_date")
        if start is None:
            return None
        return BackfillRequest(start, self._setting_day("backfill_end_date"))

    def skipped_because(self) -> str | None:
        """Say why this run skips the stream (min_interval_hours), None if it does not."""
        return self.export.skipped_because()

    def backfill_jobs(self) -> int:
        """Return how many of the stream's planned jobs are a backfill's."""
        return sum(self.export.purpose_of(spec) == "backfill" for spec in self.planned_jobs())

    def planned_jobs(self) -> list[JobSpec]:
        """Return the jobs this stream's sync will need (planned once per run)."""
        return self.export.specs()

    def due_jobs(self) -> list[JobSpec]:
        """Return the jobs this run owes the stream, backfill aside."""
        return self.export.due_specs()

    def jobs_to_schedule(self) -> list[tuple[JobKey, JobFactory]]:
        """Return this stream's jobs for the run's job slots, in the order it reads them
        (none when it cannot plan: it reports that itself when its turn comes).
        """
        try:
            jobs = self.export.planned_jobs()
        except DemandbaseError:
            return []
        # --test=records reads one record of each stream: its first job is all it needs.
        return jobs[:1] if self.ABORT_AT_RECORD_COUNT is not None else jobs

    def selected_fields(self) -> tuple[str, ...]:
        """Return the fields to export: the selected ones, always with key and bookmark."""
        mask = self.mask
        keys = [*self.primary_keys, *([self.replication_key] if self.replication_key else [])]
        return tuple(
            name
            for name in self.schema["properties"]
            if name in keys or mask.get(("properties", name), True)
        )

    def _start_day(self, state: dict[str, t.Any]) -> datetime.date | None:
        """Return the UTC day this sync starts on (read from the state directly, not from the
        SDK's starting marker: a job planned ahead is created before the SDK begins this stream).
        A stream without replication key (FULL_TABLE) exports all rows: no first day.
        """
        if not self.replication_key:
            return None
        return first_day(self.name, state, self.replication_key, self.config.get("start_date"))

    @override
    def compare_start_date(self, value: str, start_date_value: str) -> str:
        """Return the later of bookmark and start_date (the SDK's starting marker).

        A bookmark that is not a date yields start_date here, so that the SDK (which calls
        this before the stream's records) does not crash on it: ``first_day`` then fails
        this stream alone with one line naming the state.
        """
        if not is_date(value):
            return start_date_value
        return super().compare_start_date(value, start_date_value)

    # Records and batches ------------------------------------------------------------------

    @override
    def get_records(self, context: types.Context | None) -> Iterable[dict[str, t.Any]]:
        """Export each window and yield its rows as typed records."""
        key = self.replication_key
        import_polars_meanwhile()
        with self._failure_kept_to_this_stream(), self.progress as progress:
            self._carry_table_version()
            for window in self.export.windows():
                with window:
                    reader = self._part_reader(window)
                    for part in window.parts():
                        progress.part = part.number
                        self._time_extracted = self.run.clock.now().isoformat()
                        written = (
                            None  # --test=records: the SDK stops after one record
                            if self.ABORT_AT_RECORD_COUNT is not None
                            else self.write_part_columnar(part, reader)
                        )
                        if written is not None:
                            rows, latest = written.rows, written.max_replication_value
                            progress.records += rows
                        else:
                            rows, latest = 0, None
                            for record in reader.records(part):
                                rows += 1
                                progress.records += 1
                                if key:
                                    latest = greatest(latest, record.get(key))
                                yield record
                        window.part_done(part, PartResult(rows, latest))
                    window.finish()
            self.warn_if_stale()

    @override
    def get_batches(
        self, batch_config: BatchConfig, context: types.Context | None = None
    ) -> Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Export each window and turn each of its result parts into one batch file."""
        storage = batch_config.storage
        stem = f"{storage.prefix or ''}{self.tap_name}--{self.name}"
        import_polars_meanwhile()
        with self._failure_kept_to_this_stream(), self.progress as progress:
            for window in self.export.windows():
                with window:
                    reader = self._part_reader(window)
                    write, extension = batch_writer(
                        batch_config.encoding, reader, self.replication_key
                    )
                    for part in window.parts():
                        progress.part = part.number
                        name = f"{stem}-{window.job.status_id}-{part.number}.{extension}"
                        batch = write(part, storage, name)
                        progress.records += batch.rows
                        yield batch_config.encoding, [storage.get_url(batch.filename)]
                        window.part_done(part, PartResult(batch.rows, batch.max_replication_value))
                    window.finish()
            self.warn_if_stale()

    def _carry_table_version(self) -> None:
        """Give this run's records the table version of the delete check (the version the
        SDK's RecordMessage carries, and the fast writers' too).
        """
        self.export.specs()  # plans the run: a delete check's new version, or the last one
        self.table_version = self.export.version

    def _part_reader(self, window: WindowExport) -> CsvPartReader:
        """Return the reader of a window's parts: columns matched by their fields' API names
        (the catalog's, else the dialect's own knowledge); the selected fields its job went
        without (the API no longer has them) are null.
        """
        names = self.api_names or self.run.api.field_api_names(self.name)
        columns = {
            prop: self.column_names(api_name) if self.column_names else (api_name,)
            for prop, api_name in names.items()
        }
        return CsvPartReader(
            self.name,
            self.schema["properties"],
            window.job.spec.fields,
            columns,
            absent=window.dropped_fields,
        )

    def _checkpoint(self, value: t.Any, *, window_done: bool = False) -> None:
        """Give the SDK's bookmark the greatest value the engine allows so far, then emit STATE
        (after the records before it, which the writer flushes first). Once a window is done
        in full, the bookmark becomes final (the SDK's progress marker is promoted).
        """
        self.advance_bookmark(value)
        if window_done:
            state = self.stream_state
            before = state.get(BOOKMARK_VALUE_KEY)
            self.finalize_state_progress_markers(state)
            if note_bookmark(state, before, state.get(BOOKMARK_VALUE_KEY), self.run.clock.now()):
                self.write_state_now()
            return
        self.write_state_now()

    def warn_if_stale(self) -> None:
        """Say (one WARNING) that the stream's bookmark has stood still for longer than
        freshness_warn_hours, once its sync is over (a run that moves it says nothing).
        """
        if not self.replication_key:
            return
        state = self.stream_state
        hours = float(self.setting_or_default("freshness_warn_hours"))
        now = self.run.clock.now()
        line = stale_bookmark_line(self.name, state.get(BOOKMARK_VALUE_KEY), state, now, hours)
        if line is not None:
            self.logger.warning("%s", line)

    @contextlib.contextmanager
    def _failure_kept_to_this_stream(self) -> Iterator[None]:
        """Let one stream fail without stopping the others; the run still ends non-zero.

        The bookmark does not move past what a failed stream finished, and its ledger entry
        stays so that the next run re-attaches. A spent quota or daily limit, a refused token,
        or a redirect of api_url stops the whole run at once: no other stream could succeed.
        """
        self.sync_run.stream_starting()
        calls_for = CALLS_FOR.set(self.name)
        try:
            yield
            self.stream_state.pop(DEFERRED_KEY, None)
        except StreamDeferredError as exc:
            self.logger.warning("%s", exc)
            self.stream_state[DEFERRED_KEY] = {"at": self.run.clock.now().isoformat()}
        except (*RUN_STOPPING_ERRORS, TargetGoneError) as exc:
            self.sync_run.run_stopping(exc)
            raise
        except DemandbaseError as exc:
            self.stream_state.pop(PROGRESS_MARKERS, None)
            self.logger.warning("Stream '%s' failed; the other streams go on: %s", self.name, exc)
            self.sync_run.stream_failed(self.name, exc)
            if self.ABORT_AT_RECORD_COUNT is not None:  # --test: a failing stream fails it now
                self.sync_run.raise_failures()
        finally:
            CALLS_FOR.reset(calls_for)
            self.run.scheduler.release_stream(self.name)
            progress = self.progress
            self.run.tally.stream_synced(
                progress.records, progress.seconds("emit"), progress.seconds("wait")
            )
