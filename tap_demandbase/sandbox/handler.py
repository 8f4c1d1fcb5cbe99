"""What both sandbox HTTP servers share: request parsing, recording, JSON answers, fault hooks.

The API and the download host differ in routes and error dialect (JSON vs. S3-style XML), so each
subclasses :class:`SandboxHandler` and implements :meth:`~SandboxHandler.route` and
:meth:`~SandboxHandler.send_problem`; everything else (reading the body, logging the request,
injecting ``http_errors`` and ``json_answers``) lives here once. ``api.py`` adds what every
emulator's API host shares.
"""

from __future__ import annotations

import json
import logging
import socketserver
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from typing_extensions import override

from tap_demandbase.sandbox.log import RecordedRequest, RequestLog
from tap_demandbase.sandbox.settings import CommonSettings

logger = logging.getLogger(__name__)

#: Paths under this prefix are the sandbox's own controls; they are not recorded.
ADMIN_PREFIX = "/_sandbox/"


class SandboxServer(ThreadingHTTPServer):
    """A threading HTTP server that carries the live settings and the shared request log."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[SandboxHandler],
        *,
        name: str,
        settings: CommonSettings,
        log: RequestLog,
    ) -> None:
        self.name = name
        self.settings = settings
        self.log = log
        super().__init__(address, handler)

    @override
    def server_bind(self) -> None:
        """Bind without ``HTTPServer``'s reverse DNS lookup, which can stall for seconds."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    @property
    def url(self) -> str:
        """Return ``http://host:port`` of the bound socket."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class SandboxHandler(BaseHTTPRequestHandler):
    """Base request handler: parses and records each request, then calls :meth:`route`.

    HTTP/1.1 keep-alive is on, as with real services, so every answer carries a Content-Length
    and a handler that wants to drop the connection (``cut_downloads``) says so explicitly.
    """

    protocol_version = "HTTP/1.1"
    server_version = "DemandbaseSandbox/1.0"
    sys_version = ""
    server: SandboxServer

    url_path = ""
    query: dict[str, str]
    body = b""
    json_body: object = None
    _record = False  # whether this request goes to the log (not before it is parsed)
    _answered = False  # whether the status line has been sent

    def do_GET(self) -> None:
        """Answer GET (all methods share one dispatcher; routes check the method)."""
        self._dispatch()

    def do_HEAD(self) -> None:
        """Answer HEAD."""
        self._dispatch()

    def do_POST(self) -> None:
        """Answer POST."""
        self._dispatch()

    def do_DELETE(self) -> None:
        """Answer DELETE."""
        self._dispatch()

    def do_PUT(self) -> None:
        """Answer PUT (always refused, but recorded)."""
        self._dispatch()

    def do_PATCH(self) -> None:
        """Answer PATCH (always refused, but recorded)."""
        self._dispatch()

    @property
    def settings(self) -> CommonSettings:
        """Return the live settings."""
        return self.server.settings

    def route(self) -> None:
        """Answer the parsed request (``url_path``, ``query``, ``body``, ``json_body``)."""
        raise NotImplementedError

    def send_problem(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        """Answer with an error in this server's dialect (``code`` is snake_case)."""
        self.send_json(status, {"error": code, "message": message}, headers)

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        self.url_path = split.path
        self.query = dict(parse_qsl(split.query, keep_blank_values=True))
        self._record = not self.url_path.startswith(ADMIN_PREFIX)
        self._answered = False
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self.send_problem(400, "invalid_request", "Content-Length is not a valid length")
            return
        self.body = self.rfile.read(length) if length else b""
        try:
            self.json_body = json.loads(self.body) if self.body else None
        except ValueError:
            self.json_body = None
        try:
            self.route()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            logger.exception(
                "sandbox %s failed on %s %s", self.server.name, self.command, self.path
            )
            if self._answered:  # the answer had begun: the connection is unusable
                self.close_connection = True
            else:
                self.send_problem(500, "internal_error", "The sandbox failed; see its log")
        finally:
            self._record = False  # a later unparsable request on this connection is not logged

    @override
    def send_response(self, code: int, message: str | None = None) -> None:
        """Record the request (once, before the client can see the answer), then answer."""
        if self._record and not self._answered:
            self.server.log.append(
                RecordedRequest(
                    server=self.server.name,
                    method=self.command,
                    path=self.url_path,
                    query=dict(self.query),
                    has_authorization=self.headers.get("Authorization") is not None,
                    body=self.json_body,
                    status=code,
                )
            )
        self._answered = True
        super().send_response(code, message)

    def send_body(
        self, status: int, content_type: str, data: bytes, headers: dict[str, str] | None = None
    ) -> None:
        """Send a complete response with ``data`` as its body (none for HEAD)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(
        self, status: int, payload: object, headers: dict[str, str] | None = None
    ) -> None:
        """Send ``payload`` as a JSON response."""
        self.send_body(status, "application/json", json.dumps(payload).encode(), headers)

    def injected_fault(self, endpoint: str) -> bool:
        """Answer with the ``http_errors`` fault for ``endpoint`` if one is due; say whether."""
        if self.settings.consume("http_errors_after", endpoint):
            return False  # one of the calls let through first
        if not self.settings.consume("http_errors", endpoint):
            return False
        status = self.settings.http_error_status
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        retry_after = self.settings.http_error_retry_after
        location = self.settings.http_error_location
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        if location is not None:
            headers["Location"] = location.rstrip("/") + self.path
        self.send_fault(
            status,
            phrase.lower().replace(" ", "_").replace("-", "_"),
            f"Simulated {status} {phrase} from the sandbox ({endpoint})",
            headers,
        )
        return True

    def injected_answer(self, endpoint: str) -> bool:
        """Answer 200 with the ``json_answers`` value for ``endpoint``, if any; say whether."""
        answers = self.settings.json_answers
        if endpoint not in answers:
            return False
        self.send_json(200, answers[endpoint])
        return True

    def send_fault(self, status: int, code: str, message: str, headers: dict[str, str]) -> None:
        """Answer an injected ``http_errors`` fault (JSON ``error``/``message`` by default)."""
        self.send_json(status, {"error": code, "message": message}, headers or None)

    @override
    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: the request log, not stderr, is how the sandbox reports traffic."""
