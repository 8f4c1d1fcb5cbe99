"""Reading what the tap wrote: RECORD lines kept in memory, and the rows of BATCH files."""

from __future__ import annotations

import datetime
import gzip
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow.parquet as pq

from tap_demandbase.writer import FastSingerWriter


class Collected(FastSingerWriter):
    """The tap's writer, keeping the bytes it would write to stdout."""

    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()

    def write_line(self, line: bytes, *, flush: bool) -> None:
        self.out += line


def as_json(row: dict[str, Any]) -> dict[str, Any]:
    """A parquet row as its JSON record: dates and date-times in ISO form."""
    return {
        k: v.isoformat() if isinstance(v, (datetime.date, datetime.datetime)) else v
        for k, v in row.items()
    }


def batch_rows(run: Any, stream: str) -> list[dict[str, Any]]:
    """The rows of a stream's BATCH messages, read from their files (parquet values as JSON)."""
    rows: list[dict[str, Any]] = []
    for message in run.messages:
        if message["type"] != "BATCH" or message["stream"] != stream:
            continue
        for url in message["manifest"]:
            path = Path(urlparse(url).path)
            if message["encoding"]["format"] == "parquet":
                rows += [as_json(row) for row in pq.read_table(path).to_pylist()]
            else:
                opener = gzip.open if message["encoding"]["compression"] == "gzip" else open
                with opener(path, "rt", encoding="utf-8") as lines:
                    rows += [json.loads(line) for line in lines]
    return rows
