"""The README's quick start: the demo pipeline runs, and leaves no emulator behind."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _emulators() -> list[str]:
    """Return the pids of emulators started by this checkout's demo (not another checkout's)."""
    ready_file = str(ROOT / ".demo" / "api_url").encode()
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"tap_demandbase.sandbox" in w or b"demandbase-sandbox" in w for w in words) and any(
            w == ready_file or (w.endswith(b".demo/api_url") and _cwd(cmdline.parent) == ROOT)
            for w in words
        ):
            found.append(cmdline.parent.name)
    return found


def _cwd(process: Path) -> Path | None:
    try:
        return Path(process / "cwd").resolve()
    except OSError:
        return None


def test_demo_runs_and_stops_its_emulator():
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh")],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Run 2 re-read only each stream's bookmark day" in done.stdout
    assert _emulators() == []
