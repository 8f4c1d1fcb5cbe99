"""The test tiers: a test that starts no emulator, no server and no process is a unit test. It
lives in ``tests/unit/``, which marks each of its tests ``unit`` (``scripts/test.sh --fast``
runs that folder), and the tier is kept true.

- A unit test that starts an emulator, a server or a process, or uses a fixture that started
  one, fails saying so; so does a test marked ``unit`` outside ``tests/unit/``.
- A test outside ``tests/unit/`` that started none of them, used no fixture that did, and ran
  while no emulator was running is listed at the end of the run, to be moved there.
- A test module that starts an emulator when it is imported stops the run: the emulator would
  run under every test of the session.
"""

from __future__ import annotations

import socketserver
import subprocess
import threading
import typing as t
from pathlib import Path

import pytest

from tap_demandbase.sandbox import Sandbox

#: The folder of the unit tier.
UNIT_FOLDER = Path(__file__).resolve().parents[1] / "unit"

#: How the emulator's server threads are named (``tap_demandbase/sandbox/server.py``).
SANDBOX_THREAD = "demandbase-sandbox-"


class _Tier:
    """The test being run (its tier and what it started), and the fixtures that started any."""

    def __init__(self) -> None:
        self.unit = False
        self.started: list[str] = []
        self.starters: set[str] = set()
        self.unmarked: list[str] = []


_TIER = _Tier()


def _guarded(original: t.Callable[..., t.Any], what: str) -> t.Callable[..., t.Any]:
    """Return ``original``, refused in a unit test and recorded in any other."""

    def start(*args: t.Any, **kwargs: t.Any) -> t.Any:
        if _TIER.unit:
            msg = f"A unit test starts {what}: remove its unit mark, or start nothing."
            raise AssertionError(msg)
        _TIER.started.append(what)
        return original(*args, **kwargs)

    return start


#: What a unit test may not start: (owner, attribute, what it is).
_STARTS = (
    (Sandbox, "start", "an emulator"),
    (socketserver.BaseServer, "__init__", "a server"),
    (subprocess.Popen, "__init__", "a process"),
)


def pytest_configure(config: pytest.Config) -> None:
    for owner, name, what in _STARTS:
        setattr(owner, name, _guarded(getattr(owner, name), what))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of ``tests/unit/`` ``unit``: the folder is the tier."""
    for item in items:
        if UNIT_FOLDER in item.path.parents:
            item.add_marker(pytest.mark.unit)


def emulator_threads() -> list[str]:
    """Return the names of the threads of the emulators running in this process."""
    return sorted(t.name for t in threading.enumerate() if t.name.startswith(SANDBOX_THREAD))


def pytest_collection_finish(session: pytest.Session) -> None:
    running = emulator_threads()
    if running:
        msg = f"An emulator was started while the tests were collected ({', '.join(running)}): "
        msg += "start it in a fixture, not when a test module is imported."
        raise pytest.UsageError(msg)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _TIER.unit = item.get_closest_marker("unit") is not None
    if _TIER.unit and UNIT_FOLDER not in item.path.parents:
        msg = "A test marked unit outside tests/unit/: move it there, and drop the mark."
        raise AssertionError(msg)
    _TIER.started = []
    used = sorted(_TIER.starters & set(getattr(item, "fixturenames", ())))
    if _TIER.unit and used:
        msg = f"A unit test uses {', '.join(used)}, which started an emulator, a server or a "
        msg += "process: remove its unit mark, or use none of them."
        raise AssertionError(msg)


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[t.Any]) -> t.Iterator[None]:
    before = len(_TIER.started)
    yield
    if len(_TIER.started) > before:
        _TIER.starters.add(fixturedef.argname)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> t.Iterator[None]:
    unit, used = _TIER.unit, _TIER.starters & set(getattr(item, "fixturenames", ()))
    quiet = not (_TIER.started or used or emulator_threads())
    # Teardown is no part of the test: the last test of a module tears the module's fixtures
    # down (a server stopped with a command, say), whatever its tier.
    _TIER.unit = False
    yield
    if not unit and quiet:
        item.user_properties.append(("starts_nothing", True))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Note the tests outside the unit tier that started nothing (in the main process, from
    every worker's reports).
    """
    if report.when == "teardown" and ("starts_nothing", True) in report.user_properties:
        _TIER.unmarked.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: t.Any) -> None:
    if _TIER.unmarked:
        terminalreporter.section("tests to move into tests/unit")
        terminalreporter.write_line(
            f"{len(_TIER.unmarked)} test(s) started no emulator, server or process: move them "
            "into tests/unit/, so that scripts/test.sh --fast runs them."
        )
        for nodeid in sorted(_TIER.unmarked):
            terminalreporter.write_line(f"  {nodeid}")
