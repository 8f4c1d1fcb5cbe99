"""When to ask for a job's status: learned from the stream's last jobs, else doubling.

Status calls are the scarcest of a production tenant's daily limits (300 a day). A job whose
stream has run a few jobs before is likely to take about as long again, so its first status
call comes just before the shortest of those durations, and short steps follow until the
longest has passed; after that the waits double as for a stream without history. Every wait
between two status calls stays within ``poll_interval_seconds`` and
``max_poll_interval_seconds``; the wait before the first one may be longer, up to the job's
expected end.
"""

from __future__ import annotations

import statistics
import typing as t
from dataclasses import dataclass

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, MutableMapping, Sequence

    from tap_demandbase.model import PollPolicy

#: Stream state key: the server durations of the stream's last jobs, in whole milliseconds
#: (a state holds no fractions: SDK targets read them as Decimal and cannot write them back).
HISTORY_KEY = "job_durations_ms"
#: How many durations the state keeps per stream.
HISTORY_SIZE = 5
#: The first status call comes at this share of the shortest duration seen...
FIRST_CALL_SHARE = 0.9
#: ...and the next ones this share of the median duration apart.
STEP_SHARE = 0.15
#: The status calls a job of a stream without history is budgeted for.
NO_HISTORY_CALLS = 5


@dataclass(frozen=True)
class PollSchedule:
    """The waits before each status call of one job."""

    policy: PollPolicy
    #: Server durations of the stream's last jobs (empty: no history, the policy doubles).
    history: tuple[float, ...] = ()

    def waits(self) -> Iterator[float]:
        """Yield the wait before each status call, forever."""
        if not self.history:
            yield from self.policy.intervals()
            return
        # Not capped by max_poll_interval_seconds: no status call comes before it.
        first = max(FIRST_CALL_SHARE * min(self.history), self.policy.first_interval)
        step = self._bounded(STEP_SHARE * statistics.median(self.history))
        yield first
        elapsed = first
        while elapsed < max(self.history):
            yield step
            elapsed += step
        wait = step
        while True:
            wait = self._bounded(wait * 2)
            yield wait

    def expected_calls(self) -> int:
        """Return the status calls a job is expected to cost: until the median duration of
        the history has passed (NO_HISTORY_CALLS without one).
        """
        if not self.history:
            return NO_HISTORY_CALLS
        expected = statistics.median(self.history)
        elapsed, calls = 0.0, 0
        for wait in self.waits():
            elapsed += wait
            calls += 1
            if elapsed >= expected:
                return calls
        return calls  # pragma: no cover (waits() never ends)

    def describe(self) -> str:
        """Say how the job is polled, for its log line."""
        if not self.history:
            return "no job history: polling doubles"
        return f"learned from {len(self.history)} job(s) of {min(self.history):.0f}-" + (
            f"{max(self.history):.0f}s"
        )

    def _bounded(self, seconds: float) -> float:
        return min(max(seconds, self.policy.first_interval), self.policy.max_interval)


def job_history(stream_state: Mapping[str, t.Any]) -> tuple[float, ...]:
    """Return the durations the state keeps (anything else there is ignored)."""
    value = stream_state.get(HISTORY_KEY)
    if not isinstance(value, list):
        return ()
    return tuple(
        v / 1000 for v in value if isinstance(v, int) and not isinstance(v, bool) and v > 0
    )[-HISTORY_SIZE:]


def remember_duration(stream_state: MutableMapping[str, t.Any], seconds: float) -> None:
    """Add a job's server duration to the stream's history (the oldest one drops out)."""
    kept: Sequence[float] = job_history(stream_state)
    durations = [max(1, round(s * 1000)) for s in (*kept, seconds)]
    stream_state[HISTORY_KEY] = durations[-HISTORY_SIZE:]
