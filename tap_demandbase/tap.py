"""tap-demandbase: the Tap's wiring and the command line.

The ``api_dialect`` setting picks the API (``dialects/``). The tap checks the settings
(``settings.py``), connects the dialect, makes the streams (``discovery.py``), and hands each
the run (``run.py``), which plans the jobs, gathers the failures and ends the sync. The
``--test`` modes are in ``checks.py``. Everything the tap takes from singer-sdk's internals goes
through ``sdk_compat.py``.
"""

from __future__ import annotations

import contextlib
import copy
import signal
import sys
import typing as t
from functools import cached_property

import click
from singer_sdk.plugin_base import JSONSchemaValidator
from singer_sdk.tap_base import CliTestOptionValue
from typing_extensions import override

from tap_demandbase.checks import TEST_HELP, checked_test_mode, run_test
from tap_demandbase.config import (
    checked_api_url,
    config_file_settings,
    json_object_file,
    number_from_text,
    numeric_settings,
    read_numbers_given_as_text,
    setting_errors_line,
    unknown_setting_warnings,
)
from tap_demandbase.dialects import ConnectOptions
from tap_demandbase.discovery import Discovery, api_names_in_catalog
from tap_demandbase.engine import background
from tap_demandbase.engine.clock import SystemClock
from tap_demandbase.errors import ConfigError, DemandbaseError
from tap_demandbase.logs import metrics_logger_level, quiet_sdk_noise
from tap_demandbase.process import configure_process
from tap_demandbase.progress import RESUME_LINE, nothing_selected_line, plural
from tap_demandbase.run import StreamsFailedError, SyncRun
from tap_demandbase.sdk_compat import (
    SdkTap,
    env_var_prefix,
    load_json,
    parse_environment_config,
    plugin_log_level,
    sync_order_key,
)
from tap_demandbase.settings import (
    Settings,
    about_schema,
    chosen_dialect,
    settings_of_other_dialects,
    validation_schema,
)
from tap_demandbase.state_file import checked_state
from tap_demandbase.streams import ExportStream
from tap_demandbase.writer import FastSingerWriter

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType

    from singer_sdk import Tap

    from tap_demandbase.dialects import Dialect
    from tap_demandbase.dialects.base import Connection

__all__ = ["StreamsFailedError", "TapDemandbase", "checked_api_url"]


@contextlib.contextmanager
def one_line_errors(
    tap_class: type[Tap], closing: Callable[[], None] = lambda: None
) -> Iterator[None]:
    """Report a DemandbaseError as one log line and exit 1, instead of a traceback; then (and
    whatever ended the block, a signal's exit included) call ``closing``.
    """
    failed = True
    try:
        yield
        failed = False
    except StreamsFailedError as exc:
        for failure in exc.failures:
            tap_class.logger.error("%s", failure)
    except DemandbaseError as exc:
        tap_class.logger.error("%s", exc)
    finally:
        closing()
    if failed:
        sys.exit(1)


class TapDemandbase(SdkTap):
    """Singer tap for the Demandbase Data Export API."""

    name = "tap-demandbase"
    message_writer_class = FastSingerWriter
    #: Every setting of every dialect, as ``--about`` and Meltano list them; a sync checks the
    #: common settings and the chosen dialect's (``settings.py``).
    config_jsonschema = about_schema()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self.clock = SystemClock()
        #: Stream → property → the field's API name, from the input catalog's metadata (the
        #: SDK's catalog model drops metadata keys it does not know).
        self.catalog_api_names = api_names_in_catalog(kwargs.get("catalog"))
        quiet_sdk_noise(self.logger)
        super().__init__(*args, **kwargs)
        self.metrics_logger.setLevel(
            metrics_logger_level(self.config.get("metrics_log_level"), plugin_log_level(self.name))
        )

    # Settings -------------------------------------------------------------------------------

    @override
    def validate_settings(self, config: dict[str, t.Any]) -> list[str]:
        """Check the settings against the common schema and the chosen dialect's, whatever the
        command (discovery included).

        Replaces the SDK's check (singer-sdk 0.54.x), which discovery skips (a missing
        access_token then surfaced as a KeyError traceback) and which logs each violation on
        its own line. Here every violation is one sentence naming the setting, all in one
        ConfigError line; the validator also fills in the schema's defaults. A setting of
        another dialect only is not an error: one warning says it does not apply.
        """
        schema = validation_schema(config)
        self.append_builtin_config(schema)
        read_numbers_given_as_text(config, schema)
        errors = list(JSONSchemaValidator(schema).iter_errors(config))
        if errors:
            errors.sort(key=lambda error: [str(part) for part in error.path])
            raise ConfigError(setting_errors_line(errors, schema, env_var_prefix(type(self))))
        others = settings_of_other_dialects(chosen_dialect(config))
        for warning in unknown_setting_warnings(config, schema["properties"], others):
            self.logger.warning("%s", warning)
        return []

    @override
    @classmethod
    def environment_settings(cls) -> dict[str, t.Any]:
        """Return the settings given as TAP_DEMANDBASE_* environment variables (--config=ENV).

        Replaces the SDK's parser (singer-sdk 0.54.x), which leaves numbers as strings
        ('0.5' is not of type 'number'): numeric settings are read as text, then converted
        here with an error naming the variable.
        """
        schema = copy.deepcopy(cls.config_jsonschema)
        cls.append_builtin_config(schema)
        numeric = numeric_settings(schema)
        for name in numeric:
            schema["properties"][name] = {"type": ["string"]}
        prefix = env_var_prefix(cls)
        config = parse_environment_config(schema, prefix)
        for name in numeric.keys() & config.keys():
            config[name] = number_from_text(
                name, config[name], integer=numeric[name], source=prefix + name.upper()
            )
        return config

    @cached_property
    def settings(self) -> Settings:
        """Return the settings, typed (a live view of the validated config)."""
        return Settings(self.config)

    @cached_property
    def dialect(self) -> Dialect:
        """Return the API dialect the settings name."""
        return self.settings.dialect

    @cached_property
    def connection(self) -> Connection:
        """Return the dialect's client and part opener (connected on first use: discovery and
        sync only).
        """
        dialect = self.dialect
        url = self.config.get("api_url") or dialect.default_api_url
        options = ConnectOptions(
            user_agent=f"{self.name}/{self.plugin_version}",
            download_stall_seconds=self.settings.stall_seconds(),
            clock=self.clock,
        )
        return dialect.connect(self.config, checked_api_url(url, self.logger), options)

    def calls_made(self) -> str | None:
        """Return the dialect's words for the API calls this run made (None: it did not get
        as far as connecting).
        """
        return self.connection.api.usage_summary() if "connection" in self.__dict__ else None

    # Streams --------------------------------------------------------------------------------

    @cached_property
    def sync_run(self) -> SyncRun:
        """Return this sync (its engine context, plan and failures), handed to every stream;
        building it validates the settings it reads and fixes the run's last day.
        """
        return SyncRun(self.settings, self.connection, self.clock, self.state, self.logger)

    @override
    def discover_streams(self) -> list[ExportStream]:
        """Return one stream per entity type, from the input catalog or from the API."""
        sync = self.sync_run
        discovery = Discovery(
            self.dialect,
            self.connection.api,
            self.config.get("replication_keys") or {},
            self.input_catalog,
            self.catalog_api_names,
            self.logger,
        )
        column_names = self.dialect.column_names
        streams = [
            ExportStream(self, spec, sync=sync, column_names=column_names)
            for spec in discovery.stream_specs()
        ]
        streams.sort(key=sync_order_key)
        sync.take_streams(streams)
        return streams

    def selected_streams(self) -> list[ExportStream]:
        """Return the streams this sync exports, in the SDK's sync order."""
        _ = self.streams  # discovered (and handed to the run) on first use
        return self.sync_run.selected_streams()

    @override
    def run_discovery(self) -> str:
        """Write the catalog, then end with one line: the streams found and the calls made
        (failed or not: a failed discovery spent calls too).
        """
        started = self.clock.monotonic()
        found = "discovery failed"
        try:
            text = super().run_discovery()
            found = plural(len(self.streams), "stream")
            return text
        finally:
            calls = self.calls_made()
            self.logger.info(
                "Discovery summary: %s in %.1fs%s",
                found,
                self.clock.monotonic() - started,
                f"; {calls}" if calls else "",
            )

    # Runs -----------------------------------------------------------------------------------

    def run_sync(self) -> None:
        """Sync the selected streams, the ones behind first: say the plan first (or that
        nothing is selected).
        """
        _ = self.streams
        self.set_sync_order(self.sync_run.behind_first())
        if self.input_catalog is not None and not self.selected_streams():
            self.logger.warning("%s", nothing_selected_line(len(self.input_catalog.streams)))
        else:
            self.logger.info("%s", self.sync_run.plan())
            self.logger.info("%s", RESUME_LINE)
        self.sync_all()

    def log_run_summary(self) -> None:
        """End a sync with one line: streams, records, jobs, bytes, failures, time, calls."""
        if "sync_run" not in self.__dict__:
            return  # stopped before the sync began: its one error line says why
        self.logger.info("%s", self.sync_run.summary())

    @override
    def terminate(self, signum: int, frame: FrameType | None) -> None:
        """On SIGTERM/SIGINT: stop at once, emit STATE with the ledger, exit non-zero.

        Replaces the SDK's handler (singer-sdk 0.54.x), which exits 0. The export jobs are
        kept, not cancelled: the ledger in the emitted state lets the next run resume them.
        """
        self.clock.stop()
        background.stop()
        self.state_writer.write_state(self.state)
        self.logger.error(
            "Stopped by %s: state emitted with any export job in flight; run the tap again "
            "and it resumes that job instead of creating a new one.",
            signal.Signals(signum).name,
        )
        sys.exit(128 + signum)

    # Command line ---------------------------------------------------------------------------

    @override
    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: t.Any = None,
        state: t.IO[str] | None = None,
        catalog: t.IO[str] | None = None,
    ) -> None:
        """Run a sync, or the test --test asked for; our errors end it with one line and exit
        code 1, and so does a stream that failed while the others synced (one line per failed
        stream). A sync ends with its summary line, whatever stopped it.

        Replaces the SDK's invoke (singer-sdk 0.54.x) to read the --state and --catalog files
        first (a truncated file is one line naming it, not a JSON traceback), and to run
        --test once the catalog is known (the SDK runs it before reading --catalog).
        """
        if about:
            cls.print_about(about_format)
            sys.exit(0)
        tap: TapDemandbase | None = None
        test = _test_asked()

        def closing() -> None:
            if tap is not None and test is None:
                tap.log_run_summary()

        with one_line_errors(cls, closing):
            state_json = (
                checked_state(state.read(), _file_name(state, "state"), cls.logger)
                if state is not None
                else None
            )
            catalog_json = _checked_json_file(catalog, "catalog") if catalog is not None else None
            cls.print_version(print_fn=cls.logger.info)
            checked_test_mode(test)
            tap = cls(
                config=config.config if config is not None else {},
                state=state_json,
                catalog=catalog_json,
                parse_env_config=bool(config is not None and config.parse_env),
                validate_config=True,
                # the connection test without a catalog discovers nothing (no API call)
                setup_mapper=test != CliTestOptionValue.All.value or catalog_json is not None,
            )
            if test is None:
                tap.run_sync()
            else:
                run_test(tap, test)

    @override
    @classmethod
    def cb_config(cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]) -> t.Any:
        """Read the --config files; one that is missing or not a JSON object is one line naming
        it (the SDK's reader raises a traceback).
        """
        with one_line_errors(cls):
            for path in value:
                if path != "ENV":
                    config_file_settings(path)
            return super().cb_config(ctx, param, value)

    @override
    @classmethod
    def cb_discover(cls, ctx: click.Context, param: click.Option, value: bool) -> None:
        """Run discovery; our errors end it with one line and exit code 1."""
        with one_line_errors(cls):
            super().cb_discover(ctx, param, value)

    @override
    @classmethod
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """Note which --test was asked for: ``invoke`` runs it, once the catalog is read.

        Overrides the SDK's callback (singer-sdk 0.54.x), which runs before --catalog is read
        and syncs every stream even for a connection test.
        """
        if value != CliTestOptionValue.Disabled.value:
            ctx.meta[TEST_META_KEY] = value

    @override
    @classmethod
    def get_singer_command(cls) -> click.Command:
        """Return the SDK's command, with --test's help saying what each value does, and the
        process configured for the tap (``process.py``).
        """
        configure_process()
        command = super().get_singer_command()
        for param in command.params:
            if param.name == "test" and isinstance(param, click.Option):
                param.help = TEST_HELP
        return command


#: Where cb_test leaves the --test value for invoke.
TEST_META_KEY = "tap_demandbase.test"


def _test_asked() -> str | None:
    """Return the --test value of this command line (None: no test)."""
    ctx = click.get_current_context(silent=True)
    value = ctx.meta.get(TEST_META_KEY) if ctx is not None else None
    return value if isinstance(value, str) else None


def _file_name(handle: t.IO[str], what: str) -> str:
    """Return the path of a --state or --catalog file, as error lines name it."""
    return str(getattr(handle, "name", what))


def _checked_json_file(handle: t.IO[str], what: str) -> dict[str, t.Any]:
    """Return the JSON object of the --state or --catalog file (numbers read as the SDK reads
    them), once it is known to be one (else a ConfigError naming the file).
    """
    text = handle.read()
    json_object_file(text, what, _file_name(handle, what))
    return load_json(text)


if __name__ == "__main__":
    TapDemandbase.cli()
