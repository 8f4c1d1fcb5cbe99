"""Daily call counters per endpoint, as a tenant's API budget is counted (uapi dialect).

Demandbase counts calls per tenant and UTC day (60 job creates, 300 status calls, 1,200 list
calls, 60 field calls; the counters reset at 00:00 UTC). The counters here work the same way:
every authenticated call to a counted endpoint counts, refused ones included, and a new UTC day
starts from zero. ``GET /_sandbox/usage`` serves them and ``POST /_sandbox/reset`` clears them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone


class DailyUsage:
    """Thread-safe calls per endpoint for the current UTC day of ``clock``."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._day = ""
        self._counts: dict[str, int] = {}

    def take(self, endpoint: str, limit: int | None) -> bool:
        """Count a call to ``endpoint``; return whether it is within ``limit`` (None: no limit)."""
        with self._lock:
            self._roll()
            count = self._counts.get(endpoint, 0) + 1
            self._counts[endpoint] = count
            return limit is None or count <= limit

    def counts(self) -> dict[str, int]:
        """Return today's calls per endpoint (endpoints not called yet are absent)."""
        with self._lock:
            self._roll()
            return dict(self._counts)

    def resets_at(self) -> str:
        """Return the next 00:00 UTC as an RFC 3339 timestamp (when the counters restart)."""
        now = datetime.fromtimestamp(self._clock(), timezone.utc)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        return midnight.strftime("%Y-%m-%dT%H:%M:%SZ")

    def clear(self) -> None:
        """Forget today's counts."""
        with self._lock:
            self._counts.clear()

    def _roll(self) -> None:
        """Start from zero when the UTC day changed (callers hold the lock)."""
        day = datetime.fromtimestamp(self._clock(), timezone.utc).date().isoformat()
        if day != self._day:
            self._day = day
            self._counts.clear()
