"""The export_v1 wire: its paths, status words, and the JSON of jobs, entities and job
requests.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from tap_demandbase.dialects.common import InvalidJobJson, array_in, json_shape, unexpected_answer
from tap_demandbase.model import EntityInfo, FieldInfo, JobSpec, JobState, JobStatus
from tap_demandbase.timestamps import api_timestamp

DEFAULT_API_URL = "https://api.demandbase.com"
JOBS_PATH = "/export/v1/jobs"
ENTITIES_PATH = "/export/v1/entities"

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
            created_at=api_timestamp(body.get("created_at"), "created_at"),
            completed_at=api_timestamp(body.get("completed_at"), "completed_at"),
            expires_at=api_timestamp(body.get("expires_at"), "expires_at"),
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


def same_export(job: dict[str, t.Any], request: dict[str, t.Any]) -> bool:
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
