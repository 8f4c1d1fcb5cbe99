"""The columnar record path: a part typed a column at a time by polars, not a row at a time.

The Python reader (``records.CsvPartReader``) is the reference: it defines which CSV and which
values are valid and what every record looks like. This module gives the same records (the same
bytes, once encoded) many times faster, because polars parses, checks and converts whole columns
in Rust, on every core, and writes the JSON lines or the parquet file without any Python code per
record. It is the default whenever records reach the output unchanged (see ``streams.py``).

It is sound rather than complete: it only types what it can prove it types exactly like the
Python reader, and hands anything else to it.

* A part is read in chunks of about ``CHUNK_BYTES`` that end on a row boundary (found by quote
  parity), so memory stays flat however large the part is. Chunks are typed in worker threads
  (``WORKERS`` at once; polars releases the GIL) while the consumer writes the one before, and
  are delivered in file order.
* Each chunk must match, as a whole, one regular expression of the CSV the Python reader accepts
  (RFC 4180 quoting, CRLF or LF line ends, exactly as many fields in each row as the
  header has, valid UTF-8). Only then is it parsed by polars' CSV reader, which agrees with the
  stdlib's on such input.
* Each typed cell must match the grammar of its kind (README, "Streams") and be a valid value;
  date-times are converted with integer arithmetic (UTC, microseconds, fractions truncated) and
  written as ``datetime.isoformat()`` writes them.

Whatever does not pass (a malformed row, a value outside the grammar, a header the fast path does
not handle) sends the rest of the part, from the first row not yet delivered, to the Python
reader: it types what it can and fails with its one-line error naming stream, part, line and
field for what it cannot. The rows already delivered are the same either way, so nothing is
emitted twice and the output does not depend on which path read which row.
"""

from __future__ import annotations

import collections
import functools
import gc
import io
import itertools
import os
import queue
import sys
import threading
import typing as t
import weakref
from concurrent.futures import Future
from dataclasses import dataclass

from tap_demandbase.engine.background import run_in_background
from tap_demandbase.schema import property_kind

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    import polars as pl

    from tap_demandbase.engine.results import DownloadedPart
    from tap_demandbase.records import CsvPartReader

# polars allocates with jemalloc, which by default keeps an arena per thread and core: memory
# freed by one chunk in one arena is not reused by the next chunk in another, and peak RSS grows
# with every chunk. One arena keeps it flat. Read when polars loads (it is imported lazily).
os.environ.setdefault("_RJEM_MALLOC_CONF", "narenas:1,dirty_decay_ms:500,muzzy_decay_ms:1000")

#: Bytes of CSV typed at once (about 10,000 rows). Larger chunks are faster (polars' cost per
#: operation is amortised over more rows: 4 MiB is about 25% faster), but peak RSS grows about
#: 25 MiB per MiB, and the budget is 200 MB for the whole process.
CHUNK_BYTES = 2 << 20
#: Bytes of CSV the chunk pattern is matched against at once (see ``_well_formed``).
CHECK_BYTES = 256 << 10
#: A row longer than this is not looked for further: the Python reader refuses fields this large.
MAX_ROW_BYTES = 64 << 20
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

Target = t.Literal["json", "parquet"]
ParquetCompression = t.Literal["uncompressed", "gzip"]
T = t.TypeVar("T")
#: Records encoded into one piece of RECORD lines: a whole chunk's JSON at once, and its copies,
#: would double the peak memory of typing it.
ENCODE_ROWS = 2_500
#: A run of consecutive records of a part: typed columns, or records from the Python reader.
Block = t.Union["pl.DataFrame", list[dict[str, t.Any]]]

_BOM = b"\xef\xbb\xbf"
_INTEGER = r"^[+-]?[0-9]+$"
_NUMBER = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DATETIME = (
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?"
    r"(?:[Zz]|([+-])([0-9]{2}):?([0-9]{2}))?)?$"
)
_BOOLEAN_WORDS = {"true": True, "false": False}
#: Microseconds since the epoch of 0001-01-01T00:00:00 and of 10000-01-01T00:00:00: the range
#: Python's datetime can hold (a UTC instant outside it fails in the Python reader).
_MIN_US = -62_135_596_800_000_000
_END_US = 253_402_300_800_000_000


def polars_available() -> bool:
    """Whether polars can be imported (the columnar path needs it; the Python path does not)."""
    try:
        import polars  # noqa: F401
    except ImportError:
        return False
    return True


def import_polars_meanwhile() -> None:
    """Start importing polars (about 0.2 s) in a background thread, while the export job runs;
    then keep what the imports built out of the garbage collector's sight (``gc.freeze``).

    Modules, classes and functions live until the process ends, yet every full collection, and
    the interpreter's last ones at exit, traverse them all: with the SDK and polars loaded, that
    made the tap's exit take 0.2 to 0.4 s, against 0.03 s frozen.
    """
    if "polars" not in sys.modules:
        run_in_background("import-polars", _import_polars_and_freeze)


def _import_polars_and_freeze() -> bool:
    available = polars_available()
    gc.freeze()
    return available


@dataclass(frozen=True)
class PartSummary:
    """What the output of one part holds: its row count and greatest replication-key value."""

    rows: int
    max_replication_value: str | None


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
        self.kinds = {name: property_kind(reader.properties[name]) for name in self.fields}
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
                    for chunk in _row_chunks(raw, self.chunk_bytes)
                )
                for frame in _in_order(works, self.workers):
                    if frame is None:
                        break
                    delivered += frame.height
                    if frame.height:
                        yield frame
                else:
                    return
        yield from _in_blocks(itertools.islice(self.reader.records(part), delivered, None))

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
        about 1.6 times as fast as ``blocks`` (README, "Speed and memory"). It is optimistic:
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
                _well_formed(chunk, layout.chunk_pattern, self.check_bytes)
                for chunk in _row_chunks(raw, min(self.chunk_bytes, GRAMMAR_CHUNK_BYTES))
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
            if self.kinds[name] != _STRING
        ]
        invalid.append(pl.col(layout.wanted[-1]).is_null())
        watched = [pl.any_horizontal(invalid).alias(_INVALID)]
        if self.replication_key in typed:
            watched.append(pl.col(typed[self.replication_key]).alias(self.replication_key))
        checked = pl.struct(watched).map_batches(tally, pl.Boolean, is_elementwise=True)
        return query.filter(checked).select(pl.col(typed[name]).alias(name) for name in names)

    def _layout(self, raw: t.BinaryIO) -> _Layout | None:
        """Read the header row; None when this path does not handle it (the Python reader will
        read the whole part, and report a missing or odd header).
        """
        line = raw.readline(MAX_ROW_BYTES)
        line = line.removeprefix(_BOM)
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

        if not _well_formed(chunk, layout.chunk_pattern, self.check_bytes):
            return None
        readable, lead_rows = _bom_kept(chunk, len(layout.header))
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
        checked = [name for name in layout.wanted if self.kinds[name] != _STRING]
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
            column_stages, final = _conversion(name, f"\x00{index}.", self.kinds[name], target)
            for depth, exprs in enumerate(column_stages):
                if depth == len(stages):
                    stages.append([])
                stages[depth] += exprs
            finals.append(final.alias(name))
        self._plans[names, target] = stages, finals
        return stages, finals


def _conversion(
    name: str, tmp: str, kind: tuple[str, str | None], target: Target
) -> tuple[list[list[pl.Expr]], pl.Expr]:
    """Return how to type the column ``name``: stages of intermediate columns (named with the
    prefix ``tmp``), and the final expression.
    """
    import polars as pl

    cell = pl.col(name)
    value = pl.when(cell.str.len_bytes() > 0).then(cell)
    if kind == ("integer", None):
        return [], pl.when(value.str.contains(_INTEGER)).then(value.str.to_integer(strict=False))
    if kind == ("number", None):
        number = pl.when(cell.str.contains(_NUMBER)).then(cell.cast(pl.Float64, strict=False))
        return [[number.alias(tmp + "n")]], pl.when(pl.col(tmp + "n").is_finite()).then(
            pl.col(tmp + "n")
        )
    if kind == ("boolean", None):
        return [], cell.replace_strict(_BOOLEAN_SPELLINGS, default=None, return_dtype=pl.Boolean)
    if kind == ("string", "date"):
        return _date(cell, tmp, target)
    if kind == ("string", "date-time"):
        return _datetime(cell, tmp, target)
    return [], value


_STRING = ("string", None)
_BOOLEAN_SPELLINGS: dict[str, bool] = {
    "".join(letters): value
    for word, value in _BOOLEAN_WORDS.items()
    for letters in itertools.product(*({c, c.upper()} for c in word))
} | {"1": True, "0": False}


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
        self.chunk_pattern = _chunk_pattern(len(self.header))


def _chunk_pattern(width: int) -> str:
    r"""Return the regular expression a chunk of whole CSV rows of ``width`` fields matches
    when the stdlib's ``csv.reader(strict=True)`` reads it as polars does.

    A field is unquoted (no quote, comma, CR, LF) or quoted (``""`` for a quote inside); a row is
    exactly ``width`` fields, ended by ``\r\n`` or ``\n`` (the last one may be unended). NUL is
    left to the Python reader. (Written so that the regex engine runs it as a DFA.)
    """
    field = r'(?:[^",\r\n\x00]*|"[^"\x00]*(?:""[^"\x00]*)*")'
    row = field + r"(?:," + field + r"){" + str(width - 1) + "}"
    return r"\A(?:" + row + r"\r?\n)*(?:" + row + r")?\z"


def _bom_kept(chunk: bytes, width: int) -> tuple[bytes, int]:
    """Return a chunk as polars is to read it, and the rows to skip first.

    polars takes U+FEFF at the start of its input for a byte order mark and drops it, but in
    a chunk of data rows it is data (the Python reader keeps it): such a chunk is read behind
    one empty row, skipped.
    """
    if not chunk.startswith(_BOM):
        return chunk, 0
    return b"," * (width - 1) + b"\n" + chunk, 1


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


class _WorkerPool:
    """Daemon threads that type chunks, started on first use (``WORKERS`` of them).

    Not a ThreadPoolExecutor: its threads are joined at interpreter exit, and a run that fails
    or is stopped must exit at once. Threads kept, not one per chunk: starting a thread waits
    until it runs, which on a busy machine costs more than the chunk's typing.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.tasks: queue.SimpleQueue[tuple[Future[t.Any], Callable[[], t.Any]]] = (
            queue.SimpleQueue()
        )
        self.lock = threading.Lock()
        self.started = False

    def submit(self, work: Callable[[], T]) -> Future[T]:
        """Queue ``work``; return the Future of its result (or exception)."""
        with self.lock:
            if not self.started:
                for number in range(self.size):
                    name = f"columnar-{number}"
                    threading.Thread(target=self._serve, name=name, daemon=True).start()
                self.started = True
        future: Future[T] = Future()
        self.tasks.put((future, work))
        return future

    def _serve(self) -> None:
        while True:
            future, work = self.tasks.get()
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while queued
            try:
                future.set_result(work())
            except BaseException as exc:  # handed to whoever reads the future
                future.set_exception(exc)
            del future, work  # a finished chunk is not kept alive by an idle worker


_POOL = _WorkerPool(WORKERS)


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


def _well_formed(chunk: bytes, pattern: str, piece_bytes: int) -> bool:
    """Whether a chunk of rows is valid UTF-8 and matches the chunk pattern.

    The chunk is checked in pieces of about ``piece_bytes`` (cut at row boundaries), because
    the regex engine needs memory in proportion to its input, and so that pieces are checked on
    every core at once.
    """
    import polars as pl

    pieces = []
    start = 0
    while start < len(chunk):
        stop = start + piece_bytes
        end = (_last_row_end(chunk, start, stop) if stop < len(chunk) else None) or len(chunk)
        pieces.append(chunk[start:end])
        start = end
    try:
        text = pl.Series(pieces, dtype=pl.Binary).cast(pl.String)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError):  # not UTF-8
        return False
    return bool(text.str.contains(pattern).all())


def _row_chunks(raw: t.BinaryIO, size: int) -> Iterator[bytes]:
    """Yield the rest of a CSV file in chunks of about ``size`` bytes, each ending on a row
    boundary: a line feed preceded by an even number of quotes in the chunk.

    On a malformed file a boundary may be misplaced, but then the chunk does not match the
    chunk pattern, and the Python reader takes over from that chunk on.
    """
    carry = b""
    while True:
        block = raw.read(size)
        if not block:
            if carry:
                yield carry
            return
        chunk = carry + block if carry else block
        end = _last_row_end(chunk)
        if end is None:
            if len(chunk) > MAX_ROW_BYTES:
                yield chunk  # does not match: the Python reader reads on and reports
                return
            carry = chunk
            continue
        yield chunk[:end]
        carry = chunk[end:]


def _last_row_end(chunk: bytes, start: int = 0, stop: int | None = None) -> int | None:
    """Return the offset just after the last line feed in ``chunk[start:stop]`` that has an
    even number of quotes between ``start`` (a row boundary) and it, if any.
    """
    end = chunk.rfind(b"\n", start, stop)
    if end < 0:
        return None
    quotes = chunk.count(b'"', start, end)
    while quotes % 2:
        previous = chunk.rfind(b"\n", start, end)
        if previous < 0:
            return None
        quotes -= chunk.count(b'"', previous, end)
        end = previous
    return end + 1


# Value kinds -----------------------------------------------------------------------------------


def _date(cell: pl.Expr, tmp: str, target: Target) -> tuple[list[list[pl.Expr]], pl.Expr]:
    """A YYYY-MM-DD cell: kept as text for JSON, a ``Date`` for parquet; null when invalid."""
    import polars as pl

    day = pl.col(tmp + "day")
    stages = [[_calendar_day(cell).alias(tmp + "day")]]
    if target == "json":
        return stages, pl.when(day.is_not_null()).then(cell)
    return stages, day


def _calendar_day(text: pl.Expr, *, shaped: bool = False) -> pl.Expr:
    """The ``Date`` of a YYYY-MM-DD text (year 1 to 9999, a real day), else null. ``shaped``:
    the text is known to have that shape already (only the day's validity is left to check).
    """
    import polars as pl

    valid = text.str.slice(0, 4) != "0000"
    if not shaped:
        valid = text.str.contains(_DATE) & valid
    return pl.when(valid).then(text).str.to_date("%Y-%m-%d", strict=False)


def _datetime(cell: pl.Expr, tmp: str, target: Target) -> tuple[list[list[pl.Expr]], pl.Expr]:
    """An ISO 8601 date-time cell → a UTC instant in microseconds, null when invalid; for JSON,
    the text ``datetime.isoformat()`` gives for it (``+00:00``, microseconds only if not 0).

    Once a cell matches the grammar, each part sits at a known place: the date at 0-9, hour
    and minute at 11-15, seconds at 17-18 when there is a colon at 16, then the "tail": an
    optional fraction (``.`` and 1 to 9 digits) and an optional zone (``Z``, ``±HH:MM`` or
    ``±HHMM``). The zone is what is left of the tail once the fraction's characters are
    stripped; its hours and minutes are its characters 1-2 and its last two.
    """
    import polars as pl

    number = pl.Int64
    v = pl.col(tmp + "v")
    has_seconds = v.str.slice(16, 1) == ":"
    timed = v.str.len_bytes() > 10

    def at(text: pl.Expr, start: int, size: int | None = 2) -> pl.Expr:
        return text.str.slice(start, size).cast(number, strict=False).fill_null(0)

    h, mi, sec = pl.col(tmp + "h"), pl.col(tmp + "mi"), pl.col(tmp + "s")
    day, tail, zone = pl.col(tmp + "day"), pl.col(tmp + "tail"), pl.col(tmp + "zone")
    zone_hours, zone_minutes = pl.col(tmp + "zh"), pl.col(tmp + "zm")
    fraction = tail.str.head(tail.str.len_bytes() - zone.str.len_bytes())  # "" or ".ddd"
    offset = (zone_hours * 60 + zone_minutes) * 60_000_000
    stages = [
        [pl.when(cell.str.contains(_DATETIME)).then(cell).alias(tmp + "v")],
        [
            _calendar_day(v.str.slice(0, 10), shaped=True).cast(number).alias(tmp + "day"),
            at(v, 11).alias(tmp + "h"),
            at(v, 14).alias(tmp + "mi"),
            pl.when(has_seconds).then(at(v, 17)).otherwise(0).alias(tmp + "s"),
            v.str.slice(pl.when(has_seconds).then(19).when(timed).then(16).otherwise(10)).alias(
                tmp + "tail"
            ),
        ],
        [tail.str.strip_chars_start(".0123456789").alias(tmp + "zone")],
        [
            at(zone, 1).alias(tmp + "zh"),
            at(zone, -2).alias(tmp + "zm"),
            at(fraction.str.slice(1, 6).str.pad_end(6, "0"), 0, None).alias(tmp + "us"),
        ],
        [
            pl.when(
                (h <= 23) & (mi <= 59) & (sec <= 59) & (zone_hours <= 23) & (zone_minutes <= 59)
            )
            .then(
                (day * 86_400 + h * 3600 + mi * 60 + sec) * 1_000_000
                + pl.col(tmp + "us")
                + pl.when(zone.str.starts_with("+"))
                .then(-offset)
                .when(zone.str.starts_with("-"))
                .then(offset)
                .otherwise(0)
            )
            .alias(tmp + "i")
        ],
    ]
    instant = pl.col(tmp + "i")
    utc = pl.when((instant >= _MIN_US) & (instant < _END_US)).then(instant)
    if target == "parquet":
        return stages, utc.cast(pl.Datetime("us", "UTC"))
    # Formatting a naive datetime is cheaper than an aware one; the text is the same.
    text = utc.cast(pl.Datetime("us")).dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00")
    return stages, text.str.replace(".000000+", "+", literal=True)  # no microseconds: none


# Outputs ---------------------------------------------------------------------------------------


class RecordSink(t.Protocol):
    """Where RECORD messages go: the tap's writer (``writer.FastSingerWriter``)."""

    def write_record(
        self, stream: str, record: dict[str, t.Any], time_extracted: str | None = None
    ) -> None:
        """Write one RECORD message."""

    def write_lines(self, lines: bytes) -> None:
        """Write complete, encoded RECORD lines."""


def _record_message_pieces(
    frame: pl.DataFrame, stream: str, time_extracted: str
) -> Iterator[bytes]:
    """Encode a typed frame (typed for "json") as Singer RECORD lines, ``ENCODE_ROWS`` at a time:
    the same bytes the tap's writer gives for each record (polars writes floats and strings as
    orjson does: shortest round-trip floats, UTF-8 unescaped).

    polars writes each record as one JSON line (a line feed inside a value is escaped, so every
    line feed ends a record), and each line feed becomes the end of one message and the start
    of the next: twice as fast as having polars write the message objects.
    """
    import orjson

    head = b'{"type":"RECORD","stream":' + orjson.dumps(stream) + b',"record":'
    tail = b',"time_extracted":' + orjson.dumps(time_extracted) + b"}\n"
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
) -> PartSummary:
    """Write a part's blocks as Singer RECORD messages, in order; return what they held."""
    summary = _Summary(replication_key)
    for block in blocks:
        summary.add(block)
        if isinstance(block, list):
            for record in block:
                sink.write_record(stream, record, time_extracted)
        else:
            for piece in _record_message_pieces(block, stream, time_extracted):
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

    summary = _Summary(replication_key)
    for block in blocks:
        summary.add(block)
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

    summary = _Summary(replication_key)
    names = list(schema)

    def frames(*_: t.Any) -> Iterator[pl.DataFrame]:
        for block in blocks:
            summary.add(block)
            if isinstance(block, list):
                yield _records_frame(block, schema).select(names)
            else:
                yield block.select(names)

    source = register_io_source(frames, schema=schema)
    source.sink_parquet(out, compression=compression, row_group_size=PARQUET_ROW_GROUP)
    return summary.result()


#: Rows per parquet row group: what the parquet writer holds before it writes.
PARQUET_ROW_GROUP = 16_384


def parquet_schema(reader: CsvPartReader) -> dict[str, pl.DataType]:
    """Return the parquet column types of a stream's fields, in field order."""
    import polars as pl

    types: dict[tuple[str, str | None], pl.DataType] = {
        ("integer", None): pl.Int64(),
        ("number", None): pl.Float64(),
        ("boolean", None): pl.Boolean(),
        ("string", "date"): pl.Date(),
        ("string", "date-time"): pl.Datetime("us", "UTC"),
    }
    return {
        name: types.get(property_kind(reader.properties[name]), pl.String())
        for name in reader.fields
    }


def _records_frame(records: list[dict[str, t.Any]], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Columns of the Python reader's records, typed for parquet (its integers are within the
    signed 64-bit range: it refuses others).
    """
    import polars as pl

    text = {
        name: pl.String() if dtype in (pl.Date, pl.Datetime) else dtype
        for name, dtype in schema.items()
    }
    frame = pl.from_dicts(records, schema=text)
    return frame.with_columns(
        pl.col(name).str.to_date("%Y-%m-%d")
        if dtype == pl.Date
        else pl.col(name).str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_unit="us")
        for name, dtype in schema.items()
        if dtype in (pl.Date, pl.Datetime)
    )


_INVALID = "\x00invalid"


class _NotExactError(Exception):
    """A cell did not type in ``parquet_at_once``: the part is written from ``blocks``."""


class _Tally:
    """The filter of ``parquet_at_once``'s query: it stops the query at the first batch holding
    a cell that did not type, and counts the rows and keeps the greatest replication-key value
    of the others (batches may come from several threads at once).
    """

    def __init__(self, key: str | None) -> None:
        self.summary = _Summary(key)
        self.lock = threading.Lock()

    def __call__(self, batch: pl.Series) -> pl.Series:
        frame = batch.struct.unnest()
        invalid = frame.get_column(_INVALID)
        if invalid.any():
            raise _NotExactError
        with self.lock:
            self.summary.add(frame)
        return invalid.not_()


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


class _Summary:
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

    def result(self) -> PartSummary:
        """Return the part's summary."""
        return PartSummary(self.rows, self.greatest)


def write_part_record_messages(
    part: DownloadedPart,
    reader: CsvPartReader,
    sink: RecordSink,
    time_extracted: str,
    replication_key: str | None,
) -> PartSummary:
    """Write one part's RECORD messages through the columnar path; return what they held."""
    columnar = _READERS.get(reader)
    if columnar is None or columnar.replication_key != replication_key:
        columnar = _READERS[reader] = ColumnarPartReader(reader, replication_key)
    blocks = columnar.blocks(part, "json")
    return write_record_messages(blocks, sink, reader.stream, time_extracted, replication_key)


#: The columnar reader of each Python reader (one per window), so that its typing plan is built
#: once per window, not once per part.
_READERS: weakref.WeakKeyDictionary[CsvPartReader, ColumnarPartReader] = weakref.WeakKeyDictionary()
