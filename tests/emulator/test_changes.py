"""The source changing between runs, on both emulators over HTTP: deleted, merged, updated,
restated and appended rows; fields removed and added; and the source model tests compare with.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
import requests

from tap_demandbase.dialects import DIALECTS
from tap_demandbase.sandbox import Sandbox, SandboxSettings
from tap_demandbase.sandbox.tap_config import tap_config
from tests.support import source_model
from tests.support.sandbox_clients import (
    CLIENTS,
    NO_LIMITS,
    Client,
    ExportV1Client,
    Row,
    UapiClient,
)

ROWS = {"accounts": 30, "people": 20, "activities": 40}
#: After every generated row (data_start 2024-01-01 + 90 days).
DATA_END = date(2024, 3, 31)


@pytest.fixture(params=sorted(DIALECTS))
def client(request: pytest.FixtureRequest) -> Iterator[Client]:
    settings = SandboxSettings(
        dialect=request.param,
        rows=dict(ROWS),
        rows_per_part=12,
        pending_seconds=0.01,
        processing_seconds=0.02,
        uapi_daily_limits=dict(NO_LIMITS),
    )
    with Sandbox(settings) as sb:
        yield CLIENTS[request.param](sb)


def by_id(rows: list[Row]) -> dict[str, Row]:
    out = {row["id"]: row for row in rows}
    assert len(out) == len(rows), "an id was exported twice"
    return out


def differing(before: Row, after: Row) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def as_cells(rows: dict[str, source_model.Cells]) -> dict[str, Row]:
    return {i: {k: v or "" for k, v in row.items()} for i, row in rows.items()}


# --- deletes and merges -----------------------------------------------------------------------


def test_deleted_rows_leave_every_export_and_come_back_unchanged(client: Client) -> None:
    before = by_id(client.export("accounts"))
    assert len(before) == 30
    gone = ["acc-0000007", "acc-0000012"]
    client.set(deleted_rows={"accounts": gone})
    during = by_id(client.export("accounts"))
    assert sorted(set(before) - set(during)) == gone
    assert all(during[i] == before[i] for i in during)  # nobody else changed
    window = client.export("accounts", since=date(2024, 1, 15))  # rows 7 and 12 are in it
    assert not set(gone) & {row["id"] for row in window}

    client.set(deleted_rows={})
    assert by_id(client.export("accounts")) == before  # back, with the same values and dates
    newest = max(before.values(), key=lambda row: row["id"])
    recent = client.export("accounts", since=date(2024, 3, 25))
    assert newest["id"] in {row["id"] for row in recent}
    assert not set(gone) & {row["id"] for row in recent}  # no incremental run sees them again


def test_a_merge_removes_the_merged_row_and_changes_the_survivor(client: Client) -> None:
    before = by_id(client.export("accounts"))
    client.set(merged_rows={"accounts": {"acc-0000009": "acc-0000003@2024-04-02T08:00:00Z"}})
    after = by_id(client.export("accounts"))
    assert set(before) - set(after) == {"acc-0000009"}
    survivor = after["acc-0000003"]
    changed = differing(before["acc-0000003"], survivor)
    assert "last_modified_date" in changed and len(changed) >= 6, changed
    assert not {"id", "created_date"} & changed
    assert survivor["last_modified_date"] == "2024-04-02T08:00:00Z"
    assert all(after[i] == before[i] for i in after if i != "acc-0000003")
    assert [row["id"] for row in client.export("accounts", since=date(2024, 4, 2))] == [
        "acc-0000003"
    ]
    # Without an instant the survivor moves to the end of the data span, after every row.
    client.set(merged_rows={"accounts": {"acc-0000009": "acc-0000003"}})
    moved = by_id(client.export("accounts", since=DATA_END))
    assert list(moved) == ["acc-0000003"]
    assert moved["acc-0000003"]["last_modified_date"].startswith("2024-03-31")
    assert differing(survivor, moved["acc-0000003"]) == {"last_modified_date"}  # same merge


# --- updates and restatements -----------------------------------------------------------------


def test_an_update_moves_the_row_to_its_instant_with_values_of_that_instant(
    client: Client,
) -> None:
    before = by_id(client.export("accounts"))
    client.set(updated_rows={"accounts": {"acc-0000005": "2024-04-10T12:30:00Z"}})
    seen = client.export("accounts", since=date(2024, 4, 10))
    assert [row["id"] for row in seen] == ["acc-0000005"]
    first = seen[0]
    assert first["last_modified_date"] == "2024-04-10T12:30:00Z"
    assert len(differing(before["acc-0000005"], first)) >= 6
    assert first["created_date"] == before["acc-0000005"]["created_date"]
    client.set(updated_rows={"accounts": {"acc-0000005": "2024-04-11T00:00:00Z"}})
    second = by_id(client.export("accounts", since=date(2024, 4, 10)))["acc-0000005"]
    assert len(differing(first, second)) >= 6  # another update, other values
    client.set(updated_rows={"accounts": {"acc-0000005": "2024-04-10T12:30:00Z"}})
    assert by_id(client.export("accounts"))["acc-0000005"] == first  # a pure function of it


def test_a_restated_activity_changes_only_in_a_re_export_of_its_window(client: Client) -> None:
    window = (date(2024, 1, 1), date(2024, 1, 31))
    before = by_id(client.export("activities", window=window))
    target = "act-0000004"
    assert target in before
    client.set(restated_rows={"activities": {target: 1}})
    after = by_id(client.export("activities", window=window))
    assert set(after) == set(before)
    changed = differing(before[target], after[target])
    assert len(changed) >= 4, changed
    assert not {"id", "activity_date", "created_date", "last_modified_date"} & changed
    assert all(after[i] == before[i] for i in after if i != target)
    if client.dialect == "export_v1":  # an incremental export on last_modified_date misses it
        recent = client.export("activities", since=date(2024, 3, 1))
        assert target not in {row["id"] for row in recent}
    client.set(restated_rows={"activities": {target: 2}})
    again = by_id(client.export("activities", window=window))[target]
    assert (
        differing(after[target], again)
        and again["activity_date"] == before[target]["activity_date"]
    )


# --- rows added -------------------------------------------------------------------------------


def test_appended_rows_leave_the_others_alone_and_are_all_an_incremental_run_sees(
    client: Client,
) -> None:
    accounts = by_id(client.export("accounts"))
    people = by_id(client.export("people"))
    client.set(appended_rows={"accounts": {"2024-04-05T09:00:00Z": 3, "2024-04-06T00:00:00Z": 1}})
    after = by_id(client.export("accounts"))
    new = sorted(set(after) - set(accounts))
    assert new == ["acc-0000031", "acc-0000032", "acc-0000033", "acc-0000034"]
    assert all(after[i] == accounts[i] for i in accounts)
    assert by_id(client.export("people")) == people  # references to accounts unchanged
    stamps = [after[i]["last_modified_date"] for i in new]
    assert stamps == ["2024-04-05T09:00:00Z"] * 3 + ["2024-04-06T00:00:00Z"]
    assert sorted(row["id"] for row in client.export("accounts", since=date(2024, 4, 5))) == new
    assert [row["id"] for row in client.export("accounts", since=date(2024, 4, 6))] == new[-1:]

    client.set(appended_rows={"activities": {"2024-04-05T09:00:00Z": 2}})
    late = client.export("activities", window=(date(2024, 4, 1), date(2024, 4, 30)))
    assert [row["id"] for row in late] == ["act-0000041", "act-0000042"]
    assert {row["activity_date"] for row in late} == {"2024-04-05T09:00:00Z"}


def test_raising_rows_re_spreads_timestamps_which_appending_does_not(client: Client) -> None:
    before = by_id(client.export("accounts"))
    client.set(rows={**ROWS, "accounts": 31})
    raised = by_id(client.export("accounts"))
    assert {i: raised[i]["name"] for i in before} == {i: r["name"] for i, r in before.items()}
    moved = [
        i for i in before if raised[i]["last_modified_date"] != before[i]["last_modified_date"]
    ]
    assert len(moved) > 20  # hence appended_rows


# --- fields that come and go ------------------------------------------------------------------


def test_a_removed_field_leaves_discovery_and_a_job_naming_it_is_refused(client: Client) -> None:
    before = by_id(client.export("accounts"))
    names = client.field_names("accounts")
    industry = "industry" if client.dialect == "export_v1" else "{Account}.industry"
    tier = "custom_tier__c" if client.dialect == "export_v1" else "{Account}.Custom_Tier__c"
    assert {industry, tier} <= set(names)
    client.set(removed_fields={"accounts": ["industry", "custom_tier__c"]})
    assert client.field_names("accounts") == [n for n in names if n not in (industry, tier)]
    status, code, message = client.refuse("accounts", [names[0], industry, tier])
    if client.dialect == "export_v1":
        assert (status, code) == (400, "invalid_field")
        assert message == "Unknown field(s) for entity accounts: industry, custom_tier__c"
    else:
        assert (status, code) == (400, "400-115")
        assert message == "Invalid field names: {Account}.industry, {Account}.Custom_Tier__c"
    after = by_id(client.export("accounts"))  # a job naming no fields: the others, unchanged
    assert after == {
        i: {k: v for k, v in row.items() if k not in ("industry", "custom_tier__c")}
        for i, row in before.items()
    }
    client.set(removed_fields={})
    assert client.field_names("accounts") == names
    assert by_id(client.export("accounts")) == before


def test_an_added_field_is_discovered_and_exported_with_values(client: Client) -> None:
    before = by_id(client.export("accounts"))
    client.set(added_fields={"accounts": {"tier": "string", "lead_score": "integer"}})
    names = client.field_names("accounts")
    if isinstance(client, ExportV1Client):
        assert names[-2:] == ["tier", "lead_score"]
        types = client.field_types("accounts")
        assert (types["tier"], types["lead_score"]) == ("string", "integer")
    else:
        assert isinstance(client, UapiClient)
        fields = {f["name"]: f for f in client.fields("accounts")}
        assert names[-2:] == ["{Account}.tier", "{Account}.leadScore"]
        assert fields["{Account}.tier"]["dataType"] == "String"
        assert fields["{Account}.leadScore"]["dataType"] == "Integer"
    after = by_id(client.export("accounts"))
    assert {i: {k: row[k] for k in before[i]} for i, row in after.items()} == before
    scores = [row["lead_score"] for row in after.values()]
    assert all(s == "" or s.isdigit() for s in scores) and len(set(scores)) > 10
    assert sum(bool(row["tier"]) for row in after.values()) >= 20
    assert by_id(client.export("accounts", fields=["id", "tier"])) == {
        i: {"id": i, "tier": row["tier"]} for i, row in after.items()
    }


# --- the source model -------------------------------------------------------------------------


def test_the_source_model_is_what_a_full_export_delivers_after_every_change(
    client: Client,
) -> None:
    settings = client.sb.settings
    client.set(
        deleted_rows={"accounts": ["acc-0000002"]},
        merged_rows={"accounts": {"acc-0000004": "acc-0000005@2024-04-01T00:00:00Z"}},
        updated_rows={"accounts": {"acc-0000006": "2024-04-02T00:00:00Z"}},
        restated_rows={"activities": {"act-0000003": 1}},
        appended_rows={"accounts": {"2024-04-03T00:00:00Z": 2}},
        added_fields={"accounts": {"tier": "picklist"}},
        removed_fields={"accounts": ["phone"]},
    )
    model = source_model.live_rows(settings, "accounts", client.dialect)
    assert as_cells(model) == by_id(client.export("accounts"))
    assert "tier" in model["acc-0000001"] and "phone" not in model["acc-0000001"]
    assert source_model.gone_ids(settings, "accounts") == {"acc-0000002", "acc-0000004"}
    assert not source_model.gone_ids(settings, "accounts") & set(model)
    assert source_model.modified_since(settings, "accounts", date(2024, 4, 1)) == {
        "acc-0000005",
        "acc-0000006",
        "acc-0000031",
        "acc-0000032",
    }
    activities = source_model.live_rows(settings, "activities", client.dialect)
    window = (date(2024, 1, 1), date(2024, 3, 30))
    assert as_cells(activities) == by_id(client.export("activities", window=window))
    typed = source_model.typed_rows(settings, "accounts", client.dialect)
    assert set(typed) == set(model)
    counts = [row["employee_count"] for row in typed.values()]
    assert all(isinstance(n, int) for n in counts if n is not None) and any(counts)
    assert typed["acc-0000006"]["last_modified_date"].isoformat() == "2024-04-02T00:00:00+00:00"


def test_the_tap_config_reaches_the_latest_change(client: Client) -> None:
    assert tap_config(client.sb)["end_date"] == "2024-03-30T00:00:00Z"
    client.set(updated_rows={"people": {"per-0000001": "2024-05-02T10:00:00Z"}})
    assert tap_config(client.sb)["end_date"] == "2024-05-02T00:00:00Z"


# --- the knobs refuse what they cannot mean -------------------------------------------------


@pytest.mark.parametrize(
    ("knobs", "mentions"),
    [
        ({"deleted_rows": {"accounts": ["ACC-000007"]}}, "ACC-000007"),
        ({"deleted_rows": {"accounts": ["per-0000001"]}}, "acc-0000001"),
        ({"deleted_rows": {"accounts": ["acc-0000031"]}}, "30 rows"),
        ({"deleted_rows": {"leads": ["acc-0000001"]}}, "leads"),
        ({"deleted_rows": {"accounts": "acc-0000001"}}, "arrays"),
        ({"merged_rows": {"accounts": {"acc-0000001": "acc-0000001"}}}, "itself"),
        ({"merged_rows": {"accounts": {"acc-0000001": "acc-0000002@tomorrow"}}}, "tomorrow"),
        ({"updated_rows": {"accounts": {"acc-0000001": "2024-04-01"}}}, "2024-04-01"),
        ({"updated_rows": {"accounts": {"acc-0000001": "2024-04-01T10:00:00"}}}, "instant"),
        ({"restated_rows": {"activities": {"act-0000001": 0}}}, "revisions"),
        ({"appended_rows": {"accounts": {"soon": 2}}}, "soon"),
        ({"appended_rows": {"accounts": {"2024-04-01T00:00:00Z": -1}}}, "negative"),
        ({"added_fields": {"accounts": {"industry": "string"}}}, "industry"),
        ({"added_fields": {"accounts": {"Tier": "string"}}}, "snake_case"),
        ({"added_fields": {"accounts": {"tier": "enum"}}}, "enum"),
        ({"removed_fields": {"accounts": ["nope"]}}, "nope"),
        ({"processing_seconds_jitter": 1.5}, "processing_seconds_jitter"),
        ({"today": "yesterday"}, "YYYY-MM-DD"),
    ],
)
def test_change_knobs_refuse_what_they_cannot_mean(knobs: dict[str, object], mentions: str) -> None:
    with Sandbox(SandboxSettings(rows=dict(ROWS))) as sb:
        response = requests.post(sb.api_url + "/_sandbox/settings", json=knobs, timeout=10)
        assert response.status_code == 400, response.text
        assert mentions in response.json()["message"]
        assert sb.settings.deleted_rows == {} and sb.settings.added_fields == {}


def test_removed_fields_may_name_a_uapi_only_field_and_an_added_one() -> None:
    settings = SandboxSettings(dialect="uapi", rows=dict(ROWS))
    settings.update(
        {
            "added_fields": {"accounts": {"tier": "string"}},
            "removed_fields": {"accounts": ["sfdc_id", "tier"]},
        }
    )
    with Sandbox(settings) as sb:
        names = CLIENTS["uapi"](sb).field_names("accounts")
        assert "{Account}.sfdcID" not in names and "{Account}.tier" not in names
        assert "{Account}.engagementMinutesLast7Day" in names
