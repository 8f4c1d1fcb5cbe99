"""Discovery: the tap's streams, from the dialect's entities and fields or from --catalog.

A scheduled sync given a catalog spends no API call on discovery: the catalog's streams are
taken as they are, with the API names of their fields (kept in the catalog's metadata by the
discovery that wrote it) handed to the dialect. Each stream's replication key is the
setting's, else the catalog's, else the dialect's default.
"""

from __future__ import annotations

import json
import typing as t
from dataclasses import dataclass
from pathlib import Path, PurePath

from tap_demandbase.errors import ConfigError
from tap_demandbase.model import EntityInfo, FieldInfo
from tap_demandbase.schema import date_fields, entity_schema

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Mapping, Sequence

    from singer_sdk.singerlib import Catalog

    from tap_demandbase.dialects import Dialect
    from tap_demandbase.model import ExportApi

#: Property metadata naming the field in the API, where the property is named otherwise.
API_NAME_METADATA = "api-name"


@dataclass(frozen=True)
class DiscoveredEntity:
    """A stream's schema, and its fields' API names where they differ from the properties."""

    schema: dict[str, t.Any]
    api_names: dict[str, str]


@dataclass(frozen=True)
class StreamSpec:
    """What the tap makes one stream of."""

    name: str
    schema: dict[str, t.Any]
    replication_key: str | None
    key_from_settings: bool
    primary_key: str | None
    max_window_days: int | None
    api_names: dict[str, str]


class Discovery:
    """The streams of one tap: from the input catalog when there is one, else from the API."""

    def __init__(
        self,
        dialect: Dialect,
        api: ExportApi,
        replication_keys: Mapping[str, str],
        catalog: Catalog | None,
        catalog_api_names: Mapping[str, dict[str, str]],
        logger: logging.Logger,
    ) -> None:
        self.dialect = dialect
        self.api = api
        self.configured = dict(replication_keys)
        self.catalog = catalog
        self.catalog_api_names = catalog_api_names
        self.logger = logger

    def stream_specs(self) -> list[StreamSpec]:
        """Return one stream per entity type, from the input catalog or from the API."""
        entities = (
            self._entities_from_catalog(self.catalog)
            if self.catalog is not None
            else self._entities_from_api()
        )
        unknown = sorted(set(self.configured) - set(entities))
        if unknown:
            msg = (
                f"Setting replication_keys names unknown stream(s) {', '.join(unknown)}; "
                f"streams are: {', '.join(sorted(entities))}."
            )
            raise ConfigError(msg)
        specs = []
        for name, entity in entities.items():
            rules = self.dialect.stream_rules(name)
            specs.append(
                StreamSpec(
                    name=name,
                    schema=entity.schema,
                    replication_key=self._replication_key(name, entity, self.configured.get(name)),
                    key_from_settings=name in self.configured,
                    primary_key=primary_key(rules.primary_key, entity.schema),
                    max_window_days=rules.max_window_days,
                    api_names=entity.api_names,
                )
            )
        return specs

    def _entities_from_api(self) -> dict[str, DiscoveredEntity]:
        types = self.dialect.field_types
        return {
            e.name: DiscoveredEntity(
                entity_schema(e, types), {f.name: f.api_name for f in e.fields if f.api_name}
            )
            for e in self.api.list_entities()
        }

    def _entities_from_catalog(self, catalog: Catalog) -> dict[str, DiscoveredEntity]:
        """Return the catalog's streams, and give the dialect the API names of their fields
        (kept in the catalog by discovery), so that the sync needs no discovery call.
        """
        entities = {
            entry.tap_stream_id: DiscoveredEntity(
                entry.schema.to_dict(), dict(self.catalog_api_names.get(entry.tap_stream_id, {}))
            )
            for entry in catalog.streams
        }
        known = self.dialect.stream_names
        if known is not None and (foreign := sorted(set(entities) - known)):
            which = (
                f"Stream '{foreign[0]}' of the catalog is not a stream"
                if len(foreign) == 1
                else f"Streams {', '.join(foreign)} of the catalog are not streams"
            )
            msg = (
                f"{which} of this tap (api_dialect={self.dialect.name}): run --discover to "
                "write this tap's catalog."
            )
            raise ConfigError(msg)
        self.api.remember_entities(
            [
                EntityInfo(
                    name,
                    tuple(
                        FieldInfo(prop, "", api_name=entity.api_names.get(prop, ""))
                        for prop in entity.schema.get("properties", {})
                    ),
                )
                for name, entity in entities.items()
                if entity.api_names
            ]
        )
        return entities

    def _replication_key(
        self, stream: str, entity: DiscoveredEntity, configured: str | None
    ) -> str | None:
        """Return the stream's replication key: configured (its property or API name), else
        the catalog's, else the dialect's default; None (FULL_TABLE, said in one line) when
        the dialect finds no date field to filter on.
        """
        valid = date_fields(entity.schema)
        if configured:
            by_api_name = {api: prop for prop, api in entity.api_names.items()}
            configured = by_api_name.get(configured, configured)
        required = self.dialect.stream_rules(stream).required_replication_key
        key = configured or self._catalog_replication_key(stream)
        if required and key and key != required:
            source = "replication_keys" if configured else "the catalog"
            msg = (
                f"Stream '{stream}' cannot use '{key}' as its replication key ({source}): "
                f"api_dialect={self.dialect.name} filters its jobs on '{required}' only. Remove "
                f"replication_keys.{stream} (or set it to {required})."
            )
            raise ConfigError(msg)
        key = key or self.dialect.default_replication_key(stream, valid)
        if key is None:
            self.logger.info(
                "Stream '%s' has no last-modified date field (%s): it is synced FULL_TABLE, "
                "each run exporting all its rows. Set replication_keys.%s to a date field to "
                "sync it incrementally.",
                stream,
                f"its date fields: {', '.join(valid)}" if valid else "nor any date field",
                stream,
            )
            return None
        if key not in valid and not configured and self.catalog is not None:
            raise ConfigError(foreign_stream_message(stream, key, valid))
        if key not in valid:
            source = "replication_keys" if configured else "the default replication key"
            msg = (
                f"Stream '{stream}' cannot use '{key}' as its replication key ({source}): it is "
                f"not a date field of the stream. Date fields: {', '.join(valid) or 'none'}. "
                f"Set replication_keys.{stream} to one of them."
            )
            raise ConfigError(msg)
        return key

    def _catalog_replication_key(self, stream: str) -> str | None:
        if self.catalog is None:
            return None
        entry = self.catalog.get_stream(stream)
        return entry.replication_key if entry else None


def primary_key(preferred: str, schema: dict[str, t.Any]) -> str | None:
    """Return the stream's primary key: the dialect's, else ``id``; None if it has neither."""
    properties = schema.get("properties", {})
    return next((key for key in (preferred, "id") if key in properties), None)


def foreign_stream_message(stream: str, key: str, valid: Sequence[str]) -> str:
    """Say that a catalog's stream lacks the replication key of this tap's streams: a stream
    of another tap (or of a catalog this tap did not write).
    """
    msg = (
        f"Stream '{stream}' of the catalog has no field '{key}' (the replication key of this "
        "tap's streams): it is not a stream of this tap: run --discover to write this tap's "
        "catalog."
    )
    if valid:
        msg += (
            f" If it is one, set replication_keys.{stream} to one of its date fields "
            f"({', '.join(valid)})."
        )
    return msg


def api_names_in_catalog(catalog: t.Any) -> dict[str, dict[str, str]]:
    """Return stream → property → API name from a catalog's property metadata (``api-name``),
    as the tap's discovery writes it; empty for a catalog without (or not given as JSON).

    The SDK's catalog model drops metadata keys it does not know, hence this second reading.
    """
    if isinstance(catalog, (str, PurePath)):
        try:
            catalog = json.loads(Path(catalog).read_text())
        except (OSError, ValueError):
            return {}
    if not isinstance(catalog, dict):
        return {}
    names: dict[str, dict[str, str]] = {}
    for entry in catalog.get("streams") or []:
        if not isinstance(entry, dict):
            continue
        for item in entry.get("metadata") or []:
            breadcrumb = item.get("breadcrumb") if isinstance(item, dict) else None
            metadata = item.get("metadata") if isinstance(item, dict) else None
            api_name = metadata.get(API_NAME_METADATA) if isinstance(metadata, dict) else None
            if (
                isinstance(breadcrumb, list)
                and len(breadcrumb) == 2
                and breadcrumb[0] == "properties"
                and isinstance(api_name, str)
            ):
                stream = str(entry.get("tap_stream_id"))
                names.setdefault(stream, {})[str(breadcrumb[1])] = api_name
    return names
