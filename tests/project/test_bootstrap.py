"""The quick start on a machine whose python3 refuses global installs (PEP 668, as Debian 12's
and Ubuntu's do), without uv on PATH: scripts/uv.sh installs uv into the checkout's private
``.uv-bootstrap/`` and runs it; with no way to install it, it says so in one line.

The refusing python3 is built here from the interpreter running the tests: its binary copied
into a new prefix whose standard library links to the real one, pip installed in its own
site-packages, and an ``EXTERNALLY-MANAGED`` file, so pip run by it refuses, as on Debian.
Leaving out ensurepip gives Debian's python3 without python3-venv; leaving out pip too, a bare
python3.
Installing uv needs PyPI (pip's own configuration, as a user's machine has it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.support.checkout import copy_working_tree

VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"
#: Commands of PATH the bootstrap must not find: the machine's uv and Pythons.
HIDDEN = ("uv", "uvx", "python", "python3", VERSION, "pip", "pip3")


def _refusing_python(prefix: Path, *, ensurepip: bool, pip: bool) -> Path:
    """Build a python3 under ``prefix`` that refuses global installs; return its bin folder."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    lib = prefix / "lib" / VERSION
    lib.mkdir(parents=True)
    for entry in stdlib.iterdir():
        if entry.name not in {"site-packages", "dist-packages"}:
            (lib / entry.name).symlink_to(entry)
    (lib / "site-packages").mkdir()
    for shared in (Path(sys.base_prefix) / "lib").glob("libpython*"):  # for $ORIGIN/../lib
        (prefix / "lib" / shared.name).symlink_to(shared)
    bin_dir = prefix / "bin"
    bin_dir.mkdir()
    shutil.copy2(Path(sys._base_executable).resolve(), bin_dir / VERSION)  # type: ignore[attr-defined]
    (bin_dir / "python3").symlink_to(VERSION)
    if pip:  # "globally" installed: pip copied from a venv of the real Python (its ensurepip)
        source = prefix.parent / "pip-source"
        subprocess.run([sys._base_executable, "-m", "venv", source], check=True, timeout=300)  # type: ignore[attr-defined]
        target = Path(_python_says(bin_dir, "import site; print(site.getsitepackages()[0])"))
        for package in (source / "lib" / VERSION / "site-packages").glob("pip*"):
            shutil.copytree(package, target / package.name)  # Debian's: local/.../dist-packages
    if not ensurepip:
        (lib / "ensurepip").unlink()
    (lib / "EXTERNALLY-MANAGED").write_text(
        "[externally-managed]\nError=This Python is managed by the system: use a venv.\n",
        encoding="utf-8",
    )
    return bin_dir


def _python_says(bin_dir: Path, code: str) -> str:
    done = subprocess.run(
        [str(bin_dir / "python3"), "-c", code], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _path_without_uv(tmp_path: Path, python_bin: Path) -> str:
    """Return a PATH of the refusing python3 and the system's commands, without uv."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for folder in ("/usr/bin", "/bin"):
        for command in Path(folder).iterdir():
            if command.name not in HIDDEN and not (tools / command.name).exists():
                (tools / command.name).symlink_to(command)
    return f"{python_bin}{os.pathsep}{tools}"


def _checkout(tmp_path: Path) -> Path:
    return copy_working_tree(tmp_path / "checkout")


def _environment(path: str) -> dict[str, str]:
    hidden = ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "UV_PYTHON", "CONDA_PREFIX")
    return {**{k: v for k, v in os.environ.items() if k not in hidden}, "PATH": path}


def _run(checkout: Path, env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command), cwd=checkout, env=env, capture_output=True, text=True, timeout=600
    )


def _refuses_global_installs(python_bin: Path, env: dict[str, str]) -> bool:
    done = subprocess.run(
        [str(python_bin / "python3"), "-m", "pip", "install", "uv"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode != 0 and "externally-managed-environment" in done.stderr


@pytest.mark.slow
def test_quick_start_where_global_installs_are_refused(tmp_path):
    """Debian 12 with python3-venv: uv lands in a private venv, then the demo runs."""
    python_bin = _refusing_python(tmp_path / "python", ensurepip=True, pip=True)
    env = _environment(_path_without_uv(tmp_path, python_bin))
    assert shutil.which("uv", path=env["PATH"]) is None
    assert _refuses_global_installs(python_bin, env)
    checkout = _checkout(tmp_path)

    done = _run(checkout, env, "bash", "scripts/uv.sh", "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("uv "), done.stdout
    assert "installing it into" in done.stderr
    boot = checkout / ".uv-bootstrap"
    assert (boot / "pyvenv.cfg").is_file() and (boot / "bin" / "uv").is_file()
    site_packages = Path(_python_says(python_bin, "import site; print(site.getsitepackages()[0])"))
    assert not list(site_packages.glob("uv*")), "uv was installed into the system's Python"

    demo = _run(checkout, env, "bash", "scripts/demo.sh")  # the quick start's first command
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-3000:]
    assert "Run 2 re-read only each stream's bookmark day" in demo.stdout
    assert "installing it into" not in demo.stderr  # the private uv is re-used


def test_bootstrap_without_venv_uses_pip_target(tmp_path):
    """Debian 12 without python3-venv (no ensurepip): pip --target, which PEP 668 allows."""
    python_bin = _refusing_python(tmp_path / "python", ensurepip=False, pip=True)
    env = _environment(_path_without_uv(tmp_path, python_bin))
    assert _refuses_global_installs(python_bin, env)
    checkout = _checkout(tmp_path)

    done = _run(checkout, env, "bash", "scripts/uv.sh", "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("uv "), done.stdout
    assert "apt install python3-venv): using pip --target" in done.stderr
    assert (checkout / ".uv-bootstrap" / "bin" / "uv").is_file()
    assert not list(checkout.glob(".uv-bootstrap.*")), "the build folder was left behind"
    again = _run(checkout, env, "bash", "scripts/uv.sh", "--version")
    assert again.returncode == 0 and again.stderr == "", again.stderr


def test_bootstrap_without_venv_or_pip_says_what_to_install(tmp_path):
    python_bin = _refusing_python(tmp_path / "python", ensurepip=False, pip=False)
    env = _environment(_path_without_uv(tmp_path, python_bin))
    checkout = _checkout(tmp_path)

    done = _run(checkout, env, "bash", "scripts/uv.sh", "--version")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("scripts/uv.sh: cannot install uv:"), done.stderr
    assert "install uv (https://docs.astral.sh/uv/) or python3-venv" in last
    assert "Traceback" not in done.stderr
    assert not (checkout / ".uv-bootstrap").exists()
