"""The uapi dialect's catalogue: entity types, their ``{Entity}.fieldName`` fields and dataTypes.

Each uapi entity type is served from an entity of the data generator (``entities.py``), so both
dialects export the *same rows*: ``account`` is ``accounts``, ``person`` is ``people``,
``opportunity`` is ``opportunities``, ``activity`` is ``activities``, ``campaign`` is
``campaigns`` and ``accountBuyingGroup`` is ``buying_groups``. ``creative`` and
``personBuyingGroupMember`` have no ``export_v1`` counterpart; their generator entities
(``creatives``, ``buying_group_members``) are defined here. A few fields exist only in this
dialect (``{Account}.sfdcID``, ``{Activity}.accountDomain``, ``campaignSource``...): they are
extra generator fields of an entity *of the same name*, and since every cell depends only on
(seed, entity name, field name, row), the shared fields keep their values.

Names follow what public sources show (see ``demandbase-production-api.md``):

- ``{Entity}.camelCase`` [documented], the entity as in ``{Account}``, ``{Activity}``; a field
  of another entity keeps that entity (``{Account}.id`` in activity, person, opportunity and the
  buying groups) [documented for activity]. ``{AccountBuyingGroup}``/``{PersonBuyingGroupMember}``
  are inferred.
- Custom fields in Salesforce style, ``{Account}.Custom_Tier__c``, ``Region__c`` [inferred].
- Campaign fields carry **no prefix** (``campaignId``, ``campaignName``, ``campaignSource``,
  ``startDate``, ``endDate``) [documented: Demandbase's Postman collection]; creative fields
  follow the same style [inferred].

Under the tap's snake_case rule (``{Account}.lastModifiedDate`` -> ``last_modified_date``,
``Custom_Tier__c`` -> ``custom_tier__c``, ``{Account}.id`` in activity -> ``account_id``),
every field backed by an ``export_v1`` field maps back to that field's name, so a pipeline can
switch dialects without renaming columns (tests check this).

``dataType`` values are the product's field types (Boolean, Currency, Date, Datetime, Double,
Email, Integer, Long, Percent, Picklist, String, URL), the documented vocabulary of the UI, since
no export example shows one [unknown for this API]; ``Custom_Geo__c`` is ``Geolocation``, a type
no client knows. The ``uapi_field_types`` knob overrides any of them (or omits a field) and
``uapi_alias_fields`` adds fields that repeat another field's values (to make two names collide).
The common knobs ``added_fields`` and ``removed_fields`` change an entity type's fields the same
way in both dialects (:func:`live_entity`): ``removed_fields`` names generator fields, and every
uapi field carrying one goes; an added field ``tier`` of accounts is ``{Account}.tier``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tap_demandbase.sandbox.entities import (
    DATE_TYPES,
    DATETIME_TYPES,
    ENTITIES,
    ID_PREFIXES,
    Entity,
    Field,
)

if TYPE_CHECKING:
    from tap_demandbase.sandbox.uapi.settings import UapiSettings

#: The uapi ``dataType`` of each generator type name.
DATA_TYPES: dict[str, str] = {
    "id": "String",
    "reference": "String",
    "string": "String",
    "text": "String",
    "phone": "String",
    "picklist": "Picklist",
    "email": "Email",
    "url": "URL",
    "integer": "Integer",
    "int": "Integer",
    "long": "Long",
    "bigint": "Long",
    "number": "Double",
    "float": "Double",
    "double": "Double",
    "decimal": "Double",
    "currency": "Currency",
    "percent": "Percent",
    "boolean": "Boolean",
    "bool": "Boolean",
    "date": "Date",
    "datetime": "Datetime",
    "date-time": "Datetime",
    "timestamp": "Datetime",
    "geolocation": "Geolocation",
}
#: ``uapi_field_types`` value that removes a field from ``/fields`` and from what jobs accept.
OMIT = "omit"
#: Valid ``source`` values of campaign and creative jobs.
SOURCES = ("demandbase", "linkedin", "google", "all")


@dataclass(frozen=True)
class UapiField:
    """One field as ``GET /data/export/v1/fields`` lists it.

    Attributes:
        name: The original name, e.g. ``{Account}.employeeCount`` (also the CSV header).
        source: The generator field whose values it carries, e.g. ``employee_count``.
        data_type: The ``dataType`` served.
        kind: The generator's type name (decides which filter operators apply).
        label: A human label.
        description: What the field holds.
    """

    name: str
    source: str
    data_type: str
    kind: str
    label: str
    description: str

    @property
    def is_date(self) -> bool:
        """Whether date comparison filters apply (Date and Datetime fields)."""
        return self.kind in DATE_TYPES or self.kind in DATETIME_TYPES

    def to_json(self) -> dict[str, str]:
        """Return the field as ``/fields`` serves it."""
        return {
            "name": self.name,
            "dataType": self.data_type,
            "label": self.label,
            "description": self.description,
        }


@dataclass(frozen=True)
class UapiEntity:
    """One ``entityType``.

    Attributes:
        entity_type: The canonical spelling (``account``, ``accountBuyingGroup``...).
        data: The generator entity its rows come from.
        fields: Its fields, in ``/fields`` order.
        date_range_field: The field ``fromDate``/``toDate`` filter (activity only), else None.
        report_types: Valid ``adReportType`` values (campaign, creative), else empty.
        dated_report_types: The report types that require ``fromDate``/``toDate``.
        account_scoped: Whether jobs take (and require) ``accountIds`` (the buying groups).
        prefix: The entity in its own fields' names (``Account`` in ``{Account}.name``), or None
            when they carry none (campaign, creative).
    """

    entity_type: str
    data: Entity
    fields: tuple[UapiField, ...]
    date_range_field: str | None = None
    report_types: tuple[str, ...] = ()
    dated_report_types: frozenset[str] = frozenset()
    account_scoped: bool = False
    prefix: str | None = None


def _extend(name: str, *extra: Field) -> Entity:
    """Return generator entity ``name`` plus ``extra`` fields (shared ones keep their values)."""
    base = ENTITIES[name]
    return Entity(base.name, base.description, base.id_prefix, base.fields + extra)


_CREATIVES = Entity(
    "creatives",
    "Advertising creatives and their delivery (uapi dialect only)",
    ID_PREFIXES["creatives"],
    (
        Field("id", "id", "Unique creative identifier", "id", required=True),
        Field("campaign_id", "reference", "The creative's campaign", "ref:campaigns"),
        Field("name", "string", "Creative name", "company"),
        Field("format", "picklist", "Creative format", "pick:creative_format"),
        Field("source", "picklist", "Ad platform", "pick:ad_source", required=True),
        Field("impressions", "long", "Impressions served", "big"),
        Field("clicks", "integer", "Clicks", "count:5000"),
        Field("spend", "currency", "Spend in USD", "money"),
        Field("click_through_rate", "percent", "Click-through rate", "percent"),
        Field("start_date", "date", "First day served", "day:0"),
        Field("end_date", "date", "Last day served", "day:60"),
        Field("created_date", "datetime", "When the creative was created (UTC)", "created"),
    ),
)
_MEMBERS = Entity(
    "buying_group_members",
    "People in the buying groups of tracked accounts (uapi dialect only)",
    ID_PREFIXES["buying_group_members"],
    (
        Field("id", "id", "Unique membership identifier", "id", required=True),
        Field("buying_group_id", "reference", "The buying group", "ref:buying_groups"),
        Field("person_id", "reference", "The member", "ref:people"),
        Field("account_id", "reference", "The member's account", "ref:accounts"),
        Field("role", "picklist", "Role in the buying group", "pick:bg_role"),
        Field("engagement_minutes", "double", "Minutes of engagement", "money"),
        Field("is_primary_contact", "boolean", "Whether the member is the primary contact", "flag"),
        Field("created_date", "datetime", "When the member joined (UTC)", "created"),
    ),
)
#: Generator entities that only the uapi dialect exports (their rows: ``DEFAULT_ROWS``).
UAPI_ONLY_ENTITIES: dict[str, Entity] = {e.name: e for e in (_CREATIVES, _MEMBERS)}

#: Reference fields that become a field of the referenced entity: ``{Account}.id``.
_REFERENCES = {
    "account_id": "{Account}.id",
    "person_id": "{Person}.id",
    "buying_group_id": "{AccountBuyingGroup}.id",
}


def _camel(source: str) -> str:
    """Return ``employee_count`` as ``employeeCount``; ``custom_tier__c`` as ``Custom_Tier__c``."""
    if source.endswith("__c"):
        return "_".join(word.capitalize() for word in source[:-3].split("_")) + "__c"
    first, *rest = source.split("_")
    return first + "".join(word.capitalize() for word in rest)


def _label(name: str) -> str:
    """Return a human label: ``{Account}.annualRevenue`` -> ``Annual Revenue``."""
    entity, _, bare = name.rpartition(".")
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", bare.replace("__c", "").replace("_", " "))
    label = " ".join(w[:1].upper() + w[1:] for w in words.split())
    if label == "Id":
        label = "ID"
    if entity:
        owner = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", entity.strip("{}"))
        label = f"{owner} {label}" if label == "ID" else label
    return label


def _entity(
    entity_type: str,
    data: Entity,
    prefix: str | None,
    names: dict[str, str] | None = None,
    *,
    date_range_field: str | None = None,
    report_types: tuple[str, ...] = (),
    dated_report_types: frozenset[str] = frozenset(),
    account_scoped: bool = False,
) -> UapiEntity:
    """Return entity type ``entity_type`` with one field per generator field of ``data``.

    A field is named by ``names`` if listed there, else ``{prefix}.camelCase`` (``camelCase``
    alone when ``prefix`` is None), references to accounts, people and buying groups excepted.
    """
    return UapiEntity(
        entity_type,
        data,
        tuple(_uapi_field(field, prefix, names or {}) for field in data.fields),
        date_range_field,
        report_types,
        dated_report_types,
        account_scoped,
        prefix,
    )


def _uapi_field(field: Field, prefix: str | None, names: dict[str, str]) -> UapiField:
    """Return generator field ``field`` as uapi names it (see :func:`_entity`)."""
    if field.name in names:
        name = names[field.name]
    elif field.name in _REFERENCES and prefix is not None:
        name = _REFERENCES[field.name]
    else:
        bare = _camel(field.name)
        name = bare if prefix is None else f"{{{prefix}}}.{bare}"
    return UapiField(
        name=name,
        source=field.name,
        data_type=DATA_TYPES[field.type],
        kind=field.type,
        label=_label(name),
        description=field.description,
    )


_SFDC = Field("sfdc_id", "string", "Salesforce account id", "padded")
_MINUTES = Field("engagement_minutes_last7_day", "double", "Engagement, last 7 days", "money")
_DOMAIN = Field("account_domain", "url", "Web domain of the activity's account", "domain")
_KEYWORDS = Field("keyword_set", "picklist", "Intent keyword set", "pick:keyword_set")
_SOURCE = Field("source", "picklist", "Ad platform", "pick:ad_source", required=True)

#: Every uapi entity type by its canonical name, in the API's enum order.
ENTITY_TYPES: dict[str, UapiEntity] = {
    e.entity_type: e
    for e in (
        _entity(
            "account",
            _extend("accounts", _SFDC, _MINUTES),
            "Account",
            {"sfdc_id": "{Account}.sfdcID"},
        ),
        _entity("person", ENTITIES["people"], "Person"),
        _entity("opportunity", ENTITIES["opportunities"], "Opportunity"),
        _entity(
            "activity",
            _extend("activities", _DOMAIN, _KEYWORDS),
            "Activity",
            {"keyword_set": "{Activity}.keyword_set"},
            date_range_field="{Activity}.activityDate",
        ),
        _entity(
            "campaign",
            _extend("campaigns", _SOURCE),
            None,
            {
                "id": "campaignId",
                "name": "campaignName",
                "status": "campaignStatus",
                "source": "campaignSource",
                "custom_region__c": "Region__c",
            },
            report_types=(
                "campaign_summary",
                "campaign_performance_rollup",
                "campaign_account_lifetime",
                "campaign_account_rollup",
            ),
            dated_report_types=frozenset(
                {"campaign_performance_rollup", "campaign_account_rollup"}
            ),
        ),
        _entity(
            "creative",
            _CREATIVES,
            None,
            {
                "id": "creativeId",
                "name": "creativeName",
                "format": "creativeFormat",
                "source": "creativeSource",
            },
            report_types=("creative_lifetime", "creative_rollup"),
            dated_report_types=frozenset({"creative_rollup"}),
        ),
        _entity(
            "accountBuyingGroup",
            ENTITIES["buying_groups"],
            "AccountBuyingGroup",
            account_scoped=True,
        ),
        _entity(
            "personBuyingGroupMember",
            _MEMBERS,
            "PersonBuyingGroupMember",
            account_scoped=True,
        ),
    )
}


def entity_type_named(text: object) -> UapiEntity | None:
    """Return the entity type spelled ``text`` in any case (``Activity``, ``activity``), or None."""
    if not isinstance(text, str):
        return None
    return next((e for e in ENTITY_TYPES.values() if e.entity_type.lower() == text.lower()), None)


def field_names() -> set[str]:
    """Return the name of every field of every entity type (what ``uapi_field_types`` may key)."""
    return {f.name for e in ENTITY_TYPES.values() for f in e.fields}


def live_entity(entity: UapiEntity, settings: UapiSettings) -> UapiEntity:
    """Return ``entity`` as the tenant has it now: its fields of ``removed_fields`` left out,
    those of ``added_fields`` after its own (named like them: ``{Account}.tier``).
    """
    name = entity.data.name
    removed = settings.removed_fields.get(name, [])
    added = settings.added_fields.get(name, {})
    if not removed and not added:
        return entity
    data = settings.with_added_fields(entity.data)
    have = {f.source for f in entity.fields}  # idempotent: an entity already live stays so
    new = [
        _uapi_field(f, entity.prefix, {})
        for f in data.fields
        if f.name in added and f.name not in have
    ]
    kept = [f for f in (*entity.fields, *new) if f.source not in removed]
    return replace(entity, data=data, fields=tuple(kept))


def fields_for(entity: UapiEntity, settings: UapiSettings) -> tuple[UapiField, ...]:
    """Return ``entity``'s fields under the knobs: removed and added fields (``live_entity``),
    aliases added, types overridden, omissions.
    """
    entity = live_entity(entity, settings)
    fields = list(entity.fields)
    by_name = {f.name: f for f in fields}
    for alias, target in settings.uapi_alias_fields.get(entity.entity_type, {}).items():
        original = by_name[target]
        fields.append(
            UapiField(
                alias,
                original.source,
                original.data_type,
                original.kind,
                _label(alias),
                f"Same values as {target}",
            )
        )
    out = []
    for field in fields:
        data_type = settings.uapi_field_types.get(field.name, field.data_type)
        if data_type == OMIT:
            continue
        out.append(
            field
            if data_type == field.data_type
            else UapiField(
                field.name, field.source, data_type, field.kind, field.label, field.description
            )
        )
    return tuple(out)
