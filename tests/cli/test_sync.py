"""Full and incremental syncs through the real CLI against the emulator."""

from __future__ import annotations

import pendulum
import pytest

from tests.support.expected import api_field_types, assert_records_match
from tests.support.tap import ENTITIES, discover, run_tap, select, tap_config

#: The end-to-end promises of a sync run the installed command.
pytestmark = pytest.mark.cli

REPLICATION_KEYS = {entity: "last_modified_date" for entity in ENTITIES} | {
    "activities": "activity_date"
}


def test_full_sync_of_all_six_streams_matches_the_emulator_value_by_value(sandbox, tmp_path):
    run = run_tap(tmp_path, tap_config(sandbox))
    assert run.returncode == 0, run.stderr
    types = api_field_types(sandbox)
    assert sorted(run.records) == sorted(ENTITIES)
    for entity in ENTITIES:
        rows = sandbox.expected_rows(
            entity,
            date_field=REPLICATION_KEYS[entity],
            start="2024-01-01",
            end=pendulum.now("UTC").to_date_string(),
        )
        assert rows, entity
        assert_records_match(entity, run.records[entity], rows, types[entity])
    bookmarks = run.last_state["bookmarks"]
    for entity in ENTITIES:
        key = REPLICATION_KEYS[entity]
        assert bookmarks[entity]["replication_key"] == key
        emitted_max = max(pendulum.parse(r[key]) for r in run.records[entity])
        assert pendulum.parse(bookmarks[entity]["replication_key_value"]) == emitted_max
    # Every job asked for exactly the stream's fields and its date window.
    created = [r for r in sandbox.requests() if r.method == "POST" and r.server == "api"]
    assert sorted(r.body["entity_type"] for r in created) == sorted(ENTITIES)
    for request in created:
        entity = request.body["entity_type"]
        assert sorted(request.body["fields"]) == sorted(types[entity])
        date_range = request.body["filters"]["date_range"]
        assert date_range["field"] == REPLICATION_KEYS[entity]
        assert date_range["start"] == "2024-01-01"
        assert date_range["end"] == pendulum.now("UTC").to_date_string()


def test_second_run_starts_on_the_bookmark_day_and_rereads_only_that_day(sandbox, tmp_path):
    first = run_tap(tmp_path, tap_config(sandbox))
    assert first.returncode == 0, first.stderr
    state = first.last_state
    sandbox.reset_log()

    second = run_tap(tmp_path, tap_config(sandbox), state=state)
    assert second.returncode == 0, second.stderr
    types = api_field_types(sandbox)
    for entity in ENTITIES:
        key = REPLICATION_KEYS[entity]
        bookmark = pendulum.parse(state["bookmarks"][entity]["replication_key_value"])
        day = bookmark.in_tz("UTC").to_date_string()
        rows = sandbox.expected_rows(
            entity, date_field=key, start=day, end=pendulum.now("UTC").to_date_string()
        )
        assert 0 < len(rows) < len(first.records[entity]), entity
        assert_records_match(entity, second.records.get(entity, []), rows, types[entity])
        assert (
            second.last_state["bookmarks"][entity]["replication_key_value"]
            == (state["bookmarks"][entity]["replication_key_value"])
        )
    starts = {
        r.body["entity_type"]: r.body["filters"]["date_range"]["start"]
        for r in sandbox.requests()
        if r.method == "POST"
    }
    for entity in ENTITIES:
        bookmark = state["bookmarks"][entity]["replication_key_value"]
        assert starts[entity] == pendulum.parse(bookmark).in_tz("UTC").to_date_string()


def test_selected_fields_reach_the_job_request_and_only_they_are_emitted(sandbox, tmp_path):
    config = tap_config(sandbox)
    catalog = select(discover(tmp_path, config), {"accounts": ["name", "employee_count"]})
    sandbox.reset_log()
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert list(run.records) == ["accounts"]
    fields = ["id", "last_modified_date", "name", "employee_count"]
    created = [r for r in sandbox.requests() if r.method == "POST"]
    assert len(created) == 1
    assert sorted(created[0].body["fields"]) == sorted(fields)
    rows = sandbox.expected_rows(
        "accounts",
        date_field="last_modified_date",
        start="2024-01-01",
        end=pendulum.now("UTC").to_date_string(),
    )
    types = api_field_types(sandbox)["accounts"]
    assert_records_match("accounts", run.records["accounts"], rows, types, fields=fields)


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


def test_the_token_never_reaches_the_download_host(sandbox, tmp_path):
    run = run_tap(tmp_path, tap_config(sandbox))
    assert run.returncode == 0, run.stderr
    downloads = [r for r in sandbox.requests() if r.server == "files"]
    assert len(downloads) >= 6
    assert all(r.status in (200, 206) for r in downloads)
    assert not any(r.has_authorization for r in downloads)
    api_calls = [r for r in sandbox.requests() if r.server == "api"]
    assert all(r.has_authorization for r in api_calls if not r.path.startswith("/_sandbox"))
    assert sandbox.token not in run.stderr


def test_direct_200_downloads_work_too(sandbox, tmp_path):
    sandbox.settings.redirect_downloads = False
    config = tap_config(sandbox)
    catalog = select(discover(tmp_path, config), {"accounts": None})
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert len(run.records["accounts"]) == 120
    assert not [r for r in sandbox.requests() if r.server == "files"]
