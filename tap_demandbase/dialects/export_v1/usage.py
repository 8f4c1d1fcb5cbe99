"""The export_v1 calls: which endpoint a request calls, and the run's calls in one line
(the contract states no daily limits).
"""

from __future__ import annotations

from tap_demandbase.dialects.common import CallCounter
from tap_demandbase.dialects.export_v1.wire import ENTITIES_PATH, JOBS_PATH

#: Endpoints as the summary line names one call of each, in the order of a job's life.
CALLS_SAID = (
    ("entities", "entity list"),
    ("create", "job create"),
    ("status", "status call"),
    ("list", "list call"),
    ("download", "part download"),
    ("cancel", "cancel"),
)


def endpoint_of(method: str, path: str) -> str | None:
    """Return the endpoint a request (method, URL path) calls, as CALLS_SAID names it."""
    if path.endswith(ENTITIES_PATH):
        return "entities"
    if path.endswith(JOBS_PATH):
        return "create" if method == "POST" else "list"
    if f"{JOBS_PATH}/" not in path:
        return None
    if path.endswith("/download"):
        return "download"
    return "cancel" if method == "DELETE" else "status"


def usage_line(calls: CallCounter) -> str:
    """Return the calls this run made, per endpoint."""
    counts = [(calls.get(endpoint), what) for endpoint, what in CALLS_SAID]
    made = [f"{n} {what}{'' if n == 1 else 's'}" for n, what in counts if n]
    return f"API calls of this run: {', '.join(made) or 'none'}"
