"""HTTP for every API dialect: one authenticated session for the API, one bare session for
pre-signed download hosts, retries for what is transient, one-line errors for the rest.

Two sessions, not one, because credentials must never reach a host other than the API's: the
pre-signed host gets requests from a session that has no credentials at all, and a request that
carries a credential never follows a redirect (``CredentialedSession``: a redirect is an error
naming both hosts, except where the caller follows it itself, without credentials). What an
error answer means is the dialect's to say (``classify``), and so is how often it is worth
another try (the ``Retry`` a ``TransientApiError`` carries); how a request is authenticated
(and a token renewed) is its ``auth``.
"""

from __future__ import annotations

import collections
import email.utils
import logging
import random
import re
import socket
import threading
import time
import typing as t
from dataclasses import dataclass
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests
import urllib3
from typing_extensions import override

from tap_demandbase.config import is_loopback
from tap_demandbase.engine.results import CHUNK_SIZE, DEFAULT_STALL_SECONDS
from tap_demandbase.errors import (
    ApiRequestError,
    DemandbaseError,
    ExpiredLocationError,
    PartNotFoundError,
    RedirectRefusedError,
    TransientApiError,
)
from tap_demandbase.model import BrokenTransferError, PartBody

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from tap_demandbase.model import PartLocation

#: A dialect's reading of an error answer (status >= 400): the error to raise, in its words.
ErrorClassifier = t.Callable[[requests.Response, str], "DemandbaseError"]

logger = logging.getLogger("tap-demandbase.http")

#: Redirects followed from the download endpoint to the file (object stores may add hops).
MAX_REDIRECT_HOPS = 5

#: Network failures that are worth another try.
RETRIABLE_EXCEPTIONS = (
    TransientApiError,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class _NoCredentials(requests.auth.AuthBase):
    """Strip any Authorization header, and keep requests from adding one from ~/.netrc."""

    @override
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        return request


class CredentialedSession(requests.Session):
    """A session for requests that carry a credential (a token, a client secret): it never
    follows a redirect, so that the credential goes to the host it was meant for and nowhere
    else (requests would re-send a 307/308's body, a secret included, to any ``Location``).

    A redirect answer is a ``RedirectRefusedError`` naming both hosts, unless the caller said
    ``allow_redirects=False``: then the answer is its to handle (the download endpoint's
    redirect, followed without credentials).
    """

    @override
    def send(self, request: requests.PreparedRequest, **kwargs: t.Any) -> requests.Response:
        handled_by_caller = kwargs.get("allow_redirects", True) is False
        kwargs["allow_redirects"] = False
        response = super().send(request, **kwargs)
        if is_redirect(response) and not handled_by_caller:
            response.close()
            raise redirect_refused(response)
        return response


def redirect_refused(response: requests.Response) -> RedirectRefusedError:
    """Return the one-line error for a redirect answer to a request that carries a credential."""
    request = response.request
    target = response.headers.get("Location")
    where = f"to {_host_of(urljoin(response.url, target))}" if target else "without a Location"
    msg = (
        f"The API at {_host_of(response.url)} answered {request.method} "
        f"{urlsplit(response.url).path} with {response.status_code}, a redirect {where}: the tap "
        "sends no credential to another address and does not follow it. Check api_url: it must "
        "be the API's own address, one that answers without redirecting."
    )
    return RedirectRefusedError(msg)


def _host_of(url: str) -> str:
    """Return a URL's scheme and host (with its port), nothing that could carry a secret."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


@dataclass(frozen=True)
class Retry:
    """How a failure worth another try is sent again, in the manner of urllib3's ``Retry``:
    ``total`` more tries, the n-th after a wait of up to ``backoff_factor * 2**(n-1)`` seconds
    (drawn at random with ``jitter``, to spread clients apart), at most ``backoff_max``; or
    after the server's Retry-After, when it sent one (at most ``backoff_max`` too).
    """

    total: int = 5
    backoff_factor: float = 1.0
    backoff_max: float = 60.0
    jitter: bool = True

    def wait(self, retry: int, retry_after: float | None = None) -> float:
        """Return the seconds to wait before the ``retry``-th retry (from 1)."""
        if retry_after is not None:
            return min(float(retry_after), self.backoff_max)
        longest = min(self.backoff_max, self.backoff_factor * 2 ** (retry - 1))
        return random.uniform(0, longest) if self.jitter else longest


#: Every API request's retries of a transient failure: 5 more tries, about 15 s in all.
DEFAULT_RETRY = Retry()


def retry_after_seconds(response: requests.Response, now: float | None = None) -> float | None:
    """Return the wait a Retry-After header asks for (seconds or HTTP date), if any."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def api_message(response: requests.Response) -> str:
    """Return the human part of an API error body, whatever the dialect's JSON looks like."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:300]
    if isinstance(body, dict):
        for key in ("message", "errorMessage", "error_message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
    return str(body)[:300]


_QUERY = re.compile(r"(\?|%3[Ff])[^\s'\")<>]*")
_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()


def redact(text: str) -> str:
    """Drop query strings and known secrets from a message.

    A pre-signed URL's signature and the token never reach a log, even when an error body or a
    third-party library (urllib3 at DEBUG) echoes them, URL-encoded or not.
    """
    text = _QUERY.sub("?…", text)
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "…")
    return text


def add_secrets(*values: str) -> None:
    """Register values that must never reach a log (tokens, signature parameters)."""
    with _SECRETS_LOCK:
        _SECRETS.update(value for value in values if len(value) >= 8)


def _redacting_factory(
    factory: t.Callable[..., logging.LogRecord],
) -> t.Callable[..., logging.LogRecord]:
    def make_record(*args: t.Any, **kwargs: t.Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is logging's to report, not ours
            return record
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    make_record.redacting = True  # type: ignore[attr-defined]
    return make_record


def install_log_redaction() -> None:
    """Scrub every log record of every logger in this process, once (``process.py`` calls it).

    A record factory, not a handler filter, so that third-party loggers and handlers added
    later (the SDK's, urllib3's) are covered too.
    """
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "redacting", False):
        logging.setLogRecordFactory(_redacting_factory(factory))


def safe_url(url: str) -> str:
    """Return the URL without its query string: pre-signed signatures never reach a log."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


_T = t.TypeVar("_T")


def failure_reason(exc: BaseException) -> str:
    """Return why a request failed, in a few words: the socket error under requests' and
    urllib3's wrappers (``connection refused``), or the API's answer for a transient one.
    """
    if isinstance(exc, TransientApiError):
        return redact(str(exc))
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for kind, words in _REASONS:
            if isinstance(current, kind):
                return words
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        pending += [a for a in current.args if isinstance(a, BaseException)]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
    return type(exc).__name__


#: Low-level failures as the retry and error lines name them.
_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    (socket.gaierror, "host name not found"),
    (urllib3.exceptions.NameResolutionError, "host name not found"),
    (ConnectionResetError, "connection reset"),
    (requests.exceptions.SSLError, "TLS handshake failed"),
    (TimeoutError, "timed out"),
    (requests.Timeout, "timed out"),
)


def refused_by_this_machine(exc: BaseException) -> bool:
    """Whether a request failed because nothing listens on a loopback address: retrying
    cannot help (a local emulator that is not running, or the wrong port).
    """
    request = getattr(exc, "request", None)
    host = urlsplit(getattr(request, "url", "") or "").hostname
    return (
        isinstance(exc, requests.ConnectionError)
        and host is not None
        and is_loopback(host)
        and failure_reason(exc) == "connection refused"
    )


class Renewable(t.Protocol):
    """Credentials that can be renewed after the API refused them (a token that expired)."""

    def renew(self) -> bool:
        """Get fresh credentials; return whether there is any point in sending again."""
        ...


class Transport:
    """Sends API requests with the dialect's credentials, and fetches pre-signed URLs without."""

    def __init__(
        self,
        base_url: str,
        auth: requests.auth.AuthBase,
        *,
        classify: ErrorClassifier,
        user_agent: str,
        timeout: tuple[float, float] = (15.0, 300.0),
        download_read_timeout: float = DEFAULT_STALL_SECONDS,
        retry: Retry = DEFAULT_RETRY,
        on_send: Callable[[str, str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.download_timeout = (timeout[0], download_read_timeout)
        self.classify = classify
        #: Told (method, URL) of every request sent to the API, retries included (a dialect
        #: whose calls are budgeted counts them).
        self._on_send = on_send or (lambda method, url: None)
        self._api = CredentialedSession()
        self._api.auth = auth
        self._renew: Callable[[], bool] = getattr(auth, "renew", lambda: False)
        self._api.headers["User-Agent"] = user_agent
        self._files = requests.Session()
        self._files.auth = _NoCredentials()
        self._files.headers["User-Agent"] = user_agent
        self._retry = retry
        self._sleep = sleep

    def retried(self, attempt: Callable[[], _T], *, what: str) -> _T:
        """Return what ``attempt`` returns, trying it again after a failure worth another try
        (backoff with jitter, Retry-After, the one-line "Gave up" error); a caller's attempt
        can check before each retry.

        Each failure is tried again as its own ``Retry`` says (a ``TransientApiError`` may
        carry one; else the transport's); once those tries are spent, the error it names is
        raised, else one line saying the tap gave up.
        """
        failures: collections.Counter[Retry] = collections.Counter()
        while True:
            try:
                return attempt()
            except RETRIABLE_EXCEPTIONS as exc:
                if refused_by_this_machine(exc):
                    raise _refused_here(exc, what) from exc
                retry = getattr(exc, "retry", None) or self._retry
                failures[retry] += 1
                tries = sum(failures.values())
                if failures[retry] > retry.total:
                    raise _given_up(exc, what, tries) from exc
                wait = retry.wait(failures[retry], getattr(exc, "retry_after", None))
                logger.warning(
                    "Retrying %s in %.1fs (attempt %d of %d failed: %s)",
                    what, wait, tries, retry.total + 1,
                    failure_reason(exc).removeprefix(f"{what} "),
                )  # fmt: skip
                self._sleep(wait)

    def url(self, path: str) -> str:
        """Return the absolute URL of an API path."""
        return urljoin(self.base_url, path.lstrip("/"))

    def request_json(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: dict[str, t.Any] | None = None,
        json: t.Any = None,
        allow: tuple[int, ...] = (),
    ) -> tuple[int, t.Any]:
        """Send an API request, tried again while it fails in a way worth another try; return
        (status, parsed JSON body or None).
        """
        return self.retried(
            lambda: self.request_json_once(
                method, path, what=what, params=params, json=json, allow=allow
            ),
            what=what,
        )

    def request_json_once(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: dict[str, t.Any] | None = None,
        json: t.Any = None,
        allow: tuple[int, ...] = (),
    ) -> tuple[int, t.Any]:
        """Send one API request, not retried; return (status, parsed JSON body or None). For a
        caller that must look before it sends a request again (a create whose answer was lost
        may have created the job), with ``retried``.
        """
        logger.debug("%s %s", method, path)
        response = self._send(
            method, self.url(path), params=params, json=json, timeout=self.timeout
        )
        with response:
            if response.status_code not in allow:
                self.raise_for_status(response, what)
            try:
                return response.status_code, response.json() if response.content else None
            except ValueError as exc:
                msg = f"{what} answered {response.status_code} with a body that is not JSON"
                raise TransientApiError(msg) from exc

    def _send(self, method: str, url: str, **kwargs: t.Any) -> requests.Response:
        """Send an API request; after a 401, renew the credentials once and send it again."""
        self._on_send(method, url)
        response = self._api.request(method, url, **kwargs)
        if response.status_code == 401 and self._renew():
            response.close()
            self._on_send(method, url)
            response = self._api.request(method, url, **kwargs)
        return response

    def raise_for_status(self, response: requests.Response, what: str) -> None:
        """Raise the dialect's error for an answer of 400 or more."""
        if response.status_code >= 400:
            raise self.classify(response, what)

    def open_location(
        self, location: PartLocation, *, what: str, headers: dict[str, str] | None = None
    ) -> PartBody:
        """Open a result part (see ``_open_location_once``), tried again like any request;
        return it as the engine reads it: status, headers and the body's bytes as sent.
        """
        response = self.retried(
            lambda: self._open_location_once(location, what=what, headers=headers), what=what
        )
        return PartBody(
            status=response.status_code,
            headers=response.headers,
            chunks=_raw_chunks(response),
            close=response.close,
        )

    def _open_location_once(
        self, location: PartLocation, *, what: str, headers: dict[str, str] | None = None
    ) -> requests.Response:
        """Open a result part: a pre-signed URL directly, or an API endpoint (with the
        credentials) whose redirect is followed to the pre-signed URL without them.

        Retried as a whole, so that a pre-signed URL that has expired is replaced by a fresh
        one from the API rather than tried again.
        """
        if not location.with_credentials:
            return self._open_presigned(location.url, what=what, headers=headers)
        response = self._send(
            "GET",
            location.url,
            headers=headers,
            timeout=self.timeout,
            stream=True,
            allow_redirects=False,
        )
        if is_redirect(response):
            target = _redirect_target(response, what)
            response.close()
            # Signed by the API just now: a refusal is transient, and a retry re-signs it.
            return self._open_presigned(target, what=what, headers=headers, signed_by_api=True)
        if response.status_code >= 400:
            with response:
                self._raise_for_part(response, what)
        return response

    def _raise_for_part(self, response: requests.Response, what: str) -> t.NoReturn:
        """Raise the dialect's error for a refused download; "not found" as
        PartNotFoundError, so that the engine can tell a part that is not there.
        """
        error = self.classify(response, what)
        if response.status_code == 404:
            raise PartNotFoundError(str(error)) from None
        raise error

    def _open_presigned(
        self,
        url: str,
        *,
        what: str,
        headers: dict[str, str] | None = None,
        signed_by_api: bool = False,
    ) -> requests.Response:
        """GET a pre-signed URL with the bare session (no token ever goes there), following a
        bounded chain of redirects the same way.
        """
        for _ in range(MAX_REDIRECT_HOPS):
            add_secrets(*(value for _, value in parse_qsl(urlsplit(url).query)))
            logger.debug("GET %s", safe_url(url))
            response = self._files.get(
                url,
                headers=headers,
                timeout=self.download_timeout,
                stream=True,
                allow_redirects=False,
            )
            if not is_redirect(response):
                break
            url = _redirect_target(response, what)
            response.close()
        else:
            msg = f"{what}: more than {MAX_REDIRECT_HOPS} redirects; report this to Demandbase."
            raise ApiRequestError(msg)
        if response.status_code in {401, 403}:
            response.close()
            msg = (
                f"{what}: the pre-signed URL {safe_url(url)} was refused "
                f"({response.status_code}, expired or not valid)"
            )
            raise TransientApiError(msg) if signed_by_api else ExpiredLocationError(msg)
        if response.status_code >= 400:
            with response:
                self._raise_for_part(response, f"{what} (pre-signed download {safe_url(url)})")
        return response


#: How a streaming body's transfer breaks off (its bytes so far are kept, and resumed after).
_BROKEN_TRANSFER = (
    requests.exceptions.ChunkedEncodingError,
    requests.ConnectionError,
    requests.Timeout,
    urllib3.exceptions.HTTPError,
)


def _raw_chunks(response: requests.Response) -> t.Iterator[bytes]:
    """Yield a streaming body's bytes as the server sent them (not decoded: ``Range`` offsets
    count those), CHUNK_SIZE at most at a time; BrokenTransferError when the transfer breaks.
    """
    try:
        while chunk := response.raw.read1(CHUNK_SIZE, decode_content=False):
            yield chunk
    except _BROKEN_TRANSFER as exc:
        raise BrokenTransferError(type(exc).__name__) from exc


def is_redirect(response: requests.Response) -> bool:
    """Whether the answer is a redirect, with a Location header or (wrongly) without one."""
    return response.status_code in {301, 302, 303, 307, 308}


def _given_up(exc: Exception, what: str, tries: int) -> DemandbaseError:
    """Return the error for a request whose tries are spent: the one its last failure names
    (a daily limit spent, say), else one line saying the tap gave up.
    """
    exhausted = getattr(exc, "exhausted", None)
    if isinstance(exhausted, DemandbaseError):
        return exhausted
    msg = (
        f"Gave up on {what} after {tries} tries ({failure_reason(exc)}). Check api_url and the "
        "network to Demandbase, then run again: the emitted state is intact."
    )
    return ApiRequestError(msg)


def _refused_here(exc: Exception, what: str) -> ApiRequestError:
    """Return the error for a request refused by this machine: nothing listens there."""
    url = urlsplit(getattr(getattr(exc, "request", None), "url", "") or "")
    msg = (
        f"Cannot connect to {url.netloc} for {what}: connection refused, nothing listens there. "
        "Check api_url, and that the emulator (or proxy) runs on that port, then run again: the "
        "emitted state is intact."
    )
    return ApiRequestError(msg)


def _redirect_target(response: requests.Response, what: str) -> str:
    """Return where a redirect points, if it is somewhere a download may go (http or https)."""
    location = response.headers.get("Location")
    if not location:
        response.close()
        msg = f"{what} answered {response.status_code} without a Location header; report it."
        raise ApiRequestError(msg)
    target = urljoin(response.url, location)
    scheme = urlsplit(target).scheme
    if scheme not in {"http", "https"}:
        response.close()
        msg = f"{what} redirected to a '{scheme}:' URL, which the tap does not fetch; report it."
        raise ApiRequestError(msg)
    return target
