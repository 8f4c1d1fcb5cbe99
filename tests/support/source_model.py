"""What the source holds now, per entity, from the emulator's own generator: what a full sync must
deliver, so a test can compare a warehouse table with the source exactly.

It reads the live knobs of a sandbox (``sb.settings``): rows deleted or merged away are gone,
changed rows carry their current values, appended rows are there, and the fields are those
discovery lists now (``added_fields``, ``removed_fields``; uapi: ``fields_for``, so its own
extra fields and ``uapi_field_types`` omissions too). Keys are generator field names, which are
the tap's property names in both dialects (``{Account}.id`` of an activity is ``account_id``).

Two caveats a caller handles: uapi's buying-group entities export only the accounts a job names
(filter ``account_id``), and a field alias of ``uapi_alias_fields`` is not listed (its values
are its target's).

Example, after a run::

    source = live_rows(sb.settings, "accounts")
    assert warehouse_ids == set(source)
    assert gone_ids(sb.settings, "accounts") <= soft_deleted_ids
    assert typed_rows(sb.settings, "accounts")["acc-0000001"]["employee_count"] == 212420
"""

from __future__ import annotations

from datetime import date
from typing import Any

from tap_demandbase.sandbox.data import Filters, iter_rows
from tap_demandbase.sandbox.entities import ENTITIES, Entity, Field
from tap_demandbase.sandbox.settings import CommonSettings
from tap_demandbase.sandbox.uapi.catalog import ENTITY_TYPES, fields_for, live_entity
from tap_demandbase.sandbox.uapi.settings import UapiSettings
from tests.support.expected import expected_value

Cells = dict[str, str | None]


def field_types(
    settings: CommonSettings, entity: str, dialect: str = "export_v1"
) -> dict[str, str]:
    """Return field -> its type word (the generator's, as export_v1 serves it) of the fields a
    full sync of ``entity`` exports now.
    """
    data, names = _live(settings, entity, dialect)
    return {name: _field(data, name).type for name in names}


def live_rows(
    settings: CommonSettings, entity: str, dialect: str = "export_v1"
) -> dict[str, Cells]:
    """Return row id -> {field: raw CSV cell (None: empty)} of every live row, as now."""
    data, names = _live(settings, entity, dialect)
    rows = iter_rows(settings, data, names, Filters())
    out = {}
    for cells in rows:
        row = dict(zip(names, cells, strict=True))
        out[str(row["id"])] = row
    return out


def typed_rows(
    settings: CommonSettings, entity: str, dialect: str = "export_v1"
) -> dict[str, dict[str, Any]]:
    """Return :func:`live_rows` with each cell as the value the tap must emit for its type
    (``tests/support/expected.py``: int, float, bool, a UTC datetime, text, or None).
    """
    types = field_types(settings, entity, dialect)
    return {
        row_id: {name: expected_value(types[name], cell) for name, cell in row.items()}
        for row_id, row in live_rows(settings, entity, dialect).items()
    }


def gone_ids(settings: CommonSettings, entity: str) -> set[str]:
    """Return the ids of rows that existed and are gone now: deleted, or merged into another."""
    return set(settings.deleted_rows.get(entity, [])) | set(settings.merged_rows.get(entity, {}))


def modified_since(settings: CommonSettings, entity: str, day: date) -> set[str]:
    """Return the ids of live rows whose ``last_modified_date`` is on ``day`` or later (UTC):
    what an incremental export from that day holds.
    """
    rows = iter_rows(settings, ENTITIES[entity], ["id"], Filters("last_modified_date", day))
    return {str(cells[0]) for cells in rows}


def _live(settings: CommonSettings, entity: str, dialect: str) -> tuple[Entity, list[str]]:
    """Return the generator entity (with its added fields) and the field names a full sync of
    ``entity`` exports now in ``dialect``.
    """
    if dialect == "export_v1":
        data = settings.catalogue_entity(ENTITIES[entity])
        return data, data.field_names
    uapi = UapiSettings.of(settings)
    entity_type = next(e for e in ENTITY_TYPES.values() if e.data.name == entity)
    fields = fields_for(entity_type, uapi)
    aliases = set(uapi.uapi_alias_fields.get(entity_type.entity_type, {}))
    names = [f.source for f in fields if f.name not in aliases]
    return live_entity(entity_type, uapi).data, list(dict.fromkeys(names))


def _field(data: Entity, name: str) -> Field:
    found = data.field(name)
    assert found is not None, f"{data.name} has no field {name}"
    return found
