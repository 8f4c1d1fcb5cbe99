"""A completed job's result parts: each downloaded whole to a spool file before it is read.

Spooling (instead of parsing the socket) keeps memory flat however large a part is, lets a
broken transfer resume with an HTTP Range request instead of re-emitting records, and checks
the byte count before a single record of the part is emitted.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import typing as t
from dataclasses import dataclass
from pathlib import Path

import requests

from tap_demandbase.background import run_in_background
from tap_demandbase.errors import ApiRequestError
from tap_demandbase.jobs import human_bytes

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import Future

    from tap_demandbase.api import ExportApi, JobStatus

CHUNK_SIZE = 1 << 14  # small: what arrives before a connection breaks is kept
PROGRESS_EVERY_SECONDS = 15.0
MAX_RESUMES = 5

_BROKEN_TRANSFER = (
    requests.exceptions.ChunkedEncodingError,
    requests.ConnectionError,
    requests.Timeout,
)


@dataclass(frozen=True)
class DownloadedPart:
    """A result part on local disk, complete and checked."""

    number: int
    path: Path
    size: int


class ResultParts:
    """Downloads the parts of one completed job, one at a time, into a private spool folder."""

    def __init__(
        self,
        api: ExportApi,
        job: JobStatus,
        logger: logging.Logger,
        *,
        skip: set[int] | None = None,
    ) -> None:
        self.api = api
        self.job = job
        self.logger = logger
        self.skip = skip or set()
        self.bytes_downloaded = 0

    @property
    def count(self) -> int:
        """Return how many parts the job's result has: none for an empty result (no rows,
        no parts or file_parts absent), else at least one.
        """
        if self.job.file_parts == 0 or (self.job.file_parts is None and self.job.record_count == 0):
            return 0
        return max(1, self.job.file_parts or 1)

    def __iter__(self) -> Iterator[DownloadedPart]:
        """Yield each part on disk (but those in ``skip``), downloading the next one while the
        consumer reads this one; a part's file is deleted once the consumer asks for the next.
        """
        numbers = [n for n in range(1, self.count + 1) if n not in self.skip]
        with tempfile.TemporaryDirectory(
            prefix="tap-demandbase-", ignore_cleanup_errors=True
        ) as folder:
            spool = Path(folder)
            upcoming = self._prefetch(numbers, 0, spool)
            for index in range(len(numbers)):
                assert upcoming is not None
                part = upcoming.result()
                upcoming = self._prefetch(numbers, index + 1, spool)
                try:
                    yield part
                finally:
                    part.path.unlink(missing_ok=True)

    def _prefetch(
        self, numbers: list[int], index: int, spool: Path
    ) -> Future[DownloadedPart] | None:
        """Start downloading the index-th part to emit, if there is one."""
        if index >= len(numbers):
            return None
        number = numbers[index]
        path = spool / f"{self.job.id}-part-{number}.csv"
        return run_in_background(
            f"download-{self.job.id}-{number}", lambda: self.download(number, path)
        )

    def download(self, number: int, path: Path) -> DownloadedPart:
        """Download one part to ``path``, resuming a broken transfer where the server allows."""
        started = time.monotonic()
        size = 0
        expected: int | None = None
        with path.open("wb") as out:
            for attempt in range(MAX_RESUMES + 1):
                headers = {"Range": f"bytes={size}-"} if size else None
                response = self.api.open_part(self.job, number, headers=headers)
                with response:
                    if size and response.status_code != 206:
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
                            number, self.job.id, human_bytes(size), type(exc).__name__,
                            attempt + 1, MAX_RESUMES,
                        )  # fmt: skip
                        continue
                if expected is None or size >= expected:
                    break
                self.logger.warning(
                    "Part %d of %s ended at %s of %s; resuming (%d/%d)",
                    number, self.job.id, human_bytes(size), human_bytes(expected),
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
            os.fsync(out.fileno())
        self.bytes_downloaded += size
        self.logger.info(
            "Downloaded part %d/%d of %s: %s in %.1fs",
            number, self.count, self.job.id, human_bytes(size), time.monotonic() - started,
        )  # fmt: skip
        return DownloadedPart(number=number, path=path, size=size)

    def _copy(
        self,
        response: requests.Response,
        out: t.BinaryIO,
        number: int,
        size: int,
        expected: int | None,
        started: float,
    ) -> int:
        """Append the response body to ``out``; log progress on long downloads."""
        last_log = time.monotonic()
        for chunk in response.iter_content(CHUNK_SIZE):
            out.write(chunk)
            size += len(chunk)
            now = time.monotonic()
            if now - last_log >= PROGRESS_EVERY_SECONDS:
                last_log = now
                self.logger.info(
                    "Downloading part %d/%d of %s: %s of %s, %.1f MiB/s",
                    number, self.count, self.job.id, human_bytes(size), human_bytes(expected),
                    size / (1 << 20) / max(now - started, 1e-6),
                )  # fmt: skip
        return size


def _expected_total(response: requests.Response, offset: int) -> int | None:
    """Return the full size of the part from Content-Range or Content-Length, if given."""
    content_range = response.headers.get("Content-Range", "")
    if "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None
