"""Fields that come and go, and feeds that stop, through the CLI against each emulator: a removed
field is dropped (one WARNING, rows still delivered with the column null, state kept right), an
added field is named, and a bookmark that stands still is reported, by syncs and by --test.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pendulum
import pytest

from tests.support.dialect_cases import DialectCase
from tests.support.records import batch_rows
from tests.support.tap import discover, run_tap, select

STREAM = "accounts"


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "WARNING" in line]


def _infos(stderr: str, words: str) -> list[str]:
    return [line for line in stderr.splitlines() if "INFO" in line and words in line]


def _posts(case: DialectCase) -> list[Any]:
    return [r for r in case.api_requests() if r.method == "POST" and "/job" in r.path]


def _accounts_catalog(case: DialectCase, tmp_path) -> dict[str, Any]:
    return select(discover(tmp_path, case.config()), {STREAM: None})


def test_a_removed_field_is_dropped_and_its_column_delivered_empty(dialect_case, tmp_path):
    case = dialect_case
    catalog = _accounts_catalog(case, tmp_path)
    before = run_tap(tmp_path, case.config(), catalog=catalog)
    assert before.returncode == 0, before.stderr
    case.sb.settings.update({"removed_fields": {STREAM: ["industry"]}})
    case.sb.reset()  # no job of the first run to re-use: the next one is created

    run = run_tap(tmp_path, case.config(), catalog=catalog)
    assert run.returncode == 0, run.stderr
    (warning,) = _warnings(run.stderr)
    api_name = "industry" if case.name == "export_v1" else "{Account}.industry"
    assert f"Stream '{STREAM}'" in warning and "industry" in warning and api_name in warning
    # The refused create, then the same job without the field: no other call is spent.
    posts = _posts(case)
    assert len(posts) == 2 and posts[0].status == 400 and posts[1].status < 300
    created = case.created_jobs()
    assert "industry" in created[0].fields and "industry" not in created[1].fields
    assert created[1].fields == created[0].fields - {"industry"}
    # Every row, with the values of the run before, and industry null.
    expected = [r | {"industry": None} for r in before.records[STREAM]]
    key = case.primary_key(STREAM)
    assert sorted(run.records[STREAM], key=lambda r: r[key]) == sorted(
        expected, key=lambda r: r[key]
    )
    assert all("industry" in r for r in run.records[STREAM])
    # The state is that of a finished sync: bookmark at the greatest value, no job in flight.
    bookmark = run.last_state["bookmarks"][STREAM]
    assert "export_job" not in bookmark
    replication_key = case.replication_key(STREAM)
    assert replication_key is not None
    newest = max(pendulum.parse(r[replication_key]) for r in run.records[STREAM])
    assert pendulum.parse(bookmark["replication_key_value"]) == newest
    assert (
        bookmark["replication_key_value"]
        == (before.last_state["bookmarks"][STREAM]["replication_key_value"])
    )


def _without_api_names(catalog: dict[str, Any]) -> dict[str, Any]:
    catalog = copy.deepcopy(catalog)
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            item["metadata"].pop("api-name", None)
    return catalog


def test_an_added_field_is_named_when_the_run_has_the_api_field_list(dialect_case, tmp_path):
    """uapi: a sync whose catalog lacks the API names asks /fields anyway (once); export_v1:
    --test lists the entities. Neither spends a call for it.
    """
    case = dialect_case
    catalog = _accounts_catalog(case, tmp_path)
    case.sb.settings.update(
        {"added_fields": {STREAM: {"lead_score": "integer"}}, "removed_fields": {STREAM: ["phone"]}}
    )
    case.sb.reset()
    if case.name == "uapi":
        run = run_tap(tmp_path, case.config(), catalog=_without_api_names(catalog))
        fields_calls = [r for r in case.api_requests() if r.path.endswith("/fields")]
        assert len(fields_calls) == 1
        assert len(_posts(case)) == 1  # phone dropped before the create: none refused
        assert all(r["phone"] is None for r in run.records[STREAM])
        assert all("lead_score" not in r for r in run.records[STREAM])
    else:
        run = run_tap(tmp_path, case.config(), "--test", catalog=catalog)
        assert not _posts(case)
    assert run.returncode == 0, run.stderr
    (new,) = _infos(run.stderr, "catalog lacks")
    api_name = "lead_score" if case.name == "export_v1" else "{Account}.leadScore"
    assert f"Stream '{STREAM}'" in new and "lead_score" in new and api_name in new
    assert "--discover" in new and f"meltano select tap-demandbase {STREAM} lead_score" in new
    (gone,) = _warnings(run.stderr)
    assert "phone" in gone and "null" in gone


def _hours_ago(hours: float) -> str:
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=hours)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def test_a_bookmark_standing_still_is_reported_by_each_run_and_by_test(dialect_case, tmp_path):
    case = dialect_case
    catalog = _accounts_catalog(case, tmp_path)
    first = run_tap(tmp_path, case.config(), catalog=catalog)
    assert first.returncode == 0, first.stderr
    state = first.last_state
    bookmark = state["bookmarks"][STREAM]
    moved = pendulum.parse(bookmark["bookmark_moved_at"])
    assert bookmark["bookmark_moved_at"].endswith("Z")
    assert abs((pendulum.now("UTC") - moved).total_seconds()) < 600
    assert not [w for w in _warnings(first.stderr) if "has not moved" in w]

    # The source stops growing: the next run's bookmark is the same value, moved 100 hours ago.
    bookmark["bookmark_moved_at"] = _hours_ago(100)
    second = run_tap(tmp_path, case.config(), catalog=catalog, state=state)
    assert second.returncode == 0, second.stderr
    (warning,) = _warnings(second.stderr)
    newest_day = pendulum.parse(bookmark["replication_key_value"]).in_tz("UTC").to_date_string()
    assert f"Stream '{STREAM}'" in warning and "4.2 days" in warning
    assert f"newest value is of {newest_day}" in warning
    kept = second.last_state["bookmarks"][STREAM]
    assert kept["replication_key_value"] == bookmark["replication_key_value"]
    assert kept["bookmark_moved_at"] == bookmark["bookmark_moved_at"]

    test = run_tap(tmp_path, case.config(), "--test", catalog=catalog, state=state)
    assert test.returncode == 0, test.stderr
    (reported,) = _warnings(test.stderr)
    assert reported[reported.index("Stream '") :] == warning[warning.index("Stream '") :]
    no_catalog = run_tap(tmp_path, case.config(), "--test", state=state)
    assert no_catalog.returncode == 0, no_catalog.stderr
    assert [w for w in _warnings(no_catalog.stderr) if "has not moved for 4.2 days" in w]
    off = run_tap(tmp_path, case.config(freshness_warn_hours=0), "--test", state=state)
    assert off.returncode == 0 and not _warnings(off.stderr), off.stderr
    fraction = run_tap(tmp_path, case.config(freshness_warn_hours=100.5), "--test", state=state)
    assert fraction.returncode == 0 and not _warnings(fraction.stderr), fraction.stderr

    # New rows: the bookmark moves, the clock starts again, nothing is said.
    case.sb.settings.update({"appended_rows": {STREAM: {"2024-04-20T09:00:00Z": 2}}})
    third = run_tap(tmp_path, case.config(), catalog=catalog, state=second.last_state)
    assert third.returncode == 0, third.stderr
    assert not [w for w in _warnings(third.stderr) if "has not moved" in w]
    moved_again = third.last_state["bookmarks"][STREAM]
    assert moved_again["replication_key_value"] > bookmark["replication_key_value"]
    assert (
        abs(
            (pendulum.now("UTC") - pendulum.parse(moved_again["bookmark_moved_at"])).total_seconds()
        )
        < 600
    )


@pytest.mark.parametrize("format_", ["jsonl", "parquet"])
def test_batch_files_hold_a_dropped_field_as_null(dialect_case, tmp_path, format_):
    case = dialect_case
    catalog = _accounts_catalog(case, tmp_path)
    case.sb.settings.update({"removed_fields": {STREAM: ["industry"]}})
    encoding = {"format": format_, "compression": "gzip"}
    config = case.config(
        batch_config={"encoding": encoding, "storage": {"root": f"file://{tmp_path}/batches"}}
    )
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    (warning,) = _warnings(run.stderr)
    assert "industry" in warning
    rows = batch_rows(run, STREAM)
    assert len(rows) == len(case.expected_rows(STREAM))
    assert all(row["industry"] is None for row in rows)
    assert all(row[case.primary_key(STREAM)] for row in rows)


def test_a_job_created_without_a_field_is_resumed_without_it_after_a_kill(dialect_case, tmp_path):
    from tests.support.tap import LiveTap, ledger_of

    case = dialect_case
    catalog = _accounts_catalog(case, tmp_path)
    case.sb.settings.update({"removed_fields": {STREAM: ["industry"]}, "processing_seconds": 2.0})
    live = LiveTap(tmp_path, case.config(), catalog)
    state = live.read_until(lambda m: ledger_of(m, STREAM) is not None)["value"]
    live.process.kill()
    live.process.wait()
    ledger = state["bookmarks"][STREAM]["export_job"]
    assert "industry" not in ledger["fields"]
    assert list(ledger["fields_dropped"]) == ["industry"]
    assert len(_posts(case)) == 2  # refused, then created without the field

    case.sb.settings.update({"processing_seconds": 0.1})
    run = run_tap(tmp_path, case.config(), catalog=catalog, state=state)
    assert run.returncode == 0, run.stderr
    assert len(_posts(case)) == 2  # resumed: no new job, no refused create either
    assert "resumed from the state" in run.stderr
    (warning,) = _warnings(run.stderr)
    assert "industry" in warning and ledger["job_id"] in warning
    records = run.records[STREAM]
    assert len(records) == len(case.expected_rows(STREAM))
    assert all(r["industry"] is None for r in records)
    assert "export_job" not in run.last_state["bookmarks"][STREAM]
