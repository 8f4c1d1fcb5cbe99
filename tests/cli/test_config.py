"""Settings and input files through the command: one line naming what to fix whatever the
command, warnings for typos and clear text, every setting from the environment, readable
errors for broken --config/--state/--catalog files, and state of the wrong shape.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tap_demandbase.dialects import DIALECTS
from tap_demandbase.engine.jobs import AttemptPolicy
from tap_demandbase.sandbox import Sandbox
from tap_demandbase.tap import TapDemandbase
from tests.support.expected import api_field_types, assert_records_match
from tests.support.tap import TAP, discover, fast_settings, run_tap, select, tap_config


def _no_traceback(run) -> None:
    assert "Traceback" not in run.stderr, run.stderr


def _api_calls(sandbox) -> list:
    return [r for r in sandbox.requests() if r.server == "api"]


def _run_with_env(tmp_path, env_settings: dict[str, str], *args: str, catalog=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_DEMANDBASE_")}
    env.update(env_settings)
    command = [TAP, "--config=ENV", *args]
    if catalog is not None:
        path = tmp_path / "catalog.json"
        path.write_text(json.dumps(catalog))
        command += ["--catalog", str(path)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path, check=False
    )


def _one_error_line(run, words: str) -> None:
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    lines = run.error_lines
    assert len(lines) == 1, run.stderr[-3000:]
    assert words in lines[0]


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


@pytest.mark.parametrize("command", [["--discover"], [], ["--test"]])
def test_missing_access_token_is_one_line_whatever_the_command(sandbox, tmp_path, command):
    config = tap_config(sandbox)
    del config["access_token"]
    run = run_tap(tmp_path, config, *command)
    assert run.returncode == 1
    _no_traceback(run)
    (line,) = run.error_lines
    assert "Setting access_token is required" in line
    assert "TAP_DEMANDBASE_ACCESS_TOKEN" in line
    assert not _api_calls(sandbox)


@pytest.mark.parametrize(
    ("overrides", "phrase"),
    [
        ({"api_url": "api.demandbase.com"}, "Setting api_url='api.demandbase.com' is not valid"),
        ({"api_url": "ftp://api.demandbase.com"}, "Setting api_url="),
        ({"max_concurrent_jobs": 0}, "Setting max_concurrent_jobs=0 must be at least 1"),
        (
            {"job_retry_cooldown_seconds": -1},
            "Setting job_retry_cooldown_seconds=-1 must be at least 0",
        ),
        ({"poll_interval_seconds": 0}, "Setting poll_interval_seconds=0 must be greater than 0"),
        ({"window_days": 0}, "Setting window_days=0 must be at least 1"),
        ({"max_job_attempts": 2.5}, "Setting max_job_attempts=2.5 must be a whole number"),
        ({"download_stall_seconds": 0}, "Setting download_stall_seconds=0 must be greater than 0"),
    ],
)
@pytest.mark.parametrize("command", [["--discover"], []])
def test_invalid_setting_is_one_line_naming_it(sandbox, tmp_path, overrides, phrase, command):
    run = run_tap(tmp_path, tap_config(sandbox, **overrides), *command)
    assert run.returncode == 1
    _no_traceback(run)
    (line,) = run.error_lines
    assert phrase in line
    assert not _api_calls(sandbox)


def test_several_invalid_settings_are_still_one_line(sandbox, tmp_path):
    config = tap_config(sandbox, max_concurrent_jobs=0, job_retry_cooldown_seconds=-1)
    run = run_tap(tmp_path, config)
    (line,) = run.error_lines
    assert "max_concurrent_jobs" in line
    assert "job_retry_cooldown_seconds" in line


def test_numbers_written_as_text_are_read_as_numbers(sandbox, tmp_path):
    """What Meltano passes for the number settings it declares as strings (plugin_files.py)."""
    config = tap_config(
        sandbox,
        poll_interval_seconds="0.05",
        job_retry_cooldown_seconds=" 0.1",
        max_job_attempts="2",
    )
    catalog = select(discover(tmp_path, tap_config(sandbox)), {"campaigns": None})
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert len(run.records["campaigns"]) == 20


@pytest.mark.parametrize(
    ("overrides", "phrase"),
    [
        (
            {"poll_interval_seconds": "soon"},
            "Setting poll_interval_seconds='soon' must be a number",
        ),
        ({"max_job_attempts": "2.5"}, "Setting max_job_attempts='2.5' must be a whole number"),
        (
            {"poll_interval_seconds": "0"},
            "Setting poll_interval_seconds=0.0 must be greater than 0",
        ),
    ],
)
def test_numbers_written_as_bad_text_are_one_line(sandbox, tmp_path, overrides, phrase):
    run = run_tap(tmp_path, tap_config(sandbox, **overrides), "--discover")
    assert run.returncode == 1
    _no_traceback(run)
    (line,) = run.error_lines
    assert phrase in line


def test_a_secret_setting_is_never_echoed_in_the_error(sandbox, tmp_path):
    run = run_tap(tmp_path, tap_config(sandbox, access_token=123456789))
    (line,) = run.error_lines
    assert "Setting access_token=(hidden) must be text" in line
    assert "123456789" not in run.stderr


def test_unknown_setting_is_a_warning_naming_the_closest_one(sandbox, tmp_path):
    run = run_tap(tmp_path, tap_config(sandbox, window_day=7), "--discover")
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if "WARNING" in line]
    assert any(
        "Setting window_day is not a setting of this tap" in line and "window_days?" in line
        for line in warnings
    ), run.stderr


def test_a_setting_of_another_dialect_is_a_warning_that_it_does_not_apply(sandbox, tmp_path):
    run = run_tap(tmp_path, tap_config(sandbox, client_id="abc"), "--discover")
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if "WARNING" in line]
    assert any(
        "Setting client_id applies to api_dialect uapi only" in line
        and "api_dialect=export_v1" in line
        for line in warnings
    ), run.stderr


def test_plain_http_api_url_other_than_loopback_is_a_warning(sandbox, tmp_path):
    config = tap_config(sandbox)
    catalog = select(discover(tmp_path, config), {})  # nothing selected: no API call
    run = run_tap(tmp_path, tap_config(sandbox, api_url="http://api.example.test"), catalog=catalog)
    assert run.returncode == 0, run.stderr
    (warning,) = [line for line in run.stderr.splitlines() if "clear text" in line]
    assert "WARNING" in warning
    assert "api_url='http://api.example.test'" in warning
    # The emulator on 127.0.0.1 is loopback: no warning there.
    assert "clear text" not in run_tap(tmp_path, config, catalog=catalog).stderr


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        ('{"bookmarks": {"accounts": {"replication_key_va', "is not valid JSON"),
        ("[1, 2]", "does not hold a JSON object"),
    ],
)
def test_broken_state_file_is_one_line_naming_the_file(sandbox, tmp_path, content, phrase):
    state_path = tmp_path / "broken-state.json"
    state_path.write_text(content)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(tap_config(sandbox)))
    done = subprocess.run(
        [TAP, "--config", str(config_path), "--state", str(state_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert f"state file {state_path}" in line
    assert phrase in line
    assert not done.stdout
    assert not _api_calls(sandbox)


def test_broken_catalog_file_is_one_line_naming_the_file(sandbox, tmp_path):
    catalog_path = tmp_path / "catalog.json"
    catalog_path.write_text('{"streams": [')
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(tap_config(sandbox)))
    done = subprocess.run(
        [TAP, "--config", str(config_path), "--catalog", str(catalog_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert f"catalog file {catalog_path}" in line


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        (None, "does not exist: give the path of a JSON file of settings"),
        (
            '{"api_url": "http://127.0.0.1:1",\n "start_date": ',
            "is not valid JSON (Expecting value",
        ),
        ('["access_token"]', "does not hold a JSON object"),
    ],
)
@pytest.mark.parametrize("command", [["--discover"], [], ["--test"]])
def test_broken_config_file_is_one_line_naming_the_file(tmp_path, content, phrase, command):
    config_path = tmp_path / "settings.json"
    if content is not None:
        config_path.write_text(content)
    done = subprocess.run(
        [TAP, "--config", str(config_path), *command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert f"config file {config_path} " in done.stderr
    assert phrase in done.stderr
    assert not done.stdout


def test_a_misspelt_required_setting_is_named_in_the_error(sandbox, tmp_path):
    config = tap_config(sandbox)
    config["start_dat"] = config.pop("start_date")
    run = run_tap(tmp_path, config)
    (line,) = run.error_lines
    assert "Setting start_date is required" in line
    assert "The config has start_dat: did you mean start_date?" in line
    assert not _api_calls(sandbox)


def test_every_setting_comes_from_the_environment_fractions_included(sandbox, tmp_path):
    replication_keys = {"campaigns": "start_date"}
    config = tap_config(sandbox, replication_keys=replication_keys)
    catalog = select(discover(tmp_path, config), {"campaigns": None})
    sandbox.reset_log()
    env = {
        "TAP_DEMANDBASE_API_URL": sandbox.api_url,
        "TAP_DEMANDBASE_ACCESS_TOKEN": sandbox.token,
        "TAP_DEMANDBASE_START_DATE": "2024-01-01T00:00:00Z",
        "TAP_DEMANDBASE_END_DATE": "2024-02-29T00:00:00Z",
        "TAP_DEMANDBASE_ACCOUNT_LIST_ID": "list-7",
        "TAP_DEMANDBASE_REPLICATION_KEYS": json.dumps(replication_keys),
        "TAP_DEMANDBASE_WINDOW_DAYS": "30",
        "TAP_DEMANDBASE_MAX_CONCURRENT_JOBS": "2",
        "TAP_DEMANDBASE_MAX_JOB_ATTEMPTS": "2",
        "TAP_DEMANDBASE_POLL_INTERVAL_SECONDS": "0.05",
        "TAP_DEMANDBASE_MAX_POLL_INTERVAL_SECONDS": "0.2",
        "TAP_DEMANDBASE_JOB_RETRY_COOLDOWN_SECONDS": "0.5",
        "TAP_DEMANDBASE_JOB_TIMEOUT_SECONDS": "600.5",
        "TAP_DEMANDBASE_DOWNLOAD_STALL_SECONDS": "30.5",
        "TAP_DEMANDBASE_FLATTENING_ENABLED": "false",
    }
    done = _run_with_env(tmp_path, env, catalog=catalog)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    for name in env:
        setting = name.removeprefix("TAP_DEMANDBASE_").lower()
        assert f"Parsing '{setting}' config from env variable '{name}'" in done.stderr
    posts = [r.body for r in sandbox.requests() if r.method == "POST" and r.server == "api"]
    # window_days=30 over 2024-01-01..2024-02-29 (60 days): two jobs, with the filters given.
    # (created by two job slots at once: in either order)
    assert sorted(p["filters"]["date_range"]["start"] for p in posts) == [
        "2024-01-01",
        "2024-01-31",
    ]
    assert all(p["filters"]["date_range"]["field"] == "start_date" for p in posts)
    assert all(p["filters"]["account_list_id"] == "list-7" for p in posts)


def test_a_number_that_does_not_parse_names_the_variable(sandbox, tmp_path):
    env = {
        "TAP_DEMANDBASE_ACCESS_TOKEN": sandbox.token,
        "TAP_DEMANDBASE_START_DATE": "2024-01-01T00:00:00Z",
        "TAP_DEMANDBASE_POLL_INTERVAL_SECONDS": "fast",
    }
    done = _run_with_env(tmp_path, env, "--discover")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert "TAP_DEMANDBASE_POLL_INTERVAL_SECONDS='fast' must be a number" in line


def test_each_default_is_written_once(sandbox):
    """The schema's defaults are the policies' defaults (they once said 60 and 30); polling
    defaults belong to each dialect, so the schema has none for them (the SDK would fill them
    in and hide the dialect's).
    """
    properties = TapDemandbase.config_jsonschema["properties"]
    assert properties["job_retry_cooldown_seconds"]["default"] == AttemptPolicy().cooldown == 60
    assert properties["max_job_attempts"]["default"] == AttemptPolicy().max_attempts
    for name in ("poll_interval_seconds", "max_poll_interval_seconds", "job_timeout_seconds"):
        assert "default" not in properties[name]
    for dialect in DIALECTS.values():
        with Sandbox(fast_settings(dialect=dialect.name)) as sb:
            config = {"access_token": sb.token, "api_url": sb.api_url, "api_dialect": dialect.name}
            tap = TapDemandbase(config={**config, "start_date": "2024-01-01T00:00:00Z"})
            assert tap.settings.poll_policy() == dialect.poll_policy


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
