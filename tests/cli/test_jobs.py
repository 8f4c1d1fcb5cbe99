"""Job life, ledger, re-use and resume when the API misbehaves.

Each scenario runs the real CLI (or the real client) against the emulator, with a fault knob
making the API misbehave, and asserts what was emitted, what state was left and which jobs the
emulator saw created.
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

import pytest
import requests

from tap_demandbase.dialects import ConnectOptions, export_v1
from tap_demandbase.engine.clock import SystemClock
from tap_demandbase.engine.jobs import (
    NOT_FOUND_AFTER_CREATE_WAITS,
    REUSE_MAX_AGE,
    ExportJob,
)
from tap_demandbase.errors import ApiRequestError
from tap_demandbase.model import JobSpec, PollPolicy
from tap_demandbase.sandbox import Sandbox
from tests.support.expected import api_field_types, assert_records_match
from tests.support.fakes import FakeClock
from tests.support.tap import discover, fast_settings, run_tap, select, tap_config

START = "2024-01-01"
END = "2024-03-31"  # fixed: the windows do not depend on the day the suite runs
END_DATE = f"{END}T00:00:00Z"


# --- helpers ------------------------------------------------------------------------------


def _headers(sb) -> dict[str, str]:
    return {"Authorization": f"Bearer {sb.token}"}


def _fields(sb, entity: str) -> list[str]:
    return list(api_field_types(sb)[entity])


def _create(sb, entity: str, fields: list[str], start=START, end=END) -> dict[str, Any]:
    """Create a job over HTTP, as a run that died before recording it would have."""
    date_field = "activity_date" if entity == "activities" else "last_modified_date"
    body = {
        "entity_type": entity,
        "fields": fields,
        "filters": {"date_range": {"field": date_field, "start": start, "end": end}},
    }
    answer = requests.post(
        f"{sb.api_url}/export/v1/jobs", json=body, headers=_headers(sb), timeout=10
    )
    assert answer.status_code == 202, answer.text
    return answer.json()


def _wait(sb, job_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        job = next(j for j in sb.jobs() if j["id"] == job_id)
        if job["status"] == status:
            return job
        time.sleep(0.05)
    raise AssertionError(f"{job_id} never reported {status}")


def _ledger_state(job: dict[str, Any], fields, parts_done: Any, stream="accounts", **extra):
    entry = {
        "job_id": job["id"],
        "entity_type": stream,
        "fields": list(fields),
        "window": {"field": "last_modified_date", "start": START, "end": END},
        "account_list_id": None,
        "created_at": job.get("created_at") or "",
        "parts_done": parts_done,
        "max_replication_value": None,
        **extra,
    }
    return {"bookmarks": {stream: {"export_job": entry}}}


def _posts(sb) -> list[Any]:
    return [r for r in sb.requests() if r.server == "api" and r.method == "POST"]


def _downloads(sb) -> list[Any]:
    return [r for r in sb.requests() if r.path.endswith("/download")]


def _catalog(tmp_path, sb, streams=None):
    config = tap_config(sb, end_date=END_DATE)
    return config, select(discover(tmp_path, config), streams or {"accounts": None})


def _assert_all_accounts(sb, records, start=START, end=END):
    rows = sb.expected_rows("accounts", date_field="last_modified_date", start=start, end=end)
    assert_records_match("accounts", records, rows, api_field_types(sb)["accounts"])


def _no_traceback(run) -> None:
    assert "Traceback" not in run.stderr, run.stderr


def _bookmark(run, stream="accounts") -> dict[str, Any]:
    return run.last_state.get("bookmarks", {}).get(stream, {})


# --- 1. rows lost after a resume ----------------------------------------------------------


def test_an_inconsistent_result_is_exported_anew_by_the_next_run(sandbox, tmp_path):
    config, catalog = _catalog(tmp_path, sandbox)
    sandbox.settings.job_json_patch = {"file_parts": 2}  # 3 parts really: part 3 goes missing
    first = run_tap(tmp_path, config, catalog=catalog)
    assert first.returncode == 1
    _no_traceback(first)
    (line,) = first.error_lines
    assert "the parts held 80 rows but the job reported record_count=120" in line
    assert "replication_key_value" not in _bookmark(first)

    sandbox.settings.job_json_patch = {}
    second = run_tap(tmp_path, config, catalog=catalog, state=first.last_state)
    assert second.returncode == 0, second.stderr
    _assert_all_accounts(sandbox, second.records.get("accounts", []))
    assert len(_posts(sandbox)) == 2  # a new job for the window, not the broken one again
    assert "delivered an inconsistent result" in second.stderr
    assert _bookmark(second)["replication_key_value"]
    assert "export_job" not in _bookmark(second)
    assert _bookmark(first)["export_job"]["inconsistent"]


def test_a_resumed_job_counts_the_rows_of_parts_emitted_by_earlier_runs(sandbox, tmp_path):
    config, catalog = _catalog(tmp_path, sandbox)
    sandbox.settings.record_count_offset = 1  # this job says 121 rows; its parts hold 120
    job = _wait(
        sandbox, _create(sandbox, "accounts", _fields(sandbox, "accounts"))["id"], "completed"
    )
    sandbox.settings.record_count_offset = 0
    state = _ledger_state(job, _fields(sandbox, "accounts"), {"1": 40})

    resumed = run_tap(tmp_path, config, catalog=catalog, state=state)
    assert resumed.returncode == 1
    _no_traceback(resumed)
    assert len(resumed.records["accounts"]) == 80  # parts 2 and 3
    (line,) = resumed.error_lines
    assert "the parts held 120 rows but the job reported record_count=121" in line
    assert "replication_key_value" not in _bookmark(resumed)

    again = run_tap(tmp_path, config, catalog=catalog, state=resumed.last_state)
    assert again.returncode == 0, again.stderr
    assert len(_posts(sandbox)) == 2  # the one made here, then a new one for the window
    _assert_all_accounts(sandbox, again.records["accounts"])


def test_a_ledger_of_an_older_version_with_a_plain_list_of_parts_still_resumes(sandbox, tmp_path):
    config, catalog = _catalog(tmp_path, sandbox)
    job = _wait(
        sandbox, _create(sandbox, "accounts", _fields(sandbox, "accounts"))["id"], "completed"
    )
    state = _ledger_state(job, _fields(sandbox, "accounts"), [1])
    run = run_tap(tmp_path, config, catalog=catalog, state=state)
    assert run.returncode == 0, run.stderr
    assert len(run.records["accounts"]) == 80
    assert len(_posts(sandbox)) == 1
    assert "were not counted" in run.stderr


# --- 2. a resumed job emits properties deselected since --------------------------------------


def test_a_resumed_job_drops_columns_deselected_or_removed_since(tmp_path):
    with Sandbox(fast_settings()) as sb:
        config = tap_config(sb, end_date=END_DATE)
        everything = _fields(sb, "people")
        catalog = select(
            discover(tmp_path, config), {"people": [f for f in everything if f != "email"]}
        )
        entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == "people")
        del entry["schema"]["properties"]["phone"]  # a field no longer in the schema at all
        entry["metadata"] = [m for m in entry["metadata"] if m["breadcrumb"][-1:] != ["phone"]]
        job = _wait(sb, _create(sb, "people", everything)["id"], "completed")
        state = _ledger_state(job, everything, {}, stream="people")

        run = run_tap(tmp_path, config, catalog=catalog, state=state)
        assert run.returncode == 0, run.stderr
        _no_traceback(run)
        assert len(_posts(sb)) == 1  # the ledger's job was used
        records = run.records["people"]
        rows = sb.expected_rows("people", date_field="last_modified_date", start=START, end=END)
        assert len(records) == len(rows) > 0
        assert not any("email" in r or "phone" in r for r in records)
        assert all("first_name" in r for r in records)


def test_a_ledger_job_lacking_a_selected_field_is_replaced(sandbox, tmp_path):
    config, catalog = _catalog(tmp_path, sandbox)
    fields = [f for f in _fields(sandbox, "accounts") if f != "domain"]
    job = _wait(sandbox, _create(sandbox, "accounts", fields)["id"], "completed")
    run = run_tap(tmp_path, config, catalog=catalog, state=_ledger_state(job, fields, {}))
    assert run.returncode == 0, run.stderr
    _assert_all_accounts(sandbox, run.records["accounts"])
    assert len(_posts(sandbox)) == 2
    assert "lacks the now selected field(s) domain" in run.stderr


# --- 4. stale data from a re-used job -------------------------------------------------------


def test_a_later_run_the_same_day_does_not_reuse_the_job_of_an_earlier_run(sandbox, tmp_path):
    config, catalog = _catalog(tmp_path, sandbox)
    first = run_tap(tmp_path, config, catalog=catalog)
    second = run_tap(tmp_path, config, catalog=catalog, state=first.last_state)
    assert second.returncode == 0, second.stderr
    windows = [r.body["filters"]["date_range"] for r in _posts(sandbox)]
    assert windows[1]["start"] > START  # from the bookmark's day
    third = run_tap(tmp_path, config, catalog=catalog, state=second.last_state)
    assert third.returncode == 0, third.stderr
    assert "re-used: an equivalent job already exists" not in third.stderr
    posts = _posts(sandbox)
    assert len(posts) == 3  # the third run's window equals the second's, yet a new job
    assert posts[2].body == posts[1].body
    assert _bookmark(second)["last_job_created_at"]


def test_a_job_older_than_the_reuse_age_is_not_reused(sandbox, tmp_path):
    config, catalog = _catalog(tmp_path, sandbox)
    old = (
        datetime.datetime.now(datetime.timezone.utc) - REUSE_MAX_AGE - datetime.timedelta(minutes=5)
    )
    sandbox.settings.job_json_patch = {"created_at": old.strftime("%Y-%m-%dT%H:%M:%SZ")}
    lost = _wait(
        sandbox, _create(sandbox, "accounts", _fields(sandbox, "accounts"))["id"], "completed"
    )
    sandbox.settings.job_json_patch = {}
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert lost["id"] not in run.stderr
    assert len(_posts(sandbox)) == 2
    _assert_all_accounts(sandbox, run.records["accounts"])


# --- 9. a create that reaches the server but whose answer is lost ------------------------


@pytest.mark.parametrize(("answer", "times"), [("error", 1), ("html", 1), ("error", -1)])
def test_a_create_whose_answer_is_lost_uses_the_job_it_created(sandbox, tmp_path, answer, times):
    config, catalog = _catalog(tmp_path, sandbox)
    sandbox.settings.lose_create_answers = times
    sandbox.settings.lost_create_answer = answer
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert len(_posts(sandbox)) == 1
    assert "was lost, but the job it created is listed: using job job-000001" in run.stderr
    _assert_all_accounts(sandbox, run.records["accounts"])


# --- 10. empty windows --------------------------------------------------------------------


@pytest.mark.parametrize("patch", [{}, {"file_parts": None}])
def test_an_empty_result_without_parts_is_success(sandbox, tmp_path, patch):
    config = tap_config(sandbox, start_date="2025-01-01T00:00:00Z", end_date="2025-01-31T00:00:00Z")
    catalog = select(discover(tmp_path, config), {"accounts": None})
    sandbox.settings.empty_results_have_parts = False
    sandbox.settings.job_json_patch = patch
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert sandbox.jobs()[0]["record_count"] == 0
    assert not _downloads(sandbox)
    assert "accounts" not in run.records
    assert "export_job" not in _bookmark(run)


def test_finished_windows_empty_or_not_are_not_exported_again(sandbox, tmp_path):
    config = tap_config(sandbox, window_days=30, end_date="2024-06-30T00:00:00Z")
    catalog = select(discover(tmp_path, config), {"accounts": None})
    first = run_tap(tmp_path, config, catalog=catalog)
    assert first.returncode == 0, first.stderr
    assert len(_posts(sandbox)) == 7  # Jan 1 .. Jun 30 in 30-day windows; data ends in March
    _assert_all_accounts(sandbox, first.records["accounts"], end="2024-06-30")

    sandbox.reset_log()
    second = run_tap(tmp_path, config, catalog=catalog, state=first.last_state)
    assert second.returncode == 0, second.stderr
    (post,) = _posts(sandbox)  # only the final window, not the empty ones since the bookmark
    assert post.body["filters"]["date_range"]["start"] == "2024-06-29"
    assert post.body["filters"]["date_range"]["end"] == "2024-06-30"
    assert _bookmark(second)["replication_key_value"] == _bookmark(first)["replication_key_value"]
    assert _bookmark(first)["windows_done"]["through"] == "2024-06-28"


def test_the_final_window_is_read_again_from_the_bookmark_day(sandbox, tmp_path):
    # Windows: Jan 1-20, Jan 21-Feb 9, Feb 10-29, Mar 1-20, Mar 21-31; the bookmark is in the last.
    config = tap_config(sandbox, window_days=20, end_date="2024-03-31T00:00:00Z")
    catalog = select(discover(tmp_path, config), {"accounts": None})
    first = run_tap(tmp_path, config, catalog=catalog)
    assert first.returncode == 0, first.stderr
    bookmark_day = _bookmark(first)["replication_key_value"][:10]
    assert bookmark_day >= "2024-03-21"
    sandbox.reset_log()
    second = run_tap(tmp_path, config, catalog=catalog, state=first.last_state)
    assert second.returncode == 0, second.stderr
    (post,) = _posts(sandbox)
    assert post.body["filters"]["date_range"]["start"] == bookmark_day  # the overlap day
    assert _bookmark(first)["windows_done"]["through"] == "2024-03-20"


# --- 11. statuses outside the contract ------------------------------------------------------


def test_unknown_statuses_are_waited_on_with_a_warning_and_recorded(sandbox, tmp_path):
    config, catalog = _catalog(tmp_path, sandbox)
    sandbox.settings.status_aliases = {"pending": "queued", "processing": "running"}
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert "in status 'queued', which the API contract does not define" in run.stderr
    assert "in status 'running', which the API contract does not define" in run.stderr
    ledgers = [s.get("bookmarks", {}).get("accounts", {}).get("export_job") for s in run.states]
    assert any(entry and entry["job_id"] == "job-000001" for entry in ledgers)
    _assert_all_accounts(sandbox, run.records["accounts"])


def test_an_expired_ledger_job_is_exported_anew(sandbox, tmp_path):
    config, catalog = _catalog(tmp_path, sandbox)
    sandbox.settings.status_aliases = {"completed": "expired"}
    job = _create(sandbox, "accounts", _fields(sandbox, "accounts"))
    _wait(sandbox, job["id"], "expired")  # completed, but reported as expired
    sandbox.settings.status_aliases = {}
    state = _ledger_state(job, _fields(sandbox, "accounts"), {"1": 40})
    run = run_tap(tmp_path, config, catalog=catalog, state=state)
    assert run.returncode == 0, run.stderr
    assert f"Export job {job['id']} from the state is expired" in run.stderr
    assert len(_posts(sandbox)) == 2
    _assert_all_accounts(sandbox, run.records["accounts"])


def test_odd_jobs_in_the_job_list_are_skipped(sandbox, tmp_path):
    config, catalog = _catalog(tmp_path, sandbox)
    sandbox.settings.list_odd_jobs = True
    lost = _create(sandbox, "accounts", _fields(sandbox, "accounts"))
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert len(_posts(sandbox)) == 1
    assert f"{lost['id']}" in run.stderr
    assert "re-used: an equivalent job already exists" in run.stderr
    _assert_all_accounts(sandbox, run.records["accounts"])


# --- 12. a ledger entry naming a job of another entity --------------------------------------


def test_a_ledger_job_of_another_entity_is_ignored(sandbox, tmp_path):
    config, catalog = _catalog(tmp_path, sandbox)
    people = _wait(
        sandbox, _create(sandbox, "people", _fields(sandbox, "people"))["id"], "completed"
    )
    state = _ledger_state(people, _fields(sandbox, "accounts"), {})
    run = run_tap(tmp_path, config, catalog=catalog, state=state)
    assert run.returncode == 0, run.stderr
    assert f"Export job {people['id']} from the state exports people, not accounts" in run.stderr
    assert len(_posts(sandbox)) == 2
    _assert_all_accounts(sandbox, run.records["accounts"])


# --- 13. job listing refused or absent -----------------------------------------------------


@pytest.mark.parametrize("status", [404, 403])
def test_without_job_listing_the_sync_warns_once_and_goes_on(sandbox, tmp_path, status):
    config, catalog = _catalog(tmp_path, sandbox, {"accounts": None, "people": None})
    sandbox.settings.http_errors = {"list": -1}
    sandbox.settings.http_error_status = status
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("Listing export jobs is not possible") == 1
    assert sorted(run.records) == ["accounts", "people"]
    _assert_all_accounts(sandbox, run.records["accounts"])
    listed = [r for r in sandbox.requests() if r.method == "GET" and r.path == "/export/v1/jobs"]
    assert len(listed) == 1


# --- 15. a job not found right after its creation -----------------------------------------


def test_a_job_not_found_right_after_creation_is_asked_for_again(sandbox, tmp_path):
    config, catalog = _catalog(tmp_path, sandbox)
    sandbox.settings.status_not_found_after_create = 2
    run = run_tap(tmp_path, config, catalog=catalog, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("is not found yet right after its creation") == 2
    _assert_all_accounts(sandbox, run.records["accounts"])


def test_a_job_still_not_found_after_the_brief_retries_is_an_error(sandbox):
    sandbox.settings.status_not_found_after_create = 100
    options = ConnectOptions(user_agent="test", download_stall_seconds=5, clock=SystemClock())
    client = export_v1.connect({"access_token": sandbox.token}, sandbox.api_url, options).api
    clock = FakeClock()
    spec = JobSpec("campaigns", ("id",), "last_modified_date")
    job = ExportJob(
        client,
        spec,
        PollPolicy(first_interval=0.01, max_interval=1, timeout=60),
        logging.getLogger("t"),
        clock,
    )
    job.create()
    with pytest.raises(ApiRequestError) as raised:
        job.wait_until_completed()
    assert raised.value.status == 404
    assert clock.sleeps[1:] == list(NOT_FOUND_AFTER_CREATE_WAITS)  # after the first interval
    assert 8 <= sum(NOT_FOUND_AFTER_CREATE_WAITS) <= 12


# --- 16. odd answers are one line, exit 1, state kept ------------------------------------


def test_a_create_answering_202_with_an_empty_body_uses_the_job_it_created(sandbox, tmp_path):
    config, catalog = _catalog(tmp_path, sandbox)
    sandbox.settings.lose_create_answers = 1
    sandbox.settings.lost_create_answer = "empty"
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert len(_posts(sandbox)) == 1
    _assert_all_accounts(sandbox, run.records["accounts"])


def test_a_create_answering_202_with_an_empty_body_and_no_listing_is_one_line(sandbox, tmp_path):
    config, catalog = _catalog(tmp_path, sandbox)
    sandbox.settings.lose_create_answers = 1
    sandbox.settings.lost_create_answer = "empty"
    sandbox.settings.http_errors = {"list": -1}
    sandbox.settings.http_error_status = 404
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 1
    _no_traceback(run)
    (line,) = run.error_lines
    assert "creating the accounts export job answered 202 without a readable export job" in line
    assert len(_posts(sandbox)) == 1  # not sent again blindly


@pytest.mark.parametrize(
    ("patch", "says"),
    [
        ({"created_at": "yesterday"}, "created_at 'yesterday' is not an RFC 3339 timestamp"),
        ({"record_count": "many"}, "record_count 'many' is not a count"),
        ({"expires_at": "2024-13-45T99:00:00Z"}, "is not an RFC 3339 timestamp"),
    ],
)
def test_an_unreadable_job_json_is_one_line_and_the_state_is_kept(sandbox, tmp_path, patch, says):
    config, catalog = _catalog(tmp_path, sandbox, {"accounts": None, "people": None})
    people = {"replication_key": "last_modified_date", "replication_key_value": "2024-02-01"}
    before = {"bookmarks": {"people": people}}
    sandbox.settings.job_json_patch = patch
    run = run_tap(tmp_path, config, catalog=catalog, state=before)
    assert run.returncode == 1
    _no_traceback(run)
    assert run.error_lines and all(says in line for line in run.error_lines)
    assert "replication_key_value" not in _bookmark(run)
    assert _bookmark(run, "people")["replication_key_value"] == "2024-02-01"


def test_a_bookmark_that_is_not_a_date_is_one_line_naming_the_stream_and_the_state(
    sandbox, tmp_path
):
    config, catalog = _catalog(tmp_path, sandbox, {"accounts": None, "people": None})
    bad = {"replication_key": "last_modified_date", "replication_key_value": "not-a-date"}
    run = run_tap(tmp_path, config, catalog=catalog, state={"bookmarks": {"accounts": bad}})
    assert run.returncode == 1
    _no_traceback(run)
    (line,) = run.error_lines
    assert "Stream 'accounts' failed: " in line
    assert "bookmarks.accounts.replication_key_value = 'not-a-date'" in line
    assert "people" in run.records  # the other stream synced
    assert _bookmark(run)["replication_key_value"] == "not-a-date"  # state kept as it was


# --- 20. log wording when the API leaves sizes out ---------------------------------------


def test_the_log_never_says_none_parts(tmp_path):
    with Sandbox(fast_settings(rows_per_part=1000)) as sb:
        config, catalog = _catalog(tmp_path, sb)
        sb.settings.job_json_patch = {"file_parts": None}
        run = run_tap(tmp_path, config, catalog=catalog)
        assert run.returncode == 0, run.stderr
        assert "None" not in run.stderr
        assert "120 rows, " in run.stderr
        sb.reset_log()
        sb.settings.job_json_patch = {"file_parts": None, "record_count": None}
        run = run_tap(
            tmp_path,
            tap_config(sb, start_date="2024-02-01T00:00:00Z", end_date=END_DATE),
            catalog=catalog,
        )
        assert run.returncode == 0, run.stderr
        assert "None" not in run.stderr
        assert "an unknown number of rows" in run.stderr


# --- the emulator's knobs for these faults --------------------------------------------------


def test_emulator_knobs_for_job_faults(sandbox):
    fields = ["id", "name"]
    sandbox.settings.status_aliases = {"pending": "queued"}
    sandbox.settings.job_json_patch = {"created_at": "yesterday", "file_parts": None}
    sandbox.settings.status_not_found_after_create = 1
    queued = _create(sandbox, "accounts", fields)
    assert queued["status"] == "queued" and queued["created_at"] == "yesterday"
    url = f"{sandbox.api_url}/export/v1/jobs/{queued['id']}"
    assert requests.get(url, headers=_headers(sandbox), timeout=5).status_code == 404
    done = _wait(sandbox, queued["id"], "completed")
    assert "file_parts" not in done and done["record_count"] == 120
    assert requests.get(url, headers=_headers(sandbox), timeout=5).status_code == 200

    sandbox.settings.lose_create_answers = 3
    for kind, status in (("error", 503), ("html", 200), ("empty", 202)):
        sandbox.settings.lost_create_answer = kind
        answer = requests.post(
            f"{sandbox.api_url}/export/v1/jobs",
            json={"entity_type": "people", "fields": ["id"]},
            headers=_headers(sandbox),
            timeout=5,
        )
        assert answer.status_code == status
        assert "id" not in (answer.json() if kind == "error" else {})
        assert kind != "html" or answer.headers["Content-Type"].startswith("text/html")
        assert kind != "empty" or answer.content == b""
    assert len(sandbox.jobs()) == 4  # each lost answer still created its job

    sandbox.settings.list_odd_jobs = True
    listed = requests.get(
        f"{sandbox.api_url}/export/v1/jobs?status=completed", headers=_headers(sandbox), timeout=5
    ).json()
    assert "not a job" in listed["jobs"] and any(
        isinstance(j, dict) and j.get("status") == "running" for j in listed["jobs"]
    )

    sandbox.settings.empty_results_have_parts = False
    empty = _create(sandbox, "campaigns", ["id"], start="2030-01-01", end="2030-01-02")
    empty = _wait(sandbox, empty["id"], "completed")
    assert (empty["record_count"], empty.get("file_parts")) == (0, None)  # patched away
    sandbox.settings.job_json_patch = {}
    empty = _wait(
        sandbox,
        _create(sandbox, "campaigns", ["id"], "2030-01-01", "2030-01-02")["id"],
        "completed",
    )
    assert (empty["record_count"], empty["file_parts"]) == (0, 0)
    part = requests.get(
        f"{sandbox.api_url}/export/v1/jobs/{empty['id']}/download?part=1",
        headers=_headers(sandbox),
        allow_redirects=False,
        timeout=5,
    )
    assert part.status_code == 404
