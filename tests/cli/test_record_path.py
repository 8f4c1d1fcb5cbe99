"""The fast record path writes what the SDK's own path writes, and stream maps still apply."""

from __future__ import annotations

import json

from tests.support.tap import discover, run_tap, select, tap_config


def _accounts_run(sandbox, tmp_path, **overrides):
    config = tap_config(sandbox, **overrides)
    catalog = select(discover(tmp_path, config), {"accounts": None})
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    return run


def _without_durations(state):
    """The state less the job durations (the second run re-uses the first one's job) and
    when each run moved the bookmark.
    """
    return {
        "bookmarks": {
            stream: {
                k: v for k, v in value.items() if k not in ("job_durations_ms", "bookmark_moved_at")
            }
            for stream, value in state["bookmarks"].items()
        }
    }


def test_fast_path_records_equal_the_sdk_path_records(sandbox, tmp_path):
    fast = _accounts_run(sandbox, tmp_path, metrics_log_level="INFO")
    # A stream map (even one that changes nothing) sends records through the SDK's path.
    maps = {"accounts": {"__alias__": "accounts"}}
    sdk = _accounts_run(sandbox, tmp_path, stream_maps=maps, metrics_log_level="INFO")
    assert len(fast.records["accounts"]) == 120
    assert fast.records == sdk.records
    for run in (fast, sdk):
        kinds = [m["type"] for m in run.messages]
        assert kinds[0] == "SCHEMA"
        assert kinds[-1] == "STATE"
        for message in run.messages:
            if message["type"] == "RECORD":
                assert set(message) == {"type", "stream", "record", "time_extracted"}
    assert _without_durations(fast.last_state) == _without_durations(sdk.last_state)
    # The SDK's record_count metric counts records written by the columnar path too.
    for run in (fast, sdk):
        counts = [
            json.loads(line.split("METRIC: ", 1)[1])["value"]
            for line in run.stderr.splitlines()
            if '"metric":"record_count"' in line.replace(" ", "")
        ]
        assert sum(counts) == 120
    # Every line is one JSON document, UTF-8, not ASCII-escaped twice.
    for line in fast.stdout.splitlines():
        json.loads(line)


def test_stream_maps_and_flattening_are_honoured(sandbox, tmp_path):
    maps = {
        "accounts": {
            "name_upper": "name.upper() if name else None",
            "description": "__NULL__",
        }
    }
    run = _accounts_run(
        sandbox, tmp_path, stream_maps=maps, flattening_enabled=True, flattening_max_depth=1
    )
    records = run.records["accounts"]
    assert len(records) == 120
    for record in records:
        assert "description" not in record
        assert record["name_upper"] == (record["name"].upper() if record["name"] else None)
    schema = next(m for m in run.messages if m["type"] == "SCHEMA")["schema"]
    assert "name_upper" in schema["properties"]
    assert "description" not in schema["properties"]


def test_state_never_runs_ahead_of_records(sandbox, tmp_path):
    run = _accounts_run(sandbox, tmp_path)
    seen_max = None
    for message in run.messages:
        if message["type"] == "RECORD":
            value = message["record"]["last_modified_date"]
            seen_max = value if seen_max is None else max(seen_max, value)
        elif message["type"] == "STATE":
            bookmark = message["value"]["bookmarks"].get("accounts", {})
            value = bookmark.get("replication_key_value")
            if value is not None:
                assert seen_max is not None
                assert value <= seen_max
    assert run.last_state["bookmarks"]["accounts"]["replication_key_value"] == seen_max
