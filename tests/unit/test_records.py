"""CSV parts → typed records, on real files written here byte by byte: the value grammar, the
forms Python's lax parsers accept and the tap refuses ("1_000", " 42", "٤٢", ISO week dates),
malformed rows reported where they start, and BATCH parquet typing exactly like RECORD mode.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from singer_sdk.helpers._batch import BaseBatchFileEncoding, StorageTarget

from tap_demandbase.engine.results import DownloadedPart
from tap_demandbase.errors import MalformedResultError
from tap_demandbase.records.batches import batch_writer
from tap_demandbase.records.kinds import Kind, to_date, to_datetime, to_integer, to_number
from tap_demandbase.records.reader import CsvPartReader
from tests.support.records import as_json

PROPERTIES = {
    "id": {"type": ["string", "null"]},
    "n": {"type": ["integer", "null"]},
    "x": {"type": ["number", "null"]},
    "ok": {"type": ["boolean", "null"]},
    "d": {"type": ["string", "null"], "format": "date"},
    "ts": {"type": ["string", "null"], "format": "date-time"},
    "s": {"type": ["string", "null"]},
}


FIELDS = list(PROPERTIES)


def _part(tmp_path: Path, data: bytes, number: int = 1) -> DownloadedPart:
    path = tmp_path / f"part-{number}.csv"
    path.write_bytes(data)
    return DownloadedPart(number=number, path=path, size=len(data))


def _read(tmp_path: Path, data: bytes, fields=FIELDS):
    return list(CsvPartReader("things", PROPERTIES, fields).records(_part(tmp_path, data)))


#: Text near every kind's grammar: its digits, signs, separators, letters and look-alikes.
_NEAR_GRAMMAR = st.text(alphabet="0123456789+-.:eETtZz rRuUfFaAlLsS_\u0661\u00b2", max_size=26)


TRICKY = (
    "id,n,x,ok,d,ts,s\r\n"
    "1,+42,+1.5,TRUE,2024-02-29,2024-01-05,007\r\n"
    "2,-9223372036854775808,.5,0,2024-01-01,2024-01-05T10:20:30.123456789Z, x \r\n"
    "3,9223372036854775807,1e3,False,,2024-01-05t10:20:30z,NULL\r\n"
    "4,,,,,2024-01-05 10:20,\r\n"
    "5,0,-0.0,1,2024-12-31,2024-01-05T02:20:30-0800,\r\n"
)


PLAIN = (
    "id,n,x,ok,d,ts,s\r\n"
    "1,42,1.5,true,2024-02-29,2024-01-05T10:20:30Z,a\r\n"
    "2,-7,0.25,0,2024-01-01,2024-01-05T11:20:30+01:00,b\r\n"
)


def _write_parquet(tmp_path, data: bytes):
    part = _part(tmp_path, data)
    reader = CsvPartReader("things", PROPERTIES, FIELDS)
    write, _ = batch_writer(
        BaseBatchFileEncoding(format="parquet", compression="none"), reader, "ts"
    )
    storage = StorageTarget(root=f"file://{tmp_path}")
    batch = write(part, storage, "batch.parquet")
    rows = [as_json(row) for row in pq.read_table(tmp_path / "batch.parquet").to_pylist()]
    return batch, rows, list(reader.records(part))


def test_types_quoting_bom_and_header_order(tmp_path):
    data = (
        "\ufeffs,ts,d,ok,x,n,id\r\n"
        '"a, ""b""\r\nc",2024-01-05T11:20:30+01:00,2024-01-05,TRUE,1234.50,-7,007\r\n'
        "NULL,2024-01-05 10:20:30,,0,1e3,1099511627776,008\r\n"
        " true ,2024-01-05T10:20:30.123Z,2024-02-29,False,-0.25,0,009\r\n"
        ",,,,,,010\r\n"
    ).encode()
    records = _read(tmp_path, data)
    assert records == [
        {
            "s": 'a, "b"\r\nc',
            "ts": "2024-01-05T10:20:30+00:00",
            "d": "2024-01-05",
            "ok": True,
            "x": 1234.5,
            "n": -7,
            "id": "007",
        },
        {
            "s": "NULL",
            "ts": "2024-01-05T10:20:30+00:00",
            "d": None,
            "ok": False,
            "x": 1000.0,
            "n": 1099511627776,
            "id": "008",
        },
        {
            "s": " true ",
            "ts": "2024-01-05T10:20:30.123000+00:00",
            "d": "2024-02-29",
            "ok": False,
            "x": -0.25,
            "n": 0,
            "id": "009",
        },
        dict.fromkeys(FIELDS, None) | {"id": "010"},
    ]
    assert type(records[0]["n"]) is int
    assert type(records[1]["x"]) is float


def test_only_requested_columns_are_read(tmp_path):
    records = _read(tmp_path, b"id,n,extra\r\n1,2,zzz\r\n", fields=["id", "n"])
    assert records == [{"id": "1", "n": 2}]


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"id,n\r\n1,2\r\n2,2,3\r\n", "things: part 1, line 3: 3 columns where the header has 2"),
        (b"id,n\r\n1,2\r\n2\r\n", "things: part 1, line 3: 1 columns"),
        (b"id,n\r\n1,12x\r\n", "things: part 1, line 2, field 'n': '12x' is not a valid integer"),
        (b"id,n\r\n1,1.0\r\n", "line 2, field 'n': '1.0' is not a valid integer"),
        (b"id,x\r\n1,nan\r\n", "field 'x': 'nan' is not a valid number"),
        (b"id,ok\r\n1,maybe\r\n", "field 'ok': 'maybe' is not a valid boolean"),
        (b"id,ok\r\n1,yes\r\n", "field 'ok': 'yes' is not a valid boolean"),
        (b"id,d\r\n1,2024-13-01\r\n", "field 'd': '2024-13-01' is not a valid date"),
        (b"id,d\r\n1,20240101\r\n", "field 'd': '20240101' is not a valid date"),
        (b"id,ts\r\n1,2024-13-45T99:00:00Z\r\n", "line 2, field 'ts'"),
        (b"id,s\r\n1,ok\r\n2,\xff\xfe\r\n", "things: part 1, line 3: invalid UTF-8"),
        (b"1,2\r\n3,4\r\n", "things: part 1, line 1: no header row"),
        (b"id,s\r\n1,ok\r\n", "the header lacks requested column(s) n"),
        (b"", "things: part 1, line 1: the part is empty"),
        (b'id,s\r\n1,"unterminated\r\n', "things: part 1, line"),
    ],
)
def test_malformed_parts_name_stream_part_line_and_field(tmp_path, data, where):
    header = data.split(b"\r\n", 1)[0].decode("latin-1").split(",")
    fields = [name for name in header if name in PROPERTIES] or ["id", "n"]
    if b"lacks" in where.encode():
        fields = ["id", "s", "n"]
    with pytest.raises(MalformedResultError) as caught:
        _read(tmp_path, data, fields=fields)
    message = str(caught.value)
    assert where in message
    assert "\n" not in message


@pytest.mark.parametrize("kind", [kind for kind in Kind if kind.grammar], ids=str)
@given(text=_NEAR_GRAMMAR)
def test_a_converter_accepts_only_text_its_kinds_grammar_matches(kind, text):
    assert kind.converter is not None and kind.grammar is not None
    try:
        kind.converter(text)
    except (ValueError, KeyError, OverflowError, IndexError):
        return
    assert re.fullmatch(kind.grammar, text), (kind, text)


@pytest.mark.parametrize("text", ["true", "TRUE", "fAlSe", "1", "0", "yes", "t", "2", "falſe"])
def test_the_boolean_grammar_is_what_the_converter_reads(text):
    assert Kind.BOOLEAN.converter is not None and Kind.BOOLEAN.grammar is not None
    matches = re.fullmatch(Kind.BOOLEAN.grammar, text) is not None
    try:
        Kind.BOOLEAN.converter(text)
    except KeyError:
        assert not matches
    else:
        assert matches


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("-7", -7),
        ("+42", 42),
        ("007", 7),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
    ],
)
def test_integers_accepted(text, value):
    assert to_integer(text) == value


@pytest.mark.parametrize(
    "text",
    ["1_000", " 42", "42 ", "٤٢", "1.0", "1e3", "+", "-", "0x10", "²", "9223372036854775808"],
)
def test_integers_refused(text):
    with pytest.raises(ValueError):
        to_integer(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1.0), ("-0.25", -0.25), ("+1.5", 1.5), ("1.", 1.0), (".5", 0.5), ("1e3", 1000.0)],
)
def test_numbers_accepted(text, value):
    assert to_number(text) == value


@pytest.mark.parametrize(
    "text", ["1_000.5", " 1.5", "1.5 ", "٤٢", "nan", "inf", "-Infinity", "1e999", "1,5", "e3"]
)
def test_numbers_refused(text):
    with pytest.raises(ValueError):
        to_number(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2024-01-05T10:20:30Z", "2024-01-05T10:20:30+00:00"),
        ("2024-01-05T11:20:30+01:00", "2024-01-05T10:20:30+00:00"),
        ("2024-01-05T02:20:30-0800", "2024-01-05T10:20:30+00:00"),
        ("2024-01-05 10:20:30", "2024-01-05T10:20:30+00:00"),
        ("2024-01-05t10:20:30z", "2024-01-05T10:20:30+00:00"),
        ("2024-01-05T10:20", "2024-01-05T10:20:00+00:00"),
        ("2024-01-05", "2024-01-05T00:00:00+00:00"),
        ("2024-01-05T10:20:30.123Z", "2024-01-05T10:20:30.123000+00:00"),
        ("2024-01-05T10:20:30.123456789Z", "2024-01-05T10:20:30.123456+00:00"),
        ("2024-01-05T10:20:30.000000Z", "2024-01-05T10:20:30+00:00"),
    ],
)
def test_datetimes_normalised_to_rfc3339_utc(text, value):
    assert to_datetime(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "2024-W01-1T10:00:00Z",
        "2024-W01-1",
        "2024-005T10:00:00Z",
        "20240105T102030Z",
        "2024-01-05T10",
        "2024-01-05T10:20:30.Z",
        "2024-01-05T10:20:30.1234567890Z",
        "2024-01-05T10:20:30+01",
        "2024-01-05T10:20:30+01:99",
        "2024-01-05T10:20:30+24:00",
        "2024-13-45T99:00:00Z",
        " 2024-01-05T10:20:30Z",
        "2024-01-05T10:20:30Z ",
        "٢٠٢٤-01-05T10:20:30Z",
        "0000-01-01T00:00:00Z",
    ],
)
def test_datetimes_refused(text):
    with pytest.raises(ValueError):
        to_datetime(text)


@pytest.mark.parametrize("text", ["2024-1-05", "2024-01-05T00:00:00", "٢٠٢٤-01-05", " 2024-01-05"])
def test_dates_refused(text):
    with pytest.raises(ValueError):
        to_date(text)


def test_duplicated_header_column_is_malformed(tmp_path):
    with pytest.raises(MalformedResultError) as caught:
        _read(tmp_path, b"id,n,n\r\n1,2,3\r\n", fields=["id", "n"])
    assert "things: part 1, line 1: the header names column(s) 'n' twice" in str(caught.value)


def test_integer_beyond_64_bits_names_the_rule(tmp_path):
    with pytest.raises(MalformedResultError) as caught:
        _read(tmp_path, b"id,n\r\n1,99999999999999999999\r\n", fields=["id", "n"])
    assert "line 2, field 'n'" in str(caught.value)
    assert "out of the signed 64-bit range" in str(caught.value)


def test_row_spanning_lines_is_reported_where_it_starts(tmp_path):
    data = b'id,s,n\r\n1,a,2\r\n2,"multi\r\nline\r\nvalue",x\r\n'
    with pytest.raises(MalformedResultError) as caught:
        _read(tmp_path, data, fields=["id", "s", "n"])
    assert "things: part 1, line 3, field 'n'" in str(caught.value)
    data = b'id,s\r\n1,a\r\n2,"multi\r\nline",extra\r\n'
    with pytest.raises(MalformedResultError) as caught:
        _read(tmp_path, data, fields=["id", "s"])
    assert "things: part 1, line 3: 3 columns where the header has 2" in str(caught.value)


@pytest.mark.parametrize("data", [TRICKY, PLAIN], ids=["tricky", "plain"])
def test_parquet_rows_equal_record_rows(tmp_path, data):
    batch, rows, records = _write_parquet(tmp_path, data.encode())
    assert rows == records
    assert batch.rows == len(records)
    assert batch.max_replication_value == max(r["ts"] for r in records if r["ts"])


@pytest.mark.parametrize(
    ("value", "column"),
    [
        ("1_000", "n"),
        (" 42", "n"),
        ("9223372036854775808", "n"),
        ("1e999", "x"),
        ("2024-W01-1T10:00:00Z", "ts"),
        ("2024-02-30", "d"),
        ("yes", "ok"),
    ],
)
def test_parquet_refuses_what_record_mode_refuses_naming_line_and_field(tmp_path, value, column):
    header = "id,n,x,ok,d,ts,s"
    cells = {"id": "1", "n": "1", "x": "1", "ok": "1", "d": "", "ts": "", "s": ""}
    good = ",".join(cells.values())
    cells[column] = value
    data = f"{header}\r\n{good}\r\n{','.join(cells.values())}\r\n".encode()
    with pytest.raises(MalformedResultError) as caught:
        _write_parquet(tmp_path, data)
    assert f"things: part 1, line 3, field '{column}'" in str(caught.value)
