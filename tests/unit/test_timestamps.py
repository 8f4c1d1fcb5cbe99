"""One reading of each kind of moment, whoever reads it: both dialects read their job
timestamps with the same strictness, a date-time setting and a bookmark as ISO 8601, and a
moment of the state as unknown when it cannot be read.
"""

from __future__ import annotations

import datetime

import pytest

from tap_demandbase.dialects.common import InvalidJobJson
from tap_demandbase.dialects.export_v1.wire import job_status_from_json as export_v1_job
from tap_demandbase.dialects.uapi.wire import job_status_from_json as uapi_job
from tap_demandbase.errors import ConfigError
from tap_demandbase.timestamps import (
    api_timestamp,
    parse_setting_datetime,
    rfc3339,
    state_datetime,
    utc_date,
)

UTC = datetime.timezone.utc


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2024-03-10T12:00:00Z", datetime.datetime(2024, 3, 10, 12, tzinfo=UTC)),
        ("2024-03-10t12:00:00z", datetime.datetime(2024, 3, 10, 12, tzinfo=UTC)),
        ("2024-03-10T12:00:00", datetime.datetime(2024, 3, 10, 12, tzinfo=UTC)),
        ("2024-03-10T14:30:00+02:30", datetime.datetime(2024, 3, 10, 12, tzinfo=UTC)),
        ("2024-03-10T12:00:00.1234567Z", datetime.datetime(2024, 3, 10, 12, 0, 0, 123456, UTC)),
    ],
)
def test_an_api_timestamp_is_rfc_3339_in_utc(text, moment):
    assert api_timestamp(text, "created_at") == moment


@pytest.mark.parametrize("value", [None, ""])
def test_an_absent_api_timestamp_is_none(value):
    assert api_timestamp(value, "created_at") is None


@pytest.mark.parametrize("value", ["yesterday", "2024-03-10", "2024-13-45T99:00:00Z", 1710072000])
def test_an_api_timestamp_of_another_form_is_refused_naming_its_key(value):
    with pytest.raises(ValueError, match=r"created_at .* is not an RFC 3339 timestamp"):
        api_timestamp(value, "created_at")


def test_both_dialects_refuse_the_same_unreadable_job_timestamp():
    export_v1 = {"id": "j1", "status": "completed", "created_at": "yesterday"}
    uapi = {"jobId": "j1", "jobStatus": "finished", "createdAt": "yesterday"}
    with pytest.raises(InvalidJobJson, match="created_at 'yesterday' is not an RFC 3339"):
        export_v1_job(export_v1, "reading job j1")
    with pytest.raises(InvalidJobJson, match="createdAt 'yesterday' is not an RFC 3339"):
        uapi_job(uapi, "reading job j1")
    good = "2024-03-10T12:00:00.000Z"
    assert (
        export_v1_job(export_v1 | {"created_at": good}, "x").created_at
        == uapi_job(uapi | {"createdAt": good}, "x").created_at
    )


def test_a_date_setting_is_its_midnight_utc_and_a_bad_one_names_the_setting():
    assert parse_setting_datetime("start_date", "2024-01-02") == datetime.datetime(
        2024, 1, 2, tzinfo=UTC
    )
    with pytest.raises(ConfigError, match="Setting start_date='soon' is not an ISO 8601"):
        parse_setting_datetime("start_date", "soon")


def test_a_bookmark_is_read_as_its_utc_day():
    assert utc_date("2024-01-02T01:00:00+05:00") == datetime.date(2024, 1, 1)
    assert utc_date("2024-01-02") == datetime.date(2024, 1, 2)


def test_a_moment_of_the_state_reads_back_and_an_unreadable_one_is_unknown():
    moment = datetime.datetime(2024, 3, 10, 12, 0, 1, tzinfo=UTC)
    assert state_datetime(rfc3339(moment)) == moment
    assert state_datetime("2024-03-10T12:00:01") == moment
    assert state_datetime("yesterday") is None
    assert state_datetime(None) is None
