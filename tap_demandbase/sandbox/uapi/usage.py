"""Daily call counters per endpoint, as a tenant's API budget is counted (uapi dialect).

Demandbase counts calls per tenant and UTC day (60 job creates, 300 status calls, 1,200 list
calls, 60 field calls; the counters reset at 00:00 UTC). The counters here work the same way:
every authenticated call to a counted endpoint counts, refused ones included, and each UTC day
has its own counts. The day is the clock's, or the ``today`` knob's: a test moves ``today`` on
to cross midnight without waiting (and back, to find that day's counts again).
``GET /_sandbox/usage`` serves today's counts, ``POST /_sandbox/usage`` sets them (as when
people used the budget from the UI) and ``POST /_sandbox/reset`` clears every day's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone


class DailyUsage:
    """Thread-safe calls per endpoint and UTC day: the day of ``clock``, unless ``today`` says
    which day it is (returning None: the clock's).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        today: Callable[[], date | None] = lambda: None,
    ) -> None:
        self._clock = clock
        self._today = today
        self._lock = threading.Lock()
        self._days: dict[date, dict[str, int]] = {}

    def day(self) -> date:
        """Return the UTC day being counted."""
        return self._today() or datetime.fromtimestamp(self._clock(), timezone.utc).date()

    def take(self, endpoint: str, limit: int | None) -> bool:
        """Count a call to ``endpoint``; return whether it is within ``limit`` (None: no limit)."""
        with self._lock:
            counts = self._days.setdefault(self.day(), {})
            count = counts.get(endpoint, 0) + 1
            counts[endpoint] = count
            return limit is None or count <= limit

    def counts(self) -> dict[str, int]:
        """Return today's calls per endpoint (endpoints not called yet are absent)."""
        with self._lock:
            return dict(self._days.get(self.day(), {}))

    def set_counts(self, counts: dict[str, int]) -> None:
        """Make ``counts`` today's calls per endpoint (the others: none)."""
        with self._lock:
            self._days[self.day()] = {k: v for k, v in counts.items() if v}

    def resets_at(self) -> str:
        """Return the next 00:00 UTC as an RFC 3339 timestamp (when the counters restart)."""
        day = self.day()
        midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        return (midnight + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def clear(self) -> None:
        """Forget every day's counts."""
        with self._lock:
            self._days.clear()
