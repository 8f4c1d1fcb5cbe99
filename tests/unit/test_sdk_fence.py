"""Where the tap leans on singer-sdk internals, these tests fail if the SDK moves under it.

Every such place is listed in ``tap_demandbase/sdk_compat.py``; each has a test here or, where
it needs an emulator, in ``tests/cli/test_sdk_fence.py``: the private hooks keep their names
and signatures, the private imports still do what the tap uses them for, and the log line the
tap hides is still the SDK's.
"""

from __future__ import annotations

import inspect

import pytest
import singer_sdk.streams.core
from singer_sdk import Stream, Tap
from singer_sdk.helpers._classproperty import classproperty
from singer_sdk.plugin_base import PluginBase

from tap_demandbase import sdk_compat
from tap_demandbase.tap import TapDemandbase

#: The private hooks sdk_compat overrides → the parameters the SDK calls them with.
_PRIVATE_HOOKS = {
    (Tap, "_validate_config"): ["self", "raise_errors"],
    (Tap, "_handle_termination"): ["self", "signum", "frame"],
    (Stream, "_write_record_message"): ["self", "record"],
    (Stream, "_process_record"): ["self", "record", "child_context", "partition_context"],
    (Stream, "_increment_stream_state"): ["self", "latest_record", "context"],
    (Stream, "_write_state_message"): ["self"],
    (Stream, "_write_activate_version_message"): ["self", "full_table_version"],
}


@pytest.mark.parametrize(("owner", "name"), list(_PRIVATE_HOOKS), ids=lambda v: str(v))
def test_each_private_hook_keeps_its_name_and_parameters(owner, name):
    hook = getattr(owner, name)
    assert list(inspect.signature(hook).parameters) == _PRIVATE_HOOKS[owner, name]


def test_the_environment_settings_hooks_are_still_class_properties():
    for name in ("_env_var_config", "_env_var_prefix"):
        assert isinstance(inspect.getattr_static(PluginBase, name), classproperty), name
    assert sdk_compat.env_var_prefix(TapDemandbase) == "TAP_DEMANDBASE_"


def test_the_private_imports_still_do_what_the_tap_uses_them_for(monkeypatch, tmp_path):
    from decimal import Decimal

    assert sdk_compat.load_json('{"x": 0.1}') == {"x": Decimal("0.1")}
    monkeypatch.chdir(tmp_path)  # no .env file found above
    monkeypatch.setenv("TAP_DEMANDBASE_WINDOW_DAYS", "3")
    schema = {"properties": {"window_days": {"type": ["integer"]}}}
    assert sdk_compat.parse_environment_config(schema, "TAP_DEMANDBASE_") == {"window_days": 3}
    monkeypatch.setenv("TAP_DEMANDBASE_LOGLEVEL", "debug")
    assert sdk_compat.plugin_log_level("tap-demandbase") == "DEBUG"
    assert (sdk_compat.PROGRESS_MARKERS, sdk_compat.PROGRESS_MARKER_NOTE) == (
        "progress_markers",
        "Note",
    )
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig, StorageTarget

    assert BaseBatchFileEncoding and BatchConfig and StorageTarget


def test_the_sdk_still_logs_the_generic_line_the_tap_hides():
    source = inspect.getsource(singer_sdk.streams.core)
    assert f'"{sdk_compat.UNHANDLED_ERROR_TEXT} while syncing' in source
    assert sdk_compat.is_unhandled_error_line(f"{sdk_compat.UNHANDLED_ERROR_TEXT} while x")
