"""The ``export_v1`` dialect: the Data Export API of ``demandbase-data-export-openapi.yml``.

The only module that knows this API's paths, payloads, status words, error bodies, field types
and settings (a bearer ``access_token``, ``account_list_id``). Another dialect (Demandbase's
production ``uapi``) is a sibling module supplying the same ``Dialect``.
"""

from __future__ import annotations

import datetime
import logging
import re
import typing as t
from dataclasses import dataclass

from singer_sdk import typing as th
from singer_sdk.authenticators import BearerTokenAuthenticator

from tap_demandbase.dialects.base import Connection, ConnectOptions, Dialect
from tap_demandbase.dialects.common import (
    CallCounter,
    InvalidJobJson,
    JobListing,
    array_in,
    create_job_once,
    json_shape,
    unexpected_answer,
)
from tap_demandbase.errors import (
    ApiRequestError,
    AuthError,
    ConfigError,
    DemandbaseError,
    QuotaExceededError,
    TransientApiError,
    UnknownFieldsError,
)
from tap_demandbase.model import (
    Capabilities,
    ConnectionCheck,
    EntityInfo,
    FieldInfo,
    Filters,
    JobSpec,
    JobState,
    JobStatus,
    PartLocation,
    PollPolicy,
    ReuseRule,
    usable_result,
)
from tap_demandbase.records.kinds import Kind
from tap_demandbase.transport import Transport, add_secrets, api_message, retry_after_seconds

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import requests

JOBS_PATH = "/export/v1/jobs"
ENTITIES_PATH = "/export/v1/entities"

logger = logging.getLogger("tap-demandbase.api")

#: The contract's status words. Any other word is ``JobState.UNKNOWN``: waited on like a
#: running job, with a warning naming it (an API may add ``queued`` or ``running``).
STATUSES: dict[str, JobState] = {
    "pending": JobState.PENDING,
    "processing": JobState.PROCESSING,
    "completed": JobState.COMPLETED,
    "failed": JobState.FAILED,
    "cancelled": JobState.CANCELLED,
    "expired": JobState.EXPIRED,
}


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:[Zz]|([+-])(\d{2}):(\d{2}))?"
)


def _timestamp(body: dict[str, t.Any], key: str) -> datetime.datetime | None:
    """Parse an RFC 3339 timestamp of the API (a missing offset is taken as UTC)."""
    value = body.get(key)
    if value is None or value == "":
        return None
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{key} {value!r} is not an RFC 3339 timestamp")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    offset = datetime.timedelta(0)
    if sign:
        offset = datetime.timedelta(hours=int(off_h), minutes=int(off_m))
        offset = -offset if sign == "-" else offset
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        return datetime.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro,
            tzinfo=datetime.timezone(offset),
        ).astimezone(datetime.timezone.utc)  # fmt: skip
    except ValueError:
        raise ValueError(f"{key} {value!r} is not an RFC 3339 timestamp") from None


def _count(body: dict[str, t.Any], key: str) -> int | None:
    """Read a count of the job JSON: absent, null or a whole JSON number, never text."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} {value!r} is not a count")
    return value


def job_status_from_json(body: t.Any, what: str = "a job request") -> JobStatus:
    """Turn an ExportJob JSON object into a JobStatus; InvalidJobJson (one line) if it is not
    one: a missing id, a count as text, a timestamp that is not RFC 3339.
    """
    try:
        if not isinstance(body, dict):
            raise ValueError(f"it is {json_shape(body)}, not a JSON object")
        job_id = body.get("id")
        if not isinstance(job_id, (str, int)) or isinstance(job_id, bool) or job_id == "":
            raise ValueError("it has no job id")
        status = body.get("status")
        if not isinstance(status, str) or not status:
            raise ValueError("it has no status")
        error = body.get("error_message")
        return JobStatus(
            id=str(job_id),
            entity=str(body.get("entity_type") or ""),
            state=STATUSES.get(status, JobState.UNKNOWN),
            record_count=_count(body, "record_count"),
            file_parts=_count(body, "file_parts"),
            file_size_bytes=_count(body, "file_size_bytes"),
            created_at=_timestamp(body, "created_at"),
            completed_at=_timestamp(body, "completed_at"),
            expires_at=_timestamp(body, "expires_at"),
            error_message=None if error is None else str(error),
            raw=body,
            reported_status=status,
        )
    except ValueError as exc:
        msg = (
            f"The API's answer to {what} is not an export job the tap can read: {exc}. The "
            "state is kept: run the tap again, and report it to Demandbase support if it persists."
        )
        raise InvalidJobJson(msg, str(exc)) from None


@dataclass(frozen=True)
class JobPage:
    """One page of the job list: the jobs read, how many entries it had, the total."""

    jobs: list[JobStatus]
    listed: int
    total: int


def entities_from_json(body: t.Any, what: str) -> list[EntityInfo]:
    """Read the entities answer: an object whose ``entities`` array holds objects with a
    ``name`` and (optionally) a ``fields`` array of objects with a ``name``; anything else is
    one line saying what came back.
    """
    endpoint = f"GET {ENTITIES_PATH}"
    expected = "an object with an 'entities' array of named entities"
    entries = array_in(body, "entities", what=what, endpoint=endpoint, expected=expected)
    entities = []
    for number, entity in enumerate(entries, start=1):
        name = entity.get("name") if isinstance(entity, dict) else None
        if not isinstance(name, str) or not name:
            got = f"entity {number} as {json_shape(entity)} without a 'name'"
            raise unexpected_answer(what, endpoint, got, expected)
        fields = entity.get("fields") or []
        if not isinstance(fields, list):
            got = f"the fields of entity '{name}' as {json_shape(fields)}"
            raise unexpected_answer(what, endpoint, got, "an array of named fields")
        infos = []
        for position, f in enumerate(fields, start=1):
            field_name = f.get("name") if isinstance(f, dict) else None
            if not isinstance(field_name, str) or not field_name:
                got = f"field {position} of entity '{name}' as {json_shape(f)} without a 'name'"
                raise unexpected_answer(what, endpoint, got, "an array of named fields")
            infos.append(
                FieldInfo(
                    name=field_name,
                    type=str(f.get("type") or ""),
                    description=str(f.get("description") or ""),
                )
            )
        description = str(entity.get("description") or "")
        entities.append(EntityInfo(name=name, description=description, fields=tuple(infos)))
    return entities


def _same_export(job: dict[str, t.Any], request: dict[str, t.Any]) -> bool:
    """Whether an existing job's JSON exports what a create request asks for."""
    return (
        job.get("entity_type") == request["entity_type"]
        and sorted(job.get("fields") or []) == sorted(request["fields"])
        and (job.get("filters") or {}) == request.get("filters", {})
    )


def job_request_body(spec: JobSpec) -> dict[str, t.Any]:
    """Return the CreateExportJobRequest for a spec."""
    filters: dict[str, t.Any] = {}
    if spec.date_field:
        date_range: dict[str, str] = {"field": spec.date_field}
        if spec.start:
            date_range["start"] = spec.start.isoformat()
        if spec.end:
            date_range["end"] = spec.end.isoformat()
        filters["date_range"] = date_range
    filters.update(spec.filters)
    body: dict[str, t.Any] = {"entity_type": spec.entity, "fields": list(spec.fields)}
    if filters:
        body["filters"] = filters
    body["format"] = "csv"
    return body


class DataExportClient:
    """Speaks the Data Export API contract over a Transport."""

    capabilities = Capabilities(can_cancel=True, can_list_jobs=True)

    def __init__(
        self,
        transport: Transport,
        account_list_id: str | None = None,
        calls: CallCounter | None = None,
    ) -> None:
        self.transport = transport
        self.account_list_id = account_list_id
        #: The run's requests per endpoint (the transport counts them as it sends).
        self.calls = calls or CallCounter(endpoint_of)
        self._listing = JobListing()
        #: Entity → its fields, as the entity list gave them in this run (not asked: empty).
        self._listed: dict[str, tuple[FieldInfo, ...]] = {}

    def remember_entities(self, entities: list[EntityInfo]) -> None:
        """Nothing to remember: this API's field names are the property names."""

    def field_api_names(self, entity: str) -> dict[str, str]:
        """None differ: the contract's field names are the property names."""
        return {}

    def calls_by_stream(self) -> Mapping[str | None, Mapping[str, int]]:
        """Return this run's calls per stream and endpoint."""
        return self.calls.by_stream()

    def usage_summary(self) -> str | None:
        """Return the calls this run made, per endpoint (the contract states no daily limits)."""
        counts = [(self.calls.get(endpoint), what) for endpoint, what in CALLS_SAID]
        made = [f"{n} {what}{'' if n == 1 else 's'}" for n, what in counts if n]
        return f"API calls of this run: {', '.join(made) or 'none'}"

    def job_filters(self, entity: str) -> list[Filters]:
        """Return the one filter set of every job: the account list, if the settings name one."""
        return [(("account_list_id", self.account_list_id),) if self.account_list_id else ()]

    def list_entities(self) -> list[EntityInfo]:
        """Return every exportable entity with its fields (tenant custom fields included)."""
        what = "listing entities"
        try:
            _, body = self.transport.request_json("GET", ENTITIES_PATH, what=what)
        except ApiRequestError as exc:
            if exc.status != 404:
                raise
            raise ApiRequestError(self._not_this_api(), status=404) from None
        entities = entities_from_json(body, what)
        self._listed = {entity.name: entity.fields for entity in entities}
        return entities

    def offered_fields(self, entity: str) -> tuple[FieldInfo, ...] | None:
        """Return the entity's fields if this run listed the entities (discovery, --test): a
        sync given a catalog asks nothing before its jobs (None), and a job naming a field the
        API no longer has is refused with the field's name instead.
        """
        return self._listed.get(entity) if self._listed else None

    def _not_this_api(self) -> str:
        """Say that api_url answers, but not as the Data Export contract does (a 404 on the
        entity list: another API, such as Demandbase's production one, or a wrong path).
        """
        url = self.transport.url(ENTITIES_PATH)
        return (
            f"{url} answered 404: api_url does not serve the Data Export API of "
            f"api_dialect=export_v1 (whose entity list is {ENTITIES_PATH}). Check api_url "
            f"(default {DEFAULT_API_URL}); for Demandbase's production API "
            "(uapi.demandbase.com) set api_dialect=uapi."
        )

    def check_connection(self, streams: Sequence[str] | None) -> list[ConnectionCheck]:
        """Prove the token, its Data Export permission and the streams with the entity list,
        and the job list with one page of one job: two GETs, no job created.
        """
        offered = [entity.name for entity in self.list_entities()]
        if not offered:
            msg = (
                "The API lists no entity for this access token: there is nothing to export. "
                "Ask your Demandbase admin which entities the token's user may export."
            )
            raise ConfigError(msg)
        checks = [
            ConnectionCheck(
                f"access_token accepted with the Data Export permission: the API offers "
                f"{len(offered)} entities"
            )
        ]
        wanted = list(offered if streams is None else streams)
        missing = [name for name in wanted if name not in offered]
        if missing:
            which = (
                f"Stream {missing[0]} of the catalog is not an entity"
                if len(missing) == 1
                else f"Streams {', '.join(missing)} of the catalog are not entities"
            )
            msg = (
                f"{which} the API offers ({', '.join(offered)}): run --discover to write a "
                "new catalog, or deselect what it does not offer."
            )
            raise ConfigError(msg)
        checks.append(ConnectionCheck(f"Streams offered by the API: {', '.join(wanted)}"))
        checks.append(self._job_list_check())
        return checks

    def _job_list_check(self) -> ConnectionCheck:
        """Read one job of the job list (a 403 is the permission: an error; a 404 is an API
        without a job list, which a sync does without).
        """
        try:
            page = self.list_jobs(limit=1)
        except ApiRequestError as exc:
            if exc.status != 404:
                raise
            return ConnectionCheck(
                "The API has no job list (404): syncs work, but cannot re-use a job that a "
                "crashed run created",
                warning=True,
            )
        return ConnectionCheck(f"Job list readable ({page.total} job(s) listed)")

    def create_job(self, spec: JobSpec, rule: ReuseRule | None = None) -> JobStatus:
        """POST a new export job; before sending it again after a lost answer (5xx, a body
        that is not a job), use the job that POST may have created, if one is listed.
        """
        request = job_request_body(spec)
        what = f"creating the {spec.entity} export job"
        try:
            return create_job_once(
                self.transport,
                JOBS_PATH,
                request,
                spec=spec,
                rule=rule,
                what=what,
                parse=job_status_from_json,
                find=self.find_equivalent_job,
            )
        except ApiRequestError as exc:
            if exc.status != 404:
                raise
            raise ApiRequestError(f"{exc} {self._not_this_api()}", status=404) from None

    def get_job(self, job_id: str) -> JobStatus:
        """GET one job's status."""
        what = f"reading export job {job_id}"
        _, body = self.transport.request_json("GET", f"{JOBS_PATH}/{job_id}", what=what)
        return job_status_from_json(body, what)

    def cancel_job(self, job_id: str) -> JobStatus | None:
        """DELETE a job; a 409 means it already finished and there is nothing to cancel."""
        what = f"cancelling export job {job_id}"
        status, body = self.transport.request_json(
            "DELETE", f"{JOBS_PATH}/{job_id}", what=what, allow=(409,)
        )
        return None if status == 409 else job_status_from_json(body, what)

    def list_jobs(
        self, status: JobState | None = None, *, limit: int = 25, offset: int = 0
    ) -> JobPage:
        """Return one page of jobs; entries that are not jobs the tap can read are skipped."""
        params: dict[str, t.Any] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = status.value
        what = "listing export jobs"
        _, body = self.transport.request_json("GET", JOBS_PATH, params=params, what=what)
        entries = array_in(
            body,
            "jobs",
            what=what,
            endpoint=f"GET {JOBS_PATH}",
            expected="an object with a 'jobs' array",
        )
        jobs = []
        for entry in entries:
            try:
                jobs.append(job_status_from_json(entry, "listing export jobs"))
            except InvalidJobJson as exc:
                logger.debug("Skipped an entry of the job list: %s", exc)
        total = body.get("total")
        if not isinstance(total, int) or isinstance(total, bool):
            total = offset + len(entries)
        return JobPage(jobs, len(entries), total)

    def find_equivalent_job(
        self, spec: JobSpec, rule: ReuseRule | None = None, page_size: int = 100
    ) -> JobStatus | None:
        """Return an unexpired job exporting exactly this spec (same entity, fields, filters)
        that ``rule`` admits.

        Looked for before creating a job, so that a job created by a run that died before it
        could record it is re-used instead of spending quota on a duplicate. Listing only
        serves that rescue: if the token may not list jobs (403) or the API has no job list
        (404), the tap says so once and goes on without it.
        """
        rule = rule or ReuseRule()
        wanted = job_request_body(spec)
        now = datetime.datetime.now(datetime.timezone.utc)

        def candidates() -> t.Iterator[JobStatus]:
            # In the order jobs move through: one that moves on between two listings is
            # still seen in the next.
            for state in (JobState.PENDING, JobState.PROCESSING, JobState.COMPLETED):
                offset = 0
                while True:
                    page = self.list_jobs(state, limit=page_size, offset=offset)
                    for job in page.jobs:
                        if (
                            _same_export(job.raw, wanted)
                            and usable_result(job, now)
                            and rule.admits(job)
                        ):
                            yield job
                    offset += page.listed
                    if not page.listed or offset >= page.total:
                        break

        return self._listing.preferred(candidates)

    def part_locations(self, job: JobStatus, *, fresh: bool = False) -> list[PartLocation]:
        """Return the download endpoint of each part: it redirects to a URL it signs anew on
        every call, so there is never anything to refresh. An empty result (no rows, no parts
        or file_parts absent) has none; without file_parts, part 1 is listed and the others
        are found by ``unlisted_part``.
        """
        if job.file_parts == 0 or (job.file_parts is None and job.record_count == 0):
            return []
        return [self._part(job, n) for n in range(1, max(1, job.file_parts or 1) + 1)]

    def unlisted_part(self, job: JobStatus, number: int) -> PartLocation | None:
        """Return part ``number`` of a job without file_parts (the API answers 404 past the
        last); None when file_parts says how many there are, or the result is empty.
        """
        if job.file_parts is not None or job.record_count == 0:
            return None
        return self._part(job, number)

    def _part(self, job: JobStatus, number: int) -> PartLocation:
        url = self.transport.url(f"{JOBS_PATH}/{job.id}/download")
        return PartLocation(number=number, url=f"{url}?part={number}", with_credentials=True)


#: Endpoints as the summary line names one call of each, in the order of a job's life.
CALLS_SAID = (
    ("entities", "entity list"),
    ("create", "job create"),
    ("status", "status call"),
    ("list", "list call"),
    ("download", "part download"),
    ("cancel", "cancel"),
)


def endpoint_of(method: str, path: str) -> str | None:
    """Return the endpoint a request (method, URL path) calls, as CALLS_SAID names it."""
    if path.endswith(ENTITIES_PATH):
        return "entities"
    if path.endswith(JOBS_PATH):
        return "create" if method == "POST" else "list"
    if f"{JOBS_PATH}/" not in path:
        return None
    if path.endswith("/download"):
        return "download"
    return "cancel" if method == "DELETE" else "status"


def classify_error(response: requests.Response, what: str) -> DemandbaseError:
    """Return the error a pipeline operator can act on, for an answer of 400 or more."""
    status = response.status_code
    message = api_message(response)
    if status == 401:
        msg = (
            f"The Demandbase API refused the access token (401 on {what}): it is missing, wrong "
            "or expired. Set a valid token in the access_token setting "
            "(TAP_DEMANDBASE_ACCESS_TOKEN)."
        )
        return AuthError(msg, status=401)
    if status == 403:
        msg = (
            f"The Demandbase API denied {what} (403: {message}). Ask your Demandbase admin to "
            "grant the token's user the Data Export permission."
        )
        return AuthError(msg, status=403)
    if status == 429 and (
        _is_quota_answer(response, message) or retry_after_seconds(response) is None
    ):
        return QuotaExceededError(quota_message(response, message))
    if status == 429 or status >= 500:
        return TransientApiError(
            f"{what} answered {status}: {message}", retry_after=retry_after_seconds(response)
        )
    msg = f"The Demandbase API rejected {what} ({status}): {message}"
    unknown = unknown_fields(message) if status == 400 else ()
    if unknown:
        msg += ". The catalog names fields the API no longer has: run --discover again."
        return UnknownFieldsError(msg, unknown, status=status)
    return ApiRequestError(msg, status=status)


#: How the API's 400 names the fields an entity does not have (its ``invalid_field`` answer).
_UNKNOWN_FIELDS = re.compile(r"Unknown field(?:s|\(s\))? for entity [^:]+: (.+)", re.IGNORECASE)


def unknown_fields(message: str) -> tuple[str, ...]:
    """Return the fields a 400 says the entity does not have (none: another 400)."""
    match = _UNKNOWN_FIELDS.search(message)
    if match is None:
        return ()
    return tuple(name.strip() for name in match.group(1).split(",") if name.strip())


def _is_quota_answer(response: requests.Response, message: str) -> bool:
    """Tell the daily-quota 429 (never retried) from a rate limit (retried only when the
    server says when: the contract's 429 is the quota, and a blind retry loop spends it).
    """
    return "quota" in message.lower() or "quota" in response.text.lower()[:500]


def quota_message(response: requests.Response, message: str) -> str:
    """Say that the quota is spent and when it comes back."""
    resets_at = None
    try:
        body = response.json()
        if isinstance(body, dict):
            resets_at = body.get("resets_at") or body.get("resetsAt")
    except ValueError:
        pass
    when = resets_at or "at the next midnight UTC"
    return (
        f"The Demandbase daily export quota is spent ({message}); it resets {when}. "
        "Everything extracted so far is kept in the emitted state: run the tap again after the "
        "reset and it continues from there."
    )


# The dialect ---------------------------------------------------------------------------------

DEFAULT_API_URL = "https://api.demandbase.com"

#: The contract's field ``type`` is free text and tenants add custom fields: types are matched
#: by family of names (lower case), anything else is read as a string with a warning.
FIELD_TYPES: dict[str, Kind] = {
    **dict.fromkeys(
        ("string", "text", "id", "reference", "picklist", "email", "url", "phone"), Kind.STRING
    ),
    **dict.fromkeys(("integer", "int", "long", "bigint"), Kind.INTEGER),
    **dict.fromkeys(("number", "float", "double", "decimal", "currency", "percent"), Kind.NUMBER),
    **dict.fromkeys(("boolean", "bool"), Kind.BOOLEAN),
    "date": Kind.DATE,
    **dict.fromkeys(("datetime", "date-time", "timestamp"), Kind.DATE_TIME),
}

DEFAULT_REPLICATION_KEY = "last_modified_date"
DEFAULT_REPLICATION_KEYS = {"activities": "activity_date"}

SETTINGS: tuple[th.Property[t.Any], ...] = (
    th.Property(
        "access_token",
        th.StringType,
        secret=True,
        title="Access token",
        description="Bearer token of a Demandbase user with the Data Export permission.",
    ),
    th.Property(
        "account_list_id",
        th.StringType,
        title="Account list ID",
        description="Export only records of this account list (filters.account_list_id).",
    ),
)


def default_replication_key(stream: str, date_fields: Sequence[str]) -> str | None:
    """Return the contract's bookmark field: activity_date for activities, else
    last_modified_date.
    """
    return DEFAULT_REPLICATION_KEYS.get(stream, DEFAULT_REPLICATION_KEY)


def connect(config: Mapping[str, t.Any], api_url: str, options: ConnectOptions) -> Connection:
    """Return a client authenticated by the ``access_token`` setting."""
    token = config.get("access_token")
    if not token:
        msg = (
            "Setting access_token is required with api_dialect=export_v1: set it (or "
            "TAP_DEMANDBASE_ACCESS_TOKEN) to the bearer token of a Demandbase user with the Data "
            "Export permission."
        )
        raise ConfigError(msg)
    add_secrets(str(token))
    calls = CallCounter(endpoint_of)
    transport = Transport(
        api_url,
        t.cast("requests.auth.AuthBase", BearerTokenAuthenticator(token=str(token))),
        classify=classify_error,
        user_agent=options.user_agent,
        download_read_timeout=options.download_stall_seconds,
        on_send=calls.count_request,
    )
    client = DataExportClient(transport, config.get("account_list_id") or None, calls)
    return Connection(api=client, opener=transport)


DIALECT = Dialect(
    name="export_v1",
    default_api_url=DEFAULT_API_URL,
    statuses=STATUSES,
    field_types=FIELD_TYPES,
    settings=SETTINGS,
    poll_policy=PollPolicy(first_interval=2.0, max_interval=900.0, timeout=6 * 3600.0),
    max_concurrent_jobs=None,
    default_replication_key=default_replication_key,
    connect=connect,
)
