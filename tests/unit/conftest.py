"""The unit tier (``tests/support/tiers.py`` marks this folder's tests and keeps them from
starting an emulator, a server or a process). The engine's tests share a fake API on a fake
clock (``tests/support/fakes.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fakes import FakeApi, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api(clock: FakeClock, tmp_path: Path) -> FakeApi:
    return FakeApi(clock, tmp_path)
