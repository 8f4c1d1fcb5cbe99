"""The API host every emulator runs: what the dialects' servers and handlers share.

An emulator subclasses :class:`ApiServer` (how it describes its jobs, anything it keeps beyond
the job store) and :class:`ApiHandler` (its routes, in :meth:`ApiHandler.route_api`, and its
error body, in ``send_problem``). This module serves what is the same for all of them: the
sandbox's own controls under ``/_sandbox/`` (no auth, not recorded) -- ``GET /_sandbox/requests``,
``GET /_sandbox/jobs``, ``GET``/``POST /_sandbox/settings`` (POST a JSON object of knobs) and
``POST /_sandbox/reset`` (forgets the request log, every job and the counters; knobs stay as they
are) -- so a demo or benchmark in another process can steer the sandbox; the answer to a create
whose answer is lost (``lose_create_answers``); pre-signed result URLs (``expire_next_urls``);
and :class:`ApiError`, a refusal in the dialect's own error body.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Generic, TypeVar

from typing_extensions import override

from tap_demandbase.sandbox.files import UrlSigner, part_path
from tap_demandbase.sandbox.handler import ADMIN_PREFIX, SandboxHandler, SandboxServer
from tap_demandbase.sandbox.jobs import JobStore
from tap_demandbase.sandbox.log import RequestLog
from tap_demandbase.sandbox.settings import CommonSettings

#: An emulator's settings class (a ``CommonSettings`` with its own knobs).
S = TypeVar("S", bound=CommonSettings)


class ApiError(Exception):
    """A request the API refuses: ``status``, the dialect's error ``code`` and a sentence."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class ApiServer(SandboxServer, Generic[S]):
    """An emulator's API server: knows the job store, the URL signer and the download host.

    A subclass names its settings class as the type parameter and its request handler in
    ``handler_class``.
    """

    handler_class: ClassVar[type[ApiHandler[Any]]]
    settings: S

    def __init__(
        self,
        address: tuple[str, int],
        *,
        settings: S,
        log: RequestLog,
        store: JobStore,
        signer: UrlSigner,
        files_url: str,
    ) -> None:
        self.store = store
        self.signer = signer
        self.files_url = files_url
        super().__init__(address, self.handler_class, name="api", settings=settings, log=log)

    def describe_jobs(self) -> list[dict[str, object]]:
        """Return every job as this dialect's API describes it, oldest first."""
        raise NotImplementedError

    def credentials(self) -> dict[str, str]:
        """Return what a client needs to call this API (name -> value, for the command line)."""
        return {"token": self.settings.token}

    def usage_counts(self) -> dict[str, int]:
        """Return today's calls per endpoint, for an API that counts them (else empty)."""
        return {}

    def set_usage_counts(self, counts: dict[str, int]) -> None:
        """Make ``counts`` today's calls per endpoint, for an API that counts them."""
        raise NotImplementedError(f"the {self.settings.dialect} emulator counts no calls")

    def signed_url(self, job_id: str, part: int, base_url: str | None = None) -> str:
        """Return a pre-signed URL of a result part on the download host (``base_url``: the
        host's URL, or a path on it to start from), already expired if a fault is due.
        """
        expires = int(time.time() + self.settings.url_ttl_seconds)
        if self.settings.consume("expire_next_urls"):
            expires = int(time.time()) - 60
        return self.signer.url(base_url or self.files_url, part_path(job_id, part), expires)

    def reset(self) -> None:
        """Forget the request log, every job and the quota counters (``POST /_sandbox/reset``)."""
        self.log.clear()
        self.store.reset()


class ApiHandler(SandboxHandler, Generic[S]):
    """Routes one API request: the sandbox's controls, or the dialect's routes."""

    server: ApiServer[S]

    @property
    @override
    def settings(self) -> S:
        """Return the live settings, with the emulator's own knobs."""
        return self.server.settings

    @override
    def route(self) -> None:
        """Serve ``/_sandbox/`` controls; hand anything else to :meth:`route_api`."""
        try:
            if self.url_path.startswith(ADMIN_PREFIX):
                self.serve_admin()
            else:
                self.route_api()
        except ApiError as problem:
            self.send_problem(problem.status, problem.code, problem.message)

    def route_api(self) -> None:
        """Answer a request of the dialect's API (raise :class:`ApiError` to refuse it)."""
        raise NotImplementedError

    def serve_admin(self) -> None:
        """Serve the sandbox controls (for demos and benchmarks in another process)."""
        route = (self.command, self.url_path.removeprefix(ADMIN_PREFIX))
        server = self.server
        if route == ("GET", "requests"):
            self.send_json(200, {"requests": [r.to_json() for r in server.log.entries()]})
        elif route == ("GET", "jobs"):
            self.send_json(200, {"jobs": server.describe_jobs()})
        elif route == ("GET", "settings"):
            self.send_json(200, self.settings.to_json())
        elif route == ("POST", "settings"):
            if not isinstance(self.json_body, dict):
                self.send_problem(400, "invalid_request", "POST a JSON object of settings")
                return
            try:
                self.settings.update(self.json_body)
            except ValueError as exc:
                self.send_problem(400, "invalid_setting", str(exc))
                return
            self.send_json(200, self.settings.to_json())
        elif route == ("POST", "reset"):
            server.reset()
            self.send_json(200, {"reset": True})
        else:
            self.send_problem(404, "not_found", f"No such sandbox control: {self.url_path}")

    def lost_create_answer(self) -> bool:
        """Answer a create that did create its job as ``lost_create_answer`` says, if a
        ``lose_create_answers`` fault is due; say whether.
        """
        if not self.settings.consume("lose_create_answers"):
            return False
        kind = self.settings.lost_create_answer
        if kind == "html":
            page = b"<html><body><h1>Service temporarily unavailable</h1></body></html>"
            self.send_body(200, "text/html; charset=utf-8", page)
        elif kind == "empty":
            self.send_body(202, "application/json", b"")
        else:
            status = self.settings.http_error_status
            self.send_problem(
                status, "internal_error", f"Simulated {status} after the job was created"
            )
        return True
