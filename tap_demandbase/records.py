"""CSV bytes → records of typed Python values, exactly as the schema declares them.

One converter per column, chosen once per part from the JSON Schema, so that a value that does
not parse is an error naming stream, part, line and field, never a silent coercion ("false" →
True, "NA" → null, 1.5 → 1). Strings are passed through byte-exact: "007", "NULL", " x " and
"true" in a string field are data. An empty cell is null.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime
import math
import re
import typing as t

from tap_demandbase.errors import MalformedResultError
from tap_demandbase.schema import property_kind

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from tap_demandbase.engine.results import DownloadedPart

Converter = t.Callable[[str], t.Any]

# Long free-text fields exist; the csv module's default limit (128 KiB) would reject them.
csv.field_size_limit(64 * 1024 * 1024)

_UTC = datetime.timezone.utc
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# The accepted text forms are ASCII only (the README's "Streams" section states them). Python's
# own parsers are laxer (int() takes "1_000", " 42" and "٤٢"; fromisoformat() takes week dates),
# so every converter rules those out before or after parsing.
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?"
    r"([Zz]|[+-][0-9]{2}:?[0-9]{2})?)?"
)


class OutOfRangeError(ValueError):
    """A well-formed integer that no warehouse integer column (signed 64-bit) can hold."""


def to_integer(value: str) -> int:
    """Read an ASCII integer with an optional sign; '1.0', '1_000' and ' 42' are not ones."""
    digits = value[1:] if value[0] in "+-" else value
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(value)
    number = int(value)
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise OutOfRangeError(value)
    return number


def to_number(value: str) -> float:
    """Read a finite decimal number (JSON has no NaN or Infinity)."""
    number = float(value)
    # float() also takes "1_000", " 1.5" and non-ASCII digits; with those ruled out it takes
    # exactly the documented form, and costs less than a regular expression on the hot path.
    if not (
        math.isfinite(number)
        and value.isascii()
        and "_" not in value
        and value[0] > " "
        and value[-1] > " "
    ):
        raise ValueError(value)
    return number


def to_boolean(value: str) -> bool:
    """Read true/false (any case) or 1/0, and nothing else."""
    return _BOOLEANS[value.lower()]


def to_date(value: str) -> str:
    """Check a YYYY-MM-DD date and keep it as it is."""
    if len(value) != 10 or value[4] != "-" or value[7] != "-" or not value.isascii():
        raise ValueError(value)
    datetime.date.fromisoformat(value)  # its digits are ASCII 0-9 only
    return value


def to_datetime(value: str) -> str:
    """Normalise a date-time to RFC 3339 in UTC: naive is UTC, a bare date is midnight UTC,
    fractions beyond microseconds are truncated.
    """
    if (
        len(value) == 20
        and value[19] == "Z"
        and value[10] == "T"
        and value[4] == value[7] == "-"
        and value[13] == value[16] == ":"
        and value.isascii()
    ):
        # The common case, already UTC: with its separators fixed, fromisoformat() takes only
        # ASCII digits around them. Validate it, and only swap the suffix.
        datetime.datetime.fromisoformat(value[:19])
        return value[:19] + "+00:00"
    match = _DATETIME.fullmatch(value)
    if match is None:
        raise ValueError(value)
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    moment = datetime.datetime(
        int(year),
        int(month),
        int(day),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        int((fraction or "")[:6].ljust(6, "0")),
        tzinfo=_offset(offset),
    )
    return moment.astimezone(_UTC).isoformat()


def _offset(text: str | None) -> datetime.tzinfo:
    """Return the time zone of a '+05:30' / '-0800' / 'Z' suffix (none: UTC)."""
    if not text or text in {"Z", "z"}:
        return _UTC
    hours, minutes = int(text[1:3]), int(text[-2:])
    if minutes >= 60:
        raise ValueError(text)
    delta = datetime.timedelta(hours=hours, minutes=minutes)
    return datetime.timezone(-delta if text[0] == "-" else delta)


_KINDS: dict[tuple[str, str | None], tuple[Converter, str]] = {
    ("integer", None): (to_integer, "integer"),
    ("number", None): (to_number, "number"),
    ("boolean", None): (to_boolean, "boolean (true/false/1/0)"),
    ("string", "date"): (to_date, "date (YYYY-MM-DD)"),
    ("string", "date-time"): (to_datetime, "ISO 8601 date-time"),
}


def converter_for(prop: dict[str, t.Any]) -> tuple[Converter, str] | None:
    """Return the converter and the kind's name for a property; None keeps the string."""
    return _KINDS.get(property_kind(prop))


class CsvPartReader:
    """Reads result parts of one stream into typed records."""

    def __init__(
        self, stream: str, properties: dict[str, dict[str, t.Any]], fields: Sequence[str]
    ) -> None:
        self.stream = stream
        self.properties = properties
        self.fields = list(fields)

    def records(self, part: DownloadedPart) -> Iterator[dict[str, t.Any]]:
        """Yield the records of a part, columns matched by header name."""
        with part.path.open(encoding="utf-8-sig", newline="") as text:
            reader = csv.reader(text, strict=True)
            try:
                yield from self._rows(reader, part)
            except UnicodeDecodeError as exc:
                line = _line_of_invalid_utf8(part.path)
                raise self._error(part, line, None, f"invalid UTF-8 ({exc.reason})") from exc
            except csv.Error as exc:
                raise self._error(part, reader.line_num, None, f"broken CSV ({exc})") from exc

    def _rows(self, reader: t.Any, part: DownloadedPart) -> Iterator[dict[str, t.Any]]:
        header = next(reader, None)
        if header is None:
            raise self._error(part, 1, None, "the part is empty, it has no header row")
        columns = self._columns(header, part)
        width = len(header)
        # Hot loop: dict(zip()) builds the record in C; only typed and empty cells are touched.
        names = [name or "" for name, _ in columns]
        extra = [name for name in names if not name]
        typed = [(name, kind) for name, kind in columns if name and kind]
        plain = [name for name, kind in columns if name and not kind]
        try:
            for row in reader:
                if len(row) != width:
                    detail = f"{len(row)} columns where the header has {width}"
                    raise self._error(part, _row_start(part, reader.line_num), None, detail)
                record = dict(zip(names, row, strict=False))  # widths checked above
                if extra:
                    del record[""]
                for name, (convert, kind) in typed:
                    value = record[name]
                    if value:
                        try:
                            record[name] = convert(value)
                        except (ValueError, KeyError, OverflowError) as exc:
                            line = _row_start(part, reader.line_num)
                            raise self._value_error(part, line, name, value, kind, exc) from None
                    else:
                        record[name] = None
                if "" in row:
                    for name in plain:
                        if not record[name]:
                            record[name] = None
                yield record
        except csv.Error as exc:
            line = _row_start(part, reader.line_num)
            raise self._error(part, line, None, f"broken CSV ({exc})") from exc

    def _value_error(
        self, part: DownloadedPart, line: int, name: str, value: str, kind: str, exc: Exception
    ) -> MalformedResultError:
        shown = value if len(value) <= 40 else value[:37] + "..."
        if isinstance(exc, OutOfRangeError):
            detail = f"'{shown}' is an integer out of the signed 64-bit range warehouses store"
        else:
            detail = f"'{shown}' is not a valid {kind}"
        return self._error(part, line, name, detail)

    def _columns(
        self, header: list[str], part: DownloadedPart
    ) -> list[tuple[str | None, tuple[Converter, str] | None]]:
        """Map header positions to wanted fields (None: not wanted) and their converters."""
        duplicated = sorted({name for name in header if header.count(name) > 1})
        if duplicated:
            names = ", ".join(f"'{name}'" for name in duplicated)
            raise self._error(part, 1, None, f"the header names column(s) {names} twice")
        wanted = set(self.fields)
        missing = [name for name in self.fields if name not in header]
        if missing:
            if not wanted.intersection(header):
                detail = "no header row (the first line does not name any requested field)"
            else:
                detail = f"the header lacks requested column(s) {', '.join(missing)}"
            raise self._error(part, 1, None, detail)
        return [
            (name, converter_for(self.properties[name])) if name in wanted else (None, None)
            for name in header
        ]

    def _error(
        self, part: DownloadedPart, line: int, field: str | None, detail: str
    ) -> MalformedResultError:
        where = f"{self.stream}: part {part.number}, line {line}"
        if field:
            where += f", field '{field}'"
        msg = (
            f"{where}: {detail}. The export result is malformed; nothing after the last "
            "emitted state is lost: run the tap again, and report the job to Demandbase "
            "support if it persists."
        )
        return MalformedResultError(msg)


def _row_start(part: DownloadedPart, end_line: int) -> int:
    """Return the physical line where the row ending on ``end_line`` starts.

    A quoted value may span lines, and people look for a bad row where it starts. Found by
    reading the part again, so that the hot loop does not track lines for the error path.
    """
    start = 1
    with part.path.open(encoding="utf-8-sig", newline="") as text:
        reader = csv.reader(text, strict=True)
        with contextlib.suppress(csv.Error):
            for _ in reader:
                if reader.line_num >= end_line:
                    return start
                start = reader.line_num + 1
    return start


def _line_of_invalid_utf8(path: t.Any) -> int:
    """Return the 1-based physical line of the first byte that is not valid UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open(path, "rb") as raw:
        for chunk in iter(lambda: raw.read(1 << 16), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return line + chunk[: exc.start].count(b"\n")
            line += chunk.count(b"\n")
    return line
