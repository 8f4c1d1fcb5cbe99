"""Settings without a run: each dialect validates the common settings and its own, --about says
which are one dialect's, unknown settings are warnings, clear-text api_urls warn, and each
default is written once.
"""

from __future__ import annotations

import logging

import pytest

from tap_demandbase.config import checked_api_url, unknown_setting_warnings
from tap_demandbase.dialects import DIALECTS
from tap_demandbase.tap import TapDemandbase


def test_each_dialect_validates_the_common_settings_and_its_own_only():
    from tap_demandbase.settings import COMMON_SETTINGS, dialect_schema

    common = {setting.name for setting in COMMON_SETTINGS}
    for dialect in DIALECTS.values():
        own = {setting.name for setting in dialect.settings}
        assert set(dialect_schema(dialect)["properties"]) == common | own
    assert "client_id" not in dialect_schema(DIALECTS["export_v1"])["properties"]
    assert "account_list_id" not in dialect_schema(DIALECTS["uapi"])["properties"]


def test_about_lists_every_setting_and_says_which_are_one_dialects_only():
    properties = TapDemandbase.config_jsonschema["properties"]
    for dialect in DIALECTS.values():
        assert {setting.name for setting in dialect.settings} <= set(properties)
    assert properties["client_id"]["description"].startswith("uapi only: ")
    assert properties["account_list_id"]["description"].startswith("export_v1 only: ")
    assert not properties["access_token"]["description"].startswith(tuple(DIALECTS))
    from tap_demandbase.settings import COMMON_SETTINGS

    for setting in COMMON_SETTINGS:
        if setting.name == "api_dialect":
            continue  # its allowed values are the dialects' names
        description = properties[setting.name].get("description", "")
        assert not any(name in description for name in DIALECTS), setting.name


def test_unknown_setting_warnings_in_process():
    known = TapDemandbase.config_jsonschema["properties"]
    (warning,) = unknown_setting_warnings({"max_concurent_jobs": 2, "api_url": "x"}, known)
    assert "did you mean max_concurrent_jobs?" in warning
    (far,) = unknown_setting_warnings({"zzz": 1}, ["api_url", "start_date"])
    assert "settings are: api_url, start_date." in far


@pytest.mark.parametrize(
    ("url", "warns"),
    [
        ("http://api.demandbase.com", True),
        ("http://10.0.0.5:8080", True),
        ("https://api.demandbase.com", False),
        ("http://127.0.0.1:8734", False),
        ("http://localhost:8734", False),
        ("http://[::1]:8734", False),
    ],
)
def test_api_url_warning(url, warns, caplog):
    with caplog.at_level(logging.WARNING):
        assert checked_api_url(url, logging.getLogger("test-api-url")) == url
    assert ("clear text" in caplog.text) is warns
