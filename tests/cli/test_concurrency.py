"""max_concurrent_jobs: later streams' jobs run on the server while earlier streams download."""

from __future__ import annotations

import itertools

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
