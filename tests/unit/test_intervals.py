"""min_interval_hours on the fake API and clock: a stream whose last job is younger is skipped."""

from __future__ import annotations

import datetime
import logging

from tap_demandbase.engine.budget import DEFERRED_KEY
from tap_demandbase.engine.export import StreamExport, StreamRequest
from tap_demandbase.engine.ledger import LEDGER_KEY, LedgerEntry
from tap_demandbase.engine.stream_state import LAST_JOB_KEY
from tap_demandbase.model import JobSpec
from tests.support.engine import emit_all, run_context
from tests.support.fakes import FakeApi, FakeClock

DAY = datetime.date


def _export(run, state, hours):
    request = StreamRequest(
        name="accounts",
        fields=("id", "last_modified_date"),
        replication_key="last_modified_date",
        start=DAY(2024, 3, 1),
        min_interval=datetime.timedelta(hours=hours),
    )
    return StreamExport(run, request, state, logging.getLogger("t"), lambda *a, **k: None)


def test_a_stream_is_skipped_until_its_interval_has_passed(tmp_path, caplog):
    clock = FakeClock()
    api = FakeApi(clock, tmp_path)
    created = (clock.now() - datetime.timedelta(hours=3)).isoformat()
    export = _export(run_context(api, clock), {LAST_JOB_KEY: created}, 24)
    with caplog.at_level(logging.INFO):
        assert emit_all(export) == 0
    assert api.calls == []
    (line,) = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert "Stream 'accounts' skipped" in line and "3.0 h ago" in line and "=24" in line

    due = _export(run_context(api, clock), {LAST_JOB_KEY: created}, 2)
    assert emit_all(due) == 10 and api.calls.count("create") == 1


def test_a_deferred_stream_or_one_with_a_job_in_flight_is_never_skipped(tmp_path):
    clock = FakeClock()
    api = FakeApi(clock, tmp_path)
    created = clock.now().isoformat()
    deferred = {LAST_JOB_KEY: created, DEFERRED_KEY: {"at": created}}
    assert _export(run_context(api, clock), deferred, 24).skipped_because() is None
    spec = JobSpec("accounts", ("id",), "last_modified_date", DAY(2024, 3, 1), DAY(2024, 3, 10))
    in_flight = {LAST_JOB_KEY: created, LEDGER_KEY: LedgerEntry("job-9", spec, created).to_state()}
    assert _export(run_context(api, clock), in_flight, 24).skipped_because() is None
