"""Pipelines of installed commands: the tap into target-postgres, and Meltano projects, with the
tools pinned where the user's would be (meltano.yml's loaders, Meltano's own version).
"""

from __future__ import annotations

import json
import os
import subprocess
import typing as t
from pathlib import Path

import yaml

from tests.support.checkout import ROOT, github_stand_in
from tests.support.tap import TAP

UV = ["bash", str(ROOT / "scripts" / "uv.sh")]
#: The Meltano version the pipelines run; the loaders' pins come from meltano.yml.
MELTANO = "meltano==4.4.1"
#: A run against the emulator takes seconds; a first ``uv tool run`` also installs the tool.
TIMEOUT = 900


def loader_pip_url(name: str) -> list[str]:
    """Return the packages meltano.yml pins for a loader (its pip_url, split)."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    (loader,) = [p for p in project["plugins"]["loaders"] if p["name"] == name]
    return str(loader["pip_url"]).split()


def tool(packages: list[str], executable: str) -> list[str]:
    """Return the command running ``executable`` from pinned ``packages`` with uv's tool cache."""
    command = [*UV, "tool", "run", "--quiet", "--from", packages[0]]
    for extra in packages[1:]:
        command += ["--with", extra]
    return [*command, executable]


def tap_to_postgres(
    tmp_path: Path,
    config: dict[str, t.Any],
    target_config: dict[str, t.Any],
    name: str,
    state: dict[str, t.Any] | None = None,
    catalog: dict[str, t.Any] | None = None,
) -> dict[str, t.Any]:
    """Run ``tap-demandbase | target-postgres``; return the last state the target emitted."""
    run_dir = tmp_path / name
    run_dir.mkdir()
    (run_dir / "tap.json").write_text(json.dumps(config))
    (run_dir / "target.json").write_text(json.dumps(target_config))
    tap_cmd = [TAP, "--config", str(run_dir / "tap.json")]
    if state is not None:
        (run_dir / "state.json").write_text(json.dumps(state))
        tap_cmd += ["--state", str(run_dir / "state.json")]
    if catalog is not None:
        (run_dir / "catalog.json").write_text(json.dumps(catalog))
        tap_cmd += ["--catalog", str(run_dir / "catalog.json")]
    target_cmd = [
        *tool(loader_pip_url("target-postgres"), "target-postgres"),
        "--config",
        str(run_dir / "target.json"),
    ]
    with (run_dir / "tap.log").open("wb") as tap_log, (run_dir / "target.log").open("wb") as log:
        tap = subprocess.Popen(tap_cmd, stdout=subprocess.PIPE, stderr=tap_log)
        target = subprocess.run(
            target_cmd,
            stdin=tap.stdout,
            capture_output=False,
            stdout=subprocess.PIPE,
            stderr=log,
            timeout=TIMEOUT,
            check=False,
        )
        assert tap.stdout is not None
        tap.stdout.close()
        assert tap.wait(timeout=60) == 0, (run_dir / "tap.log").read_text()[-3000:]
    assert target.returncode == 0, (run_dir / "target.log").read_text()[-3000:]
    states = [json.loads(line) for line in target.stdout.decode().splitlines() if line.strip()]
    assert states, "target-postgres emitted no state"
    return states[-1]


def meltano(project: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*tool([MELTANO], "meltano"), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, (
        f"meltano {' '.join(args)}:\n{done.stdout[-3000:]}{done.stderr[-5000:]}"
    )
    return done


def meltano_environment(tmp_path: Path) -> dict[str, str]:
    """Return the environment of a Meltano project: no usage stats, uv to install plugins, and
    GitHub stood in for by a git repository of this checkout (pip_url installs its code).
    """
    env = {
        **os.environ,
        **github_stand_in(tmp_path / "git"),
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_VENV_BACKEND": "uv",
    }
    env.pop("VIRTUAL_ENV", None)
    return env
