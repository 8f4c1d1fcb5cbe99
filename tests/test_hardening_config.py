"""Bad settings and state: each is one line naming what to fix."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tap_demandbase.tap import checked_api_url
from tests.support.expected import api_field_types, assert_records_match
from tests.support.tap import TAP, discover, run_tap, select, tap_config


def _one_error_line(run, words: str) -> None:
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    lines = run.error_lines
    assert len(lines) == 1, run.stderr[-3000:]
    assert words in lines[0]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"api_url": "api.demandbase.com"}, "Setting api_url='api.demandbase.com' is not"),
        ({"api_url": "ftp://api.demandbase.com"}, "Setting api_url="),
        ({"max_concurrent_jobs": 0}, "Setting max_concurrent_jobs=0"),
        ({"job_retry_cooldown_seconds": -5}, "Setting job_retry_cooldown_seconds=-5"),
        ({"download_stall_seconds": 0}, "Setting download_stall_seconds=0"),
    ],
)
def test_bad_settings_are_one_line(sandbox, tmp_path, overrides, words):
    config = tap_config(sandbox, **overrides)
    _one_error_line(run_tap(tmp_path, config), words)
    if "api_url" in overrides:
        _one_error_line(run_tap(tmp_path, config, "--discover"), words)
    assert not [r for r in sandbox.requests() if r.method == "POST"]


@pytest.mark.parametrize("text", ['{"bookmarks": {"accounts": {', "[1, 2]"])
def test_truncated_state_file_is_one_line_naming_it(sandbox, tmp_path, text):
    state = tmp_path / "broken-state.json"
    state.write_text(text)
    run = run_tap(tmp_path, tap_config(sandbox), "--state", str(state))
    _one_error_line(run, f"The state file {state}")
    assert TAP  # the real CLI ran


@pytest.mark.unit
def test_plain_http_to_a_remote_host_warns(caplog):
    logger = logging.getLogger("test-api-url")
    with caplog.at_level(logging.WARNING):
        assert checked_api_url("http://api.example.com", logger) == "http://api.example.com"
    assert "clear text" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        checked_api_url("http://127.0.0.1:8734", logger)
        checked_api_url("http://localhost:8734", logger)
        checked_api_url("https://api.example.com", logger)
    assert "clear text" not in caplog.text


@pytest.mark.parametrize("command", [(), ("--discover",)])
def test_missing_access_token_is_one_line(sandbox, tmp_path, command):
    config = tap_config(sandbox)
    del config["access_token"]
    run = run_tap(tmp_path, config, *command)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "access_token" in run.stderr
    assert not [r for r in sandbox.requests() if r.server == "api"]


def _catalog(tmp_path, sb):
    config = tap_config(sb, end_date="2024-03-31T00:00:00Z")
    return config, select(discover(tmp_path, config), {"accounts": None})


def _posts(sb) -> list[Any]:
    return [r for r in sb.requests() if r.method == "POST"]


def _windows_done(through: str) -> dict[str, Any]:
    done = {"field": "last_modified_date", "filters": [{}], "through": through}
    return {"windows_done": done}


def _bookmark(**parts: Any) -> dict[str, Any]:
    kept = {"replication_key": "last_modified_date", "replication_key_value": "2024-02-01"}
    return {"bookmarks": {"accounts": kept | parts}}


@pytest.mark.parametrize(
    ("state", "key"),
    [
        ({"bookmarks": []}, "bookmarks"),
        ({"bookmarks": "x"}, "bookmarks"),
        ({"bookmarks": {"accounts": "x"}}, "bookmarks.accounts"),
        ({"bookmarks": {"accounts": []}}, "bookmarks.accounts"),
    ],
)
def test_a_state_of_the_wrong_shape_is_one_line_naming_the_file_and_key(
    sandbox, tmp_path, state, key
):
    config, catalog = _catalog(tmp_path, sandbox)
    run = run_tap(tmp_path, config, catalog=catalog, state=state)
    _one_error_line(run, f"The state file {tmp_path / 'state.json'}")
    assert f" {key} " in run.error_lines[0]
    assert not _posts(sandbox)


@pytest.mark.parametrize(
    ("parts", "key"),
    [
        ({"windows_done": "x"}, "bookmarks.accounts.windows_done"),
        (_windows_done("garbage"), "bookmarks.accounts.windows_done.through"),
        (_windows_done("9999-12-31"), "bookmarks.accounts.windows_done.through"),
        ({"export_job": "x"}, "bookmarks.accounts.export_job"),
        ({"export_job": ["job-1"]}, "bookmarks.accounts.export_job"),
        ({"export_job": {"job_id": "job-1"}}, "bookmarks.accounts.export_job"),
        ({"window_filters_done": 7}, "bookmarks.accounts.window_filters_done"),
        ({"last_job_created_at": "yesterday"}, "bookmarks.accounts.last_job_created_at"),
        ({"progress_markers": "x"}, "bookmarks.accounts.progress_markers"),
    ],
)
def test_a_part_of_the_state_that_cannot_be_read_is_one_warning_and_the_sync_goes_on(
    sandbox, tmp_path, parts, key
):
    config, catalog = _catalog(tmp_path, sandbox)
    run = run_tap(tmp_path, config, catalog=catalog, state=_bookmark(**parts))
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    (line,) = [line for line in run.stderr.splitlines() if "WARNING" in line]
    assert f"The state file {tmp_path / 'state.json'}" in line and f" {key} " in line
    rows = sandbox.expected_rows(
        "accounts", date_field="last_modified_date", start="2024-02-01", end="2024-03-31"
    )
    assert_records_match(
        "accounts", run.records["accounts"], rows, api_field_types(sandbox)["accounts"]
    )
    assert len(_posts(sandbox)) == 1
    assert run.last_state["bookmarks"]["accounts"]["replication_key_value"] > "2024-03"
