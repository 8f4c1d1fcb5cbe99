"""Lookback and backfill through the real CLI, against the emulator of each dialect: the
emulator says which rows the source holds; the tap's bookmark never moves back.
"""

from __future__ import annotations

import datetime
from typing import Any

from tests.support.dialect_cases import DialectCase
from tests.support.tap import discover, run_tap, select


def _ids(records: list[dict[str, Any]], key: str = "id") -> set[Any]:
    return {r[key] for r in records}


def _bookmark(state: dict[str, Any], stream: str) -> str:
    return state["bookmarks"][stream]["replication_key_value"]


def test_a_backfill_lands_the_older_rows_without_moving_the_bookmark(dialect_case, tmp_path):
    case: DialectCase = dialect_case
    config = case.config(start_date="2024-03-01T00:00:00Z")
    catalog = select(discover(tmp_path, config), {"accounts": None})
    first = run_tap(tmp_path, config, catalog=catalog)
    assert first.returncode == 0, first.stderr
    older = _ids(case.expected_rows("accounts", start="2024-01-01", end="2024-02-29"))
    assert older and not older & _ids(first.records["accounts"])

    backfill = {**config, "backfill_start_date": "2024-01-01T00:00:00Z", "window_days": 30}
    second = run_tap(tmp_path, backfill, catalog=catalog, state=first.last_state)
    assert second.returncode == 0, second.stderr
    assert older <= _ids(second.records["accounts"])
    state = second.last_state["bookmarks"]["accounts"]
    assert _bookmark(second.last_state, "accounts") == _bookmark(first.last_state, "accounts")
    assert state["backfill"]["finished"] is True and state["backfill"]["end"] == "2024-03-01"
    (line,) = [x for x in second.stderr.splitlines() if "backfill of stream" in x]
    assert "finished" in line
    assert "backfill windows brought" in second.stderr

    third = run_tap(tmp_path, backfill, catalog=catalog, state=second.last_state)
    assert third.returncode == 0, third.stderr
    assert not older & _ids(third.records.get("accounts", []))  # a finished backfill is done


def test_the_lookback_re_reads_restated_rows_and_says_how_many(dialect_case, tmp_path):
    case: DialectCase = dialect_case
    stream, key = "activities", case.replication_key("activities")
    catalog = select(discover(tmp_path, case.config()), {stream: None})
    first = run_tap(tmp_path, case.config(), catalog=catalog)
    assert first.returncode == 0, first.stderr
    day = _bookmark(first.last_state, stream)[:10]
    since = (datetime.date.fromisoformat(day) - datetime.timedelta(days=14)).isoformat()
    before = [r for r in first.records[stream] if since < r[key][:10] < day]
    assert before, day
    target = before[0][case.primary_key(stream)]
    case.sb.settings.restated_rows = {stream: {target: 1}}

    plain = run_tap(tmp_path, case.config(), catalog=catalog, state=first.last_state)
    assert target not in _ids(plain.records.get(stream, []), case.primary_key(stream))
    config = case.config(lookback_days=14)
    second = run_tap(tmp_path, config, catalog=catalog, state=first.last_state)
    assert second.returncode == 0, second.stderr
    restated = {r[case.primary_key(stream)]: r for r in second.records[stream]}
    expected = {r[case.primary_key(stream)]: r for r in case.expected_rows(stream, start=since)}
    assert restated[target] != before[0]
    assert set(expected) <= set(restated)
    assert _bookmark(second.last_state, stream) == _bookmark(first.last_state, stream)
    (summary,) = [x for x in second.stderr.splitlines() if "Run summary" in x]
    assert "the lookback re-read" in summary


def test_runs_that_check_deletes_every_time_stay_within_the_daily_limits(tmp_path):
    """delete_check_days 0 on a small uapi tenant: six runs in one UTC day, each a full check
    of four streams (five jobs), spend 30 of the 60 creates and about 33 of the 300 status calls.
    """
    from tests.support.dialect_cases import UapiCase, sandbox_for

    streams = ("accounts", "people", "opportunities", "activities")
    with sandbox_for("uapi") as sb:
        case = UapiCase(sb)
        config = case.config(detect_deletes=True, delete_check_days=0)
        catalog = select(discover(tmp_path, config), dict.fromkeys(streams))
        key = {stream: case.primary_key(stream) for stream in streams}
        source = {s: _ids(case.expected_rows(s), key[s]) for s in streams}
        sb.reset()
        state: dict[str, Any] = {}
        for _ in range(6):
            run = run_tap(tmp_path, config, catalog=catalog, state=state)
            assert run.returncode == 0, run.stderr
            assert "deferred" not in run.stderr  # within budget_share all day
            assert "the delete check read" in run.stderr
            state = run.last_state
            for stream in streams:
                assert _ids(run.records[stream], key[stream]) == source[stream], stream
        usage = sb.usage()
        assert usage["create"] == 6 * 5 and usage["status"] <= 0.8 * 300, usage
