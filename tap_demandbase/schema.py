"""API field types → JSON Schema.

The API's field ``type`` is free text and tenants add custom fields, so the mapping is by
family of names, and anything unknown becomes a string with a warning rather than a failure:
a new type on Demandbase's side must not stop anyone's pipeline.
"""

from __future__ import annotations

import logging
import typing as t

if t.TYPE_CHECKING:
    from tap_demandbase.api import EntityInfo

logger = logging.getLogger("tap-demandbase.schema")

_STRING = ("string", "text", "id", "reference", "picklist", "email", "url", "phone")
_INTEGER = ("integer", "int", "long", "bigint")
_NUMBER = ("number", "float", "double", "decimal", "currency", "percent")
_BOOLEAN = ("boolean", "bool")
_DATE = ("date",)
_DATETIME = ("datetime", "date-time", "timestamp")

_SCHEMAS: dict[str, dict[str, t.Any]] = {
    **{name: {"type": ["string", "null"]} for name in _STRING},
    **{name: {"type": ["integer", "null"]} for name in _INTEGER},
    **{name: {"type": ["number", "null"]} for name in _NUMBER},
    **{name: {"type": ["boolean", "null"]} for name in _BOOLEAN},
    **{name: {"type": ["string", "null"], "format": "date"} for name in _DATE},
    **{name: {"type": ["string", "null"], "format": "date-time"} for name in _DATETIME},
}


def property_schema(entity: str, field: str, api_type: str) -> dict[str, t.Any]:
    """Return the nullable JSON Schema of one field, warning once for an unknown type."""
    known = _SCHEMAS.get(api_type.strip().lower())
    if known is None:
        logger.warning(
            "Field '%s.%s' has type '%s', which the tap does not know: it is read as a string.",
            entity,
            field,
            api_type,
        )
        return {"type": ["string", "null"]}
    return dict(known)


def entity_schema(entity: EntityInfo) -> dict[str, t.Any]:
    """Return the JSON Schema of an entity's records."""
    return {
        "type": "object",
        "properties": {
            f.name: {**property_schema(entity.name, f.name, f.type), **_description(f.description)}
            for f in entity.fields
        },
    }


def _description(text: str) -> dict[str, str]:
    return {"description": text} if text else {}


def is_date_property(prop: dict[str, t.Any]) -> bool:
    """Whether a property holds a date or date-time (and so can be a replication key)."""
    return prop.get("format") in {"date", "date-time"}


def date_fields(schema: dict[str, t.Any]) -> list[str]:
    """Return the names of the date and date-time properties, in schema order."""
    return [name for name, prop in schema.get("properties", {}).items() if is_date_property(prop)]


def property_kind(prop: dict[str, t.Any]) -> tuple[str, str | None]:
    """Return a property's main JSON type and, for strings, its format: ("integer", None),
    ("string", "date-time")...
    """
    types = prop.get("type", "string")
    types = [types] if isinstance(types, str) else list(types)
    main = next((name for name in types if name != "null"), "string")
    return main, (prop.get("format") if main == "string" else None)
