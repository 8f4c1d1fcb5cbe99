"""tap-demandbase: settings, discovery and the command line.

Streams come from ``GET /export/v1/entities`` when discovering, and from the input catalog when
one is given, so a scheduled sync spends no API call on discovery.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import ipaddress
import json
import logging
import signal
import sys
import typing as t
from functools import cached_property
from urllib.parse import urlsplit

import pendulum
from singer_sdk import Tap
from singer_sdk import typing as th

from tap_demandbase.client import DataExportClient
from tap_demandbase.errors import ConfigError, DemandbaseError
from tap_demandbase.jobs import AttemptPolicy, PollPolicy
from tap_demandbase.scheduler import JobScheduler
from tap_demandbase.schema import date_fields, entity_schema
from tap_demandbase.streams import ExportSettings, ExportStream
from tap_demandbase.transport import Transport
from tap_demandbase.writer import FastSingerWriter

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

    import click
    from singer_sdk.singerlib import Catalog

    from tap_demandbase.api import ExportApi

DEFAULT_API_URL = "https://api.demandbase.com"
DEFAULT_REPLICATION_KEY = "last_modified_date"
DEFAULT_REPLICATION_KEYS = {"activities": "activity_date"}


def checked_api_url(url: str, logger: logging.Logger) -> str:
    """Return api_url, checked: absolute http(s); plain http warned about unless to loopback."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        msg = f"Setting api_url='{url}' is not an absolute http(s) URL; use e.g. {DEFAULT_API_URL}."
        raise ConfigError(msg)
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        logger.warning(
            "Setting api_url uses plain http to %s: the access token would travel in clear "
            "text. Use https.",
            parts.hostname,
        )
    return url


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _checked_state_file(state: t.IO[str]) -> t.IO[str]:
    """Return the --state file's text as a new stream, or fail naming the file."""
    text = state.read()
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        msg = (
            f"The state file {getattr(state, 'name', '')} is not valid JSON ({exc}); restore "
            "it from the last STATE message the tap emitted, or remove it to start over."
        )
        raise ConfigError(msg) from exc
    if not isinstance(value, dict):
        msg = f"The state file {getattr(state, 'name', '')} does not hold a JSON object."
        raise ConfigError(msg)
    return io.StringIO(text or "{}")


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
            th.StringType,
            default=DEFAULT_API_URL,
            title="API URL",
            description="Base URL of the Data Export API.",
        ),
        th.Property(
            "access_token",
            th.StringType,
            required=True,
            secret=True,
            title="Access token",
            description="Bearer token of a Demandbase user with the Data Export permission.",
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
                "Stream name → date field to bookmark and filter on. Defaults: activity_date "
                "for activities, last_modified_date for the others."
            ),
        ),
        th.Property(
            "poll_interval_seconds",
            th.NumberType,
            default=2,
            title="First poll interval",
            description="Wait before the first job status call; doubles after each call.",
        ),
        th.Property(
            "max_poll_interval_seconds",
            th.NumberType,
            default=900,
            title="Longest poll interval",
            description="Cap of the exponential wait between two job status calls.",
        ),
        th.Property(
            "max_concurrent_jobs",
            th.IntegerType,
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
            th.IntegerType,
            title="Window (days)",
            description=(
                "Split the range from the bookmark to end_date into windows of this many UTC "
                "days, one export job each, oldest first; the bookmark and STATE advance after "
                "each window. Default: one job for the whole range."
            ),
        ),
        th.Property(
            "max_job_attempts",
            th.IntegerType,
            default=3,
            title="Job attempts",
            description="How many export jobs to try for one window when they end failed.",
        ),
        th.Property(
            "job_retry_cooldown_seconds",
            th.NumberType,
            default=60,
            title="Retry cooldown",
            description="Pause before a new job replaces one that failed.",
        ),
        th.Property(
            "job_timeout_seconds",
            th.NumberType,
            default=6 * 3600,
            title="Job timeout",
            description="An export job not done after this long is cancelled and the stream fails.",
        ),
        th.Property(
            "download_stall_seconds",
            th.NumberType,
            default=60,
            title="Download stall timeout",
            description=(
                "A result download that brings less than 1 KiB in this many seconds (or nothing "
                "at all) is a broken transfer: it is resumed where it stopped."
            ),
        ),
    ).to_dict()

    # Settings -------------------------------------------------------------------------------

    def setting_datetime(self, name: str) -> datetime.datetime | None:
        """Return a date-time setting, validated."""
        value = self.config.get(name)
        return parse_setting_datetime(name, value) if value else None

    def poll_policy(self) -> PollPolicy:
        """Return the job polling policy from the settings."""
        first = float(self.config.get("poll_interval_seconds", 2))
        cap = float(self.config.get("max_poll_interval_seconds", 900))
        timeout = float(self.config.get("job_timeout_seconds", 6 * 3600))
        if first <= 0 or cap < first or timeout <= 0:
            msg = (
                "Settings poll_interval_seconds, max_poll_interval_seconds and "
                "job_timeout_seconds must be positive, with max_poll_interval_seconds >= "
                "poll_interval_seconds."
            )
            raise ConfigError(msg)
        return PollPolicy(first_interval=first, max_interval=cap, timeout=timeout)

    @cached_property
    def api(self) -> ExportApi:
        """Return the API client (created on first use: discovery and sync only)."""
        transport = Transport(
            checked_api_url(self.config.get("api_url") or DEFAULT_API_URL, self.logger),
            self._access_token(),
            user_agent=f"{self.name}/{self.plugin_version}",
            download_read_timeout=self._stall_seconds(),
        )
        return DataExportClient(transport)

    def _access_token(self) -> str:
        token = self.config.get("access_token")
        if not token:
            msg = (
                "Setting access_token is missing: set it (or TAP_DEMANDBASE_ACCESS_TOKEN) to the "
                "bearer token of a Demandbase user with the Data Export permission."
            )
            raise ConfigError(msg)
        return str(token)

    def _stall_seconds(self) -> float:
        value = float(self.config.get("download_stall_seconds", 60))
        if value <= 0:
            msg = f"Setting download_stall_seconds={value:g} must be a positive number of seconds."
            raise ConfigError(msg)
        return value

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
            window_days=self._positive_int("window_days"),
            download_stall_seconds=self._stall_seconds(),
            attempts=AttemptPolicy(
                max_attempts=self._positive_int("max_job_attempts") or 3,
                cooldown=self._cooldown_seconds(),
            ),
            failures=type(self).failed_streams,
            end_date=end,
            account_list_id=self.config.get("account_list_id") or None,
        )

    def _cooldown_seconds(self) -> float:
        value = float(self.config.get("job_retry_cooldown_seconds", 60))
        if value < 0:
            msg = f"Setting job_retry_cooldown_seconds={value:g} must be 0 or more seconds."
            raise ConfigError(msg)
        return value

    def _positive_int(self, name: str) -> int | None:
        """Return an optional whole-number setting that must be at least 1."""
        value = self.config.get(name)
        if value is None:
            return None
        if not isinstance(value, int) or value < 1:
            msg = f"Setting {name}={value!r} must be a whole number of at least 1."
            raise ConfigError(msg)
        return value

    @cached_property
    def scheduler(self) -> JobScheduler:
        """Return the scheduler that overlaps export jobs across streams."""
        jobs = self._positive_int("max_concurrent_jobs") or 1
        return JobScheduler(jobs, planner=self._planned_jobs)

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
        """
        cls.failed_streams.clear()
        with one_line_errors(cls):
            if kwargs.get("state") is not None:
                kwargs["state"] = _checked_state_file(kwargs["state"])
            super().invoke(*args, **kwargs)
        if cls.failed_streams:
            for failure in cls.failed_streams:
                cls.logger.error("%s", failure)
            sys.exit(1)

    @classmethod
    def cb_discover(cls, ctx: click.Context, param: click.Option, value: bool) -> None:
        """Run discovery; our errors end it with one line and exit code 1."""
        with one_line_errors(cls):
            super().cb_discover(ctx, param, value)


if __name__ == "__main__":
    TapDemandbase.cli()
