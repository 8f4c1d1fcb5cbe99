"""What the tap must emit for the emulator's rows, computed independently of the tap's code."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pendulum
import requests

INTEGER = {"integer", "int", "long", "bigint"}
NUMBER = {"number", "float", "double", "decimal", "currency", "percent"}
BOOLEAN = {"boolean", "bool"}
DATETIME = {"datetime", "date-time", "timestamp"}


def api_field_types(sb: Any) -> dict[str, dict[str, str]]:
    """Entity → field → the API's declared type, as the emulator serves it."""
    response = requests.get(
        f"{sb.api_url}/export/v1/entities",
        headers={"Authorization": f"Bearer {sb.token}"},
        timeout=10,
    )
    response.raise_for_status()
    return {
        entity["name"]: {f["name"]: f["type"] for f in entity["fields"]}
        for entity in response.json()["entities"]
    }


def expected_value(api_type: str, raw: str | None) -> Any:
    if raw is None or raw == "":
        return None
    kind = api_type.lower()
    if kind in INTEGER:
        return int(raw)
    if kind in NUMBER:
        return float(raw)
    if kind in BOOLEAN:
        assert raw.lower() in {"true", "false", "1", "0"}, raw
        return raw.lower() in {"true", "1"}
    if kind in DATETIME:
        return pendulum.parse(raw, tz="UTC")
    return raw


def assert_same_value(api_type: str, raw: str | None, emitted: Any, where: str) -> None:
    expected = expected_value(api_type, raw)
    if api_type.lower() in DATETIME and expected is not None:
        assert isinstance(emitted, str), where
        assert emitted.endswith(("+00:00", "Z")), f"{where}: {emitted} is not UTC"
        assert pendulum.parse(emitted) == expected, f"{where}: {emitted} != {raw}"
        return
    assert emitted == expected, f"{where}: emitted {emitted!r}, expected {expected!r} from {raw!r}"
    assert type(emitted) is type(expected), f"{where}: {type(emitted)} vs {type(expected)}"


def assert_records_match(
    entity: str,
    emitted: list[dict[str, Any]],
    raw_rows: list[dict[str, str | None]],
    types: dict[str, str],
    fields: list[str] | None = None,
    key: str = "id",
) -> None:
    """Every emulator row arrives once, with every (selected) field's value exactly typed."""
    by_id = {record[key]: record for record in emitted}
    assert len(by_id) == len(emitted), f"{entity}: duplicate ids emitted"
    assert sorted(by_id) == sorted(row[key] for row in raw_rows), f"{entity}: ids differ"
    for row in raw_rows:
        record = by_id[row[key]]
        names = fields if fields is not None else list(types)
        assert set(record) == set(names), f"{entity} {row[key]}: keys {sorted(record)}"
        for name in names:
            assert_same_value(types[name], row[name], record[name], f"{entity}.{name} {row[key]}")


def snake(name: str) -> str:
    """The uapi property-name rule (snake case), written independently of the tap."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return re.sub(r"(?<=[A-Z])(?=[A-Z][a-z])", "_", text).lower()


def property_name(entity_type: str, name: str) -> str:
    """The property a uapi field becomes: its own fields bare, another entity's prefixed."""
    owner, _, bare = name.rpartition(".")
    own = entity_type[0].upper() + entity_type[1:]
    if owner and owner.strip("{}") != own:
        return snake(owner.strip("{}")) + "_" + snake(bare)
    return snake(bare)


#: The JSON Schema each API field type becomes (by families of type names).
FAMILIES = {
    ("string", "text", "id", "reference", "picklist", "email", "url", "phone"): {
        "type": ["string", "null"]
    },
    ("integer", "int", "long", "bigint"): {"type": ["integer", "null"]},
    ("number", "float", "double", "decimal", "currency", "percent"): {"type": ["number", "null"]},
    ("boolean", "bool"): {"type": ["boolean", "null"]},
    ("date",): {"type": ["string", "null"], "format": "date"},
    ("datetime", "date-time", "timestamp"): {"type": ["string", "null"], "format": "date-time"},
}
EXPECTED_SCHEMA = {name: schema for names, schema in FAMILIES.items() for name in names}


def utc_day(text: str) -> datetime.date:
    """The UTC day of a date or date-time as the emulators write them (a naive one is UTC)."""
    if len(text) == 10:
        return datetime.date.fromisoformat(text)
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).date()
