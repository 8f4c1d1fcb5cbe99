"""The uapi client: Demandbase's production Data Export API's verbs over a Transport."""

from __future__ import annotations

import datetime
import logging
import threading
import typing as t
from urllib.parse import urlsplit

from tap_demandbase.dialects.common import JobEndpoint, JobListing, array_in
from tap_demandbase.dialects.uapi.auth import ClientCredentials
from tap_demandbase.dialects.uapi.fields import STREAMS, UapiStream, property_fields, stream_named
from tap_demandbase.dialects.uapi.settings import UapiOptions, chunk_label
from tap_demandbase.dialects.uapi.usage import CallUsage
from tap_demandbase.dialects.uapi.wire import (
    DATED_REPORT_TYPES,
    FIELDS_PATH,
    JOB_PATH,
    JOBS_PATH,
    LIST_PAGE_SIZE,
    api_account_id,
    date_filter,
    fields_from_json,
    job_name,
    job_status_from_json,
    report_day,
    result_urls,
)
from tap_demandbase.errors import ApiRequestError, ConfigError
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
    ReuseRule,
    usable_result,
)
from tap_demandbase.transport import Transport

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from tap_demandbase.engine.clock import Clock


logger = logging.getLogger("tap-demandbase.api")

#: A job created this long ago or earlier is not looked for (the job list is paged newest
#: first, and paging stops there): re-use rescues a job of a run that died today.
REUSE_LOOKBACK = datetime.timedelta(hours=24)


class UapiClient:
    """Speaks Demandbase's production Data Export API over a Transport."""

    capabilities = Capabilities(can_cancel=False, can_list_jobs=True, reuse_max_age=REUSE_LOOKBACK)

    def __init__(
        self,
        transport: Transport,
        options: UapiOptions,
        usage: CallUsage,
        credentials: ClientCredentials | None = None,
        *,
        clock: Clock,
    ) -> None:
        self.transport = transport
        #: The engine's clock: what "now" is for a report's period, re-use and expiry.
        self.clock = clock
        self.options = options
        self.jobs = JobEndpoint(transport, JOB_PATH, job_status_from_json, clock)
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
        return self._listed.get(stream_named(entity).name)

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
            stream = stream_named(name)
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
        return dict(self._names(stream_named(entity)))

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
        stream = stream_named(entity)
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
                (("account_ids", chunk_label(n, len(chunks), ids)),)
                for n, ids in enumerate(chunks, start=1)
            ]
        return [()]

    # Requests ----------------------------------------------------------------------------------

    def job_request(self, spec: JobSpec) -> dict[str, t.Any]:
        """Return the POST /job body of a spec, with its jobName (derived from the rest)."""
        stream = stream_named(spec.entity)
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
                body["fromDate"] = report_day(spec.start or self.options.start_day)
                body["toDate"] = report_day(spec.end or self._today())
        if "account_ids" in filters:
            body["accountIds"] = [api_account_id(i) for i in self._chunk(filters["account_ids"])]
        body["format"] = "csv"
        body["jobName"] = job_name(spec, body)
        return body

    def _today(self) -> datetime.date:
        """Return the clock's UTC day (a report's period ends there when the job's does not)."""
        return self.clock.now().astimezone(datetime.timezone.utc).date()

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
            filters.append(date_filter(field, "Greater Than or Equal To", spec.start))
        if spec.end is not None:
            filters.append(date_filter(field, "Less Than or Equal To", spec.end))
        return {"filters": filters} if filters else {}

    def _chunk(self, label: str) -> tuple[str, ...]:
        """Return the account ids a chunk label of this run's settings names."""
        chunks = self.options.account_id_chunks()
        for n, ids in enumerate(chunks, start=1):
            if chunk_label(n, len(chunks), ids) == label:
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
        return self.jobs.create(
            body, spec=spec, rule=rule, what=what, find=self.find_equivalent_job
        )

    def get_job(self, job_id: str) -> JobStatus:
        """GET one job's status."""
        return self.jobs.status(job_id)

    def find_equivalent_job(self, spec: JobSpec, rule: ReuseRule | None = None) -> JobStatus | None:
        """Return a listed job of this spec's jobName that ``rule`` admits and that can still
        deliver (accepted, processing, or finished), newest pages first; paging stops at jobs
        created before the rule's limit (at most REUSE_LOOKBACK ago).
        """
        rule = rule or ReuseRule()
        stream = stream_named(spec.entity)
        name = self.job_request(spec)["jobName"]
        now = self.clock.now()
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
            yield from self.jobs.readable(entries, what)
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
        if fresh or (job.state is JobState.COMPLETED and not result_urls(job.raw)):
            job = self.get_job(job.id)
        locations = []
        for number, url in enumerate(result_urls(job.raw), start=1):
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
