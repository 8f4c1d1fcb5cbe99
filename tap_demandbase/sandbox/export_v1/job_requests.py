"""Validating an ``export_v1`` ``POST /export/v1/jobs`` body against the catalogue.

Refusals are 400 with the contract's JSON error; an omitted ``fields`` means every field of the
entity, and either bound of ``filters.date_range`` may be left open. The catalogue is the live
one (``added_fields``, ``removed_fields``). Fields the entity does not have (any more) are
refused together, in request order::

    400 {"error": "invalid_field",
         "message": "Unknown field(s) for entity accounts: industry, tier"}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from tap_demandbase.sandbox.api import ApiError
from tap_demandbase.sandbox.data import Filters
from tap_demandbase.sandbox.entities import ENTITIES, Entity
from tap_demandbase.sandbox.settings import CommonSettings

_FILTER_KEYS = ("date_range", "account_list_id")
_DATE_RANGE_KEYS = ("field", "start", "end")


@dataclass(frozen=True)
class ExportRequest:
    """A validated ``POST /export/v1/jobs`` body."""

    entity: str
    fields: list[str]
    filters: Filters
    filters_json: dict[str, object]


def parse_export_request(body: object, settings: CommonSettings) -> ExportRequest:
    """Validate a create-job body against the live catalogue; omitted ``fields`` means all
    fields.

    Raises:
        ApiError: 400 naming what is wrong (unknown entity or field, bad date range, ...).
    """
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "The request body must be a JSON object")
    unknown = sorted(set(body) - {"entity_type", "fields", "filters", "format"})
    if unknown:
        raise ApiError(400, "invalid_request", f"Unknown request properties: {', '.join(unknown)}")
    name = body.get("entity_type")
    known = ENTITIES.get(name) if isinstance(name, str) else None
    if known is None:
        raise ApiError(
            400,
            "invalid_entity_type",
            f"Unknown entity_type {name!r}; valid entity types: {', '.join(ENTITIES)}",
        )
    entity = settings.catalogue_entity(known)
    if body.get("format", "csv") != "csv":
        raise ApiError(400, "invalid_format", f"Unsupported format {body['format']!r}; use 'csv'")
    fields = body.get("fields")
    if fields is None:
        fields = entity.field_names
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        raise ApiError(400, "invalid_fields", "fields must be a non-empty list of field names")
    unknown = [name for name in fields if entity.field(name) is None]
    if unknown:
        raise ApiError(
            400,
            "invalid_field",
            f"Unknown field(s) for entity {entity.name}: {', '.join(unknown)}",
        )
    if len(set(fields)) != len(fields):
        raise ApiError(400, "invalid_fields", "fields must not name a field twice")
    raw_filters = body.get("filters") or {}
    if not isinstance(raw_filters, dict):
        raise ApiError(400, "invalid_filters", "filters must be a JSON object")
    unknown = sorted(set(raw_filters) - set(_FILTER_KEYS))
    if unknown:
        raise ApiError(400, "invalid_filters", f"Unknown filters: {', '.join(unknown)}")
    filters = Filters()
    if raw_filters.get("date_range") is not None:
        filters = _parse_date_range(entity, raw_filters["date_range"])
    list_id = raw_filters.get("account_list_id")
    if list_id is not None:
        if not isinstance(list_id, str) or not list_id:
            raise ApiError(400, "invalid_filters", "account_list_id must be a non-empty string")
        filters = Filters(filters.date_field, filters.start, filters.end, list_id)
    return ExportRequest(entity.name, list(fields), filters, dict(raw_filters))


def _parse_date_range(entity: Entity, raw: object) -> Filters:
    """Validate ``filters.date_range``: a date-like field and ``YYYY-MM-DD`` bounds, start <= end.

    Either bound may be omitted (open range); ``field`` may not.
    """
    if not isinstance(raw, dict) or set(raw) - set(_DATE_RANGE_KEYS):
        raise ApiError(
            400, "invalid_date_range", "date_range must be an object with field, start and end"
        )
    field_name = raw.get("field")
    field = entity.field(field_name) if isinstance(field_name, str) else None
    if field is None or not field.is_date_like:
        raise ApiError(
            400,
            "invalid_date_field",
            f"date_range.field {field_name!r} is not a date field of {entity.name!r}; "
            f"date fields: {', '.join(entity.date_fields)}",
        )
    bounds: dict[str, date | None] = {}
    for key in ("start", "end"):
        value = raw.get(key)
        if value is None:
            bounds[key] = None
            continue
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ApiError(
                400, "invalid_date_range", f"date_range.{key} must be a YYYY-MM-DD date: {value!r}"
            )
        try:
            bounds[key] = date.fromisoformat(value)
        except ValueError:
            raise ApiError(
                400, "invalid_date_range", f"date_range.{key} is not a calendar date: {value!r}"
            ) from None
    start, end = bounds["start"], bounds["end"]
    if start is not None and end is not None and start > end:
        raise ApiError(
            400, "invalid_date_range", f"date_range.start {start} is after date_range.end {end}"
        )
    return Filters(field.name, start, end)
