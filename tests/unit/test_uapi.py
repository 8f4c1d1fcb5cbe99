"""The uapi dialect's pure logic, in process: field names, job names, result headers, error
answers, and the engine's wait for a free job slot, per-stream window limit and re-use age
(fake API, fake clock).
"""

from __future__ import annotations

import datetime
import functools
import logging
from pathlib import Path
from typing import Any

import pytest
import requests

from tap_demandbase.dialects.uapi.client import UapiClient
from tap_demandbase.dialects.uapi.errors import classify_error
from tap_demandbase.dialects.uapi.fields import STREAMS, property_fields, snake_case
from tap_demandbase.dialects.uapi.settings import UapiOptions
from tap_demandbase.dialects.uapi.usage import CallUsage
from tap_demandbase.dialects.uapi.wire import JOB_PATH, job_status_from_json
from tap_demandbase.engine.export import RunContext, StreamExport, StreamRequest
from tap_demandbase.engine.jobs import ExportJob, reuse_rule
from tap_demandbase.engine.scheduler import JobScheduler
from tap_demandbase.errors import (
    ApiRequestError,
    AuthError,
    ExportJobError,
    JobSlotBusyError,
    QuotaExceededError,
    TransientApiError,
    UnknownFieldsError,
)
from tap_demandbase.model import JobSpec, JobState, PollPolicy
from tap_demandbase.records.reader import CsvPartReader
from tests.support.fakes import FakeApi, FakeClock, FileOpener

#: The clock a dialect reads time from: fixed, 2024-03-10 12:00 UTC.
CLOCK = FakeClock()


#: The uapi error classification on that clock.
_classify = functools.partial(classify_error, clock=CLOCK)


LOG = logging.getLogger("tests.uapi")


DAY = datetime.date


def _client(**options: Any) -> UapiClient:
    """A client without HTTP: job requests need none once the fields' API names are known."""
    return UapiClient(None, UapiOptions(**options), CallUsage(), clock=CLOCK)  # type: ignore[arg-type]


def _known(client: UapiClient, stream: str, names: dict[str, str]) -> None:
    from tap_demandbase.model import EntityInfo, FieldInfo

    fields = tuple(FieldInfo(prop, "", api_name=api) for prop, api in names.items())
    client.remember_entities([EntityInfo(stream, fields)])


def _answer(status: int, code: str = "", message: str = "m", **body: Any) -> requests.Response:
    import json

    response = requests.Response()
    response.status_code = status
    payload = {"errorCode": code, "errorMessage": message, "diagnosticCode": "ab" * 16} | body
    response._content = json.dumps(payload).encode()
    return response


def _reader(fields: list[str], columns: dict[str, tuple[str, ...]]) -> CsvPartReader:
    properties = {name: {"type": ["string", "null"]} for name in fields}
    return CsvPartReader("activities", properties, fields, columns)


class _BusyApi(FakeApi):
    """Refuses the first ``busy`` creates as the uapi API does while another job runs."""

    def __init__(self, clock: FakeClock, folder: Path, busy: int) -> None:
        super().__init__(clock, folder)
        self.busy = busy

    def create_job(self, spec: JobSpec, rule: Any = None) -> Any:
        if self.busy:
            self.busy -= 1
            self.calls.append("create")
            raise JobSlotBusyError("another export job runs in the tenant (429 429-102)")
        return super().create_job(spec, rule)


@pytest.mark.parametrize(
    ("name", "snake"),
    [
        ("lastModifiedDate", "last_modified_date"),
        ("sfdcID", "sfdc_id"),
        ("engagementMinutesLast7Day", "engagement_minutes_last7_day"),
        ("Region__c", "region__c"),
        ("Custom_Tier__c", "custom_tier__c"),
        ("HTMLParser", "html_parser"),
        ("keyword_set", "keyword_set"),
        ("id", "id"),
    ],
)
def test_snake_case_follows_the_issue_rule(name, snake):
    assert snake_case(name) == snake


def test_own_fields_lose_their_prefix_and_others_keep_it_as_a_word():
    fields = property_fields(
        STREAMS["activities"],
        [
            ("{Activity}.id", "String", ""),
            ("{Account}.id", "String", ""),
            ("{Activity}.activityDate", "Datetime", ""),
        ],
    )
    assert [(f.name, f.api_name) for f in fields] == [
        ("id", "{Activity}.id"),
        ("account_id", "{Account}.id"),
        ("activity_date", "{Activity}.activityDate"),
    ]
    campaign = property_fields(STREAMS["campaigns"], [("campaignId", "String", "")])
    assert campaign[0].name == "campaign_id"


def test_a_collision_leaves_the_own_field_its_name_and_warns_once(caplog):
    with caplog.at_level(logging.WARNING):
        fields = property_fields(
            STREAMS["activities"],
            [("{Account}.id", "String", ""), ("{Activity}.accountId", "String", "")],
        )
    assert {f.api_name: f.name for f in fields} == {
        "{Activity}.accountId": "account_id",
        "{Account}.id": "account__id",
    }
    assert len([r for r in caplog.records if "both map to" in r.getMessage()]) == 1


def test_job_names_are_short_deterministic_and_follow_the_jobs_identity():
    client = _client(account_ids=tuple(str(n) for n in range(1, 25_001)))
    names = {"id": "{PersonBuyingGroupMember}.id", "role": "{PersonBuyingGroupMember}.role"}
    _known(client, "buying_group_members", names)
    chunks = client.job_filters("buying_group_members")
    assert len(chunks) == 3  # 10,000 ids per job
    spec = JobSpec("buying_group_members", ("id", "role"), filters=chunks[1])
    body = client.job_request(spec)
    assert len(body["accountIds"]) == 10_000 and body["accountIds"][0] == 10_001
    assert len(body["jobName"]) <= 50
    assert body["jobName"] == client.job_request(spec)["jobName"]
    reordered = JobSpec("buying_group_members", ("role", "id"), filters=chunks[1])
    assert client.job_request(reordered)["jobName"] == body["jobName"]
    other_chunk = JobSpec("buying_group_members", ("id", "role"), filters=chunks[2])
    assert client.job_request(other_chunk)["jobName"] != body["jobName"]
    fewer = JobSpec("buying_group_members", ("id",), filters=chunks[1])
    assert client.job_request(fewer)["jobName"] != body["jobName"]
    # The state names a chunk by place and digest, never by its 10,000 ids.
    assert all(len(value) < 40 for ((_, value),) in chunks)


def test_windows_become_from_and_to_dates_or_two_date_filters():
    client = _client()
    _known(
        client, "activities", {"id": "{Activity}.id", "activity_date": "{Activity}.activityDate"}
    )
    _known(client, "accounts", {"id": "{Account}.id", "updated_at": "{Account}.updatedAt"})
    window = {"start": DAY(2024, 1, 1), "end": DAY(2024, 3, 30)}
    activity = client.job_request(
        JobSpec("activities", ("id", "activity_date"), "activity_date", **window)
    )
    assert (activity["fromDate"], activity["toDate"]) == ("2024-01-01", "2024-03-30")
    assert "filters" not in activity
    account = client.job_request(JobSpec("accounts", ("id",), "updated_at", **window))
    field = "{Account}.updatedAt"
    assert account["filters"] == [
        {"field": field, "operator": "Greater Than or Equal To", "values": ["2024-01-01"]},
        {"field": field, "operator": "Less Than or Equal To", "values": ["2024-03-30"]},
    ]
    assert "fromDate" not in account
    full_table = client.job_request(JobSpec("accounts", ("id",)))
    assert "filters" not in full_table and "fromDate" not in full_table


def test_campaign_jobs_carry_report_type_and_sources():
    client = _client(
        campaign_sources=("linkedin", "google"),
        report_types={"campaign_report_type": "campaign_performance_rollup"},
        start_day=DAY(2024, 1, 1),
    )
    _known(client, "campaigns", {"campaign_id": "campaignId"})
    (filters,) = client.job_filters("campaigns")
    body = client.job_request(
        JobSpec("campaigns", ("campaign_id",), end=DAY(2024, 2, 1), filters=filters)
    )
    assert body["adReportType"] == "campaign_performance_rollup"
    assert body["source"] == ["google", "linkedin"]
    assert (body["fromDate"], body["toDate"]) == ("2024-01-01", "2024-02-01")  # a rollup's period
    open_ended = client.job_request(JobSpec("campaigns", ("campaign_id",), filters=filters))
    assert open_ended["toDate"] == "2024-03-10"  # the run's clock's day, not the system's


def test_job_answers_tolerate_absent_keys_and_nulls_and_any_case():
    absent = {"jobId": "j1", "jobStatus": "FINISHED", "entityType": "account"}
    nulls = absent | {"message": None, "resultsUrl": None, "resultsUrls": None, "createdAt": None}
    for body in (absent, nulls):
        status = job_status_from_json(body, "test")
        assert status.state is JobState.COMPLETED
        assert status.entity == "accounts" and status.error_message is None
    several = absent | {"resultsUrl": "https://x/1", "resultsUrls": ["https://x/1", "https://x/2"]}
    assert job_status_from_json(several, "test").file_parts == 2
    odd = job_status_from_json(absent | {"jobStatus": "queued"}, "test")
    assert odd.state is JobState.UNKNOWN and odd.status_name == "queued"
    failed = job_status_from_json(absent | {"jobStatus": "failed", "message": "boom"}, "test")
    assert (failed.state, failed.error_message) == (JobState.FAILED, "boom")


@pytest.mark.parametrize(
    ("status", "code", "error", "words"),
    [
        (401, "401-100", AuthError, ("client_id", "client_secret", "renewing")),
        (403, "403-104", AuthError, ("Export Collection",)),
        (429, "429-101", QuotaExceededError, ("quota", "429-101")),
        (429, "429-102", JobSlotBusyError, ("another export job",)),
        (429, "429-100", TransientApiError, ()),
        (500, "500-100", TransientApiError, ()),
        (400, "400-115", UnknownFieldsError, ("--discover",)),
        (400, "400-114", ApiRequestError, ()),
        (404, "404-302", ApiRequestError, ()),
    ],
)
def test_error_answers_show_code_message_and_diagnostic_code(status, code, error, words):
    classified = _classify(_answer(status, code, "the message"), "doing x", renewable=True)
    assert type(classified) is error
    line = str(classified)
    assert "\n" not in line
    assert code in line and "the message" in line and "ab" * 16 in line
    for word in words:
        assert word in line
    if isinstance(classified, ApiRequestError):
        assert classified.status == status


def test_a_429_100_is_worth_one_more_try_unless_this_run_spent_the_daily_limit():
    url = "https://uapi.demandbase.com" + JOB_PATH + "/abc"
    limited = _answer(429, "429-100", "Rate limit exceeded.")
    limited.request = requests.Request("GET", url).prepare()
    limited.url = url
    usage = CallUsage()
    for _ in range(299):
        usage.count_request("GET", url)
    momentary = _classify(limited, "reading export job abc", renewable=True, usage=usage)
    assert type(momentary) is TransientApiError
    assert momentary.retry is not None and momentary.retry.total == 1
    assert type(momentary.exhausted) is QuotaExceededError
    usage.count_request("GET", url)  # the 300th status call of this run: the limit is spent
    spent = _classify(limited, "reading export job abc", renewable=True, usage=usage)
    assert type(spent) is QuotaExceededError
    line = str(spent)
    assert "daily limit of 300 status calls" in line
    assert "resets at 2024-03-11T00:00:00Z" in line  # the next midnight UTC of the run's clock
    assert "\n" not in line


def test_refused_account_ids_and_a_static_token_are_explained():
    refused = _answer(400, "400-147", "unrecognized property: accountIds")
    assert "buying_group_account_ids" in str(_classify(refused, "x", renewable=True))
    gateway = requests.Response()
    gateway.status_code = 401
    gateway._content = b'{"status": "Authentication Failed - Unauthorized."}'
    line = str(_classify(gateway, "x", renewable=False))
    assert "access_token" in line and "Authentication Failed" in line


def test_columns_match_the_api_name_or_a_bare_name_unique_in_the_part():
    columns = {
        "id": ("{Activity}.id", "id"),
        "account_id": ("{Account}.id", "id"),
        "activity_type": ("{Activity}.activityType", "activityType"),
    }
    reader = _reader(["id", "account_id", "activity_type"], columns)
    exact = ["{Activity}.activityType", "{Account}.id", "{Activity}.id"]
    assert reader.header_fields(exact) == ["activity_type", "account_id", "id"]
    # activityType is unique: accepted. "id" would be either id or account_id: refused.
    assert reader.header_fields(["activityType", "id", "{Account}.id"]) == [
        "activity_type",
        "id",  # the only one left unmatched that claims "id"
        "account_id",
    ]
    assert reader.header_fields(["activityType", "id", "other"]) == ["activity_type", None, None]
    only_id = _reader(["id"], {"id": ("{Activity}.id", "id")})
    assert only_id.header_fields(["id", "id"]) == [None, None]  # twice: not unique
    assert _reader(["id"], {}).header_fields(["id", "x"]) == ["id", None]  # export_v1


def test_a_busy_tenant_is_waited_for_with_the_polling_waits(tmp_path):
    clock = FakeClock()
    api = _BusyApi(clock, tmp_path, busy=3)
    job = ExportJob(api, JobSpec("accounts", ("id",)), PollPolicy(30, 600, 3600), LOG, clock)
    job.create()
    assert api.calls.count("create") == 4
    assert clock.sleeps == [30, 60, 120]
    job.wait_until_completed()


def test_a_tenant_busy_past_the_timeout_fails_the_job(tmp_path):
    clock = FakeClock()
    api = _BusyApi(clock, tmp_path, busy=100)
    job = ExportJob(api, JobSpec("accounts", ("id",)), PollPolicy(30, 600, 1000), LOG, clock)
    with pytest.raises(ExportJobError, match="still refused a new job"):
        job.create()
    assert sum(clock.sleeps) == pytest.approx(1000)


def test_a_stream_maximum_window_caps_window_days(tmp_path):
    clock = FakeClock()
    api = FakeApi(clock, tmp_path)
    run = RunContext(
        api=api,
        opener=FileOpener(),
        clock=clock,
        scheduler=JobScheduler(1),
        end_day=DAY(2024, 12, 31),
        poll_policy=PollPolicy(1, 8, 600),
        window_days=365,
    )
    request = StreamRequest("activities", ("id",), "activity_date", DAY(2024, 1, 1), 90)
    specs = StreamExport(run, request, {}, LOG, lambda value: None).specs()
    assert [(s.start, s.end) for s in specs][:2] == [
        (DAY(2024, 1, 1), DAY(2024, 3, 30)),
        (DAY(2024, 3, 31), DAY(2024, 6, 28)),
    ]
    assert all((s.end - s.start).days + 1 <= 90 for s in specs)
    assert specs[-1].end == DAY(2024, 12, 31)
    assert StreamRequest("a", (), None, None, 90).window_days(30) == 30


def test_the_reuse_age_is_the_apis():
    now = datetime.datetime(2024, 3, 10, 12, tzinfo=datetime.timezone.utc)
    default = reuse_rule(None, now=now)
    longer = reuse_rule(None, now=now, max_age=UapiClient.capabilities.reuse_max_age)
    assert default.created_after == now - datetime.timedelta(hours=2)
    assert longer.created_after == now - datetime.timedelta(hours=24)


def test_calls_are_counted_by_endpoint():
    usage = CallUsage()
    base = "https://uapi.demandbase.com"
    usage.count_request("POST", base + JOB_PATH)
    usage.count_request("GET", base + JOB_PATH + "/abc")
    usage.count_request("GET", base + JOB_PATH + "/abc")
    usage.count_request("GET", base + "/data/export/v1/jobs")
    usage.count_request("GET", base + "/data/export/v1/fields")
    usage.count("token")
    assert usage.summary() == (
        "API calls of this run against the tenant's daily limits: 1 job creates of 60, "
        "2 status calls of 300, 1 list calls of 1,200, 1 fields calls of 60; 1 token request(s)"
    )
