"""The uapi error answers: what a pipeline operator can act on, in one line, with the
API's errorCode, errorMessage and diagnosticCode.
"""

from __future__ import annotations

import datetime
import typing as t
from urllib.parse import urlsplit

from tap_demandbase.dialects.uapi.usage import CALLS, DAILY_LIMITS, CallUsage, budgeted_endpoint
from tap_demandbase.errors import (
    ApiRequestError,
    AuthError,
    DemandbaseError,
    JobSlotBusyError,
    QuotaExceededError,
    TransientApiError,
    UnknownFieldsError,
)
from tap_demandbase.transport import Retry, redact, retry_after_seconds

if t.TYPE_CHECKING:
    import requests

    from tap_demandbase.engine.clock import Clock

#: A 429-100 is tried once more, after a short wait: Demandbase answers it for a momentary
#: limit, and for an endpoint's spent daily limit too, where every retry is one more refused
#: call. A second one stops the run.
RATE_LIMIT_RETRY = Retry(total=1, backoff_factor=3.0, jitter=False)


def _error_body(response: requests.Response) -> tuple[str, str, str]:
    """Return (errorCode, errorMessage, diagnosticCode) of an error answer ('' when absent);
    the gateway's ``{"status": ...}`` and non-JSON bodies give their text as the message.
    """
    try:
        body = response.json()
    except ValueError:
        return "", redact((response.text or response.reason or "").strip()[:300]), ""
    if not isinstance(body, dict):
        return "", redact(str(body)[:300]), ""
    code = str(body.get("errorCode") or "")
    message = body.get("errorMessage") or body.get("status") or body.get("message") or ""
    return code, redact(str(message)[:500]), str(body.get("diagnosticCode") or "")


#: The start of a 400-115 errorMessage, before the names of the invalid fields.
_INVALID_FIELDS = "invalid field names:"


def invalid_field_names(response: requests.Response) -> tuple[str, ...]:
    """Return the fields a 400-115 names (``Invalid field names: {Account}.a, {Account}.b``),
    read from the whole errorMessage (the one shown in lines is cut); none if it names none.
    """
    try:
        body = response.json()
    except ValueError:
        return ()
    message = body.get("errorMessage") if isinstance(body, dict) else None
    if not isinstance(message, str):
        return ()
    start = message.lower().find(_INVALID_FIELDS)
    if start < 0:
        return ()
    names = message[start + len(_INVALID_FIELDS) :]
    return tuple(name.strip() for name in names.split(",") if name.strip())


#: What a 403 errorCode says the tenant's Export Collection lacks (any other 403: a permission
#: of the API key set).
_NOT_IN_COLLECTION = {
    "403-101": "this entity type",
    "403-103": "anything (no Export Collection is enabled)",
    "403-104": "these fields",
}


def _denial(code: str) -> str:
    """Say what a 403 lacks, by Demandbase's errorCode, and what to do."""
    missing = _NOT_IN_COLLECTION.get(code)
    if missing is None:
        return (
            "the API key set lacks the Data Export permission. Ask your Demandbase admin to "
            "grant it to the key set of client_id (or of the access token)."
        )
    return (
        f"the tenant's Export Collection does not include {missing}. Deselect what it does "
        "not include (run --discover again), or ask your Demandbase admin."
    )


def classify_error(
    response: requests.Response,
    what: str,
    *,
    renewable: bool,
    clock: Clock,
    usage: CallUsage | None = None,
) -> DemandbaseError:
    """Return the error a pipeline operator can act on, for an answer of 400 or more; every
    line shows the API's errorCode, errorMessage and diagnosticCode. ``usage``: this run's
    calls, which can tell that a 429-100 is an endpoint's spent daily limit.
    """
    status = response.status_code
    code, message, diagnostic = _error_body(response)
    shown = ", ".join(
        part
        for part in (
            f"{status} {code}".strip() if code else str(status),
            message,
            f"diagnosticCode {diagnostic}" if diagnostic else "",
        )
        if part
    )
    if status == 401:
        credentials = (
            "after renewing the access token once. Check the client_id and client_secret settings"
            if renewable
            else "Check the access_token setting (or use client_id and client_secret)"
        )
        return AuthError(
            f"The Demandbase API refused the credentials on {what} ({shown}), {credentials}.",
            status=401,
        )
    if status == 403:
        return AuthError(f"The Demandbase API denied {what} ({shown}): {_denial(code)}", status=403)
    if status == 429 and code == "429-101":
        msg = (
            f"The Demandbase export quota is spent ({shown}). No further job is created in "
            "this run; everything extracted so far is kept in the emitted state: run the tap "
            "again once the quota has reset (a rolling 24 hours)."
        )
        return QuotaExceededError(msg)
    if status == 429 and code == "429-102":
        return JobSlotBusyError(f"another export job runs in the tenant ({shown})")
    if status == 429 and code == "429-100":
        return _rate_limited(response, what, shown, usage, clock)
    if status == 429 or status >= 500:
        return TransientApiError(f"{what} answered {shown}")
    if code == "400-115":
        msg = (
            f"The Demandbase API rejected {what}: invalid field names ({shown}). The catalog is "
            "likely stale (fields were removed or renamed): run --discover again."
        )
        return UnknownFieldsError(msg, invalid_field_names(response), status=status)
    if code == "400-147" and "accountIds" in message:
        msg = (
            f"The Demandbase API rejected {what} ({shown}): this tenant does not accept "
            "accountIds, which the published request schema does not list either, so the "
            "buying-group streams cannot be exported by account. Deselect buying_groups and "
            "buying_group_members, or remove buying_group_account_ids."
        )
        return ApiRequestError(msg, status=status)
    return ApiRequestError(f"The Demandbase API rejected {what} ({shown})", status=status)


def _rate_limited(
    response: requests.Response, what: str, shown: str, usage: CallUsage | None, clock: Clock
) -> DemandbaseError:
    """Return the error of a 429-100: worth one more try (RATE_LIMIT_RETRY), unless this run's
    own calls have spent the endpoint's daily limit; the run stops when that try fails too.
    """
    request = response.request
    endpoint = (
        budgeted_endpoint(request.method or "", urlsplit(request.url or "").path.rstrip("/"))
        if request
        else None
    )
    spent = QuotaExceededError(_daily_limit_message(response, endpoint, what, shown, clock.now()))
    if endpoint is not None and usage is not None and usage.spent(endpoint):
        return spent
    return TransientApiError(
        f"{what} answered {shown}",
        retry_after=retry_after_seconds(response),
        retry=RATE_LIMIT_RETRY,
        exhausted=spent,
    )


def _daily_limit_message(
    response: requests.Response,
    endpoint: str | None,
    what: str,
    shown: str,
    now: datetime.datetime,
) -> str:
    """Say which endpoint's daily limit is spent, and when it resets: when the answer says
    (Retry-After), else at the next midnight UTC, when Demandbase's daily limits reset.
    """
    wait = retry_after_seconds(response)
    now = now.astimezone(datetime.timezone.utc)
    resets = (
        now + datetime.timedelta(seconds=wait)
        if wait is not None
        else datetime.datetime.combine(now.date() + datetime.timedelta(days=1), datetime.time())
    )
    limit = (
        f"The Demandbase API's daily limit of {DAILY_LIMITS[endpoint]:,} {CALLS[endpoint]}"
        if endpoint is not None
        else "A daily call limit of the Demandbase API"
    )
    return (
        f"{limit} is spent ({what} answered {shown}); it resets at "
        f"{resets:%Y-%m-%dT%H:%M:%S}Z. No further call is made in this run; "
        "everything extracted so far is kept in the emitted state: run the tap again after "
        "the reset."
    )
