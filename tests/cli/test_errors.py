"""Bad input and failures end with one clear line, a non-zero exit, and state kept."""

from __future__ import annotations

import pytest

from tests.support.tap import discover, run_tap, select, tap_config


def _no_traceback(run) -> None:
    assert "Traceback" not in run.stderr, run.stderr


def _posts(sandbox):
    return [r for r in sandbox.requests() if r.method == "POST" and r.server == "api"]


@pytest.mark.parametrize(
    ("overrides", "phrase"),
    [
        ({"start_date": "the first of May"}, "start_date"),
        ({"end_date": "2023-01-01T00:00:00Z"}, "end_date"),
        ({"replication_keys": {"widgets": "last_modified_date"}}, "unknown stream(s) widgets"),
        ({"replication_keys": {"accounts": "name"}}, "not a date field"),
        ({"replication_keys": {"accounts": "nope"}}, "replication_keys.accounts"),
        ({"poll_interval_seconds": 0}, "poll_interval_seconds"),
    ],
)
def test_bad_config_is_one_line_and_no_job(sandbox, tmp_path, overrides, phrase):
    run = run_tap(tmp_path, tap_config(sandbox, **overrides))
    assert run.returncode != 0
    _no_traceback(run)
    assert any(phrase in line for line in run.error_lines), run.stderr
    assert not _posts(sandbox)
    assert not run.records


def test_transient_5xx_are_retried(sandbox, tmp_path):
    sandbox.settings.http_errors = {"create": 1, "status": 2, "download": 1, "file": 1}
    config = tap_config(sandbox)
    catalog = select(discover(tmp_path, config), {"campaigns": None})
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert len(run.records["campaigns"]) == 20
    assert len(_posts(sandbox)) == 2  # one refused with 503, one created


@pytest.mark.parametrize(
    ("defect", "field_named"),
    [
        ("ragged", False),
        ("bad_integer", True),
        ("bad_boolean", True),
        ("bad_date", True),
        ("bad_utf8", False),
        ("no_header", False),
    ],
)
def test_malformed_csv_is_one_line_naming_part_line_and_field(
    sandbox, tmp_path, defect, field_named
):
    sandbox.settings.malformed = {"opportunities": defect}
    config = tap_config(sandbox)
    catalog = select(discover(tmp_path, config), {"accounts": None, "opportunities": None})
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 1
    _no_traceback(run)
    (line,) = run.error_lines
    assert "opportunities: part 1, line " in line
    assert (", field '" in line) is field_named
    # accounts finished before opportunities failed: its records and bookmark are kept.
    assert len(run.records["accounts"]) == 120
    bookmarks = run.last_state["bookmarks"]
    assert bookmarks["accounts"]["replication_key_value"]
    assert "export_job" not in bookmarks["accounts"]
    # opportunities: no bookmark; its job stays in the ledger, no part of it counted as done.
    assert "replication_key_value" not in bookmarks["opportunities"]
    assert bookmarks["opportunities"]["export_job"]["parts_done"] == {}


def test_api_400_is_one_line_with_the_apis_message(sandbox, tmp_path):
    config = tap_config(sandbox)
    catalog = select(discover(tmp_path, config), {"campaigns": None})
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == "campaigns")
    entry["tap_stream_id"] = entry["stream"] = "bogus_entity"  # a field it lacks is dropped
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 1
    _no_traceback(run)
    (line,) = run.error_lines
    assert "rejected creating the bogus_entity export job (400)" in line
    assert "bogus_entity" in line
