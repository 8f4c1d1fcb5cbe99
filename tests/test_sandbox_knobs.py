"""The emulator's knobs: documented, settable by CLI flag and over HTTP, and reset clears jobs."""

from __future__ import annotations

import argparse
import dataclasses
import time
from datetime import date
from pathlib import Path

import pytest
import requests

from tap_demandbase.sandbox import Sandbox, SandboxSettings
from tap_demandbase.sandbox.cli import build_parser, main
from tap_demandbase.sandbox.knobs import attribute_docs, knobs, markdown_table, settings_from_args
from tap_demandbase.sandbox.server import EMULATORS

KNOB_PAGE = Path(__file__).resolve().parents[1] / "docs" / "emulator.md"
FAST = {"pending_seconds": 0.01, "processing_seconds": 0.02}


def parsed(*argv: str) -> SandboxSettings:
    return settings_from_args(build_parser().parse_args(list(argv)))


@pytest.mark.unit
def test_every_cli_flag_has_help() -> None:
    options = [a for a in build_parser()._actions if a.option_strings]
    assert len(options) > len(dataclasses.fields(SandboxSettings))
    for action in options:
        assert action.help and action.help != argparse.SUPPRESS, action.option_strings
        assert len(action.help) > 15, action.option_strings


@pytest.mark.unit
def test_every_knob_is_documented_and_has_a_flag() -> None:
    names = [f.name for f in dataclasses.fields(SandboxSettings)]
    docs = attribute_docs()
    assert set(docs) == set(names), "each SandboxSettings field needs an Attributes: entry"
    assert all(len(text) > 10 for text in docs.values())
    flags = {s for a in build_parser()._actions for s in a.option_strings}
    assert {k.flag for k in knobs()} <= flags
    assert [k.name for k in knobs()] == names


@pytest.mark.unit
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


@pytest.mark.unit
def test_docs_knob_table_is_generated_from_the_settings() -> None:
    text = KNOB_PAGE.read_text(encoding="utf-8")
    begin, end = "<!-- sandbox-knobs:begin -->\n", "<!-- sandbox-knobs:end -->"
    documented = text[text.index(begin) + len(begin) : text.index(end)]
    assert documented == markdown_table(), "run: python scripts/plugin_files.py"
    for knob in knobs():
        assert f"| `{knob.name}` | `{knob.flag}" in documented


@pytest.mark.unit
def test_list_knobs_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-knobs"]) == 0
    assert capsys.readouterr().out == markdown_table()


@pytest.mark.unit
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


@pytest.mark.unit
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


def test_http_settings_endpoint_accepts_every_knob() -> None:
    with Sandbox(SandboxSettings(**FAST)) as sb:
        current = requests.get(sb.api_url + "/_sandbox/settings", timeout=10).json()
        assert set(current) == {k.name for k in knobs()}
        echoed = requests.post(sb.api_url + "/_sandbox/settings", json=current, timeout=10)
        assert echoed.status_code == 200 and echoed.json() == current


def test_reset_forgets_jobs_and_quota_counters() -> None:
    settings = SandboxSettings(rows={"accounts": 30}, quota_bytes=1, **FAST)
    with Sandbox(settings) as sb:
        headers = {"Authorization": f"Bearer {sb.token}"}
        jobs = sb.api_url + "/export/v1/jobs"

        def create() -> requests.Response:
            body = {"entity_type": "accounts", "fields": ["id"]}
            return requests.post(jobs, json=body, headers=headers, timeout=10)

        first = create().json()
        while requests.get(f"{jobs}/{first['id']}", headers=headers, timeout=10).json()[
            "status"
        ] in ("pending", "processing"):
            time.sleep(0.005)
        assert create().status_code == 429  # today's bytes spent the (tiny) quota
        assert requests.post(sb.api_url + "/_sandbox/reset", timeout=10).json() == {"reset": True}
        assert sb.requests() == []
        assert requests.get(sb.api_url + "/_sandbox/jobs", timeout=10).json() == {"jobs": []}
        assert requests.get(jobs, headers=headers, timeout=10).json() == {"jobs": [], "total": 0}
        gone = requests.get(f"{jobs}/{first['id']}", headers=headers, timeout=10)
        assert gone.status_code == 404
        again = create()
        assert again.status_code == 202  # the byte counter was cleared too
        assert again.json()["id"] == "job-000002"  # ids are never reused
        assert sb.settings.quota_bytes == 1  # knobs stay as they are
        sb.reset()
        assert sb.jobs() == []
