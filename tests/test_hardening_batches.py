"""BATCH parquet types exactly like RECORD mode ("+42", date-only and nanosecond date-times
accepted, the forms RECORD mode refuses refused), and names line and field when it cannot.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from singer_sdk.helpers._batch import BaseBatchFileEncoding, StorageTarget

from tap_demandbase.errors import MalformedResultError
from tap_demandbase.records.batches import batch_writer
from tap_demandbase.records.reader import CsvPartReader
from tests.support.records import as_json
from tests.test_records import FIELDS, PROPERTIES, _part

pytestmark = pytest.mark.unit

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
