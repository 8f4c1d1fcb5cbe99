"""Bad settings and state a hostile test found: each is one line naming what to fix."""

from __future__ import annotations

import logging

import pytest

from tap_demandbase.tap import checked_api_url
from tests.conftest import TAP, run_tap, tap_config


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
