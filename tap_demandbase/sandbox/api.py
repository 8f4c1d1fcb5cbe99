"""The emulated Data Export API: the five operations of the contract plus the sandbox's controls.

Contract routes (``Authorization: Bearer <token>`` required on every ``/export`` path)::

    GET    /export/v1/entities                  entities
    POST   /export/v1/jobs                      create    -> 202 ExportJob | 400 | 429
    GET    /export/v1/jobs?status&limit&offset  list      -> {"jobs": [...], "total": n}
    GET    /export/v1/jobs/{id}                 status    -> ExportJob | 404
    DELETE /export/v1/jobs/{id}                 cancel    -> 200 ExportJob | 404 | 409
    GET    /export/v1/jobs/{id}/download?part=N download  -> 302 to the files host | 200 CSV | 404

The endpoint names on the right are the keys of ``SandboxSettings.http_errors``. Errors are always
JSON ``{"error": "<short_code>", "message": "<sentence>"}``; the quota 429 adds ``resets_at``.

Sandbox controls (no auth, not recorded): ``GET /_sandbox/requests``, ``GET /_sandbox/jobs``,
``GET``/``POST /_sandbox/settings`` (POST a JSON object of knobs), ``POST /_sandbox/reset``
(forgets the request log, every job and the quota counters; knobs stay as they are) -- so a
demo or benchmark in another process can steer the sandbox. The uapi dialect (``uapi.py``)
serves the same controls through a subclass of these server and handler classes.
"""

from __future__ import annotations

import hmac
import re
import time
from dataclasses import dataclass
from datetime import date

from typing_extensions import override

from tap_demandbase.sandbox.data import Filters
from tap_demandbase.sandbox.entities import ENTITIES
from tap_demandbase.sandbox.files import UrlSigner, part_path, send_file
from tap_demandbase.sandbox.handler import ADMIN_PREFIX, SandboxHandler, SandboxServer
from tap_demandbase.sandbox.jobs import STATUSES, Job, JobStore, QuotaExceeded
from tap_demandbase.sandbox.log import RequestLog
from tap_demandbase.sandbox.settings import SandboxSettings

_PREFIX = "/export/v1"
_JOB = re.compile(r"^/export/v1/jobs/([^/]+)$")
_DOWNLOAD = re.compile(r"^/export/v1/jobs/([^/]+)/download$")
_FILTER_KEYS = ("date_range", "account_list_id")
_DATE_RANGE_KEYS = ("field", "start", "end")


#: What ``list_odd_jobs`` puts first in the job list: entries a client must skip.
_ODD_JOBS: tuple[object, ...] = (
    {"id": "odd-running", "entity_type": "accounts", "status": "running", "fields": ["id"]},
    {"entity_type": "accounts", "status": "completed", "fields": ["id"]},
    {"id": "odd-count", "entity_type": "accounts", "status": "completed", "record_count": "many"},
    {"id": "odd-time", "entity_type": "accounts", "status": "pending", "created_at": "yesterday"},
    "not a job",
    None,
)


class ApiError(Exception):
    """A request the API refuses: becomes ``{"error": code, "message": message}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ExportRequest:
    """A validated ``POST /export/v1/jobs`` body."""

    entity: str
    fields: list[str]
    filters: Filters
    filters_json: dict[str, object]


def parse_export_request(body: object) -> ExportRequest:
    """Validate a create-job body against the catalogue; omitted ``fields`` means all fields.

    Raises:
        ApiError: 400 naming what is wrong (unknown entity or field, bad date range, ...).
    """
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "The request body must be a JSON object")
    unknown = sorted(set(body) - {"entity_type", "fields", "filters", "format"})
    if unknown:
        raise ApiError(400, "invalid_request", f"Unknown request properties: {', '.join(unknown)}")
    name = body.get("entity_type")
    entity = ENTITIES.get(name) if isinstance(name, str) else None
    if entity is None:
        raise ApiError(
            400,
            "invalid_entity_type",
            f"Unknown entity_type {name!r}; valid entity types: {', '.join(ENTITIES)}",
        )
    if body.get("format", "csv") != "csv":
        raise ApiError(400, "invalid_format", f"Unsupported format {body['format']!r}; use 'csv'")
    fields = body.get("fields")
    if fields is None:
        fields = entity.field_names
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        raise ApiError(400, "invalid_fields", "fields must be a non-empty list of field names")
    for field_name in fields:
        if entity.field(field_name) is None:
            raise ApiError(
                400,
                "invalid_field",
                f"Unknown field {field_name!r} for entity {entity.name!r}; "
                f"valid fields: {', '.join(entity.field_names)}",
            )
    if len(set(fields)) != len(fields):
        raise ApiError(400, "invalid_fields", "fields must not name a field twice")
    raw_filters = body.get("filters") or {}
    if not isinstance(raw_filters, dict):
        raise ApiError(400, "invalid_filters", "filters must be a JSON object")
    unknown = sorted(set(raw_filters) - set(_FILTER_KEYS))
    if unknown:
        raise ApiError(400, "invalid_filters", f"Unknown filters: {', '.join(unknown)}")
    filters = Filters()
    if raw_filters.get("date_range") is not None:
        filters = _parse_date_range(entity.name, raw_filters["date_range"])
    list_id = raw_filters.get("account_list_id")
    if list_id is not None:
        if not isinstance(list_id, str) or not list_id:
            raise ApiError(400, "invalid_filters", "account_list_id must be a non-empty string")
        filters = Filters(filters.date_field, filters.start, filters.end, list_id)
    return ExportRequest(entity.name, list(fields), filters, dict(raw_filters))


def _parse_date_range(entity_name: str, raw: object) -> Filters:
    """Validate ``filters.date_range``: a date-like field and ``YYYY-MM-DD`` bounds, start <= end.

    Either bound may be omitted (open range); ``field`` may not.
    """
    entity = ENTITIES[entity_name]
    if not isinstance(raw, dict) or set(raw) - set(_DATE_RANGE_KEYS):
        raise ApiError(
            400, "invalid_date_range", "date_range must be an object with field, start and end"
        )
    field_name = raw.get("field")
    field = entity.field(field_name) if isinstance(field_name, str) else None
    if field is None or not field.is_date_like:
        raise ApiError(
            400,
            "invalid_date_field",
            f"date_range.field {field_name!r} is not a date field of {entity.name!r}; "
            f"date fields: {', '.join(entity.date_fields)}",
        )
    bounds: dict[str, date | None] = {}
    for key in ("start", "end"):
        value = raw.get(key)
        if value is None:
            bounds[key] = None
            continue
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ApiError(
                400, "invalid_date_range", f"date_range.{key} must be a YYYY-MM-DD date: {value!r}"
            )
        try:
            bounds[key] = date.fromisoformat(value)
        except ValueError:
            raise ApiError(
                400, "invalid_date_range", f"date_range.{key} is not a calendar date: {value!r}"
            ) from None
    start, end = bounds["start"], bounds["end"]
    if start is not None and end is not None and start > end:
        raise ApiError(
            400, "invalid_date_range", f"date_range.start {start} is after date_range.end {end}"
        )
    return Filters(field.name, start, end)


class ApiServer(SandboxServer):
    """The API server: knows the job store, the URL signer and where the files host listens."""

    def __init__(
        self,
        address: tuple[str, int],
        *,
        settings: SandboxSettings,
        log: RequestLog,
        store: JobStore,
        signer: UrlSigner,
        files_url: str,
        handler: type[ApiHandler] | None = None,
    ) -> None:
        self.store = store
        self.signer = signer
        self.files_url = files_url
        super().__init__(address, handler or ApiHandler, name="api", settings=settings, log=log)

    def describe_jobs(self) -> list[dict[str, object]]:
        """Return every job as this dialect's API describes it, oldest first."""
        return self.store.describe_all(self.url)

    def reset(self) -> None:
        """Forget the request log, every job and the quota counters (``POST /_sandbox/reset``)."""
        self.log.clear()
        self.store.reset()


class ApiHandler(SandboxHandler):
    """Routes one API request: admin controls, or auth -> fault -> operation."""

    server: ApiServer

    @override
    def route(self) -> None:
        """Answer the request (see the module docstring for the routes)."""
        if self.url_path.startswith(ADMIN_PREFIX):
            self._admin()
            return
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
        try:
            if endpoint == "entities":
                self.send_json(200, {"entities": [e.to_json() for e in ENTITIES.values()]})
            elif endpoint == "create":
                self._create()
            elif endpoint == "list":
                self._list()
            else:
                job = self._job(job_id)
                if endpoint == "status" and self.server.store.status_hidden(job):
                    raise ApiError(404, "job_not_found", f"Export job {job_id!r} not found")
                if endpoint == "status":
                    self.send_json(200, self.server.store.describe(job, self.server.url))
                elif endpoint == "cancel":
                    self._cancel(job)
                else:
                    self._download(job)
        except ApiError as problem:
            self.send_problem(problem.status, problem.code, problem.message)

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
        request = parse_export_request(self.json_body)
        try:
            job = self.server.store.create(
                request.entity, request.fields, request.filters, request.filters_json
            )
        except QuotaExceeded as exhausted:
            self.send_json(
                429,
                {
                    "error": "quota_exceeded",
                    "message": str(exhausted),
                    "resets_at": exhausted.resets_at,
                },
            )
            return
        if self.settings.consume("lose_create_answers"):
            self._lost_create_answer()
            return
        self.send_json(
            202,
            self.server.store.describe(job, self.server.url),
            {"Location": f"{_PREFIX}/jobs/{job.id}"},
        )

    def _lost_create_answer(self) -> None:
        """Answer a create that did create its job as ``lost_create_answer`` says."""
        kind = self.settings.lost_create_answer
        if kind == "html":
            page = b"<html><body><h1>Service temporarily unavailable</h1></body></html>"
            self.send_body(200, "text/html; charset=utf-8", page)
        elif kind == "empty":
            self.send_body(202, "application/json", b"")
        else:
            status = self.settings.http_error_status
            self.send_problem(
                status, "internal_error", f"Simulated {status} after the job was created"
            )

    def _list(self) -> None:
        status = self.query.get("status") or None
        if status is not None and status not in STATUSES:
            raise ApiError(
                400, "invalid_status", f"Unknown status {status!r}; one of: {', '.join(STATUSES)}"
            )
        limit = self._int_param("limit", 25)
        offset = self._int_param("offset", 0)
        jobs: list[object] = list(self.server.store.describe_all(self.server.url, status)[::-1])
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
        store = self.server.store
        if not store.cancel(job):
            raise ApiError(
                409,
                "job_not_cancellable",
                f"Export job {job.id} is already {job.status} and cannot be cancelled",
            )
        self.send_json(200, store.describe(job, self.server.url))

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
        expires = int(time.time() + self.settings.url_ttl_seconds)
        if self.settings.consume("expire_next_urls"):
            expires = int(time.time()) - 60
        style = self.settings.redirect_style
        base = self.server.files_url + ("/hop/2" if style == "chain" else "")
        location = self.server.signer.url(base, part_path(job.id, part), expires)
        if style == "file_url":
            location = "file:///etc/passwd"
        headers = {} if style == "no_location" else {"Location": location}
        self.send_body(302, "text/plain", b"", headers)

    def _admin(self) -> None:
        """Serve the sandbox controls (for demos and benchmarks in another process)."""
        route = (self.command, self.url_path.removeprefix(ADMIN_PREFIX))
        server = self.server
        if route == ("GET", "requests"):
            self.send_json(200, {"requests": [r.to_json() for r in server.log.entries()]})
        elif route == ("GET", "jobs"):
            self.send_json(200, {"jobs": server.describe_jobs()})
        elif route == ("GET", "settings"):
            self.send_json(200, self.settings.to_json())
        elif route == ("POST", "settings"):
            if not isinstance(self.json_body, dict):
                self.send_problem(400, "invalid_request", "POST a JSON object of settings")
                return
            try:
                self.settings.update(self.json_body)
            except ValueError as exc:
                self.send_problem(400, "invalid_setting", str(exc))
                return
            self.send_json(200, self.settings.to_json())
        elif route == ("POST", "reset"):
            server.reset()
            self.send_json(200, {"reset": True})
        else:
            self.send_problem(404, "not_found", f"No such sandbox control: {self.url_path}")
