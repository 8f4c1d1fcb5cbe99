"""The offline trial: ``demandbase-sandbox`` as a user starts it (default timings) prints a tap
config, and that config, pasted as it is, syncs rows in every stream within seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tap_demandbase.dialects import DIALECTS
from tests.support.tap import ENTITIES, TAP

#: Process runs: the emulator's command and the installed tap.
pytestmark = [pytest.mark.cli, pytest.mark.slow]

PRINTED = "A tap config for it (every stream, in seconds): "
STREAMS = {
    "export_v1": set(ENTITIES),
    "uapi": {*ENTITIES, "creatives", "buying_group_members"},
}
#: "Well under a minute": 8 jobs of about 3 s on the emulator's default timings.
WALL_SECONDS = 60


def _start(tmp_path: Path, dialect: str) -> tuple[subprocess.Popen[str], dict, dict]:
    """Start the emulator's command; return it, the config it printed and the one it wrote."""
    ready, written = tmp_path / "ready", tmp_path / "config.json"
    command = [
        str(Path(sys.executable).with_name("demandbase-sandbox")),
        *("--dialect", dialect, "--port", "0"),
        *("--write-config", str(written), "--ready-file", str(ready)),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    lines = [process.stdout.readline(), process.stdout.readline()]
    deadline = time.monotonic() + 20
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    (printed,) = [line[len(PRINTED) :] for line in lines if line.startswith(PRINTED)]
    return process, json.loads(printed), json.loads(written.read_text(encoding="utf-8"))


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_the_printed_config_syncs_every_stream_in_seconds(tmp_path, dialect):
    process, printed, written = _start(tmp_path, dialect)
    try:
        assert printed == written
        started = time.monotonic()
        done = subprocess.run(
            [TAP, "--config", str(tmp_path / "config.json")],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        elapsed = time.monotonic() - started
        jobs = requests.get(printed["api_url"] + "/_sandbox/jobs", timeout=10).json()["jobs"]
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert done.returncode == 0, done.stderr[-3000:]
    counts: dict[str, int] = {}
    for line in done.stdout.splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            counts[message["stream"]] = counts.get(message["stream"], 0) + 1
    assert set(counts) == STREAMS[dialect], counts
    assert all(count > 0 for count in counts.values()), counts
    assert len(jobs) == len(STREAMS[dialect])  # one job per stream: activities in one window
    assert printed["max_poll_interval_seconds"] <= 2
    assert elapsed < WALL_SECONDS, f"{elapsed:.1f} s"


def test_an_unwritable_config_path_is_one_line(tmp_path):
    command = [
        str(Path(sys.executable).with_name("demandbase-sandbox")),
        *("--port", "0", "--write-config", str(tmp_path / "missing" / "config.json")),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"demandbase-sandbox: cannot write {tmp_path / 'missing' / 'config.json'}: "
        "No such file or directory"
    ]
