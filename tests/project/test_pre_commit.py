"""The pre-commit hooks pass on every file of the checkout, and each is a local hook over a dev
dependency (the hooks' own repositories are never fetched).
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.checkout import ROOT


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
