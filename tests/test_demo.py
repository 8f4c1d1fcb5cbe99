"""scripts/demo.sh and the emulator start/stop it uses: no emulator is ever left running."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SANDBOX_BIN = str(Path(sys.executable).with_name("demandbase-sandbox"))


def _port_open(api_url: str) -> bool:
    parts = urlsplit(api_url)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((parts.hostname, parts.port)) == 0


def _processes_mentioning(text: str) -> list[int]:
    """Return the pids of live processes whose command line contains ``text``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                pids.append(int(proc.name))
    return pids


def _script(tmp_path: Path, body: str) -> subprocess.Popen[str]:
    """Run a bash script that sources scripts/sandbox.sh and starts the emulator first."""
    text = (
        "set -euo pipefail\n"
        f"cd {ROOT}\n"
        "source scripts/sandbox.sh\n"
        f"sandbox_start {tmp_path} --pending-seconds 0.1\n"
        f"echo $SANDBOX_PID > {tmp_path}/pid\n"
        f"{body}\n"
    )
    env = {**os.environ, "SANDBOX_BIN": SANDBOX_BIN}
    return subprocess.Popen(["bash", "-c", text], env=env, text=True, stderr=subprocess.PIPE)


@pytest.fixture(autouse=True)
def _no_leftover_emulator(tmp_path):
    """Whatever a test asserts, stop an emulator it left behind (so a failure leaks nothing)."""
    yield
    pid_file = tmp_path / "pid"
    if pid_file.exists() and pid_file.read_text().strip():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)


def _wait_for(path: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _assert_stopped(tmp_path: Path) -> None:
    api_url = (tmp_path / "api_url").read_text().strip()
    pid = int((tmp_path / "pid").read_text())
    assert not _port_open(api_url), f"the emulator still answers on {api_url}"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize(
    ("body", "expected_rc"),
    [
        ("true", 0),  # normal end
        ("false", 1),  # a failing command under set -e
    ],
)
def test_emulator_is_stopped_when_the_script_ends(tmp_path, body, expected_rc):
    script = _script(tmp_path, f'[ -n "$(cat {tmp_path}/api_url)" ]\n{body}')
    _, stderr = script.communicate(timeout=60)
    assert script.returncode == expected_rc, stderr
    _assert_stopped(tmp_path)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_emulator_is_stopped_when_the_script_is_killed(tmp_path, signum):
    script = _script(tmp_path, "while true; do sleep 0.1; done")
    _wait_for(tmp_path / "pid")
    assert _port_open((tmp_path / "api_url").read_text().strip())
    script.send_signal(signum)
    script.communicate(timeout=60)
    assert script.returncode != 0
    _assert_stopped(tmp_path)


def test_demo_runs_and_leaves_no_emulator(tmp_path):
    demo = tmp_path / "demo"
    env = {**os.environ, "DEMO_DIR": str(demo)}
    done = subprocess.run(
        ["bash", "scripts/demo.sh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "What landed" in done.stdout
    assert "accounts" in done.stdout
    api_url = (demo / "api_url").read_text().strip()
    assert not _port_open(api_url), f"the demo left the emulator running on {api_url}"
    assert not _processes_mentioning(f"{demo}/api_url")
