"""The SDK's per-record path, short-cut where it changes nothing.

Records leave the CSV reader already typed by the schema and holding only selected fields, so
when no stream map or flattening changes them, the SDK's per-record work (conformance, popping
deselected properties, building message objects, a state lookup per record) is waste: they go
straight to the orjson writer. These overrides of singer-sdk hooks are fenced: ``@override``
makes mypy fail if the SDK renames one (``sdk_compat.py`` holds them), and
tests/cli/test_sdk_fence.py fails if the fast path is not the one actually used.
"""

from __future__ import annotations

import logging
import sys
import typing as t

from singer_sdk import metrics
from singer_sdk.exceptions import SyncLifecycleSignal
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from typing_extensions import override

from tap_demandbase.errors import DemandbaseError
from tap_demandbase.progress import mark_resumable
from tap_demandbase.records.columnar import polars_available
from tap_demandbase.records.columnar.reader import write_part_record_messages
from tap_demandbase.sdk_compat import SdkStream, is_unhandled_error_line
from tap_demandbase.writer import FastSingerWriter

if t.TYPE_CHECKING:
    from singer_sdk.helpers import types

    from tap_demandbase.engine.results import DownloadedPart
    from tap_demandbase.records.columnar.output import PartSummary
    from tap_demandbase.records.reader import CsvPartReader


class FastRecordStream(SdkStream):
    """A stream whose typed records skip the SDK's per-record machinery when it is idle."""

    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    #: When the part being emitted was extracted (set by the stream, per part).
    _time_extracted: str | None = None
    _direct_writer: FastSingerWriter | None = None
    _direct_checked = False
    _record_counter: metrics.Counter | None = None

    def write_part_columnar(
        self, part: DownloadedPart, reader: CsvPartReader
    ) -> PartSummary | None:
        """Write a whole part's RECORD messages through the columnar path (``records/columnar``)
        when records reach the output unchanged; return what they held, or None when the part
        must go record by record through the SDK (stream maps, flattening, no polars).
        """
        writer = self._direct()
        if writer is None or not polars_available():
            return None
        assert self._time_extracted is not None
        summary = write_part_record_messages(
            part, reader, writer, self._time_extracted, self.replication_key, self.table_version
        )
        if self._record_counter is not None:
            self._record_counter.increment(summary.rows)
        self.state_due()
        return summary

    @override
    def get_record_counter(self, **kwargs: t.Any) -> metrics.Counter:
        """Return the SDK's record counter, kept so that parts written by the columnar path are
        counted in the record_count metric too.
        """
        self._record_counter = super().get_record_counter(**kwargs)
        return self._record_counter

    def _direct(self) -> FastSingerWriter | None:
        """Return the writer records go to directly, if no map or flattening changes them."""
        if not self._direct_checked:
            self._direct_writer = self._fast_writer()
            self._direct_checked = True
        return self._direct_writer

    @override
    def log(self, message: str, *args: t.Any, level: int = logging.INFO, **kwargs: t.Any) -> None:
        """Log, except the SDK's generic "unhandled error" line for an error the tap reports
        itself in one line (a filter on the logger would pile up, one per tap instance).
        """
        # --test stops each stream after one record with the SDK's own signal: not an error.
        generic = level >= logging.ERROR and is_unhandled_error_line(message)
        if generic and isinstance(sys.exc_info()[1], (DemandbaseError, SyncLifecycleSignal)):
            return
        super().log(message, *args, level=level, **kwargs)

    # The SDK's per-record path, short-cut where it changes nothing ------------------------

    @override
    def write_record(self, record: types.Record) -> None:
        """Write a RECORD message, bypassing the SDK's per-record work when it changes nothing.

        The SDK's private ``_write_record_message`` comes here (``sdk_compat.py``;
        tests/cli/test_sdk_fence.py checks that this path is the one used). Records are already
        typed and hold only selected fields, so popping deselected properties and building
        message objects is waste when the only stream map is the identity.
        """
        writer = self._direct()
        if writer is not None:
            writer.write_record(self.name, record, self._time_extracted, self.table_version)
            self.state_due()
        else:
            super().write_record(record)

    def _fast_writer(self) -> FastSingerWriter | None:
        """Return the tap's writer when records can skip the SDK's map/flatten machinery."""
        writer = self.tap_message_writer
        maps = self.stream_maps
        identity = (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == self.name
            and not maps[0].flattening_enabled
        )
        return writer if identity and isinstance(writer, FastSingerWriter) else None

    @override
    def process_record(
        self,
        record: types.Record,
        child_context: types.Context | None = None,
        partition_context: types.Context | None = None,
    ) -> None:
        """Skip the SDK's per-record child-stream and partition work: these streams have none."""
        if self.child_streams or partition_context:
            super().process_record(record, child_context, partition_context)

    @override
    def record_state(
        self, latest_record: types.Record, *, context: types.Context | None = None
    ) -> None:
        """Do nothing per record: the bookmark moves once per part (``_checkpoint``), with the
        greatest value ``get_records`` saw, instead of a state lookup and two conversions per
        record in the SDK's version.
        """

    def advance_bookmark(self, value: t.Any) -> None:
        """Give the SDK's bookmark (its progress marker) the greatest value emitted so far."""
        if value is not None and self.replication_key:
            mark_resumable(self.stream_state)  # the ledger resumes it: no "not resumable" note
            self.increment_bookmark(self.replication_key, value)
