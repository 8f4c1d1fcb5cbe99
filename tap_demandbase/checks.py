"""The ``--test`` modes: the connection check (bare ``--test``), the record test
(``--test=records``) and the SDK's schema test (``--test=schema``).

The connection check proves the credentials, the permission, each selected stream's entity and
the job list without creating an export job, and says what the catalog and the --state would
meet: fields the API no longer has or newly offers, bookmarks that stand still. The record test
is the SDK's dry run, one record (and up to one export job) per stream, its cost said first.
Both end with one pass line naming the calls made. ``tap.py`` reads the command line and runs
the mode asked for here, once the catalog is read.
"""

from __future__ import annotations

import logging
import typing as t

from singer_sdk.tap_base import CliTestOptionValue

from tap_demandbase.engine.fields import gone_fields, gone_line, new_fields, new_fields_line
from tap_demandbase.engine.freshness import stale_bookmark_line
from tap_demandbase.errors import ConfigError
from tap_demandbase.progress import nothing_selected_line, plural
from tap_demandbase.sdk_compat import BOOKMARK_VALUE_KEY

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from datetime import datetime

    from tap_demandbase.model import ExportApi
    from tap_demandbase.streams import ExportStream
    from tap_demandbase.tap import TapDemandbase

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
#: The error line of a --test value that is none of TEST_MODES.
UNKNOWN_MODE = (
    "--test={mode} is not known: use --test (checks the connection, creates no export job), "
    "--test=schema, or --test=records (exports one record per stream: one export job each)."
)


def checked_test_mode(mode: str | None) -> None:
    """Raise a ConfigError naming the known --test values, unless ``mode`` is one (or None)."""
    if mode not in (None, *TEST_MODES):
        raise ConfigError(UNKNOWN_MODE.format(mode=mode))


def run_test(tap: TapDemandbase, mode: str) -> None:
    """Run the --test mode asked for (one of TEST_MODES)."""
    if mode == CliTestOptionValue.Schema.value:
        tap.write_schemas()
    elif mode == TEST_RECORDS:
        run_record_test(tap)
    else:
        run_connection_check(tap)


def run_connection_check(tap: TapDemandbase) -> None:
    """Prove the connection without creating an export job: the credentials, the Data
    Export permission, each selected stream's entity and the job list (the dialect's
    ``check_connection``), one line per check, then the pass line with the calls made.

    What --test runs instead of the SDK's ``run_connection_test`` (singer-sdk 0.54.x),
    which syncs every stream: one export job each (``--test=records`` does that).
    """
    logger = tap.logger
    selected = None
    if tap.input_catalog is not None:
        selected = tap.selected_streams()
        if not selected:
            logger.warning("%s", nothing_selected_line(len(tap.input_catalog.streams)))
    streams = None if selected is None else [stream.name for stream in selected]
    api = tap.connection.api
    for check in api.check_connection(streams):
        logger.log(logging.WARNING if check.warning else logging.INFO, "%s", check.line)
    for level, line in field_change_lines(api, selected or []):
        logger.log(level, "%s", line)
    hours = float(tap.settings.value("freshness_warn_hours"))
    for line in stale_bookmark_lines(tap.state, streams, tap.clock.now(), hours):
        logger.warning("%s", line)
    logger.info("Connection test passed, without creating an export job (%s).", tap.calls_made())


def field_change_lines(
    api: ExportApi, streams: Sequence[ExportStream]
) -> Iterator[tuple[int, str]]:
    """Yield, with its log level, for each stream whose fields the connection test listed (no
    call is made for it), which selected fields the API no longer has (WARNING) and which it
    offers that the catalog lacks (INFO).
    """
    for stream in streams:
        offered = api.offered_fields(stream.name)
        if offered is None:
            continue
        names = stream.api_names or api.field_api_names(stream.name)
        gone = gone_fields(stream.selected_fields(), names, offered)
        if gone:
            yield logging.WARNING, gone_line(stream.name, gone)
        new = new_fields(offered, stream.schema["properties"])
        if new:
            yield logging.INFO, new_fields_line(stream.name, new)


def stale_bookmark_lines(
    state: Mapping[str, t.Any] | None, streams: Sequence[str] | None, now: datetime, hours: float
) -> list[str]:
    """Return the freshness WARNINGs the --state gives: each stream (None: every stream of
    the state) whose bookmark has not moved for longer than ``hours`` (freshness_warn_hours).
    """
    bookmarks = (state or {}).get("bookmarks") or {}
    lines = []
    for name, stream_state in bookmarks.items():
        if (streams is not None and name not in streams) or not isinstance(stream_state, dict):
            continue
        bookmark = stream_state.get(BOOKMARK_VALUE_KEY)
        line = stale_bookmark_line(name, bookmark, stream_state, now, hours)
        if line is not None:
            lines.append(line)
    return lines


def run_record_test(tap: TapDemandbase) -> None:
    """Export one record of each selected stream (``--test=records``), saying first what
    it costs: up to one export job per stream.
    """
    streams = tap.selected_streams()
    limit = tap.dialect.daily_limits.get("create")
    budget = f" of the tenant's {limit} a day" if limit else ""
    tap.logger.warning(
        "--test=records exports one record of each of %s: it creates up to %s%s "
        "(an equivalent job that exists is re-used). --test alone creates none.",
        plural(len(streams), "stream"),
        plural(len(streams), "export job"),
        budget,
    )
    tap.run_sync_dry_run(dry_run_record_limit=1, streams=streams)
    tap.sync_run.raise_failures()
    jobs = tap.sync_run.context.tally.snapshot().jobs
    tap.logger.info(
        "Connection test passed: every stream delivered a record (export jobs: %d created, "
        "%d re-used, %d resumed; %s).",
        jobs.created,
        jobs.reused,
        jobs.resumed,
        tap.calls_made(),
    )
