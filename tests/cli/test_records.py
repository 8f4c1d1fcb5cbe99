"""Records through the command: lax or ambiguous parts refused in one line naming where, the
replication_keys setting over an older catalog's, and a U+FEFF leading a data row kept.
"""

from __future__ import annotations

import pytest

from tests.support.records import batch_rows
from tests.support.tap import discover, run_tap, select, tap_config

# The same promises end to end: the real CLI against the emulator --------------------------


@pytest.mark.parametrize(
    ("defect", "where"),
    [
        ("duplicate_header", "opportunities: part 1, line 1: the header names column(s)"),
        ("lax_integer", "opportunities: part 1, line 3, field '"),
        ("week_date", "opportunities: part 1, line 3, field '"),
        ("ragged_multiline", "opportunities: part 1, line 4: "),
    ],
)
def test_cli_refuses_lax_or_ambiguous_parts(sandbox, tmp_path, defect, where):
    sandbox.settings.malformed = {"opportunities": defect}
    catalog = select(discover(tmp_path, tap_config(sandbox)), {"opportunities": None})
    run = run_tap(tmp_path, tap_config(sandbox), catalog=catalog)
    assert run.returncode == 1
    # Rows before the bad one may be out, but the part is not counted done nor bookmarked.
    bookmark = run.last_state["bookmarks"]["opportunities"]
    assert "replication_key_value" not in bookmark
    assert bookmark["export_job"]["parts_done"] == {}
    lines = [line for line in run.error_lines if where in line]
    assert lines, run.stderr
    if defect in {"lax_integer", "week_date"}:
        bad = "1_000" if defect == "lax_integer" else "2024-W01-1T10:00:00Z"
        assert f"'{bad}' is not a valid" in lines[0]


def test_replication_keys_setting_beats_an_older_catalog(sandbox, tmp_path):
    catalog = select(discover(tmp_path, tap_config(sandbox)), {"accounts": ["id"]})
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == "accounts")
    assert entry["replication_key"] == "last_modified_date"
    config = tap_config(sandbox, replication_keys={"accounts": "created_date"})
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert "replication_keys.accounts='created_date' overrides the catalog's" in run.stderr
    job = next(r for r in sandbox.requests() if r.method == "POST")
    assert job.body["filters"]["date_range"]["field"] == "created_date"
    bookmark = run.last_state["bookmarks"]["accounts"]
    assert bookmark["replication_key"] == "created_date"


@pytest.mark.parametrize("output", ["records", "jsonl", "parquet"])
def test_cli_keeps_u_feff_leading_a_data_row(sandbox, tmp_path, output):
    """A row whose first cell starts with U+FEFF (or is only U+FEFF) is data: every output
    of the columnar path keeps it, as the Python reader does; only the file's BOM goes.
    """
    sandbox.settings.bom_led_rows = True
    sandbox.settings.column_order = "sorted"  # description first: text, sometimes empty
    overrides = {}
    if output != "records":
        encoding = {"format": output, "compression": "none"}
        overrides["batch_config"] = {
            "encoding": encoding,
            "storage": {"root": f"file://{tmp_path}/batches"},
        }
    config = tap_config(sandbox, **overrides)
    fields = ["description", "id", "last_modified_date"]
    catalog = select(discover(tmp_path, config), {"accounts": fields})
    run = run_tap(tmp_path, config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    emitted = run.records["accounts"] if output == "records" else batch_rows(run, "accounts")
    plain = {row["id"]: row["description"] for row in sandbox.expected_rows("accounts")}
    assert len(emitted) == len(plain) == 120
    for record in emitted:
        assert record["description"] == "\ufeff" + (plain[record["id"]] or ""), record["id"]
    assert any(record["description"] == "\ufeff" for record in emitted)
