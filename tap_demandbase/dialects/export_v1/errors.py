"""The export_v1 error answers: what a pipeline operator can act on, in one line."""

from __future__ import annotations

import re
import typing as t

from tap_demandbase.errors import (
    ApiRequestError,
    AuthError,
    DemandbaseError,
    QuotaExceededError,
    TransientApiError,
    UnknownFieldsError,
)
from tap_demandbase.transport import api_message, retry_after_seconds

if t.TYPE_CHECKING:
    import requests


def classify_error(response: requests.Response, what: str) -> DemandbaseError:
    """Return the error a pipeline operator can act on, for an answer of 400 or more."""
    status = response.status_code
    message = api_message(response)
    if status == 401:
        msg = (
            f"The Demandbase API refused the access token (401 on {what}): it is missing, wrong "
            "or expired. Set a valid token in the access_token setting "
            "(TAP_DEMANDBASE_ACCESS_TOKEN)."
        )
        return AuthError(msg, status=401)
    if status == 403:
        msg = (
            f"The Demandbase API denied {what} (403: {message}). Ask your Demandbase admin to "
            "grant the token's user the Data Export permission."
        )
        return AuthError(msg, status=403)
    if status == 429 and (
        _is_quota_answer(response, message) or retry_after_seconds(response) is None
    ):
        return QuotaExceededError(quota_message(response, message))
    if status == 429 or status >= 500:
        return TransientApiError(
            f"{what} answered {status}: {message}", retry_after=retry_after_seconds(response)
        )
    msg = f"The Demandbase API rejected {what} ({status}): {message}"
    unknown = unknown_fields(message) if status == 400 else ()
    if unknown:
        msg += ". The catalog names fields the API no longer has: run --discover again."
        return UnknownFieldsError(msg, unknown, status=status)
    return ApiRequestError(msg, status=status)


#: How the API's 400 names the fields an entity does not have (its ``invalid_field`` answer).
_UNKNOWN_FIELDS = re.compile(r"Unknown field(?:s|\(s\))? for entity [^:]+: (.+)", re.IGNORECASE)


def unknown_fields(message: str) -> tuple[str, ...]:
    """Return the fields a 400 says the entity does not have (none: another 400)."""
    match = _UNKNOWN_FIELDS.search(message)
    if match is None:
        return ()
    return tuple(name.strip() for name in match.group(1).split(",") if name.strip())


def _is_quota_answer(response: requests.Response, message: str) -> bool:
    """Tell the daily-quota 429 (never retried) from a rate limit (retried only when the
    server says when: the contract's 429 is the quota, and a blind retry loop spends it).
    """
    return "quota" in message.lower() or "quota" in response.text.lower()[:500]


def quota_message(response: requests.Response, message: str) -> str:
    """Say that the quota is spent and when it comes back."""
    resets_at = None
    try:
        body = response.json()
        if isinstance(body, dict):
            resets_at = body.get("resets_at") or body.get("resetsAt")
    except ValueError:
        pass
    when = resets_at or "at the next midnight UTC"
    return (
        f"The Demandbase daily export quota is spent ({message}); it resets {when}. "
        "Everything extracted so far is kept in the emitted state: run the tap again after the "
        "reset and it continues from there."
    )
