"""The nouns every API dialect speaks: entities, job specs, job statuses, result locations.

A dialect (``dialects/export_v1/`` for the published Data Export contract, a sibling package
for another API) turns HTTP into these values, so that the engine, records and streams never see
a path, a JSON field name of the API or an HTTP library.
"""

from __future__ import annotations

import contextvars
import datetime
import enum
import typing as t
from dataclasses import dataclass, field, replace

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence


@dataclass(frozen=True)
class FieldInfo:
    """One exportable field as the API declares it (``type`` is the API's free text)."""

    name: str
    type: str
    description: str = ""
    #: The field's name in the API's requests and result headers, when it differs from
    #: ``name`` (the property name the tap emits); empty: the same.
    api_name: str = ""

    @property
    def name_in_api(self) -> str:
        """Return the name the API knows the field by."""
        return self.api_name or self.name


@dataclass(frozen=True)
class EntityInfo:
    """One exportable entity type and its fields."""

    name: str
    fields: tuple[FieldInfo, ...]
    description: str = ""


#: A dialect's filters of one job, as sorted (name, value) pairs.
Filters = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class JobSpec:
    """What to export: the request of one export job, dialect-neutral.

    ``start`` and ``end`` are inclusive UTC calendar dates of ``date_field``. ``filters`` are
    the dialect's own filters (an account list, a chunk of account ids) as name/value pairs: the
    engine never reads them, but they are part of the job's identity like everything else here.
    """

    entity: str
    fields: tuple[str, ...]
    date_field: str | None = None
    start: datetime.date | None = None
    end: datetime.date | None = None
    filters: Filters = ()

    def covers(self, other: JobSpec) -> bool:
        """Whether a job of this spec can deliver ``other``: the same rows, and every field of
        ``other`` among its own (extra columns are read past, never emitted).
        """
        return replace(self, fields=other.fields) == other and set(other.fields) <= set(self.fields)

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
    #: The result is gone (or the job is): only a new job can deliver its rows.
    EXPIRED = "expired"
    #: A status the dialect does not know: taken as still running, and waited on.
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        """Whether polling can stop."""
        return self in {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED}


#: States every dialect's status words must reach: without them the engine cannot tell a job
#: that runs from one that is done or one that failed. CANCELLED and EXPIRED are optional (an
#: API without cancel never reports the first); UNKNOWN is what any other word becomes.
REQUIRED_STATES = frozenset(
    {JobState.PENDING, JobState.PROCESSING, JobState.COMPLETED, JobState.FAILED}
)


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
    #: The status word as the API sent it (logs name it, e.g. an unknown ``queued``).
    reported_status: str = ""

    @property
    def status_name(self) -> str:
        """Return the status as people read it in logs: the API's own word."""
        return self.reported_status or self.state.value


def usable_result(
    status: JobStatus, now: datetime.datetime, margin: float = 300.0, *, unknown_ok: bool = False
) -> bool:
    """Whether a job's result can still be downloaded for a while (not near expires_at).

    A job in a status the API contract does not define is usable only with ``unknown_ok``:
    the job the ledger names is waited on, but a job merely listed is not re-used.
    """
    if status.state is not JobState.COMPLETED:
        running = {JobState.PENDING, JobState.PROCESSING}
        return status.state in (running | {JobState.UNKNOWN} if unknown_ok else running)
    if status.expires_at is None:
        return True
    remaining = status.expires_at - now
    return remaining.total_seconds() > margin


@dataclass(frozen=True)
class ReuseRule:
    """Which existing jobs may stand in for a new one (see ``jobs.reuse_rule``).

    Re-use only rescues a job whose creation a crashed run could not record: a job created at
    or before ``created_after`` (older than the re-use age, or than the last job the stream
    finished with) would deliver a stale snapshot, and jobs in ``exclude`` were found unusable.
    """

    created_after: datetime.datetime | None = None
    exclude: frozenset[str] = frozenset()

    def admits(self, status: JobStatus) -> bool:
        """Whether this job is recent enough and not excluded (its state is checked apart)."""
        if status.id in self.exclude:
            return False
        if self.created_after is None:
            return True
        return status.created_at is not None and status.created_at > self.created_after


@dataclass(frozen=True)
class PollPolicy:
    """How often to ask for a job's status, and for how long (each dialect has its defaults:
    status calls are budgeted differently by each API).
    """

    first_interval: float
    max_interval: float
    timeout: float

    def intervals(self) -> Iterator[float]:
        """Yield the waits between status calls: doubling from the first, capped."""
        wait = self.first_interval
        while True:
            yield min(wait, self.max_interval)
            wait *= 2


@dataclass(frozen=True)
class PartLocation:
    """Where one part of a job's result is: an absolute URL, fetched with the API's credentials
    (an endpoint that redirects to a pre-signed URL) or without any (a pre-signed URL itself).
    """

    number: int
    url: str
    with_credentials: bool


class BrokenTransferError(Exception):
    """A part's transfer broke off (the connection, a timeout, a chunk that did not arrive):
    what arrived is kept, and the engine resumes after it.
    """


@dataclass
class PartBody:
    """An opened result part as the engine sees it: no HTTP library, only the answer's status
    and headers and its body as the server sent it (not decoded), chunk by chunk.

    ``chunks`` raises BrokenTransferError when the transfer breaks off. Closed when the engine
    is done with it (``with``), whether it read it all or not.
    """

    #: The HTTP status: 200, or 206 for the rest of a part asked for with ``Range``.
    status: int
    #: The answer's headers (``Content-Length``, ``Content-Range``), looked up by name.
    headers: t.Mapping[str, str]
    #: The body's bytes as sent, in chunks small enough that little is lost when it breaks off.
    chunks: t.Iterator[bytes]
    #: Releases the connection.
    close: t.Callable[[], None] = lambda: None

    def __enter__(self) -> PartBody:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True)
class ConnectionCheck:
    """One finding of the connection test (``--test``): what was proved, in a sentence; a
    warning is something missing that a sync can do without.
    """

    line: str
    warning: bool = False


@dataclass(frozen=True)
class Capabilities:
    """What a dialect's API can do beyond create, status and results: each optional verb is
    there (``CancelsJobs``, ``ListsJobs``) exactly when its capability says so (the contract
    test checks it), and the engine asks for it through ``cancel_verb``/``listing_verb``.
    """

    #: Whether a running job can be cancelled (a timed-out job is cancelled, else left running).
    can_cancel: bool = True
    #: Whether jobs can be listed (to re-use a job a crashed run created but did not record).
    can_list_jobs: bool = True
    #: How old a listed job may be and still be re-used (None: the engine's default). An API
    #: whose jobs take hours, and whose creates are few a day, rescues older jobs.
    reuse_max_age: datetime.timedelta | None = None


#: The stream whose work the current thread does: the dialects count API calls against it.
CALLS_FOR: contextvars.ContextVar[str | None] = contextvars.ContextVar("calls_for", default=None)


class ExportApi(t.Protocol):
    """What the engine needs from an API dialect."""

    capabilities: Capabilities

    def calls_by_stream(self) -> Mapping[str | None, Mapping[str, int]]:
        """Return this run's calls per stream (``CALLS_FOR``) and endpoint."""
        ...

    def list_entities(self) -> list[EntityInfo]:
        """Return every exportable entity type with its fields."""
        ...

    def remember_entities(self, entities: list[EntityInfo]) -> None:
        """Take the entities a catalog describes (their fields' API names included) instead
        of listing them: a sync given a catalog spends no discovery call.
        """
        ...

    def field_api_names(self, entity: str) -> dict[str, str]:
        """Return property → the field's name in the API, where they differ (from discovery,
        the catalog, or, if neither said, the API).
        """
        ...

    def offered_fields(self, entity: str) -> tuple[FieldInfo, ...] | None:
        """Return the entity's fields as the API lists them now, if this run listed them
        (no call is made: None when it did not).
        """
        ...

    def check_connection(self, streams: Sequence[str] | None) -> list[ConnectionCheck]:
        """Prove, without creating a job, what a sync needs: the credentials, the Data Export
        permission, that each stream (None: every stream the settings enable) is offered, and
        the job list. Raise the dialect's one-line error (AuthError, ConfigError,
        ApiRequestError) at the first that fails.
        """
        ...

    def usage_summary(self) -> str | None:
        """Return one line on the calls this run made against the API's daily limits, if the
        API has such limits (logged at the end of a run).
        """
        ...

    def job_filters(self, entity: str) -> list[Filters]:
        """Return the filter sets the settings ask for on this entity: one job per window and
        filter set (``[()]``: no filter).
        """
        ...

    def create_job(self, spec: JobSpec, rule: ReuseRule | None = None) -> JobStatus:
        """Create an export job and return its first status.

        A create whose answer is lost (5xx, a body that is not a job) may still have created
        the job: before sending it again, the dialect looks for an equivalent job created since
        just before it (and admitted by ``rule``) and returns that one.
        """
        ...

    def get_job(self, job_id: str) -> JobStatus:
        """Return the current status of a job."""
        ...

    def part_locations(self, job: JobStatus, *, fresh: bool = False) -> list[PartLocation]:
        """Return where the parts of a completed job's result are, in order (none when the
        result is empty); ``fresh``: the ones known have been refused (expired), ask anew.
        """
        ...

    def unlisted_part(self, job: JobStatus, number: int) -> PartLocation | None:
        """Return where part ``number`` would be when the job does not say how many parts
        its result has (``part_locations`` gave those before it); None when it says, so the
        parts listed are all there are. Opening a part that is not there raises
        ``PartNotFoundError``.
        """
        ...


@t.runtime_checkable
class CancelsJobs(t.Protocol):
    """The optional verb of an API that can cancel a job (``Capabilities.can_cancel``)."""

    def cancel_job(self, job_id: str) -> JobStatus | None:
        """Cancel a job; ``None`` when it had already finished (nothing to cancel)."""
        ...


@t.runtime_checkable
class ListsJobs(t.Protocol):
    """The optional verb of an API whose jobs can be listed (``Capabilities.can_list_jobs``)."""

    def find_equivalent_job(self, spec: JobSpec, rule: ReuseRule | None = None) -> JobStatus | None:
        """Return an existing, unexpired job that exports exactly this spec and that ``rule``
        admits, if any; None too when the API does not let this token list jobs.
        """
        ...


def cancel_verb(api: ExportApi) -> CancelsJobs | None:
    """Return the API's cancel, if its capabilities say it has one (None: it has not)."""
    return api if api.capabilities.can_cancel and isinstance(api, CancelsJobs) else None


def listing_verb(api: ExportApi) -> ListsJobs | None:
    """Return the API's job listing, if its capabilities say it has one (None: it has not)."""
    return api if api.capabilities.can_list_jobs and isinstance(api, ListsJobs) else None
