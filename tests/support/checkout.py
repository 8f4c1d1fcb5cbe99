"""This checkout as others get it: a copy of its files (as a clone has them), and a git
repository of them that stands in for the GitHub repository, so the documented installs from
``git+https://github.com/...`` run as written, offline, on the working tree's code.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def copy_working_tree(checkout: Path) -> Path:
    """Copy this checkout's files, tracked and new (not ignored ones), to ``checkout``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / name)
    return checkout


def repository_url() -> str:
    """Return the GitHub repository the project's install URLs name (plugin-definition.yml)."""
    hub = yaml.safe_load((ROOT / "plugin-definition.yml").read_text(encoding="utf-8"))
    return str(hub["repo"]).rstrip("/")


def github_stand_in(folder: Path) -> dict[str, str]:
    """Make a git repository of the working tree under ``folder``; return the environment that
    makes git (and so pip, uv and Meltano) fetch ``repository_url()`` from it instead.
    """
    work = copy_working_tree(folder / "work")
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "init", "--quiet", "--initial-branch=main"], check=True)
    subprocess.run([*git, "add", "--all"], check=True)
    subprocess.run([*git, "commit", "--quiet", "--message=working tree"], check=True)
    owner, name = repository_url().rsplit("/", 2)[-2:]
    bare = folder / "github" / owner / f"{name}.git"  # found for ".../name" and ".../name.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(work), str(bare)], check=True)
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.file://{bare.parent}/.insteadOf",
        "GIT_CONFIG_VALUE_0": repository_url().rsplit("/", 1)[0] + "/",
    }


def uv_executable() -> Path:
    """Return the uv that scripts/uv.sh runs (installing it first where the machine has none),
    for commands written with a bare ``uv``.
    """
    subprocess.run(["bash", str(ROOT / "scripts" / "uv.sh"), "--version"], check=True)
    found = shutil.which("uv")
    return Path(found) if found else ROOT / ".uv-bootstrap" / "bin" / "uv"
