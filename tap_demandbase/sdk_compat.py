"""Every place the tap leans on singer-sdk internals (singer-sdk 0.54.x, pinned ~=0.54.0).

An SDK upgrade has this one file to review. ``tests/unit/test_sdk_fence.py`` and
``tests/cli/test_sdk_fence.py`` have a test for each entry below that fails when the SDK
changes under it; ``@override`` with mypy's ``explicit-override`` fails on a renamed hook.

Private imports:
  - ``singer_sdk.helpers._classproperty.classproperty``: the form of ``_env_var_config``;
  - ``singer_sdk.helpers._util.load_json``: --state and --catalog read as the SDK reads them;
  - ``singer_sdk.configuration._dict_config.parse_environment_config``: TAP_DEMANDBASE_*;
  - ``singer_sdk.plugin_base._plugin_log_level``: the tap's log level (the metrics logger);
  - ``singer_sdk.helpers._state.PROGRESS_MARKERS``, ``PROGRESS_MARKER_NOTE``: state keys;
  - ``singer_sdk.helpers._batch``: ``BaseBatchFileEncoding``, ``BatchConfig``,
    ``StorageTarget`` (types only, imported where used under ``TYPE_CHECKING``).

Private hooks overridden, each here only, passing on to a public method of this module's
classes (the tap's and the streams' code overrides those):
  - ``Tap._validate_config`` → ``SdkTap.validate_settings``;
  - ``Tap._env_var_config`` (a class property) → ``SdkTap.environment_settings``;
  - ``Tap._handle_termination`` → ``SdkTap.terminate``;
  - ``Stream._write_record_message`` → ``SdkStream.write_record``;
  - ``Stream._process_record`` → ``SdkStream.process_record``;
  - ``Stream._increment_stream_state`` (per record) → ``SdkStream.record_state``; the SDK's
    version is called per part by ``SdkStream.increment_bookmark``.

Private attributes read, written or called:
  - ``Tap._streams`` written: the sync order (``SdkTap.set_sync_order``);
  - ``Tap._config`` read: the settings before validation (``SdkTap.given_settings``);
  - ``Tap._env_var_prefix`` read: ``TAP_DEMANDBASE_`` (``env_var_prefix``);
  - ``Stream._tap`` read: the tap's message writer (``SdkStream.tap_message_writer``);
  - ``Stream._stream_version`` read and written: the table version records carry
    (``SdkStream.table_version``);
  - ``Stream._write_state_message`` called, after ``state_manager.is_flushed = False``:
    STATE now (``SdkStream.write_state_now``; ``state_due`` for the flag alone);
  - ``Stream._write_activate_version_message`` called: ACTIVATE_VERSION after a delete
    check (``SdkStream.write_activate_version``).

State keys of the SDK's stream state the tap reads or writes:
  - ``replication_key_value``: the final bookmark (``BOOKMARK_VALUE_KEY``);
  - ``progress_markers``: the bookmark of a window not done yet (``PROGRESS_MARKERS``),
    dropped when a stream fails, marked resumable by the tap's note.
  The engine, which imports no SDK, reads ``replication_key_value`` by name too
  (``engine/windows.py``, ``engine/export.py``), and ``records/batches.py`` imports the
  ``_batch`` types itself (type-only): the same tests guard them.

Public behaviour relied on:
  - ``Tap.load_streams`` (final) orders the discovered streams by name, the order
    ``sync_all`` syncs them in and the run plans them in (``sync_order_key``);
  - ``Stream.log_sync_costs`` is called for every stream once all have synced: the run's end
    (tested by ``test_a_failed_stream_surfaces_from_sync_all_after_the_others_synced``).

Log text matched:
  - "An unhandled error occurred" (``Stream.sync``'s line for any exception): the tap has
    already said it in one line (``is_unhandled_error_line``).
"""

from __future__ import annotations

import typing as t

from singer_sdk import Stream, Tap
from singer_sdk.configuration._dict_config import parse_environment_config
from singer_sdk.helpers._classproperty import classproperty
from singer_sdk.helpers._state import PROGRESS_MARKER_NOTE, PROGRESS_MARKERS
from singer_sdk.helpers._util import load_json
from singer_sdk.plugin_base import _plugin_log_level
from typing_extensions import override

if t.TYPE_CHECKING:
    from types import FrameType

    from singer_sdk.helpers import types
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig, StorageTarget
    from singer_sdk.singerlib.encoding.base import GenericSingerWriter

__all__ = [
    "BOOKMARK_VALUE_KEY",
    "PROGRESS_MARKERS",
    "PROGRESS_MARKER_NOTE",
    "UNHANDLED_ERROR_TEXT",
    "BaseBatchFileEncoding",
    "BatchConfig",
    "SdkStream",
    "SdkTap",
    "StorageTarget",
    "classproperty",
    "env_var_prefix",
    "is_unhandled_error_line",
    "load_json",
    "parse_environment_config",
    "plugin_log_level",
    "sync_order_key",
]

#: The SDK's stream state key of the final bookmark value.
BOOKMARK_VALUE_KEY = "replication_key_value"
#: How ``Stream.sync`` begins its log line for any exception it lets through.
UNHANDLED_ERROR_TEXT = "An unhandled error occurred"


def is_unhandled_error_line(message: str) -> bool:
    """Whether a log message is the SDK's generic line for an exception of a stream's sync."""
    return message.startswith(UNHANDLED_ERROR_TEXT)


def sync_order_key(stream: Stream) -> str:
    """Return what the SDK orders the discovered streams by (their name)."""
    return stream.name


def plugin_log_level(plugin_name: str) -> str:
    """Return the log level the SDK gives the plugin (its ``*_LOGLEVEL`` variable)."""
    return _plugin_log_level(plugin_name=plugin_name)


def env_var_prefix(tap_class: type[Tap]) -> str:
    """Return the prefix of the tap's settings in the environment (``TAP_DEMANDBASE_``)."""
    return str(tap_class._env_var_prefix)


class SdkTap(Tap):
    """The SDK's Tap, its private hooks passed on to public methods."""

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Check the settings (the SDK's check, skipped by discovery, is replaced)."""
        return self.validate_settings(self.given_settings)

    def validate_settings(self, config: dict[str, t.Any]) -> list[str]:
        """Check the settings given, in place; return what the SDK would warn about."""
        return super()._validate_config(raise_errors=True)

    @classproperty
    @override
    def _env_var_config(cls) -> dict[str, t.Any]:
        """Return the settings given as environment variables (--config=ENV)."""
        return cls.environment_settings()

    @classmethod
    def environment_settings(cls) -> dict[str, t.Any]:
        """Return the settings given as environment variables, as the SDK reads them."""
        schema = dict(cls.config_jsonschema)
        cls.append_builtin_config(schema)
        return parse_environment_config(schema, env_var_prefix(cls))

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """On SIGTERM/SIGINT (the SDK's handler, which exits 0, is replaced)."""
        self.terminate(signum, frame)

    def terminate(self, signum: int, frame: FrameType | None) -> None:
        """Handle a termination signal as the SDK does."""
        super()._handle_termination(signum, frame)

    @property
    def given_settings(self) -> dict[str, t.Any]:
        """Return the settings as given, which validation checks (and completes) in place."""
        return self._config

    def set_sync_order(self, names: list[str]) -> None:
        """Make the SDK sync the streams in this order (``sync_all`` follows ``streams``)."""
        streams = self.streams
        self._streams = {name: streams[name] for name in names}


class SdkStream(Stream):
    """The SDK's Stream, its private hooks and attributes reached through public names."""

    @override
    def _write_record_message(self, record: types.Record) -> None:
        self.write_record(record)

    def write_record(self, record: types.Record) -> None:
        """Write a record's RECORD message(s), as the SDK does (through its stream maps)."""
        super()._write_record_message(record)

    @override
    def _process_record(
        self,
        record: types.Record,
        child_context: types.Context | None = None,
        partition_context: types.Context | None = None,
    ) -> None:
        self.process_record(record, child_context, partition_context)

    def process_record(
        self,
        record: types.Record,
        child_context: types.Context | None = None,
        partition_context: types.Context | None = None,
    ) -> None:
        """Do the SDK's per-record work for child streams and partitions."""
        super()._process_record(record, child_context, partition_context)

    @override
    def _increment_stream_state(
        self, latest_record: types.Record, *, context: types.Context | None = None
    ) -> None:
        self.record_state(latest_record, context=context)

    def record_state(
        self, latest_record: types.Record, *, context: types.Context | None = None
    ) -> None:
        """Move the bookmark after one record, as the SDK does."""
        super()._increment_stream_state(latest_record, context=context)

    def increment_bookmark(self, key: str, value: t.Any) -> None:
        """Move the SDK's bookmark (its progress marker) to ``value`` of ``key``, if greater."""
        super()._increment_stream_state({key: value})

    @property
    def tap_message_writer(self) -> GenericSingerWriter[t.Any, t.Any]:
        """Return the writer of the tap's messages."""
        return self._tap.message_writer

    @property
    def table_version(self) -> int | None:
        """Return the table version this stream's records carry (None: none)."""
        return self._stream_version

    @table_version.setter
    def table_version(self, version: int | None) -> None:
        self._stream_version = version

    def state_due(self) -> None:
        """Note that the state changed since the last STATE message."""
        self.state_manager.is_flushed = False

    def write_state_now(self) -> None:
        """Write a STATE message now (after the records before it)."""
        self.state_due()
        self._write_state_message()

    def write_activate_version(self, version: int) -> None:
        """Write the ACTIVATE_VERSION message of ``version``."""
        self._write_activate_version_message(version)
