"""The dialect contract: what every package in ``dialects/`` must supply, checked for each one,
plus each dialect's reading of error answers. A dialect registered in ``DIALECTS`` runs every
test here against its emulator, with the settings its case gives
(``tests/support/dialect_cases.py``).
"""

from __future__ import annotations

import csv
import gzip
import io
import logging

import pytest

from tap_demandbase.dialects import DIALECTS, ConnectOptions, Dialect
from tap_demandbase.engine.clock import SystemClock
from tap_demandbase.engine.jobs import ExportJob
from tap_demandbase.model import (
    CancelsJobs,
    JobSpec,
    JobState,
    ListsJobs,
    PollPolicy,
    cancel_verb,
    listing_verb,
)
from tests.support.dialect_cases import CASES, sandbox_for


@pytest.fixture(params=sorted(DIALECTS))
def dialect(request) -> Dialect:
    return DIALECTS[request.param]


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


# --- export_v1's reading of error answers ---------------------------------------------------
