"""The progress line, in process: what it says (records, rate, part, bytes), that it comes at every
interval until the sync ends, and why a refused connection failed, in a few words.
"""

from __future__ import annotations

import socket

import pytest
import requests
import urllib3

from tap_demandbase.errors import TransientApiError
from tap_demandbase.progress import SyncProgress
from tap_demandbase.transport import failure_reason, refused_by_this_machine


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Status:
    def __init__(self, state: str, size: int | None) -> None:
        self.state = type("S", (), {"value": state})()
        self.file_size_bytes = size


class _Job:
    label = "accounts export job job-7 (last_modified_date 2024-01-01..2024-03-31)"

    def __init__(self, state: str) -> None:
        self.status = _Status(state, 3 << 20)


class _Parts:
    count_text = "4"
    bytes_downloaded = 1 << 20

    def __init__(self) -> None:
        self.job = _Status("completed", 3 << 20)


class _Logger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, fmt: str, *args: object) -> None:
        self.lines.append(fmt % args)


def test_progress_line_says_records_rate_part_and_bytes():
    clock = _Clock()
    progress = SyncProgress("accounts", _Logger(), 15, clock=clock)  # type: ignore[arg-type]
    progress.waiting_for(_Job("processing"))  # type: ignore[arg-type]
    clock.now += 45
    assert progress.line() == (
        "accounts: waiting for accounts export job job-7 (last_modified_date "
        "2024-01-01..2024-03-31), processing (45s waiting, 45s into the stream)"
    )
    progress.downloading(_Job("completed"), _Parts())  # type: ignore[arg-type]
    progress.part = 2
    progress.records = 30_000
    clock.now += 15  # 60 s in all
    # The rate is over the 15 s spent emitting, not the minute since the stream began.
    assert progress.line() == (
        "accounts: 30,000 records emitted (2,000/s over 15s emitting, after 45s waiting for "
        "jobs), part 2 of 4, 1.0 MiB of 3.0 MiB downloaded"
    )
    progress.result.count_text = "?"  # a job that does not say how many parts it has
    assert ", part 2 of ?, " in progress.line()
    # The next window's job: waiting again, with what was emitted so far.
    progress.waiting_for(_Job("pending"))  # type: ignore[arg-type]
    assert progress.line().startswith("accounts: 30,000 records emitted so far; waiting for")


def test_progress_is_logged_at_every_interval_until_the_sync_ends():
    """The thread's loop with a fake wait: one line per elapsed interval, none after the end."""
    clock = _Clock()
    logger = _Logger()
    progress = SyncProgress("accounts", logger, 15, clock=clock)  # type: ignore[arg-type]
    progress.downloading(_Job("completed"), _Parts())  # type: ignore[arg-type]
    waits: list[float] = []

    def wait(seconds: float) -> bool:  # the stop event's wait: True once the sync ended
        waits.append(seconds)
        clock.now += seconds
        progress.records += 7_500
        return len(waits) > 4

    progress.log_every_interval(wait)
    assert waits == [15, 15, 15, 15, 15]
    assert len(logger.lines) == 4
    assert logger.lines[0].startswith(
        "accounts: 7,500 records emitted (500/s over 15s emitting), part 1 of 4"
    )
    assert logger.lines[3].startswith("accounts: 30,000 records emitted (500/s over 60s")


def test_failure_reasons_are_the_socket_errors_in_a_few_words():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for url, words in ((f"http://127.0.0.1:{port}/", "connection refused"),):
        with pytest.raises(requests.ConnectionError) as raised:
            requests.get(url, timeout=5)
        assert failure_reason(raised.value) == words
        assert refused_by_this_machine(raised.value)
    unresolved = requests.ConnectionError(
        urllib3.exceptions.NameResolutionError("no-such-host.invalid", None, socket.gaierror())
    )
    assert failure_reason(unresolved) == "host name not found"
    assert not refused_by_this_machine(unresolved)
    assert failure_reason(TransientApiError("listing entities answered 503: busy")) == (
        "listing entities answered 503: busy"
    )
