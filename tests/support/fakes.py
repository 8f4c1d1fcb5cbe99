"""A fake clock and a fake ExportApi for the engine's tests: real engine code, no HTTP, no
sleeping. The fake API is an in-memory model of the contract's job life (not a mock: it keeps
jobs, advances them with the fake clock, and serves their parts as files).
"""

from __future__ import annotations

import datetime
import itertools
from dataclasses import dataclass, field, replace
from pathlib import Path

from tap_demandbase.engine.results import CHUNK_SIZE
from tap_demandbase.errors import ApiRequestError, PartNotFoundError, UnknownFieldsError
from tap_demandbase.model import (
    CALLS_FOR,
    Capabilities,
    EntityInfo,
    FieldInfo,
    Filters,
    JobSpec,
    JobState,
    JobStatus,
    PartBody,
    PartLocation,
    ReuseRule,
    usable_result,
)

UTC = datetime.timezone.utc


class FakeClock:
    """Time that moves only when the code under test sleeps (or the test says so)."""

    def __init__(self, start: datetime.datetime | None = None) -> None:
        self.start = start or datetime.datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
        self.elapsed = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime.datetime:
        return self.start + datetime.timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        return self.elapsed

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.elapsed += seconds

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds


@dataclass
class FakeJob:
    """One job on the fake API: what it exports, and the states it goes through by time."""

    status: JobStatus
    spec: JobSpec
    #: (seconds after creation, state): the job's state is the last one whose time has come.
    timeline: list[tuple[float, JobState]]
    created: float
    parts: list[str] = field(default_factory=list)
    word: dict[JobState, str] = field(default_factory=dict)


class FakeApi:
    """An in-memory export API on a fake clock: jobs advance along a timeline, parts are CSV
    text served from files under ``folder``; every call is counted.
    """

    def __init__(
        self,
        clock: FakeClock,
        folder: Path,
        *,
        capabilities: Capabilities | None = None,
        rows: int = 5,
        parts: int = 2,
    ) -> None:
        self.clock = clock
        self.folder = folder
        self.capabilities = capabilities or Capabilities()
        self.rows = rows
        self.part_count = parts
        self.jobs: dict[str, FakeJob] = {}
        self.calls: list[str] = []
        self.filters: list[Filters] = [()]
        #: How the next created jobs behave (popped one per create; default: completes at 1 s).
        self.timelines: list[list[tuple[float, JobState]]] = []
        self.fail_creates_with: Exception | None = None
        #: Filter set -> the error every create of a job with these filters raises.
        self.refuse_filters: dict[Filters, Exception] = {}
        self.page_size = 2
        #: The 409 race: the job completes just as the cancel arrives (which then answers 409).
        self.completes_when_cancelled = False
        #: Completed jobs do not say how many parts they have: part 1 is listed, the others
        #: are found by ``unlisted_part`` (a missing file is a part that is not there).
        self.unlisted_parts = False
        #: At each create: how many of the tap's jobs it had last seen not yet finished.
        self.running_at_create: list[int] = []
        #: Calls per stream (CALLS_FOR) and endpoint, as a dialect counts them.
        self.stream_calls: dict[str | None, dict[str, int]] = {}
        self._seen: dict[str, JobState] = {}
        #: The fields the API lists in this run (None: not listed; ``offered_fields``).
        self.offered: tuple[FieldInfo, ...] | None = None
        #: API names the API does not have (any more): a create naming one is refused.
        self.unknown_fields: set[str] = set()
        #: Property → API name, where they differ (``field_api_names``).
        self.api_names: dict[str, str] = {}
        self._ids = itertools.count(1)

    # ExportApi --------------------------------------------------------------------------

    def calls_by_stream(self) -> dict[str | None, dict[str, int]]:
        return {s: dict(c) for s, c in self.stream_calls.items()}

    def _count(self, endpoint: str) -> None:
        self.calls.append(endpoint)
        counts = self.stream_calls.setdefault(CALLS_FOR.get(), {})
        counts[endpoint] = counts.get(endpoint, 0) + 1

    def list_entities(self) -> list[EntityInfo]:
        self.calls.append("list_entities")
        fields = (FieldInfo("id", "string"), FieldInfo("last_modified_date", "datetime"))
        return [EntityInfo("accounts", fields)]

    def offered_fields(self, entity: str) -> tuple[FieldInfo, ...] | None:
        return self.offered

    def field_api_names(self, entity: str) -> dict[str, str]:
        return dict(self.api_names)

    def job_filters(self, entity: str) -> list[Filters]:
        return list(self.filters)

    def create_job(self, spec: JobSpec, rule: ReuseRule | None = None) -> JobStatus:
        self._count("create")
        self.running_at_create.append(sum(not s.is_terminal for s in self._seen.values()))
        if self.fail_creates_with is not None:
            raise self.fail_creates_with
        if spec.filters in self.refuse_filters:
            raise self.refuse_filters[spec.filters]
        unknown = [a for f in spec.fields if (a := self.api_names.get(f, f)) in self.unknown_fields]
        if unknown:
            raise UnknownFieldsError(f"Unknown fields: {', '.join(unknown)}", unknown)
        timeline = self.timelines.pop(0) if self.timelines else [(1.0, JobState.COMPLETED)]
        job_id = f"job-{next(self._ids)}"
        status = JobStatus(
            id=job_id,
            entity=spec.entity,
            state=JobState.PENDING,
            created_at=self.clock.now(),
        )
        self.jobs[job_id] = FakeJob(
            status, spec, [(0.0, JobState.PENDING), *timeline], self.clock.elapsed
        )
        return self._current(job_id)

    def get_job(self, job_id: str) -> JobStatus:
        self._count("get")
        if job_id not in self.jobs:
            raise ApiRequestError(f"job {job_id} not found", status=404)
        return self._current(job_id)

    def cancel_job(self, job_id: str) -> JobStatus | None:
        self.calls.append("cancel")
        job = self.jobs[job_id]
        if self.completes_when_cancelled:
            job.timeline = [(0.0, JobState.COMPLETED)]
        if self._current(job_id).state.is_terminal:
            return None  # the 409 race: it finished meanwhile
        job.timeline = [(0.0, JobState.CANCELLED)]
        return self._current(job_id)

    def find_equivalent_job(self, spec: JobSpec, rule: ReuseRule | None = None) -> JobStatus | None:
        """Page through jobs ``page_size`` at a time, like a listing would."""
        rule = rule or ReuseRule()
        found = []
        ids = list(self.jobs)
        for start in range(0, len(ids), self.page_size):
            self.calls.append("list")
            for job_id in ids[start : start + self.page_size]:
                status = self._current(job_id)
                if (
                    self.jobs[job_id].spec == spec
                    and usable_result(status, self.clock.now())
                    and rule.admits(status)
                ):
                    found.append(status)
        return found[-1] if found else None

    def part_locations(self, job: JobStatus, *, fresh: bool = False) -> list[PartLocation]:
        self.calls.append("locations")
        fake = self.jobs[job.id]
        if not fake.parts:
            fake.parts = self._write_parts(job.id)
        listed = fake.parts[:1] if self.unlisted_parts else fake.parts
        return [
            PartLocation(number=n, url=path, with_credentials=False)
            for n, path in enumerate(listed, start=1)
        ]

    def unlisted_part(self, job: JobStatus, number: int) -> PartLocation | None:
        if not self.unlisted_parts:
            return None
        self.calls.append("unlisted")
        path = self.folder / f"{job.id}-{number}.csv"
        return PartLocation(number=number, url=str(path), with_credentials=False)

    # Helpers ----------------------------------------------------------------------------

    def add_job(self, spec: JobSpec, state: JobState, *, age: float = 0.0) -> str:
        """Put a job on the API as if an earlier run had created it ``age`` seconds ago."""
        job_id = f"job-{next(self._ids)}"
        status = JobStatus(
            id=job_id,
            entity=spec.entity,
            state=state,
            created_at=self.clock.now() - datetime.timedelta(seconds=age),
        )
        self.jobs[job_id] = FakeJob(status, spec, [(0.0, state)], self.clock.elapsed - age)
        return job_id

    def _current(self, job_id: str) -> JobStatus:
        job = self.jobs[job_id]
        since = self.clock.elapsed - job.created
        state = [s for at, s in job.timeline if at <= since][-1]
        completed = state is JobState.COMPLETED
        self._seen[job_id] = state
        return replace(
            job.status,
            state=state,
            record_count=self.rows * self.part_count if completed else None,
            file_parts=self.part_count if completed and not self.unlisted_parts else None,
            error_message="it broke" if state is JobState.FAILED else None,
        )

    def _write_parts(self, job_id: str) -> list[str]:
        paths = []
        row = itertools.count(1)
        for n in range(1, self.part_count + 1):
            path = self.folder / f"{job_id}-{n}.csv"
            lines = ["id,last_modified_date"]
            lines += [
                f"r{i},2024-03-0{1 + i % 9}T00:00:00Z" for i in itertools.islice(row, self.rows)
            ]
            path.write_text("\n".join(lines) + "\n")
            paths.append(str(path))
        return paths


class FileOpener:
    """Opens the fake API's part locations (local files) as streaming responses."""

    def __init__(self) -> None:
        self.opened: list[str] = []

    def open_location(
        self, location: PartLocation, *, what: str, headers: dict[str, str] | None = None
    ) -> PartBody:
        self.opened.append(location.url)
        if not Path(location.url).exists():
            raise PartNotFoundError(f"{what}: no such part")
        data = Path(location.url).read_bytes()
        chunks = (data[start : start + CHUNK_SIZE] for start in range(0, len(data), CHUNK_SIZE))
        return PartBody(status=200, headers={"Content-Length": str(len(data))}, chunks=chunks)
