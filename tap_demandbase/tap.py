"""tap-demandbase: settings, discovery and the command line.

Streams come from ``GET /export/v1/entities`` when discovering, and from the input catalog when
one is given, so a scheduled sync spends no API call on discovery.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import io
import signal
import sys
import typing as t
from functools import cached_property

import click
import pendulum
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.configuration._dict_config import parse_environment_config
from singer_sdk.helpers._classproperty import classproperty
from singer_sdk.plugin_base import JSONSchemaValidator
from singer_sdk.tap_base import CliTestOptionValue

from tap_demandbase.client import DataExportClient
from tap_demandbase.config import (
    DEFAULT_API_URL,
    checked_api_url,
    json_object_file,
    number_from_text,
    numeric_settings,
    read_numbers_given_as_text,
    setting_errors_line,
    unknown_setting_warnings,
)
from tap_demandbase.errors import ConfigError, DemandbaseError
from tap_demandbase.jobs import AttemptPolicy, PollPolicy
from tap_demandbase.progress import PROGRESS_INTERVAL_SECONDS
from tap_demandbase.scheduler import JobScheduler
from tap_demandbase.schema import date_fields, entity_schema
from tap_demandbase.streams import ExportSettings, ExportStream
from tap_demandbase.transport import Transport
from tap_demandbase.writer import FastSingerWriter

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

    from singer_sdk.singerlib import Catalog

    from tap_demandbase.api import ExportApi

DEFAULT_REPLICATION_KEY = "last_modified_date"
DEFAULT_REPLICATION_KEYS = {"activities": "activity_date"}
#: What api_url must look like (checked by the settings schema): an http(s) URL with a host.
API_URL_PATTERN = r"^https?://[^\s/?#]+"


@contextlib.contextmanager
def one_line_errors(tap_class: type[Tap]) -> Iterator[None]:
    """Report a DemandbaseError as one log line and exit 1, instead of a traceback."""
    try:
        yield
    except DemandbaseError as exc:
        tap_class.logger.error("%s", exc)
        sys.exit(1)


def parse_setting_datetime(name: str, value: str) -> datetime.datetime:
    """Parse a date-time setting, or fail naming the setting and the expected form."""
    try:
        parsed = pendulum.parse(value)
    except (ValueError, TypeError) as exc:
        msg = (
            f"Setting {name}='{value}' is not an ISO 8601 date-time; use e.g. 2024-01-01T00:00:00Z."
        )
        raise ConfigError(msg) from exc
    if not isinstance(parsed, datetime.datetime):
        if isinstance(parsed, datetime.date):
            return pendulum.datetime(parsed.year, parsed.month, parsed.day)
        msg = f"Setting {name}='{value}' is not a date-time; use e.g. 2024-01-01T00:00:00Z."
        raise ConfigError(msg)
    return parsed


class TapDemandbase(Tap):
    """Singer tap for the Demandbase Data Export API."""

    name = "tap-demandbase"
    message_writer_class = FastSingerWriter

    #: Streams that failed in this process's sync ("stream: error"): the others still synced,
    #: and ``invoke`` ends the run non-zero with one line each. Class-level because the SDK's
    #: ``invoke`` owns the tap instance.
    failed_streams: t.ClassVar[list[str]] = []

    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_url",
            th.StringType(pattern=API_URL_PATTERN),
            default=DEFAULT_API_URL,
            examples=[DEFAULT_API_URL],
            title="API URL",
            description="Base URL of the Data Export API (https://; plain http only on loopback).",
        ),
        th.Property(
            "access_token",
            th.StringType,
            required=True,
            secret=True,
            title="Access token",
            description=(
                "Bearer token of a Demandbase user with the Data Export permission. Secret: "
                "never logged, never sent to any host but api_url's."
            ),
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            required=True,
            title="Start date",
            description="Where the first run of each stream starts (ISO 8601 date-time).",
        ),
        th.Property(
            "end_date",
            th.DateTimeType,
            title="End date",
            description="Last date to export (inclusive, UTC day); default: now.",
        ),
        th.Property(
            "account_list_id",
            th.StringType,
            title="Account list ID",
            description="Export only records of this account list (filters.account_list_id).",
        ),
        th.Property(
            "replication_keys",
            th.ObjectType(additional_properties=th.StringType),
            title="Replication keys",
            description=(
                "Stream name → date field to bookmark and filter on: any date or date-time field "
                "of the stream (discovery lists them as valid-replication-keys). Defaults: "
                "activity_date for activities, last_modified_date for the others. The setting "
                "wins over the replication key of a catalog discovered before it was set."
            ),
        ),
        th.Property(
            "poll_interval_seconds",
            th.NumberType(exclusive_minimum=0),
            default=PollPolicy.first_interval,
            title="First poll interval",
            description="Wait before the first job status call; doubles after each call.",
        ),
        th.Property(
            "max_poll_interval_seconds",
            th.NumberType(exclusive_minimum=0),
            default=PollPolicy.max_interval,
            title="Longest poll interval",
            description=(
                "Cap of the exponential wait between two job status calls (a one-hour job "
                "costs 12 status calls)."
            ),
        ),
        th.Property(
            "max_concurrent_jobs",
            th.IntegerType(minimum=1),
            default=1,
            title="Export jobs in flight",
            description=(
                "How many export jobs may run on Demandbase at once: above 1, the next streams' "
                "jobs are created and polled while earlier streams download. Output stays one "
                "stream at a time. Production tenants run one job at a time."
            ),
        ),
        th.Property(
            "window_days",
            th.IntegerType(minimum=1),
            title="Window (days)",
            description=(
                "Split the range from the bookmark to end_date into windows of this many UTC "
                "days, one export job each, oldest first; the bookmark and STATE advance after "
                "each window. Default: one job for the whole range."
            ),
        ),
        th.Property(
            "max_job_attempts",
            th.IntegerType(minimum=1),
            default=AttemptPolicy.max_attempts,
            title="Job attempts",
            description=(
                "How many export jobs to try for one window when they end failed; then the "
                "stream fails with the job's error_message."
            ),
        ),
        th.Property(
            "job_retry_cooldown_seconds",
            th.NumberType(minimum=0),
            default=AttemptPolicy.cooldown,
            title="Retry cooldown",
            description="Pause before a new job replaces one that failed.",
        ),
        th.Property(
            "job_timeout_seconds",
            th.NumberType(exclusive_minimum=0),
            default=PollPolicy.timeout,
            title="Job timeout",
            description=(
                "An export job not done after this long is cancelled (DELETE) and the stream fails."
            ),
        ),
        th.Property(
            "progress_interval_seconds",
            th.NumberType(exclusive_minimum=0),
            default=PROGRESS_INTERVAL_SECONDS,
            title="Progress interval",
            description=(
                "While a stream syncs, one INFO line this often: records emitted, records/s, "
                "part i of n, bytes downloaded of the job's total."
            ),
        ),
        th.Property(
            "download_stall_seconds",
            th.NumberType(exclusive_minimum=0),
            default=ExportSettings.download_stall_seconds,
            title="Download stall timeout",
            description=(
                "A result download that brings less than 1 KiB in this many seconds (or nothing "
                "at all) is a broken transfer: logged and resumed with Range where it stopped."
            ),
        ),
    ).to_dict()

    # Settings -------------------------------------------------------------------------------

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Check the settings against the schema, whatever the command (discovery included).

        Overrides the SDK's check (singer-sdk 0.54.x), which discovery skips (a missing
        access_token then surfaced as a KeyError traceback) and which logs each violation on
        its own line. Here every violation is one sentence naming the setting, all in one
        ConfigError line; the validator also fills in the schema's defaults.
        """
        schema = self.config_jsonschema
        self.append_builtin_config(schema)
        read_numbers_given_as_text(self._config, schema)
        errors = list(JSONSchemaValidator(schema).iter_errors(self._config))
        if errors:
            errors.sort(key=lambda error: [str(part) for part in error.path])
            raise ConfigError(setting_errors_line(errors, schema, self._env_var_prefix))
        for warning in unknown_setting_warnings(self._config, schema["properties"]):
            self.logger.warning("%s", warning)
        checked_api_url(self.setting("api_url"), self.logger)
        return []

    @classproperty
    def _env_var_config(cls) -> dict[str, t.Any]:
        """Return the settings given as TAP_DEMANDBASE_* environment variables (--config=ENV).

        Overrides the SDK's parser (singer-sdk 0.54.x), which leaves numbers as strings
        ('0.5' is not of type 'number'): numeric settings are read as text, then converted
        here with an error naming the variable.
        """
        schema = copy.deepcopy(cls.config_jsonschema)
        cls.append_builtin_config(schema)
        numeric = numeric_settings(schema)
        for name in numeric:
            schema["properties"][name] = {"type": ["string"]}
        config = parse_environment_config(schema, cls._env_var_prefix)
        for name in numeric.keys() & config.keys():
            env_var = cls._env_var_prefix + name.upper()
            config[name] = number_from_text(
                name, config[name], integer=numeric[name], source=env_var
            )
        return config

    def setting(self, name: str) -> t.Any:
        """Return a setting, or its default from the settings schema (the one place defaults
        are written down).
        """
        value = self.config.get(name)
        if value is None:
            value = self.config_jsonschema["properties"][name].get("default")
        return value

    def setting_datetime(self, name: str) -> datetime.datetime | None:
        """Return a date-time setting, validated."""
        value = self.config.get(name)
        return parse_setting_datetime(name, value) if value else None

    def poll_policy(self) -> PollPolicy:
        """Return the job polling policy from the settings (each checked by the schema)."""
        first = float(self.setting("poll_interval_seconds"))
        cap = float(self.setting("max_poll_interval_seconds"))
        if cap < first:
            msg = (
                f"Setting max_poll_interval_seconds={cap:g} must be at least "
                f"poll_interval_seconds={first:g}."
            )
            raise ConfigError(msg)
        timeout = float(self.setting("job_timeout_seconds"))
        return PollPolicy(first_interval=first, max_interval=cap, timeout=timeout)

    @cached_property
    def api(self) -> ExportApi:
        """Return the API client (created on first use: discovery and sync only)."""
        transport = Transport(
            self.setting("api_url"),
            self.config["access_token"],
            user_agent=f"{self.name}/{self.plugin_version}",
            download_read_timeout=float(self.setting("download_stall_seconds")),
        )
        return DataExportClient(transport)

    def export_settings(self) -> ExportSettings:
        """Return what all streams' export jobs share, validating the settings it reads."""
        start = self.setting_datetime("start_date")
        end = self.setting_datetime("end_date")
        if start and end and end < start:
            msg = f"Setting end_date ({end}) is before start_date ({start}); swap or fix them."
            raise ConfigError(msg)
        return ExportSettings(
            api=self.api,
            poll_policy=self.poll_policy(),
            scheduler=self.scheduler,
            window_days=self.setting("window_days"),
            download_stall_seconds=float(self.setting("download_stall_seconds")),
            attempts=AttemptPolicy(
                max_attempts=self.setting("max_job_attempts"),
                cooldown=float(self.setting("job_retry_cooldown_seconds")),
            ),
            failures=type(self).failed_streams,
            end_date=end,
            account_list_id=self.config.get("account_list_id") or None,
        )

    @cached_property
    def scheduler(self) -> JobScheduler:
        """Return the scheduler that overlaps export jobs across streams."""
        return JobScheduler(self.setting("max_concurrent_jobs"), planner=self._planned_jobs)

    def _planned_jobs(self) -> list[tuple[t.Any, t.Callable[[], t.Any]]]:
        """Return the selected streams' first jobs, in the order the SDK syncs them."""
        return [
            planned
            for stream in self.streams.values()
            if isinstance(stream, ExportStream) and stream.selected
            if (planned := stream.prefetch_first_job()) is not None
        ]

    # Discovery ------------------------------------------------------------------------------

    def discover_streams(self) -> list[ExportStream]:
        """Return one stream per entity type, from the input catalog or from the API."""
        export = self.export_settings()
        schemas = (
            self._schemas_from_catalog(self.input_catalog)
            if self.input_catalog
            else self._schemas_from_api()
        )
        configured = dict(self.config.get("replication_keys") or {})
        unknown = sorted(set(configured) - set(schemas))
        if unknown:
            msg = (
                f"Setting replication_keys names unknown stream(s) {', '.join(unknown)}; "
                f"streams are: {', '.join(sorted(schemas))}."
            )
            raise ConfigError(msg)
        return [
            ExportStream(
                self,
                name=name,
                schema=schema,
                replication_key=self._replication_key(name, schema, configured.get(name)),
                export=export,
                key_from_settings=name in configured,
            )
            for name, schema in schemas.items()
        ]

    def _schemas_from_api(self) -> dict[str, dict[str, t.Any]]:
        return {entity.name: entity_schema(entity) for entity in self.api.list_entities()}

    @staticmethod
    def _schemas_from_catalog(catalog: Catalog) -> dict[str, dict[str, t.Any]]:
        return {entry.tap_stream_id: entry.schema.to_dict() for entry in catalog.streams}

    def _replication_key(
        self, stream: str, schema: dict[str, t.Any], configured: str | None
    ) -> str:
        """Return the stream's replication key: configured, else the catalog's, else default."""
        key = configured or self._catalog_replication_key(stream)
        key = key or DEFAULT_REPLICATION_KEYS.get(stream, DEFAULT_REPLICATION_KEY)
        valid = date_fields(schema)
        if key not in valid:
            source = "replication_keys" if configured else "the default replication key"
            msg = (
                f"Stream '{stream}' cannot use '{key}' as its replication key ({source}): it is "
                f"not a date field of the stream. Date fields: {', '.join(valid) or 'none'}. "
                f"Set replication_keys.{stream} to one of them."
            )
            raise ConfigError(msg)
        return key

    def _catalog_replication_key(self, stream: str) -> str | None:
        if not self.input_catalog:
            return None
        entry = self.input_catalog.get_stream(stream)
        return entry.replication_key if entry else None

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """On SIGTERM/SIGINT: stop at once, emit STATE with the ledger, exit non-zero.

        Overrides the SDK's handler (singer-sdk 0.54.x), which exits 0. The export jobs are
        kept, not cancelled: the ledger in the emitted state lets the next run resume them.
        """
        self.scheduler.stop()
        self.state_writer.write_state(self.state)
        self.logger.error(
            "Stopped by %s: state emitted with any export job in flight; run the tap again "
            "and it resumes that job instead of creating a new one.",
            signal.Signals(signum).name,
        )
        sys.exit(128 + signum)

    # Command line ---------------------------------------------------------------------------

    @classmethod
    def invoke(cls, *args: t.Any, **kwargs: t.Any) -> None:  # type: ignore[override]
        """Run a sync; our errors end it with one line and exit code 1, and so does a stream
        that failed while the others synced (one summary line per failed stream).

        The --state and --catalog files are read here first, so that a truncated file is one
        line naming it instead of a JSON traceback.
        """
        cls.failed_streams.clear()
        with one_line_errors(cls):
            for what in ("state", "catalog"):
                if (handle := kwargs.get(what)) is not None:
                    kwargs[what] = _checked_json_file(handle, what)
            super().invoke(*args, **kwargs)
        cls._exit_if_streams_failed()

    @classmethod
    def _exit_if_streams_failed(cls) -> None:
        """End the run with exit code 1 and one line per failed stream, if any failed."""
        if cls.failed_streams:
            for failure in cls.failed_streams:
                cls.logger.error("%s", failure)
            sys.exit(1)

    @classmethod
    def cb_discover(cls, ctx: click.Context, param: click.Option, value: bool) -> None:
        """Run discovery; our errors end it with one line and exit code 1."""
        with one_line_errors(cls):
            super().cb_discover(ctx, param, value)

    @classmethod
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """Run --test (one record per stream); a stream that failed makes it exit 1.

        Overrides the SDK's callback (singer-sdk 0.54.x), which exits 0 whatever happened.
        """
        if value == CliTestOptionValue.Disabled.value:
            return
        cls.failed_streams.clear()
        with one_line_errors(cls), contextlib.suppress(click.exceptions.Exit):
            super().cb_test(ctx, param, value)
        cls._exit_if_streams_failed()
        if value != CliTestOptionValue.Schema.value:
            cls.logger.info("Connection test passed: every stream delivered a record.")
        ctx.exit()


def _checked_json_file(handle: t.IO[str], what: str) -> t.IO[str]:
    """Return the --state or --catalog file re-opened in memory, once it is known to hold a
    JSON object (else a ConfigError naming the file).
    """
    text = handle.read()
    json_object_file(text, what, getattr(handle, "name", what))
    return io.StringIO(text)


if __name__ == "__main__":
    TapDemandbase.cli()
