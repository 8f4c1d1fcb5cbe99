"""The tap config that syncs every stream of a running emulator quickly (``demandbase-sandbox``
prints it and ``--write-config`` writes it), so an offline trial needs no guessing.

It follows the emulator's live settings: its credentials, its data span (``start_date`` and
``end_date`` bound ``[data_start, data_start + data_days)``, so uapi activities take one 90-day
window instead of one per 90 days up to today; ``end_date`` reaches the latest day a row change
stamps, ``changes.latest_change_day``), polling short enough for jobs that take seconds
(the tap's defaults suit real jobs: 30 s first poll with uapi), and, for uapi, the settings of
the streams that need them: every ad platform and a report type for campaigns and creatives, and
accounts that have buying groups and buying group members.
"""

from __future__ import annotations

import typing as t
from datetime import timedelta

from tap_demandbase.sandbox.changes import latest_change_day
from tap_demandbase.sandbox.server import Sandbox
from tap_demandbase.sandbox.uapi.catalog import ENTITY_TYPES
from tap_demandbase.sandbox.uapi.job_requests import MAX_IDS

#: Polling for jobs that take seconds: first status call after 0.5 s, then at most 2 s apart.
POLL_INTERVAL_SECONDS = 0.5
MAX_POLL_INTERVAL_SECONDS = 2.0
#: Accounts taken from each buying-group entity type (small enough to read in the config).
ACCOUNTS_PER_ENTITY = 5


def tap_config(sandbox: Sandbox) -> dict[str, t.Any]:
    """Return a tap config for ``sandbox`` that exports rows in every stream its dialect has."""
    settings = sandbox.settings
    last_day = max(
        settings.data_start + timedelta(days=settings.data_days - 1), latest_change_day(settings)
    )
    config: dict[str, t.Any] = {"api_url": sandbox.api_url}
    if sandbox.dialect == "uapi":
        config |= {
            "api_dialect": "uapi",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "campaign_sources": ["all"],
            "campaign_report_type": ENTITY_TYPES["campaign"].report_types[0],
            "creative_report_type": ENTITY_TYPES["creative"].report_types[0],
            "buying_group_account_ids": buying_group_account_ids(sandbox),
        }
    else:
        config["access_token"] = sandbox.token
    return config | {
        "start_date": f"{settings.data_start.isoformat()}T00:00:00Z",
        "end_date": f"{last_day.isoformat()}T00:00:00Z",
        "poll_interval_seconds": POLL_INTERVAL_SECONDS,
        "max_poll_interval_seconds": MAX_POLL_INTERVAL_SECONDS,
    }


def buying_group_account_ids(sandbox: Sandbox) -> list[str]:
    """Return account numbers (as uapi's ``accountIds`` take them) of the first accounts that
    have buying groups and of the first that have buying group members, in number order.
    """
    accounts = min(sandbox.settings.row_count("accounts"), MAX_IDS)
    every_account = [str(n) for n in range(1, accounts + 1)]
    numbers: set[int] = set()
    for entity_type in ("accountBuyingGroup", "personBuyingGroupMember"):
        body: dict[str, object] = {
            "jobName": "tap-config",
            "entityType": entity_type,
            "accountIds": every_account,
        }
        owners = {row["{Account}.id"] for row in sandbox.expected_uapi_rows(body)}
        found = sorted(int(owner.rsplit("-", 1)[1]) for owner in owners if owner)
        numbers.update(found[:ACCOUNTS_PER_ENTITY])
    return [str(n) for n in sorted(numbers)]
