"""The production API's daily call limits, through the real CLI against the emulator's uapi
dialect: a 429-100 is tried once more, and a second one (a spent daily limit) stops the run with
its state kept; discovery and syncs spend as few fields calls as the API allows. Calls are
counted on the emulator's side.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.dialect_cases import UAPI_STREAMS, UapiCase, sandbox_for
from tests.support.tap import discover, run_tap, select

RESET = re.compile(r"; it resets at \d{4}-\d\d-\d\dT00:00:00Z")
OPTIONAL_SETTINGS = (
    "campaign_sources",
    "campaign_report_type",
    "creative_report_type",
    "buying_group_account_ids",
)


@pytest.fixture
def uapi() -> Iterator[UapiCase]:
    with sandbox_for("uapi") as sb:
        yield UapiCase(sb)


def _catalog(uapi: UapiCase, tmp_path: Any, *streams: str) -> dict[str, Any]:
    catalog = select(discover(tmp_path, uapi.config()), dict.fromkeys(streams))
    uapi.sb.reset()  # forget discovery's calls: the run's own are counted
    return catalog


def _refused(uapi: UapiCase) -> list[Any]:
    return [r for r in uapi.api_requests() if r.status == 429]


def _usage_line(run: Any) -> str:
    (line,) = [line for line in run.stderr.splitlines() if "daily limits" in line]
    return line


# --- 429-100 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["create", "status", "fields"])
def test_a_momentary_rate_limit_is_survived_with_one_more_try(uapi, tmp_path, endpoint):
    if endpoint == "fields":
        uapi.sb.settings.uapi_rate_limited = {"fields": 1}
        run = run_tap(tmp_path, uapi.config(), "--discover")
        assert run.returncode == 0, run.stderr
        assert uapi.sb.usage()["fields"] == len(UAPI_STREAMS) + 1
    else:
        catalog = _catalog(uapi, tmp_path, "accounts")
        uapi.sb.settings.uapi_rate_limited = {endpoint: 1}
        run = run_tap(tmp_path, uapi.config(), catalog=catalog)
        assert run.returncode == 0, run.stderr
        assert len(run.records["accounts"]) == 120
    assert len(_refused(uapi)) == 1
    (retry,) = [
        line for line in run.stderr.splitlines() if "Retrying " in line and " in 3.0s " in line
    ]
    assert "429-100" in retry


def test_a_spent_status_limit_stops_the_run_after_two_tries_with_the_job_kept(uapi, tmp_path):
    catalog = _catalog(uapi, tmp_path, "accounts", "people")
    uapi.sb.settings.uapi_rate_limited = {"status": -1}
    run = run_tap(tmp_path, uapi.config(), catalog=catalog)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    (line,) = run.error_lines
    assert "daily limit of 300 status calls" in line and RESET.search(line), line
    assert "Check api_url" not in run.stderr
    counted = uapi.sb.usage()
    assert counted["status"] == 2  # one try, one more: no backoff loop of refused calls
    assert counted["create"] == 1  # no job for the next stream
    (job,) = uapi.sb.jobs()
    stream = {"account": "accounts", "person": "people"}[job["entityType"]]
    assert run.last_state["bookmarks"][stream]["export_job"]["job_id"] == job["jobId"]
    assert "2 status calls of 300" in _usage_line(run)


def test_a_spent_fields_limit_stops_discovery_after_two_tries(uapi, tmp_path):
    uapi.sb.settings.uapi_rate_limited = {"fields": -1}
    run = run_tap(tmp_path, uapi.config(), "--discover")
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    (line,) = run.error_lines
    assert "daily limit of 60 fields calls" in line and RESET.search(line), line
    assert uapi.sb.usage()["fields"] == 2
    assert "2 fields calls of 60" in _usage_line(run)  # a failed discovery says its cost too


# --- fields calls ----------------------------------------------------------------------------


def test_a_sync_given_a_catalog_with_api_names_asks_no_fields(uapi, tmp_path):
    catalog = _catalog(uapi, tmp_path, "accounts", "activities")
    run = run_tap(tmp_path, uapi.config(), catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert "fields" not in uapi.sb.usage()
    assert "0 fields calls of 60" in _usage_line(run)


def test_a_catalog_lacking_api_names_costs_one_call_per_selected_stream_lacking_them(
    uapi, tmp_path
):
    catalog = _catalog(uapi, tmp_path, "accounts", "activities")
    assert len(catalog["streams"]) == len(UAPI_STREAMS)
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] in ("accounts", "people"):  # people is not selected
            for item in entry["metadata"]:
                item["metadata"].pop("api-name", None)
    run = run_tap(tmp_path, uapi.config(), catalog=catalog)
    assert run.returncode == 0, run.stderr
    fields = [r for r in uapi.api_requests() if r.path.endswith("/fields")]
    assert [r.query["entityType"] for r in fields] == ["account"]
    assert "1 fields calls of 60" in _usage_line(run)


@pytest.mark.parametrize("optional", [True, False])
def test_discovery_asks_fields_of_the_streams_its_settings_enable_and_says_so(
    uapi, tmp_path, optional
):
    config = uapi.config()
    if not optional:
        for setting in OPTIONAL_SETTINGS:
            del config[setting]
    run = run_tap(tmp_path, config, "--discover")
    assert run.returncode == 0, run.stderr
    calls = 8 if optional else 4
    asked = [r.query["entityType"] for r in uapi.api_requests() if r.path.endswith("/fields")]
    assert len(asked) == len(set(asked)) == calls == uapi.sb.usage()["fields"]
    assert f"{calls} fields calls of 60" in _usage_line(run)
