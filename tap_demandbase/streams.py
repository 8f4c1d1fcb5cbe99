"""One Singer stream per Demandbase entity type: bookmark → export job → parts → records.

Nothing here knows HTTP or the API's JSON; the stream only turns its bookmark and selection
into a JobSpec, and the job's parts into records the SDK emits with the bookmark and STATE.
"""

from __future__ import annotations

import datetime
import logging
import sys
import typing as t
from dataclasses import dataclass

import pendulum
from singer_sdk import Stream
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform

from tap_demandbase.api import JobSpec
from tap_demandbase.batches import batch_writer
from tap_demandbase.errors import DemandbaseError, MalformedResultError
from tap_demandbase.jobs import ExportJob, PollPolicy, human_bytes
from tap_demandbase.records import CsvPartReader
from tap_demandbase.results import ResultParts
from tap_demandbase.scheduler import JobScheduler
from tap_demandbase.schema import date_fields
from tap_demandbase.writer import FastSingerWriter

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk import Tap
    from singer_sdk.helpers import types
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
    from singer_sdk.singerlib import MetadataMapping

    from tap_demandbase.api import ExportApi

PRIMARY_KEY = "id"


@dataclass(frozen=True)
class ExportSettings:
    """What every stream's export job shares: the API, polling, filters and the end date."""

    api: ExportApi
    poll_policy: PollPolicy
    scheduler: JobScheduler
    end_date: datetime.datetime | None = None
    account_list_id: str | None = None


class _OneLineErrors(logging.Filter):
    """Drop the SDK's generic "unhandled error" line for errors the tap reports in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            str(record.msg).startswith("An unhandled error occurred")
            and isinstance(sys.exc_info()[1], DemandbaseError)
        )


def utc_date(value: str | datetime.datetime) -> datetime.date:
    """Return the UTC calendar date of a bookmark, start_date or end_date value."""
    moment = pendulum.instance(value) if isinstance(value, datetime.datetime) else value
    if isinstance(moment, str):
        moment = pendulum.parse(moment)  # type: ignore[assignment]
    if isinstance(moment, datetime.datetime):
        return moment.astimezone(datetime.timezone.utc).date()
    return t.cast("datetime.date", moment)


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
    ) -> None:
        super().__init__(tap, schema=schema, name=name)
        self.logger.addFilter(_OneLineErrors())
        self.export = export
        self.primary_keys = [PRIMARY_KEY]
        self.replication_key = replication_key
        self.last_job: ExportJob | None = None
        self._direct_writer: FastSingerWriter | None = None
        self._direct_checked = False
        self._time_extracted: str | None = None
        self._max_replication_value: t.Any = None

    @property
    def metadata(self) -> MetadataMapping:
        """Catalog metadata, listing every date field as a valid replication key."""
        metadata = super().metadata
        metadata.root.valid_replication_keys = date_fields(self.schema)
        return metadata

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
        start_date = self.config.get("start_date")
        if bookmark and start_date:
            return self.compare_start_date(str(bookmark), start_date)
        return str(bookmark) if bookmark else start_date

    def job_spec(self) -> JobSpec | None:
        """Return the export job for this sync, or None when the window is empty."""
        start_value = self.start_value()
        start = utc_date(start_value) if start_value else None
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

    def get_records(self, context: types.Context | None) -> Iterable[dict[str, t.Any]]:
        """Run the export job and yield its rows as typed records."""
        export = self._completed_export(context)
        if export is None:
            return
        job, parts, reader = export
        rows = 0
        for part in parts:
            self._time_extracted = datetime.datetime.now(datetime.timezone.utc).isoformat()
            for record in reader.records(part):
                rows += 1
                yield record
            self._advance_bookmark(context)
        self._check_complete(job, parts, rows)
        self.export.scheduler.release(self.name)

    def get_batches(
        self, batch_config: BatchConfig, context: types.Context | None = None
    ) -> Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Run the export job and turn each result part into one batch file."""
        export = self._completed_export(context)
        if export is None:
            return
        job, parts, reader = export
        write, extension = batch_writer(batch_config.encoding, reader, self.replication_key)
        storage = batch_config.storage
        rows = 0
        for part in parts:
            name = (
                f"{storage.prefix or ''}{self.tap_name}--{self.name}-{job.status_id}-{part.number}"
            )
            batch = write(part, storage, f"{name}.{extension}")
            rows += batch.rows
            if batch.max_replication_value is not None and self.replication_key:
                self._increment_stream_state({self.replication_key: batch.max_replication_value})
            self._advance_bookmark(context)
            yield batch_config.encoding, [storage.get_url(batch.filename)]
        self._check_complete(job, parts, rows)
        self.export.scheduler.release(self.name)

    def new_export_job(self) -> ExportJob | None:
        """Return this sync's export job, not yet created (None: nothing to export)."""
        spec = self.job_spec()
        if spec is None:
            return None
        return ExportJob(
            self.export.api,
            spec,
            self.export.poll_policy,
            self.logger,
            sleep=self.export.scheduler.sleep,
        )

    def _completed_export(
        self, context: types.Context | None
    ) -> tuple[ExportJob, ResultParts, CsvPartReader] | None:
        """Return the completed export job with its parts and their reader."""
        job = self.export.scheduler.completed_job(self.name, self.new_export_job)
        self.last_job = job
        if job is None or job.status is None:
            return None
        reader = CsvPartReader(self.name, self.schema["properties"], job.spec.fields)
        parts = ResultParts(self.export.api, job.status, self.logger)
        return job, parts, reader

    def _check_complete(self, job: ExportJob, parts: ResultParts, rows: int) -> None:
        """Log the job's totals; fail when they disagree with the job's record_count."""
        self.logger.info(
            "%s: emitted %d records from %d part(s), %s downloaded, %d status calls",
            job.label, rows, parts.count, human_bytes(parts.bytes_downloaded), job.status_calls,
        )  # fmt: skip
        expected = parts.job.record_count
        if expected is not None and rows != expected:
            msg = (
                f"{job.label}: the parts held {rows} rows but the job reported "
                f"record_count={expected}. The bookmark was not advanced; run the "
                "tap again, and report the job to Demandbase support if it persists."
            )
            raise MalformedResultError(msg)

    def _write_record_message(self, record: types.Record) -> None:
        """Write a RECORD message, bypassing the SDK's per-record work when it changes nothing.

        Overrides a private SDK hook (stable across singer-sdk 0.54.x, which pyproject pins and
        tests/test_record_path.py checks byte for byte against the SDK's own path). Records
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
            super()._increment_stream_state(latest, context=context)
