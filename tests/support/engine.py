"""The engine's test rig: a run on the fake API and clock (``tests/support/fakes.py``), and
what a stream does with it (read every part, report it, finish), without Singer.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from tap_demandbase.engine.export import RunContext, StreamExport, StreamRequest
from tap_demandbase.engine.jobs import AttemptPolicy
from tap_demandbase.engine.scheduler import JobScheduler
from tap_demandbase.engine.window import PartResult, WindowExport
from tap_demandbase.model import PollPolicy
from tests.support.fakes import FakeApi, FakeClock, FileOpener

LOG = logging.getLogger("tests.engine")
DAY = datetime.date


def run_context(
    api: FakeApi,
    clock: FakeClock,
    *,
    end: datetime.date = datetime.date(2024, 3, 10),
    scheduler: JobScheduler | None = None,
    window_days: int | None = None,
    policy: PollPolicy | None = None,
    attempts: AttemptPolicy | None = None,
) -> RunContext:
    return RunContext(
        api=api,
        opener=FileOpener(),
        clock=clock,
        scheduler=scheduler or JobScheduler(1),
        end_day=end,
        poll_policy=policy or PollPolicy(first_interval=1, max_interval=8, timeout=600),
        attempts=attempts or AttemptPolicy(max_attempts=3, cooldown=60),
        window_days=window_days,
    )


class Checkpoints(list[Any]):
    """The values the engine gave the bookmark, in order, and the bookmark a stream keeps:
    the greatest value given, final once a window is done in full.
    """

    bookmark: Any = None
    final: Any = None

    def __call__(self, value: Any, *, window_done: bool = False) -> None:
        self.append(value)
        if value is not None and (self.bookmark is None or value > self.bookmark):
            self.bookmark = value
        if window_done:
            self.final = self.bookmark


def stream_export(
    run: RunContext, state: dict[str, Any] | None = None, *, name: str = "accounts"
) -> tuple[StreamExport, dict[str, Any], Checkpoints]:
    state = {} if state is None else state
    checkpoints = Checkpoints()
    request = StreamRequest(
        name=name,
        fields=("id", "last_modified_date"),
        replication_key="last_modified_date",
        start=DAY(2024, 3, 1),
    )
    return StreamExport(run, request, state, LOG, checkpoints), state, checkpoints


def emit_all(export: StreamExport) -> int:
    """Do what a stream does: read every part of every window, report it, finish."""
    rows = 0
    for window in export.windows():
        with window:
            rows += emit_parts(window)
            window.finish()
    return rows


def emit_parts(window: WindowExport, parts: int | None = None) -> int:
    """Read (the first ``parts``, else every) part of a window's job and report each."""
    rows = 0
    for number, part in enumerate(window.parts(), 1):
        lines = part.path.read_text().splitlines()[1:]
        latest = max(line.split(",")[1] for line in lines) if lines else None
        window.part_done(part, PartResult(len(lines), latest))
        rows += len(lines)
        if number == parts:
            break
    return rows
