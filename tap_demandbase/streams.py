"""One Singer stream per Demandbase entity type: the SDK's side of the engine.

The engine (``engine/export.py``) plans the windows and runs their jobs; this module turns the
stream's bookmark and selection into the engine's request, the parts it hands out into records
or batch files, and its checkpoints into the SDK's bookmark and STATE messages.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import sys
import typing as t

from singer_sdk import Stream
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from typing_extensions import override

from tap_demandbase.batches import batch_writer
from tap_demandbase.engine.export import PartResult, StreamExport, StreamRequest, greatest
from tap_demandbase.engine.windows import is_date, utc_date
from tap_demandbase.errors import (
    AuthError,
    BadStateError,
    ConfigError,
    DemandbaseError,
    QuotaExceededError,
)
from tap_demandbase.records import CsvPartReader
from tap_demandbase.schema import date_fields
from tap_demandbase.writer import FastSingerWriter

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from singer_sdk import Tap
    from singer_sdk.helpers import types
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
    from singer_sdk.singerlib import Catalog, MetadataMapping

    from tap_demandbase.engine.export import RunContext, WindowExport
    from tap_demandbase.engine.scheduler import JobFactory, JobKey

PRIMARY_KEY = "id"


class SyncHooks(t.Protocol):
    """What a stream tells the tap about its sync (the tap plans ahead and gathers failures)."""

    def stream_starting(self, stream: str) -> None:
        """The stream's sync begins."""
        ...

    def stream_failed(self, stream: str, error: DemandbaseError) -> None:
        """The stream failed; the other streams go on."""
        ...

    def sync_over(self, stream: str) -> None:
        """Every stream has synced (called once per stream, in the tap's stream order)."""
        ...


class ExportStream(Stream):
    """The records of one entity type, exported by one job per window from the bookmark's day.

    The bookmark is the greatest replication-key value seen; the next run starts on that UTC
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
        run: RunContext,
        hooks: SyncHooks,
        key_from_settings: bool = False,
    ) -> None:
        super().__init__(tap, schema=schema, name=name)
        self.run = run
        self.hooks = hooks
        self.primary_keys = [PRIMARY_KEY]
        self.replication_key = replication_key
        self._key_from_settings = key_from_settings
        self._export: StreamExport | None = None
        self._direct_writer: FastSingerWriter | None = None
        self._direct_checked = False
        self._time_extracted: str | None = None

    @property
    @override
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

    @override
    def log_sync_costs(self) -> None:
        """Log the stream's costs; the SDK calls this for every stream once all have synced
        (``Tap.sync_all`` and ``Stream.sync`` are final), so the tap learns here that the
        sync is over.
        """
        super().log_sync_costs()
        self.hooks.sync_over(self.name)

    # The engine's request -----------------------------------------------------------------

    @property
    def export(self) -> StreamExport:
        """Return the engine's export of this stream for this run (planned once)."""
        if self._export is None or self._export.state is not self.stream_state:
            request = StreamRequest(
                name=self.name,
                fields=self.selected_fields(),
                replication_key=self.replication_key,
                start=self._start_day(),
            )
            self._export = StreamExport(
                self.run, request, self.stream_state, self.logger, self._checkpoint
            )
        return self._export

    def first_job_ahead(self) -> tuple[JobKey, JobFactory] | None:
        """Return this stream's first job for the scheduler to start ahead; None when there is
        none or the stream cannot plan (it reports that itself when its turn comes).
        """
        try:
            return self.export.prefetch()
        except DemandbaseError:
            return None

    def selected_fields(self) -> tuple[str, ...]:
        """Return the fields to export: the selected ones, always with key and bookmark."""
        mask = self.mask
        keys = [PRIMARY_KEY, *([self.replication_key] if self.replication_key else [])]
        return tuple(
            name
            for name in self.schema["properties"]
            if name in keys or mask.get(("properties", name), True)
        )

    def _start_day(self) -> datetime.date | None:
        """Return the UTC day this sync starts on: the bookmark's, or start_date's if later.

        Read from the state directly (not from the SDK's starting marker), because a job
        planned ahead is created before the SDK begins this stream.
        """
        state = self.stream_state
        bookmark = state.get("replication_key_value")
        if state.get("replication_key") != self.replication_key:
            bookmark = None
        if bookmark not in (None, "") and not is_date(bookmark):
            shown = repr(bookmark) if len(repr(bookmark)) <= 60 else repr(bookmark)[:57] + "..."
            msg = (
                f"the bookmark in the state (bookmarks.{self.name}.replication_key_value = "
                f"{shown}) is not a date. Fix it or remove it from the state file given with "
                "--state, then run again."
            )
            raise BadStateError(msg)
        start_date = self.config.get("start_date")
        value = str(bookmark) if bookmark else start_date
        if bookmark and start_date:
            value = self.compare_start_date(str(bookmark), start_date)
        return utc_date(value) if value else None

    @override
    def compare_start_date(self, value: str, start_date_value: str) -> str:
        """Return the later of bookmark and start_date (the SDK's starting marker).

        A bookmark that is not a date yields start_date here, so that the SDK (which calls
        this before the stream's records) does not crash on it: ``_start_day`` then fails
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
        with self._failure_kept_to_this_stream():
            for window in self.export.windows():
                with window:
                    reader = CsvPartReader(self.name, self.schema["properties"], window.spec.fields)
                    for part in window.parts():
                        self._time_extracted = self.run.clock.now().isoformat()
                        rows, latest = 0, None
                        for record in reader.records(part):
                            rows += 1
                            if key:
                                latest = greatest(latest, record.get(key))
                            yield record
                        window.part_done(part, PartResult(rows, latest))
                    self._window_finished(window)

    @override
    def get_batches(
        self, batch_config: BatchConfig, context: types.Context | None = None
    ) -> Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Export each window and turn each of its result parts into one batch file."""
        storage = batch_config.storage
        stem = f"{storage.prefix or ''}{self.tap_name}--{self.name}"
        with self._failure_kept_to_this_stream():
            for window in self.export.windows():
                with window:
                    reader = CsvPartReader(self.name, self.schema["properties"], window.spec.fields)
                    write, extension = batch_writer(
                        batch_config.encoding, reader, self.replication_key
                    )
                    for part in window.parts():
                        name = f"{stem}-{window.job.status_id}-{part.number}.{extension}"
                        batch = write(part, storage, name)
                        yield batch_config.encoding, [storage.get_url(batch.filename)]
                        window.part_done(part, PartResult(batch.rows, batch.max_replication_value))
                    self._window_finished(window)

    def _window_finished(self, window: WindowExport) -> None:
        """Close a window: the engine checks it and drops its ledger entry; the SDK's bookmark
        takes the window's greatest value.
        """
        window.finish()
        self._advance_bookmark(window.progress.max_value)
        self.finalize_state_progress_markers(self.stream_state)

    def _checkpoint(self, max_value: t.Any) -> None:
        """Give the SDK's bookmark the greatest value emitted so far, then emit STATE (after
        the records before it, which the writer flushes first).
        """
        self._advance_bookmark(max_value)
        self.state_manager.is_flushed = False
        self._write_state_message()

    def _advance_bookmark(self, value: t.Any) -> None:
        if value is not None and self.replication_key:
            super()._increment_stream_state({self.replication_key: value})

    @contextlib.contextmanager
    def _failure_kept_to_this_stream(self) -> Iterator[None]:
        """Let one stream fail without stopping the others; the run still ends non-zero.

        The bookmark does not move past what a failed stream finished, and its ledger entry
        stays so that the next run re-attaches. A spent quota or a refused token stops the
        whole run at once: no other stream could succeed.
        """
        self.hooks.stream_starting(self.name)
        try:
            yield
        except (QuotaExceededError, AuthError, ConfigError):
            raise
        except DemandbaseError as exc:
            self.stream_state.pop("progress_markers", None)
            self.logger.warning("Stream '%s' failed; the other streams go on: %s", self.name, exc)
            self.hooks.stream_failed(self.name, exc)
        finally:
            self.run.scheduler.release_stream(self.name)

    @override
    def log(self, message: str, *args: t.Any, level: int = logging.INFO, **kwargs: t.Any) -> None:
        """Log, except the SDK's generic "unhandled error" line for an error the tap reports
        itself in one line (a filter on the logger would pile up, one per tap instance).
        """
        generic = level >= logging.ERROR and message.startswith("An unhandled error occurred")
        if generic and isinstance(sys.exc_info()[1], DemandbaseError):
            return
        super().log(message, *args, level=level, **kwargs)

    # The SDK's per-record path, short-cut where it changes nothing ------------------------

    @override
    def _write_record_message(self, record: types.Record) -> None:
        """Write a RECORD message, bypassing the SDK's per-record work when it changes nothing.

        Overrides a private SDK hook (singer-sdk 0.54.x, pinned; ``@override`` makes mypy fail
        if it is renamed, and tests/test_record_path.py checks that this path is the one used).
        Records are already typed and hold only selected fields, so popping deselected
        properties and building message objects is waste when the only stream map is the
        identity.
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

    @override
    def _process_record(
        self,
        record: types.Record,
        child_context: types.Context | None = None,
        partition_context: types.Context | None = None,
    ) -> None:
        """Skip the SDK's per-record child-stream and partition work: these streams have none."""
        if self.child_streams or partition_context:
            super()._process_record(record, child_context, partition_context)

    @override
    def _increment_stream_state(
        self, latest_record: types.Record, *, context: types.Context | None = None
    ) -> None:
        """Do nothing per record: the bookmark moves once per part (``_checkpoint``), with the
        greatest value ``get_records`` saw, instead of a state lookup and two conversions per
        record in the SDK's version.
        """
