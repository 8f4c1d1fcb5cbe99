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
import json
import threading
import typing
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from typing_extensions import Self

from tap_demandbase.sandbox.changes import ChangeKnobs, RowChanges, data_end, row_changes
from tap_demandbase.sandbox.changes import check as check_changes
from tap_demandbase.sandbox.entities import (
    ADDED_FIELD_NAME,
    ADDED_FIELD_RECIPES,
    DEFAULT_ROWS,
    ENTITIES,
    ID_PREFIXES,
    Entity,
)

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

#: Accepted type words of ``added_fields``.
ADDED_TYPES = tuple(ADDED_FIELD_RECIPES)

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
            Changing it re-spreads every timestamp of the entity and every reference to it;
            ``appended_rows`` adds rows that leave the others as they are.
        data_start: First day of ``last_modified_date``, which spans ``[data_start, +data_days)``.
        data_days: How many days ``last_modified_date`` spans.
        deleted_rows: Entity -> row ids (``acc-0000007``) deleted at the source: in no export,
            no count. Taken out of the knob, a row is back unchanged, with its old
            ``last_modified_date`` (an incremental export does not see it again).
        merged_rows: Entity -> {merged row id: survivor id, or ``survivor@instant``}: the merged
            row is gone; the survivor's values change and its ``last_modified_date`` becomes
            the instant (default: ``data_start + data_days``, after every generated row).
        updated_rows: Entity -> {row id: instant (``2024-04-01T08:00:00Z``)}: the row's values
            change (drawn anew from the instant) and its ``last_modified_date`` becomes it.
        restated_rows: Entity -> {row id: revision (1, 2, ...)}: the row's values change (drawn
            anew from the revision) and no date moves (``last_modified_date`` and
            ``activity_date`` stay), as when Demandbase re-scores past activities.
        appended_rows: Entity -> {instant: count}: rows added after the generated ones, ids
            continuing (batches in instant order), each with ``last_modified_date`` and
            ``activity_date`` at the instant. A change never moves a row's id,
            ``created_date`` or ``activity_date`` (``sandbox/changes.py``).
        added_fields: Entity -> {field name (snake case): type word (``string``, ``integer``,
            ``boolean``, ``datetime``... as ``GET /export/v1/entities`` says)}: a field with
            generated values, after the entity's own, in discovery and exports (uapi: named
            like the entity's other fields, e.g. ``{Account}.tier``, with its ``dataType``).
            Other fields keep their values.
        removed_fields: Entity -> field names (export_v1 names; uapi: the fields carrying them,
            e.g. ``industry`` removes ``{Account}.industry``): gone from discovery, and a job
            naming one is refused as naming an unknown field (export_v1: 400
            ``invalid_field``; uapi: 400-115).
        rows_per_part: Records per result part file.
        column_order: ``reversed`` (of the requested fields), ``requested`` or ``sorted``.
        bom: UTF-8 byte order mark on part 1 (``first``), every part (``all``) or none (``none``).
        bom_led_rows: Every data row starts with U+FEFF when its first column (in file order)
            holds text: before the cell's value, or alone in an empty cell. That is data, not
            a byte order mark (only a file's first character can be one).
        cache_results: Reuse the files of an identical earlier export.
        pending_seconds: How long a job is pending (uapi: accepted).
        processing_seconds: How long a job is then at least processing (longer only while its
            files are still being written). The job's timestamps say exactly this: completed
            (uapi: finished, ``updatedAt``) at ``created + pending + processing``.
        processing_seconds_jitter: Each job's processing time varies by up to this share of
            ``processing_seconds`` (0.3: +-30%), by a fixed sequence of the ``seed`` and the
            job's number (the sandbox's 1st, 2nd... job): ``jobs.processing_seconds_of``.
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
        today: The UTC day the daily counters count (uapi's calls per endpoint, the bytes of
            ``quota_bytes``), instead of the clock's (null); a new value starts a new day, and
            the reset time is its next midnight.
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

    # How the source changed since (``changes.py``), and its fields.
    deleted_rows: dict[str, list[str]] = field(default_factory=dict)
    merged_rows: dict[str, dict[str, str]] = field(default_factory=dict)
    updated_rows: dict[str, dict[str, str]] = field(default_factory=dict)
    restated_rows: dict[str, dict[str, int]] = field(default_factory=dict)
    appended_rows: dict[str, dict[str, int]] = field(default_factory=dict)
    added_fields: dict[str, dict[str, str]] = field(default_factory=dict)
    removed_fields: dict[str, list[str]] = field(default_factory=dict)

    # Result files.
    rows_per_part: int = 50_000
    column_order: str = "reversed"
    bom: str = "first"
    bom_led_rows: bool = False
    cache_results: bool = True

    # Job life cycle and URLs.
    pending_seconds: float = 1.0
    processing_seconds: float = 2.0
    processing_seconds_jitter: float = 0.0
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

    # The day the daily counters count.
    today: date | None = None

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

    def rows_made(self, entity: str) -> int:
        """Return how many rows the generator makes of ``entity``: ``rows`` plus those of
        ``appended_rows`` (deleted ones included).
        """
        appended = self.appended_rows.get(entity, {})
        return self.row_count(entity) + sum(appended.values())

    def change_knobs(self, entity: str) -> ChangeKnobs:
        """Return the row-change knobs of ``entity`` (``changes.py``)."""
        return ChangeKnobs(
            deleted=self.deleted_rows.get(entity, []),
            merged=self.merged_rows.get(entity, {}),
            updated=self.updated_rows.get(entity, {}),
            restated=self.restated_rows.get(entity, {}),
            appended=self.appended_rows.get(entity, {}),
        )

    def row_changes(self, entity: str) -> RowChanges | None:
        """Return how the rows of ``entity`` changed, or None if they did not.

        Raises:
            ValueError: A change knob names a row that does not exist (see ``changes.py``).
        """
        return row_changes(
            self.change_knobs(entity),
            ID_PREFIXES[entity],
            self.row_count(entity),
            data_end(self.data_start, self.data_days),
        )

    def with_added_fields(self, entity: Entity) -> Entity:
        """Return ``entity`` with the fields ``added_fields`` gives it (what rows are made of)."""
        added = self.added_fields.get(entity.name)
        return entity.revised(added, []) if added else entity

    def catalogue_entity(self, entity: Entity) -> Entity:
        """Return ``entity`` as discovery lists it and jobs accept it: with ``added_fields``,
        without ``removed_fields``.
        """
        return entity.revised(
            self.added_fields.get(entity.name, {}), self.removed_fields.get(entity.name, [])
        )

    def known_fields(self, entity: str) -> set[str]:
        """Return the generator fields of ``entity`` that some emulator exports (what
        ``removed_fields`` may name and ``added_fields`` may not).

        An emulator with fields of its own adds them in its subclass.
        """
        return set(ENTITIES[entity].field_names) if entity in ENTITIES else set()

    def data_key(self) -> str:
        """Return the knobs every generated row depends on beyond ``seed``, ``rows`` and the
        data span, as text (part of the job store's cache key).
        """
        knobs = {
            name: getattr(self, name)
            for name in (
                "deleted_rows",
                "merged_rows",
                "updated_rows",
                "restated_rows",
                "appended_rows",
                "added_fields",
            )
        }
        return json.dumps(knobs, sort_keys=True)

    def utc_today(self) -> date:
        """Return the UTC day the daily counters count: ``today``, else the clock's."""
        return self.today or datetime.now(timezone.utc).date()

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
        if not 0 <= self.processing_seconds_jitter < 1:
            raise ValueError("processing_seconds_jitter must be at least 0 and less than 1")
        self._validate_changes()
        self._validate_fields()

    def _validate_changes(self) -> None:
        """Check that the row-change knobs name entities, rows and instants that exist."""
        knobs = ("deleted_rows", "merged_rows", "updated_rows", "restated_rows", "appended_rows")
        entities = {name for knob in knobs for name in getattr(self, knob)}
        for entity in sorted(entities):
            check_choice("entity", entity, tuple(DEFAULT_ROWS))
            try:
                check_changes(
                    self.change_knobs(entity), ID_PREFIXES[entity], self.row_count(entity)
                )
            except ValueError as exc:
                raise ValueError(f"row changes of {entity}: {exc}") from None

    def _validate_fields(self) -> None:
        """Check ``added_fields`` (new snake-case names, known type words) and
        ``removed_fields`` (fields the entity has).
        """
        for entity, added in self.added_fields.items():
            check_choice("added_fields entity", entity, tuple(DEFAULT_ROWS))
            known = self.known_fields(entity)
            for name, type_word in added.items():
                if not ADDED_FIELD_NAME.fullmatch(name) or name in known:
                    raise ValueError(
                        f"added_fields of {entity}: {name!r} must be a new snake_case field name"
                    )
                check_choice(f"added_fields type of {entity}.{name}", type_word, ADDED_TYPES)
        for entity, removed in self.removed_fields.items():
            check_choice("removed_fields entity", entity, tuple(DEFAULT_ROWS))
            known = self.known_fields(entity) | set(self.added_fields.get(entity, {}))
            for name in removed:
                check_choice(f"removed_fields field of {entity}", name, tuple(sorted(known)))


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
    if typing.get_origin(hint) is list:
        if not isinstance(value, list):
            raise ValueError(f"setting {name!r} must hold JSON arrays")
        item_type = typing.get_args(hint)[0]
        return [_coerce(name, item_type, v) for v in value]
    allowed: tuple[object, ...] = typing.get_args(hint) if typing.get_origin(hint) else (hint,)
    if value is None and type(None) in allowed:
        return None
    if date in allowed and isinstance(value, str):
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
