"""Fixtures: a real API emulator on loopback (one per dialect with ``dialect_case``), the run
mode of ``run_tap`` (``tests/support/tap.py``), the hypothesis profiles and the tiers.
"""

from __future__ import annotations

import os
from typing import Any

import hypothesis
import pytest

from tap_demandbase.dialects import DIALECTS
from tap_demandbase.dialects.base import Dialect
from tap_demandbase.sandbox import Sandbox
from tests.support import tap

#: The test tiers: the ``unit`` mark kept true (tests/support/tiers.py).
pytest_plugins = ["tests.support.tiers"]

#: Hypothesis examples per test: few in the inner loop (the default), as many as the tests
#: always had under CI=true, and ten times that with HYPOTHESIS_PROFILE=thorough (nightly, or
#: before a change to the grammar or the readers). No deadline: the machine is shared.
hypothesis.settings.register_profile("dev", max_examples=20, deadline=None)
hypothesis.settings.register_profile("ci", max_examples=400, deadline=None, print_blob=True)
hypothesis.settings.register_profile("thorough", max_examples=4000, deadline=None)
hypothesis.settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE")
    or ("ci" if os.environ.get("CI", "").lower() == "true" else "dev")
)


@pytest.fixture
def sandbox() -> Any:
    with Sandbox(tap.fast_settings()) as sb:
        yield sb


@pytest.fixture(params=sorted(DIALECTS))
def dialect(request: pytest.FixtureRequest) -> Dialect:
    """Each registered dialect (a test using this runs once per dialect)."""
    return DIALECTS[request.param]


@pytest.fixture(params=sorted(DIALECTS))
def dialect_case(request: Any) -> Any:
    """An emulator of each API dialect, with the tap's expectations against it (a test using
    this runs once per dialect: ``tests/support/dialect_cases.py``).
    """
    from tests.support.dialect_cases import CASES, sandbox_for

    with sandbox_for(request.param) as sb:
        yield CASES[request.param](sb)


@pytest.fixture(autouse=True)
def _run_mode(request: pytest.FixtureRequest) -> Any:
    as_process = tap.RUN_AS_PROCESS[0] or request.node.get_closest_marker("cli") is not None
    tap.RUN_AS_PROCESS.append(as_process)
    yield
    tap.RUN_AS_PROCESS.pop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the slow pipelines first: spread over the workers, they end with the rest of the
    suite instead of after it.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
