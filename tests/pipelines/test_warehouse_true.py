"""The warehouse stays a true copy: several syncs in a row into PostgreSQL (target-postgres,
upsert, soft deletes), the emulator's source changing between runs, on both dialects.

After each run the table must equal the source (``tests/support/source_model.py``): every live
row with the source's values, every row gone at the source soft-deleted with its last values,
no live row marked deleted. Changes between runs: rows inserted, updated, deleted, merged away,
one deleted row back; an activity restated inside the lookback; a field removed and one added.
"""

from __future__ import annotations

import json
import typing as t

import pytest

from tests.support.pipelines import tap_to_postgres
from tests.support.source_model import field_types, gone_ids, live_rows
from tests.support.tap import discover, select

if t.TYPE_CHECKING:
    from tests.support.dialect_cases import DialectCase
    from tests.support.postgres import ThrowawayPostgres

pytestmark = [pytest.mark.cli, pytest.mark.slow]
STREAMS = ("accounts", "activities")
#: Columns compared cell by cell: their text is the same in the CSV and in psql's output.
COMPARED_TYPES = ("string", "text", "integer", "int")


def _table(postgres: ThrowawayPostgres, schema: str, table: str, columns: list[str]) -> t.Any:
    """Return id -> ({column: text or None}, deleted) of a warehouse table."""
    names = ", ".join(f'"{c}"::text' for c in columns)
    query = (
        f"SELECT row_to_json(r) FROM (SELECT id, _sdc_deleted_at IS NOT NULL AS deleted, {names} "
        f'FROM "{schema}"."{table}") r'
    )
    out = {}
    for (line,) in postgres.sql(query):
        row = json.loads(line)
        out[row["id"]] = ({c: row[c] for c in columns}, row["deleted"])
    return out


def _assert_true_copy(
    postgres: ThrowawayPostgres, case: DialectCase, schema: str, last: dict[str, t.Any]
) -> dict[str, t.Any]:
    """Assert each table equals the source; return each stream's live rows (the last values)."""
    now = {}
    for stream in STREAMS:
        types = field_types(case.sb.settings, stream, case.name)
        columns = [f for f, kind in types.items() if kind.lower() in COMPARED_TYPES and f != "id"]
        source = live_rows(case.sb.settings, stream, case.name)
        table = _table(postgres, schema, stream, columns)
        live = {row_id for row_id, (_, deleted) in table.items() if not deleted}
        assert live == set(source), stream  # no row missing, no row gone left live
        for row_id in live:
            assert table[row_id][0] == {c: source[row_id][c] for c in columns}, (stream, row_id)
        for row_id in gone_ids(case.sb.settings, stream) & set(table):
            values, deleted = table[row_id]
            assert deleted, (stream, row_id)
            before = last.get(stream, {}).get(row_id)
            if before is not None:  # soft-deleted with its last values
                assert {c: v for c, v in values.items() if c in before} == {
                    c: before[c] for c in values if c in before
                }, (stream, row_id)
        now[stream] = source
    return now


def test_several_runs_keep_the_table_equal_to_the_source(postgres, dialect_case, tmp_path):
    case: DialectCase = dialect_case
    settings = case.sb.settings
    schema = f"true_{case.name}"
    config = case.config(detect_deletes=True, delete_check_days=0, lookback_days={"activities": 30})
    target = {
        "sqlalchemy_url": postgres.url,
        "default_target_schema": schema,
        "load_method": "upsert",
        "hard_delete": False,
        "add_record_metadata": True,
    }
    catalog = select(discover(tmp_path, config), dict.fromkeys(STREAMS))

    def run(name: str, state: dict[str, t.Any] | None) -> dict[str, t.Any]:
        return tap_to_postgres(tmp_path, config, target, name, state, catalog)

    state = run("run1", None)
    last = _assert_true_copy(postgres, case, schema, {})
    accounts = sorted(last["accounts"])
    activities = sorted(last["activities"])

    # Deleted, merged away, updated, inserted; an activity restated.
    settings.deleted_rows = {"accounts": accounts[:2]}
    settings.merged_rows = {"accounts": {accounts[2]: f"{accounts[3]}@2024-04-29T10:00:00Z"}}
    settings.updated_rows = {"accounts": {accounts[4]: "2024-04-29T08:00:00Z"}}
    settings.appended_rows = {"accounts": {"2024-04-29T09:00:00Z": 3}}
    settings.restated_rows = {"activities": {activities[-1]: 1}}
    state = run("run2", state)
    last = _assert_true_copy(postgres, case, schema, last)

    # A deleted row back, unchanged; a field removed (the catalog still selects it).
    settings.deleted_rows = {"accounts": accounts[1:2]}
    settings.removed_fields = {"accounts": ["industry"]}
    state = run("run3", state)
    last = _assert_true_copy(postgres, case, schema, last)
    assert accounts[0] in last["accounts"]
    live_industry = (
        f'SELECT count(industry) FROM "{schema}"."accounts" WHERE _sdc_deleted_at IS NULL'
    )
    assert postgres.sql(live_industry) == [["0"]]  # its column stays, empty for every live row

    # A field added: discovered anew, it becomes a column holding the source's values.
    settings.added_fields = {"accounts": {"tier_code": "string"}}
    catalog = select(discover(tmp_path, config), dict.fromkeys(STREAMS))
    state = run("run4", state)
    last = _assert_true_copy(postgres, case, schema, last)
    assert any(row["tier_code"] for row in last["accounts"].values())  # compared above
    assert postgres.sql(live_industry) == [["0"]]
