"""The pre-commit hooks pass on every file of the checkout, and each is a local hook over a dev
dependency (the hooks' own repositories are never fetched).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".pre-commit-config.yaml"


@pytest.mark.unit
def test_every_hook_is_local_and_runs_through_uv():
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    hooks = {hook["id"]: hook for hook in config["repos"][0]["hooks"]}
    assert set(hooks) == {
        "ruff-check",
        "ruff-format",
        "uv-lock",
        "check-meltano",
        "check-github-workflows",
    }
    for hook in hooks.values():
        assert hook["entry"].startswith("bash scripts/uv.sh "), hook["id"]
    assert "--builtin-schema vendor.meltano" in hooks["check-meltano"]["entry"]
    assert "--builtin-schema vendor.github-workflows" in hooks["check-github-workflows"]["entry"]


def test_pre_commit_passes_on_every_file(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files", "--show-diff-on-failure"],
        cwd=ROOT,
        env={**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert done.stdout.count("Passed") == 5, done.stdout
