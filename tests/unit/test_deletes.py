"""The delete check's schedule and versions on the fake API and clock."""

from __future__ import annotations

import datetime
import json
import logging

import pytest

from tap_demandbase.engine.deletes import DELETE_CHECK_KEY
from tap_demandbase.engine.export import StreamExport, StreamRequest
from tap_demandbase.errors import MalformedResultError
from tap_demandbase.model import JobState
from tests.support.engine import Checkpoints, emit_all, run_context
from tests.support.fakes import FakeApi, FakeClock

DAY = datetime.date
WEEK = datetime.timedelta(days=7)


def _export(run, state, every=WEEK):
    completed: list[int] = []
    request = StreamRequest(
        name="accounts",
        fields=("id", "last_modified_date"),
        replication_key="last_modified_date",
        start=DAY(2024, 3, 8) if state.get("replication_key_value") else DAY(2024, 3, 1),
        start_date=DAY(2024, 3, 1),
        primary_key="id",
        delete_check=every,
    )
    export = StreamExport(
        run,
        request,
        state,
        logging.getLogger("t"),
        Checkpoints(),
        version_complete=completed.append,
    )
    return export, completed


def _purposes(export):
    return [(s.start, s.end, export.purpose_of(s)) for s in export.specs()]


def test_a_due_check_exports_every_row_under_a_new_version_then_completes_it(tmp_path):
    clock = FakeClock()
    api = FakeApi(clock, tmp_path)
    state = {
        "replication_key": "last_modified_date",
        "replication_key_value": "2024-03-08T00:00:00Z",
    }
    export, completed = _export(run_context(api, clock, window_days=5), state)
    assert _purposes(export) == [
        (DAY(2024, 3, 1), DAY(2024, 3, 5), "check"),
        (DAY(2024, 3, 6), DAY(2024, 3, 10), "check"),
    ]
    version = export.version
    assert version == int(clock.now().timestamp() * 1000)
    emit_all(export)
    assert completed == [version]  # once, after the check's last job
    assert state[DELETE_CHECK_KEY]["version"] == version

    clock.advance(24 * 3600)  # a day later: incremental, records keep the complete version
    export, completed = _export(run_context(api, clock), json.loads(json.dumps(state)))
    assert [p for *_, p in _purposes(export)] == ["incremental"]
    assert export.version == version
    emit_all(export)
    assert completed == []

    clock.advance(7 * 24 * 3600)  # a week on: the next check, a greater version
    export, completed = _export(run_context(api, clock), json.loads(json.dumps(export.state)))
    assert [p for *_, p in _purposes(export)] == ["check"]
    emit_all(export)
    assert completed and completed[0] > version


def test_with_zero_days_every_run_checks(tmp_path):
    clock = FakeClock()
    api = FakeApi(clock, tmp_path)
    state: dict = {}
    versions = []
    for _ in range(3):
        export, completed = _export(run_context(api, clock), state, every=datetime.timedelta(0))
        emit_all(export)
        versions += completed
        clock.advance(60)
    assert len(versions) == 3 and versions == sorted(set(versions))


def test_a_check_that_does_not_finish_completes_no_version_and_runs_again(tmp_path):
    clock = FakeClock()
    api = FakeApi(clock, tmp_path)
    api.timelines = [[(1.0, JobState.COMPLETED)], [(1.0, JobState.COMPLETED)]]
    state: dict = {}
    export, completed = _export(run_context(api, clock, window_days=5), state)
    windows = export.windows()
    first = next(windows)
    with first:
        for part in first.parts():
            first.part_done(part, replace_result(part))
        first.finish()
    api.rows = 1  # the second job's rows disagree with its record_count: the window fails
    second = next(windows)
    with pytest.raises(MalformedResultError), second:
        for part in second.parts():
            second.part_done(part, replace_result(part, rows=99))
        second.finish()
    assert completed == [] and DELETE_CHECK_KEY not in state
    again, _ = _export(run_context(api, clock, window_days=5), json.loads(json.dumps(state)))
    assert {p for *_, p in _purposes(again)} == {"check"}


def replace_result(part, rows=None):
    from tap_demandbase.engine.window import PartResult

    lines = part.path.read_text().splitlines()[1:]
    return PartResult(len(lines) if rows is None else rows, max(x.split(",")[1] for x in lines))
