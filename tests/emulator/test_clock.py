"""Job times and daily counters of both emulators, over HTTP: a job's server time is exactly what
the knobs say (or a fixed jittered sequence), and the counters count the day ``today`` names.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tap_demandbase.dialects import DIALECTS
from tap_demandbase.sandbox import Sandbox, SandboxSettings
from tap_demandbase.sandbox.jobs import processing_seconds_of
from tests.support.sandbox_clients import CLIENTS, NO_LIMITS, Client, UapiClient, parse_time


def started(dialect: str, **knobs: object) -> Iterator[Client]:
    values: dict[str, object] = {
        "dialect": dialect,
        "rows": {"accounts": 20, "activities": 20},
        "pending_seconds": 0.0,
        "processing_seconds": 0.02,
        "uapi_daily_limits": dict(NO_LIMITS),
        **knobs,
    }
    settings = SandboxSettings()
    settings.update(values)
    with Sandbox(settings) as sb:
        yield CLIENTS[dialect](sb)


@pytest.fixture(params=sorted(DIALECTS))
def client(request: pytest.FixtureRequest) -> Iterator[Client]:
    yield from started(request.param)


@pytest.fixture
def uapi() -> Iterator[Client]:
    yield from started("uapi")


def usage(client: Client) -> dict[str, object]:
    response = requests.get(client.sb.api_url + "/_sandbox/usage", timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- job durations ----------------------------------------------------------------------------


def test_a_jobs_server_time_is_exactly_the_knobs_however_often_it_is_polled(
    client: Client,
) -> None:
    client.set(pending_seconds=0.05, processing_seconds=0.25)
    busy = client.run_job("accounts", poll_every=0.005)
    idle = client.run_job("accounts", poll_every=0.7)  # first seen finished long after
    assert client.job_seconds(busy) == client.job_seconds(idle) == 0.3
    if isinstance(client, UapiClient):  # the list says the same
        listed = client.call("GET", "/jobs", params={"sort": "ascending"}).json()["data"]
        assert [parse_time(j["updatedAt"]) - parse_time(j["createdAt"]) for j in listed] == [
            parse_time(busy["updatedAt"]) - parse_time(busy["createdAt"])
        ] * 2


def test_jitter_varies_each_jobs_time_by_a_fixed_sequence(client: Client) -> None:
    client.set(processing_seconds=0.1, processing_seconds_jitter=0.3)
    seconds = [client.job_seconds(client.run_job("accounts", 0.01)) for _ in range(10)]
    assert seconds == [processing_seconds_of(client.sb.settings, n) for n in range(1, 11)]
    assert all(0.07 <= s <= 0.13 for s in seconds), seconds
    assert len(set(seconds)) >= 6 and max(seconds) - min(seconds) >= 0.03, seconds
    other_seed = SandboxSettings(processing_seconds=0.1, processing_seconds_jitter=0.3, seed=2)
    assert [processing_seconds_of(other_seed, n) for n in range(1, 11)] != seconds


# --- the day the counters count ---------------------------------------------------------------


def test_today_keys_the_daily_call_counters_across_midnight(uapi: Client) -> None:
    uapi.set(today="2024-03-01", uapi_daily_limits={"create": 2})
    assert isinstance(uapi, UapiClient)
    uapi.run_job("accounts", 0.01)
    uapi.run_job("accounts", 0.01)
    refused = uapi.call("POST", "/job", json=uapi.small_job("accounts"))
    assert refused.status_code == 429 and refused.json()["errorCode"] == "429-100"
    assert "resets at 2024-03-02T00:00:00Z" in refused.json()["errorMessage"]
    first_day = usage(uapi)
    assert first_day["day"] == "2024-03-01" and first_day["resets_at"] == "2024-03-02T00:00:00Z"
    counts = first_day["counts"]
    assert isinstance(counts, dict) and counts["create"] == 3 and counts["status"] >= 2

    uapi.set(today="2024-03-02")  # midnight UTC, without waiting for it
    assert usage(uapi)["counts"] == {} and uapi.sb.usage() == {}
    uapi.run_job("accounts", 0.01)
    new_day = usage(uapi)["counts"]
    assert isinstance(new_day, dict) and new_day["create"] == 1
    uapi.set(today="2024-03-01")
    assert usage(uapi)["counts"] == counts  # that day's counts are kept


def test_todays_counters_can_be_set_as_if_people_had_used_the_budget(uapi: Client) -> None:
    assert isinstance(uapi, UapiClient)
    uapi.set(today="2024-03-01", uapi_daily_limits={"create": 60})
    answer = requests.post(
        uapi.sb.api_url + "/_sandbox/usage", json={"counts": {"create": 59}}, timeout=10
    )
    assert answer.status_code == 200 and answer.json()["counts"] == {"create": 59}
    uapi.run_job("accounts", 0.01)
    refused = uapi.call("POST", "/job", json=uapi.small_job("accounts"))
    assert refused.status_code == 429 and refused.json()["errorCode"] == "429-100"
    uapi.sb.set_usage({"create": 0, "status": 299})
    assert uapi.sb.usage() == {"status": 299}
    for bad in ({"counts": {"jobs": 1}}, {"counts": {"create": -1}}, {"create": 1}, []):
        response = requests.post(uapi.sb.api_url + "/_sandbox/usage", json=bad, timeout=10)
        assert response.status_code == 400 and "counts" in response.json()["errorMessage"]
    assert uapi.sb.usage() == {"status": 299}


def test_today_keys_the_daily_export_bytes(client: Client) -> None:
    client.set(today="2024-03-01", quota_bytes=1)
    client.run_job("accounts", 0.01)
    body = client.small_job("accounts")
    refused = client.call("POST", client.create_path, json=body)
    assert refused.status_code == 429, refused.text
    assert "2024-03-02T00:00:00Z" in refused.text
    client.set(today="2024-03-02")
    assert client.call("POST", client.create_path, json=body).status_code == 202
