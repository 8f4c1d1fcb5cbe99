"""What a dialect module supplies (see ``dialects/__init__.py``)."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from singer_sdk import typing as th

    from tap_demandbase.engine.clock import Clock
    from tap_demandbase.engine.results import PartOpener
    from tap_demandbase.model import ExportApi, JobState, PollPolicy
    from tap_demandbase.records.kinds import Kind


@dataclass(frozen=True)
class ConnectOptions:
    """What the tap decides for every dialect: who it is, transfer timeouts, and the engine's
    clock (a dialect reads time from it only, so that a fake clock reaches it too).
    """

    user_agent: str
    download_stall_seconds: float
    clock: Clock


@dataclass(frozen=True)
class Connection:
    """A connected dialect: its client, and what opens its result parts."""

    api: ExportApi
    opener: PartOpener


@dataclass(frozen=True)
class StreamRules:
    """What an API imposes on one stream, known without asking it (a sync given a catalog asks
    nothing before its jobs).
    """

    #: The only replication key the API can filter the stream on (None: any date field).
    required_replication_key: str | None = None
    #: The longest window one job may span, in UTC days with both ends included (None: any).
    max_window_days: int | None = None
    #: The property that identifies a record.
    primary_key: str = "id"


def no_rules(stream: str) -> StreamRules:
    """Return the rules of an API that imposes none on its streams."""
    return StreamRules()


def same_name(api_name: str) -> tuple[str, ...]:
    """Return the header names of a field's result column: its API name only."""
    return (api_name,)


@dataclass(frozen=True)
class Dialect:
    """One API, as the tap needs to know it."""

    name: str
    default_api_url: str
    #: The API's status words → engine states (checked for completeness by the contract test).
    statuses: Mapping[str, JobState]
    #: The API's field type words (lower case) → value kinds. Any other word is read as a
    #: string, with a warning.
    field_types: Mapping[str, Kind]
    #: Settings only this dialect reads (the tap's settings are the common ones plus these).
    settings: Sequence[th.Property[t.Any]]
    #: Polling when the settings say nothing: first wait, cap, timeout.
    poll_policy: PollPolicy
    #: Most export jobs the API lets run at once (None: no limit the tap knows of).
    max_concurrent_jobs: int | None
    #: Stream name and its date fields → the replication key used when the settings name none.
    default_replication_key: Callable[[str, Sequence[str]], str | None]
    #: Settings → a connected client (checks its own settings; raises ConfigError).
    connect: Callable[[Mapping[str, t.Any], str, ConnectOptions], Connection]
    #: Stream name → what the API imposes on it (window length, replication key, primary key).
    stream_rules: Callable[[str], StreamRules] = no_rules
    #: A field's API name → the header names its result column may have, the exact one first
    #: (shorter forms are accepted where unique in the part).
    column_names: Callable[[str], tuple[str, ...]] = same_name
    #: The streams the API has, whatever the tenant (None: the tenant's entities, which only
    #: discovery knows): a catalog naming another stream is not one of this tap.
    stream_names: frozenset[str] | None = None
    #: Calls the API lets a tenant make per UTC day, by endpoint ("create", "status", ...;
    #: empty: no limit the tap knows of), and how each endpoint's calls are named.
    daily_limits: Mapping[str, int] = field(default_factory=dict)
    call_words: Mapping[str, str] = field(default_factory=dict)
