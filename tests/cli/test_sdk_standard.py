"""The Singer SDK's standard tap tests, run in-process against the emulator.

The SDK builds its test class when the module is imported, with one test per stream and per
property, so it needs the streams then. They come from the catalog the emulator serves at
``GET /export/v1/entities``, read without a server (its own entity catalogue, through the tap's
own reading of that answer); the emulator itself starts in a fixture, for the sync the tests
share, and that sync checks that discovery over HTTP gives the same streams.
"""

from __future__ import annotations

import typing as t

import pytest
from singer_sdk.testing import TapTestRunner, get_tap_test_class

from tap_demandbase.dialects import export_v1
from tap_demandbase.dialects.export_v1.wire import entities_from_json
from tap_demandbase.sandbox import Sandbox
from tap_demandbase.sandbox.entities import ENTITIES
from tap_demandbase.schema import entity_schema
from tap_demandbase.tap import TapDemandbase
from tests.support.tap import fast_settings, tap_config


def _served_catalog() -> dict[str, t.Any]:
    """Return a catalog of every stream the emulator serves, all selected, as the tap reads
    the emulator's entity list.
    """
    settings = fast_settings()
    answer = {"entities": [settings.catalogue_entity(e).to_json() for e in ENTITIES.values()]}
    entities = entities_from_json(answer, "the emulator's entity list")
    return {
        "streams": [
            {
                "tap_stream_id": entity.name,
                "stream": entity.name,
                "schema": entity_schema(entity, export_v1.DIALECT.field_types),
                "metadata": [{"breadcrumb": [], "metadata": {"selected": True}}],
            }
            for entity in entities
        ]
    }


#: What the SDK's factory builds its tests from; never connected (the catalog names the streams),
#: and pointed at a closed port of this machine so that a call would fail at once.
_OFFLINE_CONFIG = {
    "api_url": "http://127.0.0.1:9",
    "access_token": "unused",
    "start_date": "2024-01-01T00:00:00Z",
}
_CATALOG = _served_catalog()

_StandardTests = get_tap_test_class(
    tap_class=TapDemandbase, config=_OFFLINE_CONFIG, catalog=_CATALOG
)


@pytest.fixture(scope="module")
def emulator() -> t.Iterator[Sandbox]:
    with Sandbox(fast_settings()) as sb:
        yield sb


class TestTapDemandbase(_StandardTests):
    """The SDK's tests, against a runner that discovers from the running emulator."""

    @pytest.fixture(scope="class")
    @classmethod
    def runner(cls, emulator: Sandbox) -> TapTestRunner:
        runner = TapTestRunner(
            tap_class=TapDemandbase, config=tap_config(emulator), parse_env_config=True
        )
        discovered = {s.name: s.schema for s in runner.new_tap().streams.values()}
        assert discovered == {s["tap_stream_id"]: s["schema"] for s in _CATALOG["streams"]}
        runner.sync_all()
        return runner
