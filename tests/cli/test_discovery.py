"""Discovery: streams, schemas and metadata from GET /export/v1/entities."""

from __future__ import annotations

import json

import pytest

from tests.support.expected import EXPECTED_SCHEMA, api_field_types
from tests.support.tap import ENTITIES, discover, run_tap, tap_config

#: Discovery and --about run the installed command.
pytestmark = pytest.mark.cli


def _root_metadata(entry):
    return next(m["metadata"] for m in entry["metadata"] if not m["breadcrumb"])


def test_one_stream_per_entity_with_api_types_mapped(sandbox, tmp_path):
    catalog = discover(tmp_path, tap_config(sandbox))
    entries = {entry["tap_stream_id"]: entry for entry in catalog["streams"]}
    assert sorted(entries) == sorted(ENTITIES)
    types = api_field_types(sandbox)
    seen_types = set()
    for entity, fields in types.items():
        properties = entries[entity]["schema"]["properties"]
        assert list(properties) == list(fields)
        for name, api_type in fields.items():
            seen_types.add(api_type)
            expected = EXPECTED_SCHEMA.get(api_type, {"type": ["string", "null"]})
            got = {k: v for k, v in properties[name].items() if k in ("type", "format")}
            assert got == expected, f"{entity}.{name} ({api_type})"
    # The emulator declares every type family, custom fields and an unknown type.
    assert set(EXPECTED_SCHEMA) <= seen_types
    assert any(name.startswith("custom_") for fields in types.values() for name in fields)


def test_metadata_keys_and_valid_replication_keys(sandbox, tmp_path):
    catalog = discover(tmp_path, tap_config(sandbox))
    assert sorted(e["tap_stream_id"] for e in catalog["streams"]) == sorted(ENTITIES)
    for entry in catalog["streams"]:
        root = _root_metadata(entry)
        dates = [
            name
            for name, prop in entry["schema"]["properties"].items()
            if prop.get("format") in ("date", "date-time")
        ]
        assert root["table-key-properties"] == ["id"]
        assert sorted(root["valid-replication-keys"]) == sorted(dates)
        expected_key = (
            "activity_date" if entry["tap_stream_id"] == "activities" else ("last_modified_date")
        )
        assert entry["replication_key"] == expected_key
        assert entry["replication_method"] == "INCREMENTAL"


def test_unknown_field_type_is_a_string_with_one_warning(sandbox, tmp_path):
    run = run_tap(tmp_path, tap_config(sandbox), "--discover")
    assert run.returncode == 0, run.stderr
    types = api_field_types(sandbox)
    unknown = [
        (entity, name, api_type)
        for entity, fields in types.items()
        for name, api_type in fields.items()
        if api_type not in EXPECTED_SCHEMA
    ]
    assert unknown
    for entity, name, api_type in unknown:
        warnings = [
            line
            for line in run.stderr.splitlines()
            if "WARN" in line and f"{entity}.{name}" in line and api_type in line
        ]
        assert len(warnings) == 1, run.stderr


def test_about_lists_the_settings(tmp_path):
    run = run_tap(tmp_path, {}, "--about", "--format=markdown")
    assert run.returncode == 0, run.stderr
    for setting in (
        "api_url",
        "access_token",
        "start_date",
        "end_date",
        "account_list_id",
        "replication_keys",
        "poll_interval_seconds",
        "max_poll_interval_seconds",
        "job_timeout_seconds",
    ):
        assert f"| {setting} |" in run.stdout


def test_python_m_and_config_from_the_environment(sandbox, tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    env.update(
        TAP_DEMANDBASE_API_URL=sandbox.api_url,
        TAP_DEMANDBASE_ACCESS_TOKEN=sandbox.token,
        TAP_DEMANDBASE_START_DATE="2024-01-01T00:00:00Z",
    )
    done = subprocess.run(
        [sys.executable, "-m", "tap_demandbase", "--config=ENV", "--discover"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    catalog = json.loads(done.stdout)
    assert len(catalog["streams"]) == 6
    assert sandbox.token not in done.stderr
