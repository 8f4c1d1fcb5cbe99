"""The ``export_v1`` API server: the contract's five operations and its ExportJob JSON.

Every request is auth -> injected fault or answer -> operation; see the package docstring for
the routes. The JSON of a job is the contract's ExportJob, bent by this emulator's knobs
(``record_count_offset``, ``file_size_offset``, ``gzip_file_size``, ``status_aliases``,
``job_json_patch``).
"""

from __future__ import annotations

import hmac
import re
import time

from typing_extensions import override

from tap_demandbase.sandbox.api import ApiError, ApiHandler, ApiServer
from tap_demandbase.sandbox.entities import ENTITIES
from tap_demandbase.sandbox.export_v1.job_requests import parse_export_request
from tap_demandbase.sandbox.export_v1.settings import ExportV1Settings
from tap_demandbase.sandbox.files import send_file
from tap_demandbase.sandbox.jobs import ACTIVE, STATUSES, Job, QuotaExceeded, rfc3339

_PREFIX = "/export/v1"
_JOB = re.compile(r"^/export/v1/jobs/([^/]+)$")
_DOWNLOAD = re.compile(r"^/export/v1/jobs/([^/]+)/download$")
_QUOTA_MESSAGE = "Daily export quota exceeded (10GB per day limit)"

#: What ``list_odd_jobs`` puts first in the job list: entries a client must skip.
_ODD_JOBS: tuple[object, ...] = (
    {"id": "odd-running", "entity_type": "accounts", "status": "running", "fields": ["id"]},
    {"entity_type": "accounts", "status": "completed", "fields": ["id"]},
    {"id": "odd-count", "entity_type": "accounts", "status": "completed", "record_count": "many"},
    {"id": "odd-time", "entity_type": "accounts", "status": "pending", "created_at": "yesterday"},
    "not a job",
    None,
)


def job_json(job: Job, api_url: str) -> dict[str, object]:
    """Return the ExportJob JSON of the contract (keys without a value are left out).

    Read it through the store (``JobStore.view``), consistently with the job's worker.
    """
    settings = ExportV1Settings.of(job.settings)
    out: dict[str, object] = {
        "id": job.id,
        "entity_type": job.entity,
        "status": job.status,
        "fields": list(job.fields),
        "filters": dict(job.filters_json),
        "created_at": rfc3339(job.created_at),
    }
    if job.status == "completed" and job.result is not None:
        size = job.served_bytes if settings.gzip_file_size == "served" else job.result.total_bytes
        out.update(
            record_count=job.result.record_count + settings.record_count_offset,
            file_size_bytes=size + settings.file_size_offset,
            file_parts=len(job.result.parts),
            download_url=f"{api_url}{_PREFIX}/jobs/{job.id}/download",
            completed_at=rfc3339(job.completed_at or 0.0),
            expires_at=rfc3339(job.expires_at or 0.0),
        )
    if job.error_message is not None:
        out["error_message"] = job.error_message
    out["status"] = settings.status_aliases.get(job.status, job.status)
    for key, value in settings.job_json_patch.items():
        if key in out and value is None:
            del out[key]
        elif key in out:
            out[key] = value
    return out


class ExportV1Handler(ApiHandler[ExportV1Settings]):
    """Routes one ``export_v1`` request: auth -> fault -> operation."""

    server: ExportV1Server

    @override
    def route_api(self) -> None:
        """Answer the request (see the package docstring for the routes)."""
        if not self.url_path.startswith(_PREFIX + "/"):
            self.send_problem(404, "not_found", f"No such resource: {self.url_path}")
            return
        if not self._authorized():
            self.send_problem(
                401,
                "unauthorized",
                "Missing or invalid bearer token",
                {"WWW-Authenticate": 'Bearer realm="demandbase"'},
            )
            return
        operation = self._operation()
        if operation is None:
            return
        endpoint, job_id = operation
        if self.injected_fault(endpoint) or self.injected_answer(endpoint):
            return
        if endpoint == "entities":
            catalogue = [self.settings.catalogue_entity(e) for e in ENTITIES.values()]
            self.send_json(200, {"entities": [e.to_json() for e in catalogue]})
        elif endpoint == "create":
            self._create()
        elif endpoint == "list":
            self._list()
        elif endpoint == "status":
            self._status(self._job(job_id))
        elif endpoint == "cancel":
            self._cancel(self._job(job_id))
        else:
            self._download(self._job(job_id))

    def _authorized(self) -> bool:
        expected = f"Bearer {self.settings.token}"
        return hmac.compare_digest(
            self.headers.get("Authorization", "").encode(), expected.encode()
        )

    def _operation(self) -> tuple[str, str] | None:
        """Return ``(endpoint name, job id)``, or answer 404/405 and return None."""
        path, method = self.url_path, self.command
        routes: list[tuple[str, str, str]] = []  # (method, endpoint, job id)
        if path == f"{_PREFIX}/entities":
            routes = [("GET", "entities", "")]
        elif path == f"{_PREFIX}/jobs":
            routes = [("GET", "list", ""), ("POST", "create", "")]
        elif match := _JOB.match(path):
            routes = [("GET", "status", match.group(1)), ("DELETE", "cancel", match.group(1))]
        elif match := _DOWNLOAD.match(path):
            routes = [("GET", "download", match.group(1))]
        else:
            self.send_problem(404, "not_found", f"No such resource: {path}")
            return None
        for route_method, endpoint, job_id in routes:
            if route_method == method:
                return endpoint, job_id
        allowed = ", ".join(m for m, _, _ in routes)
        self.send_problem(
            405, "method_not_allowed", f"{method} is not allowed on {path}", {"Allow": allowed}
        )
        return None

    def _job(self, job_id: str) -> Job:
        job = self.server.store.get(job_id)
        if job is None:
            raise ApiError(404, "job_not_found", f"Export job {job_id!r} not found")
        return job

    def _create(self) -> None:
        request = parse_export_request(self.json_body, self.settings)
        try:
            job = self.server.store.create(
                request.entity, request.fields, request.filters, request.filters_json
            )
        except QuotaExceeded as exhausted:
            self.send_json(
                429,
                {
                    "error": "quota_exceeded",
                    "message": _QUOTA_MESSAGE,
                    "resets_at": exhausted.resets_at,
                },
            )
            return
        if self.lost_create_answer():
            return
        self.send_json(202, self.server.describe(job), {"Location": f"{_PREFIX}/jobs/{job.id}"})

    def _status(self, job: Job) -> None:
        """Answer a job's status, or 404 while ``status_not_found_after_create`` hides it."""
        hidden = ExportV1Settings.of(job.settings).status_not_found_after_create
        if self.server.store.count_status_call(job) <= hidden:
            raise ApiError(404, "job_not_found", f"Export job {job.id!r} not found")
        self.send_json(200, self.server.describe(job))

    def _list(self) -> None:
        status = self.query.get("status") or None
        if status is not None and status not in STATUSES:
            raise ApiError(
                400, "invalid_status", f"Unknown status {status!r}; one of: {', '.join(STATUSES)}"
            )
        limit = self._int_param("limit", 25)
        offset = self._int_param("offset", 0)
        jobs: list[object] = list(self.server.describe_jobs(status)[::-1])
        if self.settings.list_odd_jobs:  # newest first, after entries that are not valid jobs
            jobs = [*_ODD_JOBS, *jobs]
        self.send_json(200, {"jobs": jobs[offset : offset + limit], "total": len(jobs)})

    def _int_param(self, name: str, default: int) -> int:
        text = self.query.get(name)
        if text is None or text == "":
            return default
        if not text.isdigit():
            raise ApiError(400, "invalid_parameter", f"{name} must be a non-negative integer")
        return int(text)

    def _cancel(self, job: Job) -> None:
        """Cancel a pending or processing job (409 otherwise).

        With ``finish_before_cancel`` the job is let finish first, so the answer is the 409 of a
        job that completed just as it was being cancelled.
        """
        store = self.server.store
        if ExportV1Settings.of(job.settings).finish_before_cancel:
            deadline = time.monotonic() + 60
            while store.view(job, lambda j: j.status in ACTIVE) and time.monotonic() < deadline:
                time.sleep(0.02)
        if not store.cancel(job):
            raise ApiError(
                409,
                "job_not_cancellable",
                f"Export job {job.id} is already {job.status} and cannot be cancelled",
            )
        self.send_json(200, self.server.describe(job))

    def _download(self, job: Job) -> None:
        text = self.query.get("part", "1")
        if not text.lstrip("-").isdigit():
            raise ApiError(400, "invalid_parameter", "part must be an integer (parts start at 1)")
        part = int(text)
        if job.status != "completed" or job.result is None:
            raise ApiError(
                404, "job_not_completed", f"Export job {job.id} is {job.status}, not completed"
            )
        path = self.server.store.part_file(job.id, part)
        if path is None:
            parts = len(job.result.parts)
            if 1 <= part <= parts:
                raise ApiError(404, "export_expired", f"The result of {job.id} has expired")
            raise ApiError(404, "part_not_found", f"{job.id} has parts 1 to {parts}, not {part}")
        if not self.settings.redirect_downloads:
            send_file(self, path, f"{job.id}-part-{part}.csv")
            return
        style = self.settings.redirect_style
        base = self.server.files_url + ("/hop/2" if style == "chain" else "")
        location = self.server.signed_url(job.id, part, base)
        if style == "file_url":
            location = "file:///etc/passwd"
        headers = {} if style == "no_location" else {"Location": location}
        self.send_body(302, "text/plain", b"", headers)


class ExportV1Server(ApiServer[ExportV1Settings]):
    """The ``export_v1`` API server: the shared job store and signer, with this API's JSON."""

    handler_class = ExportV1Handler

    def describe(self, job: Job) -> dict[str, object]:
        """Return ``job``'s ExportJob JSON, read consistently with respect to its worker."""
        return self.store.view(job, lambda j: job_json(j, self.url))

    @override
    def describe_jobs(self, status: str | None = None) -> list[dict[str, object]]:
        """Return the JSON of every job (optionally only those in ``status``), oldest first."""
        seen = self.store.view_all(lambda j: (j.status, job_json(j, self.url)))
        return [described for now, described in seen if status is None or now == status]
