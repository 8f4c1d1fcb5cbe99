"""A completed job's result parts: each downloaded whole to a spool file before it is read.

Spooling (instead of parsing the socket) keeps memory flat however large a part is, lets a
broken transfer resume with an HTTP Range request instead of re-emitting records, and checks
the byte count before a single record of the part is emitted.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import logging
import os
import shutil
import tempfile
import threading
import time
import typing as t
import zlib
from dataclasses import dataclass
from pathlib import Path

from tap_demandbase.engine.background import run_in_background
from tap_demandbase.engine.jobs import human_bytes
from tap_demandbase.errors import (
    ApiRequestError,
    ExpiredLocationError,
    InconsistentResultError,
    MalformedResultError,
    PartNotFoundError,
)
from tap_demandbase.model import BrokenTransferError

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import Future

    from tap_demandbase.model import ExportApi, JobStatus, PartBody, PartLocation


class PartOpener(t.Protocol):
    """Opens a streaming download of one result part (the transport, for every dialect): the
    engine sees its status, headers and bytes, never the HTTP library.
    """

    def open_location(
        self, location: PartLocation, *, what: str, headers: dict[str, str] | None = None
    ) -> PartBody:
        """Return the part's body, streaming (from ``Range``, if given)."""
        ...


#: The most bytes of a part read at once: small, so that what arrived before a transfer
#: broke off is kept.
CHUNK_SIZE = 1 << 14
PROGRESS_EVERY_SECONDS = 15.0
MAX_RESUMES = 5
#: A transfer that brings fewer bytes than this in ``stall_seconds`` is broken (and resumed).
STALL_MIN_BYTES = 1024
#: Seconds without ``STALL_MIN_BYTES`` after which a transfer is broken, unless the run says
#: otherwise (the default of download_stall_seconds).
DEFAULT_STALL_SECONDS = 60.0
SPOOL_PREFIX = "tap-demandbase-"
_GZIP_MAGIC = b"\x1f\x8b"


class StalledTransferError(Exception):
    """A download that still trickles but makes no real progress."""


_BROKEN_TRANSFER = (BrokenTransferError, StalledTransferError)


def remove_stale_spools(root: str | None = None) -> None:
    """Remove the spool folders of runs that died without cleaning up (SIGKILL, OOM).

    Each folder is named after its process, so a folder whose process is gone holds customer
    rows nobody will read.
    """
    base = Path(root or tempfile.gettempdir())
    for folder in base.glob(f"{SPOOL_PREFIX}*-*"):
        pid = folder.name[len(SPOOL_PREFIX) :].split("-", 1)[0]
        if folder.is_dir() and pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


_STALE_REMOVED: list[bool] = []


def _remove_stale_spools_once() -> None:
    if not _STALE_REMOVED:
        _STALE_REMOVED.append(True)
        remove_stale_spools()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _private_file(path: Path) -> t.BinaryIO:
    """Open a new spool file readable by this user only (0600): it holds customer rows."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, "w+b")


@dataclass(frozen=True)
class DownloadedPart:
    """A result part on local disk, complete and checked (decompressed if it came gzip)."""

    number: int
    path: Path
    size: int
    #: The bytes as the server sent them (a gzip body's compressed size); None: ``size``.
    served_size: int | None = None


class ResultParts:
    """Downloads the parts of one completed job, one at a time, into a private spool folder.

    A job that does not say how many parts its result has lists only the first: the next ones
    are downloaded in turn until the API says there is no such part, or one repeats the part
    before it byte for byte (an API that ignores the part number).
    """

    def __init__(
        self,
        api: ExportApi,
        opener: PartOpener,
        job: JobStatus,
        logger: logging.Logger,
        *,
        skip: set[int] | None = None,
        stall_seconds: float = DEFAULT_STALL_SECONDS,
    ) -> None:
        self.api = api
        self.opener = opener
        self.stall_seconds = stall_seconds
        self.job = job
        self.logger = logger
        self.skip = skip or set()
        self.bytes_downloaded = 0
        #: The bytes of all parts once read: decoded, and as the server sent them (gzip).
        self.total_size = self.served_size = 0
        #: Parts downloaded and handed out by this run (those in ``skip`` are not).
        self.parts_read = 0
        self._locations = {loc.number: loc for loc in api.part_locations(job)}
        self._listed = frozenset(self._locations)
        self._last_listed = max(self._listed, default=0)
        self._open_ended = api.unlisted_part(job, self._last_listed + 1) is not None
        self._count: int | None = None if self._open_ended else len(self._listed)
        self._digests: dict[int, bytes] = {}
        self._refresh_lock = threading.Lock()

    @property
    def count(self) -> int | None:
        """Return how many parts the job's result has (0: an empty result); None while the
        job has not said and the API has not yet answered that the next part is not there.
        """
        return self._count

    @property
    def count_text(self) -> str:
        """Return the part count as progress lines show it ("?" while it is not known)."""
        return "?" if self._count is None else str(self._count)

    def __iter__(self) -> Iterator[DownloadedPart]:
        """Yield each part on disk (but those in ``skip``), downloading the next one while the
        consumer reads this one; a part's file is deleted once the consumer asks for the next.
        """
        numbers = self._numbers()
        _remove_stale_spools_once()
        with tempfile.TemporaryDirectory(
            prefix=f"{SPOOL_PREFIX}{os.getpid()}-", ignore_cleanup_errors=True
        ) as folder:
            spool = Path(folder)
            upcoming = self._prefetch(next(numbers, None), spool)
            total = served = 0
            while upcoming is not None:
                number, download = upcoming
                part = self._found(number, download)
                if part is None:
                    break
                upcoming = self._prefetch(next(numbers, None), spool)
                total += part.size
                served += part.size if part.served_size is None else part.served_size
                self.parts_read += 1
                try:
                    yield part
                finally:
                    part.path.unlink(missing_ok=True)
            self.total_size, self.served_size = total, served

    def _numbers(self) -> Iterator[int]:
        """Yield the numbers of the parts to download, in order, but those in ``skip``: the
        listed ones, then, when the job did not say how many there are, each next one.
        """
        for number in itertools.count(1):
            unlisted = number > self._last_listed
            if unlisted and not self._open_ended:
                return
            if (unlisted or number in self._listed) and number not in self.skip:
                yield number

    def _found(self, number: int, download: Future[DownloadedPart]) -> DownloadedPart | None:
        """Return the downloaded part; None when it is past the end of a result whose job did
        not say how many parts it has (the count is then known). A listed part that is not
        there raises: the result is broken.
        """
        try:
            part = download.result()
        except PartNotFoundError:
            if number in self._listed:
                raise
            self._ended(number, "is not there")
            return None
        previous = self._digests.get(number - 1)
        if previous is not None and previous == self._digests.get(number):
            part.path.unlink(missing_ok=True)
            self._ended(number, f"repeats part {number - 1} byte for byte")
            return None
        return part

    def _ended(self, number: int, why: str) -> None:
        """Take the parts before ``number`` as the whole result (the job did not say)."""
        self._count = number - 1
        self.logger.info(
            "Export job %s did not say how many parts its result has: it has %d (part %d %s)",
            self.job.id, self._count, number, why,
        )  # fmt: skip

    def _prefetch(
        self, number: int | None, spool: Path
    ) -> tuple[int, Future[DownloadedPart]] | None:
        """Start downloading part ``number``, if there is one to download."""
        if number is None:
            return None
        path = spool / f"{self.job.id}-part-{number}.csv"
        name = f"download-{self.job.id}-{number}"
        return number, run_in_background(name, lambda: self.download(number, path))

    def download(self, number: int, path: Path) -> DownloadedPart:
        """Download one part to ``path``, resuming a broken transfer where the server allows.

        The bytes are spooled exactly as sent (not decoded), so that Range offsets count what
        the server counts; a gzip body (Content-Encoding or a gzip file) is decompressed after.
        """
        started = time.monotonic()
        size = 0
        expected: int | None = None
        with _private_file(path) as out:
            for attempt in range(MAX_RESUMES + 1):
                headers = {"Range": f"bytes={size}-"} if size else None
                response = self._open(number, headers, resumed=attempt > 0)
                with response:
                    if size and response.status != 206:
                        # The server ignored the Range: start the part over.
                        out.seek(0)
                        out.truncate()
                        size = 0
                    if expected is None or not size:
                        expected = _expected_total(response, size)
                    try:
                        size = self._copy(response, out, number, size, expected, started)
                    except _BROKEN_TRANSFER as exc:
                        size = out.tell()  # what did arrive is kept: resume after it
                        self.logger.warning(
                            "Part %d of %s broke off after %s (%s); resuming (%d/%d)",
                            number, self.job.id, human_bytes(size), _reason(exc),
                            attempt + 1, MAX_RESUMES,
                        )  # fmt: skip
                        continue
                if _complete(out, size, expected):
                    break
                self.logger.warning(
                    "Part %d of %s ended at %s of %s%s; resuming (%d/%d)",
                    number, self.job.id, human_bytes(size), human_bytes(expected),
                    "" if expected else " without a complete last line",
                    attempt + 1, MAX_RESUMES,
                )  # fmt: skip
            else:
                msg = (
                    f"Part {number} of export job {self.job.id} could not be downloaded whole "
                    f"({human_bytes(size)} of {human_bytes(expected)} after {MAX_RESUMES} "
                    "resumes). Check the network to Demandbase's download host and run again."
                )
                raise ApiRequestError(msg)
            out.flush()
        self.bytes_downloaded += size
        decoded = self._gunzipped(number, path)
        if self._open_ended:
            self._digests[number] = _digest(path)
        self.logger.info(
            "Downloaded part %d/%s of %s: %s in %.1fs",
            number, self.count_text, self.job.id, human_bytes(decoded),
            time.monotonic() - started,
        )  # fmt: skip
        return DownloadedPart(number=number, path=path, size=decoded, served_size=size)

    def _open(self, number: int, headers: dict[str, str] | None, *, resumed: bool) -> PartBody:
        """Open a part; a pre-signed URL refused as expired is replaced once by a fresh one
        (one status call), and a second refusal fails the stream with its ledger kept. A part
        gone while it was being downloaded (``resumed``) is a broken result, not its end.
        """
        what = f"downloading part {number} of export job {self.job.id}"
        try:
            return self._open_once(number, headers, what)
        except PartNotFoundError as exc:
            if not resumed:
                raise
            msg = f"{exc} (it was there when its download began)"
            raise ApiRequestError(msg, status=404) from None

    def _open_once(self, number: int, headers: dict[str, str] | None, what: str) -> PartBody:
        try:
            return self.opener.open_location(self._location(number), what=what, headers=headers)
        except ExpiredLocationError:
            self.logger.info("%s: the result URL expired; asking the API for a fresh one", what)
            with self._refresh_lock:
                fresh = {loc.number: loc for loc in self.api.part_locations(self.job, fresh=True)}
                self._locations.update(fresh)
            if number in self._listed and number not in fresh:
                msg = f"{what}: the API no longer lists this part. Run the tap again."
                raise ApiRequestError(msg) from None
            return self.opener.open_location(self._location(number), what=what, headers=headers)

    def _location(self, number: int) -> PartLocation:
        """Return where part ``number`` is: as listed, else where the API would have it."""
        location = self._locations.get(number) or self.api.unlisted_part(self.job, number)
        if location is None:
            msg = f"Export job {self.job.id} lists no part {number}. Run the tap again."
            raise ApiRequestError(msg)
        return location

    def _gunzipped(self, number: int, path: Path) -> int:
        """Decompress a spooled gzip body in place (streaming); return the part's size."""
        while _starts_with_gzip(path):
            plain = path.with_suffix(".plain")
            try:
                with gzip.open(path, "rb") as source, _private_file(plain) as target:
                    shutil.copyfileobj(source, target, 1 << 20)
            except (OSError, EOFError, zlib.error) as exc:
                plain.unlink(missing_ok=True)
                msg = (
                    f"Part {number} of export job {self.job.id} is gzip-compressed but does not "
                    f"decompress ({exc}). Run the tap again; report the job if it persists."
                )
                raise MalformedResultError(msg) from exc
            os.replace(plain, path)
        return path.stat().st_size

    def check_total_size(self) -> None:
        """Fail when the parts' bytes disagree with the job's ``file_size_bytes``: a part cut
        at a line end, with no length to tell, leaves a well-formed but short result.

        The size is the file the server holds, so gzip parts are counted as they were sent
        (compressed); a server that reports the decoded size instead is believed too.
        """
        expected = self.job.file_size_bytes
        sizes = {self.served_size, self.total_size}
        if expected is not None and not self.skip and expected not in sizes:
            held = f"{self.total_size} bytes"
            if self.served_size != self.total_size:
                held += f" ({self.served_size} bytes as sent, gzip-compressed)"
            msg = (
                f"The parts of export job {self.job.id} hold {held} but the job reported "
                f"file_size_bytes={expected}: the result is incomplete. The bookmark was not "
                "advanced: the next run exports this window again with a new job."
            )
            raise InconsistentResultError(msg)

    def _copy(
        self,
        response: PartBody,
        out: t.BinaryIO,
        number: int,
        size: int,
        expected: int | None,
        started: float,
    ) -> int:
        """Append the part's body, as sent, to ``out``; log progress on long downloads, and give
        up on a transfer that trickles slower than STALL_MIN_BYTES per ``stall_seconds``.
        """
        last_log = window_start = time.monotonic()
        window_bytes = 0
        for chunk in response.chunks:
            out.write(chunk)
            size += len(chunk)
            window_bytes += len(chunk)
            now = time.monotonic()
            if now - window_start >= self.stall_seconds:
                if window_bytes < STALL_MIN_BYTES:
                    msg = f"{window_bytes} bytes in the last {self.stall_seconds:g}s"
                    raise StalledTransferError(msg)
                window_start, window_bytes = now, 0
            if now - last_log >= PROGRESS_EVERY_SECONDS:
                last_log = now
                self.logger.info(
                    "Downloading part %d/%s of %s: %s of %s, %.1f MiB/s",
                    number, self.count_text, self.job.id, human_bytes(size), human_bytes(expected),
                    size / (1 << 20) / max(now - started, 1e-6),
                )  # fmt: skip
        return size


def _reason(exc: BaseException) -> str:
    """Name a broken transfer's cause for the log (no URL: urllib3 messages carry them)."""
    if isinstance(exc, StalledTransferError):
        return f"stalled: {exc}"
    return str(exc) or type(exc).__name__


def _digest(path: Path) -> bytes:
    """Return the SHA-256 of a spooled part (to tell a part that repeats the one before)."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(1 << 20):
            digest.update(block)
    return digest.digest()


def _starts_with_gzip(path: Path) -> bool:
    with path.open("rb") as head:
        return head.read(2) == _GZIP_MAGIC


def _complete(out: t.BinaryIO, size: int, expected: int | None) -> bool:
    """Whether the spooled part is whole: its announced length, else a complete last line
    (or a gzip body, whose own end marker is checked when it is decompressed).
    """
    if expected is not None:
        return size >= expected
    if size == 0:
        return True
    out.seek(0)
    head = out.read(2)
    out.seek(size - 1)
    last = out.read(1)
    out.seek(size)
    return head == _GZIP_MAGIC or last == b"\n"


def _expected_total(response: PartBody, offset: int) -> int | None:
    """Return the full size of the part from Content-Range or Content-Length, if given."""
    content_range = response.headers.get("Content-Range", "")
    if "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None
