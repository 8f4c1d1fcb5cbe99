"""The emulator's uapi dialect (Demandbase's production API), over real HTTP with requests."""

from __future__ import annotations

import csv
import gzip
import io
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tap_demandbase.sandbox import Sandbox, SandboxSettings
from tap_demandbase.sandbox.entities import ENTITIES
from tap_demandbase.sandbox.uapi.catalog import ENTITY_TYPES
from tests.support.expected import property_name, snake, utc_day

FAST = {"pending_seconds": 0.01, "processing_seconds": 0.02}
ROWS = {
    "accounts": 120,
    "people": 60,
    "opportunities": 40,
    "activities": 200,
    "campaigns": 30,
    "buying_groups": 50,
    "creatives": 20,
    "buying_group_members": 40,
}
ACCOUNT_FIELDS = ["{Account}.id", "{Account}.name", "{Account}.lastModifiedDate"]
ERROR_KEYS = {"errorCode", "errorMessage", "diagnosticCode"}


def uapi_settings(**overrides: Any) -> SandboxSettings:
    values: dict[str, Any] = {"dialect": "uapi", "rows": dict(ROWS), "rows_per_part": 40, **FAST}
    values.update(overrides)
    return SandboxSettings(**values)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(uapi_settings()) as sandbox:
        yield sandbox


def get_token(sb: Sandbox) -> str:
    body = {"grantType": "client_credentials", "clientId": sb.client_id}
    body["clientSecret"] = sb.client_secret
    response = requests.post(sb.api_url + "/auth/v1/token", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["accessToken"])


class Client:
    """A bearer-token client of one uapi sandbox."""

    def __init__(self, sb: Sandbox, token: str | None = None) -> None:
        self.sb = sb
        self.token = token or get_token(sb)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        url = self.sb.api_url + "/data/export/v1" + path
        return requests.request(method, url, headers=headers, timeout=10, **kwargs)

    def fields(self, entity_type: str, **query: str) -> list[dict[str, str]]:
        response = self.call("GET", "/fields", params={"entityType": entity_type, **query})
        assert response.status_code == 200, response.text
        return list(response.json())

    def create(self, **body: Any) -> requests.Response:
        body.setdefault("jobName", "test-job")
        return self.call("POST", "/job", json=body)

    def status(self, job_id: str) -> dict[str, Any]:
        response = self.call("GET", f"/job/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait(self, job_id: str, seen: list[str] | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            job = self.status(job_id)
            if seen is not None and (not seen or seen[-1] != job["jobStatus"]):
                seen.append(job["jobStatus"])
            if job["jobStatus"] in ("finished", "failed"):
                return job
            time.sleep(0.005)
        raise AssertionError(f"{job_id} did not finish")

    def run(self, **body: Any) -> dict[str, Any]:
        response = self.create(**body)
        assert response.status_code == 202, response.text
        return self.wait(response.json()["jobId"])


@pytest.fixture
def api(sb: Sandbox) -> Client:
    return Client(sb)


def assert_error(response: requests.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["errorCode"] == code, body
    assert re.fullmatch(r"[0-9a-f]{32}", body["diagnosticCode"])
    assert "Retry-After" not in response.headers
    return dict(body)


def fetch(url: str) -> bytes:
    response = requests.get(url, timeout=10)  # no Authorization: the URL is pre-signed
    assert response.status_code == 200, response.text
    return response.content


def parse(data: bytes) -> list[dict[str, str]]:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    header, *rows = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    return [dict(zip(header, row, strict=True)) for row in rows]


def results(job: dict[str, Any]) -> list[dict[str, str]]:
    urls = job.get("resultsUrls") or [job["resultsUrl"]]
    return [row for url in urls for row in parse(fetch(url))]


def cells(rows: list[dict[str, str | None]]) -> list[dict[str, str]]:
    return [{k: v or "" for k, v in row.items()} for row in rows]


# --- token ------------------------------------------------------------------------------------


def test_token_accepts_the_documented_json_body_and_the_sdk_form_body(sb: Sandbox) -> None:
    url = sb.api_url + "/auth/v1/token"
    secret = sb.client_secret
    documented = {"grantType": "client_credentials", "clientId": sb.client_id}
    sdk = {"grant_type": "client_credentials", "client_id": sb.client_id}
    as_json = requests.post(url, json={**documented, "clientSecret": secret}, timeout=10)
    as_form = requests.post(url, data={**sdk, "client_secret": secret}, timeout=10)
    for response in (as_json, as_form):
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"accessToken", "tokenType", "expiresIn"}
        assert body["tokenType"] == "bearer" and body["expiresIn"] == 28800
        assert Client(sb, body["accessToken"]).call("GET", "/jobs").status_code == 200
    assert as_json.json()["accessToken"] != as_form.json()["accessToken"]
    logged = [r for r in sb.requests() if r.path == "/auth/v1/token"]
    assert [sorted(r.body) for r in logged] == [  # type: ignore[arg-type]
        ["clientId", "clientSecret", "grantType"],
        ["client_id", "client_secret", "grant_type"],
    ]
    assert sb.client_secret not in repr(sb.requests())


def test_token_errors(sb: Sandbox) -> None:
    url = sb.api_url + "/auth/v1/token"
    wrong = {"grantType": "client_credentials", "clientId": sb.client_id, "clientSecret": "nope"}
    body = assert_error(requests.post(url, json=wrong, timeout=10), 401, "401-100")
    assert "nope" not in body["errorMessage"]
    form = {"client_id": "other", "client_secret": sb.client_secret}
    assert_error(requests.post(url, data=form, timeout=10), 401, "401-100")
    assert_error(requests.post(url, json={"clientId": sb.client_id}, timeout=10), 400, "400-104")
    password = {**wrong, "grantType": "password", "clientSecret": sb.client_secret}
    assert_error(requests.post(url, json=password, timeout=10), 400, "400-103")
    assert_error(requests.post(url, data=b"[1]", timeout=10), 400, "400-102")
    assert_error(requests.get(url, timeout=10), 405, "405-100")
    sb.settings.uapi_gateway_401 = True
    gateway = requests.post(url, json=wrong, timeout=10)
    assert gateway.status_code == 401
    assert gateway.json() == {"status": "Authentication Failed - Unauthorized."}


def test_short_token_lifetime_knob() -> None:
    with Sandbox(uapi_settings(uapi_token_ttl_seconds=1)) as sb:
        response = requests.post(
            sb.api_url + "/auth/v1/token",
            json={"clientId": sb.client_id, "clientSecret": sb.client_secret},
            timeout=10,
        )
        assert response.json()["expiresIn"] == 1
        client = Client(sb, response.json()["accessToken"])
        assert client.call("GET", "/jobs").status_code == 200
        time.sleep(1.05)
        assert_error(client.call("GET", "/jobs"), 401, "401-100")
        assert Client(sb).call("GET", "/jobs").status_code == 200
        assert Client(sb, sb.token).call("GET", "/jobs").status_code == 200  # static: no expiry


def test_expire_next_tokens_knob(sb: Sandbox, api: Client) -> None:
    sb.settings.uapi_expire_next_tokens = 1
    assert_error(api.call("GET", "/jobs"), 401, "401-100")
    assert_error(api.call("GET", "/jobs"), 401, "401-100")  # that token stays expired
    assert Client(sb).call("GET", "/jobs").status_code == 200


def test_export_paths_need_a_valid_bearer_token(sb: Sandbox) -> None:
    url = sb.api_url + "/data/export/v1/jobs"
    assert_error(requests.get(url, timeout=10), 401, "401-100")
    for header in ("Bearer wrong", f"Basic {sb.token}", "Bearer"):
        response = requests.get(url, headers={"Authorization": header}, timeout=10)
        assert_error(response, 401, "401-100")
    client = Client(sb)
    assert_error(client.call("GET", "/nope"), 404, "404-301")
    assert_error(client.call("DELETE", "/job/abc"), 405, "405-100")
    assert_error(client.call("GET", "/job"), 405, "405-100")
    assert_error(requests.get(sb.api_url + "/export/v1/entities", timeout=10), 404, "404-301")


# --- fields -----------------------------------------------------------------------------------


def test_fields_are_prefixed_camel_case_with_production_data_types(api: Client) -> None:
    types: set[str] = set()
    for entity_type, entity in ENTITY_TYPES.items():
        query = {"adReportType": entity.report_types[0]} if entity.report_types else {}
        fields = api.fields(entity_type, **query)
        assert all(set(f) == {"name", "dataType", "label", "description"} for f in fields)
        names = [f["name"] for f in fields]
        assert len(set(names)) == len(names)
        types |= {f["dataType"] for f in fields}
        if entity.report_types:  # campaign and creative fields carry no prefix (Postman)
            assert all("{" not in n and re.fullmatch(r"[A-Za-z_]+", n) for n in names), names
        else:
            assert all(re.fullmatch(r"\{[A-Z][A-Za-z]+\}\.[A-Za-z0-9_]+", n) for n in names)
    assert types == {
        "String", "Picklist", "Email", "URL", "Integer", "Long", "Double", "Currency",
        "Percent", "Boolean", "Date", "Datetime", "Geolocation",
    }  # fmt: skip
    activity = {f["name"]: f for f in api.fields("activity")}
    assert activity["{Account}.id"]["label"] == "Account ID"
    assert activity["{Activity}.activityDate"]["dataType"] == "Datetime"
    assert {"{Activity}.accountDomain", "{Activity}.keyword_set"} <= set(activity)
    account = {f["name"]: f["dataType"] for f in api.fields("account")}
    assert account["{Account}.Custom_Tier__c"] == "Picklist"
    assert account["{Account}.engagementMinutesLast7Day"] == "Double"
    assert "{Account}.sfdcID" in account
    campaign = [f["name"] for f in api.fields("campaign", adReportType="campaign_summary")]
    assert {"campaignId", "campaignName", "campaignSource", "startDate", "endDate"} <= set(campaign)
    assert "Region__c" in campaign


def test_field_names_map_back_to_export_v1_property_names(api: Client) -> None:
    """Under the snake_case rule, a pipeline can switch dialects without renaming."""
    backed = {"account": "accounts", "person": "people", "opportunity": "opportunities"}
    backed |= {"activity": "activities", "accountBuyingGroup": "buying_groups"}
    extras = {"sfdc_id", "engagement_minutes_last7_day", "account_domain", "keyword_set"}
    for entity_type, entity_name in backed.items():
        properties = {property_name(entity_type, f["name"]) for f in api.fields(entity_type)}
        assert properties - extras == set(ENTITIES[entity_name].field_names), entity_type
    member = "personBuyingGroupMember"
    members = {property_name(member, f["name"]) for f in api.fields(member)}
    assert {"id", "account_id", "person_id", "account_buying_group_id"} <= members
    assert snake("Region__c") == "region__c" and snake("sfdcID") == "sfdc_id"


def test_fields_query_validation(api: Client) -> None:
    assert api.fields("Account") == api.fields("account")  # entityType in any case
    assert_error(api.call("GET", "/fields"), 400, "400-104")
    assert_error(api.call("GET", "/fields", params={"entityType": "lead"}), 400, "400-125")
    assert_error(api.call("GET", "/fields", params={"entityType": "campaign"}), 400, "400-104")
    bad = {"entityType": "creative", "adReportType": "campaign_summary"}
    assert_error(api.call("GET", "/fields", params=bad), 400, "400-139")


def test_field_type_and_alias_knobs(sb: Sandbox, api: Client) -> None:
    sb.settings.update(
        {
            "uapi_field_types": {"{Account}.employeeCount": "number", "{Account}.phone": "omit"},
            "uapi_alias_fields": {"activity": {"{Activity}.accountId": "{Account}.id"}},
        }
    )
    account = {f["name"]: f["dataType"] for f in api.fields("account")}
    assert account["{Account}.employeeCount"] == "number"
    assert "{Account}.phone" not in account
    body = assert_error(
        api.create(entityType="account", fields=["{Account}.phone"]), 400, "400-115"
    )
    assert "{Account}.phone" in body["errorMessage"]
    activity = [f["name"] for f in api.fields("activity")]
    assert "{Activity}.accountId" in activity
    job = api.run(
        entityType="activity",
        fields=["{Activity}.id", "{Account}.id", "{Activity}.accountId"],
        fromDate="2024-01-01",
        toDate="2024-03-30",
    )
    rows = results(job)
    assert rows and all(r["{Account}.id"] == r["{Activity}.accountId"] for r in rows)
    with pytest.raises(ValueError, match="uapi_field_types"):
        sb.settings.update({"uapi_field_types": {"{Account}.nope": "String"}})
    with pytest.raises(ValueError, match="uapi_alias_fields"):
        sb.settings.update({"uapi_alias_fields": {"activity": {"x": "{Account}.nope"}}})


def test_denied_entity_types_knob(sb: Sandbox, api: Client) -> None:
    sb.settings.update({"uapi_denied_entity_types": {"activity": "403-101", "person": "403-100"}})
    denied = assert_error(
        api.call("GET", "/jobs", params={"entityType": "Activity", "perPage": "1"}), 403, "403-101"
    )
    assert "entity type" in denied["errorMessage"]
    assert_error(api.call("GET", "/fields", params={"entityType": "activity"}), 403, "403-101")
    assert_error(api.create(entityType="person", fields=["{Person}.id"]), 403, "403-100")
    assert api.fields("account")  # the other entity types are served
    assert api.call("GET", "/jobs", params={"entityType": "All"}).status_code == 200
    assert api.run(entityType="account", fields=ACCOUNT_FIELDS)["jobStatus"] == "finished"
    with pytest.raises(ValueError, match="uapi_denied_entity_types"):
        sb.settings.update({"uapi_denied_entity_types": {"activity": "404-301"}})
    with pytest.raises(ValueError, match="uapi_denied_entity_types"):
        sb.settings.update({"uapi_denied_entity_types": {"contact": "403-101"}})


# --- jobs and results -------------------------------------------------------------------------


def test_job_life_cycle_and_the_same_rows_as_export_v1(sb: Sandbox, api: Client) -> None:
    sb.settings.update({"pending_seconds": 0.3, "processing_seconds": 0.3})  # seen by polling
    created = api.create(entityType="Account", jobName="accounts-full", fields=ACCOUNT_FIELDS)
    assert created.status_code == 202, created.text
    accepted = created.json()
    assert set(accepted) == {"jobStatus", "createdAt", "jobId", "entityType", "jobName"}
    assert accepted["jobStatus"] == "accepted" and accepted["entityType"] == "account"
    assert re.fullmatch(r"[0-9a-f-]{36}", accepted["jobId"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", accepted["createdAt"])
    seen: list[str] = []
    job = api.wait(accepted["jobId"], seen)
    assert seen == ["accepted", "processing", "finished"]
    assert set(job) == {
        "jobId", "jobName", "jobStatus", "entityType", "createdAt", "updatedAt", "resultsUrl",
    }  # fmt: skip
    assert job["updatedAt"] > job["createdAt"]
    data = fetch(job["resultsUrl"])
    assert data.startswith(
        "\ufeff{Account}.lastModifiedDate,{Account}.name,{Account}.id\r\n".encode()
    )
    rows = parse(data)
    assert len(rows) == 120  # one file, whatever rows_per_part says
    export_v1 = SandboxSettings(rows=dict(ROWS), rows_per_part=40, **FAST)
    with Sandbox(export_v1) as other:
        headers = {"Authorization": f"Bearer {other.token}"}
        made = requests.post(
            other.api_url + "/export/v1/jobs",
            json={"entity_type": "accounts", "fields": ["id", "name", "last_modified_date"]},
            headers=headers,
            timeout=10,
        ).json()
        while made["status"] != "completed":
            time.sleep(0.005)
            made = requests.get(
                f"{other.api_url}/export/v1/jobs/{made['id']}", headers=headers, timeout=10
            ).json()
        theirs = []
        for part in range(1, made["file_parts"] + 1):
            url = f"{other.api_url}/export/v1/jobs/{made['id']}/download?part={part}"
            theirs += parse(requests.get(url, headers=headers, timeout=10).content)
    names = {"id": "{Account}.id", "name": "{Account}.name"}
    names["last_modified_date"] = "{Account}.lastModifiedDate"
    assert rows == [{names[k]: v for k, v in row.items()} for row in theirs]


def test_every_entity_type_exports_what_expected_rows_says(sb: Sandbox, api: Client) -> None:
    bodies: list[dict[str, Any]] = [
        {"entityType": "account"},
        {"entityType": "person"},
        {"entityType": "opportunity"},
        {"entityType": "activity", "fromDate": "2024-02-01", "toDate": "2024-02-20"},
        {"entityType": "campaign", "adReportType": "campaign_summary", "source": ["all"]},
        {"entityType": "creative", "adReportType": "creative_lifetime", "source": ["google"]},
        {"entityType": "accountBuyingGroup", "accountIds": list(range(1, 60))},
        {"entityType": "personBuyingGroupMember", "accountIds": list(range(1, 60))},
    ]
    for body in bodies:
        job = api.run(jobName=f"all-{body['entityType']}", **body)
        assert job["jobStatus"] == "finished", job
        expected = cells(sb.expected_uapi_rows({"jobName": "x", **body}))
        assert results(job) == expected and expected, body["entityType"]


def test_split_files_knob_lists_every_file_in_results_urls(sb: Sandbox, api: Client) -> None:
    sb.settings.uapi_split_files = True
    job = api.run(entityType="account", fields=ACCOUNT_FIELDS)
    assert len(job["resultsUrls"]) == 3  # 120 rows, 40 per file
    assert job["resultsUrl"] == job["resultsUrls"][0]
    assert [len(parse(fetch(u))) for u in job["resultsUrls"]] == [40, 40, 40]
    body = {"jobName": "x", "entityType": "account", "fields": ACCOUNT_FIELDS}
    assert results(job) == cells(sb.expected_uapi_rows(body))


def test_gzip_knob_compresses_files_under_the_same_name(sb: Sandbox, api: Client) -> None:
    plain = fetch(api.run(entityType="account", fields=ACCOUNT_FIELDS)["resultsUrl"])
    sb.settings.uapi_gzip = True
    job = api.run(entityType="account", fields=ACCOUNT_FIELDS)
    response = requests.get(job["resultsUrl"], timeout=10)
    assert response.content[:2] == b"\x1f\x8b"
    assert "Content-Encoding" not in response.headers
    assert response.headers["Content-Type"].startswith("text/csv")
    assert job["resultsUrl"].split("?")[0].endswith(".csv")
    assert gzip.decompress(response.content) == plain


def test_results_host_refuses_authorization_and_expired_urls(sb: Sandbox, api: Client) -> None:
    job = api.run(entityType="account", fields=ACCOUNT_FIELDS)
    url = job["resultsUrl"]
    with_token = requests.get(url, headers={"Authorization": f"Bearer {api.token}"}, timeout=10)
    assert with_token.status_code == 400 and b"Only one auth mechanism" in with_token.content
    sb.settings.expire_next_urls = 1
    expired = api.status(job["jobId"])["resultsUrl"]
    assert requests.get(expired, timeout=10).status_code == 403
    assert parse(fetch(api.status(job["jobId"])["resultsUrl"])) == parse(fetch(url))
    files = [r for r in sb.requests() if r.server == "files"]
    assert [r.has_authorization for r in files] == [True, False, False, False]


LONG_NAME = "x" * 51


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"entityType": "account", "jobName": LONG_NAME}, "400-126"),
        ({"entityType": "account", "jobName": ""}, "400-126"),
        ({"entityType": "account", "jobName": None}, "400-126"),
        ({"entityType": "account", "jobType": "campaign_summary"}, "400-147"),
        ({"entityType": "account", "companyIds": [1]}, "400-147"),
        ({"jobName": "j"}, "400-104"),
        ({"entityType": "lead"}, "400-127"),
        ({"entityType": "account", "format": "json"}, "400-116"),
        ({"entityType": "account", "fields": ["{Account}.All", "{Account}.test"]}, "400-115"),
        ({"entityType": "account", "fields": []}, "400-103"),
        ({"entityType": "account", "fields": ["{Account}.id", "{Account}.id"]}, "400-103"),
        ({"entityType": "account", "fromDate": "2024-01-01", "toDate": "2024-01-02"}, "400-103"),
        ({"entityType": "account", "limit": "ten"}, "400-118"),
        ({"entityType": "account", "limit": 1001}, "400-119"),
        ({"entityType": "account", "accountListIds": ["x"]}, "400-129"),
        ({"entityType": "person", "personListIds": ["1", "y"]}, "400-141"),
        ({"entityType": "account", "accountListIds": list(range(10_001))}, "400-145"),
        ({"entityType": "account", "accountIds": [1]}, "400-103"),
        ({"entityType": "account", "adReportType": "campaign_summary"}, "400-139"),
        ({"entityType": "account", "source": ["google"]}, "400-103"),
        ({"entityType": "account", "filters": {"field": "{Account}.id"}}, "400-103"),
    ],
)
def test_create_validation(api: Client, body: dict[str, Any], code: str) -> None:
    body.setdefault("jobName", "validation")
    assert_error(api.call("POST", "/job", json=body), 400, code)


def test_create_body_must_be_a_json_object(api: Client) -> None:
    assert_error(api.call("POST", "/job", data=b"[]"), 400, "400-102")
    response = api.create(entityType="account", fields=["{Account}.All", "{Account}.test"])
    assert assert_error(response, 400, "400-115")["errorMessage"] == (
        "Invalid field names: {Account}.All, {Account}.test"
    )


def test_date_filters_compare_utc_days_inclusively(sb: Sandbox, api: Client) -> None:
    field = "{Account}.lastModifiedDate"
    gte = {"field": field, "operator": "Greater Than or Equal To", "values": ["2024-02-01"]}
    lte = {"field": field, "operator": "Less Than or Equal To", "values": ["2024-02-10"]}
    body = {"entityType": "account", "fields": ACCOUNT_FIELDS, "filters": [gte, lte]}
    rows = results(api.run(**body))
    days = {utc_day(r[field]) for r in rows}
    assert min(days) == date(2024, 2, 1) and max(days) == date(2024, 2, 10)
    expected = sb.expected_rows(
        "accounts", date_field="last_modified_date", start="2024-02-01", end="2024-02-10"
    )
    assert [r["{Account}.id"] for r in rows] == [r["id"] for r in expected]
    between = {"field": field, "operator": "Between", "values": ["2024-02-01", "2024-02-10"]}
    assert results(api.run(**{**body, "filters": [between]})) == rows
    strict = [
        {"field": field, "operator": "Greater Than", "values": ["2024-01-31T23:00:00Z"]},
        {"field": field, "operator": "Less Than", "values": ["2024-02-11"]},
    ]
    assert results(api.run(**{**body, "filters": strict})) == rows
    industry = {"field": "{Account}.industry", "operator": "In", "values": ["Retail", "Healthcare"]}
    picked = results(api.run(**{**body, "fields": ["{Account}.industry"], "filters": [industry]}))
    assert picked and {r["{Account}.industry"] for r in picked} == {"Retail", "Healthcare"}
    bad_date = {**gte, "values": ["02/01/2024"]}
    assert_error(api.create(**{**body, "filters": [bad_date]}), 400, "400-111")
    on_text = {**gte, "field": "{Account}.name"}
    assert_error(api.create(**{**body, "filters": [on_text]}), 400, "400-140")
    contains = {"field": "{Account}.name", "operator": "Contains", "values": ["Acme"]}
    assert_error(api.create(**{**body, "filters": [contains]}), 400, "400-103")
    unknown = {"field": "{Account}.nope", "operator": "Equals", "values": ["x"]}
    assert_error(api.create(**{**body, "filters": [unknown]}), 400, "400-115")
    bad_operator = {**gte, "operator": ">="}
    assert_error(api.create(**{**body, "filters": [bad_operator]}), 400, "400-103")
    created = {**gte, "field": "{Account}.createdDate"}
    assert_error(api.create(**{**body, "filters": [gte, created]}), 400, "400-103")


def test_activity_needs_from_and_to_dates_within_90_days(sb: Sandbox, api: Client) -> None:
    fields = ["{Activity}.id", "{Activity}.activityDate", "{Account}.id"]
    body: dict[str, Any] = {"entityType": "activity", "fields": fields}
    assert_error(api.create(**body), 400, "400-104")
    assert_error(api.create(**body, fromDate="2024-01-01"), 400, "400-112")
    assert_error(api.create(**body, fromDate="2024-02-01", toDate="2024-01-31"), 400, "400-113")
    assert_error(api.create(**body, fromDate="2024-01-01", toDate="2024/02/01"), 400, "400-111")
    start = date(2024, 1, 10)
    too_long = api.create(**body, fromDate=str(start), toDate=str(start + timedelta(days=90)))
    assert "90 days" in assert_error(too_long, 400, "400-114")["errorMessage"]
    job = api.run(**body, fromDate=str(start), toDate=str(start + timedelta(days=89)))
    rows = results(job)
    days = {utc_day(r["{Activity}.activityDate"]) for r in rows}
    assert rows and min(days) >= start and max(days) <= start + timedelta(days=89)
    one_day = api.run(**body, fromDate="2024-02-01T00:00:00Z", toDate="2024-02-01T00:00:00Z")
    assert {utc_day(r["{Activity}.activityDate"]) for r in results(one_day)} == {date(2024, 2, 1)}
    end = start + timedelta(days=89)
    expected = sb.expected_rows("activities", date_field="activity_date", start=start, end=end)
    assert [r["{Activity}.id"] for r in rows] == [r["id"] for r in expected]


def test_campaign_and_creative_reports_need_a_type_and_sources(sb: Sandbox, api: Client) -> None:
    body: dict[str, Any] = {"entityType": "campaign", "source": ["linkedin"]}
    assert_error(api.create(**body), 400, "400-104")
    assert_error(api.create(**body, adReportType="creative_rollup"), 400, "400-139")
    assert_error(api.create(entityType="campaign", adReportType="campaign_summary"), 400, "400-104")
    for source in (["tiktok"], [], "google"):
        bad = {**body, "source": source}
        assert_error(api.create(**bad, adReportType="campaign_summary"), 400, "400-138")
    rollup = {**body, "adReportType": "campaign_account_rollup"}
    assert_error(api.create(**rollup), 400, "400-104")
    linkedin = results(api.run(**rollup, fromDate="2024-01-01", toDate="2024-06-30"))
    assert linkedin and {r["campaignSource"] for r in linkedin} == {"linkedin"}
    summary = {"entityType": "campaign", "adReportType": "campaign_summary"}
    everything = results(api.run(**summary, source=["all"]))
    assert len(everything) == 30 > len(linkedin)
    assert {r["campaignId"] for r in everything} == {f"cmp-{i:07d}" for i in range(1, 31)}
    two = results(api.run(**summary, source=["LinkedIn", "google"]))
    assert {r["campaignSource"] for r in two} == {"linkedin", "google"}
    creative = {"entityType": "creative", "source": ["all"], "adReportType": "creative_rollup"}
    assert_error(api.create(**creative), 400, "400-104")
    assert len(results(api.run(**creative, fromDate="2024-01-01", toDate="2024-01-31"))) == 20


def test_buying_groups_take_account_ids(sb: Sandbox, api: Client) -> None:
    body = {"entityType": "accountBuyingGroup"}
    assert_error(api.create(**body), 400, "400-149")
    assert_error(api.create(**body, accountIds=[]), 400, "400-149")
    assert_error(api.create(**body, accountIds=["x1"]), 400, "400-148")
    assert_error(api.create(**body, accountIds="1"), 400, "400-148")
    assert_error(api.create(**body, accountIds=list(range(1, 10_002))), 400, "400-150")
    wanted = [1, "2", "acc-0000003", 4, 5, 6, 7, 8]
    rows = results(api.run(**body, accountIds=wanted))
    allowed = {f"acc-{i:07d}" for i in range(1, 9)}
    assert rows and {r["{Account}.id"] for r in rows} <= allowed
    every = sb.expected_rows("buying_groups")
    assert len(rows) == sum(r["account_id"] in allowed for r in every)
    sb.settings.uapi_accept_account_ids = False
    refused = assert_error(api.create(**body, accountIds=[1]), 400, "400-147")
    assert "accountIds" in refused["errorMessage"]
    assert len(results(api.run(**body))) == 50  # without the property: every row


def test_limit_caps_the_rows(api: Client) -> None:
    assert len(results(api.run(entityType="account", fields=ACCOUNT_FIELDS, limit="10"))) == 10


# --- status and list --------------------------------------------------------------------------


def test_failed_jobs_absent_keys_nulls_and_status_names(sb: Sandbox, api: Client) -> None:
    sb.settings.fail_jobs = {"accounts": 1}
    failed = api.run(entityType="account", fields=ACCOUNT_FIELDS)
    assert failed["jobStatus"] == "failed"
    assert failed["message"] and "resultsUrl" not in failed and "resultsUrls" not in failed
    assert_error(api.call("GET", "/job/no-such-job"), 404, "404-302")
    sb.settings.update({"uapi_nulls": True, "processing_seconds": 5.0})
    pending = api.status(_create_id(api))
    assert pending["message"] is None and pending["resultsUrl"] is None
    assert pending["resultsUrls"] is None
    sb.settings.uapi_status_names = {"accepted": "QUEUED", "processing": "Running"}
    assert api.status(pending["jobId"])["jobStatus"] in ("QUEUED", "Running")


def _create_id(api: Client) -> str:
    response = api.create(entityType="account", fields=ACCOUNT_FIELDS)
    assert response.status_code == 202, response.text
    return str(response.json()["jobId"])


def test_list_jobs_pages_newest_first(sb: Sandbox, api: Client) -> None:
    sb.settings.fail_jobs = {"people": 1}
    made = []
    for k in range(5):
        entity = ("account", "person")[k % 2]
        job = api.run(entityType=entity, jobName=f"job-{k}")
        made.append(job["jobId"])

    def page(**query: Any) -> dict[str, Any]:
        response = api.call("GET", "/jobs", params=query)
        assert response.status_code == 200, response.text
        return dict(response.json())

    first = page()
    assert set(first) == {"pageNo", "pageSize", "totalCount", "data"}
    assert (first["pageNo"], first["pageSize"], first["totalCount"]) == (1, 10, 5)
    assert [j["jobId"] for j in first["data"]] == made[::-1]
    assert set(first["data"][0]) == {
        "updatedAt", "createdAt", "jobName", "jobId", "jobStatus", "entityType",
    }  # fmt: skip
    assert [j["jobId"] for j in page(perPage=2, page=2)["data"]] == made[::-1][2:4]
    assert page(perPage=2, page=4)["data"] == []
    assert [j["jobId"] for j in page(sort="Ascending")["data"]] == made
    accounts = page(entityType="Account", jobStatus="All")
    assert accounts["totalCount"] == 3 and {j["entityType"] for j in accounts["data"]} == {
        "account"
    }
    assert [j["jobId"] for j in page(jobStatus="failed")["data"]] == [made[1]]
    assert page(jobStatus="finished")["totalCount"] == 4
    sb.settings.uapi_max_per_page = 3
    assert page(perPage=50)["pageSize"] == 3
    for query, code in (
        ({"sort": "newest"}, "400-120"),
        ({"page": "0"}, "400-121"),
        ({"perPage": "-1"}, "400-122"),
        ({"entityType": "lead"}, "400-123"),
        ({"jobStatus": "completed"}, "400-124"),
    ):
        assert_error(api.call("GET", "/jobs", params=query), 400, code)


# --- limits -----------------------------------------------------------------------------------


def test_one_running_job_per_tenant(sb: Sandbox, api: Client) -> None:
    sb.settings.processing_seconds = 1.0
    running = _create_id(api)
    body = assert_error(api.create(entityType="person"), 429, "429-102")
    assert "1 job" in body["errorMessage"]
    api.wait(running)
    sb.settings.processing_seconds = 0.02
    api.wait(_create_id(api))
    sb.settings.uapi_busy_next_creates = 1  # e.g. a job started from the UI
    assert_error(api.create(entityType="person"), 429, "429-102")
    api.wait(_create_id(api))


def test_daily_limits_per_endpoint_and_reset(sb: Sandbox, api: Client) -> None:
    sb.settings.uapi_daily_limits = {"create": 2, "status": 3, "list": 1, "fields": 1}
    assert api.call("GET", "/fields", params={"entityType": "account"}).status_code == 200
    second = api.call("GET", "/fields", params={"entityType": "account"})
    refused = assert_error(second, 429, "429-100")
    assert "60" not in refused["errorMessage"] and "1 fields calls" in refused["errorMessage"]
    assert api.call("GET", "/jobs").status_code == 200
    assert_error(api.call("GET", "/jobs"), 429, "429-100")
    job_id = _create_id(api)
    for _ in range(3):
        assert api.call("GET", f"/job/{job_id}").status_code == 200
    assert_error(api.call("GET", f"/job/{job_id}"), 429, "429-100")
    while sb.jobs()[0]["jobStatus"] != "finished":  # not a status call: none left today
        time.sleep(0.005)
    _create_id(api)
    assert_error(api.create(entityType="account"), 429, "429-100")
    usage = requests.get(sb.api_url + "/_sandbox/usage", timeout=10).json()
    assert usage["counts"] == {"token": 1, "fields": 2, "list": 2, "create": 3, "status": 4}
    assert usage["limits"] == sb.settings.uapi_daily_limits
    assert usage["resets_at"].endswith("T00:00:00Z")
    assert sb.usage() == usage["counts"]
    assert requests.post(sb.api_url + "/_sandbox/reset", timeout=10).status_code == 200
    assert sb.usage() == {} and sb.jobs() == []
    assert_error(api.call("GET", f"/job/{job_id}"), 404, "404-302")
    assert api.call("GET", "/jobs").json()["totalCount"] == 0
    assert api.call("GET", "/fields", params={"entityType": "account"}).status_code == 200


def test_export_quota_is_429_101(sb: Sandbox, api: Client) -> None:
    sb.settings.quota_exhausted_after_jobs = 1
    api.run(entityType="account", fields=ACCOUNT_FIELDS)
    assert "quota" in assert_error(api.create(entityType="account"), 429, "429-101")["errorMessage"]


# --- fault knobs ------------------------------------------------------------------------------


def test_injected_http_errors_use_the_uapi_envelope(sb: Sandbox, api: Client) -> None:
    endpoints = ("token", "fields", "create", "status", "list", "file")
    sb.settings.http_errors = dict.fromkeys(endpoints, 1)
    sb.settings.http_error_status = 500
    token = requests.post(
        sb.api_url + "/auth/v1/token",
        json={"clientId": sb.client_id, "clientSecret": sb.client_secret},
        timeout=10,
    )
    assert_error(token, 500, "500-100")
    assert_error(api.call("GET", "/fields", params={"entityType": "account"}), 500, "500-100")
    assert_error(api.create(entityType="account"), 500, "500-100")
    assert_error(api.call("GET", "/jobs"), 500, "500-100")
    job_id = _create_id(api)
    assert_error(api.call("GET", f"/job/{job_id}"), 500, "500-100")
    job = api.wait(job_id)
    assert requests.get(job["resultsUrl"], timeout=10).status_code == 500
    assert fetch(job["resultsUrl"])
    sb.settings.update({"http_errors": {"list": 1}, "http_error_status": 429})
    sb.settings.http_error_retry_after = 2
    limited = api.call("GET", "/jobs")
    assert limited.status_code == 429 and limited.json()["errorCode"] == "429-100"
    assert limited.headers["Retry-After"] == "2"


def test_cut_downloads_and_malformed_results(sb: Sandbox, api: Client) -> None:
    sb.settings.update({"cut_downloads": 1, "malformed": {"accounts": "ragged"}})
    job = api.run(entityType="account", fields=ACCOUNT_FIELDS)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(job["resultsUrl"], timeout=10).content  # noqa: B018
    data = fetch(job["resultsUrl"]).decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(data, newline="")))
    assert lines[0] == ["{Account}.lastModifiedDate", "{Account}.name", "{Account}.id"]
    assert lines[3][-1] == "unexpected" and len(lines[3]) == 4


# --- command line -----------------------------------------------------------------------------


def test_cli_dialect_uapi(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    command = [
        sys.executable, "-m", "tap_demandbase.sandbox", "--dialect", "uapi", "--port", "0",
        "--uapi-client-secret", "s3cret", "--uapi-token-ttl-seconds", "60",
        "--uapi-daily-limits", "create=5", "--rows", "accounts=7", "--ready-file", str(ready),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        url = ready.read_text().strip()
        token = requests.post(
            url + "/auth/v1/token",
            data={"client_id": "sandbox-client", "client_secret": "s3cret"},
            timeout=10,
        ).json()
        assert token["expiresIn"] == 60
        settings = requests.get(url + "/_sandbox/settings", timeout=10).json()
        assert settings["dialect"] == "uapi" and settings["rows"]["accounts"] == 7
        limits = settings["uapi_daily_limits"]
        assert limits == {"create": 5, "status": 300, "list": 1200, "fields": 60}
        process.terminate()
        out, _ = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0
    assert "client_id: sandbox-client" in out


def test_rate_limited_endpoints_answer_429_100_once_or_always(sb: Sandbox, api: Client) -> None:
    sb.settings.uapi_rate_limited = {"fields": 1, "list": -1}
    momentary = assert_error(
        api.call("GET", "/fields", params={"entityType": "account"}), 429, "429-100"
    )
    assert momentary["errorMessage"] == "Rate limit exceeded."
    assert api.call("GET", "/fields", params={"entityType": "account"}).status_code == 200
    for _ in range(2):
        spent = assert_error(api.call("GET", "/jobs"), 429, "429-100")
        assert "1200 list calls per day" in spent["errorMessage"]
        assert "T00:00:00Z" in spent["errorMessage"]
    assert sb.usage() == {"token": 1, "fields": 2, "list": 2}


def test_json_answers_and_redirects_replace_an_endpoints_answer(sb: Sandbox, api: Client) -> None:
    sb.settings.json_answers = {"fields": {"odd": [1]}, "token": []}
    assert api.call("GET", "/fields", params={"entityType": "account"}).json() == {"odd": [1]}
    body = {"grantType": "client_credentials", "clientId": "x", "clientSecret": "y"}
    token = requests.post(sb.api_url + "/auth/v1/token", json=body, timeout=10)
    assert (token.status_code, token.json()) == (200, [])
    sb.settings.json_answers = {}
    sb.settings.http_errors = {"token": 1, "create": 1}
    sb.settings.http_error_status = 308
    sb.settings.http_error_location = "http://127.0.0.1:9"
    moved = requests.post(
        sb.api_url + "/auth/v1/token", json=body, timeout=10, allow_redirects=False
    )
    assert (moved.status_code, moved.headers["Location"]) == (
        308,
        "http://127.0.0.1:9/auth/v1/token",
    )
    created = api.call("POST", "/job", json={"entityType": "account"}, allow_redirects=False)
    assert created.headers["Location"] == "http://127.0.0.1:9/data/export/v1/job"
    assert sb.jobs() == []
