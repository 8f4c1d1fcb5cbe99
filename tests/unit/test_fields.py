"""Fields that come and go, on the fake API and clock: the field-drop rule and the new-field line.

A selected field the API no longer has is dropped from the stream's jobs (one WARNING), a key
field never is (one error line), a create is sent again only with fewer fields (never a loop),
and a job resumed from the state goes without the fields its run dropped.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tap_demandbase.engine.export import StreamExport, StreamRequest
from tap_demandbase.engine.ledger import read_entry
from tap_demandbase.errors import UnknownFieldsError
from tap_demandbase.model import FieldInfo, JobSpec, JobState
from tests.support.engine import DAY, LOG, Checkpoints, emit_all, run_context
from tests.support.fakes import FakeApi, FakeClock

FIELDS = ("id", "last_modified_date", "industry", "tier")


def _stream(
    api: FakeApi, clock: FakeClock, state: dict[str, Any] | None = None, **run: Any
) -> tuple[StreamExport, dict[str, Any]]:
    state = {} if state is None else state
    request = StreamRequest(
        name="accounts",
        fields=FIELDS,
        replication_key="last_modified_date",
        start=DAY(2024, 3, 1),
        primary_key="id",
        catalog_fields=(*FIELDS, "phone"),
    )
    return StreamExport(run_context(api, clock, **run), request, state, LOG, Checkpoints()), state


def _created(api: FakeApi) -> list[tuple[str, ...]]:
    return [job.spec.fields for job in api.jobs.values()]


def _lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_a_field_the_api_refuses_is_dropped_once_and_the_sync_goes_on(api, clock, caplog):
    api.unknown_fields = {"{Account}.industry"}
    api.api_names = {"industry": "{Account}.industry"}
    export, state = _stream(api, clock, window_days=5)  # 2024-03-01..10: two windows
    with caplog.at_level(logging.INFO):
        rows = emit_all(export)
    assert rows == 20
    # The first window's create is refused, then sent without the field; the second window's
    # job is created without it at once.
    assert api.calls.count("create") == 3
    without = ("id", "last_modified_date", "tier")
    assert _created(api) == [without, without]
    (warning,) = _lines(caplog, logging.WARNING)
    assert "'accounts'" in warning and "industry ({Account}.industry)" in warning
    assert "null" in warning and "--discover" in warning
    assert read_entry(state) is None  # both windows done: no job in flight
    assert state["windows_done"]["through"] == "2024-03-05"


def test_the_window_of_a_job_without_a_field_says_which_fields_are_null(api, clock):
    api.unknown_fields = {"tier"}
    export, state = _stream(api, clock)
    (window,) = list(export.windows())
    with window:
        assert window.job.spec.fields == ("id", "last_modified_date", "industry")
        assert window.dropped_fields == ("tier",)
        entry = read_entry(state)
        assert entry is not None and entry.dropped == {"tier": "tier"}
        assert state["export_job"]["fields_dropped"] == {"tier": "tier"}


def test_each_create_has_fewer_fields_and_a_refusal_naming_none_is_raised(api, clock):
    api.api_names = {"tier": "{Account}.tier"}
    refusals = iter(["industry", "{Account}.tier", "phone"])
    sent: list[tuple[str, ...]] = []

    def refusing(spec: JobSpec, rule: Any = None) -> Any:
        sent.append(spec.fields)
        named = next(refusals)
        raise UnknownFieldsError(f"Unknown field: {named}", [named])

    api.create_job = refusing  # type: ignore[method-assign]
    export, _ = _stream(api, clock)
    with pytest.raises(UnknownFieldsError, match="phone"):
        emit_all(export)  # the third refusal names no field of the job: not sent again
    assert [len(fields) for fields in sent] == [4, 3, 2]
    assert export.run.fields.dropped("accounts") == {
        "industry": "industry",
        "tier": "{Account}.tier",
    }


@pytest.mark.parametrize("key", ["id", "last_modified_date"])
def test_a_key_field_is_never_dropped_one_line_says_to_run_discovery(api, clock, key):
    api.unknown_fields = {key, "tier"}
    export, _ = _stream(api, clock)
    with pytest.raises(UnknownFieldsError) as caught:
        emit_all(export)
    line = str(caught.value)
    ours, said = line.split(" The API said: ")
    assert "\n" not in line and f"field {key}," in ours and "tier" not in ours
    assert key in said
    assert "primary key or replication key" in line and "--discover" in line
    assert api.calls.count("create") == 1  # refused once, never sent again


def test_the_api_field_list_drops_before_any_create_and_names_new_fields(api, clock, caplog):
    api.offered = (
        FieldInfo("id", "string"),
        FieldInfo("last_modified_date", "datetime"),
        FieldInfo("tier", "string"),
        FieldInfo("phone", "string"),  # in the catalog, not selected: not new
        FieldInfo("lead_score", "integer", api_name="{Account}.leadScore"),
    )
    export, _ = _stream(api, clock, window_days=5)
    with caplog.at_level(logging.INFO):
        assert emit_all(export) == 20
    assert api.calls.count("create") == 2  # no refused create
    assert _created(api) == [("id", "last_modified_date", "tier")] * 2
    (warning,) = _lines(caplog, logging.WARNING)
    assert "industry" in warning and "tier" not in warning
    (new,) = [line for line in _lines(caplog, logging.INFO) if "catalog lacks" in line]
    assert "lead_score ({Account}.leadScore)" in new and "phone" not in new
    assert "meltano select tap-demandbase accounts lead_score" in new


def test_a_resumed_job_created_without_a_field_is_resumed_without_it(api, clock, caplog):
    fields = ("id", "last_modified_date", "tier")
    spec = JobSpec("accounts", fields, "last_modified_date", DAY(2024, 3, 1), DAY(2024, 3, 10))
    job_id = api.add_job(spec, JobState.COMPLETED, age=60)
    state = {
        "export_job": {
            "job_id": job_id,
            "entity_type": "accounts",
            "fields": list(spec.fields),
            "window": {"field": "last_modified_date", "start": "2024-03-01", "end": "2024-03-10"},
            "filters": {},
            "created_at": clock.now().isoformat(),
            "parts_done": {"1": 5},
            "fields_dropped": {"industry": "{Account}.industry"},
        }
    }
    export, state = _stream(api, clock, state)
    with caplog.at_level(logging.INFO):
        (window,) = list(export.windows())
        with window:
            assert window.job.status_id == job_id
            assert window.dropped_fields == ("industry",)
            parts = list(window.parts())
    assert [p.number for p in parts] == [2]  # only the part not yet emitted
    assert "create" not in api.calls
    (warning,) = _lines(caplog, logging.WARNING)
    assert "industry ({Account}.industry)" in warning and job_id in warning


# --- a result without the dropped columns: null in RECORD and BATCH output ---------------------

PROPERTIES = {
    "id": {"type": ["string", "null"]},
    "n": {"type": ["integer", "null"]},
    "industry": {"type": ["string", "null"]},
    "seen": {"type": ["string", "null"], "format": "date"},
}
PART = b"id,n\na,1\nb,\nc,3\n"
EXPECTED = [
    {"id": "a", "n": 1, "industry": None, "seen": None},
    {"id": "b", "n": None, "industry": None, "seen": None},
    {"id": "c", "n": 3, "industry": None, "seen": None},
]


def _reader_and_part(tmp_path):
    from tap_demandbase.engine.results import DownloadedPart
    from tap_demandbase.records.reader import CsvPartReader

    path = tmp_path / "part.csv"
    path.write_bytes(PART)
    reader = CsvPartReader("things", PROPERTIES, ["id", "n"], absent=["industry", "seen"])
    return reader, DownloadedPart(number=1, path=path, size=len(PART))


def test_the_python_reader_gives_absent_fields_as_null(tmp_path):
    reader, part = _reader_and_part(tmp_path)
    assert list(reader.records(part)) == EXPECTED
    assert list(next(reader.records(part))) == ["id", "n", "industry", "seen"]


def test_columnar_record_lines_and_json_lines_give_absent_fields_as_null(tmp_path):
    import io
    import json

    from tap_demandbase.records.columnar.output import write_json_lines
    from tap_demandbase.records.columnar.reader import (
        ColumnarPartReader,
        write_part_record_messages,
    )
    from tests.support.records import Collected

    reader, part = _reader_and_part(tmp_path)
    writer = Collected()
    summary = write_part_record_messages(part, reader, writer, "2024-06-01T00:00:00Z", None)
    assert summary.rows == 3
    lines = [json.loads(line) for line in bytes(writer.out).splitlines()]
    assert [m["record"] for m in lines] == EXPECTED
    out = io.BytesIO()
    write_json_lines(ColumnarPartReader(reader, None).blocks(part, "json"), out, None)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == EXPECTED


@pytest.mark.parametrize("at_once", [True, False])
def test_parquet_batches_hold_absent_fields_as_typed_null_columns(tmp_path, at_once):
    import io

    import polars as pl

    from tap_demandbase.records.columnar.output import write_parquet
    from tap_demandbase.records.columnar.reader import ColumnarPartReader
    from tap_demandbase.records.columnar.typed import parquet_schema

    reader, part = _reader_and_part(tmp_path)
    schema = parquet_schema(reader)
    assert list(schema) == ["id", "n", "industry", "seen"]
    columnar = ColumnarPartReader(reader, None)
    out = io.BytesIO()
    if at_once:
        summary = columnar.parquet_at_once(part, out, list(schema), "uncompressed")
    else:
        blocks = columnar.blocks(part, "parquet")
        summary = write_parquet(blocks, out, schema, "uncompressed", None)
    assert summary is not None and summary.rows == 3
    frame = pl.read_parquet(io.BytesIO(out.getvalue()))
    assert frame.columns == ["id", "n", "industry", "seen"]
    assert frame.schema["seen"] == pl.Date and frame.schema["industry"] == pl.String
    assert frame.to_dicts() == EXPECTED


# --- each dialect says which fields its refusal names ----------------------------------------


def _answer(status: int, body: dict[str, Any]):
    import json

    import requests

    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    return response


def test_export_v1_names_the_fields_of_its_invalid_field_answer():
    from tap_demandbase.dialects.export_v1.errors import classify_error

    body = {"error": "invalid_field", "message": "Unknown field(s) for entity accounts: a, b_c"}
    error = classify_error(_answer(400, body), "creating the accounts export job")
    assert isinstance(error, UnknownFieldsError) and error.api_names == ("a", "b_c")
    assert "--discover" in str(error) and "\n" not in str(error)
    other = classify_error(_answer(400, {"error": "invalid_filters", "message": "x"}), "y")
    assert not isinstance(other, UnknownFieldsError)


def test_uapi_names_the_fields_of_its_400_115_in_full_even_past_the_shown_message():
    from tap_demandbase.dialects.uapi.errors import classify_error

    names = [f"{{Account}}.keywordSet{n:03d}" for n in range(40)]  # longer than a line shows
    body = {
        "errorCode": "400-115",
        "errorMessage": f"Invalid field names: {', '.join(names)}",
        "diagnosticCode": "ab" * 16,
    }
    error = classify_error(
        _answer(400, body), "creating the job", renewable=True, clock=FakeClock()
    )
    assert isinstance(error, UnknownFieldsError) and error.api_names == tuple(names)
    body["errorMessage"] = "Invalid field names"
    error = classify_error(
        _answer(400, body), "creating the job", renewable=True, clock=FakeClock()
    )
    assert isinstance(error, UnknownFieldsError) and error.api_names == ()
