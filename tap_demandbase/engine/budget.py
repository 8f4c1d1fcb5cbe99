"""The tenant's daily call limits, shared across runs: what this tap may still spend today.

Demandbase counts calls per tenant and UTC day (60 job creates, 300 status calls, ...). A run
alone cannot know what earlier runs spent, so each stream's state keeps its calls of the
current UTC day; the budget is ``budget_share`` of each limit, less what the states and this
run have spent. A job that would not fit is not created: its stream is deferred to a later run
(not a failure), and the rest of the limit stays free for people in the UI.
"""

from __future__ import annotations

import datetime
import math
import threading
import typing as t
from dataclasses import dataclass

from tap_demandbase.engine.scheduler import StreamClosedError

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, MutableMapping

    from tap_demandbase.engine.clock import Clock

#: Stream state key: the stream's calls of one UTC day, per endpoint.
USAGE_KEY = "calls_today"
#: Stream state key: why and when the budget last deferred the stream (absent: it is not).
DEFERRED_KEY = "deferred"
#: Default of the budget_share setting.
DEFAULT_SHARE = 0.8

#: This run's calls: stream (None: no stream's) → endpoint → calls.
RunCalls = t.Callable[[], "Mapping[str | None, Mapping[str, int]]"]


class StreamDeferredError(StreamClosedError):
    """The daily budget has no room for the stream's next job: it waits for a later run."""


@dataclass(frozen=True)
class JobCost:
    """The calls one new job is expected to cost, per endpoint."""

    calls: Mapping[str, int]


class DailyBudget:
    """This tap's share of the tenant's daily limits, less today's calls (states and run)."""

    def __init__(
        self,
        limits: Mapping[str, int],
        share: float,
        clock: Clock,
        run_calls: RunCalls,
        words: Mapping[str, str] | None = None,
    ) -> None:
        self.limits = dict(limits)
        self.share = share
        self.clock = clock
        self.run_calls = run_calls
        #: How each endpoint's calls are named ("job creates").
        self.words = dict(words or {})
        self._lock = threading.Lock()
        self._day = self.today()
        #: Today's calls of earlier runs: stream → endpoint → calls.
        self._before: dict[str, dict[str, int]] = {}
        #: This run's calls when the current day began (all zero unless it crossed midnight).
        self._baseline = _totals_by_stream(run_calls())

    def today(self) -> datetime.date:
        """Return the current UTC day (Demandbase's limits reset at 00:00 UTC)."""
        return self.clock.now().astimezone(datetime.timezone.utc).date()

    def load(self, states: Iterable[tuple[str, Mapping[str, t.Any]]]) -> None:
        """Take each stream's calls of today from its state (other days count for nothing)."""
        with self._lock:
            for stream, state in states:
                self._before[stream] = calls_of_day(state, self._day)

    def allowed(self, endpoint: str) -> int:
        """Return the calls this tap may make to an endpoint per day."""
        return math.floor(self.limits[endpoint] * self.share)

    def used(self, endpoint: str) -> int:
        """Return today's calls to an endpoint: earlier runs' and this run's."""
        with self._lock:
            self._roll_over()
            before = sum(calls.get(endpoint, 0) for calls in self._before.values())
            run = sum(calls.get(endpoint, 0) for calls in self._run_today().values())
        return before + run

    def left(self, endpoint: str) -> int:
        """Return the calls still within the share today (never below 0)."""
        return max(0, self.allowed(endpoint) - self.used(endpoint))

    def shortfall(self, cost: JobCost) -> str | None:
        """Say what is short for a job of ``cost`` (None: it fits today)."""
        short = [
            f"{self.left(e)} of {self.allowed(e)} {self.words.get(e, e + ' calls')} left today"
            for e, calls in cost.calls.items()
            if e in self.limits and calls > self.left(e)
        ]
        return "; ".join(short) or None

    def describe_left(self) -> str:
        """Say what is left today of every budgeted endpoint, for the plan line."""
        return ", ".join(
            f"{self.left(e)}/{self.allowed(e)} {self.words.get(e, e)}" for e in self.limits
        )

    def defer_message(self, stream: str, why: str) -> str:
        """Return the one WARNING line of a deferred stream."""
        reset = next_reset(self.clock.now())
        hours = (reset - self.clock.now()).total_seconds() / 3600
        return (
            f"Stream '{stream}' deferred by the daily budget ({why}; budget_share="
            f"{self.share:g} of the tenant's limits). The UTC day resets at "
            f"{reset:%Y-%m-%d %H:%M} UTC (in {hours:.1f} h); the next run takes this stream first."
        )

    def write_usage(self, stream: str, state: MutableMapping[str, t.Any]) -> None:
        """Keep the stream's calls of today in its state (earlier runs' plus this run's)."""
        with self._lock:
            self._roll_over()
            run = self._run_today().get(stream, {})
            before = self._before.get(stream, {})
            calls = {e: before.get(e, 0) + run.get(e, 0) for e in self.limits}
        if any(calls.values()) or USAGE_KEY in state:
            state[USAGE_KEY] = {"day": self._day.isoformat(), **calls}

    def _run_today(self) -> dict[str, dict[str, int]]:
        now = _totals_by_stream(self.run_calls())
        return {
            s: {e: n - self._baseline.get(s, {}).get(e, 0) for e, n in calls.items()}
            for s, calls in now.items()
        }

    def _roll_over(self) -> None:
        """At midnight UTC: earlier calls no longer count; this run's count from now on."""
        day = self.today()
        if day != self._day:
            self._day = day
            self._before = {}
            self._baseline = _totals_by_stream(self.run_calls())


def calls_of_day(state: Mapping[str, t.Any], day: datetime.date) -> dict[str, int]:
    """Return a stream's calls of ``day`` from its state (none when it holds another day's)."""
    usage = state.get(USAGE_KEY)
    if not isinstance(usage, dict) or usage.get("day") != day.isoformat():
        return {}
    return {
        str(e): int(n)
        for e, n in usage.items()
        if e != "day" and isinstance(n, int) and not isinstance(n, bool) and n >= 0
    }


def next_reset(now: datetime.datetime) -> datetime.datetime:
    """Return the next 00:00 UTC after ``now``."""
    day = now.astimezone(datetime.timezone.utc).date() + datetime.timedelta(days=1)
    return datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.timezone.utc)


def _totals_by_stream(calls: Mapping[str | None, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """Key calls by stream name ("" for calls of no stream)."""
    return {s or "": dict(c) for s, c in calls.items()}
