"""Time as the engine sees it: the date of the run, a monotonic clock and waits that can end.

One object, passed everywhere, instead of ``time.sleep`` and ``datetime.now()`` scattered
through the code: the engine's tests run on a fake clock in milliseconds, and a stopped sync
ends every wait at once.
"""

from __future__ import annotations

import datetime
import threading
import time
import typing as t

from tap_demandbase.errors import DemandbaseError


class SyncStopped(DemandbaseError):
    """The sync ended (or failed) while a job was still being waited for."""


class Clock(t.Protocol):
    """What the engine asks of time."""

    def now(self) -> datetime.datetime:
        """Return the current UTC date-time (for what the API compares: created_at, expiry)."""
        ...

    def monotonic(self) -> float:
        """Return seconds from an arbitrary origin (for durations: timeouts, rates)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait; raise SyncStopped if the sync stops meanwhile."""
        ...


class SystemClock:
    """The real clock, whose waits end at once when the sync stops."""

    def __init__(self) -> None:
        self._stopped = threading.Event()

    def now(self) -> datetime.datetime:
        """Return the current UTC date-time."""
        return datetime.datetime.now(datetime.timezone.utc)

    def monotonic(self) -> float:
        """Return ``time.monotonic()``."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Wait between two status calls; end the wait at once when the sync stops."""
        if self._stopped.wait(seconds):
            msg = "the sync stopped while an export job was still being polled"
            raise SyncStopped(msg)

    def stop(self) -> None:
        """End every wait, now and later (background polling threads then give up)."""
        self._stopped.set()
