"""Minimal HTTP clients of the two emulators, for tests that run the same steps on both dialects.

Each exports rows as ``{generator field name: raw cell}`` (the names the tap's properties carry),
with the dialect's own requests: export_v1 ``date_range`` filters; uapi ``filters`` on
``lastModifiedDate`` and ``fromDate``/``toDate`` on ``activityDate``. Cells are CSV text (an
empty cell is ``""``).
"""

from __future__ import annotations

import csv
import gzip
import io
import time
from datetime import date, datetime, timezone
from typing import Any

import requests

from tap_demandbase.sandbox import Sandbox
from tap_demandbase.sandbox.uapi.catalog import ENTITY_TYPES, UapiEntity, fields_for

Row = dict[str, str]
#: The uapi entity type of each generator entity these tests export.
UAPI_TYPES = {e.data.name: e for e in ENTITY_TYPES.values()}
#: A budget no test reaches (the daily limits have their own tests).
NO_LIMITS = {"create": 100_000, "status": 1_000_000, "list": 100_000, "fields": 100_000}


def parse_time(text: str) -> datetime:
    """Return an RFC 3339 job timestamp as a UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def csv_rows(data: bytes) -> list[Row]:
    """Return the records of one result file (gzip or not), by header name."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    header, *rows = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    return [dict(zip(header, row, strict=True)) for row in rows]


class Client:
    """What a test asks of either emulator."""

    dialect = ""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb

    def set(self, **knobs: Any) -> None:
        """Change knobs as another process would: ``POST /_sandbox/settings``."""
        response = requests.post(self.sb.api_url + "/_sandbox/settings", json=knobs, timeout=10)
        assert response.status_code == 200, response.text

    def field_names(self, entity: str) -> list[str]:
        """Return the fields discovery lists, by the dialect's names."""
        raise NotImplementedError

    def refuse(self, entity: str, fields: list[str]) -> tuple[int, str, str]:
        """Create a job naming ``fields`` (dialect names); return status, code and message."""
        raise NotImplementedError

    def export(
        self,
        entity: str,
        *,
        since: date | None = None,
        window: tuple[date, date] | None = None,
        fields: list[str] | None = None,
    ) -> list[Row]:
        """Return every row of an export (all fields unless ``fields``, generator names),
        ``since`` a day of ``last_modified_date`` or within ``window`` of ``activity_date``.
        """
        raise NotImplementedError

    #: The path of a job create, under the API's prefix.
    create_path = ""

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call the API at ``path`` (under its prefix), with its credentials."""
        raise NotImplementedError

    def small_job(self, entity: str) -> dict[str, Any]:
        """Return the body of a job exporting only the ids of ``entity``."""
        raise NotImplementedError

    def create(self, body: dict[str, Any]) -> str:
        """Create a job (202 expected); return its id."""
        raise NotImplementedError

    def wait(self, job_id: str, poll_every: float = 0.01) -> dict[str, Any]:
        """Poll a job's status every ``poll_every`` s until it ends; return its last JSON."""
        raise NotImplementedError

    def run_job(self, entity: str, poll_every: float) -> dict[str, Any]:
        """Create a small job, poll its status every ``poll_every`` s; return its last JSON."""
        return self.wait(self.create(self.small_job(entity)), poll_every)

    def job_seconds(self, job: dict[str, Any]) -> float:
        """Return the server time of a finished job, from its own timestamps."""
        raise NotImplementedError


class ExportV1Client(Client):
    """A client of the export_v1 emulator (the OpenAPI contract)."""

    dialect = "export_v1"
    create_path = "/jobs"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.sb.token}"}
        url = self.sb.api_url + "/export/v1" + path
        return requests.request(method, url, headers=headers, timeout=10, **kwargs)

    def field_names(self, entity: str) -> list[str]:
        entities = {e["name"]: e for e in self.call("GET", "/entities").json()["entities"]}
        return [f["name"] for f in entities[entity]["fields"]]

    def field_types(self, entity: str) -> dict[str, str]:
        entities = {e["name"]: e for e in self.call("GET", "/entities").json()["entities"]}
        return {f["name"]: f["type"] for f in entities[entity]["fields"]}

    def refuse(self, entity: str, fields: list[str]) -> tuple[int, str, str]:
        response = self.call("POST", "/jobs", json={"entity_type": entity, "fields": fields})
        body = response.json()
        return response.status_code, body.get("error", ""), body.get("message", "")

    def create(self, body: dict[str, Any]) -> str:
        response = self.call("POST", "/jobs", json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def wait(self, job_id: str, poll_every: float = 0.01) -> dict[str, Any]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            job: dict[str, Any] = self.call("GET", f"/jobs/{job_id}").json()
            if job["status"] not in ("pending", "processing"):
                return job
            time.sleep(poll_every)
        raise AssertionError(f"{job_id} did not finish")

    def export(
        self,
        entity: str,
        *,
        since: date | None = None,
        window: tuple[date, date] | None = None,
        fields: list[str] | None = None,
    ) -> list[Row]:
        body: dict[str, Any] = {"entity_type": entity}
        if fields is not None:
            body["fields"] = fields
        if since is not None:
            body["filters"] = {
                "date_range": {"field": "last_modified_date", "start": since.isoformat()}
            }
        if window is not None:
            start, end = (day.isoformat() for day in window)
            body["filters"] = {"date_range": {"field": "activity_date", "start": start, "end": end}}
        job = self.wait(self.create(body))
        assert job["status"] == "completed", job
        rows: list[Row] = []
        for part in range(1, job["file_parts"] + 1):
            redirect = self.call(
                "GET", f"/jobs/{job['id']}/download?part={part}", allow_redirects=False
            )
            assert redirect.status_code == 302, redirect.text
            rows += csv_rows(requests.get(redirect.headers["Location"], timeout=10).content)
        assert job["record_count"] == len(rows)
        return rows

    def small_job(self, entity: str) -> dict[str, Any]:
        return {"entity_type": entity, "fields": ["id"]}

    def job_seconds(self, job: dict[str, Any]) -> float:
        elapsed = parse_time(job["completed_at"]) - parse_time(job["created_at"])
        return elapsed.total_seconds()


class UapiClient(Client):
    """A client of the uapi emulator (Demandbase's production API)."""

    dialect = "uapi"
    create_path = "/job"

    def __init__(self, sb: Sandbox) -> None:
        super().__init__(sb)
        body = {"grantType": "client_credentials", "clientId": sb.client_id}
        body["clientSecret"] = sb.client_secret
        response = requests.post(sb.api_url + "/auth/v1/token", json=body, timeout=10)
        assert response.status_code == 200, response.text
        self.token = str(response.json()["accessToken"])

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        url = self.sb.api_url + "/data/export/v1" + path
        return requests.request(method, url, headers=headers, timeout=10, **kwargs)

    def entity_type(self, entity: str) -> UapiEntity:
        return UAPI_TYPES[entity]

    def fields(self, entity: str) -> list[dict[str, str]]:
        params = {"entityType": self.entity_type(entity).entity_type}
        response = self.call("GET", "/fields", params=params)
        assert response.status_code == 200, response.text
        return list(response.json())

    def field_names(self, entity: str) -> list[str]:
        return [f["name"] for f in self.fields(entity)]

    def refuse(self, entity: str, fields: list[str]) -> tuple[int, str, str]:
        body = self.body(entity)
        body["fields"] = fields
        response = self.call("POST", "/job", json=body)
        answer = response.json()
        return response.status_code, answer.get("errorCode", ""), answer.get("errorMessage", "")

    def body(self, entity: str, window: tuple[date, date] | None = None) -> dict[str, Any]:
        """Return a job body for ``entity`` (activities: over ``window``, else the data span)."""
        uapi = self.entity_type(entity)
        body: dict[str, Any] = {"jobName": "test", "entityType": uapi.entity_type}
        if uapi.date_range_field is not None:
            settings = self.sb.settings
            first, last = window or (settings.data_start, settings.data_start)
            if window is None:
                last = date.fromordinal(first.toordinal() + 89)
            body |= {"fromDate": first.isoformat(), "toDate": last.isoformat()}
        return body

    def create(self, body: dict[str, Any]) -> str:
        response = self.call("POST", "/job", json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["jobId"])

    def wait(self, job_id: str, poll_every: float = 0.01) -> dict[str, Any]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            response = self.call("GET", f"/job/{job_id}")
            assert response.status_code == 200, response.text
            job: dict[str, Any] = response.json()
            if job["jobStatus"] in ("finished", "failed"):
                return job
            time.sleep(poll_every)
        raise AssertionError(f"{job_id} did not finish")

    def export(
        self,
        entity: str,
        *,
        since: date | None = None,
        window: tuple[date, date] | None = None,
        fields: list[str] | None = None,
    ) -> list[Row]:
        uapi = self.entity_type(entity)
        live = fields_for(uapi, self.sb.settings)
        source = {f.name: f.source for f in live}
        by_source = {f.source: f.name for f in live}
        body = self.body(entity, window)
        if fields is not None:
            body["fields"] = [by_source[name] for name in fields]
        if since is not None:
            modified = by_source["last_modified_date"]
            body["filters"] = [
                {
                    "field": modified,
                    "operator": "Greater Than or Equal To",
                    "values": [since.isoformat()],
                }
            ]
        job = self.wait(self.create(body))
        assert job["jobStatus"] == "finished", job
        urls = job.get("resultsUrls") or [job["resultsUrl"]]
        rows = [row for url in urls for row in csv_rows(requests.get(url, timeout=10).content)]
        return [{source[name]: cell for name, cell in row.items()} for row in rows]

    def small_job(self, entity: str) -> dict[str, Any]:
        body = self.body(entity)
        body["fields"] = [f.name for f in self.entity_type(entity).fields[:1]]
        return body

    def job_seconds(self, job: dict[str, Any]) -> float:
        elapsed = parse_time(job["updatedAt"]) - parse_time(job["createdAt"])
        return elapsed.total_seconds()


CLIENTS: dict[str, type[Client]] = {"export_v1": ExportV1Client, "uapi": UapiClient}
