"""CommonSettings: the knobs every emulator reads (data, files, timings, faults), and their rules.

Each emulator adds its own knobs in a subclass in its package (``export_v1/settings.py``,
``uapi/settings.py``); ``SandboxSettings`` (``server.py``) inherits them all, so one object sets
any knob of any emulator by name. The defaults suit an interactive demo (jobs take a few seconds,
like the real service); test suites shrink the timings. The object is live: the servers read it
on every request, so a test (or ``POST /_sandbox/settings`` from another process) can change a
knob between two calls. Countdown knobs ("the next k calls ...") are decremented through
:meth:`CommonSettings.consume` under a lock, so concurrent requests never both take the last
fault.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import typing
from dataclasses import dataclass, field
from datetime import date

from typing_extensions import Self

from tap_demandbase.sandbox.entities import DEFAULT_ROWS

#: Accepted values of ``column_order``.
COLUMN_ORDERS = ("reversed", "requested", "sorted")
#: Accepted values of ``bom``.
BOM_MODES = ("first", "all", "none")
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

_COUNTER_LOCK = threading.Lock()


@dataclass
class CommonSettings:
    """Knobs of one sandbox that every emulator reads.

    Jobs copy the settings when they are created (:meth:`snapshot`), so changing a data or timing
    knob affects the next job, never one already running. Request-level faults (``http_errors``,
    ``cut_downloads``, ``expire_next_urls``) act on the next matching request. Countdowns are
    decremented per use; a negative count means "always".

    An emulator's subclass names its dialect in ``DIALECT`` and its endpoints in ``ENDPOINTS``
    (the keys ``http_errors`` and ``json_answers`` accept, besides the download host's ``file``).

    Attributes:
        token: The bearer token the API accepts (uapi: besides the tokens it issues).
        host: The address the API listens on (at start).
        port: The API's port (0: any free port; at start).
        files_host: The address of the pre-signed download host (at start): a second loopback
            address, so a client mixing the hosts up fails (falls back to 127.0.0.1 if unbindable).
        files_port: The download host's port (0: any free port; at start).
        dialect: Which API the sandbox speaks (at start): ``export_v1`` (the OpenAPI contract)
            or ``uapi`` (Demandbase's production API: token endpoint, ``/data/export/v1/...``).
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
        omit_content_length: Downloads carry no Content-Length; the connection closes at the end.
        echo_url_in_errors: The download host's error messages quote the request's full URL,
            signature included (as some object stores do).
        empty_results_have_parts: An export with no rows has one header-only part; if false,
            it has none (``file_parts`` 0, and downloading part 1 answers 404).
        lose_create_answers: The next k creates create the job, then answer as
            ``lost_create_answer`` says instead of 202 with the job.
        lost_create_answer: ``error`` (``http_error_status`` with a JSON error), ``html`` (200
            with an HTML page) or ``empty`` (202 with an empty body).
    """

    #: The download host's endpoint name; each emulator's subclass adds its own.
    ENDPOINTS: typing.ClassVar[tuple[str, ...]] = ("file",)

    # Where and how to listen, and which API to speak.
    token: str = "sandbox-token"
    host: str = "127.0.0.1"
    port: int = 0
    files_host: str = "127.0.0.2"
    files_port: int = 0
    dialect: str = "export_v1"

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
    supports_range: bool = True

    # Faults.
    http_errors: dict[str, int] = field(default_factory=dict)
    http_errors_after: dict[str, int] = field(default_factory=dict)
    http_error_status: int = 503
    http_error_retry_after: float | None = None
    http_error_location: str | None = None
    json_answers: dict[str, typing.Any] = field(default_factory=dict)
    fail_jobs: dict[str, int] = field(default_factory=dict)
    quota_exhausted_after_jobs: int | None = None
    quota_bytes: int = 10 * 1024**3
    cut_downloads: int = 0
    expire_next_urls: int = 0
    malformed: dict[str, str] = field(default_factory=dict)
    echo_url_in_errors: bool = False
    trickle_downloads: int = 0
    trickle_seconds: float = 0.5
    gzip_encoding: bool = False
    gzip_files: bool = False
    omit_content_length: bool = False
    empty_results_have_parts: bool = True
    lose_create_answers: int = 0
    lost_create_answer: str = "error"

    @classmethod
    def of(cls, settings: CommonSettings) -> Self:
        """Return ``settings`` typed as this class (the sandbox's settings hold every emulator's).

        Raises:
            TypeError: ``settings`` lacks this class's knobs.
        """
        if not isinstance(settings, cls):
            raise TypeError(f"{type(settings).__name__} has no {cls.__name__} knobs")
        return settings

    def endpoints(self) -> tuple[str, ...]:
        """Return every endpoint name the knobs may key: the download host's and each API's."""
        names = (e for c in reversed(type(self).__mro__) for e in vars(c).get("ENDPOINTS", ()))
        return tuple(dict.fromkeys(names))

    def row_count(self, entity: str) -> int:
        """Return how many rows ``entity`` has (``rows`` entry, else the default)."""
        return self.rows.get(entity, DEFAULT_ROWS[entity])

    def snapshot(self) -> Self:
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
        hints = typing.get_type_hints(type(self))
        knobs = {f.name for f in dataclasses.fields(self)}
        coerced = {
            name: _coerce(name, hints.get(name) if name in knobs else None, value)
            for name, value in changes.items()
        }
        candidate = self.snapshot()
        for name, value in coerced.items():
            setattr(candidate, name, value)
        candidate.validate()
        with _COUNTER_LOCK:
            for name, value in coerced.items():
                setattr(self, name, value)

    def validate(self) -> None:
        """Check enumerated and numeric knobs, so a typo fails loudly instead of silently.

        Subclasses check their own knobs after calling this.

        Raises:
            ValueError: Naming the offending knob and the accepted values.
        """
        check_choice("column_order", self.column_order, COLUMN_ORDERS)
        check_choice("bom", self.bom, BOM_MODES)
        check_choice("lost_create_answer", self.lost_create_answer, LOST_CREATE_ANSWERS)
        endpoints = self.endpoints()
        for knob in ("http_errors", "http_errors_after", "json_answers"):
            for key in getattr(self, knob):
                check_choice(f"{knob} key", key, endpoints)
        for entity in (*self.rows, *self.fail_jobs, *self.malformed):
            check_choice("entity", entity, tuple(DEFAULT_ROWS))
        for defect in self.malformed.values():
            check_choice("malformed defect", defect, DEFECTS)
        if self.rows_per_part < 1:
            raise ValueError("rows_per_part must be at least 1")
        if self.data_days < 1:
            raise ValueError("data_days must be at least 1")
        if any(n < 0 for n in self.rows.values()):
            raise ValueError("rows must not be negative")


def check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise ValueError unless ``value`` is one of ``choices`` (the message lists them)."""
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
