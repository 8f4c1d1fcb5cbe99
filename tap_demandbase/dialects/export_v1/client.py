"""The export_v1 client: the Data Export API's verbs over a Transport."""

from __future__ import annotations

import typing as t

from tap_demandbase.dialects.common import CallCounter, JobEndpoint, JobListing, array_in
from tap_demandbase.dialects.export_v1.usage import endpoint_of, usage_line
from tap_demandbase.dialects.export_v1.wire import (
    DEFAULT_API_URL,
    ENTITIES_PATH,
    JOBS_PATH,
    JobPage,
    entities_from_json,
    job_request_body,
    job_status_from_json,
    same_export,
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

    from tap_demandbase.dialects.export_v1.settings import ExportV1Options
    from tap_demandbase.engine.clock import Clock


class DataExportClient:
    """Speaks the Data Export API contract over a Transport."""

    capabilities = Capabilities(can_cancel=True, can_list_jobs=True)

    def __init__(
        self,
        transport: Transport,
        options: ExportV1Options,
        calls: CallCounter | None = None,
        *,
        clock: Clock,
    ) -> None:
        self.transport = transport
        #: The engine's clock: what "now" is for a lost create and for a job's expiry.
        self.clock = clock
        self.options = options
        self.jobs = JobEndpoint(transport, JOBS_PATH, job_status_from_json, clock)
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
        return usage_line(self.calls)

    def job_filters(self, entity: str) -> list[Filters]:
        """Return the one filter set of every job: the account list, if the settings name one."""
        account_list = self.options.account_list_id
        return [(("account_list_id", account_list),) if account_list else ()]

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
            return self.jobs.create(
                request, spec=spec, rule=rule, what=what, find=self.find_equivalent_job
            )
        except ApiRequestError as exc:
            if exc.status != 404:
                raise
            raise ApiRequestError(f"{exc} {self._not_this_api()}", status=404) from None

    def get_job(self, job_id: str) -> JobStatus:
        """GET one job's status."""
        return self.jobs.status(job_id)

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
        jobs = [job for _, job in self.jobs.readable(entries, what)]
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
        now = self.clock.now()

        def candidates() -> t.Iterator[JobStatus]:
            # In the order jobs move through: one that moves on between two listings is
            # still seen in the next.
            for state in (JobState.PENDING, JobState.PROCESSING, JobState.COMPLETED):
                offset = 0
                while True:
                    page = self.list_jobs(state, limit=page_size, offset=offset)
                    for job in page.jobs:
                        if (
                            same_export(job.raw, wanted)
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
