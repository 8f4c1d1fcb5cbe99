"""Promises only the production API (``api_dialect: uapi``) has, through the real CLI against the
emulator's uapi dialect: optional streams, the activity window, FULL_TABLE streams, names from
the catalog, jobName re-use, the busy tenant, fresh result URLs, budgets and its error codes.
(The promises every dialect keeps are in ``tests/cli/test_both_dialects.py``.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.dialect_cases import UapiCase, sandbox_for
from tests.support.expected import assert_records_match
from tests.support.tap import discover, run_tap, select


@pytest.fixture
def uapi() -> Iterator[UapiCase]:
    with sandbox_for("uapi") as sb:
        yield UapiCase(sb)


def _catalog(case: UapiCase, tmp_path: Any, config: dict[str, Any], *streams: str) -> Any:
    return select(discover(tmp_path, config), dict.fromkeys(streams))


def _posts(case: UapiCase) -> list[Any]:
    return [r for r in case.api_requests() if r.method == "POST" and r.path.endswith("/job")]


def _info_lines(run: Any, phrase: str) -> list[str]:
    return [line for line in run.stderr.splitlines() if "INFO" in line and phrase in line]


def test_optional_streams_need_their_settings_and_discovery_says_so(uapi, tmp_path):
    config = uapi.config()
    for setting in ("campaign_sources", "campaign_report_type", "creative_report_type"):
        del config[setting]
    del config["buying_group_account_ids"]
    run = run_tap(tmp_path, config, "--discover")
    assert run.returncode == 0, run.stderr
    (line,) = _info_lines(run, "not discovered")
    for setting in ("campaign_sources", "campaign_report_type", "creative_report_type"):
        assert setting in line
    assert "buying_group_account_ids" in line
    catalog = discover(tmp_path, config)
    streams = sorted(e["tap_stream_id"] for e in catalog["streams"])
    assert streams == ["accounts", "activities", "opportunities", "people"]
    fields_calls = [r for r in uapi.api_requests() if r.path.endswith("/fields")]
    assert len(fields_calls) == 2 * 4  # one per stream and discovery
    full_table = run_tap(tmp_path, uapi.config(), "--discover")
    (line,) = _info_lines(full_table, "Stream 'creatives' has no last-modified date field")
    assert "(its date fields: " in line and "created_date" in line
    assert "FULL_TABLE" in line


def test_activities_are_exported_90_days_a_job_whatever_window_days(uapi, tmp_path):
    config = uapi.config(window_days=365, end_date="2024-12-31T00:00:00Z")
    run = run_tap(tmp_path, config, catalog=_catalog(uapi, tmp_path, config, "activities"))
    assert run.returncode == 0, run.stderr
    windows = [(job.start, job.end) for job in uapi.created_jobs()]
    assert windows[0] == ("2024-01-01", "2024-03-30")  # 90 days, both ends included
    assert len(windows) == 5 and windows[-1][1] == "2024-12-31"
    rows = uapi.expected_rows("activities", end="2024-12-31")
    types = uapi.field_types("activities")
    assert_records_match("activities", run.records["activities"], rows, types)


def test_activities_cannot_bookmark_another_field(uapi, tmp_path):
    run = run_tap(tmp_path, uapi.config(replication_keys={"activities": "created_date"}))
    assert run.returncode == 1
    (line,) = run.error_lines
    assert "replication_keys" in line and "activity_date" in line
    assert not _posts(uapi)


def test_a_replication_key_given_by_its_api_name_filters_that_field(uapi, tmp_path):
    config = uapi.config(replication_keys={"opportunities": "{Opportunity}.closeDate"})
    run = run_tap(tmp_path, config, catalog=_catalog(uapi, tmp_path, config, "opportunities"))
    assert run.returncode == 0, run.stderr
    (post,) = _posts(uapi)
    assert {f["field"] for f in post.body["filters"]} == {"{Opportunity}.closeDate"}
    bookmark = run.last_state["bookmarks"]["opportunities"]
    assert bookmark["replication_key"] == "close_date"
    dates = [r["close_date"] for r in run.records["opportunities"] if r["close_date"]]
    assert bookmark["replication_key_value"] == max(dates)


def test_a_catalog_without_api_names_asks_fields_once_per_stream(uapi, tmp_path):
    config = uapi.config()
    catalog = _catalog(uapi, tmp_path, config, "accounts")
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            item["metadata"].pop("api-name", None)
    uapi.sb.reset_log()
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    fields_calls = [r for r in uapi.api_requests() if r.path.endswith("/fields")]
    assert [r.query["entityType"] for r in fields_calls] == ["account"]
    assert _info_lines(run, "does not give the API names")
    assert len(run.records["accounts"]) == 120


def test_a_busy_tenant_is_waited_for_and_each_try_counted(uapi, tmp_path):
    config = uapi.config()
    catalog = _catalog(uapi, tmp_path, config, "accounts")
    uapi.sb.reset()
    uapi.sb.settings.uapi_busy_next_creates = 2
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert [r.status for r in _posts(uapi)] == [429, 429, 202]
    waits = _info_lines(run, "not created yet")
    assert len(waits) == 2 and all("429-102" in line for line in waits)
    assert len(run.records["accounts"]) == 120
    assert "3 job creates of 60" in run.stderr
    assert uapi.sb.usage()["create"] == 3


def test_the_usage_line_counts_what_the_api_counted(uapi, tmp_path):
    uapi.sb.reset()
    run = run_tap(tmp_path, uapi.config())
    assert run.returncode == 0, run.stderr
    counted = uapi.sb.usage()
    (line,) = _info_lines(run, "daily limits")
    assert f"{counted['create']} job creates of 60" in line
    assert f"{counted['status']} status calls of 300" in line
    assert f"{counted['list']} list calls of 1,200" in line
    assert f"{counted['fields']} fields calls of 60" in line
    assert f"{counted['token']} token request(s)" in line
    assert counted["token"] == 1  # one token for the whole run


def test_a_lost_create_answer_is_found_by_its_job_name(uapi, tmp_path):
    config = uapi.config()
    catalog = _catalog(uapi, tmp_path, config, "accounts")
    uapi.sb.reset()
    uapi.sb.settings.lose_create_answers = 1
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert len(_posts(uapi)) == 1  # the job it created is used: no second create
    assert "was lost, but the job it created is listed" in run.stderr
    assert len(run.records["accounts"]) == 120


def test_an_expired_result_url_is_replaced_once_then_the_stream_fails_kept(uapi, tmp_path):
    config = uapi.config()
    catalog = _catalog(uapi, tmp_path, config, "accounts")
    uapi.sb.settings.expire_next_urls = 1
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert len(run.records["accounts"]) == 120
    files = [r.status for r in uapi.sb.requests() if r.server == "files"]
    assert files[0] == 403 and files.count(403) == 1

    uapi.sb.reset()
    uapi.sb.settings.expire_next_urls = 10  # the fresh URLs are refused too
    failed = run_tap(tmp_path, config, catalog=catalog)
    assert failed.returncode == 1
    (line,) = failed.error_lines
    assert "refused" in line and "Signature" not in line
    ledger = failed.last_state["bookmarks"]["accounts"]["export_job"]
    assert ledger["job_id"] == uapi.sb.jobs()[0]["jobId"]
    statuses = [r for r in uapi.api_requests() if r.method == "GET" and "/job/" in r.path]
    assert len(statuses) >= 2  # polled, then one call for fresh URLs


def test_a_ledger_job_the_api_no_longer_knows_is_exported_anew(uapi, tmp_path):
    config = uapi.config()
    catalog = _catalog(uapi, tmp_path, config, "accounts")
    first = run_tap(tmp_path, config, catalog=catalog)
    state = first.last_state
    state["bookmarks"]["accounts"]["export_job"] = {
        "job_id": "00000000-0000-0000-0000-000000000000",
        "entity_type": "accounts",
        "fields": sorted(uapi.field_types("accounts")),
        "window": {"field": "last_modified_date", "start": "2024-01-01", "end": "2024-04-30"},
        "created_at": "2024-04-30T10:00:00+00:00",
        "parts_done": {},
    }
    uapi.sb.reset()
    run = run_tap(tmp_path, config, catalog=catalog, state=state)
    assert run.returncode == 0, run.stderr
    assert "no longer exists; exporting anew" in run.stderr
    assert len(_posts(uapi)) == 1


def test_unknown_statuses_are_waited_on_and_nulls_tolerated(uapi, tmp_path):
    config = uapi.config()
    catalog = _catalog(uapi, tmp_path, config, "accounts")
    uapi.sb.settings.uapi_status_names = {"processing": "running"}
    uapi.sb.settings.uapi_nulls = True
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if "status 'running'" in line]
    assert len(warnings) == 1 and "WARN" in warnings[0]
    assert len(run.records["accounts"]) == 120


def test_colliding_field_names_keep_the_streams_own_field(uapi, tmp_path):
    uapi.sb.settings.uapi_alias_fields = {"activity": {"{Activity}.accountId": "{Account}.id"}}
    config = uapi.config()
    run = run_tap(tmp_path, config, "--discover")
    assert run.returncode == 0, run.stderr
    (warning,) = [line for line in run.stderr.splitlines() if "both map to" in line]
    assert "account__id" in warning
    catalog = select(discover(tmp_path, config), {"activities": None})
    (entry,) = [e for e in catalog["streams"] if e["tap_stream_id"] == "activities"]
    names = {
        tuple(m["breadcrumb"])[-1]: m["metadata"].get("api-name")
        for m in entry["metadata"]
        if m["breadcrumb"]
    }
    assert names["account_id"] == "{Activity}.accountId"
    assert names["account__id"] == "{Account}.id"
    sync = run_tap(tmp_path, config, catalog=catalog)
    assert sync.returncode == 0, sync.stderr
    records = sync.records["activities"]
    assert records and all(r["account_id"] == r["account__id"] for r in records)


def test_a_stale_catalog_field_is_dropped_and_says_rediscover(uapi, tmp_path):
    config = uapi.config()
    catalog = _catalog(uapi, tmp_path, config, "accounts")
    uapi.sb.settings.uapi_field_types = {"{Account}.phone": "omit"}  # gone from the tenant
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    (line,) = [line for line in run.stderr.splitlines() if "WARNING" in line]
    assert "{Account}.phone" in line and "--discover" in line
    assert [r.status for r in _posts(uapi)] == [400, 202]
    assert all(r["phone"] is None for r in run.records["accounts"])


def test_refused_account_ids_are_explained(uapi, tmp_path):
    config = uapi.config()
    catalog = _catalog(uapi, tmp_path, config, "buying_groups")
    uapi.sb.settings.uapi_accept_account_ids = False
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 1
    (line,) = run.error_lines
    assert "400-147" in line and "buying_group_account_ids" in line


def test_account_ids_are_chunked_by_10000_per_job(uapi, tmp_path):
    # The accounts of the other tests (1..60), then ids of no account: 10,001 in all.
    ids = [str(n) for n in (*range(1, 61), *range(1000, 10_941))]
    config = uapi.config(buying_group_account_ids=ids)
    run = run_tap(tmp_path, config, catalog=_catalog(uapi, tmp_path, config, "buying_groups"))
    assert run.returncode == 0, run.stderr
    sizes = [len(r.body["accountIds"]) for r in _posts(uapi)]
    assert sizes == [10_000, 1]
    expected = uapi.expected_rows("buying_groups")  # accounts 1..60, all in the first chunk
    assert sorted(r["id"] for r in run.records["buying_groups"]) == sorted(
        row["id"] for row in expected
    )


def test_a_permission_refusal_names_the_data_export_permission(uapi, tmp_path):
    config = uapi.config()
    catalog = _catalog(uapi, tmp_path, config, "accounts")
    uapi.sb.settings.http_errors = {"create": 1}
    uapi.sb.settings.http_error_status = 403
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 1
    (line,) = run.error_lines
    assert "403 403-100" in line and "lacks the Data Export permission" in line


def test_a_job_past_the_timeout_is_not_cancelled_and_stays_in_the_state(uapi, tmp_path):
    config = uapi.config(job_timeout_seconds=0.5)
    catalog = _catalog(uapi, tmp_path, config, "accounts")
    uapi.sb.settings.processing_seconds = 30
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 1
    (line,) = run.error_lines
    assert "cannot cancel it, so it stays in the state" in line
    assert run.last_state["bookmarks"]["accounts"]["export_job"]["job_id"]
    assert not [r for r in uapi.api_requests() if r.method == "DELETE"]


@pytest.mark.parametrize(
    ("overrides", "phrase"),
    [
        ({"max_concurrent_jobs": 2}, "max_concurrent_jobs=2"),
        ({"client_id": None, "client_secret": None}, "client_id"),
        ({"campaign_sources": ["tv"]}, "campaign_sources"),
    ],
)
def test_bad_uapi_settings_are_one_line_and_no_job(uapi, tmp_path, overrides, phrase):
    config = {k: v for k, v in uapi.config(**overrides).items() if v is not None}
    run = run_tap(tmp_path, config)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    (line,) = run.error_lines
    assert phrase in line
    assert not _posts(uapi)


@pytest.mark.parametrize("refusal", ["quota", "bad_request"])
def test_a_chunk_refused_at_create_is_exported_by_the_next_run(uapi, tmp_path, refusal):
    """Chunk 1 (accounts 1..30 and ids of no account) is exported; the create of chunk 2
    (accounts 31..120) is refused. The bookmark must not pass the window: the next run exports
    chunk 2 over the whole window, and chunk 1 not again.
    """
    uapi.sb.settings.rows = {**uapi.sb.settings.rows, "buying_groups": 200}
    ids = [str(n) for n in (*range(1, 31), *range(1000, 10_970), *range(31, 121))]
    config = uapi.config(buying_group_account_ids=ids)
    catalog = _catalog(uapi, tmp_path, config, "buying_groups")
    if refusal == "quota":
        uapi.sb.settings.quota_exhausted_after_jobs = 1  # 429-101
    else:
        uapi.sb.settings.http_errors_after = {"create": 1}
        uapi.sb.settings.http_errors = {"create": 1}
        uapi.sb.settings.http_error_status = 400
    first = run_tap(tmp_path, config, catalog=catalog)
    assert first.returncode == 1
    assert [len(r.body["accountIds"]) for r in _posts(uapi)] == [10_000, 90]
    assert "replication_key_value" not in first.last_state["bookmarks"]["buying_groups"]
    uapi.sb.settings.quota_exhausted_after_jobs = None
    second = run_tap(tmp_path, config, catalog=catalog, state=first.last_state)
    assert second.returncode == 0, second.stderr
    assert [len(r.body["accountIds"]) for r in _posts(uapi)] == [10_000, 90, 90]
    accounts = [{r["account_id"] for r in run.records["buying_groups"]} for run in (first, second)]
    assert accounts[0] <= {f"acc-{n:07d}" for n in range(1, 31)}  # chunk 1's, in run 1 only
    assert accounts[1] <= {f"acc-{n:07d}" for n in range(31, 121)}  # chunk 2's, in run 2 only
    delivered = [r["id"] for run in (first, second) for r in run.records["buying_groups"]]
    expected = uapi.expected_rows("buying_groups", account_ids=[str(n) for n in range(1, 121)])
    assert sorted(delivered) == sorted(row["id"] for row in expected)
    assert second.last_state["bookmarks"]["buying_groups"]["replication_key_value"]
