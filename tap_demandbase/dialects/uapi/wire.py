"""The uapi wire: its paths and status words, the JSON of jobs and fields, and the
request values (job names, date filters, report days, account ids).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import typing as t

from tap_demandbase.dialects.common import InvalidJobJson, json_shape, unexpected_answer
from tap_demandbase.dialects.uapi.fields import STREAM_OF_ENTITY
from tap_demandbase.errors import ConfigError
from tap_demandbase.model import JobSpec, JobState, JobStatus
from tap_demandbase.timestamps import api_timestamp

if t.TYPE_CHECKING:
    from collections.abc import Mapping


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
LIST_PAGE_SIZE = 100
MAX_JOB_NAME = 50
#: Report types whose jobs need ``fromDate``/``toDate`` (the reporting period).
DATED_REPORT_TYPES = frozenset(
    {"campaign_performance_rollup", "campaign_account_rollup", "creative_rollup"}
)


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


def date_filter(field: str, operator: str, day: datetime.date) -> dict[str, t.Any]:
    """Return one condition of a job's ``filters`` on a date field."""
    return {"field": field, "operator": operator, "values": [day.isoformat()]}


def report_day(day: datetime.date | None) -> str:
    """Return a day of a report's period, or fail saying that start_date is needed."""
    if day is None:
        msg = "The campaign or creative report type needs start_date (its reporting period)."
        raise ConfigError(msg)
    return day.isoformat()


def api_account_id(value: str) -> int | str:
    """Return an account id as the API takes it: a number when it is one."""
    return int(value) if value.isdigit() else value


def result_urls(body: Mapping[str, t.Any]) -> list[str]:
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


def _timestamp(body: Mapping[str, t.Any], key: str, what: str) -> datetime.datetime | None:
    """Read an RFC 3339 timestamp of a job answer (None: absent or null); InvalidJobJson if
    it is not one.
    """
    try:
        return api_timestamp(body.get(key), key)
    except ValueError as exc:
        raise InvalidJobJson(f"{what}: {exc}") from None


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
    urls = result_urls(body)
    return JobStatus(
        id=str(job_id),
        entity=STREAM_OF_ENTITY.get(entity.lower(), entity),
        state=state,
        file_parts=len(urls) if state is JobState.COMPLETED and urls else None,
        created_at=_timestamp(body, "createdAt", what),
        completed_at=_timestamp(body, "updatedAt", what) if state is JobState.COMPLETED else None,
        error_message=None if message is None else str(message),
        raw=body,
        reported_status=status,
    )
