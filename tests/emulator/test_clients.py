"""Each dialect's client against its emulator: a job's life from create to its parts (for every
dialect in ``DIALECTS``, with the settings ``tests/support/dialect_cases.py`` gives), and the
uapi client on a fake clock: each failure tried again as its retry says, the token renewed
near its expiry and once after a 401, refused credentials one token request and one line.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import logging
from typing import Any

import pytest
import requests

from tap_demandbase.dialects import ConnectOptions
from tap_demandbase.dialects.uapi.auth import ClientCredentials
from tap_demandbase.dialects.uapi.errors import classify_error
from tap_demandbase.dialects.uapi.usage import CallUsage
from tap_demandbase.dialects.uapi.wire import FIELDS_PATH
from tap_demandbase.engine.clock import SystemClock
from tap_demandbase.engine.jobs import ExportJob
from tap_demandbase.errors import (
    ApiRequestError,
    AuthError,
    QuotaExceededError,
)
from tap_demandbase.model import (
    CancelsJobs,
    JobSpec,
    JobState,
    ListsJobs,
    PollPolicy,
    cancel_verb,
    listing_verb,
)
from tap_demandbase.sandbox import Sandbox
from tap_demandbase.transport import Transport
from tests.support.dialect_cases import CASES, sandbox_for
from tests.support.fakes import FakeClock
from tests.support.tap import fast_settings


def test_a_job_goes_from_create_to_its_parts(dialect, tmp_path):
    """The life the engine relies on, against the dialect's emulator: entities, a job created
    and polled to completed, part locations opened, a job found again by its spec.
    """
    with sandbox_for(dialect.name) as sb:
        clock = SystemClock()
        options = ConnectOptions(user_agent="contract-test", download_stall_seconds=10, clock=clock)
        connection = dialect.connect(CASES[dialect.name](sb).config(), sb.api_url, options)
        api = connection.api
        entities = {e.name: e for e in api.list_entities()}
        assert "accounts" in entities
        fields = tuple(f.name for f in entities["accounts"].fields)[:3]
        filters = api.job_filters("accounts")
        assert filters and all(isinstance(f, tuple) for f in filters)
        spec = JobSpec("accounts", fields, filters=filters[0])
        policy = PollPolicy(first_interval=0.05, max_interval=0.2, timeout=30)
        job = ExportJob(api, spec, policy, logging.getLogger("contract"), clock)
        job.create()
        status = job.wait_until_completed()
        assert status.state is JobState.COMPLETED
        locations = api.part_locations(status)
        assert [loc.number for loc in locations] == list(range(1, len(locations) + 1))
        rows = 0
        for location in locations:
            with connection.opener.open_location(location, what="contract test") as body:
                assert body.status == 200
                data = b"".join(body.chunks)
            text = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode()
            rows += len(list(csv.reader(io.StringIO(text)))) - 1
        assert rows == 120
        assert api.part_locations(status, fresh=True)[0].number == 1
        assert api.unlisted_part(status, len(locations) + 1) is None  # it said how many
        # An optional verb is there exactly when the capabilities say so.
        assert isinstance(api, ListsJobs) == api.capabilities.can_list_jobs
        assert isinstance(api, CancelsJobs) == api.capabilities.can_cancel
        if (listing := listing_verb(api)) is not None:
            found = listing.find_equivalent_job(spec)
            assert found is not None and found.id == status.id
        if (cancel := cancel_verb(api)) is not None:
            assert cancel.cancel_job(status.id) is None  # finished: nothing to cancel


def test_each_failure_is_tried_again_as_its_retry_says():
    with Sandbox(fast_settings(dialect="uapi")) as sb:
        usage = CallUsage()
        waits: list[float] = []
        auth = ClientCredentials(
            sb.api_url, sb.client_id, sb.client_secret, user_agent="test", clock=SystemClock()
        )
        transport = Transport(
            sb.api_url,
            auth,
            classify=functools.partial(
                classify_error, renewable=True, clock=SystemClock(), usage=usage
            ),
            user_agent="test",
            on_send=usage.count_request,
            sleep=waits.append,
        )

        def fields() -> Any:
            params = {"entityType": "account"}
            return transport.request_json("GET", FIELDS_PATH, params=params, what="fields")

        sb.settings.uapi_rate_limited = {"fields": 1}  # momentary: one more try after 3 s
        assert fields()[0] == 200 and waits == [3.0]
        sb.settings.uapi_rate_limited = {"fields": -1}  # spent: the second refusal ends it
        with pytest.raises(QuotaExceededError, match="daily limit of 60 fields calls"):
            fields()
        assert waits == [3.0, 3.0] and sb.usage()["fields"] == 4 == usage.get("fields")
        sb.settings.uapi_rate_limited = {}
        sb.settings.http_errors = {"fields": -1}  # a 503: the transport's five retries
        with pytest.raises(ApiRequestError, match="Gave up on fields after 6 tries"):
            fields()
        assert len(waits) == 2 + 5 and all(0 <= w <= 16 for w in waits[2:])


def test_a_token_is_kept_renewed_near_its_expiry_and_once_after_a_401():
    with Sandbox(fast_settings(dialect="uapi", uapi_token_ttl_seconds=100)) as sb:
        clock = FakeClock()
        counted: list[int] = []
        auth = ClientCredentials(
            sb.api_url,
            sb.client_id,
            sb.client_secret,
            user_agent="test",
            on_token_request=lambda: counted.append(1),
            clock=clock,
        )
        session = requests.Session()
        session.auth = auth
        url = sb.api_url + "/data/export/v1/fields?entityType=account"

        def call() -> int:
            return session.get(url, timeout=10).status_code

        assert call() == 200 and len(counted) == 1
        clock.advance(49)  # renewed within min(15 min, half its lifetime) of expiry: at 50 s
        assert call() == 200 and len(counted) == 1
        clock.advance(2)
        assert call() == 200 and len(counted) == 2
        assert auth.renew() and len(counted) == 3
        tokens = [r for r in sb.requests() if r.path == "/auth/v1/token"]
        assert [r.body["grantType"] for r in tokens] == ["client_credentials"] * 3
        assert all(r.body["clientSecret"] == "<redacted>" for r in tokens)  # sent as JSON


def test_refused_credentials_are_one_token_request_and_a_line_naming_them():
    with Sandbox(fast_settings(dialect="uapi")) as sb:
        auth = ClientCredentials(
            sb.api_url, sb.client_id, "wrong-secret", user_agent="t", clock=SystemClock()
        )
        with pytest.raises(AuthError, match="client_id and client_secret"):
            requests.get(sb.api_url + "/data/export/v1/fields", auth=auth, timeout=10)
        assert len([r for r in sb.requests() if r.path == "/auth/v1/token"]) == 1
