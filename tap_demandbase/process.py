"""What the tap sets for the whole process it runs in: done once, by the command line.

Each of these is right for the tap's own process and wrong to impose on a program that imports
the package, so nothing here happens at import: ``configure_process`` is called by the CLI.
"""

from __future__ import annotations

import csv
import os

from tap_demandbase.records.columnar import freeze_after_polars_import
from tap_demandbase.records.reader import MAX_FIELD_BYTES
from tap_demandbase.transport import install_log_redaction

#: polars allocates with jemalloc, which by default keeps an arena per thread and core: memory
#: freed by one chunk in one arena is not reused by the next chunk in another, and peak RSS grows
#: with every chunk. One arena keeps it flat. Read when polars loads (it is imported lazily).
JEMALLOC_CONF = "narenas:1,dirty_decay_ms:500,muzzy_decay_ms:1000"


def configure_process() -> None:
    """Tune and guard this process for the tap (idempotent):

    - jemalloc (polars' allocator) with one arena, unless the environment says otherwise;
    - ``gc.freeze()`` once polars is imported (``records.columnar``), so that collections and
      the exit do not traverse every module, class and function;
    - the csv module's field limit raised to what the reader accepts (long free-text fields);
    - every log record of every logger scrubbed of secrets (``transport.redact``).
    """
    os.environ.setdefault("_RJEM_MALLOC_CONF", JEMALLOC_CONF)
    freeze_after_polars_import()
    csv.field_size_limit(MAX_FIELD_BYTES)
    install_log_redaction()
