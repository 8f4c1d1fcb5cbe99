"""The nouns every API dialect speaks: entities, job specs, job statuses.

A dialect (``client.py`` for the published Data Export contract, a sibling module for another
API) turns HTTP into these values, so that jobs, results, records and streams never see a URL
or a JSON field name of the API.
"""

from __future__ import annotations

import datetime
import enum
import typing as t
from dataclasses import dataclass, field

if t.TYPE_CHECKING:
    import requests


@dataclass(frozen=True)
class FieldInfo:
    """One exportable field as the API declares it (``type`` is the API's free text)."""

    name: str
    type: str
    description: str = ""


@dataclass(frozen=True)
class EntityInfo:
    """One exportable entity type and its fields."""

    name: str
    fields: tuple[FieldInfo, ...]
    description: str = ""


@dataclass(frozen=True)
class JobSpec:
    """What to export: the request of one export job, dialect-neutral.

    ``start`` and ``end`` are inclusive UTC calendar dates of ``date_field``.
    """

    entity: str
    fields: tuple[str, ...]
    date_field: str | None = None
    start: datetime.date | None = None
    end: datetime.date | None = None
    account_list_id: str | None = None

    def describe_window(self) -> str:
        """Return the window as people read it in logs: ``field 2024-01-01..2024-01-31``."""
        if not self.date_field:
            return "all rows"
        return f"{self.date_field} {self.start or '…'}..{self.end or '…'}"


class JobState(enum.Enum):
    """Job states, normalised across dialects."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether polling can stop."""
        return self in {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED}


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of one export job as the API reported it."""

    id: str
    entity: str
    state: JobState
    record_count: int | None = None
    file_parts: int | None = None
    file_size_bytes: int | None = None
    created_at: datetime.datetime | None = None
    completed_at: datetime.datetime | None = None
    expires_at: datetime.datetime | None = None
    error_message: str | None = None
    raw: dict[str, t.Any] = field(default_factory=dict, compare=False, repr=False)


class ExportApi(t.Protocol):
    """What the rest of the tap needs from an API dialect."""

    def list_entities(self) -> list[EntityInfo]:
        """Return every exportable entity type with its fields."""
        ...

    def create_job(self, spec: JobSpec) -> JobStatus:
        """Create an export job and return its first status."""
        ...

    def get_job(self, job_id: str) -> JobStatus:
        """Return the current status of a job."""
        ...

    def cancel_job(self, job_id: str) -> JobStatus | None:
        """Cancel a job; ``None`` when it had already finished (nothing to cancel)."""
        ...

    def find_equivalent_job(self, spec: JobSpec) -> JobStatus | None:
        """Return an existing, unexpired job that exports exactly this spec, if any."""
        ...

    def open_part(
        self, job: JobStatus, part: int, headers: dict[str, str] | None = None
    ) -> requests.Response:
        """Open a streaming response with the bytes of one result part (1-based)."""
        ...
