"""CSV framing for the columnar path: chunks of whole rows, and the pattern a chunk must match
for polars' CSV reader to read it as the Python reader does.
"""

from __future__ import annotations

import typing as t

from tap_demandbase.records.reader import MAX_FIELD_BYTES

if t.TYPE_CHECKING:
    from collections.abc import Iterator

#: Bytes of CSV the chunk pattern is matched against at once (see ``well_formed``).
CHECK_BYTES = 256 << 10
#: A row longer than this is not looked for further: the Python reader refuses fields this large.
MAX_ROW_BYTES = MAX_FIELD_BYTES

BOM = b"\xef\xbb\xbf"


def row_chunks(raw: t.BinaryIO, size: int) -> Iterator[bytes]:
    """Yield the rest of a CSV file in chunks of about ``size`` bytes, each ending on a row
    boundary: a line feed preceded by an even number of quotes in the chunk.

    On a malformed file a boundary may be misplaced, but then the chunk does not match the
    chunk pattern, and the Python reader takes over from that chunk on.
    """
    carry = b""
    while True:
        block = raw.read(size)
        if not block:
            if carry:
                yield carry
            return
        chunk = carry + block if carry else block
        end = last_row_end(chunk)
        if end is None:
            if len(chunk) > MAX_ROW_BYTES:
                yield chunk  # does not match: the Python reader reads on and reports
                return
            carry = chunk
            continue
        yield chunk[:end]
        carry = chunk[end:]


def last_row_end(chunk: bytes, start: int = 0, stop: int | None = None) -> int | None:
    """Return the offset just after the last line feed in ``chunk[start:stop]`` that has an
    even number of quotes between ``start`` (a row boundary) and it, if any.
    """
    end = chunk.rfind(b"\n", start, stop)
    if end < 0:
        return None
    quotes = chunk.count(b'"', start, end)
    while quotes % 2:
        previous = chunk.rfind(b"\n", start, end)
        if previous < 0:
            return None
        quotes -= chunk.count(b'"', previous, end)
        end = previous
    return end + 1


def chunk_pattern(width: int) -> str:
    r"""Return the regular expression a chunk of whole CSV rows of ``width`` fields matches
    when the stdlib's ``csv.reader(strict=True)`` reads it as polars does.

    A field is unquoted (no quote, comma, CR, LF) or quoted (``""`` for a quote inside); a row is
    exactly ``width`` fields, ended by ``\r\n`` or ``\n`` (the last one may be unended). NUL is
    left to the Python reader. (Written so that the regex engine runs it as a DFA.)
    """
    field = r'(?:[^",\r\n\x00]*|"[^"\x00]*(?:""[^"\x00]*)*")'
    row = field + r"(?:," + field + r"){" + str(width - 1) + "}"
    return r"\A(?:" + row + r"\r?\n)*(?:" + row + r")?\z"


def well_formed(chunk: bytes, pattern: str, piece_bytes: int) -> bool:
    """Whether a chunk of rows is valid UTF-8 and matches the chunk pattern.

    The chunk is checked in pieces of about ``piece_bytes`` (cut at row boundaries), because
    the regex engine needs memory in proportion to its input, and so that pieces are checked on
    every core at once.
    """
    import polars as pl

    pieces = []
    start = 0
    while start < len(chunk):
        stop = start + piece_bytes
        end = (last_row_end(chunk, start, stop) if stop < len(chunk) else None) or len(chunk)
        pieces.append(chunk[start:end])
        start = end
    try:
        text = pl.Series(pieces, dtype=pl.Binary).cast(pl.String)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError):  # not UTF-8
        return False
    return bool(text.str.contains(pattern).all())


def bom_kept(chunk: bytes, width: int) -> tuple[bytes, int]:
    """Return a chunk as polars is to read it, and the rows to skip first.

    polars takes U+FEFF at the start of its input for a byte order mark and drops it, but in
    a chunk of data rows it is data (the Python reader keeps it): such a chunk is read behind
    one empty row, skipped.
    """
    if not chunk.startswith(BOM):
        return chunk, 0
    return b"," * (width - 1) + b"\n" + chunk, 1
