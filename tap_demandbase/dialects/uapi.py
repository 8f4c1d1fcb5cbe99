"""The ``uapi`` dialect: Demandbase's production Data Export API (``uapi.demandbase.com``).

What public sources say about it is in ``demandbase-production-api.md`` (documented, inferred,
unknown); the README's "Production tenants" section states what the tap assumes where they are
silent. In short: OAuth client credentials (``uapi_auth.py``); ``GET /fields`` per entity type
(``{Entity}.camelCase`` names, mapped to snake_case properties by ``uapi_fields.py``);
``POST /job`` with a ``jobName`` derived from the job's identity; ``GET /job/{id}``;
``GET /jobs`` to find a job a crashed run created; results as ``resultsUrls`` (else
``resultsUrl``), pre-signed; one job at a time per tenant; no cancel; daily call budgets per
tenant (60 creates, 300 status calls, 1,200 list calls, 60 fields calls), so every call is
counted and the run ends with one line saying what it used.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import logging
import threading
import typing as t
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pendulum
from singer_sdk import typing as th
from singer_sdk.authenticators import BearerTokenAuthenticator

from tap_demandbase.dialects.base import Connection, ConnectOptions, Dialect, StreamRules
from tap_demandbase.dialects.common import (
    CallCounter,
    InvalidJobJson,
    JobListing,
    array_in,
    create_job_once,
    json_shape,
    unexpected_answer,
)
from tap_demandbase.dialects.export_v1 import FIELD_TYPES
from tap_demandbase.dialects.uapi_auth import ClientCredentials
from tap_demandbase.dialects.uapi_fields import (
    STREAM_OF_ENTITY,
    STREAMS,
    UapiStream,
    column_names,
    default_replication_key,
    property_fields,
)
from tap_demandbase.errors import (
    ApiRequestError,
    AuthError,
    ConfigError,
    DemandbaseError,
    JobSlotBusyError,
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
from tap_demandbase.transport import Retry, Transport, add_secrets, redact, retry_after_seconds

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import requests

logger = logging.getLogger("tap-demandbase.api")

DEFAULT_API_URL = "https://uapi.demandbase.com"
EXPORT_PATH = "/data/export/v1"
FIELDS_PATH = f"{EXPORT_PATH}/fields"
JOB_PATH = f"{EXPORT_PATH}/job"
JOBS_PATH = f"{EXPORT_PATH}/jobs"

#: The API's status words (matched in any case). Any other word is ``JobState.UNKNOWN``.
STATUSES: dict[str, JobState] = {
    "accepted": JobState.PENDING,
    "processing": JobState.PROCESSING,
    "finished": JobState.COMPLETED,
    "failed": JobState.FAILED,
}
#: Calls per tenant and UTC day that Demandbase documents, by endpoint (they reset at 00:00 UTC).
DAILY_LIMITS = {"create": 60, "status": 300, "list": 1200, "fields": 60}
#: How each budgeted endpoint's calls are named in the usage line and in errors.
CALLS = {
    "create": "job creates",
    "status": "status calls",
    "list": "list calls",
    "fields": "fields calls",
}
#: A 429-100 is tried once more, after a short wait: Demandbase answers it for a momentary
#: limit, and for an endpoint's spent daily limit too, where every retry is one more refused
#: call. A second one stops the run.
RATE_LIMIT_RETRY = Retry(total=1, backoff_factor=3.0, jitter=False)
#: A job created this long ago or earlier is not looked for (the job list is paged newest
#: first, and paging stops there): re-use rescues a job of a run that died today.
REUSE_LOOKBACK = datetime.timedelta(hours=24)
LIST_PAGE_SIZE = 100
MAX_JOB_NAME = 50
#: Ids per buying-group job: ``accountIds`` takes at most 10,000 (400-150).
ACCOUNT_IDS_PER_JOB = 10_000
#: Report types whose jobs need ``fromDate``/``toDate`` (the reporting period).
DATED_REPORT_TYPES = frozenset(
    {"campaign_performance_rollup", "campaign_account_rollup", "creative_rollup"}
)
CAMPAIGN_REPORT_TYPES = (
    "campaign_summary",
    "campaign_performance_rollup",
    "campaign_account_lifetime",
    "campaign_account_rollup",
)
CREATIVE_REPORT_TYPES = ("creative_lifetime", "creative_rollup")
SOURCES = ("demandbase", "linkedin", "google", "all")


# Calls against the daily budgets -------------------------------------------------------------


class CallUsage(CallCounter):
    """Counts this run's calls per budgeted endpoint (retries and refused calls included, as
    Demandbase counts them).
    """

    def __init__(self) -> None:
        super().__init__(budgeted_endpoint)

    def spent(self, endpoint: str) -> bool:
        """Whether this run alone made as many calls to the endpoint as a day allows."""
        return self.get(endpoint) >= DAILY_LIMITS[endpoint]

    def summary(self) -> str:
        """Return the run's calls against the daily limits, in one line."""
        budgets = ", ".join(
            f"{self.get(endpoint)} {what} of {DAILY_LIMITS[endpoint]:,}"
            for endpoint, what in CALLS.items()
        )
        return (
            f"API calls of this run against the tenant's daily limits: {budgets}; "
            f"{self.get('token')} token request(s)"
        )


def budgeted_endpoint(method: str, path: str) -> str | None:
    """Return the budget a request counts against, by its method and URL path (None: the
    token endpoint, counted apart).
    """
    if method == "POST" and path.endswith(JOB_PATH):
        return "create"
    if method == "GET" and path.endswith(JOBS_PATH):
        return "list"
    if method == "GET" and path.endswith(FIELDS_PATH):
        return "fields"
    if method == "GET" and f"{JOB_PATH}/" in path:
        return "status"
    return None


# Settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UapiOptions:
    """The settings the uapi client reads."""

    campaign_sources: tuple[str, ...] = ()
    report_types: Mapping[str, str | None] = field(default_factory=dict)
    account_ids: tuple[str, ...] = ()
    start_day: datetime.date | None = None

    def report_type(self, stream: UapiStream) -> str | None:
        """Return the report type the settings give a campaign or creative stream."""
        return self.report_types.get(stream.report_type_setting or "")

    def enabled(self, stream: UapiStream) -> bool:
        """Whether the settings a stream needs are set."""
        if stream.report_type_setting:
            return bool(self.campaign_sources and self.report_type(stream))
        if stream.account_scoped:
            return bool(self.account_ids)
        return True

    def account_id_chunks(self) -> list[tuple[str, ...]]:
        """Return the account ids in chunks of at most ACCOUNT_IDS_PER_JOB, in the given order."""
        ids = self.account_ids
        return [
            ids[start : start + ACCOUNT_IDS_PER_JOB]
            for start in range(0, len(ids), ACCOUNT_IDS_PER_JOB)
        ]


def _chunk_label(index: int, count: int, ids: Sequence[str]) -> str:
    """Return how a chunk of account ids is named in a job's filters: its place and a digest
    of its ids (the ids themselves would bloat the state).
    """
    digest = hashlib.sha256(",".join(ids).encode()).hexdigest()[:12]
    return f"{index}/{count}:{len(ids)}:{digest}"


# The client ----------------------------------------------------------------------------------


class UapiClient:
    """Speaks Demandbase's production Data Export API over a Transport."""

    capabilities = Capabilities(can_cancel=False, can_list_jobs=True, reuse_max_age=REUSE_LOOKBACK)

    def __init__(
        self,
        transport: Transport,
        options: UapiOptions,
        usage: CallUsage,
        credentials: ClientCredentials | None = None,
    ) -> None:
        self.transport = transport
        self.options = options
        self.usage = usage
        #: The client credentials the transport authenticates with (None: a given token).
        self.credentials = credentials
        #: Stream → property → the field's API name (from /fields, or from the catalog).
        self._api_names: dict[str, dict[str, str]] = {}
        self._names_lock = threading.RLock()
        #: Stream → its fields as /fields listed them in this run (not asked: absent).
        self._listed: dict[str, tuple[FieldInfo, ...]] = {}
        self._listing = JobListing()

    # Streams and fields ------------------------------------------------------------------------

    def list_entities(self) -> list[EntityInfo]:
        """Return the streams the settings enable, with their fields (one /fields call each)."""
        entities = []
        skipped = []
        for stream in STREAMS.values():
            if not self.options.enabled(stream):
                skipped.append(f"{stream.name} ({', '.join(stream.optional_settings)})")
                continue
            entity = EntityInfo(stream.name, self._listed_fields(stream))
            self.remember_entities([entity])
            entities.append(entity)
        if skipped:
            logger.info(
                "Streams not discovered because their settings are not set: %s",
                "; ".join(skipped),
            )
        return entities

    def _listed_fields(self, stream: UapiStream) -> tuple[FieldInfo, ...]:
        """GET the fields of a stream's entity type, named as properties."""
        params = {"entityType": stream.entity_type}
        report = self.options.report_type(stream)
        if report:
            params["adReportType"] = report
        what = f"listing the fields of {stream.entity_type}"
        _, body = self.transport.request_json("GET", FIELDS_PATH, params=params, what=what)
        fields = property_fields(stream, fields_from_json(body, what))
        self._listed[stream.name] = fields
        return fields

    def offered_fields(self, entity: str) -> tuple[FieldInfo, ...] | None:
        """Return the stream's fields if /fields listed them in this run (discovery, or a
        catalog lacking their API names); a catalog that has them costs no fields call, and
        then nothing is known (None): a tenant has 60 fields calls a day.
        """
        return self._listed.get(_stream(entity).name)

    def enabled_streams(self) -> tuple[list[str], list[str]]:
        """Return the streams the settings enable, and the others, each with the settings it
        lacks.
        """
        enabled, skipped = [], []
        for stream in STREAMS.values():
            if self.options.enabled(stream):
                enabled.append(stream.name)
            else:
                skipped.append(f"{stream.name} ({', '.join(stream.optional_settings)})")
        return enabled, skipped

    def check_connection(self, streams: Sequence[str] | None) -> list[ConnectionCheck]:
        """Prove the credentials (one token request), then each stream with one page of one
        job of its entity type's job list: the cheapest call that names an entity type (1,200
        list calls a day; the 60 fields calls a day are kept for discovery), and no job is
        created. A 403 names what is missing: the Data Export permission, or the entity type.
        """
        checks = []
        if self.credentials is not None:
            self.credentials.access_token()
            checks.append(
                ConnectionCheck("client_id and client_secret accepted: an access token was issued")
            )
        enabled, skipped = self.enabled_streams()
        names = list(streams) if streams is not None else enabled
        if streams is None and skipped:
            checks.append(ConnectionCheck(f"Not tested (settings not set): {'; '.join(skipped)}"))
        for name in names:
            stream = _stream(name)
            self.job_filters(name)  # the settings the stream needs
            listed = self._jobs_listed(stream.entity_type, f"stream {name}")
            checks.append(
                ConnectionCheck(
                    f"{name}: entity type {stream.entity_type} accepted by the job list "
                    f"({listed} job{'' if listed == 1 else 's'} of that type listed)"
                )
            )
        if not names:  # nothing selected: the credentials and the job list still
            listed = self._jobs_listed("All", "every entity type")
            checks.append(ConnectionCheck(f"Job list readable ({listed} jobs of any type)"))
        if self.credentials is None:
            checks.insert(0, ConnectionCheck("access_token accepted by the job list"))
        return checks

    def _jobs_listed(self, entity_type: str, which: str) -> int:
        """Return how many jobs of an entity type (``All``: of any) the job list counts, with
        one page of one job.
        """
        params = {
            "entityType": entity_type,
            "jobStatus": "All",
            "sort": "descending",
            "page": 1,
            "perPage": 1,
        }
        what = f"listing the {entity_type} export jobs ({which})"
        _, body = self.transport.request_json("GET", JOBS_PATH, params=params, what=what)
        total = body.get("totalCount") if isinstance(body, dict) else None
        return total if isinstance(total, int) and not isinstance(total, bool) else 0

    def remember_entities(self, entities: list[EntityInfo]) -> None:
        """Keep each stream's fields' API names (from discovery, or from a catalog)."""
        for entity in entities:
            self._api_names[entity.name] = {f.name: f.name_in_api for f in entity.fields}

    def field_api_names(self, entity: str) -> dict[str, str]:
        """Return the stream's property → API name (asking /fields once if nobody said)."""
        return dict(self._names(_stream(entity)))

    def _names(self, stream: UapiStream) -> dict[str, str]:
        """Return the stream's property → API name; ask /fields once if no catalog said (one
        thread asks; a job thread and the stream reading its result may both need them).
        """
        with self._names_lock:
            return self._names_unlocked(stream)

    def _names_unlocked(self, stream: UapiStream) -> dict[str, str]:
        names = self._api_names.get(stream.name)
        if names is None:
            logger.info(
                "The catalog does not give the API names of %s's fields (run --discover to "
                "write them into it); asking /fields once",
                stream.name,
            )
            self.remember_entities([EntityInfo(stream.name, self._listed_fields(stream))])
            names = self._api_names[stream.name]
        return names

    def job_filters(self, entity: str) -> list[Filters]:
        """Return the filter sets of a stream's jobs: its report type and sources (campaigns,
        creatives), or one chunk of account ids per job (buying groups).
        """
        stream = _stream(entity)
        if stream.report_type_setting:
            report = self.options.report_type(stream)
            if not report or not self.options.campaign_sources:
                msg = (
                    f"Stream {entity} needs the settings campaign_sources and "
                    f"{stream.report_type_setting}: set them, or deselect the stream."
                )
                raise ConfigError(msg)
            sources = ",".join(sorted(set(self.options.campaign_sources)))
            return [(("ad_report_type", report), ("source", sources))]
        if stream.account_scoped:
            chunks = self.options.account_id_chunks()
            if not chunks:
                msg = (
                    f"Stream {entity} needs the setting buying_group_account_ids (the accounts "
                    "whose buying groups to export): set it, or deselect the stream."
                )
                raise ConfigError(msg)
            return [
                (("account_ids", _chunk_label(n, len(chunks), ids)),)
                for n, ids in enumerate(chunks, start=1)
            ]
        return [()]

    # Requests ----------------------------------------------------------------------------------

    def job_request(self, spec: JobSpec) -> dict[str, t.Any]:
        """Return the POST /job body of a spec, with its jobName (derived from the rest)."""
        stream = _stream(spec.entity)
        names = self._names(stream)
        body: dict[str, t.Any] = {
            "entityType": stream.entity_type,
            "fields": [names.get(f, f) for f in spec.fields],
        }
        body.update(self._date_conditions(stream, spec, names))
        filters = dict(spec.filters)
        if "ad_report_type" in filters:
            body["adReportType"] = filters["ad_report_type"]
            body["source"] = filters["source"].split(",")
            if filters["ad_report_type"] in DATED_REPORT_TYPES and "fromDate" not in body:
                body["fromDate"] = _day(spec.start or self.options.start_day)
                body["toDate"] = _day(spec.end or pendulum.now("UTC").date())
        if "account_ids" in filters:
            body["accountIds"] = [_account_id(i) for i in self._chunk(filters["account_ids"])]
        body["format"] = "csv"
        body["jobName"] = job_name(spec, body)
        return body

    @staticmethod
    def _date_conditions(
        stream: UapiStream, spec: JobSpec, names: Mapping[str, str]
    ) -> dict[str, t.Any]:
        """Return the window as the API takes it: ``fromDate``/``toDate`` (activities), else
        two filters on the replication key's API name, both days inclusive.
        """
        if not spec.date_field:
            if stream.date_range_key:
                msg = f"Stream {stream.name} needs a date window: it has no replication key."
                raise ConfigError(msg)
            return {}
        if spec.date_field == stream.date_range_key:
            if spec.start is None or spec.end is None:
                msg = f"Stream {stream.name} needs start_date: its jobs need a date range."
                raise ConfigError(msg)
            return {"fromDate": spec.start.isoformat(), "toDate": spec.end.isoformat()}
        field = names.get(spec.date_field, spec.date_field)
        filters = []
        if spec.start is not None:
            filters.append(_filter(field, "Greater Than or Equal To", spec.start))
        if spec.end is not None:
            filters.append(_filter(field, "Less Than or Equal To", spec.end))
        return {"filters": filters} if filters else {}

    def _chunk(self, label: str) -> tuple[str, ...]:
        """Return the account ids a chunk label of this run's settings names."""
        chunks = self.options.account_id_chunks()
        for n, ids in enumerate(chunks, start=1):
            if _chunk_label(n, len(chunks), ids) == label:
                return ids
        msg = f"The account ids of job filter {label} are no longer in buying_group_account_ids."
        raise ConfigError(msg)

    # Jobs --------------------------------------------------------------------------------------

    def create_job(self, spec: JobSpec, rule: ReuseRule | None = None) -> JobStatus:
        """POST a new export job; before sending it again after a lost answer, use the job that
        POST may have created, if the job list shows it (same jobName).
        """
        body = self.job_request(spec)
        what = f"creating the {spec.entity} export job {body['jobName']}"
        return create_job_once(
            self.transport,
            JOB_PATH,
            body,
            spec=spec,
            rule=rule,
            what=what,
            parse=job_status_from_json,
            find=self.find_equivalent_job,
        )

    def get_job(self, job_id: str) -> JobStatus:
        """GET one job's status."""
        what = f"reading export job {job_id}"
        _, body = self.transport.request_json("GET", f"{JOB_PATH}/{job_id}", what=what)
        return job_status_from_json(body, what)

    def cancel_job(self, job_id: str) -> JobStatus | None:
        """Refuse: the API has no cancel endpoint (``capabilities.can_cancel`` is False)."""
        msg = f"Export job {job_id} cannot be cancelled: the API has no cancel endpoint."
        raise ApiRequestError(msg)

    def find_equivalent_job(self, spec: JobSpec, rule: ReuseRule | None = None) -> JobStatus | None:
        """Return a listed job of this spec's jobName that ``rule`` admits and that can still
        deliver (accepted, processing, or finished), newest pages first; paging stops at jobs
        created before the rule's limit (at most REUSE_LOOKBACK ago).
        """
        rule = rule or ReuseRule()
        stream = _stream(spec.entity)
        name = self.job_request(spec)["jobName"]
        now = datetime.datetime.now(datetime.timezone.utc)
        oldest = max(now - REUSE_LOOKBACK, rule.created_after or now - REUSE_LOOKBACK)

        def candidates() -> t.Iterator[JobStatus]:
            for entry, job in self._listed_jobs(stream):
                if job.created_at is not None and job.created_at <= oldest:
                    return
                if entry.get("jobName") == name and usable_result(job, now) and rule.admits(job):
                    yield job

        return self._listing.preferred(candidates)

    def _listed_jobs(self, stream: UapiStream) -> t.Iterator[tuple[dict[str, t.Any], JobStatus]]:
        """Yield the stream's jobs newest first, page by page (unreadable entries skipped)."""
        page = 1
        while True:
            params = {
                "entityType": stream.entity_type,
                "jobStatus": "All",
                "sort": "descending",
                "page": page,
                "perPage": LIST_PAGE_SIZE,
            }
            what = "listing export jobs"
            _, body = self.transport.request_json("GET", JOBS_PATH, params=params, what=what)
            entries = array_in(
                body,
                "data",
                what=what,
                endpoint=f"GET {JOBS_PATH}",
                expected="an object with a 'data' array",
            )
            for entry in entries:
                try:
                    yield entry, job_status_from_json(entry, what)
                except InvalidJobJson as exc:
                    logger.debug("Skipped an entry of the job list: %s", exc)
            total = body.get("totalCount")
            size = body.get("pageSize")
            size = size if isinstance(size, int) and size > 0 else LIST_PAGE_SIZE
            if len(entries) < size or not isinstance(total, int) or page * size >= total:
                return
            page += 1

    # Results -----------------------------------------------------------------------------------

    def part_locations(self, job: JobStatus, *, fresh: bool = False) -> list[PartLocation]:
        """Return the job's result files: ``resultsUrls`` in order, else ``resultsUrl``; each a
        pre-signed URL, fetched without credentials. ``fresh`` (or a job known only from the
        job list, which carries no URL): one status call for newly signed ones.
        """
        if fresh or (job.state is JobState.COMPLETED and not _result_urls(job.raw)):
            job = self.get_job(job.id)
        locations = []
        for number, url in enumerate(_result_urls(job.raw), start=1):
            if urlsplit(url).scheme not in {"http", "https"}:
                msg = (
                    f"Export job {job.id} gives a result URL that is not http(s) "
                    f"({urlsplit(url).scheme}:); the tap does not fetch it. Report this."
                )
                raise ApiRequestError(msg)
            locations.append(PartLocation(number=number, url=url, with_credentials=False))
        return locations

    def unlisted_part(self, job: JobStatus, number: int) -> PartLocation | None:
        """None: a finished job lists every result file it has."""
        return None

    def calls_by_stream(self) -> Mapping[str | None, Mapping[str, int]]:
        """Return this run's calls per stream and endpoint."""
        return self.usage.by_stream()

    def usage_summary(self) -> str | None:
        """Return the calls this run made against the tenant's daily limits."""
        return self.usage.summary()


def fields_from_json(body: t.Any, what: str) -> list[tuple[str, str, str]]:
    """Read a /fields answer as (API name, dataType, description): a non-empty array of
    objects with a ``name``; anything else is one line saying what came back (an empty
    array would make a stream without fields, and the tap would blame the wrong setting).
    """
    expected = "a non-empty array of fields with a 'name'"
    if not isinstance(body, list) or not body:
        raise unexpected_answer(what, f"GET {FIELDS_PATH}", json_shape(body), expected)
    fields = []
    for number, entry in enumerate(body, start=1):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            got = f"entry {number} as {json_shape(entry)} without a 'name'"
            raise unexpected_answer(what, f"GET {FIELDS_PATH}", got, expected)
        fields.append((name, str(entry.get("dataType") or ""), str(entry.get("description") or "")))
    return fields


def _stream(entity: str) -> UapiStream:
    stream = STREAMS.get(entity)
    if stream is None:
        msg = f"Stream '{entity}' is not a stream of api_dialect=uapi; rediscover the catalog."
        raise ConfigError(msg)
    return stream


def _filter(field: str, operator: str, day: datetime.date) -> dict[str, t.Any]:
    return {"field": field, "operator": operator, "values": [day.isoformat()]}


def _day(day: datetime.date | None) -> str:
    if day is None:
        msg = "The campaign or creative report type needs start_date (its reporting period)."
        raise ConfigError(msg)
    return day.isoformat()


def _account_id(value: str) -> int | str:
    """Return an account id as the API takes it: a number when it is one."""
    return int(value) if value.isdigit() else value


def _result_urls(body: Mapping[str, t.Any]) -> list[str]:
    """Return a status answer's result URLs: ``resultsUrls`` in order, else ``resultsUrl``
    (an absent key and an explicit null are the same).
    """
    urls = body.get("resultsUrls")
    if isinstance(urls, list) and urls:
        return [u for u in urls if isinstance(u, str) and u]
    url = body.get("resultsUrl")
    return [url] if isinstance(url, str) and url else []


def _check_result_urls(body: Mapping[str, t.Any], what: str) -> None:
    """Refuse result URLs of another shape (InvalidJobJson): read as "no URL", they would
    make a finished job's rows an empty result.
    """
    urls = body.get("resultsUrls")
    if urls is not None and not (isinstance(urls, list) and all(isinstance(u, str) for u in urls)):
        raise InvalidJobJson(f"{what}: resultsUrls is {json_shape(urls)}, not an array of URLs")
    url = body.get("resultsUrl")
    if url is not None and not isinstance(url, str):
        raise InvalidJobJson(f"{what}: resultsUrl is {json_shape(url)}, not a URL")


def job_name(spec: JobSpec, body: Mapping[str, t.Any]) -> str:
    """Return a job's name (at most 50 characters): stream, window and a short hash of what
    it exports (fields, filters, dates, sources...), so that the same export always has the
    same name and a crashed run's job can be found in the job list.
    """
    identity = {k: v for k, v in body.items() if k != "jobName"}
    identity["fields"] = sorted(identity.get("fields") or [])
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    if spec.date_field and spec.start and spec.end:
        window = f"{spec.start:%Y%m%d}-{spec.end:%Y%m%d}"
    elif spec.end:
        window = f"all-{spec.end:%Y%m%d}"
    else:
        window = "all"
    tail = f"_{window}_{digest}"
    return spec.entity[: MAX_JOB_NAME - len(tail)] + tail


def _timestamp(body: Mapping[str, t.Any], key: str) -> datetime.datetime | None:
    """Read an RFC 3339 timestamp of a job answer; None when absent, null or unreadable."""
    value = body.get(key)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = pendulum.parse(value, tz="UTC")
    except (ValueError, TypeError, pendulum.parsing.exceptions.ParserError):
        logger.debug("Job answer: %s %r is not a timestamp", key, value)
        return None
    return parsed if isinstance(parsed, datetime.datetime) else None


def job_status_from_json(body: t.Any, what: str) -> JobStatus:
    """Turn a job answer (create, status, list entry) into a JobStatus; InvalidJobJson if it
    has no job id or status. Absent keys and explicit nulls are the same.
    """
    if not isinstance(body, dict):
        raise InvalidJobJson(f"{what}: the answer is {json_shape(body)}, not a JSON object")
    job_id = body.get("jobId")
    status = body.get("jobStatus")
    if not isinstance(job_id, (str, int)) or isinstance(job_id, bool) or job_id == "":
        raise InvalidJobJson(f"{what}: the answer has no jobId")
    if not isinstance(status, str) or not status:
        raise InvalidJobJson(f"{what}: the answer has no jobStatus")
    _check_result_urls(body, what)
    entity = str(body.get("entityType") or "")
    state = STATUSES.get(status.strip().lower(), JobState.UNKNOWN)
    message = body.get("message")
    urls = _result_urls(body)
    return JobStatus(
        id=str(job_id),
        entity=STREAM_OF_ENTITY.get(entity.lower(), entity),
        state=state,
        file_parts=len(urls) if state is JobState.COMPLETED and urls else None,
        created_at=_timestamp(body, "createdAt"),
        completed_at=_timestamp(body, "updatedAt") if state is JobState.COMPLETED else None,
        error_message=None if message is None else str(message),
        raw=body,
        reported_status=status,
    )


# Errors --------------------------------------------------------------------------------------


def _error_body(response: requests.Response) -> tuple[str, str, str]:
    """Return (errorCode, errorMessage, diagnosticCode) of an error answer ('' when absent);
    the gateway's ``{"status": ...}`` and non-JSON bodies give their text as the message.
    """
    try:
        body = response.json()
    except ValueError:
        return "", redact((response.text or response.reason or "").strip()[:300]), ""
    if not isinstance(body, dict):
        return "", redact(str(body)[:300]), ""
    code = str(body.get("errorCode") or "")
    message = body.get("errorMessage") or body.get("status") or body.get("message") or ""
    return code, redact(str(message)[:500]), str(body.get("diagnosticCode") or "")


#: The start of a 400-115 errorMessage, before the names of the invalid fields.
_INVALID_FIELDS = "invalid field names:"


def invalid_field_names(response: requests.Response) -> tuple[str, ...]:
    """Return the fields a 400-115 names (``Invalid field names: {Account}.a, {Account}.b``),
    read from the whole errorMessage (the one shown in lines is cut); none if it names none.
    """
    try:
        body = response.json()
    except ValueError:
        return ()
    message = body.get("errorMessage") if isinstance(body, dict) else None
    if not isinstance(message, str):
        return ()
    start = message.lower().find(_INVALID_FIELDS)
    if start < 0:
        return ()
    names = message[start + len(_INVALID_FIELDS) :]
    return tuple(name.strip() for name in names.split(",") if name.strip())


#: What a 403 errorCode says the tenant's Export Collection lacks (any other 403: a permission
#: of the API key set).
_NOT_IN_COLLECTION = {
    "403-101": "this entity type",
    "403-103": "anything (no Export Collection is enabled)",
    "403-104": "these fields",
}


def _denial(code: str) -> str:
    """Say what a 403 lacks, by Demandbase's errorCode, and what to do."""
    missing = _NOT_IN_COLLECTION.get(code)
    if missing is None:
        return (
            "the API key set lacks the Data Export permission. Ask your Demandbase admin to "
            "grant it to the key set of client_id (or of the access token)."
        )
    return (
        f"the tenant's Export Collection does not include {missing}. Deselect what it does "
        "not include (run --discover again), or ask your Demandbase admin."
    )


def classify_error(
    response: requests.Response, what: str, *, renewable: bool, usage: CallUsage | None = None
) -> DemandbaseError:
    """Return the error a pipeline operator can act on, for an answer of 400 or more; every
    line shows the API's errorCode, errorMessage and diagnosticCode. ``usage``: this run's
    calls, which can tell that a 429-100 is an endpoint's spent daily limit.
    """
    status = response.status_code
    code, message, diagnostic = _error_body(response)
    shown = ", ".join(
        part
        for part in (
            f"{status} {code}".strip() if code else str(status),
            message,
            f"diagnosticCode {diagnostic}" if diagnostic else "",
        )
        if part
    )
    if status == 401:
        credentials = (
            "after renewing the access token once. Check the client_id and client_secret settings"
            if renewable
            else "Check the access_token setting (or use client_id and client_secret)"
        )
        return AuthError(
            f"The Demandbase API refused the credentials on {what} ({shown}), {credentials}.",
            status=401,
        )
    if status == 403:
        return AuthError(f"The Demandbase API denied {what} ({shown}): {_denial(code)}", status=403)
    if status == 429 and code == "429-101":
        msg = (
            f"The Demandbase export quota is spent ({shown}). No further job is created in "
            "this run; everything extracted so far is kept in the emitted state: run the tap "
            "again once the quota has reset (a rolling 24 hours)."
        )
        return QuotaExceededError(msg)
    if status == 429 and code == "429-102":
        return JobSlotBusyError(f"another export job runs in the tenant ({shown})")
    if status == 429 and code == "429-100":
        return _rate_limited(response, what, shown, usage)
    if status == 429 or status >= 500:
        return TransientApiError(f"{what} answered {shown}")
    if code == "400-115":
        msg = (
            f"The Demandbase API rejected {what}: invalid field names ({shown}). The catalog is "
            "likely stale (fields were removed or renamed): run --discover again."
        )
        return UnknownFieldsError(msg, invalid_field_names(response), status=status)
    if code == "400-147" and "accountIds" in message:
        msg = (
            f"The Demandbase API rejected {what} ({shown}): this tenant does not accept "
            "accountIds, which the published request schema does not list either, so the "
            "buying-group streams cannot be exported by account. Deselect buying_groups and "
            "buying_group_members, or remove buying_group_account_ids."
        )
        return ApiRequestError(msg, status=status)
    return ApiRequestError(f"The Demandbase API rejected {what} ({shown})", status=status)


def _rate_limited(
    response: requests.Response, what: str, shown: str, usage: CallUsage | None
) -> DemandbaseError:
    """Return the error of a 429-100: worth one more try (RATE_LIMIT_RETRY), unless this run's
    own calls have spent the endpoint's daily limit; the run stops when that try fails too.
    """
    request = response.request
    endpoint = (
        budgeted_endpoint(request.method or "", urlsplit(request.url or "").path.rstrip("/"))
        if request
        else None
    )
    spent = QuotaExceededError(_daily_limit_message(response, endpoint, what, shown))
    if endpoint is not None and usage is not None and usage.spent(endpoint):
        return spent
    return TransientApiError(
        f"{what} answered {shown}",
        retry_after=retry_after_seconds(response),
        retry=RATE_LIMIT_RETRY,
        exhausted=spent,
    )


def _daily_limit_message(
    response: requests.Response, endpoint: str | None, what: str, shown: str
) -> str:
    """Say which endpoint's daily limit is spent, and when it resets: when the answer says
    (Retry-After), else at the next midnight UTC, when Demandbase's daily limits reset.
    """
    wait = retry_after_seconds(response)
    now = pendulum.now("UTC")
    resets = now.add(seconds=wait) if wait is not None else now.start_of("day").add(days=1)
    limit = (
        f"The Demandbase API's daily limit of {DAILY_LIMITS[endpoint]:,} {CALLS[endpoint]}"
        if endpoint is not None
        else "A daily call limit of the Demandbase API"
    )
    return (
        f"{limit} is spent ({what} answered {shown}); it resets at "
        f"{resets.format('YYYY-MM-DDTHH:mm:ss')}Z. No further call is made in this run; "
        "everything extracted so far is kept in the emitted state: run the tap again after "
        "the reset."
    )


# The dialect ---------------------------------------------------------------------------------

SETTINGS: tuple[th.Property[t.Any], ...] = (
    th.Property(
        "client_id",
        th.StringType,
        title="Client ID",
        description=(
            "uapi: client id of a Demandbase API client (OAuth client credentials) with the Data "
            "Export API; with client_secret, instead of access_token."
        ),
    ),
    th.Property(
        "client_secret",
        th.StringType,
        secret=True,
        title="Client secret",
        description="uapi: the API client's secret (never logged; sent to api_url only).",
    ),
    th.Property(
        "access_token",
        th.StringType,
        secret=True,
        title="Access token",
        description="A bearer token, instead of client_id and client_secret.",
    ),
    th.Property(
        "campaign_sources",
        th.ArrayType(th.StringType(allowed_values=list(SOURCES))),
        title="Campaign sources",
        description=(
            "uapi: ad platforms of the campaigns and creatives streams (demandbase, linkedin, "
            "google, all); with campaign_report_type and/or creative_report_type."
        ),
    ),
    th.Property(
        "campaign_report_type",
        th.StringType(allowed_values=list(CAMPAIGN_REPORT_TYPES)),
        title="Campaign report type",
        description="uapi: the campaigns stream's adReportType (with campaign_sources).",
    ),
    th.Property(
        "creative_report_type",
        th.StringType(allowed_values=list(CREATIVE_REPORT_TYPES)),
        title="Creative report type",
        description="uapi: the creatives stream's adReportType (with campaign_sources).",
    ),
    th.Property(
        "buying_group_account_ids",
        th.ArrayType(th.StringType),
        title="Buying group account IDs",
        description=(
            "uapi: the accounts whose buying groups and buying group members to export "
            "(buying_groups, buying_group_members streams); one job per 10,000 ids."
        ),
    ),
)


def stream_rules(stream: str) -> StreamRules:
    """Return what the API imposes on a stream: activities filter activity_date by fromDate
    and toDate, at most 90 days per job; campaigns and creatives are keyed by their own id.
    """
    spec = STREAMS.get(stream)
    if spec is None:
        return StreamRules()
    return StreamRules(
        required_replication_key=spec.date_range_key,
        max_window_days=spec.max_window_days,
        primary_key=spec.primary_key,
    )


def _options(config: Mapping[str, t.Any]) -> UapiOptions:
    start = config.get("start_date")
    try:
        start_day = pendulum.parse(start, tz="UTC").date() if start else None  # type: ignore[union-attr]
    except (ValueError, TypeError, pendulum.parsing.exceptions.ParserError):
        start_day = None  # the tap reports a bad start_date itself
    return UapiOptions(
        campaign_sources=tuple(config.get("campaign_sources") or ()),
        report_types={
            "campaign_report_type": config.get("campaign_report_type"),
            "creative_report_type": config.get("creative_report_type"),
        },
        account_ids=tuple(str(i).strip() for i in config.get("buying_group_account_ids") or ()),
        start_day=start_day,
    )


def connect(config: Mapping[str, t.Any], api_url: str, options: ConnectOptions) -> Connection:
    """Return a client authenticated by client credentials (or a given access_token)."""
    client_id, secret = config.get("client_id"), config.get("client_secret")
    token = config.get("access_token")
    usage = CallUsage()
    auth: requests.auth.AuthBase
    if client_id and secret:
        auth = ClientCredentials(
            api_url,
            str(client_id),
            str(secret),
            user_agent=options.user_agent,
            on_token_request=lambda: usage.count("token"),
        )
    elif token:
        add_secrets(str(token))
        auth = t.cast("requests.auth.AuthBase", BearerTokenAuthenticator(token=str(token)))
    else:
        missing = "client_secret" if client_id else "client_id"
        msg = (
            f"Setting {missing} is required with api_dialect=uapi: set client_id and "
            "client_secret (TAP_DEMANDBASE_CLIENT_ID, TAP_DEMANDBASE_CLIENT_SECRET) to a "
            "Demandbase API client with the Data Export API, or give an access_token."
        )
        raise ConfigError(msg)
    transport = Transport(
        api_url,
        auth,
        classify=functools.partial(
            classify_error, renewable=isinstance(auth, ClientCredentials), usage=usage
        ),
        user_agent=options.user_agent,
        download_read_timeout=options.download_stall_seconds,
        on_send=usage.count_request,
    )
    credentials = auth if isinstance(auth, ClientCredentials) else None
    client = UapiClient(transport, _options(config), usage, credentials)
    return Connection(api=client, opener=transport)


DIALECT = Dialect(
    name="uapi",
    default_api_url=DEFAULT_API_URL,
    statuses=STATUSES,
    field_types=FIELD_TYPES,
    settings=SETTINGS,
    poll_policy=PollPolicy(first_interval=30.0, max_interval=600.0, timeout=6 * 3600.0),
    max_concurrent_jobs=1,
    default_replication_key=default_replication_key,
    connect=connect,
    stream_rules=stream_rules,
    column_names=column_names,
    stream_names=frozenset(STREAMS),
    daily_limits=DAILY_LIMITS,
    call_words=CALLS,
)
