"""The export-job engine on a fake API and a fake clock: no HTTP, no sleeping, milliseconds.

The real engine code runs (jobs, attempts, ledger, windows, scheduler, result parts); only the
API behind it is an in-memory model (tests/support/fakes.py) and time moves when the engine
sleeps.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

import pytest

from tap_demandbase.dialects.export_v1.wire import job_status_from_json
from tap_demandbase.engine.export import RunContext, StreamExport
from tap_demandbase.engine.jobs import (
    AttemptPolicy,
    ExportJob,
    reuse_rule,
)
from tap_demandbase.engine.ledger import SPLIT_WINDOW_KEY, LedgerEntry, read_entry
from tap_demandbase.engine.scheduler import JobScheduler
from tap_demandbase.engine.stream_state import LAST_JOB_KEY, WINDOWS_DONE_KEY
from tap_demandbase.engine.window import PartResult
from tap_demandbase.engine.windows import plan_windows
from tap_demandbase.errors import ApiRequestError, ExportJobError, QuotaExceededError
from tap_demandbase.model import Capabilities, JobSpec, JobState, PollPolicy
from tests.support.engine import (
    DAY,
    LOG,
    emit_all,
    emit_parts,
    run_context,
    stream_export,
)
from tests.support.fakes import UTC, FakeApi, FakeClock


def _ledger_state(job_id: str, spec: JobSpec, parts_done: dict[str, int] | None = None):
    return {
        "export_job": {
            "job_id": job_id,
            "entity_type": spec.entity,
            "fields": list(spec.fields),
            "window": {
                "field": spec.date_field,
                "start": str(spec.start),
                "end": str(spec.end),
            },
            "created_at": "2024-03-10T11:59:00+00:00",
            "parts_done": parts_done or {},
        }
    }


SPEC = JobSpec(
    "accounts",
    ("id", "last_modified_date"),
    "last_modified_date",
    DAY(2024, 3, 1),
    DAY(2024, 3, 10),
)


class _Watcher:
    """Keeps what the stream is told it downloads (as the progress lines do)."""

    def __init__(self) -> None:
        self.results: list[Any] = []
        self.counts: list[str] = []

    def waiting_for(self, job: ExportJob) -> None:
        pass

    def downloading(self, job: ExportJob, result: Any) -> None:
        self.results.append(result)
        self.counts.append(result.count_text)


def _opened_parts(export: StreamExport) -> list[str]:
    return [loc.rsplit("-", 1)[-1] for loc in export.run.opener.opened]


def _plan(run: RunContext, *exports: StreamExport) -> None:
    """Do what the tap does when the run's first stream starts: plan every job."""
    run.scheduler.plan([job for export in exports for job in export.planned_jobs()])


def test_polls_double_from_the_first_interval_up_to_the_cap(api, clock):
    api.timelines = [[(100.0, JobState.COMPLETED)]]
    job = ExportJob(api, JobSpec("accounts", ("id",)), PollPolicy(1, 8, 600), LOG, clock)
    job.create()
    job.wait_until_completed()
    assert clock.sleeps[:6] == [1, 2, 4, 8, 8, 8]
    assert sum(clock.sleeps) >= 100
    assert job.status_calls == len(clock.sleeps)


def test_a_job_past_the_timeout_is_cancelled_and_fails(api, clock):
    api.timelines = [[(10_000.0, JobState.COMPLETED)]]
    job = ExportJob(api, JobSpec("accounts", ("id",)), PollPolicy(1, 8, 30), LOG, clock)
    job.create()
    with pytest.raises(ExportJobError, match="job_timeout_seconds=30 and was cancelled"):
        job.wait_until_completed()
    assert api.calls[-1] == "cancel"
    assert clock.elapsed == pytest.approx(30)  # the last wait is cut to the timeout


def test_a_job_finishing_as_it_is_cancelled_is_used_after_all(api, clock):
    """The 409 race: cancel answers "already finished", and the job's result is used."""
    api.timelines = [[(10_000.0, JobState.COMPLETED)]]
    api.completes_when_cancelled = True
    job = ExportJob(api, JobSpec("accounts", ("id",)), PollPolicy(1, 8, 30), LOG, clock)
    job.create()
    status = job.wait_until_completed()
    assert status.state is JobState.COMPLETED
    assert "cancel" in api.calls


def test_without_cancel_a_timed_out_job_stays_in_the_ledger(clock, tmp_path):
    api = FakeApi(clock, tmp_path, capabilities=Capabilities(can_cancel=False))
    api.timelines = [[(10_000.0, JobState.COMPLETED)]]
    run = run_context(api, clock, policy=PollPolicy(1, 8, 30))
    export, state, _ = stream_export(run)
    with pytest.raises(ExportJobError, match="cannot cancel it, so it stays in the state"):
        emit_all(export)
    assert "cancel" not in api.calls
    assert read_entry(state) is not None and read_entry(state).job_id == "job-1"

    # The next run resumes that job instead of creating another.
    clock.advance(10_000)
    export, state, _ = stream_export(run_context(api, clock), state)
    assert emit_all(export) == 10
    assert api.calls.count("create") == 1


def test_without_a_job_list_no_job_is_looked_for_before_a_create(clock, tmp_path):
    api = FakeApi(clock, tmp_path, capabilities=Capabilities(can_list_jobs=False))
    export, _, _ = stream_export(run_context(api, clock))
    assert emit_all(export) == 10
    assert "list" not in api.calls and api.calls.count("create") == 1


def test_a_failed_job_is_replaced_after_the_cooldown(api, clock):
    api.timelines = [[(1.0, JobState.FAILED)], [(1.0, JobState.COMPLETED)]]
    export, state, _ = stream_export(run_context(api, clock))
    assert emit_all(export) == 10
    assert api.calls.count("create") == 2
    assert 60 in clock.sleeps  # the cooldown
    assert read_entry(state) is None


def test_failed_jobs_stop_after_max_attempts(api, clock):
    api.timelines = [[(1.0, JobState.FAILED)]] * 3
    export, _, _ = stream_export(
        run_context(api, clock, attempts=AttemptPolicy(max_attempts=3, cooldown=5))
    )
    with pytest.raises(ExportJobError, match="failed on Demandbase's side: it broke"):
        emit_all(export)
    assert api.calls.count("create") == 3
    assert clock.sleeps.count(5) == 2  # a cooldown between attempts, none after the last


@pytest.mark.parametrize(
    ("state", "resumed"),
    [
        (JobState.PENDING, True),
        (JobState.PROCESSING, True),
        (JobState.COMPLETED, True),
        (JobState.UNKNOWN, True),  # waited on, with a warning
        (JobState.FAILED, False),
        (JobState.CANCELLED, False),
        (JobState.EXPIRED, False),
    ],
)
def test_the_ledger_job_is_resumed_in_every_status_that_can_still_deliver(
    api, clock, state, resumed
):
    job_id = api.add_job(SPEC, state, age=60)
    if state in (JobState.PENDING, JobState.PROCESSING, JobState.UNKNOWN):
        api.jobs[job_id].timeline.append((120.0, JobState.COMPLETED))
    export, _, _ = stream_export(run_context(api, clock), _ledger_state(job_id, SPEC))
    assert emit_all(export) == 10
    assert api.calls.count("create") == (0 if resumed else 1)


def test_a_ledger_job_gone_from_the_api_is_exported_anew(api, clock):
    export, _, _ = stream_export(run_context(api, clock), _ledger_state("job-404", SPEC))
    assert emit_all(export) == 10
    assert api.calls.count("create") == 1


def test_a_resumed_job_emits_only_the_parts_not_done(api, clock):
    job_id = api.add_job(SPEC, JobState.COMPLETED, age=60)
    export, state, _ = stream_export(run_context(api, clock), _ledger_state(job_id, SPEC, {"1": 5}))
    assert emit_all(export) == 5
    assert [loc.rsplit("-", 1)[-1] for loc in export.run.opener.opened] == ["2.csv"]
    assert state[LAST_JOB_KEY] == "2024-03-10T11:59:00+00:00"


def test_parts_of_a_job_without_a_part_count_are_read_until_the_api_has_no_next_one(
    clock, tmp_path, caplog
):
    api = FakeApi(clock, tmp_path, parts=3)
    api.unlisted_parts = True
    export, state, _ = stream_export(run_context(api, clock))
    export.watcher = watcher = _Watcher()
    with caplog.at_level(logging.INFO, logger=LOG.name):
        assert emit_all(export) == 15  # record_count=15: checked once all parts are read
    assert _opened_parts(export) == ["1.csv", "2.csv", "3.csv", "4.csv"]
    assert watcher.counts == ["?"]  # "part 1 of ?" until the API says there is no part 4
    (result,) = watcher.results
    assert (result.count, result.parts_read) == (3, 3)
    assert "it has 3 (part 4 is not there)" in caplog.text
    assert read_entry(state) is None


def test_a_resumed_job_without_a_part_count_reads_on_after_the_parts_done(clock, tmp_path):
    api = FakeApi(clock, tmp_path, parts=3)
    api.unlisted_parts = True
    job_id = api.add_job(SPEC, JobState.COMPLETED, age=60)
    ledger = _ledger_state(job_id, SPEC, {"1": 5, "2": 5})
    export, state, _ = stream_export(run_context(api, clock), ledger)
    assert emit_all(export) == 5
    assert _opened_parts(export) == ["3.csv", "4.csv"]
    assert read_entry(state) is None
    assert api.calls.count("create") == 0


def test_a_missing_first_part_of_a_job_without_a_part_count_is_a_broken_result(clock, tmp_path):
    api = FakeApi(clock, tmp_path, parts=3)
    api.unlisted_parts = True
    job_id = api.add_job(SPEC, JobState.COMPLETED, age=60)
    api.jobs[job_id].parts = [str(tmp_path / "gone.csv")]
    export, state, _ = stream_export(run_context(api, clock), _ledger_state(job_id, SPEC))
    with pytest.raises(ApiRequestError):
        emit_all(export)
    assert read_entry(state).inconsistent == "a part of its result is missing (404)"


def test_a_part_repeating_the_one_before_ends_a_result_without_a_part_count(
    clock, tmp_path, caplog
):
    """An API that ignores the part number serves part 1 again and again: it is read once."""
    api = FakeApi(clock, tmp_path, parts=1)
    api.unlisted_parts = True
    job_id = api.add_job(SPEC, JobState.COMPLETED, age=60)
    first = tmp_path / f"{job_id}-1.csv"
    first.write_text("id,last_modified_date\n" + "r1,2024-03-02T00:00:00Z\n" * 5)
    for number in (2, 3):
        (tmp_path / f"{job_id}-{number}.csv").write_bytes(first.read_bytes())
    api.jobs[job_id].parts = [str(first)]
    export, _, _ = stream_export(run_context(api, clock), _ledger_state(job_id, SPEC))
    with caplog.at_level(logging.INFO, logger=LOG.name):
        assert emit_all(export) == 5
    assert _opened_parts(export) == ["1.csv", "2.csv"]
    assert "it has 1 (part 2 repeats part 1 byte for byte)" in caplog.text


def test_an_equivalent_job_past_the_first_page_is_reused(api, clock):
    for other in range(4):
        api.add_job(JobSpec("people", (str(other),)), JobState.COMPLETED, age=30)
    api.add_job(SPEC, JobState.COMPLETED, age=30)  # on the third page
    export, _, _ = stream_export(run_context(api, clock))
    assert emit_all(export) == 10
    assert api.calls.count("create") == 0
    assert api.calls.count("list") == 3


def test_a_job_older_than_the_last_one_emitted_is_not_reused(api, clock):
    api.add_job(SPEC, JobState.COMPLETED, age=30)
    state = {LAST_JOB_KEY: (clock.now() - datetime.timedelta(seconds=10)).isoformat()}
    export, _, _ = stream_export(run_context(api, clock), state)
    assert emit_all(export) == 10
    assert api.calls.count("create") == 1


def test_windows_cover_the_range_exactly_once():
    windows = plan_windows(DAY(2024, 1, 30), DAY(2024, 3, 2), 10)
    assert windows[0] == (DAY(2024, 1, 30), DAY(2024, 2, 8))
    assert windows[-1] == (DAY(2024, 2, 29), DAY(2024, 3, 2))
    days = [a + datetime.timedelta(n) for a, b in windows for n in range((b - a).days + 1)]
    assert days == [DAY(2024, 1, 30) + datetime.timedelta(n) for n in range(33)]


def test_finished_windows_are_marked_and_skipped_by_the_next_run(api, clock):
    export, state, _ = stream_export(run_context(api, clock, window_days=4))
    assert [(s.start, s.end) for s in export.specs()] == [
        (DAY(2024, 3, 1), DAY(2024, 3, 4)),
        (DAY(2024, 3, 5), DAY(2024, 3, 8)),
        (DAY(2024, 3, 9), DAY(2024, 3, 10)),
    ]
    emit_all(export)
    assert state[WINDOWS_DONE_KEY]["through"] == "2024-03-08"
    export, _, _ = stream_export(run_context(api, clock, window_days=4), state)
    assert [(s.start, s.end) for s in export.specs()] == [(DAY(2024, 3, 9), DAY(2024, 3, 10))]


@pytest.mark.parametrize("through", ["9999-12-31", "garbage", 20240305, None])
def test_a_windows_done_mark_that_is_not_a_usable_day_is_done_without(api, clock, through):
    done = {"field": "last_modified_date", "filters": [{}], "through": through}
    export, _, _ = stream_export(run_context(api, clock, window_days=5), {WINDOWS_DONE_KEY: done})
    assert [(s.start, s.end) for s in export.specs()] == [
        (DAY(2024, 3, 1), DAY(2024, 3, 5)),
        (DAY(2024, 3, 6), DAY(2024, 3, 10)),
    ]


def test_one_job_per_window_and_filter_set(api, clock):
    api.filters = [(("chunk", "1"),), (("chunk", "2"),)]
    export, _, _ = stream_export(run_context(api, clock, window_days=5))
    assert [(s.start.day, s.filters) for s in export.specs()] == [
        (1, (("chunk", "1"),)),
        (1, (("chunk", "2"),)),
        (6, (("chunk", "1"),)),
        (6, (("chunk", "2"),)),
    ]


def test_a_window_is_done_only_when_every_filter_set_of_it_is(api, clock):
    """Two windows of two filter sets each; the second set's create is refused (no job exists)
    once the first set's job is emitted. Neither the bookmark nor windows_done may pass that
    window; the next run exports its missing filter set, and only that one, then the rest.
    """
    first, second = (("chunk", "1"),), (("chunk", "2"),)
    api.filters = [first, second]
    api.refuse_filters[second] = QuotaExceededError("the quota is spent")
    export, state, checkpoints = stream_export(run_context(api, clock, window_days=5))
    with pytest.raises(QuotaExceededError):
        emit_all(export)
    assert [job.spec.filters for job in api.jobs.values()] == [first]
    assert checkpoints.bookmark is None and checkpoints.final is None
    assert WINDOWS_DONE_KEY not in state
    assert read_entry(state) is None
    del api.refuse_filters[second]
    export, state, checkpoints = stream_export(run_context(api, clock, window_days=5), state)
    assert [(s.start.day, s.filters) for s in export.specs()] == [
        (1, second),
        (6, first),
        (6, second),
    ]
    assert emit_all(export) == 30
    assert [(j.spec.start.day, j.spec.filters) for j in api.jobs.values()] == [
        (1, first),
        (1, second),
        (6, first),
        (6, second),
    ]
    assert state[WINDOWS_DONE_KEY]["through"] == "2024-03-05"
    assert checkpoints.final == "2024-03-09T00:00:00Z"
    assert SPLIT_WINDOW_KEY not in state


def test_a_filter_set_resumed_from_the_ledger_completes_its_window(api, clock):
    """A run stopped during the window's second filter set: the next run resumes that job, does
    not export the first set again, and the bookmark then takes the window's greatest value,
    the first set's included.
    """
    first, second = (("chunk", "1"),), (("chunk", "2"),)
    api.filters = [first, second]
    export, state, checkpoints = stream_export(run_context(api, clock))
    windows = export.windows()
    with next(windows) as window:  # the first filter set: emitted in full
        for part in window.parts():
            window.part_done(part, PartResult(5, "2024-03-10T08:00:00Z"))
        window.finish()
    assert checkpoints.bookmark is None  # the window has a filter set to go
    with next(windows) as window:  # the second: one part, then the run stops
        window.part_done(next(window.parts()), PartResult(5, "2024-03-02T00:00:00Z"))
    entry = read_entry(state)
    assert entry is not None and entry.spec.filters == second and entry.parts_done == {1: 5}
    export, state, checkpoints = stream_export(run_context(api, clock), state)
    assert [s.filters for s in export.specs()] == [second]
    assert emit_all(export) == 5
    assert api.calls.count("create") == 2
    assert checkpoints.final == "2024-03-10T08:00:00Z"


def test_the_state_is_checkpointed_after_each_part_with_the_greatest_value(api, clock):
    export, state, checkpoints = stream_export(run_context(api, clock))
    emit_all(export)
    values = [c for c in checkpoints if c is not None]
    assert len(values) == 3  # one per part, and the window's once it is done
    assert values == sorted(values)
    assert read_entry(state) is None


def test_a_run_crossing_midnight_uses_the_job_it_planned_ahead(tmp_path):
    """The run's last day is fixed when it starts: the job started ahead at 23:59:59 is the
    one the stream asks for after midnight, and no job is orphaned holding a slot.
    """
    clock = FakeClock(datetime.datetime(2024, 3, 10, 23, 59, 59, tzinfo=UTC))
    api = FakeApi(clock, tmp_path)
    run = run_context(api, clock, end=clock.now().date(), scheduler=JobScheduler(2))
    first, _, _ = stream_export(run, name="accounts")
    second, _, _ = stream_export(run, name="people")
    _plan(run, first, second)
    clock.advance(2)  # past midnight
    assert clock.now().date() == DAY(2024, 3, 11)
    emit_all(first)
    emit_all(second)
    assert api.calls.count("create") == 2
    assert run.scheduler.in_flight == []


def test_the_slot_goes_to_the_next_job_when_one_finishes_on_the_server(api, clock):
    """One slot: the next stream's job is created once the first is completed on the server,
    before the first one's parts are read, and never while a job of the tap still runs.
    """
    run = run_context(api, clock)
    first, _, _ = stream_export(run, name="accounts")
    second, second_state, _ = stream_export(run, name="people")
    _plan(run, first, second)
    window = next(first.windows())
    with window:
        _ = window.job  # completed on the server; not one part read yet
        assert [key[0] for key in run.scheduler.in_flight] == ["accounts", "people"]
        assert api.calls.count("create") == 2
        # The job created ahead is in its stream's ledger in the next STATE.
        assert [e["job_id"] for e in second_state["export_jobs_ahead"]] == ["job-2"]
        emit_parts(window)
        window.finish()
    emit_all(second)
    assert api.running_at_create == [0, 0]
    assert run.scheduler.most_running == 1
    assert "export_jobs_ahead" not in second_state and read_entry(second_state) is None


def test_a_stream_windows_are_pipelined_and_at_most_one_result_waits_unread(api, clock):
    run = run_context(api, clock, window_days=2)  # 2024-03-01..10: 5 windows
    export, state, _ = stream_export(run)
    _plan(run, export)
    windows = export.windows()
    window = next(windows)
    with window:
        _ = window.job
        # Job 2 ran while job 1 waited unread; job 3 waits for a place.
        assert len(run.scheduler.in_flight) == 2
        assert api.calls.count("create") == 2
        emit_parts(window)
        window.finish()
    for window in windows:
        with window:
            emit_parts(window)
            window.finish()
    assert api.calls.count("create") == 5
    assert api.running_at_create == [0] * 5
    assert read_entry(state) is None and "export_jobs_ahead" not in state


def test_a_crash_after_a_job_was_created_ahead_resumes_it_without_paying_twice(api, clock):
    run = run_context(api, clock, window_days=5)  # two windows
    export, state, _ = stream_export(run)
    _plan(run, export)
    window = next(export.windows())
    with window:
        _ = window.job
        emit_parts(window, 1)  # STATE with job 2 ahead, then the crash
    saved = json.loads(json.dumps(state))
    assert read_entry(saved).job_id == "job-1"
    assert [e["job_id"] for e in saved["export_jobs_ahead"]] == ["job-2"]

    again = run_context(api, clock, window_days=5)
    export, state, _ = stream_export(again, saved)
    _plan(again, export)
    emit_all(export)
    assert api.calls.count("create") == 2  # both jobs resumed, none created again
    assert read_entry(state) is None and "export_jobs_ahead" not in state


def test_a_planned_job_never_asked_for_gives_its_slot_back_when_its_stream_ends(api, clock):
    run = run_context(api, clock, scheduler=JobScheduler(2))
    first, _, _ = stream_export(run, name="accounts")
    second, _, _ = stream_export(run, name="people")
    third, _, _ = stream_export(run, name="opportunities")
    _plan(run, first, second, third)
    emit_all(first)
    run.scheduler.release_stream("people")  # the stream failed before asking for its job
    emit_all(third)
    run.scheduler.release_stream("opportunities")
    assert run.scheduler.in_flight == []
    assert api.calls.count("create") == 3


def test_jobs_are_started_in_sync_order_and_never_more_than_allowed(api, clock):
    run = run_context(api, clock, scheduler=JobScheduler(2))
    exports = [stream_export(run, name=n)[0] for n in ("a", "b", "c", "d")]
    _plan(run, *exports)
    for export in exports:
        emit_all(export)
    created = [job.spec.entity for job in api.jobs.values()]
    assert created == ["a", "b", "c", "d"]
    assert max(api.running_at_create) <= 1 and run.scheduler.most_running <= 2


def test_ledger_parts_done_carry_their_rows():
    spec = JobSpec("accounts", ("id",), "last_modified_date")
    entry = LedgerEntry("job-1", spec, "", parts_done={1: 40, 2: 38})
    state = entry.to_state()
    assert state["parts_done"] == {"1": 40, "2": 38}
    back = LedgerEntry.from_state(state)
    assert back is not None and back.rows_done() == 78
    old = LedgerEntry.from_state({**state, "parts_done": [1, 2]})
    assert old is not None and old.parts_done == {1: None, 2: None} and old.rows_done() is None


def test_reuse_rule_admits_only_recent_jobs_after_the_last_one():
    now = datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.timezone.utc)
    last = now - datetime.timedelta(minutes=30)
    rule = reuse_rule(last, {"job-x"}, now=now)

    def job(job_id, minutes_ago):
        created = now - datetime.timedelta(minutes=minutes_ago)
        return job_status_from_json(
            {"id": job_id, "status": "completed", "created_at": created.isoformat()}
        )

    assert rule.admits(job("job-a", 10))
    assert not rule.admits(job("job-b", 30))  # the last job itself, or older
    assert not rule.admits(job("job-x", 5))  # excluded
    assert not reuse_rule(None, now=now).admits(job("job-c", 121))
    assert reuse_rule(None, now=now).admits(job("job-d", 119))


def test_status_words_map_explicitly():
    def state(word):
        return job_status_from_json({"id": "j", "status": word}).state

    assert state("pending") is JobState.PENDING
    assert state("completed") is JobState.COMPLETED
    assert state("expired") is JobState.EXPIRED and JobState.EXPIRED.is_terminal
    assert state("queued") is JobState.UNKNOWN and not JobState.UNKNOWN.is_terminal
    assert job_status_from_json({"id": "j", "status": "running"}).status_name == "running"
