"""Running the real ``tap-demandbase`` command against an emulator, and reading what it wrote.

``run_tap`` runs the command's own code (click command, invoke, sync) in the test's process,
which saves an interpreter start and the SDK's import (about 2 s of CPU) per run. Tests of the
end-to-end promises run the installed command as a process: a module says so with
``pytestmark = pytest.mark.cli``, and ``TAP_TESTS_CLI=1`` runs every test that way (the
``run_mode`` fixture of ``tests/conftest.py`` sets ``RUN_AS_PROCESS``).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import traceback
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from tap_demandbase.sandbox import SandboxSettings

TAP = str(Path(sys.executable).with_name("tap-demandbase"))
ENTITIES = ("accounts", "activities", "buying_groups", "campaigns", "opportunities", "people")
START_DATE = "2024-01-01T00:00:00Z"


def fast_settings(**overrides: Any) -> SandboxSettings:
    """Sandbox settings for tests: small data, multi-part results, jobs that finish quickly."""
    values: dict[str, Any] = {
        "rows": {
            "accounts": 120,
            "people": 90,
            "opportunities": 60,
            "activities": 150,
            "campaigns": 20,
            "buying_groups": 30,
        },
        "rows_per_part": 40,
        "pending_seconds": 0.05,
        "processing_seconds": 0.1,
    }
    values.update(overrides)
    return SandboxSettings(**values)


def tap_config(sb: Any, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "api_url": sb.api_url,
        "access_token": sb.token,
        "start_date": START_DATE,
        "poll_interval_seconds": 0.05,
        "max_poll_interval_seconds": 0.2,
        "job_retry_cooldown_seconds": 0.1,
    }
    config.update(overrides)
    return config


@dataclass
class TapRun:
    """What one run of the CLI wrote."""

    returncode: int
    stdout: str
    stderr: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def records(self) -> dict[str, list[dict[str, Any]]]:
        by_stream: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for message in self.messages:
            if message["type"] == "RECORD":
                by_stream[message["stream"]].append(message["record"])
        return dict(by_stream)

    @property
    def states(self) -> list[dict[str, Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def last_state(self) -> dict[str, Any]:
        return self.states[-1] if self.states else {}

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "ERROR" in line]


def run_tap(
    tmp_path: Path,
    config: dict[str, Any],
    *args: str,
    catalog: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
    timeout: float = 120,
) -> TapRun:
    """Run the installed ``tap-demandbase`` command and parse what it printed."""
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    command = [TAP, "--config", str(config_path), *args]
    if catalog is not None:
        catalog_path = tmp_path / "catalog.json"
        catalog_path.write_text(json.dumps(catalog))
        command += ["--catalog", str(catalog_path)]
    if state is not None:
        state_path = tmp_path / "state.json"
        state_path.write_text(json.dumps(state))
        command += ["--state", str(state_path)]
    if RUN_AS_PROCESS[-1]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_DEMANDBASE_")}
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
        returncode, stdout, stderr = done.returncode, done.stdout, done.stderr
    else:
        returncode, stdout, stderr = _run_in_process(command[1:])
    messages = []
    if "--discover" not in args and "--about" not in args:
        messages = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return TapRun(returncode, stdout, stderr, messages)


#: Whether run_tap starts the installed command as a process (a stack: the current test's).
RUN_AS_PROCESS: list[bool] = [os.environ.get("TAP_TESTS_CLI") == "1"]


def _run_in_process(argv: list[str]) -> tuple[int, str, str]:
    """Run the tap's command line in this process; return (exit code, stdout, stderr).

    What a process would isolate is restored after: environment, signal handlers, log
    handlers, and records still queued in a writer are flushed as at a process's exit.
    """
    from tap_demandbase import writer as writer_module
    from tap_demandbase.tap import TapDemandbase

    out, err = io.BytesIO(), io.StringIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    handler = logging.StreamHandler(err)
    handler.setFormatter(_console_formatter())
    root = logging.getLogger()
    saved_level, saved_env = root.level, dict(os.environ)
    saved_signals = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    writers: weakref.WeakSet[Any] = weakref.WeakSet()
    original_init = writer_module.FastSingerWriter.__init__

    def tracked_init(self: Any) -> None:
        original_init(self)
        writers.add(self)

    for name in [k for k in os.environ if k.startswith("TAP_DEMANDBASE_")]:
        del os.environ[name]
    root.addHandler(handler)
    root.setLevel(os.environ.get("LOGLEVEL", "INFO").upper())
    writer_module.FastSingerWriter.__init__ = tracked_init  # type: ignore[method-assign]
    code = 0
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(err):
            try:
                TapDemandbase.get_singer_command().main(
                    args=argv, prog_name="tap-demandbase", standalone_mode=False
                )
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except click.exceptions.Exit as exc:
                code = exc.exit_code
            except click.ClickException as exc:
                exc.show(err)
                code = exc.exit_code
            except Exception:
                err.write(traceback.format_exc())
                code = 1
            finally:
                for writer in list(writers):
                    with contextlib.suppress(Exception):
                        writer.flush()
    finally:
        writer_module.FastSingerWriter.__init__ = original_init  # type: ignore[method-assign]
        root.removeHandler(handler)
        root.setLevel(saved_level)
        os.environ.clear()
        os.environ.update(saved_env)
        for sig, previous in saved_signals.items():
            signal.signal(sig, previous)
    return code, out.getvalue().decode("utf-8"), err.getvalue()


def _console_formatter() -> logging.Formatter:
    import singer_sdk.logging

    return singer_sdk.logging.ConsoleFormatter()


def discover(tmp_path: Path, config: dict[str, Any]) -> dict[str, Any]:
    run = run_tap(tmp_path, config, "--discover")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def select(catalog: dict[str, Any], streams: dict[str, list[str] | None]) -> dict[str, Any]:
    """Select the given streams (with the given properties, or all when None) in a catalog."""
    for entry in catalog["streams"]:
        chosen = entry["tap_stream_id"] in streams
        fields = streams.get(entry["tap_stream_id"])
        for item in entry["metadata"]:
            if not item["breadcrumb"]:
                item["metadata"]["selected"] = chosen
            elif chosen and item["metadata"].get("inclusion") != "automatic":
                item["metadata"]["selected"] = fields is None or item["breadcrumb"][-1] in fields
    return catalog


class LiveTap:
    """The CLI running in the background; its stdout read line by line."""

    def __init__(self, tmp_path, config, catalog, state=None) -> None:
        (tmp_path / "live-config.json").write_text(json.dumps(config))
        (tmp_path / "live-catalog.json").write_text(json.dumps(catalog))
        command = [TAP, "--config", str(tmp_path / "live-config.json")]
        command += ["--catalog", str(tmp_path / "live-catalog.json")]
        if state is not None:
            (tmp_path / "live-state.json").write_text(json.dumps(state))
            command += ["--state", str(tmp_path / "live-state.json")]
        self.stderr_path = tmp_path / "live-stderr.log"
        with self.stderr_path.open("wb") as stderr:  # the process writes its own copy
            self.process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env={k: v for k, v in os.environ.items() if not k.startswith("TAP_DEMANDBASE_")},
            )
        self.lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.messages: list[dict[str, Any]] = []

    def _pump(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self.lines.put(line)
        self.lines.put(b"")

    def read_until(self, done, timeout=60.0) -> dict[str, Any]:
        """Read messages until ``done(message)``; stop reading there (the pipe then fills)."""
        while True:
            line = self.lines.get(timeout=timeout)
            assert line, f"the tap ended early: {self.stderr_path.read_text()}"
            message = json.loads(line)
            self.messages.append(message)
            if done(message):
                return message

    def drain(self) -> None:
        """Read what is left once the tap has ended."""
        while line := self.lines.get(timeout=10):
            self.messages.append(json.loads(line))

    def records(self) -> list[dict[str, Any]]:
        return [m["record"] for m in self.messages if m["type"] == "RECORD"]


def ledger_of(message: dict[str, Any], stream: str = "accounts") -> Any:
    """The job a STATE message keeps in a stream's ledger (None for another message)."""
    if message["type"] != "STATE":
        return None
    return message["value"].get("bookmarks", {}).get(stream, {}).get("export_job")
