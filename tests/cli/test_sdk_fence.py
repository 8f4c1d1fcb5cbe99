"""Where the tap leans on singer-sdk internals and needs an emulator to show it: the fast record
path is the one used (the SDK's with a stream map), a failed stream surfaces from
``sync_all()``, nothing piles up per tap instance, and the stream reaches the SDK's writer,
state, versions and progress markers as ``tap_demandbase/sdk_compat.py`` lists.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest
from singer_sdk import Stream

from tap_demandbase import sdk_compat
from tap_demandbase.tap import StreamsFailedError, TapDemandbase
from tap_demandbase.writer import FastSingerWriter
from tests.support.tap import discover, select, tap_config


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
    from tap_demandbase.sdk_compat import BOOKMARK_VALUE_KEY

    config = tap_config(sandbox)
    catalog = select(discover(tmp_path, config), {"accounts": None})
    messages = _sync_in_process(config, catalog)
    states = [m["value"]["bookmarks"]["accounts"] for m in messages if m["type"] == "STATE"]
    final = states[-1]
    assert final[BOOKMARK_VALUE_KEY] and final["bookmark_moved_at"].endswith("Z")


# sdk_compat.py, entry by entry ----------------------------------------------------------------


def test_settings_from_the_environment_reach_the_tap(sandbox, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TAP_DEMANDBASE_DOWNLOAD_STALL_SECONDS", "0.5")
    tap = TapDemandbase(config=tap_config(sandbox), parse_env_config=True)
    assert tap.config["download_stall_seconds"] == 0.5
    # validation filled the default into the settings the SDK keeps (``_config``)
    assert tap.given_settings["max_concurrent_jobs"] == 1


def _tap_and_stream(sandbox, tmp_path) -> tuple[TapDemandbase, Any]:
    config = tap_config(sandbox)
    catalog = select(discover(tmp_path, config), {"accounts": None})
    tap = TapDemandbase(config=config, catalog=catalog, state={})
    return tap, tap.streams["accounts"]


def _written(tap: TapDemandbase, write: Any) -> list[dict[str, Any]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        write()
        tap.message_writer.flush()
    return [json.loads(line) for line in out.getvalue().splitlines() if line]


def test_the_sync_order_is_the_sdks_private_streams(sandbox, tmp_path):
    config = tap_config(sandbox)
    tap = TapDemandbase(config=config, catalog=discover(tmp_path, config), state={})
    names = list(tap.streams)
    # the SDK orders them as sync_order_key does, and the run plans them in that order
    assert len(names) > 1
    assert names == [s.name for s in sorted(tap.streams.values(), key=sdk_compat.sync_order_key)]
    assert list(tap.sync_run.streams) == names
    tap.set_sync_order(names[::-1])
    assert list(tap.streams) == names[::-1]


def test_the_stream_reaches_the_taps_writer_and_writes_state_and_versions(sandbox, tmp_path):
    tap, stream = _tap_and_stream(sandbox, tmp_path)
    assert stream.tap_message_writer is tap.message_writer
    stream.stream_state["x"] = 1
    (state,) = _written(tap, stream.write_state_now)
    assert state["type"] == "STATE"
    assert state["value"]["bookmarks"]["accounts"]["x"] == 1
    assert _written(tap, stream._write_state_message) == []  # flushed: nothing new to say
    (activate,) = _written(tap, lambda: stream.write_activate_version(7))
    assert (activate["type"], activate["version"]) == ("ACTIVATE_VERSION", 7)


def test_the_table_version_is_the_one_the_sdks_records_carry(sandbox, tmp_path):
    _, stream = _tap_and_stream(sandbox, tmp_path)
    stream.table_version = 7
    (message,) = stream._generate_record_messages({"id": "1"})
    assert message.version == 7


def test_the_bookmark_goes_through_the_sdks_progress_markers(sandbox, tmp_path):
    """The tap moves the SDK's bookmark once per part (``increment_bookmark``) and makes it
    final when a window is done: the SDK must keep it in ``progress_markers`` until then, and
    in ``replication_key_value`` after.
    """
    _, stream = _tap_and_stream(sandbox, tmp_path)
    key = stream.replication_key
    stream.increment_bookmark(key, "2024-03-01T00:00:00Z")
    state = stream.stream_state
    assert state[sdk_compat.PROGRESS_MARKERS][sdk_compat.BOOKMARK_VALUE_KEY] == (
        "2024-03-01T00:00:00Z"
    )
    stream.finalize_state_progress_markers(state)
    assert sdk_compat.PROGRESS_MARKERS not in state
    assert state[sdk_compat.BOOKMARK_VALUE_KEY] == "2024-03-01T00:00:00Z"
