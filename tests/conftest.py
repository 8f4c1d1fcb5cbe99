"""Fixtures: a real API emulator on loopback and the real ``tap-demandbase`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tap_demandbase.sandbox import Sandbox, SandboxSettings

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


@pytest.fixture
def sandbox() -> Any:
    with Sandbox(fast_settings()) as sb:
        yield sb


@pytest.fixture(params=["export_v1", "uapi"])
def dialect_case(request: Any) -> Any:
    """An emulator of each API dialect, with the tap's expectations against it (a test using
    this runs once per dialect: ``tests/dialect_cases.py``).
    """
    from tests.dialect_cases import CASES, sandbox_for

    with sandbox_for(request.param) as sb:
        yield CASES[request.param](sb)


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
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAP_DEMANDBASE_")}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    messages = []
    if "--discover" not in args and "--about" not in args:
        messages = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return TapRun(done.returncode, done.stdout, done.stderr, messages)


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
