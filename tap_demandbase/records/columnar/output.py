"""The columnar path's outputs: RECORD lines, JSON lines and parquet files written from a part's
blocks (typed frames, or records from the Python reader) without Python code per record, and
what each part's output holds (its rows and greatest replication-key value).
"""

from __future__ import annotations

import io
import typing as t
from dataclasses import dataclass

from tap_demandbase.records.columnar.typed import records_frame

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    import polars as pl

#: A run of consecutive records of a part: typed columns, or records from the Python reader.
Block = t.Union["pl.DataFrame", list[dict[str, t.Any]]]
ParquetCompression = t.Literal["uncompressed", "gzip"]
#: Records encoded into one piece of RECORD lines: a whole chunk's JSON at once, and its copies,
#: would double the peak memory of typing it.
ENCODE_ROWS = 2_500
#: Rows per parquet row group: what the parquet writer holds before it writes.
PARQUET_ROW_GROUP = 16_384


@dataclass(frozen=True)
class PartSummary:
    """What the output of one part holds: its row count and greatest replication-key value."""

    rows: int
    max_replication_value: str | None


class RecordSink(t.Protocol):
    """Where RECORD messages go: the tap's writer (``writer.FastSingerWriter``)."""

    def write_record(
        self,
        stream: str,
        record: dict[str, t.Any],
        time_extracted: str | None = None,
        version: int | None = None,
    ) -> None:
        """Write one RECORD message."""

    def write_lines(self, lines: bytes) -> None:
        """Write complete, encoded RECORD lines."""


def _dumps(value: t.Any) -> bytes:
    import orjson

    return orjson.dumps(value)


def record_head(stream: str) -> bytes:
    """Return the bytes of a RECORD message before its record (the one home of its shape)."""
    return b'{"type":"RECORD","stream":' + _dumps(stream) + b',"record":'


def record_tail(time_extracted: str | None, version: int | None) -> bytes:
    """Return the bytes of a RECORD message after its record: the table version (records of a
    delete check and after it carry one) and when the part was extracted.
    """
    tail = b"" if version is None else b',"version":' + _dumps(version)
    if time_extracted:
        tail += b',"time_extracted":' + _dumps(time_extracted)
    return tail + b"}\n"


def _record_message_pieces(
    frame: pl.DataFrame, stream: str, time_extracted: str, version: int | None
) -> Iterator[bytes]:
    """Encode a typed frame (typed for "json") as Singer RECORD lines, ``ENCODE_ROWS`` at a time:
    the same bytes the tap's writer gives for each record (polars writes floats and strings as
    orjson does: shortest round-trip floats, UTF-8 unescaped).

    polars writes each record as one JSON line (a line feed inside a value is escaped, so every
    line feed ends a record), and each line feed becomes the end of one message and the start
    of the next: twice as fast as having polars write the message objects.
    """
    head, tail = record_head(stream), record_tail(time_extracted, version)
    for rows in frame.iter_slices(ENCODE_ROWS):
        out = io.BytesIO()
        rows.write_ndjson(out)
        messages = out.getvalue().replace(b"\n", tail + head)  # ends with a head too many
        yield b"".join((head, memoryview(messages)[: -len(head)]))


def write_record_messages(
    blocks: Iterator[Block],
    sink: RecordSink,
    stream: str,
    time_extracted: str,
    replication_key: str | None,
    version: int | None = None,
) -> PartSummary:
    """Write a part's blocks as Singer RECORD messages, in order; return what they held."""
    summary = Summary(replication_key)
    for block in summary.counted(blocks):
        if isinstance(block, list):
            for record in block:
                sink.write_record(stream, record, time_extracted, version)
        else:
            for piece in _record_message_pieces(block, stream, time_extracted, version):
                sink.write_lines(piece)
    return summary.result()


def write_json_lines(
    blocks: Iterator[Block],
    out: t.IO[bytes],
    replication_key: str | None,
    *,
    gzip_level: int | None = None,
) -> PartSummary:
    """Write a part's blocks as JSON lines, one record each, in order; return what they held.

    With ``gzip_level``, each block is one gzip member (a gzip file may hold several, and
    every reader reads them as one stream): polars compresses its blocks in Rust, twice as fast
    as Python's gzip module.
    """
    import gzip

    import orjson

    summary = Summary(replication_key)
    for block in summary.counted(blocks):
        if isinstance(block, list):
            lines = b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in block)
            out.write(lines if gzip_level is None else gzip.compress(lines, gzip_level))
        elif gzip_level is None:
            block.write_ndjson(out)  # polars hands over a few MiB at a time
        else:
            block.write_ndjson(out, compression="gzip", compression_level=gzip_level)
    return summary.result()


def write_parquet(
    blocks: Iterator[Block],
    out: t.IO[bytes],
    schema: dict[str, pl.DataType],
    compression: ParquetCompression,
    replication_key: str | None,
) -> PartSummary:
    """Write a part's blocks (typed for "parquet") into one parquet file; return what it holds.

    polars' streaming engine pulls the blocks, so only a few are in memory at once.
    """
    from polars.io.plugins import register_io_source

    summary = Summary(replication_key)
    names = list(schema)

    def frames(*_: t.Any) -> Iterator[pl.DataFrame]:
        for block in summary.counted(blocks):
            if isinstance(block, list):
                yield records_frame(block, schema).select(names)
            else:
                yield block.select(names)

    source = register_io_source(frames, schema=schema)
    source.sink_parquet(out, compression=compression, row_group_size=PARQUET_ROW_GROUP)
    return summary.result()


def _greatest(frame: pl.DataFrame, key: str | None) -> str | None:
    """Return the greatest value of a typed frame's replication key as the Python reader's
    normalised text (so that comparing texts compares instants), if any.
    """
    value: t.Any = None
    if key is not None and key in frame.columns:
        value = frame.get_column(key).max()
    if value is not None and not isinstance(value, str):
        value = value.isoformat()  # a Date or UTC Datetime
    return t.cast("str | None", value)


class Summary:
    """Counts the rows of a part's blocks and keeps the greatest replication-key value, as the
    normalised text the Python reader gives (so that comparing texts compares instants).
    """

    def __init__(self, key: str | None) -> None:
        self.key = key
        self.rows = 0
        self.greatest: str | None = None

    def add(self, block: Block) -> None:
        """Count a block's rows and note its greatest replication-key value."""
        value: t.Any = None
        if isinstance(block, list):
            self.rows += len(block)
            values = [r.get(self.key) for r in block] if self.key else []
            value = max((v for v in values if v is not None), default=None)
        else:
            self.rows += block.height
            value = _greatest(block, self.key)
        if value is not None and (self.greatest is None or value > self.greatest):
            self.greatest = value

    def counted(self, blocks: Iterator[Block]) -> Iterator[Block]:
        """Yield the blocks, each counted as it passes."""
        for block in blocks:
            self.add(block)
            yield block

    def result(self) -> PartSummary:
        """Return the part's summary."""
        return PartSummary(self.rows, self.greatest)
