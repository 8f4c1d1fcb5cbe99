"""Field types → JSON Schema.

Each dialect maps its API's type words to a value kind (``records.kinds.Kind``), which gives the
field its JSON Schema. A type word the dialect does not know becomes a string with a warning
rather than a failure: a new type on Demandbase's side (tenants add custom fields) must not stop
anyone's pipeline.
"""

from __future__ import annotations

import logging
import typing as t

from tap_demandbase.records.kinds import DATE_KINDS, Kind

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from tap_demandbase.model import EntityInfo

logger = logging.getLogger("tap-demandbase.schema")


def property_schema(
    entity: str, field: str, api_type: str, field_types: Mapping[str, Kind]
) -> dict[str, t.Any]:
    """Return the nullable JSON Schema of one field, warning for a type the dialect does not
    know.
    """
    kind = field_types.get(api_type.strip().lower())
    if kind is None:
        logger.warning(
            "Field '%s.%s' has type '%s', which the tap does not know: it is read as a string.",
            entity,
            field,
            api_type,
        )
        kind = Kind.STRING
    return kind.json_schema


def entity_schema(entity: EntityInfo, field_types: Mapping[str, Kind]) -> dict[str, t.Any]:
    """Return the JSON Schema of an entity's records."""
    return {
        "type": "object",
        "properties": {
            f.name: {
                **property_schema(entity.name, f.name, f.type, field_types),
                **_description(f.description),
            }
            for f in entity.fields
        },
    }


def _description(text: str) -> dict[str, str]:
    return {"description": text} if text else {}


_DATE_FORMATS = {kind.json_schema["format"] for kind in DATE_KINDS}


def is_date_property(prop: dict[str, t.Any]) -> bool:
    """Whether a property holds a date or date-time (and so can be a replication key)."""
    return prop.get("format") in _DATE_FORMATS


def date_fields(schema: dict[str, t.Any]) -> list[str]:
    """Return the names of the date and date-time properties, in schema order."""
    return [name for name, prop in schema.get("properties", {}).items() if is_date_property(prop)]
