"""Importing the package changes nothing process-wide; the command line configures the process
(jemalloc, ``gc.freeze`` after the polars import, the csv field limit, log redaction).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tap_demandbase.process import JEMALLOC_CONF
from tap_demandbase.records.reader import MAX_FIELD_BYTES

SCRIPT = """
import csv, gc, importlib, json, logging, os, pkgutil, sys

def snapshot():
    return {
        "jemalloc": os.environ.get("_RJEM_MALLOC_CONF"),
        "csv_field_limit": csv.field_size_limit(),
        "redacting": bool(getattr(logging.getLogRecordFactory(), "redacting", False)),
        "frozen": gc.get_freeze_count() > 0,
    }

seen = {"before": snapshot()}
import tap_demandbase
for module in pkgutil.walk_packages(tap_demandbase.__path__, "tap_demandbase."):
    if not module.name.endswith(".__main__"):  # these run a command line
        importlib.import_module(module.name)
seen["imported"] = snapshot()

from tap_demandbase.tap import TapDemandbase
TapDemandbase.cli  # what the tap-demandbase command resolves before it runs
seen["cli"] = snapshot()

from tap_demandbase.engine import background
from tap_demandbase.records.columnar import import_polars_meanwhile
import_polars_meanwhile()
for thread in background.threads():
    thread.join()
seen["polars_imported"] = snapshot()
print(json.dumps(seen))
"""


def _snapshots() -> dict[str, dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_changes_nothing_and_the_command_line_configures_the_process():
    seen = _snapshots()
    pristine = {"jemalloc": None, "csv_field_limit": 128 * 1024, "redacting": False}
    assert seen["before"] == pristine | {"frozen": False}
    assert seen["imported"] == seen["before"]
    configured = {"jemalloc": JEMALLOC_CONF, "csv_field_limit": MAX_FIELD_BYTES, "redacting": True}
    assert seen["cli"] == configured | {"frozen": False}
    polars_imported = seen["polars_imported"]
    assert polars_imported.pop("frozen") is True
    # polars puts its own defaults before the environment's (the last one of a name wins).
    assert str(polars_imported.pop("jemalloc")).endswith(JEMALLOC_CONF)
    assert polars_imported == {"csv_field_limit": MAX_FIELD_BYTES, "redacting": True}
