"""The export_v1 emulator (``tap_demandbase.sandbox``) over real HTTP: listing, jobs, downloads,
redirects and signatures, filters, validation, paging, and every fault knob.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import requests

from tap_demandbase.sandbox import Sandbox, SandboxSettings
from tap_demandbase.sandbox.entities import DATETIME_TYPES, ENTITIES
from tests.support.expected import utc_day

ALL_TYPES = {
    "string", "text", "id", "reference", "picklist", "email", "url", "phone", "integer", "int",
    "long", "bigint", "number", "float", "double", "decimal", "currency", "percent", "boolean",
    "bool", "date", "datetime", "date-time", "timestamp", "geolocation",
}  # fmt: skip
FAST = {"pending_seconds": 0.01, "processing_seconds": 0.02}


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    settings = SandboxSettings(rows={"accounts": 300}, rows_per_part=100, **FAST)
    with Sandbox(settings) as sandbox:
        yield sandbox


def call(sb: Sandbox, method: str, path: str, **kwargs: object) -> requests.Response:
    headers = {"Authorization": f"Bearer {sb.token}"}
    return requests.request(method, sb.api_url + path, headers=headers, timeout=10, **kwargs)


def create(sb: Sandbox, **body: object) -> requests.Response:
    return call(sb, "POST", "/export/v1/jobs", json=body)


def wait(sb: Sandbox, job_id: str, seen: list[str] | None = None) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        job = call(sb, "GET", f"/export/v1/jobs/{job_id}").json()
        if seen is not None and (not seen or seen[-1] != job["status"]):
            seen.append(job["status"])
        if job["status"] not in ("pending", "processing"):
            return job
        time.sleep(0.005)
    raise AssertionError(f"{job_id} did not finish")


def run(sb: Sandbox, **body: object) -> dict:
    response = create(sb, **body)
    assert response.status_code == 202, response.text
    return wait(sb, response.json()["id"])


def presigned(sb: Sandbox, job: dict, part: int = 1) -> str:
    response = call(
        sb, "GET", f"/export/v1/jobs/{job['id']}/download?part={part}", allow_redirects=False
    )
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def download(sb: Sandbox, job: dict, part: int = 1) -> bytes:
    response = requests.get(presigned(sb, job, part), timeout=10)  # no token: pre-signed
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/csv")
    assert int(response.headers["Content-Length"]) == len(response.content)
    return response.content


def parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def as_cells(records: list[dict[str, str | None]], fields: list[str]) -> list[dict[str, str]]:
    return [{f: r[f] or "" for f in fields} for r in records]


def all_records(sb: Sandbox, job: dict) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for part in range(1, job["file_parts"] + 1):
        header, *rows = parse(download(sb, job, part))
        out += [dict(zip(header, row, strict=True)) for row in rows]
    return out


# --- catalogue and data ---------------------------------------------------------------------


def test_entities_listing_uses_every_type_name(sb: Sandbox) -> None:
    response = call(sb, "GET", "/export/v1/entities")
    assert response.status_code == 200
    entities = {e["name"]: e for e in response.json()["entities"]}
    assert set(entities) == {
        "accounts",
        "people",
        "opportunities",
        "activities",
        "campaigns",
        "buying_groups",
    }
    assert len(entities["accounts"]["fields"]) == 16
    types = {f["type"] for e in entities.values() for f in e["fields"]}
    assert types == ALL_TYPES
    for entity in entities.values():
        fields = {f["name"]: f for f in entity["fields"]}
        assert fields["id"]["type"] == "id"
        assert fields["created_date"]["type"] in DATETIME_TYPES
        assert fields["last_modified_date"]["type"] in DATETIME_TYPES
        assert any(n.startswith("custom_") and n.endswith("_c") for n in fields)
        assert all(f["description"] for f in entity["fields"])


def test_rows_are_deterministic_across_processes() -> None:
    code = (
        "import hashlib,json;from tap_demandbase.sandbox import Sandbox,SandboxSettings;"
        "s=Sandbox(SandboxSettings(rows={'people':500},seed=7));"
        "print(hashlib.sha256(json.dumps(s.expected_rows('people')).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(digests) == 1


# --- job life cycle and downloads -----------------------------------------------------------


def test_job_lifecycle_and_multipart_download_through_redirect() -> None:
    settings = SandboxSettings(
        rows={"accounts": 300}, pending_seconds=0.05, processing_seconds=0.1, rows_per_part=100
    )
    with Sandbox(settings) as sb:
        fields = ["id", "name", "description", "last_modified_date"]
        created = create(sb, entity_type="accounts", fields=fields)
        assert created.status_code == 202
        assert created.json()["status"] == "pending"
        assert created.json()["id"] == "job-000001"
        seen: list[str] = []
        job = wait(sb, created.json()["id"], seen)
        assert seen == ["pending", "processing", "completed"]
        assert job["record_count"] == 300 and job["file_parts"] == 3
        assert job["download_url"] == f"{sb.api_url}/export/v1/jobs/job-000001/download"
        for key in ("created_at", "completed_at", "expires_at"):
            assert job[key].endswith("Z")
        parts = [download(sb, job, n) for n in (1, 2, 3)]
        assert job["file_size_bytes"] == sum(len(p) for p in parts)
        assert parts[0].startswith(b"\xef\xbb\xbf") and not parts[1].startswith(b"\xef\xbb\xbf")
        assert all(b"\r\n" in p for p in parts)
        for part in parts:
            assert parse(part)[0] == list(reversed(fields))
        assert all_records(sb, job) == as_cells(sb.expected_rows("accounts"), fields)
        files = [r for r in sb.requests() if r.server == "files"]
        assert files and not any(r.has_authorization for r in files)
        assert sb.jobs()[0]["status"] == "completed"


def test_omitted_fields_export_everything_and_zero_rows_give_a_header_part(sb: Sandbox) -> None:
    job = run(sb, entity_type="campaigns")
    assert job["fields"] == ENTITIES["campaigns"].field_names
    job = run(
        sb,
        entity_type="accounts",
        fields=["id"],
        filters={"date_range": {"field": "last_modified_date", "start": "2030-01-01"}},
    )
    assert job["record_count"] == 0 and job["file_parts"] == 1
    assert parse(download(sb, job)) == [["id"]]


def test_files_host_refuses_authorization_and_checks_signature(sb: Sandbox) -> None:
    job = run(sb, entity_type="accounts", fields=["id"])
    url = presigned(sb, job)
    refused = requests.get(url, headers={"Authorization": f"Bearer {sb.token}"}, timeout=10)
    assert refused.status_code == 400 and "Only one auth mechanism allowed" in refused.text
    tampered = requests.get(url.replace("part-1", "part-2"), timeout=10)
    assert tampered.status_code == 403 and "SignatureDoesNotMatch" in tampered.text
    assert url.startswith(sb.files_url + "/exports/job-000001/part-1.csv?expires=")


def test_expired_url_is_refused_and_a_fresh_one_works(sb: Sandbox) -> None:
    job = run(sb, entity_type="accounts", fields=["id"])
    sb.settings.expire_next_urls = 1
    expired = requests.get(presigned(sb, job), timeout=10)
    assert expired.status_code == 403 and "Request has expired" in expired.text
    assert requests.get(presigned(sb, job), timeout=10).status_code == 200


def test_range_requests(sb: Sandbox) -> None:
    job = run(sb, entity_type="accounts", fields=["id", "name"])
    url = presigned(sb, job)
    whole = requests.get(url, timeout=10).content
    tail = requests.get(url, headers={"Range": "bytes=100-"}, timeout=10)
    assert tail.status_code == 206 and tail.content == whole[100:]
    assert tail.headers["Content-Range"] == f"bytes 100-{len(whole) - 1}/{len(whole)}"
    middle = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert middle.status_code == 206 and middle.content == whole[10:20]
    beyond = requests.get(url, headers={"Range": f"bytes={len(whole)}-"}, timeout=10)
    assert beyond.status_code == 416
    sb.settings.supports_range = False
    ignored = requests.get(url, headers={"Range": "bytes=100-"}, timeout=10)
    assert ignored.status_code == 200 and ignored.content == whole


def test_direct_download_without_redirect(sb: Sandbox) -> None:
    sb.settings.redirect_downloads = False
    job = run(sb, entity_type="accounts", fields=["id"])
    response = call(sb, "GET", f"/export/v1/jobs/{job['id']}/download", allow_redirects=False)
    assert response.status_code == 200 and parse(response.content)[0] == ["id"]
    assert not [r for r in sb.requests() if r.server == "files"]


def test_download_404s(sb: Sandbox) -> None:
    sb.settings.pending_seconds = 5
    pending = create(sb, entity_type="accounts", fields=["id"]).json()
    response = call(sb, "GET", f"/export/v1/jobs/{pending['id']}/download")
    assert response.status_code == 404 and response.json()["error"] == "job_not_completed"
    sb.settings.pending_seconds = 0.01
    job = run(sb, entity_type="accounts", fields=["id"])
    for part in (0, 9):
        response = call(sb, "GET", f"/export/v1/jobs/{job['id']}/download?part={part}")
        assert response.status_code == 404
    assert call(sb, "GET", "/export/v1/jobs/job-999999/download").status_code == 404
    sb.settings.result_ttl_seconds = 0
    gone = run(sb, entity_type="accounts", fields=["name"])
    response = call(sb, "GET", f"/export/v1/jobs/{gone['id']}/download")
    assert response.status_code == 404 and response.json()["error"] == "export_expired"


# --- filters --------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["last_modified_date", "created_date", "first_engagement_date"])
def test_date_range_is_inclusive_in_utc_days(sb: Sandbox, field: str) -> None:
    everything = sb.expected_rows("accounts")
    start, end = "2024-01-10", "2024-02-05"
    job = run(
        sb,
        entity_type="accounts",
        fields=["id", field],
        filters={"date_range": {"field": field, "start": start, "end": end}},
    )
    expected = sb.expected_rows("accounts", date_field=field, start=start, end=end)
    assert all_records(sb, job) == as_cells(expected, ["id", field])
    independent = [
        r
        for r in everything
        if r[field] and date(2024, 1, 10) <= utc_day(r[field] or "") <= date(2024, 2, 5)
    ]
    assert expected == independent and 0 < len(expected) < len(everything)
    days = {utc_day(r[field] or "") for r in expected}
    if field == "last_modified_date":
        assert {date(2024, 1, 10), date(2024, 2, 5)} <= days


def test_account_list_filter(sb: Sandbox) -> None:
    job = run(
        sb,
        entity_type="accounts",
        fields=["id"],
        filters={
            "account_list_id": "list-42",
            "date_range": {
                "field": "last_modified_date",
                "start": "2024-01-01",
                "end": "2024-02-01",
            },
        },
    )
    expected = sb.expected_rows(
        "accounts",
        account_list_id="list-42",
        date_field="last_modified_date",
        start="2024-01-01",
        end="2024-02-01",
    )
    assert [r["id"] for r in all_records(sb, job)] == [r["id"] for r in expected]
    assert 10 < len(expected) < 60
    import zlib

    assert all(zlib.crc32(f"list-42:{r['id']}".encode()) % 4 == 0 for r in expected)


# --- validation, auth, cancel, list ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error", "mentions"),
    [
        ({"entity_type": "widgets"}, "invalid_entity_type", ["widgets", "buying_groups"]),
        ({"entity_type": "accounts", "fields": ["id", "nope"]}, "invalid_field",
         ["nope", "accounts"]),
        ({"entity_type": "accounts", "fields": []}, "invalid_fields", []),
        ({"entity_type": "accounts", "filters": {"date_range": {"field": "name"}}},
         "invalid_date_field", ["name"]),
        ({"entity_type": "accounts", "filters": {"date_range": {
            "field": "created_date", "start": "01/02/2024"}}}, "invalid_date_range", []),
        ({"entity_type": "accounts", "filters": {"date_range": {
            "field": "created_date", "start": "2024-02-02", "end": "2024-02-01"}}},
         "invalid_date_range", []),
        ({"entity_type": "accounts", "filters": {"date_range": {
            "field": "created_date", "start": "2024-02-30"}}}, "invalid_date_range", []),
        ({"entity_type": "accounts", "filters": {"owner": "me"}}, "invalid_filters", []),
        ({"entity_type": "accounts", "format": "parquet"}, "invalid_format", []),
    ],
)  # fmt: skip
def test_create_validation(sb: Sandbox, body: dict, error: str, mentions: list[str]) -> None:
    response = create(sb, **body)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert all(word in response.json()["message"] for word in mentions)
    assert sb.jobs() == []


def test_unauthorized(sb: Sandbox) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": sb.token}):
        response = requests.get(sb.api_url + "/export/v1/entities", headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized" and response.json()["message"]
    assert not any(r.has_authorization for r in sb.requests()[:1])
    assert "wrong" not in repr(sb.requests())


def test_cancel(sb: Sandbox) -> None:
    sb.settings.pending_seconds = 5
    job = create(sb, entity_type="accounts", fields=["id"]).json()
    cancelled = call(sb, "DELETE", f"/export/v1/jobs/{job['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = call(sb, "DELETE", f"/export/v1/jobs/{job['id']}")
    assert again.status_code == 409 and again.json()["error"] == "job_not_cancellable"
    sb.settings.pending_seconds = 0.01
    done = run(sb, entity_type="accounts", fields=["id"])
    assert call(sb, "DELETE", f"/export/v1/jobs/{done['id']}").status_code == 409
    assert call(sb, "DELETE", "/export/v1/jobs/job-999999").status_code == 404
    assert call(sb, "GET", "/export/v1/jobs/job-999999").status_code == 404
    sb.settings.processing_seconds = 5
    busy = create(sb, entity_type="accounts", fields=["id"]).json()
    while call(sb, "GET", f"/export/v1/jobs/{busy['id']}").json()["status"] == "pending":
        time.sleep(0.005)
    assert call(sb, "DELETE", f"/export/v1/jobs/{busy['id']}").json()["status"] == "cancelled"
    time.sleep(0.05)
    assert call(sb, "GET", f"/export/v1/jobs/{busy['id']}").json()["status"] == "cancelled"


def test_explicit_start_and_stop() -> None:
    sandbox = Sandbox(SandboxSettings(token="other")).start()
    try:
        assert sandbox.token == "other" and sandbox.api_url.startswith("http://127.0.0.1:")
        assert sandbox.files_url != sandbox.api_url
    finally:
        sandbox.stop()
    with pytest.raises(RuntimeError):
        _ = sandbox.api_url


def test_list_paging(sb: Sandbox) -> None:
    sb.settings.pending_seconds = 5
    ids = [create(sb, entity_type="campaigns", fields=["id"]).json()["id"] for _ in range(5)]
    call(sb, "DELETE", f"/export/v1/jobs/{ids[0]}")
    page = call(sb, "GET", "/export/v1/jobs?limit=2&offset=1").json()
    assert page["total"] == 5 and [j["id"] for j in page["jobs"]] == [ids[3], ids[2]]
    default = call(sb, "GET", "/export/v1/jobs").json()
    assert [j["id"] for j in default["jobs"]] == ids[::-1]
    pending = call(sb, "GET", "/export/v1/jobs?status=pending").json()
    assert pending["total"] == 4
    assert call(sb, "GET", "/export/v1/jobs?status=bogus").status_code == 400
    assert call(sb, "GET", "/export/v1/jobs?limit=-1").status_code == 400


# --- fault knobs ----------------------------------------------------------------------------


def test_http_errors_per_endpoint(sb: Sandbox) -> None:
    job = run(sb, entity_type="accounts", fields=["id"])
    url = presigned(sb, job)
    jid = job["id"]
    calls = {
        "entities": lambda: call(sb, "GET", "/export/v1/entities"),
        "create": lambda: create(sb, entity_type="accounts", fields=["id"]),
        "status": lambda: call(sb, "GET", f"/export/v1/jobs/{jid}"),
        "list": lambda: call(sb, "GET", "/export/v1/jobs"),
        "cancel": lambda: call(sb, "DELETE", f"/export/v1/jobs/{jid}"),
        "download": lambda: call(
            sb, "GET", f"/export/v1/jobs/{jid}/download", allow_redirects=False
        ),
        "file": lambda: requests.get(url, timeout=10),
    }
    sb.settings.http_errors = {name: 2 for name in calls}
    for name, make in calls.items():
        assert [make().status_code for _ in range(2)] == [503, 503], name
        assert make().status_code in (200, 202, 302, 409), name
    sb.settings.http_error_status = 500
    sb.settings.http_errors = {"entities": 1}
    response = call(sb, "GET", "/export/v1/entities")
    assert response.status_code == 500 and response.json()["error"] == "internal_server_error"


def test_json_answers_and_redirects_replace_an_endpoints_answer(sb: Sandbox) -> None:
    sb.settings.json_answers = {"entities": [1, "two"], "list": {}}
    assert call(sb, "GET", "/export/v1/entities").json() == [1, "two"]
    assert call(sb, "GET", "/export/v1/jobs").json() == {}
    created = create(sb, entity_type="accounts", fields=["id"])
    assert created.status_code == 202 and created.json()["status"] == "pending"
    sb.settings.json_answers = {"create": None}
    assert create(sb, entity_type="accounts", fields=["id"]).json() is None
    assert len(sb.jobs()) == 1  # an injected answer creates nothing
    sb.settings.http_errors = {"status": 1}
    sb.settings.http_error_status = 307
    sb.settings.http_error_location = "http://127.0.0.1:9/"
    moved = call(sb, "GET", "/export/v1/jobs/abc?x=1", allow_redirects=False)
    assert moved.status_code == 307
    assert moved.headers["Location"] == "http://127.0.0.1:9/export/v1/jobs/abc?x=1"


def test_fail_jobs(sb: Sandbox) -> None:
    sb.settings.fail_jobs = {"accounts": 1}
    failed = run(sb, entity_type="accounts", fields=["id"])
    assert failed["status"] == "failed"
    assert failed["error_message"] == (
        "Export failed: simulated internal error while exporting accounts"
    )
    assert "download_url" not in failed
    assert run(sb, entity_type="people", fields=["id"])["status"] == "completed"
    assert run(sb, entity_type="accounts", fields=["id"])["status"] == "completed"
    sb.settings.fail_jobs = {"accounts": -1}
    assert [run(sb, entity_type="accounts", fields=["id"])["status"] for _ in range(2)] == [
        "failed",
        "failed",
    ]


def test_quota_after_jobs_and_bytes(sb: Sandbox) -> None:
    sb.settings.quota_exhausted_after_jobs = 1
    assert create(sb, entity_type="accounts", fields=["id"]).status_code == 202
    refused = create(sb, entity_type="accounts", fields=["id"])
    assert refused.status_code == 429
    body = refused.json()
    assert body["error"] == "quota_exceeded"
    assert body["message"] == "Daily export quota exceeded (10GB per day limit)"
    midnight = datetime.fromisoformat(body["resets_at"].replace("Z", "+00:00"))
    assert (midnight.hour, midnight.minute) == (0, 0) and midnight > datetime.now(timezone.utc)
    sb.settings.quota_exhausted_after_jobs = None
    sb.reset()  # the first job's bytes (counted once it completes) must not decide the next
    sb.settings.quota_bytes = 1000
    job = run(sb, entity_type="accounts", fields=["id", "name"])
    assert job["file_size_bytes"] > 1000
    assert create(sb, entity_type="accounts", fields=["id"]).status_code == 429


def test_cut_download_breaks_mid_body(sb: Sandbox) -> None:
    job = run(sb, entity_type="accounts", fields=["id", "description"])
    sb.settings.cut_downloads = 1
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(presigned(sb, job), timeout=10)
    assert requests.get(presigned(sb, job), timeout=10).status_code == 200
    sb.settings.redirect_downloads = False
    sb.settings.cut_downloads = 1
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        call(sb, "GET", f"/export/v1/jobs/{job['id']}/download")


def _data_lines(data: bytes) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig", errors="replace"), newline=""))
    return [(reader.line_num, row) for row in reader]


@pytest.mark.parametrize(
    ("defect", "line", "check"),
    [
        ("ragged", 4, lambda row, header: len(row) == len(header) + 1),
        ("bad_integer", 3, lambda row, header: row[header.index("employee_count")] == "12x"),
        ("bad_boolean", 3, lambda row, header: row[header.index("is_customer")] == "maybe"),
        ("bad_date", 3,
         lambda row, header: row[header.index("last_modified_date")] == "2024-13-45T99:00:00Z"),
        ("bad_utf8", 3, lambda row, header: "\ufffd" in row[header.index("account_number")]),
        ("no_header", 1, lambda row, header: row[-1] == "acc-0000001" and row != header),
    ],
)  # fmt: skip
def test_malformed_defects(sb: Sandbox, defect: str, line: int, check: object) -> None:
    fields = [
        "id",
        "description",
        "employee_count",
        "is_customer",
        "last_modified_date",
        "account_number",
    ]
    header = list(reversed(fields))
    clean = run(sb, entity_type="accounts", fields=fields)
    sb.settings.malformed = {"accounts": defect}
    job = run(sb, entity_type="accounts", fields=fields)
    data = download(sb, job)
    if defect == "bad_utf8":
        assert b"\xff\xfe" in data
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8-sig")
    lines = dict(_data_lines(data))
    assert callable(check) and check(lines[line], header)
    assert download(sb, job, 2) == download(sb, clean, 2)  # only part 1 is damaged
    sb.settings.malformed = {}
    assert download(sb, run(sb, entity_type="accounts", fields=fields)) == download(sb, clean)


def test_column_order_bom_and_cache(sb: Sandbox) -> None:
    fields = ["name", "id", "domain"]
    sb.settings.column_order = "sorted"
    sb.settings.bom = "all"
    job = run(sb, entity_type="accounts", fields=fields)
    assert all(download(sb, job, n).startswith(b"\xef\xbb\xbfdomain,id,name\r\n") for n in (1, 2))
    sb.settings.column_order = "requested"
    sb.settings.bom = "none"
    first = run(sb, entity_type="accounts", fields=fields)
    assert download(sb, first).startswith(b"name,id,domain\r\n")
    second = run(sb, entity_type="accounts", fields=fields)
    assert second["id"] != first["id"] and download(sb, second) == download(sb, first)
    written = {p.parent.name for p in Path(sb._directory or "").glob("*/part-1.csv")}
    assert first["id"] in written and second["id"] not in written  # reused, not rewritten


def test_bom_led_rows_start_each_row_of_a_text_column_with_u_feff(sb: Sandbox) -> None:
    sb.settings.bom_led_rows = True
    sb.settings.column_order = "requested"
    job = run(sb, entity_type="accounts", fields=["description", "id"])
    data = download(sb, job)
    assert data.startswith(b"\xef\xbb\xbfdescription,id\r\n")  # the file's own BOM
    rows = parse(data)[1:]  # utf-8-sig: only the file's BOM is dropped
    plain = {r["id"]: r["description"] or "" for r in sb.expected_rows("accounts")}
    assert rows and all(cells[0] == "\ufeff" + plain[cells[1]] for cells in rows)
    assert "\ufeff" in [cells[0] for cells in rows]  # a BOM-only cell where it was empty
    typed = run(sb, entity_type="accounts", fields=["employee_count", "id"])
    assert b"\xef\xbb\xbf" not in download(sb, typed)[3:]  # a number column is left alone


def _served_bytes(sb: Sandbox, job: dict, part: int) -> bytes:
    """The body of a download exactly as sent (a gzip Content-Encoding left undecoded)."""
    with requests.get(presigned(sb, job, part), timeout=10, stream=True) as response:
        assert response.status_code == 200, response.text
        return response.raw.read(decode_content=False)


@pytest.mark.parametrize("form", ["gzip_encoding", "gzip_files"])
@pytest.mark.parametrize("counted", ["served", "decoded"])
def test_gzip_parts_report_their_served_or_their_decoded_size(
    sb: Sandbox, form: str, counted: str
) -> None:
    setattr(sb.settings, form, True)
    sb.settings.gzip_file_size = counted
    job = run(sb, entity_type="accounts", fields=["id", "name"])
    served = [_served_bytes(sb, job, n) for n in range(1, job["file_parts"] + 1)]
    assert all(body.startswith(b"\x1f\x8b") for body in served)
    decoded = [gzip.decompress(body) for body in served]
    assert sum(len(parse(body)) - 1 for body in decoded) == 300
    sizes = {"served": sum(map(len, served)), "decoded": sum(map(len, decoded))}
    assert sizes["served"] < sizes["decoded"]
    assert job["file_size_bytes"] == sizes[counted]


# --- sandbox controls and CLI ---------------------------------------------------------------


def test_admin_endpoints(sb: Sandbox) -> None:
    run(sb, entity_type="accounts", fields=["id"])
    base = sb.api_url + "/_sandbox"
    changed = requests.post(base + "/settings", json={"cut_downloads": 2, "rows": {"people": 9}})
    assert changed.status_code == 200 and sb.settings.cut_downloads == 2
    assert sb.settings.rows["people"] == 9
    assert requests.get(base + "/settings", timeout=10).json()["data_start"] == "2024-01-01"
    assert requests.post(base + "/settings", json={"bom": "sometimes"}).status_code == 400
    assert requests.post(base + "/settings", json={"nope": 1}).status_code == 400
    recorded = requests.get(base + "/requests", timeout=10).json()["requests"]
    assert recorded and recorded[0]["method"] == "POST" and recorded[0]["status"] == 202
    assert requests.get(base + "/jobs", timeout=10).json()["jobs"][0]["id"] == "job-000001"
    assert requests.post(base + "/reset", timeout=10).status_code == 200
    assert sb.requests() == []


def test_cli_runs_until_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tap_demandbase.sandbox",
            "--port",
            "0",
            "--token",
            "t0k",
            "--rows",
            "accounts=50",
            "--ready-file",
            str(ready),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        url = ready.read_text().strip()
        entities = requests.get(
            url + "/export/v1/entities", headers={"Authorization": "Bearer t0k"}, timeout=10
        )
        assert entities.status_code == 200
        settings = requests.get(url + "/_sandbox/settings", timeout=10).json()
        assert settings["rows"]["accounts"] == 50
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0
    assert out.startswith(f"Demandbase sandbox API at {url} (token: t0k), downloads at http://")
    json.dumps(settings)


def test_cli_on_a_port_in_use_is_one_line_naming_it() -> None:
    with Sandbox(SandboxSettings()) as running:
        port = running.api_url.rsplit(":", 1)[1]
        done = subprocess.run(
            [sys.executable, "-m", "tap_demandbase.sandbox", "--port", port],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.splitlines()
    assert f"the sandbox's API cannot listen on 127.0.0.1:{port}" in line
    assert "pick another --port" in line
    assert not done.stdout
