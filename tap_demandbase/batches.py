"""BATCH mode: each result part becomes one batch file, with no Singer message per record.

Parquet goes through pyarrow (an optional extra): its CSV reader parses and types whole columns
in C++, streaming block by block, so no Python code runs per record. JSON Lines (gzip) has to
encode each record, but skips the SDK's record path and writes with orjson. Either way a value
that does not parse fails the part with the same one-line error as RECORD mode: the part is
re-read by the CSV reader of RECORD mode, which names stream, part, line and field.
"""

from __future__ import annotations

import gzip
import queue
import typing as t
from dataclasses import dataclass

import orjson

from tap_demandbase.background import run_in_background
from tap_demandbase.errors import ConfigError
from tap_demandbase.schema import property_kind

if t.TYPE_CHECKING:
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, StorageTarget

    from tap_demandbase.records import CsvPartReader
    from tap_demandbase.results import DownloadedPart

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
        return _JsonLinesWriter(
            reader, replication_key, gzipped
        ), "jsonl.gz" if gzipped else "jsonl"
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


class _ParquetWriter:
    """Columns typed by pyarrow's CSV reader, converted with pyarrow compute, block by block."""

    def __init__(self, reader: CsvPartReader, replication_key: str | None, gzipped: bool) -> None:
        try:
            import pyarrow  # noqa: F401
        except ImportError as exc:
            msg = (
                "batch_config.encoding.format 'parquet' needs pyarrow: "
                "pip install 'tap-demandbase[parquet]'."
            )
            raise ConfigError(msg) from exc
        self.reader = reader
        self.replication_key = replication_key
        self.compression = "gzip" if gzipped else "none"
        _prefer_returning_memory_pool()

    def __call__(self, part: DownloadedPart, storage: StorageTarget, filename: str) -> BatchFile:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        rows = 0
        greatest: t.Any = None
        schema = self._schema(pa)
        try:
            with (
                self._csv_batches(part) as batches,
                storage.open(filename, "wb") as out,
                pq.ParquetWriter(out, schema, compression=self.compression) as writer,
            ):
                # Parse and convert here while another thread encodes and writes the previous
                # blocks (pyarrow releases the GIL): two cores at work, a bounded queue between.
                tables: queue.Queue[t.Any] = queue.Queue(maxsize=2)
                written = run_in_background(
                    f"parquet-{part.number}", lambda: _drain(tables, writer)
                )
                try:
                    for batch in batches:
                        table = pa.Table.from_batches([self._convert(batch, schema, pa, pc)])
                        tables.put(table)
                        rows += table.num_rows
                        greatest = self._greater(greatest, table, pc)
                finally:
                    tables.put(None)
                written.result()
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
            # A value the vectorised path cannot type strictly: the RECORD-mode reader types the
            # part instead (same values as RECORD mode), or names the bad line and field.
            return self._write_from_records(part, storage, filename)
        return BatchFile(filename, rows, greatest)

    def _write_from_records(
        self, part: DownloadedPart, storage: StorageTarget, filename: str
    ) -> BatchFile:
        """Write the part from the RECORD-mode reader's typed records, block by block."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = self._schema(pa)
        key = self.replication_key
        rows = 0
        greatest: t.Any = None
        block: list[dict[str, t.Any]] = []
        with (
            storage.open(filename, "wb") as out,
            pq.ParquetWriter(out, schema, compression=self.compression) as writer,
        ):
            for record in self.reader.records(part):
                rows += 1
                value = record.get(key) if key else None
                if value is not None and (greatest is None or value > greatest):
                    greatest = value
                block.append(record)
                if len(block) >= _RECORDS_PER_BLOCK:
                    writer.write_table(self._table(block, schema))
                    block.clear()
            if block:
                writer.write_table(self._table(block, schema))
        return BatchFile(filename, rows, greatest)

    def _table(self, records: list[dict[str, t.Any]], schema: t.Any) -> t.Any:
        """Return typed records as an arrow table (dates arrive as their normalised text)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        arrays = []
        for column in schema:
            values = [record.get(column.name) for record in records]
            if self._kind(column.name) in _DATE_KINDS:
                arrays.append(pc.cast(pa.array(values, pa.string()), column.type))
            else:
                arrays.append(pa.array(values, column.type))
        return pa.Table.from_arrays(arrays, schema=schema)

    def _csv_batches(self, part: DownloadedPart) -> t.Any:
        import pyarrow as pa
        import pyarrow.csv as csv

        types = {name: self._read_type(name, pa) for name in self.reader.fields}
        return csv.open_csv(
            str(part.path),
            # One thread: on the streaming reader, threads cost more than they bring here.
            read_options=csv.ReadOptions(block_size=1 << 20, use_threads=False),
            parse_options=csv.ParseOptions(newlines_in_values=True),
            convert_options=csv.ConvertOptions(
                column_types=types,
                include_columns=self.reader.fields,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                true_values=[],
                false_values=[],
            ),
        )

    def _kind(self, name: str) -> tuple[str, str | None]:
        return property_kind(self.reader.properties[name])

    def _read_type(self, name: str, pa: t.Any) -> t.Any:
        """Every column is read as text: typed ones are checked against the documented forms
        (records.py) before they are cast, so both modes accept exactly the same values.
        """
        return pa.string()

    def _final_type(self, name: str, pa: t.Any) -> t.Any:
        return {
            ("integer", None): pa.int64(),
            ("number", None): pa.float64(),
            ("boolean", None): pa.bool_(),
            ("string", "date"): pa.date32(),
            ("string", "date-time"): pa.timestamp("us", tz="UTC"),
        }.get(self._kind(name), pa.string())

    def _schema(self, pa: t.Any) -> t.Any:
        return pa.schema([(name, self._final_type(name, pa)) for name in self.reader.fields])

    def _convert(self, batch: t.Any, schema: t.Any, pa: t.Any, pc: t.Any) -> t.Any:
        columns = []
        for name in self.reader.fields:
            column = batch.column(name)
            kind = self._kind(name)
            if kind == ("boolean", None):
                column = _booleans(column, pa, pc)
            elif kind in _STRICT_FORMS:
                _check_forms(column, _STRICT_FORMS[kind], pc)
                if kind == ("string", "date-time"):
                    column = _utc_timestamps(column, pa, pc)
                else:
                    column = pc.cast(column, schema.field(name).type)
                if kind == ("number", None) and pc.any(pc.invert(pc.is_finite(column))).as_py():
                    msg = "a number column holds a value out of range"
                    raise ValueError(msg)
            columns.append(column)
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    def _greater(self, greatest: t.Any, table: t.Any, pc: t.Any) -> t.Any:
        if not self.replication_key or table.num_rows == 0:
            return greatest
        value = pc.max(table.column(self.replication_key)).as_py()
        if value is None:
            return greatest
        text = value.isoformat()
        return text if greatest is None or text > greatest else greatest


_RECORDS_PER_BLOCK = 65_536
_DATE_KINDS = {("string", "date"), ("string", "date-time")}
#: The documented forms (README "Streams"; records.py checks the same), as RE2 patterns.
_STRICT_FORMS = {
    ("integer", None): r"^[+-]?[0-9]+$",
    ("number", None): r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$",
    ("string", "date"): r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    ("string", "date-time"): (
        r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
        r"([Zz]|[+-][0-9]{2}:?[0-9]{2})?)?$"
    ),
}


def _check_forms(column: t.Any, pattern: str, pc: t.Any) -> None:
    """Raise ValueError when a non-null value is not in the documented form."""
    matches = pc.match_substring_regex(column, pattern)
    if not pc.all(pc.or_kleene(matches, pc.is_null(column))).as_py():
        msg = "a value is not in the documented form"
        raise ValueError(msg)


def _drain(tables: queue.Queue[t.Any], writer: t.Any) -> None:
    """Write queued tables until the None that ends the part; keep draining after a failure
    so that the producer never blocks on a full queue, then raise it.
    """
    failure: BaseException | None = None
    while (table := tables.get()) is not None:
        if failure is None:
            try:
                writer.write_table(table)
            except BaseException as exc:  # raised below, once drained
                failure = exc
    if failure is not None:
        raise failure


def _prefer_returning_memory_pool() -> None:
    """Use jemalloc, releasing freed memory at once, so peak RSS stays flat across parts.

    pyarrow's default pool (mimalloc) keeps freed blocks, which doubled peak RSS here.
    """
    import pyarrow as pa

    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(0)
    except (NotImplementedError, pa.ArrowNotImplementedError):  # a build without jemalloc
        pass


def _booleans(column: t.Any, pa: t.Any, pc: t.Any) -> t.Any:
    lowered = pc.utf8_lower(column)
    valid = pc.is_in(lowered, value_set=pa.array(["true", "false", "1", "0"]))
    if not pc.all(pc.or_kleene(valid, pc.is_null(column))).as_py():
        msg = "a boolean column holds a value other than true/false/1/0"
        raise ValueError(msg)
    truth = pc.is_in(lowered, value_set=pa.array(["true", "1"]))
    return pc.if_else(pc.is_null(column), pa.scalar(None, pa.bool_()), truth)


def _utc_timestamps(column: t.Any, pa: t.Any, pc: t.Any) -> t.Any:
    """ISO 8601 strings with or without a zone (none = UTC) → UTC timestamps."""
    zoned = pc.match_substring_regex(column, r"(Z|z|[+-]\d\d:?\d\d)$")
    with_zone = pc.if_else(zoned, column, pc.binary_join_element_wise(column, "Z", ""))
    return pc.cast(with_zone, pa.timestamp("us", tz="UTC"))
