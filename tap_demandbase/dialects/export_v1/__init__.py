"""The ``export_v1`` dialect: the Data Export API of ``demandbase-data-export-openapi.yml``.

The only package that knows this API's paths, payloads and status words (``wire``), error
bodies (``errors``), settings (``settings``: a bearer ``access_token``, ``account_list_id``;
``auth``), stream rules (``fields``) and calls (``usage``); ``client`` speaks it. Another
dialect (Demandbase's production ``uapi``) is a sibling package laid out alike, supplying the
same ``Dialect``.
"""

from __future__ import annotations

import typing as t

from tap_demandbase.dialects.base import Connection, ConnectOptions, Dialect
from tap_demandbase.dialects.common import FIELD_TYPES, CallCounter, dialect_transport
from tap_demandbase.dialects.export_v1.auth import token_auth
from tap_demandbase.dialects.export_v1.client import DataExportClient
from tap_demandbase.dialects.export_v1.errors import classify_error
from tap_demandbase.dialects.export_v1.fields import default_replication_key
from tap_demandbase.dialects.export_v1.settings import SETTINGS, ExportV1Options
from tap_demandbase.dialects.export_v1.usage import endpoint_of
from tap_demandbase.dialects.export_v1.wire import DEFAULT_API_URL, STATUSES
from tap_demandbase.model import PollPolicy

if t.TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["DIALECT", "connect"]


def connect(config: Mapping[str, t.Any], api_url: str, options: ConnectOptions) -> Connection:
    """Return a client authenticated by the ``access_token`` setting."""
    settings = ExportV1Options.from_config(config)
    auth = token_auth(settings)
    calls = CallCounter(endpoint_of)
    transport = dialect_transport(
        api_url, auth, options, classify=classify_error, on_send=calls.count_request
    )
    client = DataExportClient(transport, settings, calls, clock=options.clock)
    return Connection(api=client, opener=transport)


DIALECT = Dialect(
    name="export_v1",
    default_api_url=DEFAULT_API_URL,
    statuses=STATUSES,
    field_types=FIELD_TYPES,
    settings=SETTINGS,
    poll_policy=PollPolicy(first_interval=2.0, max_interval=900.0, timeout=6 * 3600.0),
    max_concurrent_jobs=None,
    default_replication_key=default_replication_key,
    connect=connect,
)
