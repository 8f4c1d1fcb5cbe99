"""The export_v1 settings: the properties only this dialect reads, and their typed values."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from singer_sdk import typing as th

from tap_demandbase.dialects.common import setting_text

if t.TYPE_CHECKING:
    from collections.abc import Mapping

SETTINGS: tuple[th.Property[t.Any], ...] = (
    th.Property(
        "access_token",
        th.StringType,
        secret=True,
        title="Access token",
        description="Bearer token of a Demandbase user with the Data Export permission.",
    ),
    th.Property(
        "account_list_id",
        th.StringType,
        title="Account list ID",
        description="Export only records of this account list (filters.account_list_id).",
    ),
)


@dataclass(frozen=True)
class ExportV1Options:
    """Every setting the export_v1 dialect reads, typed (an empty value is none)."""

    #: The bearer token the transport sends (None: not set; ``auth`` says to set it).
    access_token: str | None = field(default=None, repr=False)
    #: Export only records of this account list (None: every record).
    account_list_id: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, t.Any]) -> ExportV1Options:
        """Return the options the settings give."""
        return cls(
            access_token=setting_text(config, "access_token"),
            account_list_id=setting_text(config, "account_list_id"),
        )
