"""The uapi settings: the properties only this dialect reads, and their typed values."""

from __future__ import annotations

import datetime
import hashlib
import typing as t
from dataclasses import dataclass, field

from singer_sdk import typing as th

from tap_demandbase.dialects.common import setting_text
from tap_demandbase.dialects.uapi.fields import UapiStream
from tap_demandbase.timestamps import utc_date

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


#: Ids per buying-group job: ``accountIds`` takes at most 10,000 (400-150).
ACCOUNT_IDS_PER_JOB = 10_000
CAMPAIGN_REPORT_TYPES = (
    "campaign_summary",
    "campaign_performance_rollup",
    "campaign_account_lifetime",
    "campaign_account_rollup",
)
CREATIVE_REPORT_TYPES = ("creative_lifetime", "creative_rollup")
SOURCES = ("demandbase", "linkedin", "google", "all")

SETTINGS: tuple[th.Property[t.Any], ...] = (
    th.Property(
        "client_id",
        th.StringType,
        title="Client ID",
        description=(
            "uapi: client id of a Demandbase API client (OAuth client credentials) with the Data "
            "Export API; with client_secret, instead of access_token."
        ),
    ),
    th.Property(
        "client_secret",
        th.StringType,
        secret=True,
        title="Client secret",
        description="uapi: the API client's secret (never logged; sent to api_url only).",
    ),
    th.Property(
        "access_token",
        th.StringType,
        secret=True,
        title="Access token",
        description="A bearer token, instead of client_id and client_secret.",
    ),
    th.Property(
        "campaign_sources",
        th.ArrayType(th.StringType(allowed_values=list(SOURCES))),
        title="Campaign sources",
        description=(
            "uapi: ad platforms of the campaigns and creatives streams (demandbase, linkedin, "
            "google, all); with campaign_report_type and/or creative_report_type."
        ),
    ),
    th.Property(
        "campaign_report_type",
        th.StringType(allowed_values=list(CAMPAIGN_REPORT_TYPES)),
        title="Campaign report type",
        description="uapi: the campaigns stream's adReportType (with campaign_sources).",
    ),
    th.Property(
        "creative_report_type",
        th.StringType(allowed_values=list(CREATIVE_REPORT_TYPES)),
        title="Creative report type",
        description="uapi: the creatives stream's adReportType (with campaign_sources).",
    ),
    th.Property(
        "buying_group_account_ids",
        th.ArrayType(th.StringType),
        title="Buying group account IDs",
        description=(
            "uapi: the accounts whose buying groups and buying group members to export "
            "(buying_groups, buying_group_members streams); one job per 10,000 ids."
        ),
    ),
)


@dataclass(frozen=True)
class UapiOptions:
    """Every setting the uapi dialect reads, typed (an empty value is none)."""

    #: The API client's credentials (``auth`` gets tokens with them), else a given token.
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    campaign_sources: tuple[str, ...] = ()
    report_types: Mapping[str, str | None] = field(default_factory=dict)
    account_ids: tuple[str, ...] = ()
    start_day: datetime.date | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, t.Any]) -> UapiOptions:
        """Return the options the settings give (a start_date the tap rejects is none here)."""
        start = config.get("start_date")
        try:
            start_day = utc_date(start) if start else None
        except (ValueError, TypeError, OverflowError):
            start_day = None  # the tap reports a bad start_date itself
        return cls(
            client_id=setting_text(config, "client_id"),
            client_secret=setting_text(config, "client_secret"),
            access_token=setting_text(config, "access_token"),
            campaign_sources=tuple(config.get("campaign_sources") or ()),
            report_types={
                "campaign_report_type": config.get("campaign_report_type"),
                "creative_report_type": config.get("creative_report_type"),
            },
            account_ids=tuple(str(i).strip() for i in config.get("buying_group_account_ids") or ()),
            start_day=start_day,
        )

    def report_type(self, stream: UapiStream) -> str | None:
        """Return the report type the settings give a campaign or creative stream."""
        return self.report_types.get(stream.report_type_setting or "")

    def enabled(self, stream: UapiStream) -> bool:
        """Whether the settings a stream needs are set."""
        if stream.report_type_setting:
            return bool(self.campaign_sources and self.report_type(stream))
        if stream.account_scoped:
            return bool(self.account_ids)
        return True

    def account_id_chunks(self) -> list[tuple[str, ...]]:
        """Return the account ids in chunks of at most ACCOUNT_IDS_PER_JOB, in the given order."""
        ids = self.account_ids
        return [
            ids[start : start + ACCOUNT_IDS_PER_JOB]
            for start in range(0, len(ids), ACCOUNT_IDS_PER_JOB)
        ]


def chunk_label(index: int, count: int, ids: Sequence[str]) -> str:
    """Return how a chunk of account ids is named in a job's filters: its place and a digest
    of its ids (the ids themselves would bloat the state).
    """
    digest = hashlib.sha256(",".join(ids).encode()).hexdigest()[:12]
    return f"{index}/{count}:{len(ids)}:{digest}"
