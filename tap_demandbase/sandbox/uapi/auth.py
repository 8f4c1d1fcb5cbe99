"""OAuth client credentials for the uapi dialect: issuing access tokens and checking them.

``POST /auth/v1/token`` trades ``uapi_client_id``/``uapi_client_secret`` for a bearer token that
expires after ``uapi_token_ttl_seconds``. Tokens look like JWTs (three base64url segments) but
carry nothing a client may rely on; only this issuer knows which are valid. The sandbox's static
``token`` is accepted as well and never expires (the tap's ``access_token`` setting).
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import threading
import time

from tap_demandbase.sandbox.uapi.settings import UapiSettings


def _segment(payload: object) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class TokenIssuer:
    """The tokens one sandbox issued, with their expiry (epoch seconds)."""

    def __init__(self, settings: UapiSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}

    def credentials_match(self, client_id: str, client_secret: str) -> bool:
        """Return whether the pair is the configured client (compared in constant time)."""
        settings = self._settings
        same_id = hmac.compare_digest(client_id.encode(), settings.uapi_client_id.encode())
        same_secret = hmac.compare_digest(
            client_secret.encode(), settings.uapi_client_secret.encode()
        )
        return same_id and same_secret

    def issue(self) -> tuple[str, int]:
        """Return a new access token and its lifetime in seconds (``expiresIn``)."""
        lifetime = self._settings.uapi_token_ttl_seconds
        now = time.time()
        claims = {"sub": self._settings.uapi_client_id, "iat": int(now), "exp": int(now) + lifetime}
        token = ".".join(
            (
                _segment({"alg": "HS256", "typ": "JWT"}),
                _segment(claims),
                secrets.token_urlsafe(32),
            )
        )
        with self._lock:
            self._expiry[token] = now + lifetime
        return token, lifetime

    def accepts(self, token: str) -> bool:
        """Return whether ``token`` is the static token or an issued, unexpired, unrevoked one."""
        if hmac.compare_digest(token.encode(), self._settings.token.encode()):
            return True
        with self._lock:
            expiry = self._expiry.get(token)
        return expiry is not None and time.time() < expiry

    def revoke(self, token: str) -> None:
        """Make an issued ``token`` invalid from now on (the ``uapi_expire_next_tokens`` fault)."""
        with self._lock:
            if token in self._expiry:
                self._expiry[token] = 0.0
