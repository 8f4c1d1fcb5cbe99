"""Lookback and backfill windows on the fake API and clock: extra windows, the bookmark kept."""

from __future__ import annotations

import datetime
import json
import logging
from dataclasses import replace

from tap_demandbase.engine.backfill import BACKFILL_KEY, SYNCED_FROM_KEY, BackfillRequest
from tap_demandbase.engine.export import StreamExport, StreamRequest
from tap_demandbase.engine.ledger import read_entry
from tap_demandbase.engine.stream_state import WINDOWS_DONE_KEY
from tests.support.engine import Checkpoints, emit_all, emit_parts, run_context
from tests.support.fakes import FakeApi, FakeClock

DAY = datetime.date
BOOKMARK = {
    "replication_key": "last_modified_date",
    "replication_key_value": "2024-03-08T00:00:00Z",
}


def _export(run, state, **request):
    checkpoints = Checkpoints()
    base = StreamRequest(
        name="accounts",
        fields=("id", "last_modified_date"),
        replication_key="last_modified_date",
        start=DAY(2024, 3, 8) if "replication_key_value" in state else DAY(2024, 3, 1),
        start_date=DAY(2024, 1, 1),
    )
    export = StreamExport(run, replace(base, **request), state, logging.getLogger("t"), checkpoints)
    return export, checkpoints


def _windows(export):
    return [(s.start, s.end, export.purpose_of(s)) for s in export.specs()]


def test_a_lookback_reads_the_days_before_the_bookmark_day_and_never_moves_it_back(tmp_path):
    clock = FakeClock()
    api = FakeApi(clock, tmp_path)
    run = run_context(api, clock)
    export, checkpoints = _export(run, dict(BOOKMARK), lookback_days=3)
    assert _windows(export) == [
        (DAY(2024, 3, 5), DAY(2024, 3, 7), "lookback"),
        (DAY(2024, 3, 8), DAY(2024, 3, 10), "incremental"),
    ]
    assert emit_all(export) == 20
    assert run.tally.snapshot().lookback_rows == 10
    # The lookback's job gave the bookmark no value; only the incremental window did.
    assert checkpoints.final == "2024-03-09T00:00:00Z"
    assert checkpoints[: checkpoints.index(None, 1)].count(None) >= 1


def test_a_first_sync_keeps_its_first_day_and_has_no_lookback(tmp_path):
    clock = FakeClock()
    api = FakeApi(clock, tmp_path)
    state: dict = {}
    export, _ = _export(run_context(api, clock), state, lookback_days=3)
    assert [w[2] for w in _windows(export)] == ["incremental"]
    assert state[SYNCED_FROM_KEY] == "2024-03-01"


def test_a_backfill_runs_a_few_windows_per_run_oldest_first_then_says_it_is_finished(
    tmp_path, caplog
):
    clock = FakeClock()
    api = FakeApi(clock, tmp_path)
    state = {**BOOKMARK, SYNCED_FROM_KEY: "2024-03-01"}
    backfill = BackfillRequest(DAY(2024, 1, 1))
    run = run_context(api, clock, window_days=30)
    run.backfill_jobs.jobs = 2
    export, _ = _export(run, state, backfill=backfill)
    assert _windows(export) == [
        (DAY(2024, 3, 8), DAY(2024, 3, 10), "incremental"),
        (DAY(2024, 1, 1), DAY(2024, 1, 30), "backfill"),
        (DAY(2024, 1, 31), DAY(2024, 2, 29), "backfill"),
    ]
    emit_all(export)
    assert state[BACKFILL_KEY]["through"] == "2024-02-29" and not state[BACKFILL_KEY]["finished"]
    assert state.get(WINDOWS_DONE_KEY) is None  # the backfill marked no window done
    assert run.tally.snapshot().backfill_rows == 20

    again = run_context(api, clock, window_days=30)
    export, _ = _export(again, json.loads(json.dumps(state)), backfill=backfill)
    assert [w for w in _windows(export) if w[2] == "backfill"] == [
        (DAY(2024, 3, 1), DAY(2024, 3, 1), "backfill")
    ]
    with caplog.at_level(logging.INFO):
        emit_all(export)
    assert export.state[BACKFILL_KEY]["finished"] is True
    assert any(
        "backfill of stream 'accounts'" in r.getMessage() and "finished" in r.getMessage()
        for r in caplog.records
    )

    third, _ = _export(run_context(api, clock, window_days=30), export.state, backfill=backfill)
    assert [w[2] for w in _windows(third)] == ["incremental"]
    new, _ = _export(
        run_context(api, clock), export.state, backfill=BackfillRequest(DAY(2023, 12, 1))
    )
    assert "backfill" in [w[2] for w in _windows(new)], "another start is a new backfill"


def test_a_backfill_job_interrupted_is_resumed_as_a_backfill(tmp_path):
    clock = FakeClock()
    api = FakeApi(clock, tmp_path)
    state = {**BOOKMARK, SYNCED_FROM_KEY: "2024-03-01"}
    backfill = BackfillRequest(DAY(2024, 2, 1))
    run = run_context(api, clock)
    export, _ = _export(run, state, backfill=backfill)
    windows = export.windows()
    first = next(windows)
    with first:
        emit_parts(first)
        first.finish()
    second = next(windows)  # the backfill window: one part emitted, then the crash
    with second:
        emit_parts(second, 1)
    saved = json.loads(json.dumps(state))
    assert read_entry(saved).purpose == "backfill"

    again = run_context(api, clock)
    export, _ = _export(again, saved, backfill=backfill)
    assert [w[2] for w in _windows(export)] == ["incremental", "backfill"]
    emit_all(export)
    assert api.calls.count("create") == 3  # the backfill job was resumed, not created anew
    assert export.state[BACKFILL_KEY]["finished"] is True
    assert export.state.get(WINDOWS_DONE_KEY) is None


def test_a_ledger_job_of_another_entity_is_said_once_however_many_kinds_of_window(tmp_path, caplog):
    from tap_demandbase.engine.ledger import LEDGER_KEY, LedgerEntry
    from tap_demandbase.model import JobSpec

    clock = FakeClock()
    api = FakeApi(clock, tmp_path)
    other = JobSpec("people", ("id",), "last_modified_date", DAY(2024, 3, 1), DAY(2024, 3, 10))
    state = {
        **BOOKMARK,
        SYNCED_FROM_KEY: "2024-03-01",
        LEDGER_KEY: LedgerEntry("job-9", other, "2024-03-10T00:00:00+00:00").to_state(),
    }
    export, _ = _export(
        run_context(api, clock), state, lookback_days=3, backfill=BackfillRequest(DAY(2024, 2, 1))
    )
    with caplog.at_level(logging.WARNING):
        assert {w[2] for w in _windows(export)} == {"lookback", "incremental", "backfill"}
    said = [r for r in caplog.records if "names export job job-9 of entity 'people'" in r.message]
    assert len(said) == 1
