"""The dialect contract: what every package in ``dialects/`` must supply, checked for each one
(status words, field types, settings, poll policy, no system clock), plus each dialect's
reading of error answers. A dialect registered in ``DIALECTS`` gets every test here, and its
job's life against its emulator in ``tests/emulator/test_dialect_contract.py``.
"""

from __future__ import annotations

import datetime
import email.utils
import re
from pathlib import Path

import pytest
import requests

from tap_demandbase import dialects
from tap_demandbase.dialects import DIALECTS
from tap_demandbase.dialects.export_v1.errors import classify_error
from tap_demandbase.errors import (
    ApiRequestError,
    AuthError,
    QuotaExceededError,
    TransientApiError,
)
from tap_demandbase.model import (
    REQUIRED_STATES,
    JobState,
)
from tap_demandbase.records.kinds import Kind
from tap_demandbase.sandbox.server import EMULATORS
from tap_demandbase.settings import dialect_schema
from tap_demandbase.transport import retry_after_seconds
from tests.support.dialect_cases import CASES
from tests.support.fakes import FakeClock
from tests.support.sandbox_clients import CLIENTS

#: How code reads the system clock; a dialect reads the engine's clock (``ConnectOptions.clock``).
SYSTEM_CLOCK_READS = re.compile(
    r"\b(?:datetime\.now|datetime\.utcnow|date\.today|time\.(?:time|monotonic|sleep)|"
    r"pendulum\.(?:now|today))\("
)


def _answer(status: int, body: str = "", **headers: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body.encode()
    response.headers.update(headers)
    return response


def test_every_dialect_has_its_emulator_and_its_cases_in_the_tests():
    """The dialects the tests run against are the tap's registry, ``DIALECTS``: each has its
    emulator, its expectations (``tests/support/dialect_cases.py``) and its emulator client.
    """
    assert set(EMULATORS) == set(CASES) == set(CLIENTS) == set(DIALECTS)


def test_status_words_reach_every_state_the_engine_needs(dialect):
    assert set(dialect.statuses.values()) >= REQUIRED_STATES
    assert JobState.UNKNOWN not in dialect.statuses.values()
    for word in dialect.statuses:
        assert word and word == word.strip()


def test_field_types_map_to_known_kinds(dialect):
    assert set(dialect.field_types.values()) == set(Kind)
    for word in dialect.field_types:
        assert word == word.lower()


def test_settings_are_the_dialects_own_and_secrets_are_marked(dialect):
    """The tap checks a dialect's settings with that dialect only: another dialect's user
    does not get them as settings of theirs.
    """
    own = dialect_schema(dialect)["properties"]
    mine = {setting.name for setting in dialect.settings}
    for setting in dialect.settings:
        assert setting.name in own
        if any(word in setting.name for word in ("token", "secret", "password")):
            assert setting.to_dict()[setting.name].get("secret") is True, setting.name
    for other in DIALECTS.values():
        if other is not dialect:
            theirs = {setting.name for setting in other.settings}
            assert not (mine - theirs) & set(dialect_schema(other)["properties"]), other.name


def test_no_dialect_reads_the_system_clock():
    package = Path(dialects.__file__).parent
    reads = [
        f"{path.relative_to(package)}:{number}: {line.strip()}"
        for path in sorted(package.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if SYSTEM_CLOCK_READS.search(line)
    ]
    assert not reads


def test_poll_policy_and_default_keys_are_sane(dialect):
    policy = dialect.poll_policy
    assert 0 < policy.first_interval <= policy.max_interval
    assert policy.timeout > policy.max_interval
    assert dialect.max_concurrent_jobs is None or dialect.max_concurrent_jobs >= 1
    assert dialect.default_replication_key("accounts", ["last_modified_date"]) == (
        "last_modified_date"
    )
    both = ["activity_date", "last_modified_date"]
    assert dialect.default_replication_key("activities", both) == "activity_date"
    assert dialect.default_api_url.startswith("https://")


@pytest.mark.parametrize(
    ("status", "body", "headers", "error"),
    [
        (401, '{"message": "expired"}', {}, AuthError),
        (403, '{"message": "no export permission"}', {}, AuthError),
        (
            429,
            '{"message": "Daily export quota exceeded"}',
            {"Retry-After": "5"},
            QuotaExceededError,
        ),
        (429, '{"message": "slow down"}', {}, QuotaExceededError),  # no Retry-After: a quota
        (429, '{"message": "slow down"}', {"Retry-After": "5"}, TransientApiError),
        (500, "<html>oops</html>", {}, TransientApiError),
        (503, "", {}, TransientApiError),
        (400, '{"message": "unknown field foo"}', {}, ApiRequestError),
        (404, '{"message": "no such job"}', {}, ApiRequestError),
    ],
)
def test_export_v1_classifies_error_answers(status, body, headers, error):
    classified = classify_error(_answer(status, body, **headers), "reading job x")
    assert type(classified) is error
    assert "\n" not in str(classified)
    if status == 400:
        assert "unknown field foo" in str(classified)


def test_quota_error_says_when_it_resets():
    answer = _answer(429, '{"message": "quota", "resets_at": "2024-03-11T00:00:00Z"}')
    assert "2024-03-11T00:00:00Z" in str(classify_error(answer, "creating a job"))


def test_retry_after_as_seconds_and_as_an_http_date():
    now = FakeClock().now().timestamp()
    assert retry_after_seconds(_answer(503, **{"Retry-After": "7"}), now) == 7.0
    later = email.utils.format_datetime(
        datetime.datetime.fromtimestamp(now + 42, datetime.timezone.utc), usegmt=True
    )
    assert retry_after_seconds(_answer(503, **{"Retry-After": later}), now) == 42.0
    past = email.utils.format_datetime(
        datetime.datetime.fromtimestamp(now - 60, datetime.timezone.utc), usegmt=True
    )
    assert retry_after_seconds(_answer(503, **{"Retry-After": past}), now) == 0.0
    assert retry_after_seconds(_answer(503, **{"Retry-After": "soon"}), now) is None
    assert retry_after_seconds(_answer(503), now) is None
