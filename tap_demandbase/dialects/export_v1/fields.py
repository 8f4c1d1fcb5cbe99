"""The export_v1 streams' rules: the bookmark field of each (the field types are the common
vocabulary, ``dialects.common.FIELD_TYPES``).
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Sequence


DEFAULT_REPLICATION_KEY = "last_modified_date"
DEFAULT_REPLICATION_KEYS = {"activities": "activity_date"}


def default_replication_key(stream: str, date_fields: Sequence[str]) -> str | None:
    """Return the contract's bookmark field: activity_date for activities, else
    last_modified_date.
    """
    return DEFAULT_REPLICATION_KEYS.get(stream, DEFAULT_REPLICATION_KEY)
