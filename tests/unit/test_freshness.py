"""The freshness clock on a fake clock: the state keeps when the bookmark last changed value,
and a bookmark standing still longer than freshness_warn_hours is one WARNING line.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tap_demandbase.engine.freshness import (
    MOVED_AT_KEY,
    moved_at,
    note_bookmark,
    stale_bookmark_line,
)
from tests.support.fakes import UTC, FakeClock

HOUR = 3600.0


class Runs:
    """A stream's state across runs on a fake clock: each run ends with the bookmark given."""

    def __init__(self) -> None:
        self.clock = FakeClock(datetime.datetime(2024, 5, 1, 6, 0, tzinfo=UTC))
        self.state: dict[str, Any] = {}

    def run(self, bookmark: str | None, *, hours: float = 72) -> str | None:
        note_bookmark(self.state, self.state.get("value"), bookmark, self.clock.now())
        if bookmark is not None:
            self.state["value"] = bookmark
        return stale_bookmark_line("accounts", bookmark, self.state, self.clock.now(), hours)


def test_a_bookmark_standing_still_past_the_limit_warns_each_run_until_it_moves():
    runs = Runs()
    assert runs.run("2024-04-30T10:00:00+00:00") is None
    assert runs.state[MOVED_AT_KEY] == "2024-05-01T06:00:00Z"
    runs.clock.advance(71 * HOUR)
    assert runs.run("2024-04-30T10:00:00+00:00") is None  # 71 hours: within 72
    runs.clock.advance(30 * HOUR)
    line = runs.run("2024-04-30T10:00:00+00:00")
    assert line is not None
    assert "'accounts'" in line and "4.2 days" in line and "since 2024-05-01T06:00:00Z" in line
    assert "newest value is of 2024-04-30" in line and "freshness_warn_hours=72" in line
    runs.clock.advance(24 * HOUR)
    assert runs.run("2024-04-30T10:00:00+00:00") is not None  # every run, while it stands still
    runs.clock.advance(HOUR)
    assert runs.run("2024-05-06T09:00:00+00:00") is None  # it moved: the clock starts again
    assert runs.state[MOVED_AT_KEY] == "2024-05-06T12:00:00Z"


def test_hours_may_be_fractions_and_zero_turns_the_check_off():
    runs = Runs()
    runs.run("2024-04-30")
    runs.clock.advance(0.75 * HOUR)
    line = runs.run("2024-04-30", hours=0.5)
    assert line is not None and "0.8 hours" in line and "freshness_warn_hours=0.5" in line
    assert "of 2024-04-30" in line
    assert runs.run("2024-04-30", hours=0) is None


def test_a_stream_without_a_bookmark_never_warns():
    runs = Runs()
    assert runs.run(None) is None
    assert MOVED_AT_KEY not in runs.state
    runs.clock.advance(1000 * HOUR)
    assert runs.run(None, hours=1) is None


def test_a_state_of_an_older_version_starts_the_clock_at_its_first_run():
    runs = Runs()
    runs.state["value"] = "2024-01-01T00:00:00Z"  # a bookmark, no moment
    runs.clock.advance(500 * HOUR)
    assert runs.run("2024-01-01T00:00:00Z") is None
    assert moved_at(runs.state) == runs.clock.now()


@pytest.mark.parametrize("value", ["yesterday", 42, "2024-02-30T00:00:00Z"])
def test_an_unreadable_moment_is_no_moment_and_the_clock_starts_again(value):
    state: dict[str, Any] = {MOVED_AT_KEY: value}
    now = datetime.datetime(2024, 5, 1, tzinfo=UTC)
    assert stale_bookmark_line("s", "2024-01-01", state, now, 1) is None
    assert note_bookmark(state, "2024-01-01", "2024-01-01", now)
    assert state[MOVED_AT_KEY] == "2024-05-01T00:00:00Z"


def test_hours_below_two_days_are_said_in_hours_and_an_offset_value_in_utc():
    state = {MOVED_AT_KEY: "2024-05-01T00:00:00+02:00"}  # 2024-04-30T22:00Z
    now = datetime.datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
    line = stale_bookmark_line("people", "2024-04-30T23:30:00-02:00", state, now, 24)
    assert line is not None and "38.0 hours" in line and "since 2024-04-30T22:00:00Z" in line
    assert "of 2024-05-01" in line  # 23:30 at -02:00 is the next UTC day
