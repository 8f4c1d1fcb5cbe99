"""The export_v1 settings: the properties only this dialect reads, and their typed values."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from singer_sdk import typing as th

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
    """The settings the export_v1 client reads (the token is the transport's)."""

    #: Export only records of this account list (None: every record).
    account_list_id: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, t.Any]) -> ExportV1Options:
        """Return the options the settings give (an empty account_list_id is none)."""
        return cls(account_list_id=config.get("account_list_id") or None)
