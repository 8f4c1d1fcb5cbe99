"""One emulator per API dialect, and what the tap must do against it, for the CLI promises that
hold for every dialect (``tests/cli/test_both_dialects.py``).

Each ``DialectCase`` knows its emulator's dialect: the tap settings for it, the records a sync
must emit (computed from the emulator's own generator and request validation, not from the
tap's code), and the export jobs the emulator saw, in the tap's terms (stream, properties,
date window).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import requests

from tap_demandbase.sandbox import Sandbox
from tests.support.expected import api_field_types, property_name
from tests.support.tap import START_DATE, fast_settings, tap_config

#: Every dialect case ends its syncs on this day: nothing depends on the day the suite runs.
END_DATE = "2024-04-30T00:00:00Z"
END_DAY = "2024-04-30"
START_DAY = START_DATE[:10]

EXPORT_V1_KEYS = {"activities": "activity_date"}
#: uapi stream → (entity type, its own ``{Prefix}``; None: unprefixed names).
UAPI_STREAMS = {
    "accounts": ("account", "Account"),
    "people": ("person", "Person"),
    "opportunities": ("opportunity", "Opportunity"),
    "activities": ("activity", "Activity"),
    "campaigns": ("campaign", None),
    "creatives": ("creative", None),
    "buying_groups": ("accountBuyingGroup", "AccountBuyingGroup"),
    "buying_group_members": ("personBuyingGroupMember", "PersonBuyingGroupMember"),
}
UAPI_ROWS = {"creatives": 25, "buying_group_members": 45}
#: Streams synced FULL_TABLE by the uapi dialect: no last-modified field (created_date only).
UAPI_FULL_TABLE = {"creatives", "buying_group_members"}
UAPI_KEYS = {"campaigns": "campaign_id", "creatives": "creative_id"}
BUYING_GROUP_ACCOUNTS = [str(n) for n in range(1, 61)]


@dataclass(frozen=True)
class CreatedJob:
    """One export job the emulator was asked for, in the tap's terms."""

    stream: str
    fields: frozenset[str]
    date_field: str | None
    start: str | None
    end: str | None


class DialectCase:
    """An emulator of one dialect, and the tap's expectations against it."""

    name = ""
    streams: tuple[str, ...] = ()

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb

    # Settings ---------------------------------------------------------------------------------

    def config(self, **overrides: Any) -> dict[str, Any]:
        raise NotImplementedError

    def bad_credentials(self) -> dict[str, Any]:
        """Settings whose credentials the API refuses."""
        raise NotImplementedError

    def secrets(self) -> list[str]:
        """The credentials that must appear in no log."""
        raise NotImplementedError

    def gzip_results(self) -> None:
        """Make the emulator serve gzip files (named .csv, no Content-Encoding)."""
        raise NotImplementedError

    # Expectations -----------------------------------------------------------------------------

    def replication_key(self, stream: str) -> str | None:
        raise NotImplementedError

    def primary_key(self, stream: str) -> str:
        return "id"

    def field_types(self, stream: str) -> dict[str, str]:
        """Property → the API's declared type."""
        raise NotImplementedError

    def expected_rows(
        self, stream: str, start: str | None = START_DAY, end: str = END_DAY
    ) -> list[dict[str, str | None]]:
        """Property → raw cell of every row an export of [start, end] returns."""
        raise NotImplementedError

    def created_jobs(self) -> list[CreatedJob]:
        raise NotImplementedError

    def api_requests(self) -> list[Any]:
        """The requests the API host answered (the download host's are apart)."""
        return [r for r in self.sb.requests() if r.server == "api"]


class ExportV1Case(DialectCase):
    name = "export_v1"
    streams = ("accounts", "activities", "buying_groups", "campaigns", "opportunities", "people")

    def config(self, **overrides: Any) -> dict[str, Any]:
        return tap_config(self.sb, **{"end_date": END_DATE, **overrides})

    def bad_credentials(self) -> dict[str, Any]:
        return {"access_token": "wrong-token-123456"}

    def secrets(self) -> list[str]:
        return [self.sb.token]

    def gzip_results(self) -> None:
        self.sb.settings.gzip_files = True

    def replication_key(self, stream: str) -> str | None:
        return EXPORT_V1_KEYS.get(stream, "last_modified_date")

    def field_types(self, stream: str) -> dict[str, str]:
        return api_field_types(self.sb)[stream]

    def expected_rows(
        self, stream: str, start: str | None = START_DAY, end: str = END_DAY
    ) -> list[dict[str, str | None]]:
        key = self.replication_key(stream)
        return self.sb.expected_rows(stream, date_field=key, start=start, end=end)

    def created_jobs(self) -> list[CreatedJob]:
        jobs = []
        for request in self.api_requests():
            if request.method != "POST" or not request.path.endswith("/jobs"):
                continue
            window = (request.body.get("filters") or {}).get("date_range") or {}
            jobs.append(
                CreatedJob(
                    request.body["entity_type"],
                    frozenset(request.body["fields"]),
                    window.get("field"),
                    window.get("start"),
                    window.get("end"),
                )
            )
        return jobs


class UapiCase(DialectCase):
    name = "uapi"
    streams = tuple(sorted(UAPI_STREAMS))

    def config(self, **overrides: Any) -> dict[str, Any]:
        base = tap_config(self.sb, end_date=END_DATE)
        del base["access_token"]
        base |= {
            "api_dialect": "uapi",
            "client_id": self.sb.client_id,
            "client_secret": self.sb.client_secret,
            "campaign_sources": ["all"],
            "campaign_report_type": "campaign_summary",
            "creative_report_type": "creative_lifetime",
            "buying_group_account_ids": BUYING_GROUP_ACCOUNTS,
        }
        return base | overrides

    def bad_credentials(self) -> dict[str, Any]:
        return {"client_secret": "wrong-secret-123456"}

    def secrets(self) -> list[str]:
        return [self.sb.client_secret, self.sb.token]

    def gzip_results(self) -> None:
        self.sb.settings.uapi_gzip = True

    def replication_key(self, stream: str) -> str | None:
        if stream in UAPI_FULL_TABLE:
            return None
        return "activity_date" if stream == "activities" else "last_modified_date"

    def primary_key(self, stream: str) -> str:
        return UAPI_KEYS.get(stream, "id")

    def _token(self) -> str:
        body = {"grantType": "client_credentials", "clientId": self.sb.client_id}
        body["clientSecret"] = self.sb.client_secret
        answer = requests.post(self.sb.api_url + "/auth/v1/token", json=body, timeout=10)
        answer.raise_for_status()
        return str(answer.json()["accessToken"])

    def api_fields(self, stream: str) -> dict[str, str]:
        """API name → dataType of a stream's fields, as /fields serves them."""
        entity_type, _ = UAPI_STREAMS[stream]
        params = {"entityType": entity_type}
        if stream == "campaigns":
            params["adReportType"] = "campaign_summary"
        if stream == "creatives":
            params["adReportType"] = "creative_lifetime"
        answer = requests.get(
            self.sb.api_url + "/data/export/v1/fields",
            params=params,
            headers={"Authorization": f"Bearer {self._token()}"},
            timeout=10,
        )
        answer.raise_for_status()
        return {f["name"]: f["dataType"] for f in answer.json()}

    def property_of(self, stream: str, api_name: str) -> str:
        return property_name(UAPI_STREAMS[stream][0], api_name)

    def field_types(self, stream: str) -> dict[str, str]:
        return {self.property_of(stream, n): t for n, t in self.api_fields(stream).items()}

    def expected_rows(
        self,
        stream: str,
        start: str | None = START_DAY,
        end: str = END_DAY,
        *,
        account_ids: list[str] | None = None,
    ) -> list[dict[str, str | None]]:
        names = list(self.api_fields(stream))
        key = self.replication_key(stream)
        body: dict[str, Any] = {"entityType": UAPI_STREAMS[stream][0], "fields": names}
        body["jobName"] = "expected-rows"
        if stream == "campaigns":
            body |= {"adReportType": "campaign_summary", "source": ["all"]}
        if stream == "creatives":
            body |= {"adReportType": "creative_lifetime", "source": ["all"]}
        if stream.startswith("buying_group"):
            body["accountIds"] = [int(n) for n in account_ids or BUYING_GROUP_ACCOUNTS]
        rows: list[dict[str, str | None]] = []
        for window in self._windows(stream, start, end):
            if key is not None and window is not None:
                key_name = next(n for n in names if self.property_of(stream, n) == key)
                first, last = window
                if stream == "activities":
                    body |= {"fromDate": first, "toDate": last}
                else:
                    body["filters"] = [
                        {"field": key_name, "operator": op, "values": [day]}
                        for op, day in (
                            ("Greater Than or Equal To", first),
                            ("Less Than or Equal To", last),
                        )
                    ]
            rows += self.sb.expected_uapi_rows(body)
        return [{self.property_of(stream, n): v for n, v in row.items()} for row in rows]

    def _windows(self, stream: str, start: str | None, end: str) -> list[tuple[str, str] | None]:
        """The API takes activities 90 days at a time; other streams in one range."""
        if self.replication_key(stream) is None or start is None:
            return [None]
        if stream != "activities":
            return [(start, end)]
        windows = []
        first, last = datetime.date.fromisoformat(start), datetime.date.fromisoformat(end)
        while first <= last:
            stop = min(first + datetime.timedelta(days=89), last)
            windows.append((first.isoformat(), stop.isoformat()))
            first = stop + datetime.timedelta(days=1)
        return windows

    def created_jobs(self) -> list[CreatedJob]:
        by_type = {entity: stream for stream, (entity, _) in UAPI_STREAMS.items()}
        jobs = []
        for request in self.api_requests():
            if request.method != "POST" or not request.path.endswith("/data/export/v1/job"):
                continue
            body = request.body
            stream = by_type[body["entityType"]]
            fields = frozenset(self.property_of(stream, n) for n in body["fields"])
            field = start = end = None
            if "fromDate" in body and stream == "activities":
                field, start, end = "activity_date", body["fromDate"], body["toDate"]
            for condition in body.get("filters") or []:
                field = self.property_of(stream, condition["field"])
                if condition["operator"] == "Greater Than or Equal To":
                    start = condition["values"][0]
                if condition["operator"] == "Less Than or Equal To":
                    end = condition["values"][0]
            jobs.append(CreatedJob(stream, fields, field, start, end))
        return jobs


def sandbox_for(dialect: str) -> Sandbox:
    """Return (not started) an emulator of a dialect with the suite's small, fast data; the uapi
    one splits results in several files, as its production API may.
    """
    if dialect == "uapi":
        settings = fast_settings(dialect="uapi", uapi_split_files=True)
        settings.rows = {**settings.rows, **UAPI_ROWS}
        return Sandbox(settings)
    return Sandbox(fast_settings())


CASES: dict[str, type[DialectCase]] = {"export_v1": ExportV1Case, "uapi": UapiCase}
