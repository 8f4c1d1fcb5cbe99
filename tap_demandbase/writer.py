"""Singer messages to stdout with orjson, buffered, flushed at every non-RECORD message.

The SDK's default writer encodes with simplejson and flushes after every message; for an export
of millions of rows that is most of the tap's time. Records may sit in the buffer, but a STATE
(or SCHEMA, BATCH...) message is flushed together with every record before it, so a target never
sees a state that runs ahead of the records it covers.
"""

from __future__ import annotations

import datetime
import decimal
import json
import sys
import typing as t

import orjson
from singer_sdk.singerlib.encoding.base import GenericSingerWriter
from singer_sdk.singerlib.encoding.simple import Message, RecordMessage

_OPTIONS = orjson.OPT_APPEND_NEWLINE


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
        self._stream: t.Any = None

    def _output(self) -> t.Any:
        """Return stdout's byte layer (or the text stream tests swap in), looked up lazily."""
        current = sys.stdout
        if self._stream is not current:
            current.flush()
            self._stream = current
        return current

    def serialize_message(self, message: Message) -> bytes:
        """Serialize a message into one JSON line."""
        return json_line(message.to_dict())

    def write_message(self, message: Message) -> None:
        """Write a message; flush unless it is a RECORD."""
        is_record = isinstance(message, RecordMessage)
        self.write_line(self.serialize_message(message), flush=not is_record)

    def write_record(
        self, stream: str, record: dict[str, t.Any], time_extracted: str | None = None
    ) -> None:
        """Write a RECORD message without building a message object (the fast path)."""
        payload: dict[str, t.Any] = {"type": "RECORD", "stream": stream, "record": record}
        if time_extracted:
            payload["time_extracted"] = time_extracted
        self.write_line(json_line(payload), flush=False)

    def write_line(self, line: bytes, *, flush: bool) -> None:
        """Write an encoded line to stdout."""
        out = self._output()
        buffer = getattr(out, "buffer", None)
        if buffer is not None:
            buffer.write(line)
            if flush:
                buffer.flush()
        else:
            out.write(line.decode())
            if flush:
                out.flush()

    def flush(self) -> None:
        """Flush whatever records are still buffered."""
        out = self._output()
        getattr(out, "buffer", out).flush()
