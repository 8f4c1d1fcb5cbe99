"""BATCH mode: one batch file per result part, rows equal to RECORD mode's, bookmark kept."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.records import batch_rows
from tests.support.tap import discover, run_tap, select, tap_config


def _run(sandbox, tmp_path, streams, **overrides):
    config = tap_config(sandbox, **overrides)
    catalog = select(discover(tmp_path, config), streams)
    run = run_tap(tmp_path, config, catalog=catalog)
    return run


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
        by_id = {row["id"]: row for row in batch_rows(batches, stream)}
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
