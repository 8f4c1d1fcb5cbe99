"""The columnar record path gives exactly what the Python reader gives, and types exactly the
value grammar docs/streams.md documents; everything else goes to the Python reader.

Three kinds of check:
- explicit values of every kind, accepted (with the expected output) or refused (handed over);
- the emulator's nasty data and hand-written CSV edge cases, byte for byte against the Python
  reader (``records.CsvPartReader``), RECORD lines and errors alike;
- hypothesis: generated CSV (every value form, junk, quoting, line ends, damage, tiny chunks)
  against the Python reader, and generated grammar values against an independent oracle.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tap_demandbase.dialects.common import FIELD_TYPES
from tap_demandbase.engine.results import DownloadedPart
from tap_demandbase.errors import MalformedResultError
from tap_demandbase.records.columnar.output import (
    ENCODE_ROWS,
    write_json_lines,
    write_parquet,
    write_record_messages,
)
from tap_demandbase.records.columnar.reader import ColumnarPartReader, write_part_record_messages
from tap_demandbase.records.columnar.typed import parquet_schema
from tap_demandbase.records.reader import CsvPartReader
from tap_demandbase.sandbox import SandboxSettings
from tap_demandbase.sandbox.data import Filters
from tap_demandbase.sandbox.entities import ENTITIES
from tap_demandbase.sandbox.files import write_export
from tap_demandbase.schema import property_schema
from tests.support.records import Collected, as_json

TIME = "2024-06-01T12:00:00+00:00"
KINDS = {
    "i": {"type": ["integer", "null"]},
    "x": {"type": ["number", "null"]},
    "b": {"type": ["boolean", "null"]},
    "d": {"type": ["string", "null"], "format": "date"},
    "t": {"type": ["string", "null"], "format": "date-time"},
    "s": {"type": ["string", "null"]},
}


def _part(path: Path, data: bytes, number: int = 1) -> DownloadedPart:
    path.write_bytes(data)
    return DownloadedPart(number=number, path=path, size=len(data))


def _python(part, reader) -> tuple[bytes, str | None]:
    """RECORD lines (and the error, if any) of the Python path: the reference."""
    writer = Collected()
    try:
        for record in reader.records(part):
            writer.write_record(reader.stream, record, TIME)
    except (MalformedResultError, OverflowError) as exc:
        return bytes(writer.out), f"{type(exc).__name__}: {exc}"
    return bytes(writer.out), None


def _columnar(part, reader, key=None, **sizes) -> tuple[bytes, str | None]:
    writer = Collected()
    blocks = ColumnarPartReader(reader, key, **sizes).blocks(part, "json")
    try:
        write_record_messages(blocks, writer, reader.stream, TIME, key)
    except (MalformedResultError, OverflowError) as exc:
        return bytes(writer.out), f"{type(exc).__name__}: {exc}"
    return bytes(writer.out), None


def _same(columnar: tuple[bytes, str | None], python: tuple[bytes, str | None]) -> None:
    """Assert the same lines and the same error. Before an error, either path may have written
    fewer of the part's lines (the Python reader decodes 8 KiB ahead, so a bad byte stops it
    early): a failed part is not marked done, so the next run emits it whole anyway.
    """
    (lines, error), (expected_lines, expected_error) = columnar, python
    assert error == expected_error
    if error is None:
        assert lines == expected_lines
    else:
        assert lines.startswith(expected_lines) or expected_lines.startswith(lines)


def _blocks(tmp_path, data: bytes, properties, **sizes):
    reader = CsvPartReader("things", properties, list(properties))
    part = _part(tmp_path / "part.csv", data)
    return list(ColumnarPartReader(reader, None, **sizes).blocks(part, "json"))


# Explicit values ------------------------------------------------------------------------------

ACCEPTED = [
    ("i", "42", 42),
    ("i", "+42", 42),
    ("i", "-0", 0),
    ("i", "007", 7),
    ("i", "9223372036854775807", 9223372036854775807),
    ("i", "-9223372036854775808", -9223372036854775808),
    ("x", "1.5", 1.5),
    ("x", "+.5", 0.5),
    ("x", "5.", 5.0),
    ("x", "-0", -0.0),
    ("x", "1e3", 1000.0),
    ("x", "1E-3", 0.001),
    ("x", "1234.50", 1234.5),
    ("x", "0.1", 0.1),
    ("x", "1e-400", 0.0),
    ("x", "123456789012345678901234567890", 1.2345678901234568e29),
    ("b", "true", True),
    ("b", "TrUe", True),
    ("b", "FALSE", False),
    ("b", "1", True),
    ("b", "0", False),
    ("d", "2024-02-29", "2024-02-29"),
    ("d", "0001-01-01", "0001-01-01"),
    ("d", "9999-12-31", "9999-12-31"),
    ("t", "2024-01-05T10:20:30Z", "2024-01-05T10:20:30+00:00"),
    ("t", "2024-01-05t10:20:30z", "2024-01-05T10:20:30+00:00"),
    ("t", "2024-01-05 10:20:30", "2024-01-05T10:20:30+00:00"),
    ("t", "2024-01-05T10:20", "2024-01-05T10:20:00+00:00"),
    ("t", "2024-01-05T10:20+01:00", "2024-01-05T09:20:00+00:00"),
    ("t", "2024-01-05", "2024-01-05T00:00:00+00:00"),
    ("t", "2024-01-05T10:20:30+01:00", "2024-01-05T09:20:30+00:00"),
    ("t", "2024-01-05T10:20:30+0100", "2024-01-05T09:20:30+00:00"),
    ("t", "2024-01-05T10:20:30-05:30", "2024-01-05T15:50:30+00:00"),
    ("t", "2024-01-05T10:20:30-00:00", "2024-01-05T10:20:30+00:00"),
    ("t", "2024-01-01T00:20:30+01:00", "2023-12-31T23:20:30+00:00"),
    ("t", "2024-02-28T23:30:00-01:00", "2024-02-29T00:30:00+00:00"),
    ("t", "2024-01-05T10:20:30.1Z", "2024-01-05T10:20:30.100000+00:00"),
    ("t", "2024-01-05T10:20:30.123456Z", "2024-01-05T10:20:30.123456+00:00"),
    ("t", "2024-01-05T10:20:30.1234567Z", "2024-01-05T10:20:30.123456+00:00"),
    ("t", "2024-01-05T10:20:30.999999999+02:00", "2024-01-05T08:20:30.999999+00:00"),
    ("t", "2024-01-05T10:20:30.000000Z", "2024-01-05T10:20:30+00:00"),
    ("t", "2024-01-05T10:20:30.0000001Z", "2024-01-05T10:20:30+00:00"),
    ("t", "1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.500000+00:00"),
    ("t", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+00:00"),
    ("t", "2024-01-05T10:20:30+23:59", "2024-01-04T10:21:30+00:00"),
    ("s", "NULL", "NULL"),
    ("s", " x ", " x "),
    ("s", "007", "007"),
    ("s", 'a "b", c\r\nd', 'a "b", c\r\nd'),
]

# Each refused by the columnar path, so the Python reader reads it (and, once it is as strict as
# the grammar, reports it as malformed).
REFUSED = [
    ("i", "1_000"),
    ("i", " 42"),
    ("i", "42 "),
    ("i", "\u0664\u0662"),
    ("i", "1.0"),
    ("i", "1e3"),
    ("i", "9223372036854775808"),
    ("i", "-9223372036854775809"),
    ("i", "0x10"),
    ("x", "nan"),
    ("x", "inf"),
    ("x", "1e400"),
    ("x", "1_000.5"),
    ("x", " 1.5"),
    ("x", "."),
    ("x", "1e"),
    ("x", "\u0661.\u0665"),
    ("b", "yes"),
    ("b", "t"),
    ("b", " true"),
    ("d", "2024-02-30"),
    ("d", "2023-02-29"),
    ("d", "0000-01-01"),
    ("d", "2024-1-05"),
    ("d", "20240105"),
    ("d", "2024-W01-1"),
    ("d", "2024-01-05T00:00:00Z"),
    ("t", "2024-W01-1T10:00:00Z"),
    ("t", "2024-13-05T10:20:30Z"),
    ("t", "2024-01-05T24:00:00Z"),
    ("t", "2024-01-05T10:60:00Z"),
    ("t", "2024-01-05T10:20:60Z"),
    ("t", "2024-01-05T10:20:30+24:00"),
    ("t", "2024-01-05T10:20:30+01:60"),
    ("t", "2024-01-05T10:20:30.Z"),
    ("t", "2024-01-05T10:20:30.1234567890Z"),
    ("t", "2024-01-05T10:20:30,5Z"),
    ("t", "2024-01-05T10Z"),
    ("t", "2024-01-05T10:20:30+01"),
    ("t", "2024-01-05_10:20:30"),
    ("t", "20240105T102030Z"),
    ("t", "0001-01-01T00:30:00+01:00"),
    ("t", "9999-12-31T23:30:00-01:00"),
    # The strict ASCII grammar (records/kinds.py): each a form Python's own parsers accept.
    ("i", "\u00b2"),
    ("i", "+"),
    ("i", "-"),
    ("i", "99999999999999999999"),
    ("x", "e3"),
    ("x", "1,5"),
    ("x", "-Infinity"),
    ("x", "1.5 "),
    ("x", "\u0664\u0662"),
    ("b", "true "),
    ("b", "\u0661"),
    ("d", " 2024-01-05"),
    ("d", "\u0662\u0660\u0662\u0664-01-05"),
    ("d", "2024-01-05 "),
    ("t", "2024-005T10:00:00Z"),
    ("t", "2024-W01-1"),
    ("t", "2024-01-05T10"),
    ("t", "2024-01-05T10:20:30+01:99"),
    ("t", "2024-13-45T99:00:00Z"),
    ("t", " 2024-01-05T10:20:30Z"),
    ("t", "2024-01-05T10:20:30Z "),
    ("t", "\u0662\u0660\u0662\u0664-01-05T10:20:30Z"),
    ("t", "2024-01-05T1\u0660:20:30Z"),
    ("t", "0000-01-01T00:00:00Z"),
    ("t", "2024-01-05T10:20:30.12\u00b3Z"),
]


@pytest.mark.parametrize(("kind", "text", "expected"), ACCEPTED)
def test_columnar_types_each_accepted_form(tmp_path, kind, text, expected):
    properties = {"id": KINDS["s"], "v": KINDS[kind]}
    data = b"id,v\r\n" + _csv_row(["1", text]) + _csv_row(["2", ""])
    (block,) = _blocks(tmp_path, data, properties)
    assert isinstance(block, pl.DataFrame), "typed by the columnar path"
    assert block.to_dicts() == [{"id": "1", "v": expected}, {"id": "2", "v": None}]
    value = block.item(0, "v")
    assert type(value) is type(expected)
    if isinstance(expected, float):
        assert str(value) == str(expected)  # -0.0 stays -0.0


@pytest.mark.parametrize(("kind", "text"), REFUSED)
def test_columnar_hands_each_refused_form_to_the_python_reader(tmp_path, kind, text):
    """The row before is typed by polars; the refused value goes to the Python reader, which
    refuses it with its one-line error naming stream, part, line and field.
    """
    properties = {"id": KINDS["s"], "v": KINDS[kind]}
    data = b"id,v\r\n" + _csv_row(["0", ""]) + _csv_row(["1", text])
    reader = CsvPartReader("things", properties, list(properties))
    part = _part(tmp_path / "part.csv", data)
    blocks = ColumnarPartReader(reader, None).blocks(part, "json")
    with pytest.raises(MalformedResultError) as caught:
        for block in blocks:
            assert isinstance(block, list), "not typed by the columnar path"
    assert "things: part 1, line 3, field 'v': " in str(caught.value)
    _same(_columnar(part, reader), _python(part, reader))


def test_one_refused_value_hands_over_from_its_chunk_on(tmp_path):
    """Chunks before the refused value are typed by polars, the rest by the Python reader, and
    the rows are the Python reader's, in order, each once.
    """
    properties = {"id": KINDS["s"], "v": KINDS["i"], "t": KINDS["t"]}
    rows = [[f"r{n}", str(n), f"2024-01-05T10:20:{n % 60:02d}Z"] for n in range(400)]
    rows[300][2] = "2024-01-05T10:20:30+0100"  # other forms in the chunks before it
    rows[301][2] = "2024-01-05 10:20:30.5"
    rows[350][1] = "1_000"  # refused by the grammar: the Python reader names it
    data = b"id,v,t\n" + b"".join(_csv_row(row, b"\n") for row in rows)
    reader = CsvPartReader("things", properties, list(properties))
    part = _part(tmp_path / "part.csv", data)
    blocks = []
    with pytest.raises(MalformedResultError) as caught:
        blocks.extend(
            ColumnarPartReader(reader, None, chunk_bytes=512, check_bytes=128).blocks(part, "json")
        )
    assert "things: part 1, line 352, field 'v': '1_000' is not a valid integer" in str(
        caught.value
    )
    kinds = [isinstance(block, pl.DataFrame) for block in blocks]
    assert kinds[0] and not kinds[-1]
    assert kinds == sorted(kinds, reverse=True)  # frames first, then Python records
    records = [r for b in blocks for r in (b if isinstance(b, list) else b.to_dicts())]
    reference = []
    with pytest.raises(MalformedResultError):
        reference.extend(reader.records(part))
    assert records == reference
    assert len(records) == 350


# Against the Python reader, byte for byte ------------------------------------------------------


def _emulator_part(
    folder: Path, entity: str, rows: int = 3000
) -> tuple[CsvPartReader, DownloadedPart]:
    """A part of ``rows`` rows of the emulator's nasty data, and its reader."""
    fields = ENTITIES[entity].field_names
    settings = SandboxSettings(rows={entity: rows}, rows_per_part=rows)
    files = write_export(folder / "export", settings, entity, fields, Filters())
    properties = {
        f.name: property_schema(entity, f.name, f.type, FIELD_TYPES)
        for f in ENTITIES[entity].fields
    }
    reader = CsvPartReader(entity, properties, fields)
    return reader, DownloadedPart(1, files.parts[0], files.sizes[0])


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_emulator_data_gives_the_same_record_lines_on_both_paths(tmp_path, entity):
    reader, part = _emulator_part(tmp_path, entity)
    python, error = _python(part, reader)
    assert error is None
    columnar, error = _columnar(part, reader, chunk_bytes=64 << 10, check_bytes=8 << 10)
    assert error is None
    assert columnar == python
    blocks = ColumnarPartReader(reader, None, chunk_bytes=64 << 10).blocks(part, "json")
    assert all(isinstance(block, pl.DataFrame) for block in blocks), "no hand-over needed"


EDGE_CASES = {
    "bom and lf": b"\xef\xbb\xbfs,i\nx,1\ny,2",
    "crlf, no final line end": b"s,i\r\na,1\r\nb,2",
    "quoted header": b'"s",i\r\na,1\r\n',
    "extra column": b"s,zz,i\r\na,q,1\r\n",
    "header only": b"s,i\r\n",
    "empty": b"",
    "no header": b"a,1\r\nb,2\r\n",
    "missing column": b"s,j\r\na,1\r\n",
    "duplicate column": b"s,i,i\r\na,1,2\r\n",
    "ragged short": b"s,i\r\na,1\r\nb\r\nc,3\r\n",
    "ragged long": b"s,i\r\na,1\r\nb,2,3\r\n",
    "blank line": b"s,i\r\na,1\r\n\r\nc,3\r\n",
    "bare cr": b"s,i\ra,1\r",
    "quote inside field": b's,i\r\na"b,1\r\n',
    "text after quote": b's,i\r\n"a"b,1\r\n',
    "unterminated quote": b's,i\r\n"a,1\r\n',
    "quoted empty": b's,i\r\n"",""\r\n',
    "quoted newline": b's,i\r\n"a\r\nb\nc\rd",1\r\n',
    "nul": b"s,i\r\na\x00,1\r\n",
    "invalid utf-8": b"s,i\r\na,1\r\n\xff,2\r\n",
    "bad value": b"s,i\r\na,1\r\nb,12x\r\n",
    "big integer": b"s,i\r\na,99999999999999999999\r\n",
    "bom-led first row": b"s,i\r\n\xef\xbb\xbfA-1,1\r\nb,2\r\n",
    "bom-led first row after a file bom": b"\xef\xbb\xbfs,i\n\xef\xbb\xbfA-1,1\nb,2\n",
    "bom-only cell first": b"s,i\r\n\xef\xbb\xbf,1\r\nb,2\r\n",
    "bom-led rows after the first": b"s,i\r\na,1\r\n\xef\xbb\xbf,2\r\n\xef\xbb\xbfc,3\r\n",
    "bom-led integer": b"i,s\r\n1,a\r\n\xef\xbb\xbf2,b\r\n",
    "bom-led quoted cell": b's,i\r\na,1\r\n\xef\xbb\xbf"b",2\r\n',
}


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_csv_edge_cases_give_the_same_lines_and_errors_on_both_paths(tmp_path, name):
    properties = {"s": KINDS["s"], "i": KINDS["i"]}
    reader = CsvPartReader("things", properties, list(properties))
    part = _part(tmp_path / "part.csv", EDGE_CASES[name])
    _same(_columnar(part, reader, chunk_bytes=8, check_bytes=4), _python(part, reader))
    _same(_columnar(part, reader), _python(part, reader))


# Hypothesis -------------------------------------------------------------------------------------

DIGITS = st.text("0123456789", min_size=1, max_size=4)
JUNK = st.sampled_from(
    [
        "1_000", " 42", "\u0664\u0662", "+", "-", "nan", "Infinity", "1e400", "0x1F", "١.٥",
        "9223372036854775808", "2024-W01-1", "2024-02-30", "NULL", "true ", "T", "yes",
        "2024-01-05T10:20:30,5Z", "2024-01-05T24:00Z", "2024-01-05T10:20:30+01", "٢٠٢٤-01-01",
    ]
)  # fmt: skip


@st.composite
def datetimes(draw) -> str:
    """Date-times of every form the grammar has (and a few digits out of range)."""
    text = f"{draw(st.integers(1, 9999)):04d}-{draw(st.integers(1, 13)):02d}"
    text += f"-{draw(st.integers(1, 31)):02d}"
    if draw(st.booleans()):
        text += draw(st.sampled_from("Tt ")) + f"{draw(st.integers(0, 24)):02d}"
        text += f":{draw(st.integers(0, 60)):02d}"
        if draw(st.booleans()):
            text += f":{draw(st.integers(0, 60)):02d}"
            if draw(st.booleans()):
                text += "." + draw(st.text("0123456789", min_size=1, max_size=9))
        zone = draw(st.sampled_from(["", "Z", "z", "+", "-"]))
        if zone in "+-" and zone:
            colon = draw(st.sampled_from(["", ":"]))
            zone += f"{draw(st.integers(0, 24)):02d}{colon}{draw(st.integers(0, 60)):02d}"
        text += zone
    return text


@st.composite
def numbers(draw) -> str:
    sign = draw(st.sampled_from(["", "+", "-"]))
    mantissa = draw(
        st.one_of(
            DIGITS,
            st.builds(lambda a, b: f"{a}.{b}", DIGITS, st.text("0123456789", max_size=20)),
            st.builds(lambda b: f".{b}", DIGITS),
        )
    )
    exponent = draw(st.sampled_from(["", "e", "E"]))
    if exponent:
        exponent += draw(st.sampled_from(["", "+", "-"])) + draw(DIGITS)
    return sign + mantissa + exponent


VALUES = {
    "i": st.one_of(
        st.integers(-(2**64), 2**64).map(str),
        st.builds(lambda s, d: s + d, st.sampled_from(["", "+", "-"]), DIGITS),
    ),
    "x": st.one_of(numbers(), st.floats(allow_nan=False).map(repr)),
    "b": st.sampled_from(["true", "false", "TRUE", "False", "tRuE", "1", "0", "2"]),
    "d": st.builds(
        lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}",
        st.integers(0, 9999),
        st.integers(0, 13),
        st.integers(0, 32),
    ),
    "t": datetimes(),
    "s": st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12),
}


@st.composite
def csv_parts(draw) -> tuple[bytes, dict, list[str]]:
    """A CSV part of typed columns in random order, values of every form, quoted or not, with
    CRLF or LF line ends, a BOM or not, rows led by U+FEFF, and sometimes a damaged byte.
    """
    kinds = draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=5))
    names = [f"{kind}{n}" for n, kind in enumerate(kinds)]
    properties = {"id": KINDS["s"], **{n: KINDS[k] for n, k in zip(names, kinds, strict=True)}}
    header = draw(st.permutations(["id", *names]))
    if draw(st.booleans()):
        header.insert(draw(st.integers(0, len(header))), "unwanted")

    def cell(name: str) -> st.SearchStrategy[str]:
        kind = "s" if name in ("id", "unwanted") else name[0]
        return st.one_of(st.just(""), VALUES[kind], JUNK) if draw(st.booleans()) else VALUES[kind]

    rows = draw(st.lists(st.tuples(*(cell(name) for name in header)), max_size=30))
    # Rows led by U+FEFF (data, not a byte order mark): a BOM-only cell where the cell is empty.
    leads = draw(st.lists(st.sampled_from(["", "", "\ufeff"]), min_size=len(rows)))
    rows = [(lead + row[0], *row[1:]) for lead, row in zip(leads, rows, strict=False)]
    out = io.StringIO()
    writer = csv.writer(
        out,
        quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
        lineterminator=draw(st.sampled_from(["\r\n", "\n"])),
    )
    writer.writerow(header)
    writer.writerows(rows)
    data = out.getvalue().encode()
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    if rows and draw(st.booleans()):
        data = data.rstrip(b"\r\n")
    if data and draw(st.integers(0, 5)) == 0:
        at = draw(st.integers(0, len(data) - 1))
        damage = draw(st.sampled_from([b'"', b",", b"\r", b"\n", b"\xff", b"\r\n\r\n", b"x"]))
        data = data[:at] + damage + data[at:]
    return data, properties, list(properties)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(part=csv_parts(), chunk=st.integers(1, 600), check=st.integers(1, 200))
def test_generated_csv_gives_the_same_lines_and_errors_on_both_paths(
    tmp_path_factory, part, chunk, check
):
    data, properties, fields = part
    reader = CsvPartReader("things", properties, fields)
    path = tmp_path_factory.mktemp("gen") / "part.csv"
    downloaded = _part(path, data)
    expected = _python(downloaded, reader)
    _same(_columnar(downloaded, reader, chunk_bytes=chunk, check_bytes=check), expected)
    _same(_columnar(downloaded, reader), expected)


def _oracle(kind: str, text: str) -> object:
    """The grammar of docs/streams.md, written independently of both readers: the typed value, or
    None when the grammar refuses the text.
    """
    if kind == "i":
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            return None
        return int(text) if -(2**63) <= int(text) < 2**63 else None
    if kind == "b":
        return {"true": True, "false": False, "1": True, "0": False}.get(text.lower())
    if kind == "d":
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            return None
        try:
            return datetime.date(int(text[:4]), int(text[5:7]), int(text[8:])).isoformat()
        except ValueError:
            return None
    if kind == "x":
        if not re.fullmatch(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", text):
            return None
        value = float(text)
        return value if value not in (float("inf"), float("-inf")) else None
    match = re.fullmatch(
        r"([0-9]{4})-([0-9]{2})-([0-9]{2})([Tt ]([0-9]{2}):([0-9]{2})(:([0-9]{2})"
        r"(\.([0-9]{1,9}))?)?([Zz]|([+-])([0-9]{2}):?([0-9]{2}))?)?",
        text,
    )
    if match is None:
        return None
    y, mo, d, _, h, mi, _, s, _, frac, _, sign, zh, zm = match.groups()
    try:
        zone = datetime.timedelta(hours=int(zh or 0), minutes=int(zm or 0))
        if int(zm or 0) > 59:
            return None
        tz = datetime.timezone(-zone if sign == "-" else zone)
        moment = datetime.datetime(
            int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0),
            int((frac or "0").ljust(6, "0")[:6]), tzinfo=tz,
        )  # fmt: skip
        return moment.astimezone(datetime.timezone.utc).isoformat()
    except (ValueError, OverflowError):
        return None


def _kind_values(kind: str) -> st.SearchStrategy[tuple[str, str]]:
    """Values of one kind, in the grammar or next to it (junk, lax forms Python would take)."""
    return st.tuples(st.just(kind), st.one_of(VALUES[kind], JUNK))


@given(
    values=st.lists(
        st.one_of(
            st.tuples(st.just("t"), datetimes()),
            st.tuples(st.just("x"), numbers()),
            *(_kind_values(kind) for kind in "ixbdt"),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_generated_grammar_values_are_typed_as_the_grammar_says(tmp_path_factory, values):
    """Independent of both readers: what the grammar accepts is typed to the oracle's value by
    both paths; what it refuses is not typed by the columnar path, and the Python reader refuses
    it naming line and field.
    """
    folder = tmp_path_factory.mktemp("grammar")
    for kind, text in values:
        properties = {"id": KINDS["s"], "v": KINDS[kind]}
        data = b"id,v\r\n" + _csv_row(["1", text])
        expected = _oracle(kind, text)
        reader = CsvPartReader("things", properties, list(properties))
        part = _part(folder / "part.csv", data)
        if expected is None:
            with pytest.raises(MalformedResultError, match="line 2, field 'v'"):
                list(reader.records(part))
            blocks = ColumnarPartReader(reader, None).blocks(part, "json")
            with pytest.raises(MalformedResultError, match="line 2, field 'v'"):
                for block in blocks:
                    assert isinstance(block, list), f"{text!r} must not be typed by polars"
            continue
        assert list(reader.records(part)) == [{"id": "1", "v": expected}], text
        (block,) = _blocks(folder, data, properties)
        assert isinstance(block, pl.DataFrame), text
        value = block.item(0, "v")
        assert value == expected, text
        assert repr(value) == repr(expected), text


# Rows led by U+FEFF: data, not a byte order mark ------------------------------------------------

BOM_LED = [["\ufeffA-1", "1"], ["\ufeff", "2"], ["c", "3"], ["\ufeff", ""], ["\ufeffe", "5"]]


@pytest.mark.parametrize("file_bom", [b"", b"\xef\xbb\xbf"], ids=["no file bom", "file bom"])
@pytest.mark.parametrize("chunk_bytes", [1, 1 << 20], ids=["a chunk per row", "one chunk"])
def test_rows_led_by_u_feff_keep_it_on_every_path(tmp_path, file_bom, chunk_bytes):
    """polars takes U+FEFF at the start of its input for a byte order mark: at the start of
    each chunk, or of a part's first data row in the one query. The Python reader strips only
    the file's own BOM, and every path gives its values (typed by polars, not handed over).
    """
    properties = {"s": KINDS["s"], "i": KINDS["i"]}
    data = file_bom + b"s,i\r\n" + b"".join(_csv_row(row) for row in BOM_LED)
    reader = CsvPartReader("things", properties, list(properties))
    part = _part(tmp_path / "part.csv", data)
    expected = list(reader.records(part))
    assert [r["s"] for r in expected] == [row[0] for row in BOM_LED]

    def columnar(target):
        return ColumnarPartReader(reader, None, chunk_bytes=chunk_bytes).blocks(part, target)

    blocks = list(columnar("json"))
    assert blocks and all(isinstance(block, pl.DataFrame) for block in blocks)
    assert _columnar(part, reader, chunk_bytes=chunk_bytes) == _python(part, reader)
    lines = io.BytesIO()
    write_json_lines(columnar("json"), lines, None)
    assert lines.getvalue() == b"".join(_json_line(r) for r in expected)
    with (tmp_path / "chunked.parquet").open("wb") as file:
        write_parquet(columnar("parquet"), file, parquet_schema(reader), "uncompressed", None)
    assert pl.read_parquet(tmp_path / "chunked.parquet").to_dicts() == expected
    at_once = _at_once(part, reader)
    assert at_once is not None and at_once[0] == expected
    *_, path = _parquet_batch(tmp_path, data, properties)
    assert pl.read_parquet(path).to_dicts() == expected


# Outputs -----------------------------------------------------------------------------------------


def test_jsonl_and_parquet_outputs_hold_the_record_values(tmp_path):
    reader, part = _emulator_part(tmp_path, "accounts", rows=2000)
    fields = reader.fields
    records = list(reader.records(part))
    key = "last_modified_date"
    greatest = max(r[key] for r in records)

    out = io.BytesIO()
    summary = write_json_lines(
        ColumnarPartReader(reader, key, chunk_bytes=50_000).blocks(part, "json"), out, key
    )
    assert (summary.rows, summary.max_replication_value) == (2000, greatest)
    assert out.getvalue() == b"".join(_json_line(r) for r in records)

    with (tmp_path / "part.parquet").open("wb") as file:
        summary = write_parquet(
            ColumnarPartReader(reader, key, chunk_bytes=50_000).blocks(part, "parquet"),
            file,
            parquet_schema(reader),
            "uncompressed",
            key,
        )
    assert (summary.rows, summary.max_replication_value) == (2000, greatest)
    table = pl.read_parquet(tmp_path / "part.parquet")
    assert table.columns == fields
    assert table.schema[key] == pl.Datetime("us", "UTC")
    as_json = [
        {
            k: v.isoformat() if isinstance(v, (datetime.date, datetime.datetime)) else v
            for k, v in row.items()
        }
        for row in table.iter_rows(named=True)
    ]
    assert as_json == [{k: r[k] for k in fields} for r in records]


def _json_line(record) -> bytes:
    import orjson

    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def test_record_lines_are_the_writers_across_encoding_pieces(tmp_path):
    """A chunk is encoded ENCODE_ROWS records at a time, each line feed of polars' JSON lines
    turned into the end of one message and the start of the next: values holding line feeds,
    quotes and non-ASCII text, on both sides of each piece's boundary, give the writer's bytes.
    """
    properties = {"id": KINDS["s"], "s": KINDS["s"], "t": KINDS["t"], "x": KINDS["x"]}
    texts = ["a\nb", "c\r\nd", 'say "hi"', "Zürich \u2028 \U0001f600", "", "\\n", "}\n{"]
    rows = [
        [str(n), texts[n % len(texts)], f"2024-01-05 10:20:{n % 60:02d}.5", f"{n}.25"]
        for n in range(3 * ENCODE_ROWS + 7)
    ]
    data = b"id,s,t,x\r\n" + b"".join(_csv_row(row) for row in rows)
    reader = CsvPartReader("things", properties, list(properties))
    part = _part(tmp_path / "part.csv", data)
    python = _python(part, reader)
    assert python[1] is None
    columnar = _columnar(part, reader, "t")
    assert columnar == python
    out = io.BytesIO()
    write_json_lines(ColumnarPartReader(reader, "t").blocks(part, "json"), out, "t")
    assert out.getvalue() == b"".join(_json_line(r) for r in reader.records(part))


def test_a_part_left_half_read_does_not_hold_up_the_next(tmp_path):
    """The consumer may stop in the middle of a part (an error in the output): the chunks
    still queued for the worker threads are dropped, and the next part is typed as usual.
    """
    properties = {"id": KINDS["s"], "v": KINDS["i"]}
    data = b"id,v\n" + b"".join(_csv_row([f"r{n}", str(n)], b"\n") for n in range(2000))
    reader = CsvPartReader("things", properties, list(properties))
    part = _part(tmp_path / "part.csv", data)
    columnar = ColumnarPartReader(reader, None, chunk_bytes=256)
    blocks = columnar.blocks(part, "json")
    first = next(blocks)
    assert isinstance(first, pl.DataFrame)
    blocks.close()
    again = list(columnar.blocks(part, "json"))
    assert all(isinstance(block, pl.DataFrame) for block in again)
    records = [r for block in again for r in block.to_dicts()]
    assert records == list(reader.records(part))


def test_record_messages_summary_counts_rows_and_the_greatest_key(tmp_path):
    properties = {"id": KINDS["s"], "t": KINDS["t"]}
    data = (
        b"id,t\r\n1,2024-01-05T10:00:00+05:00\r\n2,2024-01-05T04:59:59.5Z\r\n3,\r\n"
        b"4,2024-01-05 04:59:59\r\n"
    )
    reader = CsvPartReader("things", properties, list(properties))
    part = _part(tmp_path / "p.csv", data)
    summary = write_part_record_messages(part, reader, Collected(), TIME, "t")
    assert summary.rows == 4
    assert summary.max_replication_value == "2024-01-05T05:00:00+00:00"


def _csv_row(cells: list[str], end: bytes = b"\r\n") -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator=end.decode()).writerow(cells)
    return out.getvalue().encode()


# BATCH parquet types exactly like RECORD mode ---------------------------------------------------


def _parquet_batch(tmp_path, data: bytes, properties):
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, StorageTarget

    from tap_demandbase.records.batches import batch_writer

    reader = CsvPartReader("things", properties, list(properties))
    part = _part(tmp_path / "part.csv", data, number=2)
    storage = StorageTarget(root=f"file://{tmp_path}/batches")
    encoding = BaseBatchFileEncoding(format="parquet", compression="none")
    write, _ = batch_writer(encoding, reader, None)
    batch = write(part, storage, "things.parquet")
    return reader, part, batch, tmp_path / "batches" / "things.parquet"


def test_parquet_batch_takes_every_value_record_mode_takes(tmp_path):
    import pyarrow.parquet as pq  # an independent reader of the file

    properties = {"id": KINDS["s"], "n": KINDS["i"], "t": KINDS["t"], "d": KINDS["d"]}
    data = (
        b"id,n,t,d\r\n"
        b"1,+42,2024-01-05,2024-02-29\r\n"
        b"2,-0,2024-01-05T10:20:30.123456789+01:00,\r\n"
        b"3,007,2024-01-05 10:20,0001-01-01\r\n"
        b"4,,2024-01-05t10:20:30z,9999-12-31\r\n"
    )
    reader, part, batch, path = _parquet_batch(tmp_path, data, properties)
    records = list(reader.records(part))
    assert batch.rows == 4
    rows = pq.read_table(path).to_pylist()
    as_json = [
        {
            "id": row["id"],
            "n": row["n"],
            "t": row["t"].isoformat() if row["t"] else None,
            "d": row["d"].isoformat() if row["d"] else None,
        }
        for row in rows
    ]
    assert as_json == records
    assert records[0] == {"id": "1", "n": 42, "t": "2024-01-05T00:00:00+00:00", "d": "2024-02-29"}
    assert records[1]["t"] == "2024-01-05T09:20:30.123456+00:00"


def test_parquet_batch_refuses_an_integer_beyond_64_bits_in_one_line(tmp_path):
    properties = {"id": KINDS["s"], "n": KINDS["i"]}
    data = b"id,n\r\n1,5\r\n2,9223372036854775808\r\n"
    with pytest.raises(MalformedResultError) as caught:
        _parquet_batch(tmp_path, data, properties)
    message = str(caught.value)
    assert "\n" not in message
    # Once the Python reader refuses the value itself, its message names the line too.
    assert "things: part 2" in message
    assert "field 'n'" in message
    assert "64-bit range" in message


def test_parquet_batch_error_names_stream_part_line_and_field(tmp_path):
    properties = {"id": KINDS["s"], "b": KINDS["b"]}
    data = b"id,b\r\n" + b"".join(f"{n},true\r\n".encode() for n in range(5000)) + b"x,maybe\r\n"
    with pytest.raises(MalformedResultError) as caught:
        _parquet_batch(tmp_path, data, properties)
    assert "things: part 2, line 5002, field 'b': 'maybe' is not a valid boolean" in str(
        caught.value
    )


# BATCH parquet in one query (parquet_at_once) ----------------------------------------------------


def _at_once(part, reader, key=None):
    """The part's records from ``parquet_at_once`` (as the Python reader writes them) and its
    summary; None when it does not vouch for the part.
    """
    out = io.BytesIO()
    names = list(parquet_schema(reader))
    summary = ColumnarPartReader(reader, key).parquet_at_once(part, out, names, "uncompressed")
    if summary is None:
        return None
    table = pl.read_parquet(out.getvalue())
    assert table.columns == names
    return [as_json(row) for row in table.iter_rows(named=True)], summary


def _greatest_text(records, key):
    return max((r[key] for r in records if r[key] is not None), default=None)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(part=csv_parts())
def test_parquet_at_once_vouches_only_for_what_the_python_reader_reads_the_same(
    tmp_path_factory, part
):
    """Generated CSV (junk values, quoting, damage): the one-query parquet either holds exactly
    the Python reader's records, or declines; it never declines a part the chunked path types
    whole.
    """
    data, properties, fields = part
    reader = CsvPartReader("things", properties, fields)
    downloaded = _part(tmp_path_factory.mktemp("once") / "part.csv", data)
    key = next((name for name in fields if name.startswith("t")), None)
    result = _at_once(downloaded, reader, key)
    blocks = ColumnarPartReader(reader, key).blocks(downloaded, "parquet")
    try:
        chunked_types_all = all(isinstance(block, pl.DataFrame) for block in blocks)
    except (MalformedResultError, OverflowError):
        chunked_types_all = False
    expected_rows = list(reader.records(downloaded)) if chunked_types_all else []
    if expected_rows:
        assert result is not None, "typed chunk by chunk, so typed in one query too"
    if result is not None:
        records, summary = result
        expected = list(reader.records(downloaded))
        assert records == expected
        assert summary.rows == len(expected)
        assert summary.max_replication_value == (_greatest_text(expected, key) if key else None)


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_parquet_at_once_holds_the_emulator_records(tmp_path, entity):
    reader, part = _emulator_part(tmp_path, entity)
    key = ENTITIES[entity].fields[0].name
    result = _at_once(part, reader, key)
    assert result is not None, "the emulator's data is typed in one query"
    records, summary = result
    expected = list(reader.records(part))
    assert records == expected
    assert (summary.rows, summary.max_replication_value) == (3000, _greatest_text(expected, key))


def test_parquet_at_once_keeps_multiline_values_across_polars_own_splits(tmp_path):
    """polars splits a large file between its threads at line feeds it guesses are row ends: a
    part of about 8 MB whose quoted values hold line feeds, CRs, commas and quotes everywhere
    still gives the Python reader's records, in order.
    """
    properties = {"id": KINDS["s"], "s": KINDS["s"], "t": KINDS["t"], "n": KINDS["i"]}
    texts = ['a\nb,"c"\n', "\r\n", "x\n\ny", ',\n"', "plain", "é\n", '"\n2024,1\n']
    rows = (
        [str(n), texts[n % len(texts)] * (1 + n % 5), f"2024-01-05T10:{n % 60:02d}:00Z", str(n)]
        for n in range(160_000)
    )
    data = b"id,s,t,n\r\n" + b"".join(_csv_row(row) for row in rows)
    assert 6 << 20 < len(data) < 12 << 20
    reader = CsvPartReader("things", properties, list(properties))
    part = _part(tmp_path / "part.csv", data)
    result = _at_once(part, reader, "t")
    assert result is not None
    records, summary = result
    assert records == list(reader.records(part))
    assert summary.rows == 160_000


def test_parquet_batch_of_a_part_above_the_one_query_size_is_typed_chunk_by_chunk(
    tmp_path, monkeypatch
):
    """A part larger than AT_ONCE_BYTES (whose one query would need memory in proportion) is
    written from the chunked path, with the same rows; a smaller one in one query.
    """
    from tap_demandbase.records import batches

    properties = {"id": KINDS["s"], "t": KINDS["t"], "n": KINDS["i"]}
    data = b"id,t,n\r\n" + b"".join(
        _csv_row([str(n), f"2024-01-05 10:20:{n % 60:02d}.25+01:00", str(n)]) for n in range(3000)
    )
    used = []
    original = ColumnarPartReader.parquet_at_once

    def recording(self, *args):
        used.append("at once")
        return original(self, *args)

    monkeypatch.setattr(ColumnarPartReader, "parquet_at_once", recording)
    outputs = []
    for limit in (len(data), len(data) - 1):
        monkeypatch.setattr(batches, "AT_ONCE_BYTES", limit)
        folder = tmp_path / str(limit)
        folder.mkdir()
        reader, part, batch, path = _parquet_batch(folder, data, properties)
        outputs.append([as_json(row) for row in pl.read_parquet(path).iter_rows(named=True)])
        assert batch.rows == 3000
    assert used == ["at once"]
    assert outputs[0] == outputs[1] == list(reader.records(part))


def test_parquet_at_once_declines_a_value_that_does_not_type_anywhere_in_the_part(tmp_path):
    properties = {"id": KINDS["s"], "b": KINDS["b"]}
    good = b"".join(f"{n},true\r\n".encode() for n in range(20_000))
    for data in (b"id,b\r\nx,maybe\r\n" + good, b"id,b\r\n" + good + b"x,maybe\r\n"):
        reader = CsvPartReader("things", properties, list(properties))
        assert _at_once(_part(tmp_path / "part.csv", data), reader, None) is None


#: The edge cases the one-query parquet must take itself (the others it declines, or the
#: Python reader refuses them): if it declined everything, the cases would still agree.
AT_ONCE_TAKES = frozenset(
    {
        "bom and lf",
        "crlf, no final line end",
        "extra column",
        "header only",
        "quoted empty",
        "quoted newline",
        "bom-led first row",
        "bom-led first row after a file bom",
        "bom-only cell first",
        "bom-led rows after the first",
    }
)


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_parquet_at_once_declines_or_matches_each_csv_edge_case(tmp_path, name):
    properties = {"s": KINDS["s"], "i": KINDS["i"]}
    reader = CsvPartReader("things", properties, list(properties))
    part = _part(tmp_path / "part.csv", EDGE_CASES[name])
    _, error = _python(part, reader)
    result = _at_once(part, reader)
    if error is not None:
        assert result is None
    elif result is not None:
        assert result[0] == list(reader.records(part))
    # The one query vouches for every ordinary part: an edge case it must take is not declined.
    assert (result is not None) == (name in AT_ONCE_TAKES), name
