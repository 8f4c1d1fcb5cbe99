"""The package as PyPI gets it: built by scripts/build.sh (uv build, then twine check --strict),
with the metadata, entry points and files a user's install needs.
"""

from __future__ import annotations

import email
import json
import os
import shutil
import subprocess
import zipfile

import pytest

from tests.support.checkout import ROOT, github_stand_in, uv_executable
from tests.support.readme import block_starting, commands

#: pipx, to run the README's pipx command (a fresh machine has none).
PIPX = "pipx==1.18.4"


def test_build_passes_twine_check_and_ships_what_an_install_needs(tmp_path):
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build.sh"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = tmp_path.glob("*.whl")
    (sdist,) = tmp_path.glob("*.tar.gz")
    assert sdist.name.startswith("tap_demandbase-")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(metadata_name))
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    assert metadata["Name"] == "tap-demandbase"
    assert metadata["Version"] != "0.0.0"  # from the git history (hatch-vcs), not the fallback
    assert metadata["Requires-Python"] == ">=3.10"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert "singer-sdk" in " ".join(metadata.get_all("Requires-Dist") or [])
    assert "tap-demandbase = tap_demandbase.tap:TapDemandbase.cli" in scripts
    assert "demandbase-sandbox = tap_demandbase.sandbox.cli:main" in scripts
    assert "tap_demandbase/dialects/export_v1/client.py" in names
    assert "tap_demandbase/dialects/uapi/wire.py" in names
    assert "tap_demandbase/engine/export.py" in names
    assert not [n for n in names if n.startswith("tests/")]


def test_the_version_is_the_git_tag(tmp_path):
    """A clone (of the last commit) tagged v7.8.9 builds tap-demandbase 7.8.9: what the release
    workflow publishes when that tag is pushed.
    """
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    subprocess.run(["git", "-C", str(clone), "tag", "v7.8.9"], check=True)
    done = subprocess.run(
        [
            "bash",
            str(ROOT / "scripts" / "uv.sh"),
            "build",
            "--quiet",
            "--out-dir",
            str(tmp_path / "dist"),
            str(clone),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    built = sorted(path.name for path in (tmp_path / "dist").glob("tap_demandbase-*"))
    assert built == ["tap_demandbase-7.8.9-py3-none-any.whl", "tap_demandbase-7.8.9.tar.gz"]


@pytest.mark.slow
def test_readme_install_commands_install_from_the_git_url(tmp_path):
    """The Install section's commands as written (pipx, then uv tool), GitHub stood in for by a
    git repository of this checkout: each installs the tap from the git URL, and it runs.
    """
    block = block_starting("pipx install git+", containing="uv tool install git+")
    shims, tools = tmp_path / "shims", tmp_path / "tools"
    shims.mkdir()
    uv = uv_executable()
    (shims / "uv").symlink_to(uv)
    (shims / "pipx").write_text(
        f'#!/bin/sh\nexec {uv} tool run --quiet --from {PIPX} pipx "$@"\n', encoding="utf-8"
    )
    (shims / "pipx").chmod(0o755)
    env = {
        **os.environ,
        **github_stand_in(tmp_path / "git"),
        "PATH": f"{tools / 'bin'}{os.pathsep}{shims}{os.pathsep}{os.environ['PATH']}",
        "PIPX_HOME": str(tools / "pipx"),
        "PIPX_BIN_DIR": str(tools / "bin"),
        "UV_TOOL_DIR": str(tools / "uv"),
        "UV_TOOL_BIN_DIR": str(tools / "bin"),
    }
    env.pop("VIRTUAL_ENV", None)
    installs = [line for line in commands(block) if " install git+" in line]
    assert [line.split()[0] for line in installs] == ["pipx", "uv"]
    for line in installs:
        shutil.rmtree(tools / "bin", ignore_errors=True)
        done = subprocess.run(
            ["bash", "-c", line], env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, line + "\n" + done.stdout[-2000:] + done.stderr[-3000:]
        about = subprocess.run(
            ["bash", "-c", "tap-demandbase --about --format=json"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert about.returncode == 0, about.stderr[-2000:]
        assert json.loads(about.stdout)["name"] == "tap-demandbase", line
        assert shutil.which("tap-demandbase", path=str(tools / "bin")), line
