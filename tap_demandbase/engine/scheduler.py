"""The tenant's job slots: the next export job starts as soon as one finishes on the server.

Every job of a run is planned up front, in the order the streams will read them. A slot is
free once its job is completed on the server, not once its result is read: with one slot (a
production tenant runs one job at a time) the next window's job, or the next stream's first
job, runs on the server while the finished one is downloaded and emitted. The run then takes
about the sum of the jobs' server times plus the last job's emit time. With
``max_concurrent_jobs: N`` the same rule keeps N jobs running. At most ``slots`` completed
results wait unread, so that results are not fetched far ahead of the streams.

The streams still read one at a time, in order: the Singer output is what it is without the
slots. Jobs run in background threads and never touch the state; what they create reaches the
ledger through the run's ``LedgerJournal``, which only the main thread applies.
"""

from __future__ import annotations

import functools
import threading
import typing as t
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from tap_demandbase.engine.background import run_in_background
from tap_demandbase.errors import RUN_STOPPING_ERRORS, DemandbaseError
from tap_demandbase.model import CALLS_FOR

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, MutableMapping

    from tap_demandbase.engine.jobs import ExportJob
    from tap_demandbase.engine.ledger import LedgerEntry
    from tap_demandbase.model import JobSpec

#: A job's identity in a run: the stream it is for and its spec.
JobKey = tuple[str, "JobSpec"]
JobFactory = t.Callable[[], "ExportJob"]
#: A stream's state, or what returns it (made when first written).
StateOf = t.Union["MutableMapping[str, t.Any]", t.Callable[[], "MutableMapping[str, t.Any]"]]
#: How often the main thread, waiting for a job, applies what the job threads created.
JOURNAL_SECONDS = 0.2


class StreamClosedError(DemandbaseError):
    """The stream gets no more jobs in this run (the daily budget deferred it)."""


class JobScheduler:
    """Starts the run's planned jobs in order whenever a slot is free, and hands each,
    completed, to the stream that asks for it.
    """

    def __init__(self, max_in_flight: int = 1) -> None:
        self.max_in_flight = max(1, max_in_flight)
        self._lock = threading.RLock()
        #: Notified whenever a slot may have freed up.
        self._changed = threading.Condition(self._lock)
        self._planned: list[tuple[JobKey, JobFactory]] = []
        #: Started jobs, until their stream has read them: key → future of the completed job.
        self._started: dict[JobKey, Future[ExportJob]] = {}
        #: Started jobs not yet completed on the server (each holds a slot).
        self._running: set[JobKey] = set()
        #: Streams that get no more jobs this run, and why.
        self._closed: dict[str, BaseException] = {}
        self._stopped: BaseException | None = None
        #: Streams that are done: their jobs still running are not waited for when they end.
        self._gone: set[str] = set()
        #: The largest number of jobs ever running on the server at once (for tests and logs).
        self.most_running = 0

    def plan(self, jobs: Iterable[tuple[JobKey, JobFactory]]) -> None:
        """Add jobs, in the order their streams will ask for them, and start what fits."""
        with self._lock:
            self._planned += [job for job in jobs if job[0] not in self._started]
            self._start_next()

    def completed_job(
        self, key: JobKey, factory: JobFactory, *, while_waiting: Callable[[], None] = lambda: None
    ) -> ExportJob:
        """Return the completed job of ``key`` (planned now, first, if it was not).

        ``while_waiting`` runs on the calling thread every JOURNAL_SECONDS until the job is
        done (the main thread applies the ledger journal there).
        """
        while (future := self._started_for(key, factory)) is None:
            while_waiting()  # for a slot: jobs started ahead are still running
        while True:
            try:
                return future.result(timeout=JOURNAL_SECONDS)
            except FutureTimeout:
                while_waiting()

    def _started_for(self, key: JobKey, factory: JobFactory) -> Future[ExportJob] | None:
        """Return the future of ``key``'s job, started first when a slot is free (None: none
        is yet; waits up to JOURNAL_SECONDS for one).
        """
        with self._changed:
            if key not in self._started:  # a job started before its stream closed is read
                if (closed := self._closed.get(key[0])) is not None:
                    raise closed
                if self._stopped is not None:
                    raise self._stopped
                self._planned = [(key, factory)] + [p for p in self._planned if p[0] != key]
                self._start_next()
            if key not in self._started:
                self._changed.wait(JOURNAL_SECONDS)
            return self._started.get(key)

    def release(self, key: JobKey) -> None:
        """The stream has read this job's result: its place goes to the next planned job."""
        with self._lock:
            self._started.pop(key, None)
            self._planned = [p for p in self._planned if p[0] != key]
            self._start_next()

    def release_stream(self, stream: str) -> None:
        """The stream is done (or failed): its jobs not yet started are dropped; its started
        ones that completed give their place back (those still running keep their slot: the
        tenant runs them; they are in the stream's ledger for the next run).
        """
        with self._lock:
            self._gone.add(stream)
            self._planned = [p for p in self._planned if p[0][0] != stream]
            self._started = {
                k: f for k, f in self._started.items() if k[0] != stream or k in self._running
            }
            self._start_next()

    def closed(self, stream: str) -> bool:
        """Whether the stream gets no more new jobs this run."""
        with self._lock:
            return stream in self._closed

    @property
    def in_flight(self) -> list[JobKey]:
        """Return the keys of the jobs started and not yet read."""
        with self._lock:
            return list(self._started)

    def _start_next(self) -> None:
        while self._planned and self._stopped is None:
            running = len(self._running)
            unread = len(self._started) - running
            if running >= self.max_in_flight or running + unread >= 2 * self.max_in_flight:
                return
            key, factory = self._planned.pop(0)
            if key in self._started or key[0] in self._closed:
                continue
            self._running.add(key)
            self.most_running = max(self.most_running, len(self._running))
            work = functools.partial(self._run, key, factory)
            self._started[key] = run_in_background(f"export-job-{key[0]}", work)

    def _run(self, key: JobKey, factory: JobFactory) -> ExportJob:
        """Get one job completed (in its thread); its slot is free before its stream hears."""
        CALLS_FOR.set(key[0])
        try:
            return factory()
        except StreamClosedError as exc:
            with self._lock:
                self._closed[key[0]] = exc
            raise
        except RUN_STOPPING_ERRORS as exc:
            with self._lock:
                self._stopped = exc
            raise
        finally:
            with self._lock:
                self._running.discard(key)
                if key[0] in self._gone:
                    self._started.pop(key, None)
                self._start_next()
                self._changed.notify_all()


class LedgerJournal:
    """What job threads created, kept until the main thread writes it into the streams'
    states: a job is in the ledger (and in the next STATE) as soon as it exists, while only
    the thread that emits STATE ever writes the state.
    """

    def __init__(self, write: Callable[[MutableMapping[str, t.Any], LedgerEntry], None]) -> None:
        self._write = write
        self._lock = threading.Lock()
        self._posted: list[tuple[str, LedgerEntry]] = []
        self._states: dict[str, StateOf] = {}

    def register(self, stream: str, state: StateOf) -> None:
        """Say where a stream's state is (the main thread, when it plans the stream): the
        mapping, or what returns it when it is first written.
        """
        self._states[stream] = state

    def states(self) -> list[tuple[str, MutableMapping[str, t.Any]]]:
        """Return each planned stream's state (main thread only)."""
        return [(stream, self._state(stream)) for stream in self._states]

    def _state(self, stream: str) -> MutableMapping[str, t.Any]:
        state = self._states[stream]
        return state() if callable(state) else state

    def post(self, stream: str, entry: LedgerEntry) -> None:
        """Keep a job that now exists (any thread)."""
        with self._lock:
            self._posted.append((stream, entry))

    def apply(self) -> bool:
        """Write what was posted into the streams' states (main thread only); return whether
        anything was (then STATE should be emitted).
        """
        with self._lock:
            posted, self._posted = self._posted, []
        for stream, entry in posted:
            if stream in self._states:
                self._write(self._state(stream), entry)
        return bool(posted)
