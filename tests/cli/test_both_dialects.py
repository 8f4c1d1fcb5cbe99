"""The CLI's promises, each run against an emulator of every API dialect (``dialect_case``):
the published contract (``export_v1``) and Demandbase's production API (``uapi``).

Expectations come from the emulator (its generator, its request validation, its request log),
never from the tap's code; ``tests/support/dialect_cases.py`` says what differs between dialects.
"""

from __future__ import annotations

import datetime
import itertools
from collections import defaultdict
from typing import Any

import pendulum

from tests.support.dialect_cases import END_DAY, START_DAY, DialectCase
from tests.support.expected import EXPECTED_SCHEMA, assert_records_match
from tests.support.tap import LiveTap, discover, ledger_of, run_tap, select


def _metadata(entry: dict[str, Any]) -> dict[tuple[str, ...], dict[str, Any]]:
    return {tuple(m["breadcrumb"]): m["metadata"] for m in entry["metadata"]}


def _assert_stream(case: DialectCase, stream: str, records: list[Any], **window: Any) -> None:
    rows = case.expected_rows(stream, **window)
    assert rows, stream
    key = case.primary_key(stream)
    assert_records_match(stream, records, rows, case.field_types(stream), key=key)


def _days(first: str, last: str) -> int:
    return (datetime.date.fromisoformat(last) - datetime.date.fromisoformat(first)).days + 1


def test_discovery_lists_streams_with_typed_schemas_keys_and_api_names(dialect_case, tmp_path):
    case = dialect_case
    catalog = discover(tmp_path, case.config())
    entries = {entry["tap_stream_id"]: entry for entry in catalog["streams"]}
    assert sorted(entries) == sorted(case.streams)
    for stream, entry in entries.items():
        types = case.field_types(stream)
        properties = entry["schema"]["properties"]
        assert sorted(properties) == sorted(types), stream
        for name, api_type in types.items():
            expected = EXPECTED_SCHEMA.get(api_type.lower(), {"type": ["string", "null"]})
            got = {k: v for k, v in properties[name].items() if k in ("type", "format")}
            assert got == expected, f"{stream}.{name} ({api_type})"
        assert entry["key_properties"] == [case.primary_key(stream)]
        key = case.replication_key(stream)
        assert entry.get("replication_key") == key, stream
        assert entry["replication_method"] == ("INCREMENTAL" if key else "FULL_TABLE")
        metadata = _metadata(entry)
        for name in properties:
            api_name = metadata[("properties", name)].get("api-name")
            if case.name == "uapi":  # kept for job requests and result headers
                assert case.property_of(stream, api_name) == name
            else:
                assert api_name is None


def test_full_sync_matches_the_emulator_value_by_value(dialect_case, tmp_path):
    case = dialect_case
    run = run_tap(tmp_path, case.config())
    assert run.returncode == 0, run.stderr
    assert sorted(run.records) == sorted(case.streams)
    for stream in case.streams:
        _assert_stream(case, stream, run.records[stream])
    bookmarks = run.last_state["bookmarks"]
    jobs: dict[str, list[Any]] = defaultdict(list)
    for job in case.created_jobs():
        jobs[job.stream].append(job)
    for stream in case.streams:
        key = case.replication_key(stream)
        assert {job.fields for job in jobs[stream]} == {frozenset(case.field_types(stream))}
        assert {job.date_field for job in jobs[stream]} == {key}
        if key is None:  # FULL_TABLE: one job, no date condition, no bookmark
            assert [(j.start, j.end) for j in jobs[stream]] == [(None, None)]
            assert "replication_key_value" not in bookmarks.get(stream, {})
            continue
        windows = [(job.start, job.end) for job in jobs[stream]]
        assert windows[0][0] == START_DAY and windows[-1][1] == END_DAY, stream
        for (_, end), (start, _) in itertools.pairwise(windows):
            assert _days(end, start) == 2  # contiguous: each day in exactly one window
        longest = 90 if (case.name, stream) == ("uapi", "activities") else 366
        assert all(_days(start, end) <= longest for start, end in windows), windows
        emitted_max = max(pendulum.parse(r[key]) for r in run.records[stream] if r[key])
        assert bookmarks[stream]["replication_key"] == key
        assert pendulum.parse(bookmarks[stream]["replication_key_value"]) == emitted_max
    if case.name == "uapi":
        assert len(jobs["activities"]) == 2  # 2024-01-01..2024-04-30: 121 days, 90 at most


def test_second_run_starts_on_the_bookmark_day(dialect_case, tmp_path):
    case = dialect_case
    first = run_tap(tmp_path, case.config())
    assert first.returncode == 0, first.stderr
    state = first.last_state
    case.sb.reset_log()
    second = run_tap(tmp_path, case.config(), state=state)
    assert second.returncode == 0, second.stderr
    for stream in case.streams:
        if case.replication_key(stream) is None:  # FULL_TABLE: a new snapshot, every row again
            _assert_stream(case, stream, second.records[stream], start=None)
            continue
        bookmark = state["bookmarks"][stream]["replication_key_value"]
        day = pendulum.parse(bookmark).in_tz("UTC").to_date_string()
        # Windows finished for good (all but the run's last) are not exported again.
        done = state["bookmarks"][stream].get("windows_done", {}).get("through")
        if done is not None and done >= day:
            day = (datetime.date.fromisoformat(done) + datetime.timedelta(days=1)).isoformat()
        records = second.records.get(stream, [])
        assert len(records) < len(first.records[stream]), stream
        rows = case.expected_rows(stream, start=day)
        assert len(records) == len(rows), stream
        if rows:
            _assert_stream(case, stream, records, start=day)
        starts = [job.start for job in case.created_jobs() if job.stream == stream]
        assert starts[0] == day, stream
        kept = second.last_state["bookmarks"][stream]["replication_key_value"]
        assert kept == bookmark, stream  # no newer rows: the bookmark stays where it was
    fresh = [job.stream for job in case.created_jobs()]
    assert sorted(set(fresh)) == sorted(case.streams)  # every stream exported anew


def test_selected_fields_reach_the_job_request_and_only_they_are_emitted(dialect_case, tmp_path):
    case = dialect_case
    config = case.config()
    catalog = select(discover(tmp_path, config), {"accounts": ["name", "employee_count"]})
    case.sb.reset_log()
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert list(run.records) == ["accounts"]
    if case.name == "uapi":  # the catalog carries the API names: no discovery call in the sync
        assert not [r for r in case.api_requests() if r.path.endswith("/fields")]
    fields = {"id", "last_modified_date", "name", "employee_count"}
    (job,) = case.created_jobs()
    assert job.fields == fields
    rows = case.expected_rows("accounts")
    types = case.field_types("accounts")
    assert_records_match("accounts", run.records["accounts"], rows, types, fields=sorted(fields))


def test_credentials_never_reach_the_download_host_or_a_log(dialect_case, tmp_path):
    case = dialect_case
    run = run_tap(tmp_path, case.config())
    assert run.returncode == 0, run.stderr
    downloads = [r for r in case.sb.requests() if r.server == "files"]
    assert len(downloads) >= len(case.streams)
    assert all(r.status in (200, 206) for r in downloads)
    assert not any(r.has_authorization for r in downloads)
    for secret in case.secrets():
        assert secret not in run.stderr
        assert secret not in run.stdout


def test_a_failed_job_is_one_line_with_its_message(dialect_case, tmp_path):
    case = dialect_case
    config = case.config()
    catalog = select(discover(tmp_path, config), {"accounts": None})
    case.sb.settings.fail_jobs = {"accounts": -1}
    case.sb.reset_log()
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    (line,) = run.error_lines
    assert "failed" in line and "simulated" in line
    assert not run.records
    assert len(case.created_jobs()) == 3  # max_job_attempts, then the error


def test_a_spent_quota_stops_the_run_with_state_kept(dialect_case, tmp_path):
    case = dialect_case
    case.sb.settings.quota_exhausted_after_jobs = 2
    run = run_tap(tmp_path, case.config())
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    (line,) = run.error_lines
    assert "quota" in line and "resets" in line
    # accounts, then activities' first window: the third create is refused, and no other.
    assert sorted(run.records) == ["accounts", "activities"]
    assert run.last_state["bookmarks"]["accounts"]["replication_key_value"]
    creates = [r for r in case.api_requests() if r.method == "POST" and "/auth/" not in r.path]
    assert [r.status for r in creates] == [202, 202, 429]
    if case.name == "uapi":
        assert "429-101" in line
        assert "3 job creates of 60" in run.stderr  # the end-of-run usage line


def test_bad_credentials_are_one_line_without_retries_or_secrets(dialect_case, tmp_path):
    case = dialect_case
    bad = case.bad_credentials()
    run = run_tap(tmp_path, case.config(**bad))
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    (line,) = run.error_lines
    assert "401" in line
    setting = "client_secret" if case.name == "uapi" else "access_token"
    assert setting in line or "access token" in line
    for value in bad.values():
        assert value not in run.stderr
    assert len(case.api_requests()) == 1  # one refused token (or first API) request, no retry


def test_a_token_refused_mid_run_is_renewed_or_stops_with_the_job_kept(dialect_case, tmp_path):
    case = dialect_case
    config = case.config()
    catalog = select(discover(tmp_path, config), {"accounts": None})
    case.sb.settings.processing_seconds = 3.0  # still processing when the token is refused
    live = LiveTap(tmp_path, config, catalog)
    state = live.read_until(lambda m: ledger_of(m) is not None)["value"]
    if case.name == "uapi":
        case.sb.settings.uapi_expire_next_tokens = 1  # the token expires on the next call
    else:
        case.sb.settings.http_errors = {"status": 1}
        case.sb.settings.http_error_status = 401
    assert live.process.wait(timeout=60) == (0 if case.name == "uapi" else 1)
    live.drain()
    log = live.stderr_path.read_text()
    final = [m["value"] for m in live.messages if m["type"] == "STATE"][-1]
    if case.name == "uapi":  # renewed once, the sync goes on
        tokens = [r for r in case.api_requests() if r.path == "/auth/v1/token"]
        assert len(tokens) == 3  # discovery's, the sync's, the renewal
        assert "Renewed the access token" in log
        _assert_stream(case, "accounts", live.records())
    else:  # a static token cannot be renewed: one line, the job kept for the next run
        assert "refused the access token" in log
        assert (
            ledger_of({"type": "STATE", "value": final})["job_id"]
            == ledger_of({"type": "STATE", "value": state})["job_id"]
        )
    for secret in case.secrets():
        assert secret not in log


def test_sigkill_mid_job_then_resume_without_a_new_job(dialect_case, tmp_path):
    case = dialect_case
    config = case.config()
    catalog = select(discover(tmp_path, config), {"accounts": None})
    case.sb.settings.processing_seconds = 2.0
    case.sb.reset_log()
    live = LiveTap(tmp_path, config, catalog)
    state = live.read_until(lambda m: ledger_of(m) is not None)["value"]
    live.process.kill()
    live.process.wait()
    assert len(case.created_jobs()) == 1
    run = run_tap(tmp_path, config, catalog=catalog, state=state)
    assert run.returncode == 0, run.stderr
    assert len(case.created_jobs()) == 1  # jobs created: 1 before the crash, 0 after
    assert "resumed from the state" in run.stderr
    _assert_stream(case, "accounts", run.records["accounts"])
    assert "export_job" not in run.last_state["bookmarks"]["accounts"]


def test_gzip_result_files_are_detected_and_decompressed(dialect_case, tmp_path):
    case = dialect_case
    config = case.config()
    catalog = select(discover(tmp_path, config), {"accounts": None, "people": None})
    case.gzip_results()
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    for stream in ("accounts", "people"):
        _assert_stream(case, stream, run.records[stream])
