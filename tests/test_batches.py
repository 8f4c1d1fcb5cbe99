"""BATCH mode: one batch file per result part, rows equal to RECORD mode's, bookmark kept."""

from __future__ import annotations

import datetime
import gzip
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow.parquet as pq
import pytest

from tests.conftest import discover, run_tap, select, tap_config


def _run(sandbox, tmp_path, streams, **overrides):
    config = tap_config(sandbox, **overrides)
    catalog = select(discover(tmp_path, config), streams)
    run = run_tap(tmp_path, config, catalog=catalog)
    return run


def _batch_rows(run, stream):
    rows = []
    for message in run.messages:
        if message["type"] != "BATCH" or message["stream"] != stream:
            continue
        for url in message["manifest"]:
            path = Path(urlparse(url).path)
            if message["encoding"]["format"] == "parquet":
                rows += [_as_json(row) for row in pq.read_table(path).to_pylist()]
            else:
                opener = gzip.open if message["encoding"]["compression"] == "gzip" else open
                with opener(path, "rt", encoding="utf-8") as lines:
                    rows += [json.loads(line) for line in lines]
    return rows


def _as_json(row):
    return {
        key: value.isoformat() if isinstance(value, (datetime.date, datetime.datetime)) else value
        for key, value in row.items()
    }


def _bookmark(run: Any, stream: str) -> dict[str, Any]:
    """A stream's state, less its job durations (a job re-used by the second run has none)
    and when each run moved the bookmark.
    """
    state = run.last_state["bookmarks"][stream]
    return {k: v for k, v in state.items() if k not in ("job_durations_ms", "bookmark_moved_at")}


@pytest.mark.parametrize(
    ("encoding", "files"),
    [
        ({"format": "jsonl", "compression": "gzip"}, 3),
        ({"format": "jsonl", "compression": "none"}, 3),
        ({"format": "parquet", "compression": "none"}, 3),
        ({"format": "parquet", "compression": "gzip"}, 3),
    ],
)
def test_batch_rows_equal_record_rows(sandbox, tmp_path, encoding, files):
    streams = {"accounts": None, "opportunities": None}
    records = _run(sandbox, tmp_path, streams)
    assert records.returncode == 0, records.stderr
    batch_config = {"encoding": encoding, "storage": {"root": f"file://{tmp_path}/batches"}}
    batches = _run(sandbox, tmp_path, streams, batch_config=batch_config)
    assert batches.returncode == 0, batches.stderr
    assert not batches.records
    manifests = [m for m in batches.messages if m["type"] == "BATCH"]
    assert len([m for m in manifests if m["stream"] == "accounts"]) == files  # 120 rows / 40
    for stream in streams:
        by_id = {row["id"]: row for row in _batch_rows(batches, stream)}
        expected = {row["id"]: row for row in records.records[stream]}
        assert by_id == expected, stream
        assert _bookmark(batches, stream) == _bookmark(records, stream)


def test_malformed_part_in_parquet_mode_names_line_and_field(sandbox, tmp_path):
    sandbox.settings.malformed = {"opportunities": "bad_boolean"}
    batch_config = {
        "encoding": {"format": "parquet", "compression": "none"},
        "storage": {"root": f"file://{tmp_path}/batches"},
    }
    run = _run(sandbox, tmp_path, {"opportunities": None}, batch_config=batch_config)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    (line,) = run.error_lines
    assert "opportunities: part 1, line 3, field 'is_won': 'maybe' is not a valid boolean" in line
