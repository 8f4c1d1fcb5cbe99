"""What a person running the tap sees: a target that died, how an interrupted run resumes,
progress lines on long work, and the lines a run starts and ends with (``--test``:
``tests/cli/test_connection_test.py``).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time

import pytest

from tap_demandbase.progress import RESUME_NOTE, resume_line
from tap_demandbase.sandbox import Sandbox
from tests.support.tap import TAP, discover, fast_settings, run_tap, select, tap_config

#: Exit codes, broken pipes and log lines of the installed command.
pytestmark = pytest.mark.cli


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert "Exception ignored" not in stderr, stderr


def _posts(sandbox) -> list:
    return [r for r in sandbox.requests() if r.method == "POST" and r.server == "api"]


def _start_tap(tmp_path, config, catalog) -> subprocess.Popen[bytes]:
    """Start the tap CLI with its stdout and stderr as pipes (the test plays the target)."""
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    command = [TAP, "--config", f"{tmp_path}/config.json", "--catalog", f"{tmp_path}/catalog.json"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


# A target that stops reading ---------------------------------------------------------------


def test_a_target_that_dies_is_one_line_exit_non_zero_and_the_state_resumes(tmp_path):
    with Sandbox(fast_settings(rows={"accounts": 6000}, rows_per_part=2000)) as sandbox:
        config = tap_config(sandbox)
        catalog = select(discover(tmp_path, config), {"accounts": None})
        tap = _start_tap(tmp_path, config, catalog)
        assert tap.stdout is not None
        assert tap.stderr is not None
        received = [json.loads(tap.stdout.readline()) for _ in range(50)]  # the target reads...
        tap.stdout.close()  # ...then dies
        with tap.stderr:
            stderr = tap.stderr.read().decode()
        assert tap.wait(timeout=60) == 1
        _no_traceback(stderr)
        errors = [line for line in stderr.splitlines() if "ERROR" in line]
        assert len(errors) == 1, errors
        assert "The target stopped reading the tap's output (broken pipe)" in errors[0]

        # The state the target did receive names the job: the next run resumes it.
        states = [m["value"] for m in received if m["type"] == "STATE"]
        assert states[-1]["bookmarks"]["accounts"]["export_job"]["job_id"]
        sandbox.reset_log()
        again = run_tap(tmp_path, config, catalog=catalog, state=states[-1])
        assert again.returncode == 0, again.stderr
        assert not _posts(sandbox)
        assert "resumed from the state" in again.stderr
        assert len(again.records["accounts"]) == 6000


# Resuming: no "not resumable" claims -------------------------------------------------------


def test_streams_say_how_they_resume_instead_of_not_resumable(tmp_path):
    with Sandbox(fast_settings(rows_per_part=30)) as sandbox:
        run = run_tap(tmp_path, tap_config(sandbox))
        assert run.returncode == 0, run.stderr
    assert "assumed to be unsorted" not in run.stderr
    assert "not resumable" not in run.stdout
    # Said once per run, short; each stream's own line is DEBUG.
    (line,) = [line for line in run.stderr.splitlines() if "no particular order" in line]
    assert "INFO" in line
    assert len(line.split(" | ")[-1]) < 160
    assert "resumes that job from its next part" in line
    assert "records arrive unsorted" not in run.stderr
    assert "unsorted by None" not in resume_line("creatives", None)
    assert "FULL_TABLE" in resume_line("creatives", None)
    # A state emitted mid-window (what an interrupted run leaves) carries the tap's note.
    notes = [
        stream_state["progress_markers"]["Note"]
        for state in run.states
        for stream_state in state.get("bookmarks", {}).values()
        if "progress_markers" in stream_state
    ]
    assert notes
    assert set(notes) == {RESUME_NOTE}


# Progress ------------------------------------------------------------------------------------


def test_progress_interval_defaults_to_15_seconds(tmp_path):
    about = json.loads(
        subprocess.run([TAP, "--about", "--format=json"], capture_output=True, check=True).stdout
    )
    assert about["settings"]["properties"]["progress_interval_seconds"]["default"] == 15.0


def _progress_lines(stderr: str, stream: str) -> list[str]:
    return [
        line.split("| ")[-1]
        for line in stderr.splitlines()
        if f"| {stream}: " in line and "INFO" in line
    ]


@pytest.mark.parametrize("batch", [False, True])
def test_long_work_logs_progress_lines(tmp_path, batch):
    """With progress_interval_seconds=0.2: lines while the job runs on Demandbase (1 s) and
    while records flow to a slow target, saying records, part i of n and bytes of the total.
    """
    settings = fast_settings(rows={"accounts": 8000}, rows_per_part=1000, processing_seconds=1.0)
    with Sandbox(settings) as sandbox:
        extra = {}
        if batch:
            storage = {"root": f"file://{tmp_path}/batches", "prefix": "b-"}
            extra = {"batch_config": {"encoding": {"format": "jsonl"}, "storage": storage}}
        config = tap_config(sandbox, progress_interval_seconds=0.2, **extra)
        catalog = select(discover(tmp_path, config), {"accounts": None})
        tap = _start_tap(tmp_path, config, catalog)
        assert tap.stdout is not None
        while tap.stdout.read(1 << 15):  # a slow target: 32 KiB every 0.05 s
            time.sleep(0.05)
        _, stderr_bytes = tap.communicate(timeout=120)
    stderr = stderr_bytes.decode()
    assert tap.returncode == 0, stderr
    texts = _progress_lines(stderr, "accounts")
    assert any(text.startswith("accounts: waiting for accounts export job") for text in texts)
    if not batch:
        emitting = [text for text in texts if "records emitted (" in text]
        assert emitting, texts
        assert all(" of 8, " in text and "downloaded" in text for text in emitting), emitting


def test_short_syncs_log_no_progress_lines(sandbox, tmp_path):
    run = run_tap(tmp_path, tap_config(sandbox))  # default interval: 15 s, runs take ~2 s
    assert run.returncode == 0, run.stderr
    assert "records emitted (" not in run.stderr
    assert "s into the stream)" not in run.stderr


# The lines a run starts and ends with ------------------------------------------------------


def _texts(stderr: str) -> list[str]:
    return [line.split(" | ")[-1] for line in stderr.splitlines()]


def test_a_sync_starts_with_its_plan_and_ends_with_one_summary_line(dialect_case, tmp_path):
    case = dialect_case
    run = run_tap(tmp_path, case.config())
    assert run.returncode == 0, run.stderr
    texts = _texts(run.stderr)
    (plan,) = [text for text in texts if text.startswith("Plan: ")]
    jobs = len(case.created_jobs())
    assert plan.startswith(f"Plan: {len(case.streams)} streams, {jobs} export jobs. ")
    summary = texts[-1]
    records = sum(len(records) for records in run.records.values())
    assert summary.startswith(f"Run summary: {len(case.streams)} streams, {records:,} records ("), (
        summary
    )
    assert "/s while emitting" in summary
    assert f"jobs: {jobs} created, 0 re-used, 0 resumed (" in summary
    assert "waiting for them" in summary
    assert " downloaded, no failure, " in summary
    assert f"{jobs} job creates" in summary  # the calls, in the dialect's words
    # One line says what the run cost: the uapi budgets are in the summary, not apart.
    assert len([text for text in texts if "API calls" in text]) == 1
    assert not any(text.startswith("METRIC") for text in texts)
    assert not any("Skipping parse of env var settings" in text for text in texts)


def test_the_summary_counts_a_failed_stream_and_is_the_last_info_line(sandbox, tmp_path):
    sandbox.settings.fail_jobs = {"campaigns": -1}
    run = run_tap(tmp_path, tap_config(sandbox, max_job_attempts=1))
    assert run.returncode == 1
    (summary,) = [text for text in _texts(run.stderr) if text.startswith("Run summary:")]
    assert ", 1 failure, " in summary
    assert "jobs: 6 created" in summary


def test_a_resumed_job_is_counted_and_its_parts_said_in_good_grammar(tmp_path):
    with Sandbox(fast_settings(rows={"accounts": 900}, rows_per_part=300)) as sandbox:
        config = tap_config(sandbox)
        catalog = select(discover(tmp_path, config), {"accounts": None})
        first = run_tap(tmp_path, config, catalog=catalog)
        assert first.returncode == 0, first.stderr
        state = next(  # what a run interrupted after part 1 of 3 leaves
            s
            for s in first.states
            if len(s["bookmarks"]["accounts"].get("export_job", {}).get("parts_done", {})) == 1
        )
        again = run_tap(tmp_path, config, catalog=catalog, state=state)
    assert again.returncode == 0, again.stderr
    assert "part 1 was emitted by an earlier run; reading the others" in again.stderr
    assert "parts 1 were" not in again.stderr
    assert "jobs: 0 created, 0 re-used, 1 resumed" in _texts(again.stderr)[-1]


def test_metric_lines_follow_metrics_log_level(sandbox, tmp_path):
    catalog = select(discover(tmp_path, tap_config(sandbox)), {"campaigns": None})
    quiet = run_tap(tmp_path, tap_config(sandbox), catalog=catalog)
    shown = run_tap(tmp_path, tap_config(sandbox, metrics_log_level="INFO"), catalog=catalog)
    assert quiet.returncode == shown.returncode == 0
    assert "METRIC" not in quiet.stderr
    metrics = [line for line in shown.stderr.splitlines() if "METRIC: " in line]
    assert metrics
    assert all("INFO" in line for line in metrics)


# Words for what is wrong, or surprising ----------------------------------------------------

#: A catalog another tap (tap-postgres) wrote.
FOREIGN_CATALOG = {
    "streams": [
        {
            "tap_stream_id": "public-users",
            "stream": "users",
            "schema": {
                "type": "object",
                "properties": {"id": {"type": ["integer"]}, "email": {"type": ["string", "null"]}},
            },
            "metadata": [{"breadcrumb": [], "metadata": {"selected": True}}],
        }
    ]
}


def test_a_catalog_of_another_tap_says_run_discover(dialect_case, tmp_path):
    case = dialect_case
    run = run_tap(tmp_path, case.config(), catalog=FOREIGN_CATALOG)
    assert run.returncode == 1
    (line,) = run.error_lines
    assert "Stream 'public-users' of the catalog" in line
    assert "not a stream of this tap" in line
    assert "run --discover" in line
    assert "replication_keys" not in line
    assert not case.api_requests()


@pytest.mark.parametrize(
    ("catalog", "words"),
    [
        ({"streams": []}, "The catalog has no stream: nothing is exported"),
        (None, "No stream of the catalog's 6 is selected: nothing is exported"),
    ],
)
def test_a_sync_with_nothing_selected_warns(sandbox, tmp_path, catalog, words):
    if catalog is None:
        catalog = select(discover(tmp_path, tap_config(sandbox)), {})
        sandbox.reset_log()
    run = run_tap(tmp_path, tap_config(sandbox), catalog=catalog)
    assert run.returncode == 0, run.stderr
    (warning,) = [line for line in run.stderr.splitlines() if "WARNING" in line]
    assert words in warning
    assert "Skipping deselected stream" not in run.stderr  # DEBUG: one line per stream
    assert not run.records
    assert not [r for r in sandbox.requests() if r.method == "POST"]
    assert _texts(run.stderr)[-1].startswith("Run summary: 0 streams, 0 records")


def test_an_export_v1_config_against_a_uapi_host_hints_at_api_dialect(tmp_path):
    with Sandbox(fast_settings(dialect="uapi")) as uapi:
        run = run_tap(tmp_path, tap_config(uapi), "--discover")
    assert run.returncode == 1
    (line,) = run.error_lines
    assert "/export/v1/entities answered 404" in line
    assert "set api_dialect=uapi" in line
    assert "Check api_url" in line


def test_a_start_date_in_the_future_is_a_warning(sandbox, tmp_path):
    catalog = select(discover(tmp_path, tap_config(sandbox)), {"accounts": None})
    run = run_tap(tmp_path, tap_config(sandbox, start_date="2999-01-01T00:00:00Z"), catalog=catalog)
    assert run.returncode == 0, run.stderr
    (warning,) = [line for line in run.stderr.splitlines() if "WARNING" in line]
    assert "Setting start_date (2999-01-01T00:00:00+00:00) is in the future" in warning
    assert "almost always a mistake" in warning
    assert not run.records


def test_a_refused_connection_to_this_machine_fails_at_once_in_one_line(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = {"api_url": f"http://127.0.0.1:{port}", "access_token": "t" * 12}
    run = run_tap(tmp_path, {**config, "start_date": "2024-01-01T00:00:00Z"}, "--discover")
    assert run.returncode == 1
    assert "Retrying" not in run.stderr
    assert "urllib3" not in run.stderr and "HTTPConnectionPool" not in run.stderr
    (line,) = run.error_lines
    assert f"Cannot connect to 127.0.0.1:{port} for listing entities: connection refused" in line
