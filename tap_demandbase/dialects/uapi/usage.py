"""The uapi calls against the tenant's daily budgets: which budget a request counts
against, and the run's calls in one line.
"""

from __future__ import annotations

from tap_demandbase.dialects.common import CallCounter
from tap_demandbase.dialects.uapi.wire import FIELDS_PATH, JOB_PATH, JOBS_PATH

#: Calls per tenant and UTC day that Demandbase documents, by endpoint (they reset at 00:00 UTC).
DAILY_LIMITS = {"create": 60, "status": 300, "list": 1200, "fields": 60}
#: How each budgeted endpoint's calls are named in the usage line and in errors.
CALLS = {
    "create": "job creates",
    "status": "status calls",
    "list": "list calls",
    "fields": "fields calls",
}


class CallUsage(CallCounter):
    """Counts this run's calls per budgeted endpoint (retries and refused calls included, as
    Demandbase counts them).
    """

    def __init__(self) -> None:
        super().__init__(budgeted_endpoint)

    def spent(self, endpoint: str) -> bool:
        """Whether this run alone made as many calls to the endpoint as a day allows."""
        return self.get(endpoint) >= DAILY_LIMITS[endpoint]

    def summary(self) -> str:
        """Return the run's calls against the daily limits, in one line."""
        budgets = ", ".join(
            f"{self.get(endpoint)} {what} of {DAILY_LIMITS[endpoint]:,}"
            for endpoint, what in CALLS.items()
        )
        return (
            f"API calls of this run against the tenant's daily limits: {budgets}; "
            f"{self.get('token')} token request(s)"
        )


def budgeted_endpoint(method: str, path: str) -> str | None:
    """Return the budget a request counts against, by its method and URL path (None: the
    token endpoint, counted apart).
    """
    if method == "POST" and path.endswith(JOB_PATH):
        return "create"
    if method == "GET" and path.endswith(JOBS_PATH):
        return "list"
    if method == "GET" and path.endswith(FIELDS_PATH):
        return "fields"
    if method == "GET" and f"{JOB_PATH}/" in path:
        return "status"
    return None
