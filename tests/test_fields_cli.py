"""Fields that come and go, and feeds that stop, through the CLI against each emulator: a removed
field is dropped (one WARNING, rows still delivered with the column null, state kept right), an
added field is named, and a bookmark that stands still is reported, by syncs and by --test.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pendulum

from tests.conftest import discover, run_tap, select
from tests.dialect_cases import DialectCase

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
    case.sb.settings.removed_fields = {STREAM: ["industry"]}
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
