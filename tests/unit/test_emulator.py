"""The emulators without a server: deterministic rows, values that exercise a parser, streaming
generation, the knobs (documented, set by flag, refused when meaningless) and the changes
between runs, the daily counters' day, and jitter.
"""

from __future__ import annotations

import argparse
import dataclasses
from datetime import date, datetime, timezone

import pytest

from tap_demandbase.sandbox import Sandbox, SandboxSettings
from tap_demandbase.sandbox.cli import build_parser, main
from tap_demandbase.sandbox.data import Filters, iter_rows
from tap_demandbase.sandbox.entities import (
    BOOLEAN_TYPES,
    DATE_TYPES,
    ENTITIES,
    INTEGER_TYPES,
)
from tap_demandbase.sandbox.jobs import processing_seconds_of
from tap_demandbase.sandbox.knobs import attribute_docs, knobs, markdown_table, settings_from_args
from tap_demandbase.sandbox.server import EMULATORS
from tap_demandbase.sandbox.uapi.usage import DailyUsage
from tests.support.checkout import ROOT
from tests.support.expected import utc_day

KNOB_PAGE = ROOT / "docs" / "emulator.md"


def parsed(*argv: str) -> SandboxSettings:
    return settings_from_args(build_parser().parse_args(list(argv)))


def test_generated_values_exercise_a_parser() -> None:
    settings = SandboxSettings(rows={"accounts": 2000, "opportunities": 2000})
    rows = Sandbox(settings).expected_rows("accounts")
    start, end = date(2024, 1, 1), date(2024, 3, 30)
    stamps = [r["last_modified_date"] for r in rows]
    assert all(s for s in stamps) and all(r["id"] for r in rows)
    days = [utc_day(s) for s in stamps if s]
    assert days == sorted(days) and start <= days[0] and days[-1] <= end
    created = [r["created_date"] for r in rows]
    assert all(utc_day(c) <= utc_day(m or "") for c, m in zip(created, stamps, strict=True) if c)
    empty = sum(r["name"] is None for r in rows) / len(rows)
    assert 0.05 < empty < 0.15
    assert all(v != "" for r in rows for v in r.values())
    values = {v for r in rows for v in r.values() if v}
    assert {"true", "false", "TRUE", "False", "1", "0"} <= {r["is_customer"] for r in rows}
    assert {"Acme, Inc.", 'The "Best" Co', "NULL", "true", "  Spacious Holdings  "} <= values
    assert any("\r\n" in v for v in values) and any("\n" in v.replace("\r\n", "") for v in values)
    assert any(v.endswith("+01:00") for v in stamps if v)
    assert any(v.endswith("Z") and "." in v for v in stamps if v)
    assert any(" " in v and not v.endswith("Z") for v in stamps if v)
    assert all(r["account_number"] is None or r["account_number"].startswith("0") for r in rows)
    assert any("," in (r["custom_geo__c"] or "") for r in rows)
    quantities = [int(r["quantity"] or 0) for r in Sandbox(settings).expected_rows("opportunities")]
    assert max(quantities) > 2**40
    assert min(int(r["lead_score"] or 0) for r in Sandbox(settings).expected_rows("people")) < 0
    assert {"1e3", "1e4"} & {r["annual_revenue"] for r in rows}


def test_generator_streams_without_materialising() -> None:
    settings = SandboxSettings(rows={"accounts": 10**9})
    first = next(iter(iter_rows(settings, "accounts", ["id"], Filters())))
    assert first == ("acc-0000001",)


def test_type_sets_cover_defect_targets() -> None:
    fields = ENTITIES["accounts"].fields
    assert any(f.type in INTEGER_TYPES for f in fields)
    assert any(f.type in BOOLEAN_TYPES for f in fields)
    assert any(f.type in DATE_TYPES for f in fields)


def test_changes_are_one_shape_from_the_command_line_and_over_http() -> None:
    argv = [
        "--deleted-rows", "accounts=acc-0000001", "--deleted-rows", "accounts=acc-0000002",
        "--merged-rows", "accounts:acc-0000003=acc-0000004@2024-04-01T00:00:00Z",
        "--updated-rows", "accounts:acc-0000005=2024-04-02T00:00:00Z",
        "--restated-rows", "activities:act-0000001=2",
        "--appended-rows", "accounts:2024-04-03T00:00:00Z=5",
        "--added-fields", "accounts:tier=string",
        "--removed-fields", "accounts=industry",
        "--processing-seconds-jitter", "0.3",
        "--today", "2024-03-01",
    ]  # fmt: skip
    settings = settings_from_args(build_parser().parse_args(argv))
    assert settings.deleted_rows == {"accounts": ["acc-0000001", "acc-0000002"]}
    assert settings.merged_rows == {"accounts": {"acc-0000003": "acc-0000004@2024-04-01T00:00:00Z"}}
    assert settings.updated_rows == {"accounts": {"acc-0000005": "2024-04-02T00:00:00Z"}}
    assert settings.restated_rows == {"activities": {"act-0000001": 2}}
    assert settings.appended_rows == {"accounts": {"2024-04-03T00:00:00Z": 5}}
    assert settings.added_fields == {"accounts": {"tier": "string"}}
    assert settings.removed_fields == {"accounts": ["industry"]}
    assert settings.processing_seconds_jitter == 0.3
    assert settings.today == date(2024, 3, 1)
    over_http = SandboxSettings()
    over_http.update(
        {k: v for k, v in settings.to_json().items() if k not in ("port",)}  # JSON round trip
    )
    assert over_http.to_json() | {"port": 0} == settings.to_json() | {"port": 0}
    assert over_http.row_changes("accounts") is not None


def test_jitter_keeps_its_mean_near_the_processing_time() -> None:
    settings = SandboxSettings(processing_seconds=600.0, processing_seconds_jitter=0.3)
    seconds = [processing_seconds_of(settings, n) for n in range(1, 201)]
    assert 420 <= min(seconds) < 450 and 750 < max(seconds) <= 780
    assert abs(sum(seconds) / len(seconds) - 600) < 30


def test_every_cli_flag_has_help() -> None:
    options = [a for a in build_parser()._actions if a.option_strings]
    assert len(options) > len(dataclasses.fields(SandboxSettings))
    for action in options:
        assert action.help and action.help != argparse.SUPPRESS, action.option_strings
        assert len(action.help) > 15, action.option_strings


def test_every_knob_is_documented_and_has_a_flag() -> None:
    names = [f.name for f in dataclasses.fields(SandboxSettings)]
    docs = attribute_docs()
    assert set(docs) == set(names), "each SandboxSettings field needs an Attributes: entry"
    assert all(len(text) > 10 for text in docs.values())
    flags = {s for a in build_parser()._actions for s in a.option_strings}
    assert {k.flag for k in knobs()} <= flags
    assert [k.name for k in knobs()] == names


def test_each_emulator_has_its_knobs_and_each_knob_its_emulator() -> None:
    declared = [c.__dict__["DIALECT"] for c in SandboxSettings.__mro__ if "DIALECT" in c.__dict__]
    assert sorted(declared) == sorted(EMULATORS)  # a settings class per server, and no other
    by_dialect = {k.dialect for k in knobs()}
    assert by_dialect == {"both", *EMULATORS}
    assert all((k.dialect == "uapi") == k.name.startswith("uapi_") for k in knobs())
    assert {k.name for k in knobs() if k.dialect == "export_v1"} >= {
        "status_aliases",
        "job_json_patch",
        "status_not_found_after_create",
        "list_odd_jobs",
    }


def test_docs_knob_table_is_generated_from_the_settings() -> None:
    text = KNOB_PAGE.read_text(encoding="utf-8")
    begin, end = "<!-- sandbox-knobs:begin -->\n", "<!-- sandbox-knobs:end -->"
    documented = text[text.index(begin) + len(begin) : text.index(end)]
    assert documented == markdown_table(), "run: python scripts/plugin_files.py"
    for knob in knobs():
        assert f"| `{knob.name}` | `{knob.flag}" in documented


def test_list_knobs_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-knobs"]) == 0
    assert capsys.readouterr().out == markdown_table()


def test_flags_set_every_kind_of_knob() -> None:
    defaults = parsed()
    assert defaults.port == 8734  # the CLI's default; everything else as the settings say
    assert dataclasses.replace(defaults, port=0) == SandboxSettings()
    settings = parsed(
        "--dialect", "uapi",
        "--pending-seconds", "0.25",
        "--rows-per-part", "7",
        "--data-start", "2023-05-06",
        "--http-error-retry-after", "none",
        "--quota-exhausted-after-jobs", "3",
        "--no-redirect-downloads",
        "--uapi-gzip",
        "--rows", "accounts=5",
        "--http-errors", "create=2",
        "--http-errors", "file=-1",
        "--uapi-daily-limits", "status=4",
        "--malformed", "people=ragged",
        "--uapi-alias-fields", "activity:{Activity}.accountId={Account}.id",
    )  # fmt: skip
    assert settings.dialect == "uapi"
    assert settings.pending_seconds == 0.25 and settings.rows_per_part == 7
    assert settings.data_start == date(2023, 5, 6)
    assert settings.http_error_retry_after is None and settings.quota_exhausted_after_jobs == 3
    assert settings.redirect_downloads is False and settings.uapi_gzip is True
    assert settings.rows["accounts"] == 5 and settings.rows["people"] == 1500  # merged
    assert settings.http_errors == {"create": 2, "file": -1}
    assert settings.uapi_daily_limits == {"create": 60, "status": 4, "list": 1200, "fields": 60}
    assert settings.malformed == {"people": "ragged"}
    assert settings.uapi_alias_fields == {"activity": {"{Activity}.accountId": "{Account}.id"}}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rows", "accounts"], "--rows: expected KEY=INT"),
        (["--rows", "leads=5"], "invalid entity 'leads'"),
        (["--pending-seconds", "soon"], "--pending-seconds"),
        (["--dialect", "v2"], "invalid dialect 'v2'"),
        (["--http-errors", "nope=1"], "invalid http_errors key 'nope'"),
        (["--uapi-alias-fields", "x=y"], "expected KEY:NAME=VALUE"),
    ],
)
def test_bad_flag_values_are_one_line_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("demandbase-sandbox: error:") and message in error


def test_counters_start_from_zero_each_utc_day() -> None:
    now = [datetime(2024, 3, 1, 23, 59, 59, tzinfo=timezone.utc).timestamp()]
    usage = DailyUsage(clock=lambda: now[0])
    assert usage.take("create", 2) and usage.take("create", 2)
    assert not usage.take("create", 2)
    assert usage.counts() == {"create": 3}
    assert usage.resets_at() == "2024-03-02T00:00:00Z"
    now[0] += 1  # midnight UTC
    assert usage.counts() == {} and usage.take("create", 2)
    assert usage.take("token", None)
