"""One sync, top to bottom: its engine context, its plan, its failures and its end.

The tap builds one ``SyncRun`` per sync and hands it to every stream it makes; the streams
report to it (starting, failed, stopping the run, over) and nothing reports back up to the
tap. When the first stream starts, the run plans every job of the selected streams, and the
job slots start each as soon as one is free. A stream that fails is recorded while the others
go on; once every stream has synced, StreamsFailedError names every failure, so that
``sync_all()`` fails for a program as the exit code does for a pipeline.
"""

from __future__ import annotations

import contextlib
import typing as t

from tap_demandbase.engine.budget import DEFERRED_KEY, DailyBudget
from tap_demandbase.engine.export import RunContext
from tap_demandbase.engine.jobs import AttemptPolicy
from tap_demandbase.engine.scheduler import JobScheduler
from tap_demandbase.errors import DemandbaseError
from tap_demandbase.progress import plan_line, summary_line
from tap_demandbase.timestamps import utc_date

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Mapping

    from tap_demandbase.dialects.base import Connection
    from tap_demandbase.engine.clock import SystemClock
    from tap_demandbase.engine.scheduler import JobFactory, JobKey
    from tap_demandbase.model import JobSpec
    from tap_demandbase.settings import Settings
    from tap_demandbase.streams import ExportStream


class StreamsFailedError(DemandbaseError):
    """Some streams failed while the others synced (each failure was logged as it happened)."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__("; ".join(failures))
        self.failures = list(failures)


def run_context(
    settings: Settings, connection: Connection, clock: SystemClock, logger: logging.Logger
) -> RunContext:
    """Return what all streams' exports share in this run, validating the settings it reads.
    The run's last day is fixed here, once.
    """
    start, end = settings.run_range()
    if start and start > clock.now():
        logger.warning(
            "Setting start_date (%s) is in the future: nothing is exported until that day. "
            "This is almost always a mistake (the year?): set it to the first day to export.",
            start.isoformat(),
        )
    return RunContext(
        api=connection.api,
        opener=connection.opener,
        clock=clock,
        scheduler=JobScheduler(settings.max_concurrent_jobs()),
        end_day=utc_date(end or clock.now()),
        poll_policy=settings.poll_policy(),
        attempts=AttemptPolicy(
            max_attempts=int(settings.value("max_job_attempts")),
            cooldown=float(settings.value("job_retry_cooldown_seconds")),
        ),
        window_days=settings.get("window_days"),
        stall_seconds=settings.stall_seconds(),
        budget=daily_budget(settings, connection, clock),
    )


def daily_budget(
    settings: Settings, connection: Connection, clock: SystemClock
) -> DailyBudget | None:
    """Return the run's daily budget: the dialect's limits, or the settings' (None: the API
    states no daily limits).
    """
    limits = settings.daily_limits()
    if not limits:
        return None
    share = float(settings.value("budget_share"))
    api = connection.api
    return DailyBudget(limits, share, clock, api.calls_by_stream, settings.dialect.call_words)


class SyncRun:
    """One sync of the tap: what its streams share, its plan, its failures and its end."""

    def __init__(
        self,
        settings: Settings,
        connection: Connection,
        clock: SystemClock,
        state: Mapping[str, t.Any],
        logger: logging.Logger,
    ) -> None:
        self.settings = settings
        self.connection = connection
        self.context = run_context(settings, connection, clock, logger)
        self.state = state
        self.logger = logger
        #: Every stream of the tap, in the order the SDK syncs them.
        self.streams: dict[str, ExportStream] = {}
        self.failures: list[str] = []
        #: Every stream that failed in this run (``failures`` is emptied once raised).
        self.failed = 0
        #: The error that stopped the whole run, if one did.
        self.stopped_by: DemandbaseError | None = None
        self._planned = False
        self._jobs_scheduled = False

    # The streams ----------------------------------------------------------------------------

    def take_streams(self, streams: list[ExportStream]) -> None:
        """Take the tap's streams into this run, in the order the SDK syncs them."""
        self.streams = {stream.name: stream for stream in streams}

    def selected_streams(self) -> list[ExportStream]:
        """Return the streams this sync exports, in the SDK's sync order."""
        return [stream for stream in self.streams.values() if stream.selected]

    def stream_states(self) -> list[tuple[str, dict[str, t.Any]]]:
        """Return every stream's state the input state holds (selected or not)."""
        bookmarks = self.state.get("bookmarks", {})
        return [(name, state) for name, state in bookmarks.items() if isinstance(state, dict)]

    def behind_first(self) -> list[str]:
        """Put first the streams the budget deferred in an earlier run (they are behind, the
        others merely due), and return the stream names in that order for the SDK to sync.
        """
        order = sorted(self.streams, key=lambda name: not self._behind(name))
        self.streams = {name: self.streams[name] for name in order}
        return order

    def _behind(self, stream: str) -> bool:
        """Whether the budget deferred the stream in an earlier run (its state says so)."""
        state = self.state.get("bookmarks", {}).get(stream)
        return isinstance(state, dict) and state.get(DEFERRED_KEY) is not None

    # The plan -------------------------------------------------------------------------------

    def plan_run(self) -> None:
        """Plan the run once: today's calls from the states, then the streams' due jobs, then
        what is left for backfills (backfill_jobs_per_run, else the budget's creates left).
        """
        if self._planned:
            return
        self._planned = True
        run = self.context
        if run.budget is not None:
            run.budget.load(self.stream_states())
        due = 0
        for stream in self.selected_streams():
            with contextlib.suppress(DemandbaseError):  # the stream reports it in its turn
                due += len(stream.due_jobs())
        jobs = self.settings.get("backfill_jobs_per_run")
        if jobs is None and run.budget is not None:
            jobs = max(0, run.budget.left("create") - due)
        run.backfill_jobs.jobs = jobs

    def planned_jobs(self) -> list[tuple[JobKey, JobFactory]]:
        """Return the selected streams' jobs, in the order the SDK syncs the streams."""
        return [job for stream in self.selected_streams() for job in stream.jobs_to_schedule()]

    def plan(self) -> str:
        """Return the plan line: each selected stream and the export jobs it needs (planned
        as its sync will plan them: no API call), and what is left of today's budget.
        """
        self.plan_run()
        plans: list[tuple[str, list[JobSpec] | str | None, str]] = []
        for stream in self.selected_streams():
            try:
                if stream.skipped_because():
                    plans.append((stream.name, "skipped: min_interval_hours", ""))
                    continue
                specs = stream.planned_jobs()
                backfill = stream.backfill_jobs()
                notes = [f"{backfill} of them backfilling"] * bool(backfill)
                notes += ["deferred by the last run, first now"] * self._behind(stream.name)
                plans.append((stream.name, specs, "; ".join(notes)))
            except DemandbaseError:
                plans.append((stream.name, None, ""))  # the stream reports it in its turn
        budget = self.context.budget
        left = f" Left today within budget_share: {budget.describe_left()}." if budget else ""
        return plan_line(plans) + left

    # What the streams report ----------------------------------------------------------------

    def stream_starting(self) -> None:
        """Plan the run's jobs, once, when its first stream starts: the job slots start them
        as they free up.
        """
        if not self._jobs_scheduled:
            self._jobs_scheduled = True
            self.plan_run()
            self.context.scheduler.plan(self.planned_jobs())

    def stream_failed(self, stream: str, error: DemandbaseError) -> None:
        """Record a stream that failed while the others go on."""
        self.failures.append(f"Stream '{stream}' failed: {error}")
        self.failed += 1

    def run_stopping(self, error: DemandbaseError) -> None:
        """A stream's error stops the whole run (quota, credentials): count it."""
        self.stopped_by = error

    def sync_over(self, stream: str) -> None:
        """After the tap's last stream: raise the failures, if any."""
        if self.streams and stream == list(self.streams)[-1]:
            self.raise_failures()

    def raise_failures(self) -> None:
        """Raise StreamsFailedError naming the streams that failed, if any (and start over)."""
        if self.failures:
            failures, self.failures, self._jobs_scheduled = self.failures, [], False
            raise StreamsFailedError(failures)

    # The end --------------------------------------------------------------------------------

    def calls_made(self) -> str | None:
        """Return the dialect's words for the API calls this run made."""
        return self.connection.api.usage_summary()

    def summary(self) -> str:
        """Return the run's last line: streams, records, jobs, bytes, failures, time, calls."""
        failures = self.failed + (self.stopped_by is not None)
        return summary_line(self.context.tally.snapshot(), failures, self.calls_made())
