"""Faults: transient errors, broken downloads, failed and stuck jobs, crashes, windows.

Every scenario runs the real CLI against the emulator and asserts the exact records (or the
exact error) and what the emulator saw; the last checks that every thread of a sync goes
through ``engine/background.py`` and ends on ``stop()`` (the SIGTERM path).
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys

import pendulum
import pytest

from tap_demandbase.sandbox import Sandbox
from tests.support.expected import api_field_types, assert_records_match
from tests.support.tap import (
    LiveTap,
    discover,
    fast_settings,
    ledger_of,
    run_tap,
    select,
    tap_config,
)

TODAY = pendulum.now("UTC").to_date_string()


def _accounts_catalog(tmp_path, config):
    return select(discover(tmp_path, config), {"accounts": None})


def _expected_accounts(sb, start="2024-01-01", end=TODAY):
    return sb.expected_rows("accounts", date_field="last_modified_date", start=start, end=end)


def _assert_accounts(sb, records, start="2024-01-01", end=TODAY):
    rows = _expected_accounts(sb, start, end)
    assert_records_match("accounts", records, rows, api_field_types(sb)["accounts"])


def _requests(sb, method=None, server="api", path_end=None):
    return [
        r
        for r in sb.requests()
        if r.server == server
        and (method is None or r.method == method)
        and (path_end is None or r.path.endswith(path_end))
    ]


#: Jobs that do not say how many parts their result has (the API answers 404 past the last).
NO_FILE_PARTS = {"job_json_patch": {"file_parts": None}}


def _downloads(sb):
    return [(r.query["part"], r.status) for r in _requests(sb, path_end="/download")]


#: Runs two syncs (RECORD, then BATCH parquet) in one process, noting the first package module
#: on the stack of every thread started; then ``stop()``.
SYNC_SCRIPT = """
import contextlib, io, json, sys, threading, time
config, batch_config, catalog, out = sys.argv[1:]
started = []
original_start = threading.Thread.start

def start(self):
    frame, origin = sys._getframe(1), None
    while frame is not None and origin is None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("tap_demandbase") and not module.startswith("tap_demandbase.sandbox"):
            origin = module
        frame = frame.f_back
    started.append((self, origin))
    original_start(self)

threading.Thread.start = start
from tap_demandbase.engine import background
from tap_demandbase.tap import TapDemandbase

for settings in (config, batch_config):
    stdout = io.TextIOWrapper(io.BytesIO(), write_through=True)
    with contextlib.redirect_stdout(stdout):
        try:
            TapDemandbase.get_singer_command().main(
                args=["--config", settings, "--catalog", catalog], standalone_mode=False
            )
        except SystemExit as exc:
            assert not exc.code, exc.code

ours = [(thread, origin) for thread, origin in started if origin]
def forever(wait):
    while not wait(3600):
        pass

background.start_thread("probe-loop", forever)
alive = {thread.name for thread in background.threads()}
background.stop()
refused = [
    background.run_in_background("after-stop", lambda: None).exception(timeout=1),
    background.DaemonPool(1, name="after").submit(lambda: None).exception(timeout=1),
]
result = {
    "origins": sorted({origin for _, origin in ours}),
    "names": sorted({thread.name for thread, _ in ours}),
    "alive_before_stop": sorted(alive),
    "alive_after_stop": sorted(thread.name for thread in background.threads()),
    "refused": [type(error).__name__ for error in refused],
    "loop_after_stop": background.start_thread("after", lambda wait: None).thread is None,
}
with open(out, "w") as file:
    json.dump(result, file)
"""


@pytest.mark.parametrize("endpoint", ["entities", "create", "list", "status", "download", "file"])
def test_5xx_on_each_endpoint_is_retried(sandbox, tmp_path, endpoint):
    config = tap_config(sandbox)
    catalog = None if endpoint == "entities" else _accounts_catalog(tmp_path, config)
    sandbox.settings.http_errors = {endpoint: 2}
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    _assert_accounts(sandbox, run.records["accounts"])
    assert sandbox.settings.http_errors[endpoint] == 0  # both injected errors were hit
    retries = [line.split(" | ")[-1] for line in run.stderr.splitlines() if "Retrying" in line]
    assert len(retries) == 2, retries
    for line in retries:  # one short line each: what, when, which attempt, why
        assert line.startswith("Retrying "), line
        assert " (attempt " in line and " of 6 failed: " in line, line
        assert len(line) < 250, line


def test_cut_download_resumes_with_range_and_emits_nothing_twice(tmp_path):
    with Sandbox(fast_settings(rows={"accounts": 1200}, rows_per_part=600)) as sb:
        config = tap_config(sb)
        catalog = _accounts_catalog(tmp_path, config)
        sb.settings.cut_downloads = 1
        run = run_tap(tmp_path, config, catalog=catalog)
        assert run.returncode == 0, run.stderr
        _assert_accounts(sb, run.records["accounts"])
        files = _requests(sb, server="files")
        assert [r.status for r in files] == [200, 206, 200]
        assert not any(r.has_authorization for r in files)
        assert "broke off" in run.stderr


def test_cut_download_without_range_support_is_fetched_again(sandbox, tmp_path):
    config = tap_config(sandbox)
    catalog = _accounts_catalog(tmp_path, config)
    sandbox.settings.cut_downloads = 1
    sandbox.settings.supports_range = False
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    _assert_accounts(sandbox, run.records["accounts"])
    files = _requests(sandbox, server="files")
    assert len(files) == 4  # 3 parts, the cut one twice
    assert all(r.status == 200 for r in files)


def test_expired_presigned_url_is_replaced_by_a_fresh_one(sandbox, tmp_path):
    config = tap_config(sandbox)
    catalog = _accounts_catalog(tmp_path, config)
    sandbox.settings.expire_next_urls = 1
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    _assert_accounts(sandbox, run.records["accounts"])
    files = _requests(sandbox, server="files")
    assert [r.status for r in files] == [403, 200, 200, 200]
    downloads = _requests(sandbox, path_end="/download")
    assert [r.query["part"] for r in downloads] == ["1", "1", "2", "3"]


def test_job_failing_once_is_replaced_and_the_sync_succeeds(sandbox, tmp_path):
    config = tap_config(sandbox)
    catalog = _accounts_catalog(tmp_path, config)
    sandbox.settings.fail_jobs = {"accounts": 1}
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    _assert_accounts(sandbox, run.records["accounts"])
    assert len(_requests(sandbox, "POST")) == 2
    assert "trying a new job" in run.stderr


def test_stuck_job_is_cancelled_after_the_timeout(sandbox, tmp_path):
    config = tap_config(sandbox, job_timeout_seconds=0.5)
    catalog = _accounts_catalog(tmp_path, config)
    sandbox.settings.processing_seconds = 60
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 1
    (line,) = run.error_lines
    assert "did not finish within job_timeout_seconds=0" in line
    assert "cancelled" in line
    (delete,) = _requests(sandbox, "DELETE")
    assert delete.status == 200
    assert sandbox.jobs()[0]["status"] == "cancelled"
    assert not run.records


def test_one_failing_stream_does_not_stop_the_others(sandbox, tmp_path):
    sandbox.settings.fail_jobs = {"activities": -1}
    run = run_tap(tmp_path, tap_config(sandbox))
    assert run.returncode == 1
    (line,) = run.error_lines
    assert "Stream 'activities' failed" in line
    assert "simulated" in line
    others = ["accounts", "buying_groups", "campaigns", "opportunities", "people"]
    assert sorted(run.records) == others
    bookmarks = run.last_state["bookmarks"]
    assert all(bookmarks[s]["replication_key_value"] for s in others)
    assert "replication_key_value" not in bookmarks.get("activities", {})


def test_an_equivalent_job_is_reused_instead_of_created(sandbox, tmp_path):
    config = tap_config(sandbox)
    catalog = _accounts_catalog(tmp_path, config)
    fields = list(api_field_types(sandbox)["accounts"])
    date_range = {"field": "last_modified_date", "start": "2024-01-01", "end": TODAY}
    body = {"entity_type": "accounts", "fields": fields, "filters": {"date_range": date_range}}
    import requests

    headers = {"Authorization": f"Bearer {sandbox.token}"}
    lost = requests.post(f"{sandbox.api_url}/export/v1/jobs", json=body, headers=headers, timeout=5)
    assert lost.status_code == 202
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    _assert_accounts(sandbox, run.records["accounts"])
    assert len(_requests(sandbox, "POST")) == 1  # only the one made here
    assert f"{lost.json()['id']}" in run.stderr
    assert "re-used: an equivalent job already exists" in run.stderr


def test_windows_are_contiguous_and_cover_the_range_exactly(sandbox, tmp_path):
    config = tap_config(sandbox, window_days=7, end_date="2024-03-31T00:00:00Z")
    catalog = _accounts_catalog(tmp_path, config)
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    ranges = [r.body["filters"]["date_range"] for r in _requests(sandbox, "POST")]
    assert ranges[0]["start"] == "2024-01-01"
    assert ranges[-1]["end"] == "2024-03-31"
    days = 0
    for before, after in itertools.pairwise(ranges):
        end = pendulum.parse(before["end"]).date()
        assert pendulum.parse(after["start"]).date() == end.add(days=1)
    for window in ranges:
        length = (pendulum.parse(window["end"]) - pendulum.parse(window["start"])).days + 1
        assert 1 <= length <= 7
        days += length
    assert days == 91  # 2024-01-01..2024-03-31, each day once
    _assert_accounts(sandbox, run.records["accounts"], end="2024-03-31")
    # The bookmark advanced after each window: the emitted values never go back.
    values = [
        s["bookmarks"]["accounts"]["replication_key_value"]
        for s in run.states
        if "replication_key_value" in s.get("bookmarks", {}).get("accounts", {})
    ]
    assert len(set(values)) > 5
    assert values == sorted(values)


def test_sigkill_mid_download_then_resume_the_remaining_parts_only(tmp_path):
    settings = fast_settings(rows={"accounts": 900}, rows_per_part=300)
    with Sandbox(settings) as sb:
        config = tap_config(sb)
        catalog = _accounts_catalog(tmp_path, config)
        live = LiveTap(tmp_path, config, catalog)
        done = {"1": 300}
        state = live.read_until(lambda m: (ledger_of(m) or {}).get("parts_done") == done)["value"]
        live.process.kill()  # it is blocked writing part 2: nobody reads its stdout
        live.process.wait()
        first = live.records()
        assert len(first) == 300

        run = run_tap(tmp_path, config, catalog=catalog, state=state)
        assert run.returncode == 0, run.stderr
        assert len(_requests(sb, "POST")) == 1  # jobs created: 1 before the crash, 0 after
        second = run.records["accounts"]
        assert len(second) == 600  # parts 2 and 3 only: part 1 is not emitted again
        assert not {r["id"] for r in first} & {r["id"] for r in second}
        _assert_accounts(sb, first + second)
        parts = [r.query["part"] for r in _requests(sb, path_end="/download")]
        assert parts.count("1") == 1


def test_a_job_without_file_parts_delivers_every_part_in_one_run(tmp_path):
    settings = fast_settings(rows={"accounts": 300}, rows_per_part=100, **NO_FILE_PARTS)
    with Sandbox(settings) as sb:
        config = tap_config(sb)
        run = run_tap(tmp_path, config, catalog=_accounts_catalog(tmp_path, config))
        assert run.returncode == 0, run.stderr
        assert "file_parts" not in sb.jobs()[0]
        assert len(run.records["accounts"]) == 300
        _assert_accounts(sb, run.records["accounts"])  # each row once: record_count holds
        assert _downloads(sb) == [("1", 302), ("2", 302), ("3", 302), ("4", 404)]
        assert "did not say how many parts its result has: it has 3" in run.stderr
        bookmark = run.last_state["bookmarks"]["accounts"]
        assert bookmark["replication_key_value"] and "export_job" not in bookmark
        assert len(_requests(sb, "POST")) == 1


def test_sigkill_mid_part_of_a_job_without_file_parts_then_resume_delivers_the_rest(tmp_path):
    settings = fast_settings(rows={"accounts": 900}, rows_per_part=300, **NO_FILE_PARTS)
    with Sandbox(settings) as sb:
        config = tap_config(sb)
        catalog = _accounts_catalog(tmp_path, config)
        live = LiveTap(tmp_path, config, catalog)
        done = {"1": 300}
        state = live.read_until(lambda m: (ledger_of(m) or {}).get("parts_done") == done)["value"]
        live.process.kill()  # it is blocked writing part 2: nobody reads its stdout
        live.process.wait()
        first = live.records()
        assert len(first) == 300

        run = run_tap(tmp_path, config, catalog=catalog, state=state)
        assert run.returncode == 0, run.stderr
        assert len(_requests(sb, "POST")) == 1  # jobs created: 1 before the crash, 0 after
        second = run.records["accounts"]
        assert len(second) == 600
        assert not {r["id"] for r in first} & {r["id"] for r in second}
        _assert_accounts(sb, first + second)
        resumed = _downloads(sb)[-3:]
        assert resumed == [("2", 302), ("3", 302), ("4", 404)]  # part 1 is not read again
        assert "export_job" not in run.last_state["bookmarks"]["accounts"]


def test_sigterm_stops_with_the_ledger_in_state_and_keeps_the_job(sandbox, tmp_path):
    config = tap_config(sandbox)
    catalog = _accounts_catalog(tmp_path, config)
    sandbox.settings.processing_seconds = 3.0
    live = LiveTap(tmp_path, config, catalog)
    live.read_until(lambda m: ledger_of(m) is not None)
    live.process.send_signal(signal.SIGTERM)
    assert live.process.wait(timeout=10) == 128 + signal.SIGTERM
    live.drain()
    final = [m for m in live.messages if m["type"] == "STATE"][-1]
    assert ledger_of(final)["job_id"] == "job-000001"
    assert "Stopped by SIGTERM" in live.stderr_path.read_text()
    assert not _requests(sandbox, "DELETE")
    assert sandbox.jobs()[0]["status"] != "cancelled"

    run = run_tap(tmp_path, config, catalog=catalog, state=final["value"])
    assert run.returncode == 0, run.stderr
    assert len(_requests(sandbox, "POST")) == 1
    _assert_accounts(sandbox, run.records["accounts"])


def test_retry_after_is_honoured_on_a_plain_429(sandbox, tmp_path):
    config = tap_config(sandbox)
    catalog = _accounts_catalog(tmp_path, config)
    sandbox.settings.http_errors = {"create": 1}
    sandbox.settings.http_error_status = 429
    sandbox.settings.http_error_retry_after = 1.5
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert "Retrying creating the accounts export job in 1.5s" in run.stderr
    _assert_accounts(sandbox, run.records["accounts"])


def test_rows_that_disagree_with_record_count_fail_the_stream(sandbox, tmp_path):
    config = tap_config(sandbox)
    catalog = _accounts_catalog(tmp_path, config)
    sandbox.settings.record_count_offset = 1
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 1
    (line,) = run.error_lines
    assert "the parts held 120 rows but the job reported record_count=121" in line
    assert "replication_key_value" not in run.last_state["bookmarks"]["accounts"]


def test_a_job_that_finishes_as_it_is_cancelled_is_used(sandbox, tmp_path):
    config = tap_config(sandbox, job_timeout_seconds=0.3)
    catalog = _accounts_catalog(tmp_path, config)
    sandbox.settings.processing_seconds = 1.0
    sandbox.settings.finish_before_cancel = True
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    (delete,) = _requests(sandbox, "DELETE")
    assert delete.status == 409
    assert sandbox.jobs()[0]["status"] == "completed"
    _assert_accounts(sandbox, run.records["accounts"])


def test_a_sync_starts_every_thread_through_the_owner_and_stop_ends_them(sandbox, tmp_path):
    config = tap_config(sandbox, max_concurrent_jobs=2)
    catalog = select(discover(tmp_path, config), {"accounts": None, "people": None})
    paths = {name: tmp_path / f"{name}.json" for name in ("config", "batch", "catalog")}
    paths["config"].write_text(json.dumps(config))
    paths["batch"].write_text(
        json.dumps(
            config
            | {
                "batch_config": {
                    "encoding": {"format": "parquet"},
                    "storage": {"root": f"file://{tmp_path}", "prefix": "batch-"},
                }
            }
        )
    )
    paths["catalog"].write_text(json.dumps(catalog))
    out = tmp_path / "threads.json"
    args = [str(paths["config"]), str(paths["batch"]), str(paths["catalog"]), str(out)]
    done = subprocess.run(
        [sys.executable, "-c", SYNC_SCRIPT, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(out.read_text())

    assert seen["origins"] == ["tap_demandbase.engine.background"]
    for prefix in ("import-polars", "columnar-", "progress-", "download-", "export-job-"):
        assert any(name.startswith(prefix) for name in seen["names"]), (prefix, seen["names"])
    assert "probe-loop" in seen["alive_before_stop"]
    assert any(name.startswith("columnar-") for name in seen["alive_before_stop"])
    assert seen["alive_after_stop"] == []
    assert seen["refused"] == ["BackgroundStoppedError", "BackgroundStoppedError"]
    assert seen["loop_after_stop"] is True
