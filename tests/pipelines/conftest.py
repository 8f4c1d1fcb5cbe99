"""The pipelines' PostgreSQL: a throwaway server per test module, from the machine's binaries.
Under CI=true a missing server fails the tests (``.ci/run`` installs it); elsewhere they skip.
"""

from __future__ import annotations

import os
import typing as t

import pytest

from tests.support.postgres import ThrowawayPostgres, postgres_bin


@pytest.fixture(scope="module")
def postgres() -> t.Iterator[ThrowawayPostgres]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        msg = "No PostgreSQL binaries (/usr/lib/postgresql/15/bin): apt-get install postgresql-15"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)  # CI must run the warehouse tests: .ci/run installs the server
        pytest.skip(msg)
    server = ThrowawayPostgres(bin_dir).start()
    try:
        yield server
    finally:
        server.stop()
