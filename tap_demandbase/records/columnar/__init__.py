"""The columnar record path: a part typed a column at a time by polars, not a row at a time.

The Python reader (``records.reader.CsvPartReader``) is the reference: it defines which CSV and
which values are valid and what every record looks like. This path gives the same records (the
same bytes, once encoded) many times faster, because polars parses, checks and converts whole
columns in Rust, on every core, and writes the JSON lines or the parquet file without any Python
code per record. It is the default whenever records reach the output unchanged (see
``streams.py``).

It is sound rather than complete: it only types what it can prove it types exactly like the
Python reader, and hands anything else to it.

* A part is read in chunks that end on a row boundary (``framing.py``), so memory stays flat
  however large the part is. Chunks are typed in worker threads while the consumer writes the
  one before, and are delivered in file order (``reader.py``).
* Each chunk must match, as a whole, one regular expression of the CSV the Python reader accepts
  (RFC 4180 quoting, CRLF or LF line ends, exactly as many fields in each row as the header has,
  valid UTF-8). Only then is it parsed by polars' CSV reader, which agrees with the stdlib's on
  such input.
* Each typed cell must match the grammar of its kind (``records.kinds``, as polars expressions
  in ``typed.py``) and be a valid value.
* The typed blocks are written as RECORD lines, JSON lines or parquet (``output.py``).

Whatever does not pass (a malformed row, a value outside the grammar, a header the fast path does
not handle) sends the rest of the part, from the first row not yet delivered, to the Python
reader: it types what it can and fails with its one-line error naming stream, part, line and
field for what it cannot. The rows already delivered are the same either way, so nothing is
emitted twice and the output does not depend on which path read which row.
"""

from __future__ import annotations

import gc
import sys

from tap_demandbase.engine.background import run_in_background

#: Whether the polars import ends with ``gc.freeze()``, a process-wide effect: only in the tap's
#: own process (``process.configure_process`` turns it on).
_freeze_after_import = False


def polars_available() -> bool:
    """Whether polars can be imported (the columnar path needs it; the Python path does not)."""
    try:
        import polars  # noqa: F401
    except ImportError:
        return False
    return True


def import_polars_meanwhile() -> None:
    """Start importing polars (about 0.2 s) in a background thread, while the export job runs."""
    if "polars" not in sys.modules:
        run_in_background("import-polars", _import_polars)


def freeze_after_polars_import() -> None:
    """Keep what the polars import builds out of the garbage collector's sight (``gc.freeze``).

    Modules, classes and functions live until the process ends, yet every full collection, and
    the interpreter's last ones at exit, traverse them all: with the SDK and polars loaded, the
    tap's exit takes 0.2 to 0.4 s unfrozen, 0.03 s frozen.
    """
    global _freeze_after_import
    _freeze_after_import = True


def _import_polars() -> bool:
    available = polars_available()
    if _freeze_after_import:
        gc.freeze()
    return available
