"""The tap's settings: the common schema, each dialect's own, and typed access to them.

The tap validates the common settings plus those of the chosen ``api_dialect`` (each
``Dialect.settings``), so that an export_v1 user is not offered uapi's settings as if they
applied. Meltano and ``--about`` need one flat list: there, a setting of some dialects only
says so in its description. Every default is one constant, written here or beside the code
that reads it, and the schema is the one place a default is looked up.
"""

from __future__ import annotations

import copy
import datetime
import typing as t
from dataclasses import dataclass

from singer_sdk import typing as th

from tap_demandbase.dialects import DEFAULT_DIALECT, DIALECTS, dialect_named
from tap_demandbase.engine.budget import DEFAULT_SHARE
from tap_demandbase.engine.deletes import DEFAULT_CHECK_DAYS
from tap_demandbase.engine.freshness import DEFAULT_WARN_HOURS
from tap_demandbase.engine.jobs import DEFAULT_COOLDOWN_SECONDS, DEFAULT_MAX_ATTEMPTS
from tap_demandbase.errors import ConfigError
from tap_demandbase.logs import METRICS_LOG_LEVELS
from tap_demandbase.model import PollPolicy
from tap_demandbase.progress import PROGRESS_INTERVAL_SECONDS
from tap_demandbase.timestamps import parse_setting_datetime

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from tap_demandbase.dialects import Dialect

#: What api_url must look like (checked by the settings schema): an http(s) URL with a host.
API_URL_PATTERN = r"^https?://[^\s/?#]+"
#: Default of download_stall_seconds (the engine's results.py takes it as given).
DEFAULT_STALL_SECONDS = 60.0
#: Default of max_concurrent_jobs: one export job at a time.
DEFAULT_MAX_CONCURRENT_JOBS = 1


def per_stream(kind: str) -> th.CustomType:
    """Return the schema of a setting that is one value for every stream or an object of
    stream name to value (a choice of two: the SDK writes a bare "null" into an ``anyOf``).
    """
    value = {"type": kind, "minimum": 0}
    return th.CustomType(
        {"oneOf": [value, {"type": "object", "additionalProperties": dict(value)}]}
    )


#: The settings every dialect reads, before the dialects' own (the order of ``--about``).
_LEADING: tuple[th.Property[t.Any], ...] = (
    th.Property(
        "api_dialect",
        th.StringType(allowed_values=list(DIALECTS)),
        default=DEFAULT_DIALECT,
        title="API dialect",
        description=(
            "Which Demandbase API to speak (docs: Production tenants). Each API has settings "
            "of its own besides the common ones; their descriptions name the API."
        ),
    ),
    th.Property(
        "api_url",
        th.StringType(pattern=API_URL_PATTERN),
        examples=["https://api.demandbase.com"],
        title="API URL",
        description=("Base URL of the API. Default: the api_dialect's production URL."),
    ),
)
#: The settings every dialect reads, after the dialects' own.
_TRAILING: tuple[th.Property[t.Any], ...] = (
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
            "Wait before the first job status call; doubles after each call. Default: the "
            "api_dialect's."
        ),
    ),
    th.Property(
        "max_poll_interval_seconds",
        th.NumberType(exclusive_minimum=0),
        title="Longest poll interval",
        description=(
            "Cap of the exponential wait between two job status calls. Default: the "
            "api_dialect's, within its daily status calls."
        ),
    ),
    th.Property(
        "max_concurrent_jobs",
        th.IntegerType(minimum=1),
        default=DEFAULT_MAX_CONCURRENT_JOBS,
        title="Export jobs in flight",
        description=(
            "How many export jobs may run on Demandbase at once: above 1, the next streams' "
            "jobs are created and polled while earlier streams download. Output stays one "
            "stream at a time. At most what the api_dialect allows per tenant."
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
            "else kept for the next run) and the stream fails. Default: the api_dialect's."
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
            "daily limits."
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
            "from the documented ones of the api_dialect."
        ),
    ),
    th.Property(
        "min_interval_hours",
        per_stream("number"),
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
        per_stream("integer"),
        title="Lookback days",
        description=(
            "Each incremental run also exports this many days before the bookmark's day (one "
            "number, or an object of stream name to days), so that rows restated "
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
)
COMMON_SETTINGS: tuple[th.Property[t.Any], ...] = (*_LEADING, *_TRAILING)


def dialect_schema(dialect: Dialect) -> dict[str, t.Any]:
    """Return the settings schema a sync with ``dialect`` validates: the common settings plus
    the dialect's own.
    """
    return th.PropertiesList(*_LEADING, *dialect.settings, *_TRAILING).to_dict()


def dialects_of_setting() -> dict[str, list[str]]:
    """Return each dialect-only setting → the dialects that read it (a setting all of them
    read is not listed).
    """
    readers: dict[str, list[str]] = {}
    for dialect in DIALECTS.values():
        for setting in dialect.settings:
            readers.setdefault(setting.name, []).append(dialect.name)
    return {name: names for name, names in readers.items() if len(names) < len(DIALECTS)}


def about_schema() -> dict[str, t.Any]:
    """Return the one flat settings schema of ``--about`` and Meltano: the common settings and
    every dialect's, each dialect-only setting's description saying which dialects read it.
    """
    only = dialects_of_setting()
    seen: dict[str, th.Property[t.Any]] = {}
    for dialect in DIALECTS.values():
        for setting in dialect.settings:
            seen.setdefault(setting.name, setting)
    schema = th.PropertiesList(*_LEADING, *seen.values(), *_TRAILING).to_dict()
    for name, names in only.items():
        prop = schema["properties"][name]
        prop["description"] = only_for_line(names, prop.get("description", ""))
    return schema


def only_for_line(dialects: Sequence[str], description: str) -> str:
    """Return a dialect-only setting's description for the flat list: "uapi only: ..." (the
    dialect's own "uapi: " lead, if any, folded into it).
    """
    lead = f"{', '.join(dialects)} only"
    for name in dialects:
        description = description.removeprefix(f"{name}: ")
    return f"{lead}: {description}" if description else f"{lead}."


def chosen_dialect(config: Mapping[str, t.Any]) -> Dialect | None:
    """Return the dialect the settings name (None: not one the tap knows; the schema says so)."""
    return DIALECTS.get(config.get("api_dialect") or DEFAULT_DIALECT)


def validation_schema(config: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Return a copy of the schema the settings are checked against: the chosen dialect's, or
    the flat one when api_dialect is not known (its error names the valid ones).
    """
    dialect = chosen_dialect(config)
    return copy.deepcopy(dialect_schema(dialect) if dialect else about_schema())


def settings_of_other_dialects(dialect: Dialect | None) -> dict[str, list[str]]:
    """Return the dialect-only settings ``dialect`` does not read → the dialects that do."""
    if dialect is None:
        return {}
    own = {setting.name for setting in dialect.settings}
    return {name: names for name, names in dialects_of_setting().items() if name not in own}


_DEFAULTS: dict[str, t.Any] = {
    prop.name: prop.to_dict()[prop.name].get("default") for prop in COMMON_SETTINGS
}


@dataclass(frozen=True)
class Settings:
    """The validated settings of one tap, read with their defaults and types."""

    config: Mapping[str, t.Any]

    def get(self, name: str) -> t.Any:
        """Return a setting as given (None: not given)."""
        return self.config.get(name)

    def value(self, name: str) -> t.Any:
        """Return a setting, or its default from the settings schema (the one place defaults
        are written down).
        """
        value = self.config.get(name)
        return _DEFAULTS.get(name) if value is None else value

    def per_stream(self, name: str, stream: str) -> t.Any:
        """Return a setting that is one value for every stream, or an object of stream → value."""
        value = self.config.get(name)
        return value.get(stream) if isinstance(value, dict) else value

    @property
    def dialect(self) -> Dialect:
        """Return the API dialect the settings name."""
        return dialect_named(self.config.get("api_dialect"))

    def date_time(self, name: str) -> datetime.datetime | None:
        """Return a date-time setting, validated (None: not given)."""
        value = self.config.get(name)
        return parse_setting_datetime(name, value) if value else None

    def stall_seconds(self) -> float:
        """Return download_stall_seconds."""
        return float(self.value("download_stall_seconds"))

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

    def max_concurrent_jobs(self) -> int:
        """Return max_concurrent_jobs, refused above what the dialect's API allows."""
        jobs = int(self.value("max_concurrent_jobs"))
        dialect = self.dialect
        limit = dialect.max_concurrent_jobs
        if limit is not None and jobs > limit:
            msg = (
                f"Setting max_concurrent_jobs={jobs} is more than api_dialect="
                f"{dialect.name} allows ({limit}); set it to {limit} or remove it."
            )
            raise ConfigError(msg)
        return jobs

    def daily_limits(self) -> dict[str, int]:
        """Return the tenant's daily call limits: the dialect's, overridden by daily_limits."""
        return {**self.dialect.daily_limits, **(self.config.get("daily_limits") or {})}

    def run_range(self) -> tuple[datetime.datetime | None, datetime.datetime | None]:
        """Return start_date and end_date, once they and the settings they go with agree."""
        start = self.date_time("start_date")
        end = self.date_time("end_date")
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
        return start, end
