"""Where the tap leans on singer-sdk internals, these tests fail if the SDK moves under it.

The fast record path overrides private SDK hooks (``@override`` makes mypy fail on a rename);
here, in-process against the emulator, the fast path must be the one actually used, and a
stream that fails must surface from ``sync_all()`` for a program, not only as an exit code.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest
from singer_sdk import Stream

from tap_demandbase.tap import StreamsFailedError, TapDemandbase
from tap_demandbase.writer import FastSingerWriter
from tests.conftest import discover, select, tap_config


def _sync_in_process(config: dict[str, Any], catalog: dict[str, Any]) -> list[dict[str, Any]]:
    tap = TapDemandbase(config=config, catalog=catalog, state={}, setup_mapper=True)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            tap.sync_all()
    finally:
        tap.message_writer.flush()
    return [json.loads(line) for line in out.getvalue().splitlines() if line]


def _refuse_sdk_record_path(monkeypatch) -> list[str]:
    used: list[str] = []

    def sdk_path(self: Stream, record: dict[str, Any]) -> None:
        used.append(self.name)

    # raising=True (the default): if the SDK renamed its hook, this fails first.
    monkeypatch.setattr(Stream, "_write_record_message", sdk_path)
    return used


def test_the_fast_record_path_is_the_one_used(sandbox, tmp_path, monkeypatch):
    config = tap_config(sandbox)
    catalog = select(discover(tmp_path, config), {"accounts": None})
    sdk_used = _refuse_sdk_record_path(monkeypatch)
    fast_writes: list[str] = []
    write_record, write_lines = FastSingerWriter.write_record, FastSingerWriter.write_lines

    def counted_record(self, stream, record, time_extracted=None):
        fast_writes.append(stream)
        return write_record(self, stream, record, time_extracted)

    def counted_lines(self, lines: bytes):  # the columnar path: whole blocks of RECORD lines
        fast_writes.extend("accounts" for _ in range(lines.count(b"\n")))
        return write_lines(self, lines)

    monkeypatch.setattr(FastSingerWriter, "write_record", counted_record)
    monkeypatch.setattr(FastSingerWriter, "write_lines", counted_lines)
    messages = _sync_in_process(config, catalog)
    assert sdk_used == []
    assert len(fast_writes) == 120
    assert len([m for m in messages if m["type"] == "RECORD"]) == 120


def test_with_a_stream_map_records_go_through_the_sdk_path(sandbox, tmp_path, monkeypatch):
    config = tap_config(sandbox, stream_maps={"accounts": {"__alias__": "accounts"}})
    catalog = select(discover(tmp_path, config), {"accounts": None})
    sdk_used = _refuse_sdk_record_path(monkeypatch)
    _sync_in_process(config, catalog)
    assert len(sdk_used) == 120


def test_a_failed_stream_surfaces_from_sync_all_after_the_others_synced(sandbox, tmp_path):
    config = tap_config(sandbox, max_job_attempts=1)
    catalog = select(discover(tmp_path, config), {"accounts": None, "campaigns": None})
    sandbox.settings.fail_jobs = {"accounts": -1}
    tap = TapDemandbase(config=config, catalog=catalog, state={})
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(StreamsFailedError) as raised:
        tap.sync_all()
    tap.message_writer.flush()
    assert raised.value.failures == [
        f"Stream 'accounts' failed: {raised.value.failures[0].split(': ', 1)[1]}"
    ]
    assert "failed on Demandbase's side" in raised.value.failures[0]
    records = [json.loads(line) for line in out.getvalue().splitlines() if '"RECORD"' in line]
    assert {r["stream"] for r in records} == {"campaigns"}
    # A second tap instance in the same process starts with no failures of the first.
    sandbox.settings.fail_jobs = {}
    again = TapDemandbase(config=config, catalog=catalog, state={})
    with contextlib.redirect_stdout(io.StringIO()):
        again.sync_all()


def test_no_exit_handler_or_log_filter_piles_up_per_tap_instance(sandbox):
    import atexit

    first = TapDemandbase(config=tap_config(sandbox))
    _ = first.streams  # one-time registrations of libraries
    before = atexit._ncallbacks()
    filters = list(first.logger.filters)  # the tap logger's one (logs.py), added once
    assert len(filters) <= 1
    for _ in range(3):
        tap = TapDemandbase(config=tap_config(sandbox))
        streams = list(tap.streams.values())
        assert streams
        assert all(not stream.logger.filters for stream in streams)
        assert tap.logger.filters == filters
    assert atexit._ncallbacks() == before


def test_the_final_bookmark_is_where_freshness_reads_it(sandbox, tmp_path):
    """Freshness compares the SDK's final bookmark (``replication_key_value``, promoted when a
    window is done) before and after: if the SDK kept it elsewhere, bookmark_moved_at would
    never be written.
    """
    from tap_demandbase.streams import BOOKMARK_VALUE_KEY

    config = tap_config(sandbox)
    catalog = select(discover(tmp_path, config), {"accounts": None})
    messages = _sync_in_process(config, catalog)
    states = [m["value"]["bookmarks"]["accounts"] for m in messages if m["type"] == "STATE"]
    final = states[-1]
    assert final[BOOKMARK_VALUE_KEY] and final["bookmark_moved_at"].endswith("Z")
