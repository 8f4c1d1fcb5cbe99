"""The request log: what each client sent to the sandbox, so tests can assert on the wire.

Tests use it to prove protocol properties a tap's own output cannot show: the bearer token never
reaches the download host, a status poll is not repeated too eagerly, a job is created once. The
Authorization value itself is never stored, only whether one was present.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class RecordedRequest:
    """One request, as answered.

    Attributes:
        server: ``"api"`` or ``"files"``.
        method: HTTP method.
        path: URL path without the query string.
        query: Query parameters (the last value wins when a name repeats).
        has_authorization: Whether an ``Authorization`` header was sent.
        body: The request body parsed as JSON, or None (no body, or not JSON).
        status: The HTTP status of the answer.
    """

    server: str
    method: str
    path: str
    query: dict[str, str]
    has_authorization: bool
    body: object
    status: int

    def to_json(self) -> dict[str, object]:
        """Return the record as served by ``GET /_sandbox/requests``."""
        return asdict(self)


class RequestLog:
    """A thread-safe, append-only list of :class:`RecordedRequest` (until :meth:`clear`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[RecordedRequest] = []

    def append(self, entry: RecordedRequest) -> None:
        """Record one answered request."""
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[RecordedRequest]:
        """Return a copy, safe to inspect while servers keep recording."""
        with self._lock:
            return copy.deepcopy(self._entries)

    def clear(self) -> None:
        """Forget every request recorded so far."""
        with self._lock:
            self._entries.clear()
