"""The README's quick start: the demo pipeline runs, and leaves no emulator behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tap_demandbase.dialects import DIALECTS
from tests.support.checkout import ROOT
from tests.support.tap import ENTITIES

STREAMS = {"export_v1": ENTITIES, "uapi": (*ENTITIES, "creatives", "buying_group_members")}


def _emulators(dialect: str) -> list[str]:
    """Return the pids of emulators started by this checkout's demo of ``dialect`` (not
    another checkout's, nor the other dialect's demo, which may be running beside it).
    """
    demo = ".demo/api_url" if dialect == "export_v1" else f".demo/{dialect}/api_url"
    ready_file = str(ROOT / demo).encode()
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"tap_demandbase.sandbox" in w or b"demandbase-sandbox" in w for w in words) and any(
            w == ready_file or (w.endswith(demo.encode()) and _cwd(cmdline.parent) == ROOT)
            for w in words
        ):
            found.append(cmdline.parent.name)
    return found


def _cwd(process: Path) -> Path | None:
    try:
        return Path(process / "cwd").resolve()
    except OSError:
        return None


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_demo_runs_and_stops_its_emulator(dialect):
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh")],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT,
        env={**os.environ, "DEMO_DIALECT": dialect},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Run 2 re-read only each stream's bookmark day" in done.stdout
    assert f"Demandbase API emulator ({dialect})" in done.stdout
    for stream in STREAMS[dialect]:  # every stream's job, created and done
        lines = [
            line for line in done.stdout.splitlines() if line.startswith(f"{stream} export job ")
        ]
        assert any(" created: " in line for line in lines), (stream, done.stdout[:3000])
        assert any(" → completed " in line or " → finished " in line for line in lines), stream
    if dialect == "uapi":  # what the run cost against the daily budgets
        assert "job creates of 60" in done.stdout
    assert "A tap config for it (every stream, in seconds): " in done.stdout
    assert _emulators(dialect) == []
