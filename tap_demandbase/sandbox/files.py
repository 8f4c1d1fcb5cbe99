r"""Result files: writing an export's CSV parts, and the pre-signed download host serving them.

The download host stands in for the object store (S3, GCS) behind the API's ``302``. Like one,
it knows nothing of the API's bearer token: it trusts only the HMAC signature and expiry in the
URL, and refuses any request that carries an ``Authorization`` header ("Only one auth mechanism
allowed") -- which is how tests prove a tap never leaks its token to it.

Part files are RFC 4180 (``csv`` module, ``\r\n`` line ends, minimal quoting), UTF-8, a header
row in every part, ``rows_per_part`` records each; an export with no rows is one header-only part
(or no part at all, with ``empty_results_have_parts`` off).
Columns are ordered by ``column_order`` (by default the *reverse* of the requested order), so a
client must match columns by header name. ``bom`` puts a UTF-8 byte order mark on part 1 only
(``first``), on every part (``all``), or nowhere (``none``); ``bom_led_rows`` starts every data
row with U+FEFF (data, not a byte order mark) when its first column holds text. The uapi dialect
writes its original field names (``{Account}.id``) in the header and may gzip the parts (same
names, served as is).

Malformed results (the ``malformed`` knob, by entity) damage part 1 only. "Record k" is the
k-th data record of the part. In a damaged part the first three records have any embedded
line breaks replaced by spaces, so that ``csv.reader(...).line_num`` after reading record k is
exactly ``k + 1`` (the header is line 1), or ``k`` with ``no_header``:

============  =======================================================  ==========
defect        what is written                                          line_num
============  =======================================================  ==========
ragged        record 3 gets one extra trailing cell ``unexpected``      4
bad_integer   first integer-typed column (in file order) of record 2   3
              is ``12x``
bad_boolean   first boolean-typed column of record 2 is ``maybe``      3
bad_date      first date-time-typed column of record 2 (else first     3
              date column) is ``2024-13-45T99:00:00Z``
bad_utf8      first string/text column of record 2 has the raw bytes   3
              ``b"\xff\xfe"`` after its first character
no_header     part 1 has no header row; record 1 is line 1             1
duplicate_    the header names its second column like its first        1
header
lax_integer   first integer-typed column of record 2 is ``1_000``      3
week_date     first date-time-typed column of record 2 is              3
              ``2024-W01-1T10:00:00Z`` (an ISO week date)
ragged_       record 3 gets an extra trailing cell and its first       5 (the row
multiline     string/text column holds a line break                    starts on 4)
============  =======================================================  ==========

If part 1 has fewer records than the target, the last record is damaged instead; with no records,
or no column of the needed type among the exported fields, that defect changes nothing.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import hmac
import io
import itertools
import operator
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from typing_extensions import override

from tap_demandbase.sandbox.data import Cell, Filters, iter_rows
from tap_demandbase.sandbox.entities import (
    BOOLEAN_TYPES,
    DATE_TYPES,
    DATETIME_TYPES,
    ENTITIES,
    INTEGER_TYPES,
    NUMBER_TYPES,
    TEXT_TYPES,
    Entity,
)
from tap_demandbase.sandbox.handler import SandboxHandler, SandboxServer
from tap_demandbase.sandbox.log import RequestLog
from tap_demandbase.sandbox.settings import CommonSettings

CHUNK_SIZE = 64 * 1024
_WRITE_BATCH = 10_000  # rows between cancellation checks
_MARKER = "\ue000"  # stands for the raw bytes of the bad_utf8 defect until they are encoded
_BAD_BYTES = b"\xff\xfe"
_HOP_PATH = re.compile(r"^/hop/([0-9]+)(/.*)$")
_PART_PATH = re.compile(r"^/exports/([A-Za-z0-9_-]+)/part-([0-9]+)\.csv$")
#: Types whose cells are not text (``bom_led_rows`` leaves a column of them alone).
_TYPED = INTEGER_TYPES | NUMBER_TYPES | BOOLEAN_TYPES | DATE_TYPES | DATETIME_TYPES


class ExportCancelled(Exception):
    """The job was cancelled while its files were being written; nothing was kept."""


@dataclass(frozen=True)
class ResultFiles:
    """The part files of one export, complete on disk."""

    parts: tuple[Path, ...]
    sizes: tuple[int, ...]
    record_count: int

    @property
    def total_bytes(self) -> int:
        """Return the size of all parts together (the job's ``file_size_bytes``)."""
        return sum(self.sizes)


def column_order(fields: Sequence[str], mode: str) -> list[str]:
    """Return the CSV column order for requested ``fields`` under ``column_order`` ``mode``."""
    return [fields[k] for k in column_positions(fields, mode)]


def column_positions(labels: Sequence[str], mode: str) -> list[int]:
    """Return the indices of ``labels`` in CSV column order under ``column_order`` ``mode``."""
    if mode == "reversed":
        return list(reversed(range(len(labels))))
    if mode == "sorted":
        return sorted(range(len(labels)), key=labels.__getitem__)
    return list(range(len(labels)))


def write_export(
    directory: Path,
    settings: CommonSettings,
    entity: str | Entity,
    fields: Sequence[str],
    filters: Filters,
    *,
    defect: str | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    header: Sequence[str] | None = None,
    compress: bool = False,
    max_rows: int | None = None,
) -> ResultFiles:
    """Write the parts of an export into ``directory`` (created if needed), streaming the rows.

    Memory stays flat: rows go from the generator through ``csv.writer`` to disk in batches.
    The uapi dialect names its columns differently from the generator's fields: ``header``
    (one name per field, same order) is then what the header row says. ``compress`` gzips
    each part (same file name); ``max_rows`` stops after that many rows.

    Raises:
        ExportCancelled: ``cancelled()`` turned true; the parts written so far are deleted.
    """
    directory.mkdir(parents=True, exist_ok=True)
    shown = list(header) if header is not None else list(fields)
    order = column_positions(shown, settings.column_order)
    columns = [fields[k] for k in order]
    labels = [shown[k] for k in order]
    definition = entity if isinstance(entity, Entity) else ENTITIES[entity]
    counter = itertools.count()
    # zip() pulls a row before a number, so next(counter) at the end is the number of rows.
    generated = iter_rows(settings, definition, columns, filters)
    if max_rows is not None:
        generated = itertools.islice(generated, max_rows)
    if settings.bom_led_rows and columns and _holds_text(definition, columns[0]):
        generated = map(_bom_led, generated)
    rows = map(operator.itemgetter(0), zip(generated, counter, strict=False))
    parts: list[Path] = []
    try:
        while True:
            first = next(rows, None)
            if first is None and (parts or not settings.empty_results_have_parts):
                break
            path = directory / f"part-{len(parts) + 1}.csv"
            parts.append(path)
            bom = settings.bom == "all" or (settings.bom == "first" and len(parts) == 1)
            head: list[Sequence[Cell]] = [] if first is None else [first]
            with _open_part(path, compress) as out:
                if bom:
                    out.write("\ufeff")
                writer = csv.writer(out)
                if defect is not None and len(parts) == 1:
                    head += itertools.islice(rows, min(3, settings.rows_per_part) - len(head))
                    _write_damaged(out, definition, columns, head, defect, labels)
                else:
                    writer.writerow(labels)
                    writer.writerows(head)
                remaining = settings.rows_per_part - len(head)
                while remaining > 0:
                    if cancelled():
                        raise ExportCancelled
                    batch = min(remaining, _WRITE_BATCH)
                    writer.writerows(itertools.islice(rows, batch))
                    remaining -= batch
    except BaseException:
        for path in parts:
            path.unlink(missing_ok=True)
        raise
    return ResultFiles(tuple(parts), tuple(p.stat().st_size for p in parts), next(counter))


def _holds_text(entity: Entity, name: str) -> bool:
    """Whether a column holds text: its type is not a number, boolean, date or date-time."""
    field = entity.field(name)
    return field is not None and field.type not in _TYPED


def _bom_led(row: Sequence[Cell]) -> Sequence[Cell]:
    """Return the row with U+FEFF in front of its first cell (``bom_led_rows``)."""
    return ["\ufeff" + (row[0] or ""), *row[1:]]


def _open_part(path: Path, compress: bool) -> io.TextIOWrapper:
    """Open a part file for writing CSV text: plain, or gzip-compressed under the same name."""
    if compress:
        return io.TextIOWrapper(
            io.BufferedWriter(gzip.GzipFile(path, "wb", compresslevel=5), 1 << 20),
            encoding="utf-8",
            newline="",
        )
    return path.open("w", encoding="utf-8", newline="", buffering=1 << 20)


def _write_damaged(
    out: io.TextIOWrapper,
    entity: Entity,
    columns: list[str],
    records: list[Sequence[Cell]],
    defect: str,
    labels: list[str],
) -> None:
    """Write the header and the first records of part 1 with ``defect`` (see the module doc)."""
    rows: list[list[Cell]] = [
        [None if c is None else c.replace("\r\n", " ").replace("\n", " ") for c in r]
        for r in records
    ]
    type_of = {f.name: f.type for f in entity.fields}
    types = [type_of[name] for name in columns]

    def first_column(*kinds: frozenset[str]) -> int | None:
        for kind in kinds:
            found = next((k for k, t in enumerate(types) if t in kind), None)
            if found is not None:
                return found
        return None

    if rows:
        ragged = defect in {"ragged", "ragged_multiline"}
        target = rows[min(3 if ragged else 2, len(rows)) - 1]
        if ragged:
            target.append("unexpected")
        column = {
            "bad_integer": first_column(INTEGER_TYPES),
            "bad_boolean": first_column(BOOLEAN_TYPES),
            "bad_date": first_column(DATETIME_TYPES, DATE_TYPES),
            "bad_utf8": first_column(TEXT_TYPES),
            "lax_integer": first_column(INTEGER_TYPES),
            "week_date": first_column(DATETIME_TYPES),
            "ragged_multiline": first_column(TEXT_TYPES),
        }.get(defect)
        if column is not None:
            text = target[column] or "x"
            target[column] = {
                "bad_integer": "12x",
                "bad_boolean": "maybe",
                "bad_date": "2024-13-45T99:00:00Z",
                "bad_utf8": text[:1] + _MARKER + text[1:],
                "lax_integer": "1_000",
                "week_date": "2024-W01-1T10:00:00Z",
                "ragged_multiline": text[:1] + "\n" + text[1:],
            }[defect]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if defect == "duplicate_header" and len(labels) > 1:
        writer.writerow([labels[0], labels[0], *labels[2:]])
    elif defect != "no_header":
        writer.writerow(labels)
    writer.writerows(rows)
    out.flush()
    out.buffer.write(buffer.getvalue().encode().replace(_MARKER.encode(), _BAD_BYTES))


class UrlSigner:
    r"""Signs and checks download URLs with HMAC-SHA256 and a secret private to one sandbox.

    The signature covers ``f"{path}\n{expires}"``, so neither the object nor the expiry can be
    altered; the secret is random per sandbox, so URLs of one run are worthless in the next.
    """

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    def signature(self, path: str, expires: int) -> str:
        """Return the hex signature of ``path`` valid until epoch second ``expires``."""
        message = f"{path}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def url(self, base_url: str, path: str, expires: int) -> str:
        """Return the full pre-signed URL of ``path`` on the host at ``base_url``."""
        return f"{base_url}{path}?expires={expires}&signature={self.signature(path, expires)}"

    def verify(self, path: str, expires: int, signature: str) -> bool:
        """Return whether ``signature`` is the one this signer issued for ``path``/``expires``."""
        return hmac.compare_digest(self.signature(path, expires), signature)


def part_path(job_id: str, part: int) -> str:
    """Return the download host's path of a job's part (what gets signed)."""
    return f"/exports/{job_id}/part-{part}.csv"


def send_file(handler: SandboxHandler, path: Path, filename: str) -> None:
    """Stream ``path`` as text/csv in chunks, honouring ``Range`` and the download fault knobs.

    A cut download announces the full Content-Length, sends about half the bytes, and closes
    the connection: what a client sees when a transfer breaks mid-way. A trickled one sends half,
    then one byte every ``trickle_seconds`` until the client gives up. ``gzip_encoding`` sends
    the part gzip-compressed with ``Content-Encoding: gzip``; ``gzip_files`` sends a gzip file
    as the body (no Content-Encoding); ``omit_content_length`` sends no length and closes the
    connection at the end of the body (so a cut one cannot be told from a whole one).
    """
    settings = handler.settings
    if gzip_served(settings):
        path = _gzipped_copy(path)
    size = path.stat().st_size
    first, last = 0, size - 1
    status = 200
    headers = {
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    if settings.gzip_encoding:
        headers["Content-Encoding"] = "gzip"
    if settings.supports_range:
        headers["Accept-Ranges"] = "bytes"
        spec = handler.headers.get("Range")
        wanted = _parse_range(spec, size) if spec else None
        if wanted == "unsatisfiable":
            handler.send_problem(
                416,
                "invalid_range",
                f"The requested range is not satisfiable ({spec}; size {size})",
                {"Content-Range": f"bytes */{size}"},
            )
            return
        if isinstance(wanted, tuple):
            first, last = wanted
            status = 206
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    length = max(0, last - first + 1)
    sending = handler.command != "HEAD"
    cut = sending and settings.consume("cut_downloads")
    trickle = sending and settings.consume("trickle_downloads")
    handler.send_response(status)
    if settings.omit_content_length:
        handler.close_connection = True
    else:
        headers["Content-Length"] = str(length)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    if not sending:
        return
    half = length // 2 if cut or trickle else length
    for chunk in _read_chunks(path, first, half):
        handler.wfile.write(chunk)
    if trickle:
        _trickle(handler, path, first + half, length - half, settings.trickle_seconds)
    if cut or trickle:
        handler.wfile.flush()
        handler.close_connection = True


def _trickle(handler: SandboxHandler, path: Path, offset: int, length: int, every: float) -> None:
    """Send the rest one byte at a time, until done or the client hangs up."""
    with path.open("rb") as source:
        source.seek(offset)
        try:
            for _ in range(length):
                handler.wfile.write(source.read(1))
                handler.wfile.flush()
                time.sleep(every)
        except OSError:
            return


def gzip_served(settings: CommonSettings) -> bool:
    """Whether downloads send the part files gzip-compressed."""
    return settings.gzip_encoding or settings.gzip_files


def served_size(result: ResultFiles, settings: CommonSettings) -> int:
    """Return the bytes downloads of a job's result send: the gzip-compressed copies (made now,
    once), when served so, else the CSV files.
    """
    if gzip_served(settings):
        return sum(_gzipped_copy(path).stat().st_size for path in result.parts)
    return result.total_bytes


def _gzipped_copy(path: Path) -> Path:
    """Return a gzip-compressed copy of a part file (made once, beside it)."""
    target = path.with_name(path.name + ".gz")
    if not target.exists():
        partial = target.with_name(target.name + f".{secrets.token_hex(4)}")
        with (
            path.open("rb") as source,
            partial.open("wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out,
        ):
            shutil.copyfileobj(source, out)
        partial.replace(target)
    return target


def _read_chunks(path: Path, offset: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as source:
        source.seek(offset)
        while length > 0:
            chunk = source.read(min(CHUNK_SIZE, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


def _parse_range(spec: str, size: int) -> tuple[int, int] | str | None:
    """Parse a single ``bytes=`` range: ``(first, last)``, ``"unsatisfiable"``, or None to ignore.

    Multi-range and malformed headers are ignored (the whole file is sent), as RFC 9110 allows.
    """
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", spec.strip())
    if not match or match.group(1) == match.group(2) == "":
        return None
    start, end = match.groups()
    if start == "":  # suffix: the last N bytes
        suffix = int(end)
        return (max(0, size - suffix), size - 1) if suffix and size else "unsatisfiable"
    first = int(start)
    last = size - 1 if end == "" else min(int(end), size - 1)
    if first >= size or (end != "" and int(end) < first):
        return "unsatisfiable"
    return first, last


class FilesServer(SandboxServer):
    """The pre-signed download host: knows the signer and how to find a job's part on disk."""

    def __init__(
        self,
        address: tuple[str, int],
        *,
        settings: CommonSettings,
        log: RequestLog,
        signer: UrlSigner,
        resolve: Callable[[str, int], Path | None],
    ) -> None:
        self.signer = signer
        self.resolve = resolve
        super().__init__(address, FilesHandler, name="files", settings=settings, log=log)


class FilesHandler(SandboxHandler):
    """Serves ``GET /exports/<job>/part-<N>.csv?expires=..&signature=..`` like an object store."""

    server: FilesServer

    @override
    def send_problem(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        """Answer with an S3-style XML error (``code`` turned into CamelCase)."""
        camel = "".join(word.capitalize() for word in code.split("_"))
        if self.server.settings.echo_url_in_errors:
            message += f" (request: http://{self.headers.get('Host', '')}{self.path})"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{camel}</Code><Message>{message}</Message></Error>"
        )
        self.send_body(status, "application/xml", body.encode(), headers)

    @override
    def send_fault(self, status: int, code: str, message: str, headers: dict[str, str]) -> None:
        """Answer injected faults like the object store's own errors (XML)."""
        self.send_problem(status, code, message, headers)

    @override
    def route(self) -> None:
        """Check auth mechanism, fault, signature and expiry, then stream the part."""
        if self.command not in ("GET", "HEAD"):
            self.send_problem(405, "method_not_allowed", "Only GET and HEAD are supported")
            return
        if self.headers.get("Authorization") is not None:
            self.send_problem(
                400,
                "invalid_argument",
                "Only one auth mechanism allowed; only the signature query parameters or the "
                "Authorization header should be specified",
            )
            return
        if self.injected_fault("file"):
            return
        hop = _HOP_PATH.match(self.url_path)
        if hop:
            left = int(hop.group(1)) - 1
            rest = (f"/hop/{left}" if left else "") + hop.group(2)
            query = self.path.partition("?")[2]
            location = f"http://{self.headers.get('Host', '')}{rest}?{query}"
            self.send_body(302, "text/plain", b"", {"Location": location})
            return
        match = _PART_PATH.match(self.url_path)
        if not match:
            self.send_problem(404, "no_such_key", "The specified key does not exist.")
            return
        expires_text = self.query.get("expires", "")
        signature = self.query.get("signature", "")
        if not expires_text.isdigit() or not signature:
            self.send_problem(
                403, "access_denied", "Query-string authentication requires expires and signature"
            )
            return
        expires = int(expires_text)
        if not self.server.signer.verify(self.url_path, expires, signature):
            self.send_problem(
                403,
                "signature_does_not_match",
                "The request signature we calculated does not match the signature you provided.",
            )
            return
        if expires < time.time():
            self.send_problem(403, "access_denied", "Request has expired")
            return
        job_id, part = match.group(1), int(match.group(2))
        path = self.server.resolve(job_id, part)
        if path is None:
            self.send_problem(404, "no_such_key", "The specified key does not exist.")
            return
        send_file(self, path, f"{job_id}-part-{part}.csv")
