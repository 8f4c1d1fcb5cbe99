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
import typing as t

from tap_demandbase.errors import MalformedResultError
from tap_demandbase.records.kinds import Kind, OutOfRangeError

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from tap_demandbase.engine.results import DownloadedPart
    from tap_demandbase.records.kinds import Converter

#: The longest field the reader accepts (the csv module's default, 128 KiB, would reject long
#: free-text fields; ``process.configure_process`` raises the csv module's limit to this).
MAX_FIELD_BYTES = 64 * 1024 * 1024


def converter_for(prop: dict[str, t.Any]) -> tuple[Converter, str] | None:
    """Return the converter and the kind's name for a property; None keeps the string."""
    kind = Kind.of(prop)
    return None if kind.converter is None else (kind.converter, kind.human_name)


class CsvPartReader:
    """Reads result parts of one stream into typed records."""

    def __init__(
        self,
        stream: str,
        properties: dict[str, dict[str, t.Any]],
        fields: Sequence[str],
        columns: Mapping[str, Sequence[str]] | None = None,
        absent: Sequence[str] = (),
    ) -> None:
        self.stream = stream
        self.properties = properties
        self.fields = list(fields)
        #: Wanted properties the result has no column for (the API no longer has the field, so
        #: the job was created without it): null in every record, after the others.
        self.absent = [name for name in absent if name not in self.fields]
        #: Property → the header names its column may have, the API's exact name first, then
        #: shorter forms accepted where unique (absent: the property's own name).
        self.columns = dict(columns or {})

    def header_fields(self, header: Sequence[str]) -> list[str | None]:
        """Return the wanted property each header column holds (None: not wanted).

        A column is matched by a property's exact API name; a shorter form (another name in
        ``columns``) only when the header holds it once, it names no other column exactly, and
        exactly one wanted property not matched exactly claims it.
        """
        exact: dict[str, str] = {}
        shorter: dict[str, list[str]] = {}
        for name in self.fields:
            first, *others = self.columns.get(name) or (name,)
            exact[first] = name
            for other in others:
                shorter.setdefault(other, []).append(name)
        matched = {exact[column] for column in header if column in exact}
        out: list[str | None] = []
        for column in header:
            if column in exact:
                out.append(exact[column])
                continue
            claims = [name for name in shorter.get(column, ()) if name not in matched]
            unique = len(claims) == 1 and header.count(column) == 1
            out.append(claims[0] if unique else None)
        return out

    def header_name(self, field: str) -> str:
        """Return the header name the API gives a property's column."""
        return (self.columns.get(field) or (field,))[0]

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
        nulls = dict.fromkeys(self.absent)
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
                if nulls:
                    record.update(nulls)
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
        held = self.header_fields(header)
        missing = [self.header_name(name) for name in self.fields if name not in held]
        if missing:
            if len(missing) == len(self.fields):
                detail = "no header row (the first line does not name any requested field)"
            else:
                detail = f"the header lacks requested column(s) {', '.join(missing)}"
            raise self._error(part, 1, None, detail)
        return [
            (name, converter_for(self.properties[name])) if name else (None, None) for name in held
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
