"""Singer messages to stdout with orjson, buffered, flushed at every non-RECORD message.

The SDK's default writer encodes with simplejson and flushes after every message; for an export
of millions of rows that is most of the tap's time. Records sit in our own buffer (stdout itself
is often unbuffered: PYTHONUNBUFFERED=1 is common in pipeline images), but a STATE (or SCHEMA,
BATCH...) message is flushed together with every record before it, so a target never sees a
state that runs ahead of the records it covers. What is still buffered at exit is flushed too.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import decimal
import json
import os
import sys
import typing as t
import weakref

import orjson
from singer_sdk.singerlib.encoding.base import GenericSingerWriter
from singer_sdk.singerlib.encoding.simple import Message, RecordMessage
from typing_extensions import override

from tap_demandbase.errors import TargetGoneError
from tap_demandbase.records.columnar.output import record_head, record_tail

_OPTIONS = orjson.OPT_APPEND_NEWLINE
BUFFER_BYTES = 1 << 16


def _default(value: t.Any) -> t.Any:
    """Encode what orjson does not know natively."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


def json_line(payload: dict[str, t.Any]) -> bytes:
    """Return one JSON line; falls back to the stdlib for what orjson refuses (ints > 64 bit)."""
    try:
        return orjson.dumps(payload, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        text = json.dumps(payload, default=_default, ensure_ascii=False, separators=(",", ":"))
        return text.encode() + b"\n"


class FastSingerWriter(GenericSingerWriter[bytes, Message]):
    """Writes Singer messages as orjson lines; the tap's ``message_writer_class``."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._target: t.Any = None
        self._record_key: tuple[str, str | None, int | None] | None = None
        self._record_head = b""
        self._record_tail = b""
        _LIVE_WRITERS.add(self)

    @override
    def serialize_message(self, message: Message) -> bytes:
        """Serialize a message into one JSON line."""
        return json_line(message.to_dict())

    @override
    def write_message(self, message: Message) -> None:
        """Write a message; flush unless it is a RECORD."""
        is_record = isinstance(message, RecordMessage)
        self.write_line(self.serialize_message(message), flush=not is_record)

    def write_record(
        self,
        stream: str,
        record: dict[str, t.Any],
        time_extracted: str | None = None,
        version: int | None = None,
    ) -> None:
        """Write a RECORD message without building a message object (the fast path).

        The same bytes the SDK's RecordMessage would give, with the constant parts encoded once.
        """
        key = (stream, time_extracted, version)
        if key != self._record_key:
            self._record_key = key
            self._record_head = record_head(stream)
            self._record_tail = record_tail(time_extracted, version)
        try:
            body = orjson.dumps(record, default=_default)
        except orjson.JSONEncodeError:
            body = json_line(record)[:-1]
        self.write_line(self._record_head + body + self._record_tail, flush=False)

    def write_lines(self, lines: bytes) -> None:
        """Write complete, encoded RECORD lines (a block from the columnar record path).

        They are queued like any RECORD, so a later STATE is still written after them.
        """
        self.write_line(lines, flush=False)

    def write_line(self, line: bytes, *, flush: bool) -> None:
        """Queue an encoded line; write the queue out when asked or when it is large."""
        if not self._pending:
            self._target = sys.stdout
        self._pending += line
        if flush or len(self._pending) >= BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write out and flush every queued line.

        Raises:
            TargetGoneError: The target closed its end of the pipe (it died or stopped).
        """
        # The stdout of when the lines were queued: the SDK's test runner swaps sys.stdout.
        out = self._target or sys.stdout
        buffer = getattr(out, "buffer", None)
        try:
            if self._pending:
                if buffer is not None:
                    out.flush()
                    buffer.write(self._pending)
                else:
                    out.write(self._pending.decode())
                self._pending.clear()
            (buffer or out).flush()
        except BrokenPipeError:
            self._pending.clear()
            _discard_stdout(out)
            msg = (
                "The target stopped reading the tap's output (broken pipe): see the target's "
                "own log for why. Nothing more can be delivered in this run; the next run "
                "resumes from the last STATE the target received (an export job named there "
                "is re-used, not paid for again)."
            )
            raise TargetGoneError(msg) from None


def _discard_stdout(out: t.Any) -> None:
    """Point stdout's file descriptor at /dev/null after a broken pipe, so that nothing (not
    even the interpreter's last flush at exit) writes to the closed pipe again and prints an
    "Exception ignored ... BrokenPipeError" traceback.
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        os.close(devnull)


#: Writers not yet garbage-collected: flushed once at exit by one handler for the process, not
#: one handler per writer (which would pile up, and keep every writer alive, in a long process).
_LIVE_WRITERS: weakref.WeakSet[FastSingerWriter] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    """Flush records still queued when the process ends (a failed run's last records)."""
    for writer in list(_LIVE_WRITERS):
        with contextlib.suppress(OSError, ValueError, TargetGoneError):  # nowhere to deliver
            writer.flush()
