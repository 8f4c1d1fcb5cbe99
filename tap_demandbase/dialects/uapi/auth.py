"""The uapi authentication: OAuth client credentials for Demandbase's production API, or a
given access token.

One access token per run, kept in memory only: Demandbase asks clients to re-use their token
(minting one per request "might trigger abuse protection") and to renew it only within 15
minutes of its expiry or after a 401. The tap renews it within min(15 minutes, half its
lifetime) of expiry, and once after a 401 (the transport then sends the request again; a
second 401 is an error naming the credentials). Neither the secret nor a token ever reaches a
log (both are registered for redaction), and both go to the API's own host only: the token
request, like every request that carries a credential, never follows a redirect.
"""

from __future__ import annotations

import logging
import threading
import typing as t

import requests
from typing_extensions import override

from tap_demandbase.dialects.common import bearer_auth, json_shape, unexpected_answer
from tap_demandbase.errors import ApiRequestError, AuthError, ConfigError
from tap_demandbase.transport import CredentialedSession, add_secrets, redact

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from tap_demandbase.dialects.uapi.settings import UapiOptions
    from tap_demandbase.engine.clock import Clock

logger = logging.getLogger("tap-demandbase.http")

TOKEN_PATH = "/auth/v1/token"
#: Renew a token this long before it expires at the latest (Demandbase's advice), or at half
#: its lifetime for a shorter-lived one.
RENEW_BEFORE_EXPIRY_SECONDS = 15 * 60.0
#: ``expiresIn`` when the answer has none (the official SDK's default).
DEFAULT_LIFETIME_SECONDS = 3600.0
#: Tries of one token request when the endpoint fails in a way worth another try (5xx, 429,
#: a broken connection); a refusal of the credentials is never tried again.
TOKEN_TRIES = 3
TOKEN_RETRY_WAIT_SECONDS = 2.0
#: What a token answer that is not JSON reads as.
NOT_JSON = object()


class _NoAmbientCredentials(requests.auth.AuthBase):
    """Keep requests from adding ~/.netrc credentials to the token request."""

    @override
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        return request


class ClientCredentials(requests.auth.AuthBase):
    """Authenticates API requests with a bearer token got from client credentials."""

    def __init__(
        self,
        api_url: str,
        client_id: str,
        client_secret: str,
        *,
        user_agent: str,
        on_token_request: Callable[[], None] = lambda: None,
        clock: Clock,
        timeout: tuple[float, float] = (15.0, 60.0),
    ) -> None:
        self.token_url = api_url.rstrip("/") + TOKEN_PATH
        self._client_id = client_id
        self._client_secret = client_secret
        add_secrets(client_secret)
        self._on_token_request = on_token_request
        #: The engine's clock: the token's age, and the waits between token requests.
        self._clock = clock
        self._timeout = timeout
        self._session = CredentialedSession()
        self._session.auth = _NoAmbientCredentials()
        self._session.headers["User-Agent"] = user_agent
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    @override
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._current_token()}"
        return request

    def access_token(self) -> str:
        """Return the current token, getting one if there is none (the connection test proves
        the client credentials with it).
        """
        return self._current_token()

    def renew(self) -> bool:
        """Get a new token after the API refused the current one (a 401); True: send again."""
        with self._lock:
            self._token = self._requested_token(why="the API refused the current one")
        return True

    def _current_token(self) -> str:
        """Return the token, getting a new one when there is none or it expires soon."""
        with self._lock:
            if self._token is None or self._clock.monotonic() >= self._renew_at:
                why = "" if self._token is None else "the current one expires soon"
                self._token = self._requested_token(why=why)
            return self._token

    def _requested_token(self, *, why: str) -> str:
        """POST the client credentials (the documented JSON body) and return the token."""
        body = {
            "grantType": "client_credentials",
            "clientId": self._client_id,
            "clientSecret": self._client_secret,
        }
        for attempt in range(1, TOKEN_TRIES + 1):
            self._on_token_request()
            sent = self._clock.monotonic()
            try:
                response = self._session.post(self.token_url, json=body, timeout=self._timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = type(exc).__name__
            else:
                with response:
                    if response.status_code == 200:
                        return self._accepted(response, sent, why)
                    if response.status_code < 500 and response.status_code != 429:
                        raise _refused(response)
                    problem = f"{response.status_code}: {_error_text(response)}"
            if attempt < TOKEN_TRIES:
                wait = TOKEN_RETRY_WAIT_SECONDS * 2 ** (attempt - 1)
                logger.warning(
                    "Getting an access token failed (%s); retrying in %.0fs", problem, wait
                )
                self._clock.sleep(wait)
        msg = (
            f"Gave up getting an access token from {self.token_url} after {TOKEN_TRIES} tries "
            f"({redact(problem)}). Check api_url and the network to Demandbase, then run again: "
            "the emitted state is intact."
        )
        raise ApiRequestError(msg)

    def _accepted(self, response: requests.Response, sent: float, why: str) -> str:
        """Read a token answer; schedule its renewal."""
        try:
            answer = response.json()
        except ValueError:
            answer = NOT_JSON
        token = answer.get("accessToken") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            got = "a body that is not JSON" if answer is NOT_JSON else json_shape(answer)
            if isinstance(answer, dict):
                got = "a JSON object without an 'accessToken'"
            raise unexpected_answer(
                "the token request", f"POST {TOKEN_PATH}", got, "an object with an accessToken"
            )
        add_secrets(token)
        lifetime = answer.get("expiresIn") if isinstance(answer, dict) else None
        if not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool) or lifetime <= 0:
            lifetime = DEFAULT_LIFETIME_SECONDS
        margin = min(RENEW_BEFORE_EXPIRY_SECONDS, lifetime / 2)
        self._renew_at = sent + lifetime - margin
        if why:
            logger.info("Renewed the access token (%s); valid for %.0fs", why, lifetime)
        else:
            logger.debug("Got an access token, valid for %.0fs", lifetime)
        return token


def _error_text(response: requests.Response) -> str:
    """Return an error answer's code and message, whatever its body looks like."""
    try:
        body = response.json()
    except ValueError:
        return redact((response.text or response.reason or "").strip()[:200])
    if isinstance(body, dict):
        code = body.get("errorCode")
        message = body.get("errorMessage") or body.get("status") or body.get("message") or ""
        return redact(f"{code}: {message}" if code else str(message) or str(body)[:200])
    return redact(str(body)[:200])


def _refused(response: requests.Response) -> AuthError:
    """Return the error for client credentials the token endpoint refused (not retried)."""
    msg = (
        f"Demandbase's token endpoint refused the client credentials ({response.status_code} "
        f"{_error_text(response)}). Check the client_id and client_secret settings "
        "(TAP_DEMANDBASE_CLIENT_ID, TAP_DEMANDBASE_CLIENT_SECRET): an API client of your "
        "Demandbase tenant with the Data Export API enabled."
    )
    return AuthError(msg, status=response.status_code)


def auth_from_settings(
    settings: UapiOptions,
    api_url: str,
    *,
    user_agent: str,
    on_token_request: Callable[[], None],
    clock: Clock,
) -> requests.auth.AuthBase:
    """Return the authentication the settings give: client credentials (``client_id`` and
    ``client_secret``), else a given ``access_token``; or fail saying what to set.
    """
    client_id, secret = settings.client_id, settings.client_secret
    if client_id and secret:
        return ClientCredentials(
            api_url,
            client_id,
            secret,
            user_agent=user_agent,
            on_token_request=on_token_request,
            clock=clock,
        )
    if settings.access_token:
        return bearer_auth(settings.access_token)
    missing = "client_secret" if client_id else "client_id"
    msg = (
        f"Setting {missing} is required with api_dialect=uapi: set client_id and "
        "client_secret (TAP_DEMANDBASE_CLIENT_ID, TAP_DEMANDBASE_CLIENT_SECRET) to a "
        "Demandbase API client with the Data Export API, or give an access_token."
    )
    raise ConfigError(msg)
