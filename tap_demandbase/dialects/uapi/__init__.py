"""The ``uapi`` dialect: Demandbase's production Data Export API (``uapi.demandbase.com``).

What public sources say about it is in ``demandbase-production-api.md`` (documented, inferred,
unknown); the docs' "Production tenants" page states what the tap assumes where they are
silent. In short: OAuth client credentials (``auth``); ``GET /fields`` per entity type
(``{Entity}.camelCase`` names, mapped to snake_case properties by ``fields``);
``POST /job`` with a ``jobName`` derived from the job's identity; ``GET /job/{id}``;
``GET /jobs`` to find a job a crashed run created; results as ``resultsUrls`` (else
``resultsUrl``), pre-signed; one job at a time per tenant; no cancel; daily call budgets per
tenant (60 creates, 300 status calls, 1,200 list calls, 60 fields calls), so every call is
counted (``usage``) and the run ends with one line saying what it used.

Laid out like ``export_v1``: ``wire`` (paths, JSON, status words), ``errors``, ``settings``,
``client``, plus ``auth``, ``fields`` and ``usage``.
"""

from __future__ import annotations

import functools
import typing as t

from tap_demandbase.dialects.base import Connection, ConnectOptions, Dialect
from tap_demandbase.dialects.common import FIELD_TYPES, dialect_transport
from tap_demandbase.dialects.uapi.auth import ClientCredentials, auth_from_settings
from tap_demandbase.dialects.uapi.client import UapiClient
from tap_demandbase.dialects.uapi.errors import classify_error
from tap_demandbase.dialects.uapi.fields import (
    STREAMS,
    column_names,
    default_replication_key,
    stream_rules,
)
from tap_demandbase.dialects.uapi.settings import SETTINGS, UapiOptions
from tap_demandbase.dialects.uapi.usage import CALLS, DAILY_LIMITS, CallUsage
from tap_demandbase.dialects.uapi.wire import DEFAULT_API_URL, STATUSES
from tap_demandbase.model import PollPolicy

if t.TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DIALECT", "connect"]


def connect(config: Mapping[str, t.Any], api_url: str, options: ConnectOptions) -> Connection:
    """Return a client authenticated by client credentials (or a given access_token)."""
    settings = UapiOptions.from_config(config)
    usage = CallUsage()
    auth = auth_from_settings(
        settings,
        api_url,
        user_agent=options.user_agent,
        on_token_request=lambda: usage.count("token"),
        clock=options.clock,
    )
    credentials = auth if isinstance(auth, ClientCredentials) else None
    classify = functools.partial(
        classify_error, renewable=credentials is not None, clock=options.clock, usage=usage
    )
    transport = dialect_transport(
        api_url, auth, options, classify=classify, on_send=usage.count_request
    )
    client = UapiClient(transport, settings, usage, credentials, clock=options.clock)
    return Connection(api=client, opener=transport)


DIALECT = Dialect(
    name="uapi",
    default_api_url=DEFAULT_API_URL,
    statuses=STATUSES,
    field_types=FIELD_TYPES,
    settings=SETTINGS,
    poll_policy=PollPolicy(first_interval=30.0, max_interval=600.0, timeout=6 * 3600.0),
    max_concurrent_jobs=1,
    default_replication_key=default_replication_key,
    connect=connect,
    stream_rules=stream_rules,
    column_names=column_names,
    stream_names=frozenset(STREAMS),
    daily_limits=DAILY_LIMITS,
    call_words=CALLS,
)
