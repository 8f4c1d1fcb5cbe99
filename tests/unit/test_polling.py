"""Polling learned from the stream's job history, on the fake API and clock."""

from __future__ import annotations

import itertools

from tap_demandbase.engine.polling import HISTORY_KEY, PollSchedule, job_history
from tap_demandbase.model import JobState, PollPolicy
from tests.support.engine import emit_all, run_context, stream_export
from tests.support.fakes import FakeApi, FakeClock

POLICY = PollPolicy(first_interval=5, max_interval=60, timeout=100_000)


def _first(schedule: PollSchedule, n: int) -> list[float]:
    return list(itertools.islice(schedule.waits(), n))


def test_without_history_the_waits_double_within_the_bounds():
    assert _first(PollSchedule(POLICY), 6) == [5, 10, 20, 40, 60, 60]


def test_the_first_call_comes_just_before_the_shortest_job_then_short_steps():
    waits = _first(PollSchedule(POLICY, (100.0, 110.0, 120.0)), 5)
    assert waits[0] == 90.0  # 0.9 x the shortest
    assert waits[1:3] == [16.5, 16.5]  # 0.15 x the median, until the longest has passed
    assert waits[3:] == [33.0, 60]  # then doubling, up to max_poll_interval_seconds


def test_steps_stay_within_poll_interval_and_max_poll_interval():
    short = _first(PollSchedule(POLICY, (10.0,)), 3)
    assert short == [9.0, 5, 10]  # 1.5 s steps are raised to poll_interval_seconds
    long = _first(PollSchedule(POLICY, (3600.0,)), 2)
    assert long == [3240.0, 60]  # no status call before the first; then at most 60 s apart


def test_a_history_that_is_not_numbers_is_no_history():
    assert job_history({HISTORY_KEY: ["x", -1, True, None, 1.5, 12000]}) == (12.0,)
    assert job_history({HISTORY_KEY: "garbage"}) == ()


def test_a_job_is_polled_from_its_stream_history_and_its_duration_kept(tmp_path):
    clock = FakeClock()
    api = FakeApi(clock, tmp_path)
    api.timelines = [[(105.0, JobState.COMPLETED)]]
    run = run_context(api, clock, policy=POLICY)
    export, state, _ = stream_export(run, {HISTORY_KEY: [100_000, 110_000, 120_000]})
    emit_all(export)
    assert api.calls.count("get") == 2  # at 90 s, then at 106.5 s
    assert state[HISTORY_KEY] == [100_000, 110_000, 120_000, 106_500]
    assert all(type(ms) is int for ms in state[HISTORY_KEY])  # targets choke on fractions


def test_the_history_keeps_the_last_five_durations(tmp_path):
    clock = FakeClock()
    api = FakeApi(clock, tmp_path)
    api.timelines = [[(50.0, JobState.COMPLETED)]]
    run = run_context(api, clock, policy=POLICY)
    export, state, _ = stream_export(run, {HISTORY_KEY: [10_000, 20_000, 30_000, 40_000, 50_000]})
    emit_all(export)
    assert state[HISTORY_KEY][:4] == [20_000, 30_000, 40_000, 50_000]
    assert len(state[HISTORY_KEY]) == 5


def test_the_jobs_of_a_run_poll_by_the_ones_it_finished_before(tmp_path):
    clock = FakeClock()
    api = FakeApi(clock, tmp_path)
    api.timelines = [[(200.0, JobState.COMPLETED)], [(200.0, JobState.COMPLETED)]]
    run = run_context(api, clock, policy=POLICY, window_days=5)  # two windows, no history
    export, state, _ = stream_export(run)
    emit_all(export)
    # First job: doubling (5, 10, 20, 40, 60, 60, 60 -> 255 s: 7 calls); the second one's
    # first call comes at 0.9 x 255 s, after its end: 1 call.
    assert api.calls.count("get") == 7 + 1
    assert len(state[HISTORY_KEY]) == 2
