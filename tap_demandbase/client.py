"""The Data Export API dialect of ``demandbase-data-export-openapi.yml``.

The only module that knows this API's paths, payload shapes and status names. Another dialect
(Demandbase's production ``uapi``) is a sibling module exposing the same ``ExportApi`` methods.
"""

from __future__ import annotations

import datetime
import typing as t

from tap_demandbase.api import EntityInfo, FieldInfo, JobSpec, JobState, JobStatus
from tap_demandbase.errors import ApiRequestError
from tap_demandbase.jobs import usable_result

if t.TYPE_CHECKING:
    import requests

    from tap_demandbase.transport import Transport

JOBS_PATH = "/export/v1/jobs"
ENTITIES_PATH = "/export/v1/entities"

_STATES = {state.value: state for state in JobState}


def _timestamp(value: t.Any) -> datetime.datetime | None:
    """Parse an RFC 3339 timestamp of the API, tolerating absence."""
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def _optional_int(value: t.Any) -> int | None:
    return int(value) if value is not None else None


def job_status_from_json(body: dict[str, t.Any]) -> JobStatus:
    """Turn an ExportJob JSON object into a JobStatus."""
    status = str(body.get("status", ""))
    if status not in _STATES:
        msg = f"The API reported job {body.get('id')} in an unknown status '{status}'"
        raise ApiRequestError(msg)
    return JobStatus(
        id=str(body["id"]),
        entity=str(body.get("entity_type", "")),
        state=_STATES[status],
        record_count=_optional_int(body.get("record_count")),
        file_parts=_optional_int(body.get("file_parts")),
        file_size_bytes=_optional_int(body.get("file_size_bytes")),
        created_at=_timestamp(body.get("created_at")),
        completed_at=_timestamp(body.get("completed_at")),
        expires_at=_timestamp(body.get("expires_at")),
        error_message=body.get("error_message"),
        raw=body,
    )


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
    if spec.account_list_id:
        filters["account_list_id"] = spec.account_list_id
    body: dict[str, t.Any] = {"entity_type": spec.entity, "fields": list(spec.fields)}
    if filters:
        body["filters"] = filters
    body["format"] = "csv"
    return body


class DataExportClient:
    """Speaks the Data Export API contract over a Transport."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def list_entities(self) -> list[EntityInfo]:
        """Return every exportable entity with its fields (tenant custom fields included)."""
        _, body = self.transport.request_json("GET", ENTITIES_PATH, what="listing entities")
        return [
            EntityInfo(
                name=str(entity["name"]),
                description=str(entity.get("description") or ""),
                fields=tuple(
                    FieldInfo(
                        name=str(f["name"]),
                        type=str(f.get("type") or ""),
                        description=str(f.get("description") or ""),
                    )
                    for f in entity.get("fields") or []
                ),
            )
            for entity in (body or {}).get("entities") or []
        ]

    def create_job(self, spec: JobSpec) -> JobStatus:
        """POST a new export job."""
        _, body = self.transport.request_json(
            "POST",
            JOBS_PATH,
            json=job_request_body(spec),
            what=f"creating the {spec.entity} export job",
        )
        return job_status_from_json(body)

    def get_job(self, job_id: str) -> JobStatus:
        """GET one job's status."""
        _, body = self.transport.request_json(
            "GET", f"{JOBS_PATH}/{job_id}", what=f"reading export job {job_id}"
        )
        return job_status_from_json(body)

    def cancel_job(self, job_id: str) -> JobStatus | None:
        """DELETE a job; a 409 means it already finished and there is nothing to cancel."""
        status, body = self.transport.request_json(
            "DELETE", f"{JOBS_PATH}/{job_id}", what=f"cancelling export job {job_id}", allow=(409,)
        )
        return None if status == 409 else job_status_from_json(body)

    def list_jobs(
        self, status: JobState | None = None, *, limit: int = 25, offset: int = 0
    ) -> tuple[list[JobStatus], int]:
        """Return one page of jobs and the total count."""
        params: dict[str, t.Any] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = status.value
        _, body = self.transport.request_json(
            "GET", JOBS_PATH, params=params, what="listing export jobs"
        )
        jobs = [job_status_from_json(job) for job in (body or {}).get("jobs") or []]
        return jobs, int((body or {}).get("total") or len(jobs))

    def find_equivalent_job(self, spec: JobSpec, page_size: int = 100) -> JobStatus | None:
        """Return an unexpired job exporting exactly this spec (same entity, fields, filters).

        Looked for before creating a job, so that a job created by a run that died before it
        could record it is re-used instead of spending quota on a duplicate.
        """
        wanted = job_request_body(spec)
        for state in (JobState.COMPLETED, JobState.PROCESSING, JobState.PENDING):
            offset = 0
            while True:
                jobs, total = self.list_jobs(state, limit=page_size, offset=offset)
                for job in jobs:
                    if _same_export(job.raw, wanted) and usable_result(job):
                        return job
                offset += len(jobs)
                if not jobs or offset >= total:
                    break
        return None

    def open_part(
        self, job: JobStatus, part: int, headers: dict[str, str] | None = None
    ) -> requests.Response:
        """Open a streaming download of one result part, following the 302 without the token."""
        return self.transport.open_download(
            f"{JOBS_PATH}/{job.id}/download",
            params={"part": part},
            headers=headers,
            what=f"downloading part {part} of export job {job.id}",
        )
