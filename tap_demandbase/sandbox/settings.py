"""SandboxSettings: every knob of the emulator, data shape and fault injection alike, in one place.

The defaults suit an interactive demo (jobs take a few seconds, like the real service); test
suites shrink the timings. The object is live: the servers read it on every request, so a test
(or ``POST /_sandbox/settings`` from another process) can change a knob between two calls.
Countdown knobs ("the next k calls ...") are decremented through :meth:`SandboxSettings.consume`
under a lock, so concurrent requests never both take the last fault.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import typing
from dataclasses import dataclass, field
from datetime import date

from tap_demandbase.sandbox import uapi_catalog
from tap_demandbase.sandbox.entities import DEFAULT_ROWS

#: Endpoint names accepted as keys of ``http_errors`` (``fields`` and ``token``: uapi dialect).
ENDPOINTS = (
    *("entities", "create", "status", "list", "cancel", "download", "file"),
    *("fields", "token"),
)
#: Accepted values of ``dialect``: the OpenAPI contract, or Demandbase's production API.
DIALECTS = ("export_v1", "uapi")
#: The uapi dialect's documented daily limits per tenant (calls per UTC day, by endpoint).
UAPI_DAILY_LIMITS = {"create": 60, "status": 300, "list": 1200, "fields": 60}
#: Endpoints ``uapi_daily_limits`` may name (``token`` has no documented limit).
UAPI_COUNTED = ("create", "status", "list", "fields", "token")
#: uapi job statuses, the keys of ``uapi_status_names``.
UAPI_STATUSES = ("accepted", "processing", "finished", "failed")
#: 403 errorCodes of Demandbase's registry (``uapi_denied_entity_types`` values).
UAPI_DENIAL_CODES = ("403-100", "403-101", "403-102", "403-103", "403-104", "403-105")
#: Accepted values of ``column_order``.
COLUMN_ORDERS = ("reversed", "requested", "sorted")
#: Accepted values of ``redirect_style``.
REDIRECT_STYLES = ("direct", "chain", "no_location", "file_url")
#: Accepted values of ``bom``.
BOM_MODES = ("first", "all", "none")
#: Accepted values of ``gzip_file_size``.
GZIP_FILE_SIZES = ("served", "decoded")
#: Accepted values of ``lost_create_answer``.
LOST_CREATE_ANSWERS = ("error", "html", "empty")
#: Accepted values of ``malformed`` (see ``files.py`` for exactly what each one breaks).
DEFECTS = (
    "ragged",
    "bad_integer",
    "bad_boolean",
    "bad_date",
    "bad_utf8",
    "no_header",
    "duplicate_header",
    "lax_integer",
    "week_date",
    "ragged_multiline",
)

#: The job statuses of the contract (keys of ``status_aliases``).
JOB_STATUSES = ("pending", "processing", "completed", "failed", "cancelled")

_COUNTER_LOCK = threading.Lock()


@dataclass
class SandboxSettings:
    """Knobs of one sandbox.

    Jobs copy the settings when they are created (:meth:`snapshot`), so changing a data or timing
    knob affects the next job, never one already running. Request-level faults (``http_errors``,
    ``cut_downloads``, ``expire_next_urls``) act on the next matching request. Countdowns are
    decremented per use; a negative count means "always".

    Attributes:
        token: The bearer token the API accepts (uapi: besides the tokens it issues).
        host: The address the API listens on (at start).
        port: The API's port (0: any free port; at start).
        files_host: The address of the pre-signed download host (at start): a second loopback
            address, so a client mixing the hosts up fails (falls back to 127.0.0.1 if unbindable).
        files_port: The download host's port (0: any free port; at start).
        dialect: Which API the sandbox speaks (at start): ``export_v1`` (the OpenAPI contract)
            or ``uapi`` (Demandbase's production API: token endpoint, ``/data/export/v1/...``).
        uapi_client_id: The client id the uapi token endpoint accepts.
        uapi_client_secret: The client secret the uapi token endpoint accepts.
        uapi_token_ttl_seconds: Lifetime of uapi access tokens (``expiresIn``); ``token`` is
            accepted too and never expires.
        uapi_expire_next_tokens: The next k uapi API calls find their token expired: 401, and
            that token stays invalid.
        uapi_gateway_401: uapi 401s carry the gateway body ``{"status": ...}`` instead of
            ``{errorCode, errorMessage, diagnosticCode}``.
        uapi_daily_limits: uapi endpoint -> calls allowed per UTC day (create, status, list,
            fields, token); beyond it: 429 with errorCode 429-100.
        uapi_max_running_jobs: uapi jobs accepted or processing at once per tenant; a create
            beyond it: 429 with errorCode 429-102.
        uapi_busy_next_creates: The next k uapi job creates answer 429-102, as when a job
            started from the UI is running.
        uapi_accept_account_ids: Whether uapi jobs accept ``accountIds`` (required for the buying
            groups); if not, it is refused as an unrecognized property (400-147).
        uapi_split_files: uapi results come as files of ``rows_per_part`` rows listed in
            ``resultsUrls`` (``resultsUrl``: the first); else one file in ``resultsUrl``.
        uapi_gzip: uapi result files are gzip-compressed (same name and Content-Type).
        uapi_nulls: uapi job statuses send absent keys (message, resultsUrl...) as null.
        uapi_status_names: uapi status -> the spelling sent instead (e.g. an unknown status).
        uapi_field_types: uapi field name -> the dataType ``/fields`` serves for it, or ``omit``
            to drop the field.
        uapi_alias_fields: uapi entity type -> {new field name: existing field name}: extra
            fields repeating another's values (e.g. to make two names collide).
        uapi_max_per_page: Largest ``perPage`` of uapi ``GET /jobs``; more is served as this.
        uapi_rate_limited: uapi endpoint -> its next k calls answer 429 ``429-100`` "Rate limit
            exceeded." as a momentary limit does (create, status, list, fields); -1: every call,
            as when the endpoint's daily limit is spent (the message then says so, with the
            reset). The calls are counted like any other.
        uapi_denied_entity_types: uapi entity type -> the 403 errorCode that every fields,
            create and list call naming it answers: ``403-101`` (the tenant's Export
            Collection does not include it), ``403-100`` (the API key set lacks the Data Export
            permission) or another ``403-1xx`` of Demandbase's registry.
        seed: Changes every generated value.
        rows: Rows per entity (accounts, people, opportunities, activities, campaigns,
            buying_groups; uapi only: creatives, buying_group_members); others: ``DEFAULT_ROWS``.
        data_start: First day of ``last_modified_date``, which spans ``[data_start, +data_days)``.
        data_days: How many days ``last_modified_date`` spans.
        rows_per_part: Records per result part file.
        column_order: ``reversed`` (of the requested fields), ``requested`` or ``sorted``.
        bom: UTF-8 byte order mark on part 1 (``first``), every part (``all``) or none (``none``).
        bom_led_rows: Every data row starts with U+FEFF when its first column (in file order)
            holds text: before the cell's value, or alone in an empty cell. That is data, not
            a byte order mark (only a file's first character can be one).
        cache_results: Reuse the files of an identical earlier export.
        pending_seconds: How long a job is pending (uapi: accepted).
        processing_seconds: How long a job is then at least processing.
        result_ttl_seconds: From completion until the result is gone (``expires_at``).
        url_ttl_seconds: Validity of each pre-signed URL.
        redirect_downloads: Download answers 302 to the files host; if false, 200 with the CSV.
        supports_range: Whether downloads honour ``Range: bytes=``.
        http_errors: Endpoint name -> answer its next k calls with ``http_error_status``
            (export_v1: entities, create, status, list, cancel, download; uapi: token, fields,
            create, status, list; both: file, the download host).
        http_errors_after: Endpoint name -> let its next k calls through before ``http_errors``
            applies to it (e.g. ``{"create": 1}`` with ``http_errors`` ``{"create": 1}``: the
            second create fails).
        http_error_status: Status of those injected errors.
        http_error_retry_after: ``Retry-After`` seconds sent with those errors (None: no header).
        http_error_location: Base URL that those errors name in a ``Location`` header, with the
            request's path and query appended: with a 3xx ``http_error_status``, a redirect
            (e.g. to another server; None: no header).
        json_answers: Endpoint name -> a JSON value answered with 200 instead of the
            endpoint's own answer, on every call (export_v1: entities, create, status, list,
            cancel; uapi: token, fields, create, status, list); nothing is created. E.g.
            ``{"entities": []}``, ``{"fields": {"data": []}}``.
        record_count_offset: Added to the ``record_count`` completed jobs report (0: the truth).
        file_size_offset: Added to the ``file_size_bytes`` completed jobs report (0: the truth).
        finish_before_cancel: DELETE waits for the job to finish, then answers 409.
        fail_jobs: Entity (as in ``rows``) -> its next k jobs end ``failed`` (-1: all of them).
        quota_exhausted_after_jobs: Create answers the quota 429 (uapi: 429-101) once this many
            jobs exist (None: never).
        quota_bytes: Create answers the quota 429 (uapi: 429-101) once today's (UTC) completed
            exports total this many bytes.
        cut_downloads: The next k downloads send half their body, then drop the connection.
        expire_next_urls: The next k pre-signed URLs are already expired when issued.
        malformed: Entity (as in ``rows``) -> defect written into part 1 of its results
            (ragged, bad_integer, bad_boolean, bad_date, bad_utf8, no_header, duplicate_header,
            lax_integer, week_date, ragged_multiline; see ``files.py``).
        trickle_downloads: The next k downloads send half their body, then one byte every
            ``trickle_seconds`` until the client gives up.
        trickle_seconds: The pause between two trickled bytes.
        gzip_encoding: Downloads are gzip-compressed with ``Content-Encoding: gzip``.
        gzip_files: Downloads are gzip files (no ``Content-Encoding``), whatever their name.
        gzip_file_size: What ``file_size_bytes`` counts of a job whose parts are served gzip
            (``gzip_encoding`` or ``gzip_files`` when the job was created): ``served`` (the
            compressed bytes the server holds and sends) or ``decoded`` (the CSV's bytes).
        omit_content_length: Downloads carry no Content-Length; the connection closes at the end.
        redirect_style: How the download endpoint's 302 points at the file: ``direct``, ``chain``
            (through two hops on the files host), ``no_location`` (no Location header) or
            ``file_url`` (a ``file://`` URL).
        echo_url_in_errors: The download host's error messages quote the request's full URL,
            signature included (as some object stores do).
        empty_results_have_parts: An export with no rows has one header-only part; if false,
            it has none (``file_parts`` 0, and downloading part 1 answers 404).
        job_json_patch: Keys of a job's ExportJob JSON replaced by these values in every answer
            about it (create, status, list); null removes the key. Keys the JSON does not have
            yet (``record_count`` before completion) are left out. E.g. ``{"file_parts": null}``,
            ``{"record_count": "many"}``, ``{"created_at": "yesterday"}``.
        status_aliases: Contract status -> the word the job reports instead (``pending`` ->
            ``queued``, ``completed`` -> ``expired``); the job's life is unchanged.
        status_not_found_after_create: The first k status calls of each job answer 404, as an
            eventually consistent API does right after a create.
        lose_create_answers: The next k creates create the job, then answer as
            ``lost_create_answer`` says instead of 202 with the job.
        lost_create_answer: ``error`` (``http_error_status`` with a JSON error), ``html`` (200
            with an HTML page) or ``empty`` (202 with an empty body).
        list_odd_jobs: The job list starts with entries that are not valid jobs (an unknown
            status, a missing id, a count as text, a string), whatever the status filter.
    """

    # Where and how to listen.
    token: str = "sandbox-token"
    host: str = "127.0.0.1"
    port: int = 0
    files_host: str = "127.0.0.2"
    files_port: int = 0

    # Which API to speak, and the uapi dialect's own knobs (uapi.py).
    dialect: str = "export_v1"
    uapi_client_id: str = "sandbox-client"
    uapi_client_secret: str = "sandbox-secret"
    uapi_token_ttl_seconds: int = 28800
    uapi_expire_next_tokens: int = 0
    uapi_gateway_401: bool = False
    uapi_daily_limits: dict[str, int] = field(default_factory=lambda: dict(UAPI_DAILY_LIMITS))
    uapi_max_running_jobs: int = 1
    uapi_busy_next_creates: int = 0
    uapi_accept_account_ids: bool = True
    uapi_split_files: bool = False
    uapi_gzip: bool = False
    uapi_nulls: bool = False
    uapi_status_names: dict[str, str] = field(default_factory=dict)
    uapi_field_types: dict[str, str] = field(default_factory=dict)
    uapi_alias_fields: dict[str, dict[str, str]] = field(default_factory=dict)
    uapi_max_per_page: int = 100
    uapi_rate_limited: dict[str, int] = field(default_factory=dict)
    uapi_denied_entity_types: dict[str, str] = field(default_factory=dict)

    # The data: row i of an entity is a pure function of these.
    seed: int = 1
    rows: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_ROWS))
    data_start: date = date(2024, 1, 1)
    data_days: int = 90

    # Result files.
    rows_per_part: int = 50_000
    column_order: str = "reversed"
    bom: str = "first"
    bom_led_rows: bool = False
    cache_results: bool = True

    # Job life cycle and URLs.
    pending_seconds: float = 1.0
    processing_seconds: float = 2.0
    result_ttl_seconds: float = 3600.0
    url_ttl_seconds: float = 300.0
    redirect_downloads: bool = True
    supports_range: bool = True

    # Faults.
    http_errors: dict[str, int] = field(default_factory=dict)
    http_errors_after: dict[str, int] = field(default_factory=dict)
    http_error_status: int = 503
    http_error_retry_after: float | None = None
    http_error_location: str | None = None
    json_answers: dict[str, typing.Any] = field(default_factory=dict)
    record_count_offset: int = 0
    file_size_offset: int = 0
    finish_before_cancel: bool = False
    fail_jobs: dict[str, int] = field(default_factory=dict)
    quota_exhausted_after_jobs: int | None = None
    quota_bytes: int = 10 * 1024**3
    cut_downloads: int = 0
    expire_next_urls: int = 0
    malformed: dict[str, str] = field(default_factory=dict)
    echo_url_in_errors: bool = False
    redirect_style: str = "direct"
    trickle_downloads: int = 0
    trickle_seconds: float = 0.5
    gzip_encoding: bool = False
    gzip_files: bool = False
    gzip_file_size: str = "served"
    omit_content_length: bool = False
    empty_results_have_parts: bool = True
    job_json_patch: dict[str, typing.Any] = field(default_factory=dict)
    status_aliases: dict[str, str] = field(default_factory=dict)
    status_not_found_after_create: int = 0
    lose_create_answers: int = 0
    lost_create_answer: str = "error"
    list_odd_jobs: bool = False

    def row_count(self, entity: str) -> int:
        """Return how many rows ``entity`` has (``rows`` entry, else the default)."""
        return self.rows.get(entity, DEFAULT_ROWS[entity])

    def snapshot(self) -> SandboxSettings:
        """Return a deep copy, so a job is unaffected by knobs changed after it was created."""
        return copy.deepcopy(self)

    def consume(self, knob: str, key: str | None = None) -> bool:
        """Take one unit of a countdown fault knob; return whether the fault applies now.

        ``knob`` names an int field (``cut_downloads``) or, with ``key``, an entry of a dict
        field (``http_errors["create"]``). A positive count is decremented; a negative count
        (``-1``) means "always" and is left alone; zero or missing means no fault.
        """
        with _COUNTER_LOCK:
            if key is None:
                count = typing.cast(int, getattr(self, knob))
                if count > 0:
                    setattr(self, knob, count - 1)
                return count != 0
            counters = typing.cast(dict[str, int], getattr(self, knob))
            count = counters.get(key, 0)
            if count > 0:
                counters[key] = count - 1
            return count != 0

    def to_json(self) -> dict[str, object]:
        """Return the knobs as JSON-ready values (dates as ``YYYY-MM-DD``)."""
        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, date) else copy.deepcopy(value)
        return out

    def update(self, changes: dict[str, object]) -> None:
        """Apply ``changes`` (JSON values keyed by field name), checking every one first.

        Raises:
            ValueError: A key is not a knob, or a value has the wrong type or is out of range;
                nothing is changed then.
        """
        hints = typing.get_type_hints(SandboxSettings)
        coerced = {name: _coerce(name, hints.get(name), value) for name, value in changes.items()}
        candidate = self.snapshot()
        for name, value in coerced.items():
            setattr(candidate, name, value)
        candidate.validate()
        with _COUNTER_LOCK:
            for name, value in coerced.items():
                setattr(self, name, value)

    def validate(self) -> None:
        """Check enumerated and numeric knobs, so a typo fails loudly instead of silently.

        Raises:
            ValueError: Naming the offending knob and the accepted values.
        """
        _check_choice("column_order", self.column_order, COLUMN_ORDERS)
        _check_choice("bom", self.bom, BOM_MODES)
        _check_choice("redirect_style", self.redirect_style, REDIRECT_STYLES)
        _check_choice("lost_create_answer", self.lost_create_answer, LOST_CREATE_ANSWERS)
        _check_choice("gzip_file_size", self.gzip_file_size, GZIP_FILE_SIZES)
        for status, alias in self.status_aliases.items():
            _check_choice("status_aliases key", status, JOB_STATUSES)
            if not alias:
                raise ValueError("status_aliases values must be non-empty status words")
        for knob in ("http_errors", "http_errors_after", "json_answers"):
            for key in getattr(self, knob):
                _check_choice(f"{knob} key", key, ENDPOINTS)
        for entity in (*self.rows, *self.fail_jobs, *self.malformed):
            _check_choice("entity", entity, tuple(DEFAULT_ROWS))
        for defect in self.malformed.values():
            _check_choice("malformed defect", defect, DEFECTS)
        if self.rows_per_part < 1:
            raise ValueError("rows_per_part must be at least 1")
        if self.data_days < 1:
            raise ValueError("data_days must be at least 1")
        if any(n < 0 for n in self.rows.values()):
            raise ValueError("rows must not be negative")
        self._validate_uapi()

    def _validate_uapi(self) -> None:
        """Check the uapi dialect's knobs (names of limits, statuses, fields and aliases)."""
        _check_choice("dialect", self.dialect, DIALECTS)
        for key in self.uapi_daily_limits:
            _check_choice("uapi_daily_limits key", key, UAPI_COUNTED)
        for key in self.uapi_rate_limited:
            _check_choice("uapi_rate_limited key", key, tuple(UAPI_DAILY_LIMITS))
        for key in self.uapi_status_names:
            _check_choice("uapi_status_names key", key, UAPI_STATUSES)
        known = uapi_catalog.field_names()
        for entity_type, aliases in self.uapi_alias_fields.items():
            _check_choice("uapi_alias_fields key", entity_type, tuple(uapi_catalog.ENTITY_TYPES))
            own = {f.name for f in uapi_catalog.ENTITY_TYPES[entity_type].fields}
            for target in aliases.values():
                _check_choice(f"uapi_alias_fields target of {entity_type}", target, tuple(own))
            known |= set(aliases)
        for name in self.uapi_field_types:
            if name not in known:
                raise ValueError(f"invalid uapi_field_types key {name!r}: not a uapi field name")
        if self.uapi_token_ttl_seconds < 1:
            raise ValueError("uapi_token_ttl_seconds must be at least 1")
        for entity_type, code in self.uapi_denied_entity_types.items():
            _check_choice(
                "uapi_denied_entity_types key", entity_type, tuple(uapi_catalog.ENTITY_TYPES)
            )
            _check_choice(
                f"uapi_denied_entity_types code of {entity_type}", code, UAPI_DENIAL_CODES
            )
        if self.uapi_max_running_jobs < 1 or self.uapi_max_per_page < 1:
            raise ValueError("uapi_max_running_jobs and uapi_max_per_page must be at least 1")


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"invalid {what} {value!r}; expected one of: {', '.join(choices)}")


def _coerce(name: str, hint: object, value: object) -> object:
    """Convert one JSON value to the type of knob ``name`` (only the shapes the knobs use)."""
    if hint is None:
        raise ValueError(f"unknown setting {name!r}")
    if hint is typing.Any:
        return value
    if typing.get_origin(hint) is dict:
        if not isinstance(value, dict):
            raise ValueError(f"setting {name!r} must be a JSON object")
        value_type = typing.get_args(hint)[1]
        return {str(k): _coerce(name, value_type, v) for k, v in value.items()}
    allowed: tuple[object, ...] = typing.get_args(hint) if typing.get_origin(hint) else (hint,)
    if value is None and type(None) in allowed:
        return None
    if hint is date and isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"setting {name!r} must be a YYYY-MM-DD date") from None
    if bool in allowed and isinstance(value, bool):
        return value
    if int in allowed and isinstance(value, int) and not isinstance(value, bool):
        return value
    if float in allowed and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if str in allowed and isinstance(value, str):
        return value
    raise ValueError(f"setting {name!r} cannot be {value!r}")
