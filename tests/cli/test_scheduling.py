"""How jobs are scheduled, through the command: one job at a time by default (by the server's own
times), ``max_concurrent_jobs`` running later streams' jobs while earlier ones download, and
hourly runs staying within the daily budget's share, deferred streams first the next day.
"""

from __future__ import annotations

import datetime
import itertools

from tap_demandbase.engine.budget import (
    USAGE_KEY,
)
from tap_demandbase.sandbox import Sandbox
from tests.support.tap import ENTITIES, fast_settings, run_tap, tap_config


def _stream_order(run):
    order = []
    for message in run.messages:
        if message["type"] == "RECORD" and (not order or order[-1] != message["stream"]):
            order.append(message["stream"])
    return order


#: State keys that differ between two runs of the same jobs.
JOB_TIMES = ("last_job_created_at", "job_durations_ms", "bookmark_moved_at")


def _without_job_times(state):
    """The state without the creation times of the last jobs and when each bookmark moved
    (they differ between runs).
    """
    return {
        "bookmarks": {
            stream: {k: v for k, v in value.items() if k not in JOB_TIMES}
            for stream, value in state["bookmarks"].items()
        }
    }


def _yesterday(state: dict) -> dict:
    """The state as the next UTC day's first run reads it: its calls are of another day."""
    for stream_state in state["bookmarks"].values():
        if USAGE_KEY in stream_state:
            stream_state[USAGE_KEY]["day"] = "2000-01-01"
    return state


def test_jobs_overlap_but_output_stays_one_stream_at_a_time(sandbox, tmp_path):
    with Sandbox(fast_settings()) as other:  # a second emulator: no job to re-use
        sequential = run_tap(tmp_path, tap_config(other))
    sandbox.settings.processing_seconds = 0.5
    run = run_tap(tmp_path, tap_config(sandbox, max_concurrent_jobs=3))
    assert run.returncode == 0, run.stderr
    # Output: each stream's records in one block, streams in name order, all rows there.
    assert _stream_order(run) == sorted(ENTITIES)
    assert run.records == sequential.records
    assert _without_job_times(run.last_state) == _without_job_times(sequential.last_state)
    # Three jobs were created before the first result was downloaded, and six in all.
    log = sandbox.requests()
    first_download = next(i for i, r in enumerate(log) if r.path.endswith("/download"))
    assert len([r for r in log[:first_download] if r.method == "POST"]) == 3
    assert len([r for r in log if r.method == "POST"]) == 6


def test_one_job_at_a_time_by_default(sandbox, tmp_path):
    """The next job is created once the last one is completed on the server, never before."""
    sandbox.settings.processing_seconds = 0.3
    run = run_tap(tmp_path, tap_config(sandbox))
    assert run.returncode == 0, run.stderr
    jobs = sorted(sandbox.jobs(), key=lambda job: job["created_at"])
    assert len(jobs) == len(ENTITIES)
    for before, after in itertools.pairwise(jobs):
        assert before["completed_at"] <= after["created_at"], (before, after)


def test_hourly_runs_stay_within_the_share_and_deferred_streams_go_first_the_next_day(
    dialect_case, tmp_path
):
    """Daily limits made small (8 creates; the tap told with daily_limits, budget_share 0.5):
    hourly runs stop creating at 4, defer the streams that do not fit, and the next UTC day
    syncs those first; every row arrives.
    """
    from tests.support.tap import discover, run_tap, select

    case, sb = dialect_case, dialect_case.sb
    streams = ("accounts", "people", "opportunities")
    if case.name == "uapi":
        sb.settings.uapi_daily_limits = {**sb.settings.uapi_daily_limits, "create": 8}
    config = case.config(daily_limits={"create": 8}, budget_share=0.5)
    catalog = select(discover(tmp_path, config), dict.fromkeys(streams))
    sb.reset_log()
    state: dict = {}
    creates, records = [], {s: set() for s in streams}
    for _hour in range(2):  # two hourly runs in one UTC day
        run = run_tap(tmp_path, config, catalog=catalog, state=state)
        assert run.returncode == 0, run.stderr
        state = run.last_state
        creates.append(len(case.created_jobs()))
        for stream in streams:
            records[stream] |= {r["id"] for r in run.records.get(stream, [])}
    assert creates == [3, 4]  # 3 jobs, then the 1 left of 0.5 x 8
    deferred = [s for s in streams if "deferred" in state["bookmarks"][s]]
    assert sorted(deferred) == ["opportunities", "people"]
    (line,) = [x for x in run.stderr.splitlines() if "deferred by the daily budget" in x][:1]
    assert "resets at" in line and "Stream 'opportunities'" in line

    sb.settings.today = datetime.date(2099, 1, 2)  # the next UTC day: counters reset
    run = run_tap(tmp_path, config, catalog=catalog, state=_yesterday(state))
    assert run.returncode == 0, run.stderr
    order = [job.stream for job in case.created_jobs()[4:]]
    assert order == ["opportunities", "people", "accounts"]  # the streams behind first
    for stream in streams:
        records[stream] |= {r["id"] for r in run.records.get(stream, [])}
        assert "deferred" not in run.last_state["bookmarks"][stream]
        assert records[stream] == {r["id"] for r in case.expected_rows(stream)}, stream
