"""What every dialect does the same way: creating a job without ever paying twice, choosing,
among listed jobs, the one to re-use, counting calls, saying what came back when an answer is
not the JSON a dialect reads; and the vocabularies they share (field type words, bearer tokens,
text settings).

A create whose answer is lost (a 5xx, a body that is not a job) may still have created the job.
Before the create is sent again, the job list is asked for an equivalent job created since just
before the lost request (the clocks may differ); only when none is listed is it sent again.
"""

from __future__ import annotations

import collections
import datetime
import logging
import threading
import typing as t
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from singer_sdk.authenticators import BearerTokenAuthenticator

from tap_demandbase.errors import ApiRequestError, AuthError
from tap_demandbase.model import CALLS_FOR, JobState, ReuseRule
from tap_demandbase.records.kinds import Kind
from tap_demandbase.transport import Transport, add_secrets

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    import requests

    from tap_demandbase.dialects.base import ConnectOptions
    from tap_demandbase.engine.clock import Clock
    from tap_demandbase.model import JobSpec, JobStatus
    from tap_demandbase.transport import ErrorClassifier

logger = logging.getLogger("tap-demandbase.api")

#: A create whose answer was lost may have created a job up to this long before the client's
#: clock said it sent the request (clocks differ): such a job is looked for before a retry.
LOST_CREATE_CLOCK_MARGIN = datetime.timedelta(minutes=2)


class InvalidJobJson(ApiRequestError):
    """An answer that should describe a job is not one the tap can read."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail or message


def json_shape(value: t.Any) -> str:
    """Return what a parsed JSON answer is, in words for an error line ("a JSON array")."""
    if value is None:
        return "no JSON value (an empty body or null)"
    if isinstance(value, bool):
        return "a JSON boolean"
    if isinstance(value, (int, float)):
        return "a JSON number"
    if isinstance(value, str):
        return "a JSON string"
    if isinstance(value, list):
        return "a JSON array" if value else "an empty JSON array"
    return "a JSON object" if value else "an empty JSON object"


def unexpected_answer(what: str, endpoint: str, got: str, expected: str) -> ApiRequestError:
    """Return the one-line error for a 200 answer that is not the JSON the dialect reads:
    ``what`` the tap asked, at ``endpoint`` (method and path), ``got`` what came back.
    """
    msg = (
        f"The Demandbase API answered {what} ({endpoint}) with {got}, not {expected}: the tap "
        "cannot read it. The state is kept: run the tap again, and report this to Demandbase "
        "support if it persists."
    )
    return ApiRequestError(msg)


def array_in(body: t.Any, key: str, *, what: str, endpoint: str, expected: str) -> list[t.Any]:
    """Return the array an answer holds at ``key``; when the answer is not an object with
    one there, the one-line error saying what came back instead.
    """
    entries = body.get(key) if isinstance(body, dict) else None
    if isinstance(entries, list):
        return entries
    if not isinstance(body, dict):
        got = json_shape(body)
    elif key in body:
        got = f"'{key}' as {json_shape(entries)}"
    else:
        got = f"a JSON object without '{key}'"
    raise unexpected_answer(what, endpoint, got, expected)


@dataclass(frozen=True)
class JobEndpoint:
    """A dialect's job resource: where jobs are created (a job's status is at ``{path}/{id}``)
    and how an answer reads as a job; the verbs every dialect sends to it alike.
    """

    transport: Transport
    path: str
    #: (parsed JSON answer, what was asked) → the job; InvalidJobJson when it is not one.
    parse: Callable[[t.Any, str], JobStatus]
    #: The engine's clock: when a create was sent, for the look-up after a lost answer.
    clock: Clock

    def create(
        self,
        body: dict[str, t.Any],
        *,
        spec: JobSpec,
        rule: ReuseRule | None,
        what: str,
        find: Callable[[JobSpec, ReuseRule], JobStatus | None],
    ) -> JobStatus:
        """POST a create (retried like every request); before sending it again after a lost
        answer, return the job that POST may have created, if ``find`` lists it.
        """
        sent_at: list[datetime.datetime] = []

        def lost_create_job() -> JobStatus | None:
            since = sent_at[-1] - LOST_CREATE_CLOCK_MARGIN
            admitted = rule or ReuseRule()
            if admitted.created_after is not None:
                since = max(since, admitted.created_after)
            job = find(spec, replace(admitted, created_after=since))
            if job is not None:
                logger.warning(
                    "The answer to %s was lost, but the job it created is listed: using job %s "
                    "instead of creating another",
                    what,
                    job.id,
                )
            return job

        def attempt() -> JobStatus:
            if sent_at and (job := lost_create_job()):
                return job
            sent_at.append(self.clock.now())
            status, answer = self.transport.request_json_once(
                "POST", self.path, json=body, what=what
            )
            try:
                return self.parse(answer, what)
            except InvalidJobJson as exc:
                if job := lost_create_job():
                    return job
                msg = (
                    f"{what} answered {status} without a readable export job ({exc.detail}), "
                    "and no job it may have created is listed. Run the tap again: a job that "
                    "was created is re-used then."
                )
                raise ApiRequestError(msg, status=status) from None

        return self.transport.retried(attempt, what=what)

    def status(self, job_id: str) -> JobStatus:
        """GET one job's status."""
        what = f"reading export job {job_id}"
        _, body = self.transport.request_json("GET", f"{self.path}/{job_id}", what=what)
        return self.parse(body, what)

    def readable(self, entries: Iterable[t.Any], what: str) -> Iterator[tuple[t.Any, JobStatus]]:
        """Yield each entry of a job list with its job; an entry that is not a job the tap
        can read is skipped (one DEBUG line).
        """
        for entry in entries:
            try:
                yield entry, self.parse(entry, what)
            except InvalidJobJson as exc:
                logger.debug("Skipped an entry of the job list: %s", exc)


class JobListing:
    """Chooses the job to re-use among those a dialect lists, while listing is possible.

    Listing only serves re-use: if the token may not list jobs (403) or the API has no job list
    (404), the tap says so once and goes on without it.
    """

    def __init__(self) -> None:
        self.unavailable = False

    def preferred(self, candidates: Callable[[], Iterable[JobStatus]]) -> JobStatus | None:
        """Return the preferred of the jobs ``candidates`` lists (completed first, then
        processing, then the newest), or None when there is none or listing is not possible.
        """
        if self.unavailable:
            return None
        try:
            found = list(candidates())
        except (ApiRequestError, AuthError) as exc:
            if exc.status not in (403, 404):
                raise
            self.unavailable = True
            logger.warning(
                "Listing export jobs is not possible (%s); going on without it: a job created "
                "by a run that died before recording it cannot be re-used",
                exc.status,
            )
            return None
        return max(found, key=_preference, default=None)


def _preference(job: JobStatus) -> tuple[bool, bool, datetime.datetime]:
    """Rank equivalent jobs for re-use: completed first, then processing, then the newest."""
    oldest = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    return (
        job.state is JobState.COMPLETED,
        job.state is JobState.PROCESSING,
        job.created_at or oldest,
    )


class CallCounter:
    """Counts a run's API requests per endpoint (retries and refused calls included), as the
    dialect names its endpoints: for the run's summary line, and against daily budgets.
    """

    def __init__(self, endpoint_of: Callable[[str, str], str | None]) -> None:
        #: (method, URL path without trailing slash) → the endpoint's name, None: not counted.
        self._endpoint_of = endpoint_of
        self._counts: collections.Counter[str] = collections.Counter()
        self._by_stream: dict[str | None, collections.Counter[str]] = {}
        self._lock = threading.Lock()

    def count(self, endpoint: str) -> None:
        """Count one call, against the stream the thread works for (``CALLS_FOR``)."""
        with self._lock:
            self._counts[endpoint] += 1
            self._by_stream.setdefault(CALLS_FOR.get(), collections.Counter())[endpoint] += 1

    def by_stream(self) -> dict[str | None, dict[str, int]]:
        """Return the calls made per stream and endpoint."""
        with self._lock:
            return {stream: dict(counts) for stream, counts in self._by_stream.items()}

    def count_request(self, method: str, url: str) -> None:
        """Count one API request by the endpoint its method and path name."""
        endpoint = self._endpoint_of(method, urlsplit(url).path.rstrip("/"))
        if endpoint is not None:
            self.count(endpoint)

    def get(self, endpoint: str) -> int:
        """Return the calls made to one endpoint."""
        with self._lock:
            return self._counts[endpoint]


#: The field type words (lower case) → value kinds, shared by the dialects: the APIs' type
#: words are free text and tenants add custom fields, so types are matched by family of
#: names; any other word is read as a string, with a warning.
FIELD_TYPES: dict[str, Kind] = {
    **dict.fromkeys(
        ("string", "text", "id", "reference", "picklist", "email", "url", "phone"), Kind.STRING
    ),
    **dict.fromkeys(("integer", "int", "long", "bigint"), Kind.INTEGER),
    **dict.fromkeys(("number", "float", "double", "decimal", "currency", "percent"), Kind.NUMBER),
    **dict.fromkeys(("boolean", "bool"), Kind.BOOLEAN),
    "date": Kind.DATE,
    **dict.fromkeys(("datetime", "date-time", "timestamp"), Kind.DATE_TIME),
}


def dialect_transport(
    api_url: str,
    auth: requests.auth.AuthBase,
    options: ConnectOptions,
    *,
    classify: ErrorClassifier,
    on_send: Callable[[str, str], None],
) -> Transport:
    """Return the transport a dialect connects through: its credentials, error classes and call
    counting, with what the tap decides for every dialect (user agent, stall timeout).
    """
    return Transport(
        api_url,
        auth,
        classify=classify,
        user_agent=options.user_agent,
        download_read_timeout=options.download_stall_seconds,
        on_send=on_send,
    )


def bearer_auth(token: str) -> requests.auth.AuthBase:
    """Return the authentication of a given bearer token (registered for redaction)."""
    add_secrets(token)
    return t.cast("requests.auth.AuthBase", BearerTokenAuthenticator(token=token))


def setting_text(config: Mapping[str, t.Any], name: str) -> str | None:
    """Return a text setting of a dialect's typed options (None: not set, or empty)."""
    value = config.get(name)
    return str(value) if value else None
