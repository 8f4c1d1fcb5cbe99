"""Moments and days, read in one place: the APIs' job timestamps, date-time settings, bookmark
values and the moments the tap writes into the state.

Each source has one reading, whoever reads it (either dialect, the tap, the engine):

- a job timestamp of an API answer (``api_timestamp``) is RFC 3339, strictly: a value of another
  form is an answer the tap cannot read (a missing offset is taken as UTC);
- a date-time setting (``parse_setting_datetime``) and a bookmark (``utc_date``) are ISO 8601, as
  people and APIs write them: a date alone is midnight UTC;
- a moment the tap wrote into the state (``state_datetime``) is RFC 3339 in UTC; one that cannot
  be read is unknown (None), never an error: the state may come from an older version.
"""

from __future__ import annotations

import datetime
import re
import typing as t

import pendulum

from tap_demandbase.errors import ConfigError

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:[Zz]|([+-])(\d{2}):(\d{2}))?"
)


def api_timestamp(value: t.Any, key: str) -> datetime.datetime | None:
    """Return an API's RFC 3339 timestamp in UTC (None: absent, null or empty).

    Raises:
        ValueError: the value is not an RFC 3339 timestamp (the message names ``key``).
    """
    if value is None or value == "":
        return None
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{key} {value!r} is not an RFC 3339 timestamp")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    offset = datetime.timedelta(0)
    if sign:
        offset = datetime.timedelta(hours=int(off_h), minutes=int(off_m))
        offset = -offset if sign == "-" else offset
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro,
            tzinfo=datetime.timezone(offset),
        )  # fmt: skip
    except ValueError:
        raise ValueError(f"{key} {value!r} is not an RFC 3339 timestamp") from None
    return moment.astimezone(datetime.timezone.utc)


def parse_setting_datetime(name: str, value: str) -> datetime.datetime:
    """Return a date-time setting (a date alone: its midnight UTC), or fail naming the
    setting and the expected form.
    """
    try:
        parsed = pendulum.parse(value)
    except (ValueError, TypeError) as exc:
        msg = (
            f"Setting {name}='{value}' is not an ISO 8601 date-time; use e.g. 2024-01-01T00:00:00Z."
        )
        raise ConfigError(msg) from exc
    if not isinstance(parsed, datetime.datetime):
        if isinstance(parsed, datetime.date):
            return pendulum.datetime(parsed.year, parsed.month, parsed.day)
        msg = f"Setting {name}='{value}' is not a date-time; use e.g. 2024-01-01T00:00:00Z."
        raise ConfigError(msg)
    return parsed


def utc_date(value: str | datetime.datetime) -> datetime.date:
    """Return the UTC calendar date of a bookmark, start_date or end_date value.

    Raises:
        ValueError: The value is not a date or date-time.
    """
    moment: t.Any = pendulum.instance(value) if isinstance(value, datetime.datetime) else value
    if isinstance(moment, str):
        moment = pendulum.parse(moment)
    if isinstance(moment, datetime.datetime):
        return moment.astimezone(datetime.timezone.utc).date()
    if isinstance(moment, datetime.date):
        return moment
    raise ValueError(f"{value!r} is not a date")


def is_date(value: t.Any) -> bool:
    """Whether a bookmark is a date or date-time string."""
    if not isinstance(value, str):
        return False
    try:
        utc_date(value)
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def state_datetime(value: t.Any) -> datetime.datetime | None:
    """Return a moment the tap wrote into the state; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def rfc3339(moment: datetime.datetime) -> str:
    """Return a moment as the state keeps it: RFC 3339 in UTC, to the second, with ``Z``."""
    utc = moment.astimezone(datetime.timezone.utc).replace(microsecond=0)
    return utc.isoformat().replace("+00:00", "Z")
