"""The ``uapi`` API server: token, fields, create, status and list (see the package docstring).

Every export call is auth -> daily budget -> injected fault or answer -> operation; the token
endpoint is counted and faulted the same way. Beyond the shared job store the server keeps what
this API adds: issued tokens, the day's call counters and each job's name and entity type.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qsl

from typing_extensions import override

from tap_demandbase.sandbox.api import ApiError, ApiHandler, ApiServer
from tap_demandbase.sandbox.data import iter_rows
from tap_demandbase.sandbox.files import ResultFiles, UrlSigner, part_path, write_export
from tap_demandbase.sandbox.handler import ADMIN_PREFIX
from tap_demandbase.sandbox.jobs import ACTIVE, Job, JobStore, QuotaExceeded, ResultWriter
from tap_demandbase.sandbox.log import RequestLog
from tap_demandbase.sandbox.uapi.auth import TokenIssuer
from tap_demandbase.sandbox.uapi.catalog import ENTITY_TYPES, entity_type_named, fields_for
from tap_demandbase.sandbox.uapi.job_requests import JobRequest, parse_job_request
from tap_demandbase.sandbox.uapi.settings import UAPI_COUNTED, UAPI_DAILY_LIMITS, UapiSettings
from tap_demandbase.sandbox.uapi.usage import DailyUsage

TOKEN_PATH = "/auth/v1/token"
EXPORT_PREFIX = "/data/export/v1"
#: The job store's statuses as the uapi dialect names them.
STATUS_NAMES = {
    "pending": "accepted",
    "processing": "processing",
    "completed": "finished",
    "failed": "failed",
    "cancelled": "failed",  # no cancel endpoint: only a sandbox reset cancels
}
_CODE = frozenset("0123456789-")
_UNAUTHORIZED = "Authentication credentials are missing or invalid."
#: The messages of Demandbase's 403 errorCodes (``uapi_denied_entity_types``).
DENIALS = {
    "403-100": "The authenticated user does not have permission to access this resource.",
    "403-101": "The tenant does not have access to this entity type.",
    "403-102": "The API key does not have access to this resource.",
    "403-103": "The tenant does not have an Export collection enabled.",
    "403-104": "The requested fields are not in the tenant's Export collection.",
    "403-105": "The tenant does not have access to this endpoint.",
}


@dataclass(frozen=True)
class UapiJob:
    """What the uapi dialect knows of a job beyond the store's record."""

    job_name: str
    entity_type: str
    split: bool


def timestamp(ts: float) -> str:
    """Return epoch seconds as RFC 3339 UTC with milliseconds: ``2024-09-16T04:46:21.684Z``."""
    millis = round(ts * 1000)
    moment = datetime.fromtimestamp(millis // 1000, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def result_writer(request: JobRequest) -> ResultWriter:
    """Return the job store's writer for a uapi job.

    Original names in the header, the knobs' file layout (one file unless ``uapi_split_files``;
    gzip with ``uapi_gzip``).
    """

    def write(directory: Path, job: Job) -> ResultFiles:
        settings = UapiSettings.of(job.settings)
        if not settings.uapi_split_files:  # one file: a part big enough for every row
            rows = settings.rows_made(request.entity.data.name)
            settings = replace(settings, rows_per_part=max(1, rows))
        return write_export(
            directory,
            settings,
            request.entity.data,
            request.sources,
            request.filters,
            defect=job.defect,
            cancelled=job.cancelled.is_set,
            header=request.header,
            compress=settings.uapi_gzip,
            max_rows=request.max_rows,
        )

    return write


def expected_rows(settings: UapiSettings, body: dict[str, object]) -> list[dict[str, str | None]]:
    """Return the rows (original field name -> raw cell, None = empty) a job ``body`` exports.

    The very validation and generator a job uses, in export order, for tests.

    Raises:
        ApiError: The body is invalid (what the API would answer).
    """
    request = parse_job_request(body, settings)
    rows = iter_rows(settings, request.entity.data, request.sources, request.filters)
    if request.max_rows is not None:
        rows = (row for _, row in zip(range(request.max_rows), rows, strict=False))
    return [dict(zip(request.header, row, strict=True)) for row in rows]


class UapiHandler(ApiHandler[UapiSettings]):
    """Routes one uapi request: token, or auth -> budget -> fault -> operation."""

    server: UapiServer

    @override
    def route_api(self) -> None:
        """Answer the request (see the package docstring for the routes)."""
        if self.url_path == TOKEN_PATH:
            self._token()
            return
        endpoint, job_id = self._export_operation()
        if not self._authorized():
            self._unauthorized()
            return
        self._count(endpoint)
        if self.injected_fault(endpoint) or self.injected_answer(endpoint):
            return
        self._refuse_denied_entity_type(endpoint)
        if endpoint == "fields":
            self._fields()
        elif endpoint == "create":
            self._create()
        elif endpoint == "list":
            self._list()
        else:
            self._status(job_id)

    @override
    def send_problem(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        """Answer ``{errorCode, errorMessage, diagnosticCode}`` (``code`` like ``400-115``)."""
        if status == 401 and self.settings.uapi_gateway_401:
            self.send_json(401, {"status": "Authentication Failed - Unauthorized."}, headers)
            return
        if not set(code) <= _CODE or code.count("-") != 1:
            code = f"{status}-100"  # a generic answer of the shared handler (bad request line...)
        body = {"errorCode": code, "errorMessage": message, "diagnosticCode": secrets.token_hex(16)}
        self.send_json(status, body, headers)

    @override
    def send_fault(self, status: int, code: str, message: str, headers: dict[str, str]) -> None:
        """Answer an injected ``http_errors`` fault in the uapi error envelope."""
        self.send_problem(status, f"{status}-100", message, headers)

    @override
    def serve_admin(self) -> None:
        """Serve the shared sandbox controls plus ``/_sandbox/usage``: GET today's counters,
        POST ``{"counts": {endpoint: calls}}`` to set them.
        """
        if self.url_path != ADMIN_PREFIX + "usage":
            super().serve_admin()
            return
        usage = self.server.usage
        if self.command == "POST":
            counts = self.json_body.get("counts") if isinstance(self.json_body, dict) else None
            if not isinstance(counts, dict) or not all(
                k in UAPI_COUNTED and type(v) is int and v >= 0 for k, v in counts.items()
            ):
                self.send_problem(
                    400,
                    "400-100",
                    'POST {"counts": {endpoint: calls}}, endpoints among '
                    + ", ".join(UAPI_COUNTED),
                )
                return
            usage.set_counts(counts)
        self.send_json(
            200,
            {
                "day": usage.day().isoformat(),
                "counts": usage.counts(),
                "limits": dict(self.settings.uapi_daily_limits),
                "resets_at": usage.resets_at(),
            },
        )

    def _export_operation(self) -> tuple[str, str]:
        """Return ``(endpoint, job id)`` of an export path.

        Raises:
            ApiError: 404 for an unknown path, 405 for a wrong method.
        """
        path, method = self.url_path, self.command
        routes: dict[str, tuple[str, str]] = {}
        if path == f"{EXPORT_PREFIX}/fields":
            routes = {"GET": ("fields", "")}
        elif path == f"{EXPORT_PREFIX}/job":
            routes = {"POST": ("create", "")}
        elif path == f"{EXPORT_PREFIX}/jobs":
            routes = {"GET": ("list", "")}
        elif path.startswith(f"{EXPORT_PREFIX}/job/") and path.count("/") == 5:
            routes = {"GET": ("status", path.rsplit("/", 1)[1])}
        if not routes:
            raise ApiError(404, "404-301", f"The requested resource does not exist: {path}")
        if method not in routes:
            raise ApiError(405, "405-100", f"{method} is not allowed on {path}")
        return routes[method]

    def _authorized(self) -> bool:
        """Check the bearer token; a due ``uapi_expire_next_tokens`` fault expires it now."""
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        tokens = self.server.tokens
        if scheme.lower() != "bearer" or not token or not tokens.accepts(token):
            return False
        if self.settings.consume("uapi_expire_next_tokens"):
            tokens.revoke(token)
            return False
        return True

    def _unauthorized(self) -> None:
        self.send_problem(401, "401-100", _UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})

    def _count(self, endpoint: str) -> None:
        """Count the call against today's budget.

        Raises:
            ApiError: 429-100 once the endpoint's daily limit is spent, or when
                ``uapi_rate_limited`` says so.
        """
        settings = self.settings
        limit = settings.uapi_daily_limits.get(endpoint, UAPI_DAILY_LIMITS.get(endpoint))
        within = self.server.usage.take(endpoint, limit)
        spent = not within or settings.uapi_rate_limited.get(endpoint, 0) < 0
        if spent:
            raise ApiError(
                429,
                "429-100",
                f"Rate limit exceeded: {limit} {endpoint} calls per day "
                f"(resets at {self.server.usage.resets_at()}).",
            )
        if settings.consume("uapi_rate_limited", endpoint):
            raise ApiError(429, "429-100", "Rate limit exceeded.")

    def _refuse_denied_entity_type(self, endpoint: str) -> None:
        """Refuse a call naming an entity type of ``uapi_denied_entity_types``.

        Raises:
            ApiError: 403 with that entity type's errorCode.
        """
        named: object = None
        if endpoint == "create" and isinstance(self.json_body, dict):
            named = self.json_body.get("entityType")
        elif endpoint in ("fields", "list"):
            named = self.query.get("entityType")
        entity = entity_type_named(named)
        code = self.settings.uapi_denied_entity_types.get(entity.entity_type) if entity else None
        if code is not None:
            raise ApiError(403, code, DENIALS.get(code, "Access to this resource is denied."))

    def _token(self) -> None:
        """``POST /auth/v1/token``: trade client credentials for an access token."""
        if self.command != "POST":
            raise ApiError(405, "405-100", f"{self.command} is not allowed on {TOKEN_PATH}")
        params = self._token_params()
        # The request log keeps the body minus the secret, so tests see which form was sent.
        self.json_body = {
            k: "<redacted>" if k in ("clientSecret", "client_secret") else v
            for k, v in params.items()
        }
        self._count("token")
        if self.injected_fault("token") or self.injected_answer("token"):
            return
        grant = params.get("grantType", params.get("grant_type", "client_credentials"))
        client_id = params.get("clientId", params.get("client_id"))
        secret = params.get("clientSecret", params.get("client_secret"))
        if grant != "client_credentials":
            raise ApiError(400, "400-103", f"grantType must be client_credentials, not {grant!r}")
        if not isinstance(client_id, str) or not isinstance(secret, str):
            raise ApiError(400, "400-104", "clientId and clientSecret are required.")
        if not self.server.tokens.credentials_match(client_id, secret):
            self._unauthorized()
            return
        token, lifetime = self.server.tokens.issue()
        self.send_json(200, {"accessToken": token, "tokenType": "bearer", "expiresIn": lifetime})

    def _token_params(self) -> dict[str, object]:
        """Return the token request's parameters, from a form or a JSON body.

        Raises:
            ApiError: 400-102 when the body is neither.
        """
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type == "application/x-www-form-urlencoded":
            return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))
        if isinstance(self.json_body, dict):
            return dict(self.json_body)
        raise ApiError(
            400, "400-102", "Send a JSON object or a form with clientId and clientSecret."
        )

    def _fields(self) -> None:
        """``GET /fields?entityType=...``: the entity's fields (adReportType for ad reports)."""
        name = self.query.get("entityType")
        if not name:
            raise ApiError(400, "400-104", "The required parameter entityType is missing.")
        entity = entity_type_named(name)
        if entity is None:
            raise ApiError(400, "400-125", f"The entityType {name!r} is not supported.")
        if entity.report_types:
            report = self.query.get("adReportType")
            if not report:
                raise ApiError(
                    400, "400-104", f"adReportType is required for {entity.entity_type} fields."
                )
            if report not in entity.report_types:
                raise ApiError(400, "400-139", f"adReportType {report!r} is not valid for {name}.")
        self.send_json(200, [f.to_json() for f in fields_for(entity, self.settings)])

    def _create(self) -> None:
        """``POST /job``: validate, enforce one running job and the quota, then accept."""
        server = self.server
        settings = self.settings
        request = parse_job_request(self.json_body, settings)
        with server.create_lock:
            if settings.consume("uapi_busy_next_creates") or self._running() >= (
                settings.uapi_max_running_jobs
            ):
                raise ApiError(
                    429,
                    "429-102",
                    "Concurrent export job limit exceeded: "
                    f"{settings.uapi_max_running_jobs} job(s) may run at a time per tenant.",
                )
            try:
                job = server.store.create(
                    request.entity.data.name,
                    request.sources,
                    request.filters,
                    {},
                    job_id=str(uuid.uuid4()),
                    writer=result_writer(request),
                    cache_key=(
                        request.entity.entity_type,
                        tuple(request.header),
                        request.max_rows,
                        settings.uapi_split_files,
                        settings.uapi_gzip,
                    ),
                )
            except QuotaExceeded:
                raise ApiError(
                    429,
                    "429-101",
                    "Export quota exceeded: 10 GB per rolling 24 hours "
                    f"(resets at {server.usage.resets_at()}).",
                ) from None
            info = UapiJob(request.job_name, request.entity.entity_type, settings.uapi_split_files)
            server.uapi_jobs[job.id] = info
        if self.lost_create_answer():
            return
        self.send_json(
            202,
            {
                "jobStatus": "accepted",
                "createdAt": timestamp(job.created_at),
                "jobId": job.id,
                "entityType": info.entity_type,
                "jobName": info.job_name,
            },
        )

    def _running(self) -> int:
        store = self.server.store
        return sum(store.view(job, lambda j: j.status in ACTIVE) for job in store.all_jobs())

    def _status(self, job_id: str) -> None:
        """``GET /job/{jobId}``."""
        job = self.server.store.get(job_id)
        info = self.server.uapi_jobs.get(job_id)
        if job is None or info is None:
            raise ApiError(404, "404-302", "Job id invalid")
        self.send_json(200, self.server.describe(job, info))

    def _list(self) -> None:
        """``GET /jobs``: one page of the tenant's jobs."""
        entity = self._choice("entityType", "400-123", ("all", *ENTITY_TYPES))
        status = self._choice(
            "jobStatus", "400-124", ("all", *dict.fromkeys(STATUS_NAMES.values()))
        )
        sort = self._choice("sort", "400-120", ("descending", "ascending"))
        page = self._positive("page", "400-121", 1)
        per_page = min(self._positive("perPage", "400-122", 10), self.settings.uapi_max_per_page)
        matching = []
        for job, info in self.server.known_jobs():
            described = self.server.describe(job, info, urls=False)
            canonical = STATUS_NAMES[self.server.store.view(job, lambda j: j.status)]
            if entity not in ("all", info.entity_type.lower()):
                continue
            if status not in ("all", canonical):
                continue
            matching.append(
                {
                    k: described[k]
                    for k in ("updatedAt", "createdAt", "jobName", "jobId", "jobStatus")
                }
                | {"entityType": info.entity_type}
            )
        if sort == "descending":
            matching.reverse()
        first = (page - 1) * per_page
        self.send_json(
            200,
            {
                "pageNo": page,
                "pageSize": per_page,
                "totalCount": len(matching),
                "data": matching[first : first + per_page],
            },
        )

    def _choice(self, name: str, code: str, choices: tuple[str, ...]) -> str:
        """Return query parameter ``name`` lower-cased (default: the first choice)."""
        value = self.query.get(name) or choices[0]
        lowered = {c.lower() for c in choices}
        if value.lower() not in lowered:
            raise ApiError(400, code, f"{name} {value!r} is not supported.")
        return value.lower()

    def _positive(self, name: str, code: str, default: int) -> int:
        text = self.query.get(name) or str(default)
        if not text.isdigit() or int(text) < 1:
            raise ApiError(400, code, f"{name} must be a positive number, not {text!r}.")
        return int(text)


class UapiServer(ApiServer[UapiSettings]):
    """The uapi API server: the shared job store and signer, plus tokens, budgets, job names."""

    handler_class = UapiHandler

    def __init__(
        self,
        address: tuple[str, int],
        *,
        settings: UapiSettings,
        log: RequestLog,
        store: JobStore,
        signer: UrlSigner,
        files_url: str,
    ) -> None:
        self.tokens = TokenIssuer(settings)
        self.usage = DailyUsage(today=lambda: settings.today)
        self.create_lock = threading.Lock()
        self.uapi_jobs: dict[str, UapiJob] = {}
        super().__init__(
            address,
            settings=settings,
            log=log,
            store=store,
            signer=signer,
            files_url=files_url,
        )

    def known_jobs(self) -> list[tuple[Job, UapiJob]]:
        """Return every job with its uapi record, oldest first."""
        jobs = self.store.all_jobs()
        return [(job, self.uapi_jobs[job.id]) for job in jobs if job.id in self.uapi_jobs]

    @override
    def describe_jobs(self) -> list[dict[str, object]]:
        """Return every job as ``GET /job/{id}`` would, without signing URLs, oldest first."""
        return [self.describe(job, info, urls=False) for job, info in self.known_jobs()]

    def describe(self, job: Job, info: UapiJob, *, urls: bool = True) -> dict[str, object]:
        """Return a job's status JSON; ``urls``: with freshly signed result URLs (else unsigned)."""
        status, error, parts, created, updated = self.store.view(
            job,
            lambda j: (
                j.status,
                j.error_message,
                len(j.result.parts) if j.result is not None else 0,
                j.created_at,
                j.updated_at,
            ),
        )
        settings = self.settings
        canonical = STATUS_NAMES[status]
        out: dict[str, object] = {
            "jobId": job.id,
            "jobName": info.job_name,
            "jobStatus": settings.uapi_status_names.get(canonical, canonical),
            "entityType": info.entity_type,
            "createdAt": timestamp(created),
            "updatedAt": timestamp(updated),
        }
        if canonical == "failed":
            out["message"] = error or "Error processing job. Please try again later."
        if canonical == "finished" and parts:
            links = [
                self.signed_url(job.id, n) if urls else self.files_url + part_path(job.id, n)
                for n in range(1, parts + 1)
            ]
            out["resultsUrl"] = links[0]
            if info.split:
                out["resultsUrls"] = links
        if settings.uapi_nulls:
            for key in ("message", "resultsUrl", "resultsUrls"):
                out.setdefault(key, None)
        return out

    @override
    def credentials(self) -> dict[str, str]:
        """Return the static token and the client credentials the token endpoint accepts."""
        settings = self.settings
        return super().credentials() | {
            "client_id": settings.uapi_client_id,
            "client_secret": settings.uapi_client_secret,
        }

    @override
    def usage_counts(self) -> dict[str, int]:
        """Return today's calls per endpoint (create, status, list, fields, token)."""
        return self.usage.counts()

    @override
    def set_usage_counts(self, counts: dict[str, int]) -> None:
        """Make ``counts`` today's calls per endpoint."""
        self.usage.set_counts(counts)

    @override
    def reset(self) -> None:
        """Forget the request log, every job and today's call counters."""
        with self.create_lock:
            super().reset()
            self.uapi_jobs.clear()
            self.usage.clear()
