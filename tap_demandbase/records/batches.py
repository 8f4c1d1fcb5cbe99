"""BATCH mode: each result part becomes one batch file, with no Singer message per record.

Both formats take their rows from the columnar path (``columnar/``): polars parses and types
whole columns and writes the JSON lines or the parquet file, so no Python code runs per record,
and the values are exactly those of RECORD mode. A value that does not parse fails the part with
the same one-line error as RECORD mode (naming stream, part, line and field), because the rest of
the part is then read by RECORD mode's reader. A parquet part small enough is read, typed and
written by one polars query (``ColumnarPartReader.parquet_at_once``), about 1.6 times as fast;
a part that query cannot vouch for is written again chunk by chunk. Without polars, JSON lines
are written from the Python reader's records with orjson, and parquet is refused.
"""

from __future__ import annotations

import gzip
import typing as t
from dataclasses import dataclass

import orjson
from typing_extensions import override

from tap_demandbase.errors import ConfigError
from tap_demandbase.records.columnar import polars_available
from tap_demandbase.records.columnar.output import (
    ParquetCompression,
    write_json_lines,
    write_parquet,
)
from tap_demandbase.records.columnar.reader import AT_ONCE_BYTES, ColumnarPartReader
from tap_demandbase.records.columnar.typed import parquet_schema

if t.TYPE_CHECKING:
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, StorageTarget

    from tap_demandbase.engine.results import DownloadedPart
    from tap_demandbase.records.reader import CsvPartReader

GZIP_LEVEL = 1  # batch files are staging data: speed over size


@dataclass(frozen=True)
class BatchFile:
    """What one part's batch file holds."""

    filename: str
    rows: int
    max_replication_value: t.Any


BatchWriter = t.Callable[["DownloadedPart", "StorageTarget", str], BatchFile]


def batch_writer(
    encoding: BaseBatchFileEncoding, reader: CsvPartReader, replication_key: str | None
) -> tuple[BatchWriter, str]:
    """Return the writer of one part's batch file for an encoding, and the file extension."""
    gzipped = encoding.compression == "gzip"
    if encoding.format == "jsonl":
        kind = _ColumnarJsonLinesWriter if polars_available() else _JsonLinesWriter
        return kind(reader, replication_key, gzipped), "jsonl.gz" if gzipped else "jsonl"
    if encoding.format == "parquet":
        return _ParquetWriter(reader, replication_key, gzipped), "parquet"
    msg = (
        f"batch_config.encoding.format '{encoding.format}' is not supported; use jsonl or parquet."
    )
    raise ConfigError(msg)


class _JsonLinesWriter:
    """Records from the RECORD-mode reader, one orjson line each, gzip-compressed."""

    def __init__(self, reader: CsvPartReader, replication_key: str | None, gzipped: bool) -> None:
        self.reader = reader
        self.replication_key = replication_key
        self.gzipped = gzipped

    def __call__(self, part: DownloadedPart, storage: StorageTarget, filename: str) -> BatchFile:
        with storage.open(filename, "wb") as raw:
            if not self.gzipped:
                return self._write(part, raw, filename)
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL) as out:
                return self._write(part, out, filename)

    def _write(self, part: DownloadedPart, out: t.Any, filename: str) -> BatchFile:
        rows = 0
        key = self.replication_key
        greatest: t.Any = None
        lines: list[bytes] = []
        for record in self.reader.records(part):
            rows += 1
            value = record.get(key) if key else None
            if value is not None and (greatest is None or value > greatest):
                greatest = value
            lines.append(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
            if len(lines) >= 1000:
                out.write(b"".join(lines))
                lines.clear()
        out.write(b"".join(lines))
        return BatchFile(filename, rows, greatest)


class _ColumnarJsonLinesWriter(_JsonLinesWriter):
    """Records typed a column at a time (``columnar/``), written as JSON lines by polars."""

    def __init__(self, reader: CsvPartReader, replication_key: str | None, gzipped: bool) -> None:
        super().__init__(reader, replication_key, gzipped)
        self.columnar = ColumnarPartReader(reader, replication_key)

    @override
    def __call__(self, part: DownloadedPart, storage: StorageTarget, filename: str) -> BatchFile:
        blocks = self.columnar.blocks(part, "json")
        level = GZIP_LEVEL if self.gzipped else None
        with storage.open(filename, "wb") as out:
            summary = write_json_lines(blocks, out, self.replication_key, gzip_level=level)
        return BatchFile(filename, summary.rows, summary.max_replication_value)


class _ParquetWriter:
    """Columns typed by the columnar path (``columnar/``), written by polars' parquet writer:
    exactly the values RECORD mode gives, and the same one-line error for a value that is not.
    """

    def __init__(self, reader: CsvPartReader, replication_key: str | None, gzipped: bool) -> None:
        if not polars_available():
            msg = (
                "batch_config.encoding.format 'parquet' needs polars, which could not be "
                "imported on this machine: reinstall tap-demandbase, or use format 'jsonl'."
            )
            raise ConfigError(msg)
        self.reader = reader
        self.replication_key = replication_key
        self.compression: ParquetCompression = "gzip" if gzipped else "uncompressed"
        self.schema = parquet_schema(reader)
        # One chunk typed at a time: polars' parquet sink encodes in its own threads meanwhile,
        # and holds row groups; a second chunk in flight took peak RSS to 200 MB, for 5% speed.
        self.columnar = ColumnarPartReader(reader, replication_key, workers=1)

    def __call__(self, part: DownloadedPart, storage: StorageTarget, filename: str) -> BatchFile:
        summary = None
        if part.size <= AT_ONCE_BYTES:
            with storage.open(filename, "wb") as out:
                summary = self.columnar.parquet_at_once(
                    part, out, list(self.schema), self.compression
                )
        if summary is None:  # too large, or not provably exact: typed chunk by chunk instead
            blocks = self.columnar.blocks(part, "parquet")
            with storage.open(filename, "wb") as out:
                summary = write_parquet(
                    blocks, out, self.schema, self.compression, self.replication_key
                )
        return BatchFile(filename, summary.rows, summary.max_replication_value)
