"""Full and incremental syncs through the real CLI against the emulator."""

from __future__ import annotations

import pytest

from tests.support.expected import api_field_types, assert_records_match
from tests.support.tap import ENTITIES, discover, run_tap, select, tap_config

#: The end-to-end promises of a sync run the installed command.
pytestmark = pytest.mark.cli

REPLICATION_KEYS = {entity: "last_modified_date" for entity in ENTITIES} | {
    "activities": "activity_date"
}


def test_sync_with_a_catalog_does_not_call_entities_again(sandbox, tmp_path):
    config = tap_config(sandbox)
    catalog = select(discover(tmp_path, config), {"campaigns": None})
    sandbox.reset_log()
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert run.records["campaigns"]
    assert not [r for r in sandbox.requests() if r.path.endswith("/entities")]


def test_account_list_id_and_end_date_reach_the_job_and_filter_rows(sandbox, tmp_path):
    config = tap_config(sandbox, account_list_id="AL-42", end_date="2024-02-15T12:00:00Z")
    catalog = select(discover(tmp_path, config), {"people": None})
    sandbox.reset_log()
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    (created,) = [r for r in sandbox.requests() if r.method == "POST"]
    assert created.body["filters"]["account_list_id"] == "AL-42"
    assert created.body["filters"]["date_range"]["end"] == "2024-02-15"
    rows = sandbox.expected_rows(
        "people",
        date_field="last_modified_date",
        start="2024-01-01",
        end="2024-02-15",
        account_list_id="AL-42",
    )
    assert 0 < len(rows) < 90
    assert_records_match("people", run.records["people"], rows, api_field_types(sandbox)["people"])


def test_custom_replication_key_filters_and_bookmarks_on_that_field(sandbox, tmp_path):
    config = tap_config(sandbox, replication_keys={"opportunities": "close_date"})
    catalog = select(discover(tmp_path, config), {"opportunities": None})
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    (created,) = [r for r in sandbox.requests() if r.method == "POST"]
    assert created.body["filters"]["date_range"]["field"] == "close_date"
    bookmark = run.last_state["bookmarks"]["opportunities"]
    assert bookmark["replication_key"] == "close_date"
    dates = [r["close_date"] for r in run.records["opportunities"] if r["close_date"]]
    assert bookmark["replication_key_value"] == max(dates)


def test_direct_200_downloads_work_too(sandbox, tmp_path):
    sandbox.settings.redirect_downloads = False
    config = tap_config(sandbox)
    catalog = select(discover(tmp_path, config), {"accounts": None})
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert len(run.records["accounts"]) == 120
    assert not [r for r in sandbox.requests() if r.server == "files"]
