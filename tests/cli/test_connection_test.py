"""``--test`` proves the connection without creating an export job, against an emulator of every
API dialect, counting the calls the emulator answered: the credentials, the Data Export
permission, each selected stream's entity, the job list. ``--test=records`` exports one record
per stream, and says first what that costs.
"""

from __future__ import annotations

import collections
import copy
from typing import Any

import pytest

from tests.support.dialect_cases import DialectCase
from tests.support.tap import discover, run_tap, select, tap_config

#: Exit codes and log lines of the installed command.
pytestmark = pytest.mark.cli


def _endpoint(request: Any) -> str:
    """Name the endpoint an emulator request called, in words common to both dialects."""
    path = request.path
    if request.server != "api":
        return "download"
    if path.endswith("/auth/v1/token"):
        return "token"
    if request.method == "POST":
        return "create"
    if path.endswith("/fields"):
        return "fields"
    if path.endswith("/entities"):
        return "entities"
    if path.endswith("/jobs"):
        return "list"
    return "download" if path.endswith("/download") else "status"


def _calls(case: DialectCase) -> collections.Counter[str]:
    return collections.Counter(_endpoint(request) for request in case.sb.requests())


def _no_job_spent(calls: collections.Counter[str]) -> None:
    assert calls["create"] == 0, calls
    assert calls["status"] == 0, calls
    assert calls["download"] == 0, calls


def _single_error(run: Any) -> str:
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert "Connection test passed" not in run.stderr
    (line,) = run.error_lines
    return line


def test_connection_test_creates_no_job_and_says_what_it_checked(dialect_case, tmp_path):
    case = dialect_case
    run = run_tap(tmp_path, case.config(), "--test")
    assert run.returncode == 0, run.stderr
    assert not run.error_lines, run.error_lines
    assert not run.records
    calls = _calls(case)
    _no_job_spent(calls)
    assert calls["fields"] == 0  # 60 a day on uapi: kept for discovery
    if case.name == "export_v1":
        assert (calls["entities"], calls["list"]) == (1, 1)
    else:  # one token, then one page of one job of each stream's entity type
        assert (calls["token"], calls["list"]) == (1, len(case.streams))
        assert {r.query["entityType"] for r in case.sb.requests() if _endpoint(r) == "list"} == {
            "account", "person", "opportunity", "activity", "campaign", "creative",
            "accountBuyingGroup", "personBuyingGroupMember",
        }  # fmt: skip
    lines = [line.split(" | ")[-1] for line in run.stderr.splitlines()]
    assert lines[-1].startswith("Connection test passed, without creating an export job")
    assert any("Data Export permission" in line or "accepted" in line for line in lines)
    for stream in case.streams:
        assert any(stream in line for line in lines[:-1]), stream


def test_connection_test_checks_only_the_catalogs_selected_streams(dialect_case, tmp_path):
    case = dialect_case
    catalog = select(discover(tmp_path, case.config()), {"accounts": None, "activities": None})
    case.sb.reset_log()
    run = run_tap(tmp_path, case.config(), "--test", catalog=catalog)
    assert run.returncode == 0, run.stderr
    calls = _calls(case)
    _no_job_spent(calls)
    assert calls["fields"] == 0  # the catalog knows the fields
    assert calls["list"] == (1 if case.name == "export_v1" else 2)
    passed = run.stderr.splitlines()[-1]
    assert "Connection test passed" in passed
    assert "people" not in run.stderr.split("Connection test", 1)[0].split("version", 1)[-1]


def test_connection_test_with_bad_credentials_is_one_line_naming_them(dialect_case, tmp_path):
    case = dialect_case
    run = run_tap(tmp_path, case.config(**case.bad_credentials()), "--test")
    line = _single_error(run)
    assert ("access_token" if case.name == "export_v1" else "client_secret") in line
    assert not any(secret in run.stderr for secret in case.secrets())
    _no_job_spent(_calls(case))


def test_connection_test_without_the_permission_names_it(dialect_case, tmp_path):
    case = dialect_case
    endpoint = "entities" if case.name == "export_v1" else "list"
    case.sb.settings.http_errors = {endpoint: 1}
    case.sb.settings.http_error_status = 403
    run = run_tap(tmp_path, case.config(), "--test")
    line = _single_error(run)
    assert "Data Export permission" in line
    assert "403" in line
    _no_job_spent(_calls(case))


def test_connection_test_names_a_stream_whose_entity_is_not_offered(dialect_case, tmp_path):
    case = dialect_case
    if case.name == "export_v1":  # a catalog stream the API does not list (any more)
        catalog = select(discover(tmp_path, case.config()), {"accounts": None})
        gone = copy.deepcopy(catalog["streams"][0])
        gone["tap_stream_id"] = gone["stream"] = "contacts"
        catalog["streams"].append(gone)
        case.sb.reset_log()
        run = run_tap(tmp_path, case.config(), "--test", catalog=catalog)
        line = _single_error(run)
        assert "Stream contacts of the catalog is not an entity the API offers" in line
        assert "run --discover" in line
    else:  # the tenant's Export Collection lacks the entity type
        case.sb.settings.uapi_denied_entity_types = {"activity": "403-101"}
        run = run_tap(tmp_path, case.config(), "--test")
        line = _single_error(run)
        assert "activities" in line
        assert "Export Collection does not include this entity type" in line
        assert "accounts" not in line
    _no_job_spent(_calls(case))


def test_connection_test_with_nothing_selected_warns(sandbox, tmp_path):
    catalog = select(discover(tmp_path, tap_config(sandbox)), {})
    run = run_tap(tmp_path, tap_config(sandbox), "--test", catalog=catalog)
    assert run.returncode == 0, run.stderr
    (warning,) = [line for line in run.stderr.splitlines() if "WARNING" in line]
    assert "No stream of the catalog's 6 is selected: nothing is exported" in warning


# --test=records ------------------------------------------------------------------------------


def test_record_test_says_its_cost_and_emits_one_record_per_stream(dialect_case, tmp_path):
    case = dialect_case
    run = run_tap(tmp_path, case.config(), "--test=records")
    assert run.returncode == 0, run.stderr
    warning = next(line for line in run.stderr.splitlines() if "--test=records" in line)
    assert "WARNING" in warning
    streams = len(case.streams)
    assert f"creates up to {streams} export jobs" in warning
    assert {stream: len(records) for stream, records in run.records.items()} == dict.fromkeys(
        case.streams, 1
    )
    assert _calls(case)["create"] == streams
    passed = run.stderr.splitlines()[-1]
    assert "Connection test passed: every stream delivered a record" in passed
    assert f"{streams} created" in passed


def test_record_test_with_a_failing_stream_exits_non_zero_naming_it(sandbox, tmp_path):
    sandbox.settings.fail_jobs = {"campaigns": -1}
    run = run_tap(tmp_path, tap_config(sandbox, max_job_attempts=1), "--test=records")
    line = _single_error(run)
    assert "Stream 'campaigns' failed" in line


def test_an_unknown_test_value_is_one_line_listing_the_values(sandbox, tmp_path):
    run = run_tap(tmp_path, tap_config(sandbox), "--test=rows")
    line = _single_error(run)
    assert "--test=rows is not known" in line
    assert "--test=records" in line
    assert not sandbox.requests()
