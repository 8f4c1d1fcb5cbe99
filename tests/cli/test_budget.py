"""The daily budget across runs, on the fake API and clock (engine) and the uapi emulator (CLI)."""

from __future__ import annotations

import datetime

from tap_demandbase.engine.budget import (
    USAGE_KEY,
)

# --- CLI, uapi emulator ------------------------------------------------------------------------


def _yesterday(state: dict) -> dict:
    """The state as the next UTC day's first run reads it: its calls are of another day."""
    for stream_state in state["bookmarks"].values():
        if USAGE_KEY in stream_state:
            stream_state[USAGE_KEY]["day"] = "2000-01-01"
    return state


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
