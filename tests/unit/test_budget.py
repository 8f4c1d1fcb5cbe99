"""The daily budget across runs, on the fake API and clock: each limit's share less earlier runs'
calls, a new UTC day, and a job that does not fit deferring its stream.
"""

from __future__ import annotations

import datetime

import pytest

from tap_demandbase.engine.budget import (
    USAGE_KEY,
    DailyBudget,
    JobCost,
    StreamDeferredError,
    next_reset,
)
from tests.support.engine import emit_all, emit_parts, run_context, stream_export
from tests.support.fakes import UTC, FakeApi, FakeClock

LIMITS = {"create": 10, "get": 100}


def _budget(api: FakeApi, clock: FakeClock, share: float = 0.5) -> DailyBudget:
    return DailyBudget(LIMITS, share, clock, api.calls_by_stream, {"create": "job creates"})


def test_the_share_of_each_limit_less_earlier_runs_and_this_one(tmp_path):
    clock = FakeClock()
    api = FakeApi(clock, tmp_path)
    budget = _budget(api, clock)
    today = clock.now().date().isoformat()
    budget.load([("people", {USAGE_KEY: {"day": today, "create": 3}})])
    assert budget.allowed("create") == 5 and budget.left("create") == 2
    assert budget.shortfall(JobCost({"create": 1, "get": 4})) is None
    assert budget.shortfall(JobCost({"create": 3})) == "2 of 5 job creates left today"


def test_calls_of_another_utc_day_count_for_nothing_and_midnight_starts_afresh(tmp_path):
    clock = FakeClock(datetime.datetime(2024, 3, 10, 23, 0, tzinfo=UTC))
    api = FakeApi(clock, tmp_path)
    budget = _budget(api, clock)
    budget.load([("people", {USAGE_KEY: {"day": "2024-03-09", "create": 5}})])
    assert budget.left("create") == 5
    budget.load([("people", {USAGE_KEY: {"day": "2024-03-10", "create": 4}})])
    assert budget.left("create") == 1
    clock.advance(3600)  # 00:00 UTC: the tenant's limits reset
    assert budget.left("create") == 5
    assert next_reset(clock.now()) == datetime.datetime(2024, 3, 12, tzinfo=UTC)


def test_a_job_past_the_budget_defers_its_stream_and_the_calls_stay_in_the_state(tmp_path):
    clock = FakeClock()
    api = FakeApi(clock, tmp_path)
    budget = _budget(api, clock)
    today = clock.now().date().isoformat()
    budget.load([("people", {USAGE_KEY: {"day": today, "create": 4}})])
    run = run_context(api, clock, window_days=5)  # two windows, one create left
    run = type(run)(**{**run.__dict__, "budget": budget})
    export, state, _ = stream_export(run)
    run.scheduler.plan(export.planned_jobs())
    with pytest.raises(StreamDeferredError, match=r"Stream 'accounts' deferred by the daily bud"):
        emit_all(export)
    assert api.calls.count("create") == 1
    assert state[USAGE_KEY]["create"] == 1 and state[USAGE_KEY]["day"] == today
    assert "resets at 2024-03-11 00:00 UTC" in str(budget.defer_message("accounts", "x"))


def test_a_job_that_completed_before_its_stream_was_deferred_is_still_read(tmp_path):
    """Two windows, one create left: the first job completes, the second is deferred while
    the first one waits unread; the first window's rows are still emitted this run.
    """
    clock = FakeClock()
    api = FakeApi(clock, tmp_path)
    budget = _budget(api, clock)
    today = clock.now().date().isoformat()
    budget.load([("people", {USAGE_KEY: {"day": today, "create": 4}})])
    run = run_context(api, clock, window_days=5)
    run = type(run)(**{**run.__dict__, "budget": budget})
    export, _, checkpoints = stream_export(run)
    run.scheduler.plan(export.planned_jobs())
    windows = export.windows()
    first = next(windows)
    with first:
        # Wait until the second job was tried (and deferred) before reading the first.
        while "accounts" not in run.scheduler._closed:
            pass
        rows = emit_parts(first)
        first.finish()
    assert rows == 10 and checkpoints.final is not None
    with pytest.raises(StreamDeferredError):
        next(windows).job  # noqa: B018
