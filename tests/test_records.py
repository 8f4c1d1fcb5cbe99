"""CSV parts → typed records, on real files written here byte by byte."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tap_demandbase.engine.results import DownloadedPart
from tap_demandbase.errors import MalformedResultError
from tap_demandbase.records.kinds import Kind
from tap_demandbase.records.reader import CsvPartReader

pytestmark = pytest.mark.unit

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


#: Text near every kind's grammar: its digits, signs, separators, letters and look-alikes.
_NEAR_GRAMMAR = st.text(alphabet="0123456789+-.:eETtZz rRuUfFaAlLsS_\u0661\u00b2", max_size=26)


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
