"""Sandbox: the API server and the download host, started together; the emulators' registry.

``EMULATORS`` names the API server of each ``dialect``, and ``SandboxSettings`` inherits each
emulator's settings class, so one settings object carries every knob. Both servers run in daemon
threads of the calling process, on free ports unless the settings name them, and share one
request log, one job store and one temporary directory of result files (removed by
:meth:`Sandbox.stop`). The download host listens on a second loopback address
(``127.0.0.2``) so that a client mixing up the two hosts fails loudly; where that address cannot
be bound (macOS), it falls back to ``127.0.0.1`` on its own port.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from typing_extensions import override

from tap_demandbase.sandbox.api import ApiServer
from tap_demandbase.sandbox.data import Filters, iter_rows
from tap_demandbase.sandbox.entities import ENTITIES
from tap_demandbase.sandbox.export_v1.server import ExportV1Server
from tap_demandbase.sandbox.export_v1.settings import ExportV1Settings
from tap_demandbase.sandbox.files import FilesServer, UrlSigner
from tap_demandbase.sandbox.jobs import JobStore
from tap_demandbase.sandbox.log import RecordedRequest, RequestLog
from tap_demandbase.sandbox.settings import check_choice
from tap_demandbase.sandbox.uapi.server import UapiServer
from tap_demandbase.sandbox.uapi.server import expected_rows as uapi_expected_rows
from tap_demandbase.sandbox.uapi.settings import UapiSettings

#: The API server of each ``dialect`` (the knob's accepted values, in this order).
EMULATORS: dict[str, type[ApiServer[Any]]] = {"export_v1": ExportV1Server, "uapi": UapiServer}


@dataclass
class SandboxSettings(UapiSettings, ExportV1Settings):
    """Every knob of the sandbox: the common ones (``settings.py``) and each emulator's own.

    The bases are the settings classes of ``EMULATORS``; fields and docs come from them.
    """

    @override
    def validate(self) -> None:
        """Check every knob, and that ``dialect`` names an emulator."""
        check_choice("dialect", self.dialect, tuple(EMULATORS))
        super().validate()


class Sandbox:
    """A running emulator of the Demandbase Data Export API.

    Use as a context manager (``with Sandbox(settings) as sb: ...``) or call :meth:`start` and
    :meth:`stop`. ``settings`` stays live: change knobs on it between calls.
    """

    def __init__(self, settings: SandboxSettings | None = None) -> None:
        self.settings = settings if settings is not None else SandboxSettings()
        self.settings.validate()
        self.log = RequestLog()
        self._signer = UrlSigner()
        self._directory: Path | None = None
        self._store: JobStore | None = None
        self._api: ApiServer[Any] | None = None
        self._files: FilesServer | None = None
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> Sandbox:
        """Bind both servers and serve them in daemon threads; return self."""
        if self._api is not None:
            raise RuntimeError("the sandbox is already running")
        settings = self.settings
        self._directory = Path(tempfile.mkdtemp(prefix="demandbase-sandbox-"))
        self._store = store = JobStore(settings, self._directory)
        try:
            self._files = self._bind_files(store)
            with _naming_the_address("API", settings.host, settings.port):
                self._api = EMULATORS[settings.dialect](
                    (settings.host, settings.port),
                    settings=settings,
                    log=self.log,
                    store=store,
                    signer=self._signer,
                    files_url=self._files.url,
                )
        except BaseException:
            self.stop()
            raise
        for server in (self._api, self._files):
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"demandbase-sandbox-{server.name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def _bind_files(self, store: JobStore) -> FilesServer:
        settings = self.settings

        def bind(host: str) -> FilesServer:
            return FilesServer(
                (host, settings.files_port),
                settings=settings,
                log=self.log,
                signer=self._signer,
                resolve=store.part_file,
            )

        with _naming_the_address("download host", "127.0.0.1", settings.files_port):
            try:
                return bind(settings.files_host)
            except OSError:
                if settings.files_host == "127.0.0.1":
                    raise
                return bind("127.0.0.1")

    def stop(self) -> None:
        """Stop both servers and the job workers, and delete the result files."""
        servers = [s for s in (self._api, self._files) if s is not None]
        # shutdown() waits out a poll interval (stopping both at once halves the wait), and
        # would wait forever for a server whose serve_forever() never ran: only if started.
        stoppers = [threading.Thread(target=s.shutdown) for s in servers if self._threads]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for server in servers:
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._store is not None:
            self._store.close()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
        self._api = self._files = self._store = self._directory = None
        self._threads = []

    @property
    def api_url(self) -> str:
        """Return the API's base URL, e.g. ``http://127.0.0.1:8734``."""
        return self._running()[0].url

    @property
    def files_url(self) -> str:
        """Return the download host's base URL, e.g. ``http://127.0.0.2:41234``."""
        return self._running()[1].url

    @property
    def token(self) -> str:
        """Return the bearer token the API accepts (in the uapi dialect: one that never expires)."""
        return self.settings.token

    @property
    def dialect(self) -> str:
        """Return the API dialect served: ``export_v1`` or ``uapi``."""
        return self.settings.dialect

    @property
    def client_id(self) -> str:
        """Return the client id the uapi token endpoint accepts."""
        return self.settings.uapi_client_id

    @property
    def client_secret(self) -> str:
        """Return the client secret the uapi token endpoint accepts."""
        return self.settings.uapi_client_secret

    def credentials(self) -> dict[str, str]:
        """Return what a client needs to call the API (``token``; uapi: the client's too)."""
        return self._running()[0].credentials()

    def usage(self) -> dict[str, int]:
        """Return today's uapi calls per endpoint (create, status, list, fields, token); today
        is the ``today`` knob's day, else the clock's.
        """
        return self._running()[0].usage_counts()

    def set_usage(self, counts: dict[str, int]) -> None:
        """Make ``counts`` today's uapi calls per endpoint (``POST /_sandbox/usage``)."""
        self._running()[0].set_usage_counts(counts)

    def reset(self) -> None:
        """Forget the request log, every job and the call counters (``POST /_sandbox/reset``)."""
        self._running()[0].reset()

    def requests(self) -> list[RecordedRequest]:
        """Return a copy of the requests both servers answered, oldest first."""
        return self.log.entries()

    def reset_log(self) -> None:
        """Forget the requests recorded so far."""
        self.log.clear()

    def jobs(self) -> list[dict[str, object]]:
        """Return the JSON of every job, as the API's dialect would, in creation order."""
        api, _ = self._running()
        return api.describe_jobs()

    def expected_rows(
        self,
        entity: str,
        *,
        date_field: str | None = None,
        start: str | date | None = None,
        end: str | date | None = None,
        account_list_id: str | None = None,
    ) -> list[dict[str, str | None]]:
        """Return every field's raw CSV cell (None = empty) of the rows such an export returns.

        Uses the live settings and the very generator and filters the API uses, in export order:
        every field of the live catalogue (``added_fields``, ``removed_fields``), the rows the
        change knobs leave.
        """
        names = self.settings.catalogue_entity(ENTITIES[entity]).field_names
        filters = Filters(date_field, _as_date(start), _as_date(end), account_list_id)
        return [
            dict(zip(names, row, strict=True))
            for row in iter_rows(self.settings, entity, names, filters)
        ]

    def expected_uapi_rows(self, body: dict[str, object]) -> list[dict[str, str | None]]:
        """Return the rows a uapi job with ``body`` exports: original field name -> raw cell.

        Uses the live settings, the uapi request validation and the very generator of a job.
        """
        return uapi_expected_rows(self.settings, body)

    def _running(self) -> tuple[ApiServer[Any], FilesServer]:
        if self._api is None or self._files is None:
            raise RuntimeError("the sandbox is not running; call start() or use it in a with block")
        return self._api, self._files


class AddressInUseError(OSError):
    """A server of the sandbox cannot listen on its address (another program holds the port,
    say); the message names the server and the address.
    """


@contextlib.contextmanager
def _naming_the_address(server: str, host: str, port: int) -> Iterator[None]:
    """Turn a failed bind into an AddressInUseError that names the server and its address."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, AddressInUseError):
            raise
        reason = exc.strerror or str(exc)
        msg = f"the sandbox's {server} cannot listen on {host}:{port} ({reason})"
        raise AddressInUseError(exc.errno, msg) from exc


def _as_date(value: str | date | None) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value
