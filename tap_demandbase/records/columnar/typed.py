"""The value grammar as polars expressions: a second implementation of ``records.kinds``, by
nature, keyed by the same kinds.

Each kind's conversion types a column of cell texts: null where a cell is empty or not a valid
value of its kind (the caller compares null counts with empty counts to find cells that did not
type). Date-times are converted with integer arithmetic (UTC, microseconds, fractions truncated)
and, for JSON, written as ``datetime.isoformat()`` writes them.
"""

from __future__ import annotations

import itertools
import typing as t

from tap_demandbase.records.kinds import BOOLEAN_WORDS, Kind

if t.TYPE_CHECKING:
    from collections.abc import Callable

    import polars as pl

    from tap_demandbase.records.reader import CsvPartReader

#: What a part is typed for: "json" (dates and date-times as the Python reader's text) or
#: "parquet" (dates as ``Date``, date-times as UTC ``Datetime`` in microseconds).
Target = t.Literal["json", "parquet"]
#: How a column is typed: stages of intermediate columns, then the final expression.
Conversion = tuple[list[list["pl.Expr"]], "pl.Expr"]


def _whole(kind: Kind) -> str:
    """Return the kind's grammar as a pattern a whole cell must match."""
    return f"^(?:{kind.grammar})$"


_INTEGER = _whole(Kind.INTEGER)
_NUMBER = _whole(Kind.NUMBER)
_DATE = _whole(Kind.DATE)
_DATE_TIME = _whole(Kind.DATE_TIME)
#: Every spelling of the boolean words (any case), and the digits.
_BOOLEAN_SPELLINGS: dict[str, bool] = {
    "".join(letters): value
    for word, value in BOOLEAN_WORDS.items()
    for letters in itertools.product(*({c, c.upper()} for c in word))
}
#: Microseconds since the epoch of 0001-01-01T00:00:00 and of 10000-01-01T00:00:00: the range
#: Python's datetime can hold (a UTC instant outside it fails in the Python reader).
_MIN_US = -62_135_596_800_000_000
_END_US = 253_402_300_800_000_000


def conversion(name: str, tmp: str, kind: Kind, target: Target) -> Conversion:
    """Return how to type the column ``name`` of cell texts as ``kind``: stages of intermediate
    columns (named with the prefix ``tmp``), and the final expression.
    """
    import polars as pl

    return _CONVERSIONS[kind](pl.col(name), tmp, target)


def _string(cell: pl.Expr, tmp: str, target: Target) -> Conversion:
    """Any text, as it is; an empty cell is null."""
    import polars as pl

    return [], pl.when(cell.str.len_bytes() > 0).then(cell)


def _integer(cell: pl.Expr, tmp: str, target: Target) -> Conversion:
    """An integer cell, null when it is not one or is out of the signed 64-bit range."""
    import polars as pl

    value = pl.when(cell.str.len_bytes() > 0).then(cell)
    return [], pl.when(value.str.contains(_INTEGER)).then(value.str.to_integer(strict=False))


def _number(cell: pl.Expr, tmp: str, target: Target) -> Conversion:
    """A finite decimal number, null otherwise."""
    import polars as pl

    number = pl.when(cell.str.contains(_NUMBER)).then(cell.cast(pl.Float64, strict=False))
    return [[number.alias(tmp + "n")]], pl.when(pl.col(tmp + "n").is_finite()).then(
        pl.col(tmp + "n")
    )


def _boolean(cell: pl.Expr, tmp: str, target: Target) -> Conversion:
    """A boolean word in any case, or 1/0; null otherwise."""
    import polars as pl

    return [], cell.replace_strict(_BOOLEAN_SPELLINGS, default=None, return_dtype=pl.Boolean)


def _date(cell: pl.Expr, tmp: str, target: Target) -> Conversion:
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


def _datetime(cell: pl.Expr, tmp: str, target: Target) -> Conversion:
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
        [pl.when(cell.str.contains(_DATE_TIME)).then(cell).alias(tmp + "v")],
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


_CONVERSIONS: dict[Kind, Callable[[pl.Expr, str, Target], Conversion]] = {
    Kind.STRING: _string,
    Kind.INTEGER: _integer,
    Kind.NUMBER: _number,
    Kind.BOOLEAN: _boolean,
    Kind.DATE: _date,
    Kind.DATE_TIME: _datetime,
}


def parquet_schema(reader: CsvPartReader) -> dict[str, pl.DataType]:
    """Return the parquet column types of a stream's fields, in field order (the absent ones,
    all null, last).
    """
    names = [*reader.fields, *reader.absent]
    return {name: Kind.of(reader.properties[name]).polars_type() for name in names}


def records_frame(records: list[dict[str, t.Any]], schema: dict[str, pl.DataType]) -> pl.DataFrame:
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
