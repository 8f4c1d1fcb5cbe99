"""The Singer SDK's standard tap tests, run in-process against the emulator."""

from __future__ import annotations

import atexit

from singer_sdk.testing import get_tap_test_class

from tap_demandbase.sandbox import Sandbox
from tap_demandbase.tap import TapDemandbase
from tests.conftest import fast_settings, tap_config

_SANDBOX = Sandbox(fast_settings())
_SANDBOX.start()
atexit.register(_SANDBOX.stop)

TestTapDemandbase = get_tap_test_class(
    tap_class=TapDemandbase,
    config=tap_config(_SANDBOX),
)
