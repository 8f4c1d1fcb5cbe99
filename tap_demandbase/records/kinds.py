"""The value kinds of a record's fields: one home for their grammar.

Each dialect maps its API's type words to a ``Kind``; the kind gives the field its JSON Schema,
the text forms a cell may hold (the grammar), the Python converter that reads them, the polars
(and so parquet) column type, and the name error lines use. The columnar path types the same
grammar with polars expressions (``columnar/typed.py``), keyed by the same kinds, and the
grammar table of ``docs/streams.md`` is rendered from here (``grammar_markdown``).

The accepted text forms are ASCII only. Python's own parsers are laxer (int() takes "1_000",
" 42" and "٤٢"; fromisoformat() takes week dates), so every converter rules those out before or
after parsing.
"""

from __future__ import annotations

import datetime
import enum
import math
import re
import typing as t
from dataclasses import dataclass

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    import polars as pl

Converter = t.Callable[[str], t.Any]

_UTC = datetime.timezone.utc
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

#: The boolean words (any case) and digits, and the value each stands for.
BOOLEAN_WORDS = {"true": True, "false": False, "1": True, "0": False}

_INTEGER = r"[+-]?[0-9]+"
_NUMBER = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
_BOOLEAN = r"[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0"
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_DATE_TIME = (
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?"
    r"([Zz]|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_DATE_TIME_PARTS = re.compile(_DATE_TIME)


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
    return BOOLEAN_WORDS[value.lower()]


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
    match = _DATE_TIME_PARTS.fullmatch(value)
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


class Kind(enum.Enum):
    """The kind of a field's values; its value is the word the docs use for it."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATE_TIME = "date-time"

    @classmethod
    def of(cls, prop: Mapping[str, t.Any]) -> Kind:
        """Return the kind of a JSON Schema property: its main type and, for strings, its
        format (a type or format no kind has is a string, kept as it is).
        """
        types = prop.get("type", "string")
        types = [types] if isinstance(types, str) else list(types)
        main = next((name for name in types if name != "null"), "string")
        form = prop.get("format") if main == "string" else None
        return _BY_SCHEMA.get((main, form), Kind.STRING)

    @property
    def json_schema(self) -> dict[str, t.Any]:
        """Return the nullable JSON Schema of a field of this kind (a new dict each time)."""
        return dict(_SPECS[self].json_schema)

    @property
    def grammar(self) -> str | None:
        """Return the regular expression a whole cell of this kind matches (None: any text)."""
        return _SPECS[self].grammar

    @property
    def converter(self) -> Converter | None:
        """Return the function that reads a cell's text into the value (None: kept as text)."""
        return _SPECS[self].converter

    @property
    def human_name(self) -> str:
        """Return the kind as error lines name it ("'x' is not a valid <name>")."""
        return _SPECS[self].human_name

    def polars_type(self) -> pl.DataType:
        """Return the polars column type of this kind's values, as parquet files hold them."""
        import polars as pl

        name, *arguments = _SPECS[self].polars_type
        return t.cast("pl.DataType", getattr(pl, name)(*arguments))


@dataclass(frozen=True)
class _Spec:
    json_schema: Mapping[str, t.Any]
    grammar: str | None
    converter: Converter | None
    #: The polars type's name and arguments (polars is imported only where it is used).
    polars_type: tuple[str, ...]
    human_name: str
    #: What the docs' grammar table says of the kind (Markdown).
    accepted: str
    emitted: str


_SPECS: dict[Kind, _Spec] = {
    Kind.STRING: _Spec(
        {"type": ["string", "null"]},
        None,
        None,
        ("String",),
        "string",
        "anything",
        'byte-exact (`"007"`, `"NULL"`, `" x "` are data)',
    ),
    Kind.INTEGER: _Spec(
        {"type": ["integer", "null"]},
        _INTEGER,
        to_integer,
        ("Int64",),
        "integer",
        f"`{_INTEGER}` within the signed 64-bit range (what warehouse integer columns hold; a "
        "larger value is an error saying so)",
        "JSON integer",
    ),
    Kind.NUMBER: _Spec(
        {"type": ["number", "null"]},
        _NUMBER,
        to_number,
        ("Float64",),
        "number",
        f"`{_NUMBER}`, finite",
        "JSON number",
    ),
    Kind.BOOLEAN: _Spec(
        {"type": ["boolean", "null"]},
        _BOOLEAN,
        to_boolean,
        ("Boolean",),
        "boolean (true/false/1/0)",
        "`true` / `false` in any case, `1` / `0`",
        "JSON boolean",
    ),
    Kind.DATE: _Spec(
        {"type": ["string", "null"], "format": "date"},
        _DATE,
        to_date,
        ("Date",),
        "date (YYYY-MM-DD)",
        "`YYYY-MM-DD`, a real calendar date",
        "kept as is",
    ),
    Kind.DATE_TIME: _Spec(
        {"type": ["string", "null"], "format": "date-time"},
        _DATE_TIME,
        to_datetime,
        ("Datetime", "us", "UTC"),
        "ISO 8601 date-time",
        "`YYYY-MM-DD`, optionally followed by `T`, `t` or a space and `HH:MM`, `:SS`, `.` and "
        "1–9 fraction digits, then `Z`, `±HH:MM` or `±HHMM`",
        "RFC 3339 in UTC, as `2024-01-05T10:20:30+00:00` (`.ffffff` when there are "
        "microseconds); naive values are UTC, a bare date is midnight, fractions past "
        "microseconds are truncated",
    ),
}

_BY_SCHEMA = {
    (
        next(name for name in spec.json_schema["type"] if name != "null"),
        spec.json_schema.get("format"),
    ): kind
    for kind, spec in _SPECS.items()
}

#: The kinds whose values are dates or date-times (what a replication key can be).
DATE_KINDS = frozenset({Kind.DATE, Kind.DATE_TIME})


def grammar_markdown() -> str:
    """Return the value grammar as ``docs/streams.md`` states it: a lead-in, the table of every
    kind's accepted text and output, and what is refused.
    """
    rows = [
        "| Kind | Accepted text | Emitted as |",
        "|---|---|---|",
        *(
            f"| {kind.value} | {_cell(_SPECS[kind].accepted)} | {_cell(_SPECS[kind].emitted)} |"
            for kind in (*(k for k in Kind if k is not Kind.STRING), Kind.STRING)
        ),
    ]
    return (
        "Values are read strictly, in plain ASCII forms only; anything else is a malformed "
        "part (one error\nline naming stream, part, line and field), never a silent coercion:"
        "\n\n" + "\n".join(rows) + "\n\n"
        "An empty cell is null. Thousands separators (`1_000`, `1,000`), surrounding spaces, "
        "non-ASCII\ndigits, ISO week or ordinal dates and basic-format date-times are refused.\n"
    )


def _cell(markdown: str) -> str:
    """Return text for a Markdown table cell (a ``|`` would end the cell)."""
    return markdown.replace("|", r"\|")
