"""What a person running the tap sees: --test's verdict, a target that died, how an interrupted
run resumes, and progress lines on long work.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tap_demandbase.progress import RESUME_NOTE, SyncProgress
from tap_demandbase.sandbox import Sandbox
from tests.conftest import TAP, discover, fast_settings, run_tap, select, tap_config

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


# --test ----------------------------------------------------------------------------------------


def test_connection_test_that_passes_says_so_without_error_lines(sandbox, tmp_path):
    run = run_tap(tmp_path, tap_config(sandbox), "--test")
    assert run.returncode == 0, run.stderr
    assert not run.error_lines, run.error_lines  # the SDK's stop after one record is no error
    assert "Connection test passed" in run.stderr


def test_connection_test_with_a_failing_stream_exits_non_zero_naming_it(sandbox, tmp_path):
    sandbox.settings.fail_jobs = {"campaigns": -1}
    run = run_tap(tmp_path, tap_config(sandbox, max_job_attempts=1), "--test")
    assert run.returncode == 1
    _no_traceback(run.stderr)
    (line,) = run.error_lines
    assert "Stream 'campaigns' failed" in line
    assert "Connection test passed" not in run.stderr


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
    for stream in ("accounts", "people", "campaigns"):
        lines = [
            line for line in run.stderr.splitlines() if f"{stream}: records arrive unsorted" in line
        ]
        assert len(lines) == 1, (stream, lines)
        assert "INFO" in lines[0]
        assert "resumes that job from its next part" in lines[0]
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


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Status:
    def __init__(self, state: str, size: int | None) -> None:
        self.state = type("S", (), {"value": state})()
        self.file_size_bytes = size


class _Job:
    label = "accounts export job job-7 (last_modified_date 2024-01-01..2024-03-31)"

    def __init__(self, state: str) -> None:
        self.status = _Status(state, 3 << 20)


class _Parts:
    count_text = "4"
    bytes_downloaded = 1 << 20

    def __init__(self) -> None:
        self.job = _Status("completed", 3 << 20)


class _Logger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, fmt: str, *args: object) -> None:
        self.lines.append(fmt % args)


def test_progress_line_says_records_rate_part_and_bytes():
    clock = _Clock()
    progress = SyncProgress("accounts", _Logger(), 15, clock=clock)  # type: ignore[arg-type]
    progress.waiting_for(_Job("processing"))  # type: ignore[arg-type]
    clock.now += 45
    assert progress.line() == (
        "accounts: waiting for accounts export job job-7 (last_modified_date "
        "2024-01-01..2024-03-31), processing (45s into the stream)"
    )
    progress.downloading(_Job("completed"), _Parts())  # type: ignore[arg-type]
    progress.part = 2
    progress.records = 30_000
    clock.now += 15  # 60 s in all
    assert progress.line() == (
        "accounts: 30,000 records emitted (500/s), part 2 of 4, 1.0 MiB of 3.0 MiB downloaded"
    )
    progress.result.count_text = "?"  # a job that does not say how many parts it has
    assert ", part 2 of ?, " in progress.line()
    # The next window's job: waiting again, with what was emitted so far.
    progress.waiting_for(_Job("pending"))  # type: ignore[arg-type]
    assert progress.line().startswith("accounts: 30,000 records emitted so far; waiting for")


def test_progress_is_logged_at_every_interval_until_the_sync_ends():
    """The thread's loop with a fake wait: one line per elapsed interval, none after the end."""
    clock = _Clock()
    logger = _Logger()
    progress = SyncProgress("accounts", logger, 15, clock=clock)  # type: ignore[arg-type]
    progress.downloading(_Job("completed"), _Parts())  # type: ignore[arg-type]
    waits: list[float] = []

    def wait(seconds: float) -> bool:  # the stop event's wait: True once the sync ended
        waits.append(seconds)
        clock.now += seconds
        progress.records += 7_500
        return len(waits) > 4

    progress.log_every_interval(wait)
    assert waits == [15, 15, 15, 15, 15]
    assert len(logger.lines) == 4
    assert logger.lines[0].startswith("accounts: 7,500 records emitted (500/s), part 1 of 4")
    assert logger.lines[3].startswith("accounts: 30,000 records emitted (500/s)")


def test_progress_interval_defaults_to_15_seconds(tmp_path):
    about = json.loads(
        subprocess.run([TAP, "--about", "--format=json"], capture_output=True, check=True).stdout
    )
    assert about["settings"]["properties"]["progress_interval_seconds"]["default"] == 15.0


def _progress_lines(stderr: str, stream: str) -> list[str]:
    return [
        line.split("| ")[-1]
        for line in stderr.splitlines()
        if f"| {stream}: " in line and "INFO" in line and "records arrive unsorted" not in line
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
    assert "waiting for" not in run.stderr
