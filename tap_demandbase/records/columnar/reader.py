"""The columnar reader: a part's chunks typed by polars in worker threads, delivered in file
order as blocks; the rest of a part it cannot prove exact is read by the Python reader.
"""

from __future__ import annotations

import collections
import functools
import itertools
import os
import threading
import typing as t
import weakref
from dataclasses import dataclass

from tap_demandbase.engine.background import DaemonPool
from tap_demandbase.records.columnar.framing import (
    BOM,
    CHECK_BYTES,
    MAX_ROW_BYTES,
    bom_kept,
    chunk_pattern,
    row_chunks,
    well_formed,
)
from tap_demandbase.records.columnar.output import (
    PARQUET_ROW_GROUP,
    Block,
    ParquetCompression,
    PartSummary,
    RecordSink,
    Summary,
    write_record_messages,
)
from tap_demandbase.records.columnar.typed import Target, conversion
from tap_demandbase.records.kinds import Kind

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from concurrent.futures import Future
    from pathlib import Path

    import polars as pl

    from tap_demandbase.engine.results import DownloadedPart
    from tap_demandbase.records.reader import CsvPartReader

#: Bytes of CSV typed at once (about 10,000 rows). Larger chunks are faster (polars' cost per
#: operation is amortised over more rows: 4 MiB is about 25% faster), but peak RSS grows about
#: 25 MiB per MiB, and the budget is 200 MB for the whole process.
CHUNK_BYTES = 2 << 20
#: Bytes of the largest part BATCH parquet types in one query (``parquet_at_once``). polars holds
#: the whole part while it runs that query (measured: peak RSS grows about 3.5 MB per MB of
#: part), so larger parts are typed chunk by chunk instead, in flat memory.
AT_ONCE_BYTES = 12 << 20
#: Bytes of CSV checked at once beside the one query: as fast as larger chunks, with less
#: memory while the query holds its own.
GRAMMAR_CHUNK_BYTES = 512 << 10
#: Records the Python reader hands over at once when it reads the rest of a part.
FALLBACK_BLOCK_ROWS = 10_000
#: Chunks typed at once, each in a worker thread (polars runs a chunk's expressions mostly on one
#: core, and releases the GIL), while the consumer encodes and writes the chunk before them.
#: Each one in flight costs about 15 MB of peak RSS.
WORKERS = max(1, min(2, os.cpu_count() or 1))

#: The worker threads (started on first use). Threads kept, not one per chunk: starting a
#: thread waits until it runs, which on a busy machine costs more than the chunk's typing.
_POOL = DaemonPool(WORKERS, name="columnar")


class ColumnarPartReader:
    """Reads the result parts of one stream into blocks of typed columns, in file order."""

    def __init__(
        self,
        reader: CsvPartReader,
        replication_key: str | None,
        *,
        chunk_bytes: int = CHUNK_BYTES,
        check_bytes: int = CHECK_BYTES,
        workers: int = WORKERS,
    ) -> None:
        self.reader = reader
        self.workers = workers
        self.replication_key = replication_key
        self.chunk_bytes = chunk_bytes
        self.check_bytes = check_bytes
        self.fields = list(reader.fields)
        self.absent = list(reader.absent)
        self.kinds = {name: Kind.of(reader.properties[name]) for name in self.fields}
        self._plans: dict[
            tuple[tuple[str, ...], Target], tuple[list[list[pl.Expr]], list[pl.Expr]]
        ] = {}

    def blocks(self, part: DownloadedPart, target: Target) -> Iterator[Block]:
        """Yield the part's records in file order, as blocks.

        ``target`` "json": columns ready for JSON (dates and date-times as the Python reader's
        text); "parquet": dates as ``Date``, date-times as UTC ``Datetime`` in microseconds.
        Frames have the part's wanted columns in header order (the Python reader's key order).
        Chunks are typed ``workers`` at once, in worker threads, while the consumer handles the
        frame before them.
        """
        delivered = 0
        with part.path.open("rb") as raw:
            layout = self._layout(raw)
            if layout is not None:
                works = (
                    functools.partial(self._typed_chunk, chunk, layout, target)
                    for chunk in row_chunks(raw, self.chunk_bytes)
                )
                for frame in _in_order(works, self.workers):
                    if frame is None:
                        break
                    delivered += frame.height
                    if frame.height:
                        yield self._with_absent(frame, target)
                else:
                    return
        yield from _in_blocks(itertools.islice(self.reader.records(part), delivered, None))

    def _with_absent(self, frame: pl.DataFrame, target: Target) -> pl.DataFrame:
        """Return the frame with a null column for each absent field, after the others (as the
        Python reader's records have them).
        """
        if not self.absent:
            return frame
        return frame.with_columns(self._null(name, target) for name in self.absent)

    def _null(self, name: str, target: Target) -> pl.Expr:
        """Return the all-null column of an absent field (typed as its parquet column)."""
        import polars as pl

        kind = Kind.of(self.reader.properties[name])
        dtype = kind.polars_type() if target == "parquet" else pl.Null()
        return pl.lit(None, dtype=dtype).alias(name)

    def parquet_at_once(
        self,
        part: DownloadedPart,
        out: t.IO[bytes],
        names: list[str],
        compression: ParquetCompression,
    ) -> PartSummary | None:
        """Write a part (of at most ``AT_ONCE_BYTES``) as one parquet file of the columns
        ``names`` by one polars query; return what the file holds, or None when the part is not
        provably exact: the file is then to be written again from ``blocks``, which hands what
        it cannot type to the Python reader.

        Why: one query reads, types and writes a part on every core with no Python per chunk,
        about 1.6 times as fast as ``blocks`` (``docs/speed.md``). It is optimistic:
        the CSV grammar check runs beside it in a worker thread, and a cell that does not type
        stops it. Only a part that passes both is vouched for, so the output is the one
        ``blocks`` would give.
        """
        import polars as pl

        with part.path.open("rb") as raw:
            layout = self._layout(raw)
        if layout is None:
            return None
        grammar = _POOL.submit(functools.partial(self._file_well_formed, part.path, layout))
        tally = _Tally(self.replication_key)
        try:
            query = self._parquet_query(part.path, layout, tally, names)
            query.sink_parquet(out, compression=compression, row_group_size=PARQUET_ROW_GROUP)
        except (pl.exceptions.PolarsError, _NotExactError):
            grammar.result()  # not left reading a file the caller may remove
            return None
        return tally.summary.result() if grammar.result() else None

    def _file_well_formed(self, path: Path, layout: _Layout) -> bool:
        """Whether every row after the header matches the CSV grammar (``_chunk_pattern``)."""
        with path.open("rb") as raw:
            raw.readline(MAX_ROW_BYTES)  # the header, which ``_layout`` checked
            return all(
                well_formed(chunk, layout.chunk_pattern, self.check_bytes)
                for chunk in row_chunks(raw, min(self.chunk_bytes, GRAMMAR_CHUNK_BYTES))
            )

    def _parquet_query(
        self, path: Path, layout: _Layout, tally: _Tally, names: list[str]
    ) -> pl.LazyFrame:
        """Return the query that reads a part and types it for parquet, through ``tally``."""
        import polars as pl

        stages, finals = self._plan(tuple(layout.wanted), "parquet")
        typed = {name: f"\x00typed.{name}" for name in layout.wanted}
        query = pl.scan_csv(
            path,
            has_header=False,
            skip_rows=1,  # skip_lines would drop a U+FEFF leading the first data row
            schema=layout.read_schema,
            quote_char='"',
            empty_string_is_null=False,
            raise_if_empty=False,
        ).select(pl.col(f"c{i}").alias(layout.header[i]) for i in layout.read_columns)
        for exprs in stages:
            query = query.with_columns(exprs)
        query = query.with_columns(
            final.alias(typed[name]) for name, final in zip(layout.wanted, finals, strict=True)
        )
        # A cell that is not empty yet did not type; or a row too short to hold the last wanted
        # column (the grammar check refuses every short row; this keeps the list non-empty).
        invalid = [
            (pl.col(name).str.len_bytes() > 0) & pl.col(typed[name]).is_null()
            for name in layout.wanted
            if self.kinds[name] is not Kind.STRING
        ]
        invalid.append(pl.col(layout.wanted[-1]).is_null())
        watched = [pl.any_horizontal(invalid).alias(_INVALID)]
        if self.replication_key in typed:
            watched.append(pl.col(typed[self.replication_key]).alias(self.replication_key))
        checked = pl.struct(watched).map_batches(tally, pl.Boolean, is_elementwise=True)
        return query.filter(checked).select(
            pl.col(typed[name]).alias(name) if name in typed else self._null(name, "parquet")
            for name in names
        )

    def _layout(self, raw: t.BinaryIO) -> _Layout | None:
        """Read the header row; None when this path does not handle it (the Python reader will
        read the whole part, and report a missing or odd header).
        """
        line = raw.readline(MAX_ROW_BYTES)
        line = line.removeprefix(BOM)
        if not line.endswith(b"\n") or b'"' in line or b"\x00" in line:
            return None
        try:
            header = line.rstrip(b"\n").removesuffix(b"\r").decode("utf-8").split(",")
        except UnicodeDecodeError:
            return None
        if "\r" in "".join(header) or len(set(header)) != len(header) or len(header) < 2:
            return None
        names = self.reader.header_fields(header)
        if not set(self.fields).issubset(names):
            return None
        return _Layout([name or "" for name in names], [n for n in names if n in self.kinds])

    def _typed_chunk(self, chunk: bytes, layout: _Layout, target: Target) -> pl.DataFrame | None:
        """Parse and type one chunk of whole rows; None when it is not provably exact."""
        import polars as pl

        if not well_formed(chunk, layout.chunk_pattern, self.check_bytes):
            return None
        readable, lead_rows = bom_kept(chunk, len(layout.header))
        try:
            frame = pl.read_csv(
                readable,
                has_header=False,
                skip_rows=lead_rows,
                schema=layout.read_schema,
                columns=layout.read_columns,
                quote_char='"',
                empty_string_is_null=False,
            )
        except pl.exceptions.PolarsError:
            return None
        frame.columns = layout.wanted
        typed = self._convert(frame, layout.wanted, target)
        checked = [name for name in layout.wanted if self.kinds[name] is not Kind.STRING]
        if checked:
            empty = frame.select(pl.col(checked).str.len_bytes().eq(0).sum()).row(0)
            if typed.select(pl.col(checked).null_count()).row(0) != empty:
                return None  # a value that did not type
        return typed

    def _convert(self, frame: pl.DataFrame, names: list[str], target: Target) -> pl.DataFrame:
        """Type every column: null where a cell is empty or not a valid value of its kind.

        Conversions that need intermediate columns (date-times) compute them in stages, each
        stage a ``with_columns``, so that no sub-expression is evaluated twice.
        """
        stages, finals = self._plan(tuple(names), target)
        lazy = frame.lazy()
        for exprs in stages:
            lazy = lazy.with_columns(exprs)
        return lazy.select(finals).collect()

    def _plan(
        self, names: tuple[str, ...], target: Target
    ) -> tuple[list[list[pl.Expr]], list[pl.Expr]]:
        """Return the stages and final expressions typing ``names`` (built once per part
        layout: building them costs more than running them on a chunk).
        """
        plan = self._plans.get((names, target))
        if plan is not None:
            return plan
        stages: list[list[pl.Expr]] = []
        finals = []
        for index, name in enumerate(names):
            column_stages, final = conversion(name, f"\x00{index}.", self.kinds[name], target)
            for depth, exprs in enumerate(column_stages):
                if depth == len(stages):
                    stages.append([])
                stages[depth] += exprs
            finals.append(final.alias(name))
        self._plans[names, target] = stages, finals
        return stages, finals


@dataclass
class _Layout:
    """How the rows of a part are laid out: header names and the wanted ones, in header order."""

    header: list[str]
    wanted: list[str]

    def __post_init__(self) -> None:
        import polars as pl

        names = [f"c{i}" for i in range(len(self.header))]
        self.read_schema = dict.fromkeys(names, pl.String)
        self.read_columns = [i for i, name in enumerate(self.header) if name in self.wanted]
        self.chunk_pattern = chunk_pattern(len(self.header))


def _in_order(
    works: Iterator[Callable[[], pl.DataFrame | None]], workers: int
) -> Iterator[pl.DataFrame | None]:
    """Run each work in a worker thread, ``workers`` at once; yield the results in the works'
    order. A work is only queued when one is taken, so at most ``workers`` chunks are typed
    while the consumer handles one.
    """
    pending: collections.deque[Future[pl.DataFrame | None]] = collections.deque()
    try:
        for work in works:
            pending.append(_POOL.submit(work))
            if len(pending) >= workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:  # the consumer stopped: what is not started yet is not needed
            future.cancel()


def _in_blocks(records: Iterator[dict[str, t.Any]]) -> Iterator[list[dict[str, t.Any]]]:
    """Group records in blocks; the records read before an error are still yielded before it
    is raised, as the Python path would have emitted them.
    """
    block: list[dict[str, t.Any]] = []
    try:
        for record in records:
            block.append(record)
            if len(block) >= FALLBACK_BLOCK_ROWS:
                yield block
                block = []
    except Exception:
        if block:
            yield block
        raise
    if block:
        yield block


_INVALID = "\x00invalid"


class _NotExactError(Exception):
    """A cell did not type in ``parquet_at_once``: the part is written from ``blocks``."""


class _Tally:
    """The filter of ``parquet_at_once``'s query: it stops the query at the first batch holding
    a cell that did not type, and counts the rows and keeps the greatest replication-key value
    of the others (batches may come from several threads at once).
    """

    def __init__(self, key: str | None) -> None:
        self.summary = Summary(key)
        self.lock = threading.Lock()

    def __call__(self, batch: pl.Series) -> pl.Series:
        frame = batch.struct.unnest()
        invalid = frame.get_column(_INVALID)
        if invalid.any():
            raise _NotExactError
        with self.lock:
            self.summary.add(frame)
        return invalid.not_()


def write_part_record_messages(
    part: DownloadedPart,
    reader: CsvPartReader,
    sink: RecordSink,
    time_extracted: str,
    replication_key: str | None,
    version: int | None = None,
) -> PartSummary:
    """Write one part's RECORD messages through the columnar path; return what they held."""
    columnar = _READERS.get(reader)
    if columnar is None or columnar.replication_key != replication_key:
        columnar = _READERS[reader] = ColumnarPartReader(reader, replication_key)
    blocks = columnar.blocks(part, "json")
    return write_record_messages(
        blocks, sink, reader.stream, time_extracted, replication_key, version
    )


#: The columnar reader of each Python reader (one per window), so that its typing plan is built
#: once per window, not once per part.
_READERS: weakref.WeakKeyDictionary[CsvPartReader, ColumnarPartReader] = weakref.WeakKeyDictionary()
