"""Errors a pipeline operator can act on.

Every error here carries one complete sentence: what went wrong and what to do. The CLI prints
it as a single log line and exits non-zero instead of dumping a traceback, because the person
reading it runs a pipeline, not this code.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from tap_demandbase.transport import Retry


class DemandbaseError(Exception):
    """Base of all errors the tap reports as one line."""


class ConfigError(DemandbaseError):
    """The configuration is wrong; nothing was sent to the API."""


class AuthError(DemandbaseError):
    """The API refused the credentials (401) or the permission (403)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class QuotaExceededError(DemandbaseError):
    """The daily export quota is spent; nothing more can be exported until it resets."""


class ApiRequestError(DemandbaseError):
    """The API rejected a request (400, 404, 409) or kept failing after retries."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UnknownFieldsError(ApiRequestError):
    """The API refused a job naming fields it does not have (any more): ``api_names`` are the
    fields its answer names, as the API names them (the engine drops them from the job, if it
    may, and creates it again).
    """

    def __init__(self, message: str, api_names: t.Sequence[str], status: int = 400) -> None:
        super().__init__(message, status=status)
        self.api_names = tuple(api_names)


class PartNotFoundError(ApiRequestError):
    """The API says a result part is not there (its download answered "not found")."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=404)


class RedirectRefusedError(DemandbaseError):
    """The API answered a request carrying a credential with a redirect, which the tap never
    follows: api_url is not the API's own address (or something between rewrites it).
    """


class TransientApiError(DemandbaseError):
    """A 5xx or 429-without-quota answer that is worth retrying.

    ``retry`` says how often and after what waits (None: as every request); ``exhausted`` is
    the error to raise once those tries are spent (None: the transport's "Gave up" line).
    """

    def __init__(
        self,
        message: str,
        retry_after: float | None = None,
        *,
        retry: Retry | None = None,
        exhausted: DemandbaseError | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.retry = retry
        self.exhausted = exhausted


class JobSlotBusyError(DemandbaseError):
    """The API refused a new job because another one runs (its limit of jobs at once): the
    create is tried again later, not counted as a failure.
    """


class ExpiredLocationError(DemandbaseError):
    """A pre-signed result URL was refused (expired): only the API can give a fresh one."""


class ExportJobError(DemandbaseError):
    """An export job ended failed or cancelled, or did not finish in time."""


class BadStateError(DemandbaseError):
    """A value in the input state cannot be read (it names the stream and the state key)."""


class MalformedResultError(DemandbaseError):
    """A result part cannot be read as the CSV the schema describes."""


class TargetGoneError(DemandbaseError):
    """The target stopped reading the tap's output (broken pipe): nothing more can be sent."""


class InconsistentResultError(MalformedResultError):
    """A job's result disagrees with what the job reported about it (size, row count)."""


def quoted(value: object, limit: int = 60) -> str:
    """Return a bad value as an error line quotes it: its repr, cut to ``limit`` characters."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


#: Errors after which no stream of the run can succeed (a spent quota or daily limit, refused
#: credentials, bad settings, a redirect of api_url): the run stops, with state kept.
RUN_STOPPING_ERRORS = (QuotaExceededError, AuthError, ConfigError, RedirectRefusedError)
