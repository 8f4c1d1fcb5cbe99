"""Wrong data the CSV record path refuses or reports exactly: a header that names a column
twice, forms Python's lax parsers accept ("1_000", " 42", "٤٢", ISO week dates), a malformed row
spanning lines (reported at its first line), and replication_keys over an older catalog's.
"""

from __future__ import annotations

import pytest

from tap_demandbase.errors import MalformedResultError
from tap_demandbase.records.kinds import to_date, to_datetime, to_integer, to_number
from tests.support.records import batch_rows
from tests.support.tap import discover, run_tap, select, tap_config
from tests.test_records import _read


@pytest.mark.unit
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


@pytest.mark.unit
@pytest.mark.parametrize(
    "text",
    ["1_000", " 42", "42 ", "٤٢", "1.0", "1e3", "+", "-", "0x10", "²", "9223372036854775808"],
)
def test_integers_refused(text):
    with pytest.raises(ValueError):
        to_integer(text)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1.0), ("-0.25", -0.25), ("+1.5", 1.5), ("1.", 1.0), (".5", 0.5), ("1e3", 1000.0)],
)
def test_numbers_accepted(text, value):
    assert to_number(text) == value


@pytest.mark.unit
@pytest.mark.parametrize(
    "text", ["1_000.5", " 1.5", "1.5 ", "٤٢", "nan", "inf", "-Infinity", "1e999", "1,5", "e3"]
)
def test_numbers_refused(text):
    with pytest.raises(ValueError):
        to_number(text)


@pytest.mark.unit
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


@pytest.mark.unit
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


@pytest.mark.unit
@pytest.mark.parametrize("text", ["2024-1-05", "2024-01-05T00:00:00", "٢٠٢٤-01-05", " 2024-01-05"])
def test_dates_refused(text):
    with pytest.raises(ValueError):
        to_date(text)


@pytest.mark.unit
def test_duplicated_header_column_is_malformed(tmp_path):
    with pytest.raises(MalformedResultError) as caught:
        _read(tmp_path, b"id,n,n\r\n1,2,3\r\n", fields=["id", "n"])
    assert "things: part 1, line 1: the header names column(s) 'n' twice" in str(caught.value)


@pytest.mark.unit
def test_integer_beyond_64_bits_names_the_rule(tmp_path):
    with pytest.raises(MalformedResultError) as caught:
        _read(tmp_path, b"id,n\r\n1,99999999999999999999\r\n", fields=["id", "n"])
    assert "line 2, field 'n'" in str(caught.value)
    assert "out of the signed 64-bit range" in str(caught.value)


@pytest.mark.unit
def test_row_spanning_lines_is_reported_where_it_starts(tmp_path):
    data = b'id,s,n\r\n1,a,2\r\n2,"multi\r\nline\r\nvalue",x\r\n'
    with pytest.raises(MalformedResultError) as caught:
        _read(tmp_path, data, fields=["id", "s", "n"])
    assert "things: part 1, line 3, field 'n'" in str(caught.value)
    data = b'id,s\r\n1,a\r\n2,"multi\r\nline",extra\r\n'
    with pytest.raises(MalformedResultError) as caught:
        _read(tmp_path, data, fields=["id", "s"])
    assert "things: part 1, line 3: 3 columns where the header has 2" in str(caught.value)


# The same promises end to end: the real CLI against the emulator --------------------------


@pytest.mark.parametrize(
    ("defect", "where"),
    [
        ("duplicate_header", "opportunities: part 1, line 1: the header names column(s)"),
        ("lax_integer", "opportunities: part 1, line 3, field '"),
        ("week_date", "opportunities: part 1, line 3, field '"),
        ("ragged_multiline", "opportunities: part 1, line 4: "),
    ],
)
def test_cli_refuses_lax_or_ambiguous_parts(sandbox, tmp_path, defect, where):
    sandbox.settings.malformed = {"opportunities": defect}
    catalog = select(discover(tmp_path, tap_config(sandbox)), {"opportunities": None})
    run = run_tap(tmp_path, tap_config(sandbox), catalog=catalog)
    assert run.returncode == 1
    # Rows before the bad one may be out, but the part is not counted done nor bookmarked.
    bookmark = run.last_state["bookmarks"]["opportunities"]
    assert "replication_key_value" not in bookmark
    assert bookmark["export_job"]["parts_done"] == {}
    lines = [line for line in run.error_lines if where in line]
    assert lines, run.stderr
    if defect in {"lax_integer", "week_date"}:
        bad = "1_000" if defect == "lax_integer" else "2024-W01-1T10:00:00Z"
        assert f"'{bad}' is not a valid" in lines[0]


def test_replication_keys_setting_beats_an_older_catalog(sandbox, tmp_path):
    catalog = select(discover(tmp_path, tap_config(sandbox)), {"accounts": ["id"]})
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == "accounts")
    assert entry["replication_key"] == "last_modified_date"
    config = tap_config(sandbox, replication_keys={"accounts": "created_date"})
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert "replication_keys.accounts='created_date' overrides the catalog's" in run.stderr
    job = next(r for r in sandbox.requests() if r.method == "POST")
    assert job.body["filters"]["date_range"]["field"] == "created_date"
    bookmark = run.last_state["bookmarks"]["accounts"]
    assert bookmark["replication_key"] == "created_date"


@pytest.mark.parametrize("output", ["records", "jsonl", "parquet"])
def test_cli_keeps_u_feff_leading_a_data_row(sandbox, tmp_path, output):
    """A row whose first cell starts with U+FEFF (or is only U+FEFF) is data: every output
    of the columnar path keeps it, as the Python reader does; only the file's BOM goes.
    """
    sandbox.settings.bom_led_rows = True
    sandbox.settings.column_order = "sorted"  # description first: text, sometimes empty
    overrides = {}
    if output != "records":
        encoding = {"format": output, "compression": "none"}
        overrides["batch_config"] = {
            "encoding": encoding,
            "storage": {"root": f"file://{tmp_path}/batches"},
        }
    config = tap_config(sandbox, **overrides)
    fields = ["description", "id", "last_modified_date"]
    catalog = select(discover(tmp_path, config), {"accounts": fields})
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    emitted = run.records["accounts"] if output == "records" else batch_rows(run, "accounts")
    plain = {row["id"]: row["description"] for row in sandbox.expected_rows("accounts")}
    assert len(emitted) == len(plain) == 120
    for record in emitted:
        assert record["description"] == "\ufeff" + (plain[record["id"]] or ""), record["id"]
    assert any(record["description"] == "\ufeff" for record in emitted)
