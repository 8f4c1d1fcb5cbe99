"""tap-demandbase: settings, discovery, wiring and the command line.

The ``api_dialect`` setting picks the API module (``dialects/``); the tap connects it, builds
the run's engine context once, and makes one stream per entity type. Streams come from the API
when discovering, and from the input catalog when one is given, so a scheduled sync spends no
API call on discovery.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import logging
import signal
import sys
import typing as t
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePath

import click
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.configuration._dict_config import parse_environment_config
from singer_sdk.helpers._classproperty import classproperty
from singer_sdk.helpers._util import load_json
from singer_sdk.plugin_base import JSONSchemaValidator, _plugin_log_level
from singer_sdk.tap_base import CliTestOptionValue
from typing_extensions import override

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
from tap_demandbase.dialects import DEFAULT_DIALECT, DIALECTS, ConnectOptions, dialect_named
from tap_demandbase.engine import background
from tap_demandbase.engine.budget import DEFAULT_SHARE, DEFERRED_KEY, DailyBudget
from tap_demandbase.engine.clock import SystemClock
from tap_demandbase.engine.deletes import DEFAULT_CHECK_DAYS
from tap_demandbase.engine.export import RunContext
from tap_demandbase.engine.fields import gone_fields, gone_line, new_fields, new_fields_line
from tap_demandbase.engine.freshness import DEFAULT_WARN_HOURS, stale_bookmark_line
from tap_demandbase.engine.jobs import DEFAULT_COOLDOWN_SECONDS, DEFAULT_MAX_ATTEMPTS, AttemptPolicy
from tap_demandbase.engine.scheduler import JobScheduler
from tap_demandbase.errors import ConfigError, DemandbaseError
from tap_demandbase.logs import METRICS_LOG_LEVELS, metrics_logger_level, quiet_sdk_noise
from tap_demandbase.model import EntityInfo, FieldInfo, PollPolicy
from tap_demandbase.process import configure_process
from tap_demandbase.progress import (
    PROGRESS_INTERVAL_SECONDS,
    RESUME_LINE,
    plan_line,
    plural,
    summary_line,
)
from tap_demandbase.schema import date_fields, entity_schema
from tap_demandbase.state_file import checked_state
from tap_demandbase.streams import API_NAME_METADATA, BOOKMARK_VALUE_KEY, ExportStream
from tap_demandbase.timestamps import parse_setting_datetime, utc_date
from tap_demandbase.writer import FastSingerWriter

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType

    from singer_sdk.singerlib import Catalog

    from tap_demandbase.dialects import Dialect
    from tap_demandbase.dialects.base import Connection
    from tap_demandbase.engine.scheduler import JobFactory, JobKey
    from tap_demandbase.model import ExportApi, JobSpec


class StreamsFailedError(DemandbaseError):
    """Some streams failed while the others synced (each failure was logged as it happened)."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__("; ".join(failures))
        self.failures = list(failures)


#: What api_url must look like (checked by the settings schema): an http(s) URL with a host.
API_URL_PATTERN = r"^https?://[^\s/?#]+"
#: Default of download_stall_seconds (the engine's results.py takes it as given).
DEFAULT_STALL_SECONDS = 60.0


class SyncRun:
    """The tap's side of one sync, driven by its streams (``Tap.sync_all`` and ``Stream.sync``
    are final in the SDK).

    When the first stream starts, every job of the selected streams is planned; the job slots
    start each as soon as one is free. A stream that fails is recorded while the others go
    on; once every stream has synced, StreamsFailedError names every failure, so that
    ``sync_all()`` fails for a program as the exit code does for a pipeline.
    """

    def __init__(self, tap: TapDemandbase) -> None:
        self.tap = tap
        self.failures: list[str] = []
        #: Every stream that failed in this run (``failures`` is emptied once raised).
        self.failed = 0
        #: The error that stopped the whole run, if one did.
        self.stopped_by: DemandbaseError | None = None
        self._planned = False

    def stream_starting(self, stream: str) -> None:
        """Plan the run's jobs, once, when its first stream starts: the job slots start them
        as they free up.
        """
        if not self._planned:
            self._planned = True
            self.tap.plan_run()
            self.tap.run_context.scheduler.plan(self.tap.planned_jobs())

    def stream_failed(self, stream: str, error: DemandbaseError) -> None:
        """Record a stream that failed while the others go on."""
        self.failures.append(f"Stream '{stream}' failed: {error}")
        self.failed += 1

    def sync_over(self, stream: str) -> None:
        """After the tap's last stream: raise the failures, if any."""
        if stream == list(self.tap.streams)[-1]:
            self.raise_failures()

    def run_stopping(self, error: DemandbaseError) -> None:
        """A stream's error stops the whole run (quota, credentials): count it."""
        self.stopped_by = error

    def raise_failures(self) -> None:
        """Raise StreamsFailedError naming the streams that failed, if any (and start over)."""
        if self.failures:
            failures, self.failures, self._planned = self.failures, [], False
            raise StreamsFailedError(failures)


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


class TapDemandbase(Tap):
    """Singer tap for the Demandbase Data Export API."""

    name = "tap-demandbase"
    message_writer_class = FastSingerWriter

    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_dialect",
            th.StringType(allowed_values=list(DIALECTS)),
            default=DEFAULT_DIALECT,
            title="API dialect",
            description=(
                "Which Demandbase API to speak: export_v1 (the published Data Export contract) "
                "or uapi (Demandbase's production API: client credentials, daily call budgets; "
                "README, Production tenants)."
            ),
        ),
        th.Property(
            "api_url",
            th.StringType(pattern=API_URL_PATTERN),
            examples=["https://api.demandbase.com"],
            title="API URL",
            description=(
                "Base URL of the API; default per dialect (export_v1: https://api.demandbase.com, "
                "uapi: https://uapi.demandbase.com)."
            ),
        ),
        *(setting for dialect in DIALECTS.values() for setting in dialect.settings),
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
            title="First poll interval",
            description=(
                "Wait before the first job status call; doubles after each call. Default per "
                "dialect: 2 s for export_v1, 30 s for uapi."
            ),
        ),
        th.Property(
            "max_poll_interval_seconds",
            th.NumberType(exclusive_minimum=0),
            title="Longest poll interval",
            description=(
                "Cap of the exponential wait between two job status calls. Default per dialect: "
                "900 s for export_v1 (a one-hour job costs 12 status calls), 600 s for uapi (300 "
                "status calls a day per tenant)."
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
                "stream at a time. At most 1 with api_dialect=uapi (one job at a time per tenant)."
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
            default=DEFAULT_MAX_ATTEMPTS,
            title="Job attempts",
            description=(
                "How many export jobs to try for one window when they end failed; then the "
                "stream fails with the job's error_message."
            ),
        ),
        th.Property(
            "job_retry_cooldown_seconds",
            th.NumberType(minimum=0),
            default=DEFAULT_COOLDOWN_SECONDS,
            title="Retry cooldown",
            description="Pause before a new job replaces one that failed.",
        ),
        th.Property(
            "job_timeout_seconds",
            th.NumberType(exclusive_minimum=0),
            title="Job timeout",
            description=(
                "An export job not done after this long is cancelled (where the API can cancel; "
                "else kept for the next run) and the stream fails. Default per dialect: 21600 s "
                "(6 hours)."
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
            "metrics_log_level",
            th.StringType(allowed_values=list(METRICS_LOG_LEVELS)),
            title="Metrics log level",
            description=(
                "Level of the SDK's METRIC log lines (logger singer_sdk.metrics, lines at INFO): "
                "INFO shows them, WARNING or ERROR hides them. Default: shown only when the tap "
                "logs at DEBUG (TAP_DEMANDBASE_LOGLEVEL=DEBUG)."
            ),
        ),
        th.Property(
            "freshness_warn_hours",
            th.NumberType(minimum=0),
            default=DEFAULT_WARN_HOURS,
            title="Freshness warning (hours)",
            description=(
                "A stream whose bookmark has not moved for longer than this (across runs: the "
                "state keeps when it last moved) gets one WARNING per run naming it, how long "
                "it has stood still and the day of its newest value; --test reports it too. "
                "Fractions allowed; 0 turns it off."
            ),
        ),
        th.Property(
            "download_stall_seconds",
            th.NumberType(exclusive_minimum=0),
            default=DEFAULT_STALL_SECONDS,
            title="Download stall timeout",
            description=(
                "A result download that brings less than 1 KiB in this many seconds (or nothing "
                "at all) is a broken transfer: logged and resumed with Range where it stopped."
            ),
        ),
        th.Property(
            "budget_share",
            th.NumberType(exclusive_minimum=0, maximum=1),
            default=DEFAULT_SHARE,
            title="Share of the daily limits",
            description=(
                "The share of each of the tenant's daily call limits this tap may use, across "
                "runs (the state keeps each UTC day's calls). A job that would go past it is not "
                "created: its stream is deferred to the next run, with one warning, and the run "
                "still succeeds. The rest stays free for people in the UI. Only for APIs with "
                "daily limits (uapi)."
            ),
        ),
        th.Property(
            "daily_limits",
            th.ObjectType(
                *(
                    th.Property(e, th.IntegerType(minimum=0))
                    for e in ("create", "status", "list", "fields")
                ),
                additional_properties=False,
            ),
            title="Daily limits",
            description=(
                "The tenant's daily call limits per endpoint, for a tenant whose limits differ "
                "from the documented ones (uapi: create 60, status 300, list 1200, fields 60)."
            ),
        ),
        th.Property(
            "min_interval_hours",
            th.CustomType(
                {
                    "oneOf": [
                        {"type": "number", "minimum": 0},
                        {
                            "type": "object",
                            "additionalProperties": {"type": "number", "minimum": 0},
                        },
                    ]
                }
            ),
            title="Minimum hours between a stream's jobs",
            description=(
                "A stream whose last finished job was created less than this many hours ago is "
                "skipped by the run, with one INFO line: a number for every stream, or an "
                'object of stream name to hours, e.g. {"accounts": 24}, so that one hourly '
                "schedule refreshes activities every hour and accounts once a day."
            ),
        ),
        th.Property(
            "lookback_days",
            th.CustomType(
                {
                    "oneOf": [
                        {"type": "integer", "minimum": 0},
                        {
                            "type": "object",
                            "additionalProperties": {"type": "integer", "minimum": 0},
                        },
                    ]
                }
            ),
            title="Lookback days",
            description=(
                "Each incremental run also exports this many days before the day its windows "
                "start (one number, or an object of stream name to days), so that rows restated "
                "after the fact (re-scored activities, late matches) reach the target again as "
                "upserts. The bookmark never moves back; the run's summary says how many rows "
                "the lookback re-read."
            ),
        ),
        th.Property(
            "detect_deletes",
            th.BooleanType(),
            default=False,
            title="Detect deletes",
            description=(
                "Now and then (delete_check_days), export every row of each stream with a "
                "primary key again, as a new table version, then send ACTIVATE_VERSION: SQL "
                "targets mark the rows of older versions deleted (target-postgres: "
                "_sdc_deleted_at with add_record_metadata; deleted with hard_delete), so rows "
                "deleted or merged away at Demandbase leave the warehouse. RECORD messages "
                "only (not with batch_config)."
            ),
        ),
        th.Property(
            "delete_check_days",
            th.NumberType(minimum=0),
            default=DEFAULT_CHECK_DAYS,
            title="Days between delete checks",
            description=(
                "How often detect_deletes exports a stream's rows again (0: on every run). A "
                "check costs what a first sync of the stream costs: one job per window."
            ),
        ),
        th.Property(
            "backfill_start_date",
            th.DateTimeType(),
            title="Backfill start date",
            description=(
                "Export the days from this date up to each stream's first synced day (or "
                "backfill_end_date) in addition to the incremental run, oldest first, without "
                "resetting the state: the bookmark never moves back, and the backfill's progress "
                "is kept in the state apart from it. Another date starts a new backfill."
            ),
        ),
        th.Property(
            "backfill_end_date",
            th.DateTimeType(),
            title="Backfill end date",
            description="The last day of the backfill. Default: each stream's first synced day.",
        ),
        th.Property(
            "backfill_jobs_per_run",
            th.IntegerType(minimum=0),
            title="Backfill jobs per run",
            description=(
                "The most backfill jobs a run creates, all streams together. Default: what the "
                "daily budget leaves after the run's incremental jobs (no limit for an API "
                "without daily limits)."
            ),
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self.clock = SystemClock()
        self._run_planned = False
        #: Stream → property → the field's API name, from the input catalog's metadata (the
        #: SDK's catalog model drops metadata keys it does not know).
        self.catalog_api_names = api_names_in_catalog(kwargs.get("catalog"))
        quiet_sdk_noise(self.logger)
        super().__init__(*args, **kwargs)
        self.metrics_logger.setLevel(
            metrics_logger_level(
                self.config.get("metrics_log_level"), _plugin_log_level(plugin_name=self.name)
            )
        )

    # Settings -------------------------------------------------------------------------------

    @override
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
        return []

    @classproperty
    @override
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

    @cached_property
    def dialect(self) -> Dialect:
        """Return the API dialect the settings name."""
        return dialect_named(self.config.get("api_dialect"))

    def setting_datetime(self, name: str) -> datetime.datetime | None:
        """Return a date-time setting, validated."""
        value = self.config.get(name)
        return parse_setting_datetime(name, value) if value else None

    def poll_policy(self) -> PollPolicy:
        """Return the job polling policy: the settings, else the dialect's defaults."""
        default = self.dialect.poll_policy
        first = float(self.config.get("poll_interval_seconds", default.first_interval))
        cap = float(self.config.get("max_poll_interval_seconds", default.max_interval))
        timeout = float(self.config.get("job_timeout_seconds", default.timeout))
        if cap < first:
            msg = (
                f"Setting max_poll_interval_seconds={cap:g} must be at least "
                f"poll_interval_seconds={first:g}."
            )
            raise ConfigError(msg)
        return PollPolicy(first_interval=first, max_interval=cap, timeout=timeout)

    @cached_property
    def connection(self) -> Connection:
        """Return the dialect's client and part opener (connected on first use: discovery and
        sync only).
        """
        dialect = self.dialect
        url = self.config.get("api_url") or dialect.default_api_url
        options = ConnectOptions(
            user_agent=f"{self.name}/{self.plugin_version}",
            download_stall_seconds=self._stall_seconds(),
            clock=self.clock,
        )
        return dialect.connect(self.config, checked_api_url(url, self.logger), options)

    def _stall_seconds(self) -> float:
        return float(self.setting("download_stall_seconds"))

    @cached_property
    def run_context(self) -> RunContext:
        """Return what all streams' exports share in this run, validating the settings it
        reads. The run's last day is fixed here, once.
        """
        start = self.setting_datetime("start_date")
        end = self.setting_datetime("end_date")
        if self.config.get("detect_deletes") and self.config.get("batch_config"):
            msg = (
                "Setting detect_deletes needs RECORD messages (a batch file carries no table "
                "version, and its rows would be marked deleted): remove batch_config or "
                "detect_deletes."
            )
            raise ConfigError(msg)
        if start and end and end < start:
            msg = f"Setting end_date ({end}) is before start_date ({start}); swap or fix them."
            raise ConfigError(msg)
        if start and start > self.clock.now():
            self.logger.warning(
                "Setting start_date (%s) is in the future: nothing is exported until that day. "
                "This is almost always a mistake (the year?): set it to the first day to export.",
                start.isoformat(),
            )
        connection = self.connection
        return RunContext(
            api=connection.api,
            opener=connection.opener,
            clock=self.clock,
            scheduler=JobScheduler(self._max_concurrent_jobs()),
            end_day=utc_date(end or self.clock.now()),
            poll_policy=self.poll_policy(),
            attempts=AttemptPolicy(
                max_attempts=int(self.setting("max_job_attempts")),
                cooldown=float(self.setting("job_retry_cooldown_seconds")),
            ),
            window_days=self.setting("window_days"),
            stall_seconds=self._stall_seconds(),
            budget=self._daily_budget(connection.api),
        )

    def _daily_budget(self, api: ExportApi) -> DailyBudget | None:
        """Return the run's daily budget: the dialect's limits, or the settings' (None: the
        API states no daily limits).
        """
        limits = {**self.dialect.daily_limits, **(self.config.get("daily_limits") or {})}
        if not limits:
            return None
        share = float(self.setting("budget_share"))
        return DailyBudget(limits, share, self.clock, api.calls_by_stream, self.dialect.call_words)

    def _max_concurrent_jobs(self) -> int:
        """Return max_concurrent_jobs, refused above what the dialect's API allows."""
        jobs = int(self.setting("max_concurrent_jobs"))
        limit = self.dialect.max_concurrent_jobs
        if limit is not None and jobs > limit:
            msg = (
                f"Setting max_concurrent_jobs={jobs} is more than api_dialect="
                f"{self.dialect.name} allows ({limit}); set it to {limit} or remove it."
            )
            raise ConfigError(msg)
        return jobs

    # Sync -----------------------------------------------------------------------------------

    @cached_property
    def sync_run(self) -> SyncRun:
        """Return the tap's side of this sync (planning ahead, failures)."""
        return SyncRun(self)

    def planned_jobs(self) -> list[tuple[JobKey, JobFactory]]:
        """Return the selected streams' jobs, in the order the SDK syncs the streams."""
        return [job for stream in self.selected_streams() for job in stream.jobs_to_schedule()]

    def stream_states(self) -> list[tuple[str, dict[str, t.Any]]]:
        """Return every stream's state the input state holds (selected or not)."""
        bookmarks = self.state.get("bookmarks", {})
        return [(name, state) for name, state in bookmarks.items() if isinstance(state, dict)]

    def _behind_first(self) -> None:
        """Sync first the streams the budget deferred in an earlier run: they are behind, the
        others merely due (the SDK syncs ``streams`` in their order).
        """
        bookmarks = self.state.get("bookmarks", {})

        def behind(name: str) -> bool:
            state = bookmarks.get(name)
            return isinstance(state, dict) and state.get(DEFERRED_KEY) is not None

        streams = self.streams
        order = sorted(streams, key=lambda name: not behind(name))
        self._streams = {name: streams[name] for name in order}  # SDK private: sync order

    def selected_streams(self) -> list[ExportStream]:
        """Return the streams this sync exports, in the SDK's sync order."""
        return [s for s in self.streams.values() if isinstance(s, ExportStream) and s.selected]

    # Discovery ------------------------------------------------------------------------------

    @override
    def discover_streams(self) -> list[ExportStream]:
        """Return one stream per entity type, from the input catalog or from the API."""
        run = self.run_context
        entities = (
            self._entities_from_catalog(self.input_catalog)
            if self.input_catalog is not None
            else self._entities_from_api()
        )
        configured = dict(self.config.get("replication_keys") or {})
        unknown = sorted(set(configured) - set(entities))
        if unknown:
            msg = (
                f"Setting replication_keys names unknown stream(s) {', '.join(unknown)}; "
                f"streams are: {', '.join(sorted(entities))}."
            )
            raise ConfigError(msg)
        streams = []
        for name, entity in entities.items():
            rules = self.dialect.stream_rules(name)
            key = self._replication_key(name, entity, configured.get(name))
            streams.append(
                ExportStream(
                    self,
                    name=name,
                    schema=entity.schema,
                    replication_key=key,
                    run=run,
                    hooks=self.sync_run,
                    key_from_settings=name in configured,
                    primary_key=_primary_key(rules.primary_key, entity.schema),
                    max_window_days=rules.max_window_days,
                    api_names=entity.api_names,
                    column_names=self.dialect.column_names,
                )
            )
        return streams

    def _entities_from_api(self) -> dict[str, DiscoveredEntity]:
        types = self.dialect.field_types
        return {
            e.name: DiscoveredEntity(
                entity_schema(e, types), {f.name: f.api_name for f in e.fields if f.api_name}
            )
            for e in self.connection.api.list_entities()
        }

    def _entities_from_catalog(self, catalog: Catalog) -> dict[str, DiscoveredEntity]:
        """Return the catalog's streams, and give the dialect the API names of their fields
        (kept in the catalog by discovery), so that the sync needs no discovery call.
        """
        entities = {
            entry.tap_stream_id: DiscoveredEntity(
                entry.schema.to_dict(), self.catalog_api_names.get(entry.tap_stream_id, {})
            )
            for entry in catalog.streams
        }
        known = self.dialect.stream_names
        if known is not None and (foreign := sorted(set(entities) - known)):
            which = (
                f"Stream '{foreign[0]}' of the catalog is not a stream"
                if len(foreign) == 1
                else f"Streams {', '.join(foreign)} of the catalog are not streams"
            )
            msg = (
                f"{which} of this tap (api_dialect={self.dialect.name}): run --discover to "
                "write this tap's catalog."
            )
            raise ConfigError(msg)
        self.connection.api.remember_entities(
            [
                EntityInfo(
                    name,
                    tuple(
                        FieldInfo(prop, "", api_name=entity.api_names.get(prop, ""))
                        for prop in entity.schema.get("properties", {})
                    ),
                )
                for name, entity in entities.items()
                if entity.api_names
            ]
        )
        return entities

    def _replication_key(
        self, stream: str, entity: DiscoveredEntity, configured: str | None
    ) -> str | None:
        """Return the stream's replication key: configured (its property or API name), else
        the catalog's, else the dialect's default; None (FULL_TABLE, said in one line) when
        the dialect finds no date field to filter on.
        """
        valid = date_fields(entity.schema)
        if configured:
            by_api_name = {api: prop for prop, api in entity.api_names.items()}
            configured = by_api_name.get(configured, configured)
        required = self.dialect.stream_rules(stream).required_replication_key
        key = configured or self._catalog_replication_key(stream)
        if required and key and key != required:
            source = "replication_keys" if configured else "the catalog"
            msg = (
                f"Stream '{stream}' cannot use '{key}' as its replication key ({source}): "
                f"api_dialect={self.dialect.name} filters its jobs on '{required}' only. Remove "
                f"replication_keys.{stream} (or set it to {required})."
            )
            raise ConfigError(msg)
        key = key or self.dialect.default_replication_key(stream, valid)
        if key is None:
            self.logger.info(
                "Stream '%s' has no last-modified date field (%s): it is synced FULL_TABLE, "
                "each run exporting all its rows. Set replication_keys.%s to a date field to "
                "sync it incrementally.",
                stream,
                f"its date fields: {', '.join(valid)}" if valid else "nor any date field",
                stream,
            )
            return None
        if key not in valid and not configured and self.input_catalog is not None:
            raise ConfigError(_foreign_stream_message(stream, key, valid))
        if key not in valid:
            source = "replication_keys" if configured else "the default replication key"
            msg = (
                f"Stream '{stream}' cannot use '{key}' as its replication key ({source}): it is "
                f"not a date field of the stream. Date fields: {', '.join(valid) or 'none'}. "
                f"Set replication_keys.{stream} to one of them."
            )
            raise ConfigError(msg)
        return key

    def calls_made(self) -> str | None:
        """Return the dialect's words for the API calls this run made (None: it did not get
        as far as connecting).
        """
        return self.connection.api.usage_summary() if "connection" in self.__dict__ else None

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

    def _catalog_replication_key(self, stream: str) -> str | None:
        if self.input_catalog is None:
            return None
        entry = self.input_catalog.get_stream(stream)
        return entry.replication_key if entry else None

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """On SIGTERM/SIGINT: stop at once, emit STATE with the ledger, exit non-zero.

        Overrides the SDK's handler (singer-sdk 0.54.x), which exits 0. The export jobs are
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

    # Runs ---------------------------------------------------------------------------------

    def run_sync(self) -> None:
        """Sync the selected streams: say the plan first (or that nothing is selected)."""
        self._behind_first()
        if self.input_catalog is not None and not self.selected_streams():
            self.logger.warning("%s", nothing_selected_line(len(self.input_catalog.streams)))
        else:
            self.logger.info("%s", self.plan())
            self.logger.info("%s", RESUME_LINE)
        self.sync_all()

    def plan_run(self) -> None:
        """Plan the run once: today's calls from the states, then the streams' due jobs, then
        what is left for backfills (backfill_jobs_per_run, else the budget's creates left).
        """
        if self._run_planned:
            return
        self._run_planned = True
        run = self.run_context
        if run.budget is not None:
            run.budget.load(self.stream_states())
        due = 0
        for stream in self.selected_streams():
            with contextlib.suppress(DemandbaseError):  # the stream reports it in its turn
                due += len(stream.due_jobs())
        jobs = self.config.get("backfill_jobs_per_run")
        if jobs is None and run.budget is not None:
            jobs = max(0, run.budget.left("create") - due)
        run.backfill_jobs.jobs = jobs

    def plan(self) -> str:
        """Return the plan line: each selected stream and the export jobs it needs (planned
        as its sync will plan them: no API call), and what is left of today's budget.
        """
        self.plan_run()
        plans: list[tuple[str, list[JobSpec] | str | None, str]] = []
        for stream in self.selected_streams():
            try:
                if stream.skipped_because():
                    plans.append((stream.name, "skipped: min_interval_hours", ""))
                    continue
                specs = stream.planned_jobs()
                backfill = stream.backfill_jobs()
                state = self.state.get("bookmarks", {}).get(stream.name)
                behind = isinstance(state, dict) and state.get(DEFERRED_KEY) is not None
                notes = [f"{backfill} of them backfilling"] * bool(backfill)
                notes += ["deferred by the last run, first now"] * behind
                plans.append((stream.name, specs, "; ".join(notes)))
            except DemandbaseError:
                plans.append((stream.name, None, ""))  # the stream reports it in its turn
        budget = self.run_context.budget
        left = f" Left today within budget_share: {budget.describe_left()}." if budget else ""
        return plan_line(plans) + left

    def log_run_summary(self) -> None:
        """End a sync with one line: streams, records, jobs, bytes, failures, time, calls."""
        if "run_context" not in self.__dict__:
            return  # stopped before the sync began: its one error line says why
        run = self.sync_run
        failures = run.failed + (run.stopped_by is not None)
        self.logger.info(
            "%s", summary_line(self.run_context.tally.snapshot(), failures, self.calls_made())
        )

    def run_connection_check(self) -> None:
        """Prove the connection without creating an export job: the credentials, the Data
        Export permission, each selected stream's entity and the job list (the dialect's
        ``check_connection``), one line per check, then the pass line with the calls made.

        What --test runs instead of the SDK's ``run_connection_test`` (singer-sdk 0.54.x),
        which syncs every stream: one export job each (``--test=records`` does that).
        """
        streams = None
        if self.input_catalog is not None:
            streams = [stream.name for stream in self.selected_streams()]
            if not streams:
                self.logger.warning("%s", nothing_selected_line(len(self.input_catalog.streams)))
        for check in self.connection.api.check_connection(streams):
            self.logger.log(logging.WARNING if check.warning else logging.INFO, "%s", check.line)
        self._report_field_changes()
        for line in self.stale_bookmark_lines(streams):
            self.logger.warning("%s", line)
        self.logger.info(
            "Connection test passed, without creating an export job (%s).", self.calls_made()
        )

    def _report_field_changes(self) -> None:
        """Say, for each selected stream whose fields the connection test listed (no call is
        made for it), which selected fields the API no longer has and which it offers that
        the catalog lacks.
        """
        if self.input_catalog is None:
            return
        api = self.connection.api
        for stream in self.selected_streams():
            offered = api.offered_fields(stream.name)
            if offered is None:
                continue
            names = stream.api_names or api.field_api_names(stream.name)
            gone = gone_fields(stream.selected_fields(), names, offered)
            if gone:
                self.logger.warning("%s", gone_line(stream.name, gone))
            new = new_fields(offered, stream.schema["properties"])
            if new:
                self.logger.info("%s", new_fields_line(stream.name, new))

    def stale_bookmark_lines(self, streams: list[str] | None) -> list[str]:
        """Return the freshness WARNINGs the --state gives: each stream (None: every stream of
        the state) whose bookmark has not moved for longer than freshness_warn_hours.
        """
        hours = float(self.setting("freshness_warn_hours"))
        bookmarks = (self.state or {}).get("bookmarks") or {}
        now = self.clock.now()
        lines = []
        for name, stream_state in bookmarks.items():
            if (streams is not None and name not in streams) or not isinstance(stream_state, dict):
                continue
            bookmark = stream_state.get(BOOKMARK_VALUE_KEY)
            line = stale_bookmark_line(name, bookmark, stream_state, now, hours)
            if line is not None:
                lines.append(line)
        return lines

    def run_record_test(self) -> None:
        """Export one record of each selected stream (``--test=records``), saying first what
        it costs: up to one export job per stream.
        """
        streams = self.selected_streams()
        limit = self.dialect.daily_limits.get("create")
        budget = f" of the tenant's {limit} a day" if limit else ""
        self.logger.warning(
            "--test=records exports one record of each of %s: it creates up to %s%s "
            "(an equivalent job that exists is re-used). --test alone creates none.",
            plural(len(streams), "stream"),
            plural(len(streams), "export job"),
            budget,
        )
        self.run_sync_dry_run(dry_run_record_limit=1, streams=streams)
        self.sync_run.raise_failures()
        jobs = self.run_context.tally.snapshot().jobs
        self.logger.info(
            "Connection test passed: every stream delivered a record (export jobs: %d created, "
            "%d re-used, %d resumed; %s).",
            jobs.created,
            jobs.reused,
            jobs.resumed,
            self.calls_made(),
        )

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
            if test not in (None, *TEST_MODES):
                msg = (
                    f"--test={test} is not known: use --test (checks the connection, creates "
                    "no export job), --test=schema, or --test=records (exports one record per "
                    "stream: one export job each)."
                )
                raise ConfigError(msg)
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
            elif test == CliTestOptionValue.Schema.value:
                tap.write_schemas()
            elif test == TEST_RECORDS:
                tap.run_record_test()
            else:
                tap.run_connection_check()

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
#: --test=records: the SDK's dry run, one record (and one export job) per stream.
TEST_RECORDS = "records"
#: The --test values: the connection test (the SDK's ``all``, what bare --test gives), the
#: SDK's schema test, and the record test.
TEST_MODES = (CliTestOptionValue.All.value, CliTestOptionValue.Schema.value, TEST_RECORDS)
TEST_HELP = (
    "Use --test to check the connection without creating an export job (credentials, the "
    "Data Export permission, each selected stream's entity, the job list). Use --test=records "
    "to export one record per stream (one export job each), --test=schema to write the "
    "schemas only."
)


def _test_asked() -> str | None:
    """Return the --test value of this command line (None: no test)."""
    ctx = click.get_current_context(silent=True)
    value = ctx.meta.get(TEST_META_KEY) if ctx is not None else None
    return value if isinstance(value, str) else None


def nothing_selected_line(catalog_streams: int) -> str:
    """Say that the catalog selects no stream (the run exports nothing), and how to select."""
    if not catalog_streams:
        return "The catalog has no stream: nothing is exported. Run --discover to write one."
    return (
        f"No stream of the catalog's {catalog_streams} is selected: nothing is exported. Select "
        'streams (metadata "selected": true; with Meltano: meltano select tap-demandbase ...).'
    )


def _foreign_stream_message(stream: str, key: str, valid: t.Sequence[str]) -> str:
    """Say that a catalog's stream lacks the replication key of this tap's streams: a stream
    of another tap (or of a catalog this tap did not write).
    """
    msg = (
        f"Stream '{stream}' of the catalog has no field '{key}' (the replication key of this "
        "tap's streams): it is not a stream of this tap: run --discover to write this tap's "
        "catalog."
    )
    if valid:
        msg += (
            f" If it is one, set replication_keys.{stream} to one of its date fields "
            f"({', '.join(valid)})."
        )
    return msg


@dataclass(frozen=True)
class DiscoveredEntity:
    """A stream's schema, and its fields' API names where they differ from the properties."""

    schema: dict[str, t.Any]
    api_names: dict[str, str]


def _primary_key(preferred: str, schema: dict[str, t.Any]) -> str | None:
    """Return the stream's primary key: the dialect's, else ``id``; None if it has neither."""
    properties = schema.get("properties", {})
    return next((key for key in (preferred, "id") if key in properties), None)


def api_names_in_catalog(catalog: t.Any) -> dict[str, dict[str, str]]:
    """Return stream → property → API name from a catalog's property metadata (``api-name``),
    as the tap's discovery writes it; empty for a catalog without (or not given as JSON).
    """
    if isinstance(catalog, (str, PurePath)):
        try:
            catalog = json.loads(Path(catalog).read_text())
        except (OSError, ValueError):
            return {}
    if not isinstance(catalog, dict):
        return {}
    names: dict[str, dict[str, str]] = {}
    for entry in catalog.get("streams") or []:
        if not isinstance(entry, dict):
            continue
        for item in entry.get("metadata") or []:
            breadcrumb = item.get("breadcrumb") if isinstance(item, dict) else None
            metadata = item.get("metadata") if isinstance(item, dict) else None
            api_name = metadata.get(API_NAME_METADATA) if isinstance(metadata, dict) else None
            if (
                isinstance(breadcrumb, list)
                and len(breadcrumb) == 2
                and breadcrumb[0] == "properties"
                and isinstance(api_name, str)
            ):
                stream = str(entry.get("tap_stream_id"))
                names.setdefault(stream, {})[str(breadcrumb[1])] = api_name
    return names


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
