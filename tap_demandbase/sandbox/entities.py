"""The sandbox's catalogue: the six exportable entities and their fields.

The field ``type`` strings are deliberately heterogeneous (``int`` and ``integer``, ``bool`` and
``boolean``, ``date-time`` and ``timestamp``, one type no client knows: ``geolocation``) because
the real API's type names are free text; a tap must map every spelling, and fall back to string
for the unknown one. Each field also names the *recipe* ``data.py`` uses to invent its values, so
adding a field is a one-line change here. ``added_fields`` (a knob) adds fields at run time, each
with the recipe ``ADDED_FIELD_RECIPES`` gives its type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

#: Type names whose cells are calendar dates (``YYYY-MM-DD``).
DATE_TYPES = frozenset({"date"})
#: Type names whose cells are instants, in one of several RFC 3339-ish spellings.
DATETIME_TYPES = frozenset({"datetime", "date-time", "timestamp"})
#: Type names whose cells are whole numbers (possibly negative, possibly beyond 2**53).
INTEGER_TYPES = frozenset({"integer", "int", "long", "bigint"})
#: Type names whose cells are decimal numbers (``1234.50``, ``-0.25``, ``1e3``).
NUMBER_TYPES = frozenset({"number", "float", "double", "decimal", "currency", "percent"})
#: Type names whose cells are booleans in mixed spellings (``true``, ``False``, ``1``, ...).
BOOLEAN_TYPES = frozenset({"boolean", "bool"})
#: Type names of free-text cells; the target of the ``bad_utf8`` defect.
TEXT_TYPES = frozenset({"string", "text"})


@dataclass(frozen=True)
class Field:
    """One exportable column.

    Attributes:
        name: Column name, as requested in ``fields`` and written in the CSV header.
        type: The API's free-text type name.
        description: Human description, served by ``GET /export/v1/entities``.
        recipe: Name of the value recipe in ``data.py`` (optionally ``recipe:argument``).
        required: Never empty when true; otherwise about 10% of cells are empty.
    """

    name: str
    type: str
    description: str
    recipe: str
    required: bool = False

    @property
    def is_date_like(self) -> bool:
        """Whether ``filters.date_range.field`` may name this field."""
        return self.type in DATE_TYPES or self.type in DATETIME_TYPES

    def to_json(self) -> dict[str, str]:
        """Return the field as ``GET /export/v1/entities`` describes it."""
        return {"name": self.name, "type": self.type, "description": self.description}


@dataclass(frozen=True)
class Entity:
    """One exportable entity type (the ``entity_type`` of a job)."""

    name: str
    description: str
    id_prefix: str
    fields: tuple[Field, ...]

    @property
    def field_names(self) -> list[str]:
        """Return all field names, in catalogue order (the order of an export without fields)."""
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field | None:
        """Return the field called ``name``, or None if the entity has no such field."""
        return next((f for f in self.fields if f.name == name), None)

    @property
    def date_fields(self) -> list[str]:
        """Return the names of the fields a date_range filter may use."""
        return [f.name for f in self.fields if f.is_date_like]

    def revised(self, added: dict[str, str], removed: list[str]) -> Entity:
        """Return this entity with fields ``added`` (name -> type word) after its own, and the
        fields named in ``removed`` left out (the ``added_fields``/``removed_fields`` knobs).

        Idempotent: a field it already has is not added twice.
        """
        extra = tuple(
            added_field(name, type_word)
            for name, type_word in added.items()
            if self.field(name) is None
        )
        kept = tuple(f for f in self.fields + extra if f.name not in removed)
        return replace(self, fields=kept)

    def to_json(self) -> dict[str, object]:
        """Return the entity as ``GET /export/v1/entities`` describes it."""
        return {
            "name": self.name,
            "description": self.description,
            "fields": [f.to_json() for f in self.fields],
        }


#: The recipe of a field ``added_fields`` adds, by its type word (the ``export_v1`` type served).
ADDED_FIELD_RECIPES: dict[str, str] = {
    "string": "text",
    "text": "text",
    "picklist": "pick:tier",
    "email": "email",
    "url": "url",
    "phone": "phone",
    "integer": "count:100000",
    "int": "count:100000",
    "long": "big",
    "bigint": "big",
    "number": "money",
    "float": "fraction",
    "double": "money",
    "decimal": "money",
    "currency": "money",
    "percent": "percent",
    "boolean": "flag",
    "bool": "flag",
    "date": "day:0",
    "datetime": "created",
    "date-time": "created",
    "timestamp": "created",
    "geolocation": "geo",
}
#: What an added field's name must look like (snake case, as the tap's property names).
ADDED_FIELD_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*(?:__c)?")


def added_field(name: str, type_word: str) -> Field:
    """Return the field ``added_fields`` describes: generated values of its type's recipe."""
    return Field(
        name, type_word, f"Added field {name} ({type_word})", ADDED_FIELD_RECIPES[type_word]
    )


def _id(what: str) -> Field:
    return Field("id", "id", f"Unique {what} identifier", "id", required=True)


def _ref(name: str, entity: str) -> Field:
    return Field(name, "reference", f"Identifier of the related {entity} record", f"ref:{entity}")


def _created(type_: str = "datetime") -> Field:
    return Field("created_date", type_, "When the record was created (UTC)", "created")


def _modified(type_: str = "datetime") -> Field:
    return Field(
        "last_modified_date",
        type_,
        "When the record last changed (UTC); increases with the record's position",
        "modified",
        required=True,
    )


ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity(
            "accounts",
            "Companies tracked in Demandbase One",
            "acc",
            (
                _id("account"),
                Field("name", "string", "Company name", "company"),
                Field("domain", "url", "Primary web domain", "domain"),
                Field("industry", "picklist", "Industry", "pick:industry"),
                Field("employee_count", "integer", "Number of employees", "count:250000"),
                Field("annual_revenue", "currency", "Annual revenue in USD", "money"),
                Field("engagement_score", "percent", "Engagement score, 0-100", "percent"),
                Field("is_customer", "boolean", "Whether the account is a customer", "flag"),
                _created(),
                _modified(),
                Field("first_engagement_date", "date", "Day of first engagement", "day:0"),
                Field("phone", "phone", "Main phone number", "phone"),
                Field("description", "text", "Free-text description", "text"),
                Field(
                    "account_number", "string", "External account number (zero-padded)", "padded"
                ),
                Field("custom_tier__c", "picklist", "Custom: account tier", "pick:tier"),
                Field("custom_geo__c", "geolocation", "Custom: HQ latitude,longitude", "geo"),
            ),
        ),
        Entity(
            "people",
            "Contacts and leads at tracked accounts",
            "per",
            (
                _id("person"),
                _ref("account_id", "accounts"),
                Field("email", "email", "Email address", "email"),
                Field("first_name", "string", "First name", "pick:first_name"),
                Field("last_name", "string", "Last name", "pick:last_name"),
                Field("title", "string", "Job title", "pick:title"),
                Field("phone", "phone", "Direct phone number", "phone"),
                Field("lead_score", "int", "Lead score, may be negative", "signed"),
                Field("is_unsubscribed", "bool", "Opted out of email", "flag"),
                _created("date-time"),
                _modified("timestamp"),
                Field("last_activity_date", "date", "Day of the latest activity", "day:0"),
                Field("custom_persona__c", "string", "Custom: buying persona", "pick:persona"),
            ),
        ),
        Entity(
            "opportunities",
            "Sales opportunities synced from the CRM",
            "opp",
            (
                _id("opportunity"),
                _ref("account_id", "accounts"),
                Field("name", "string", "Opportunity name", "company"),
                Field("stage", "picklist", "Sales stage", "pick:opp_stage"),
                Field("amount", "decimal", "Amount in USD", "money"),
                Field("probability", "float", "Win probability, 0-1", "fraction"),
                Field("quantity", "long", "Units (can exceed 2**40)", "big"),
                Field("close_date", "date", "Expected close day", "day:120"),
                Field("is_won", "boolean", "Whether the opportunity was won", "flag"),
                _created(),
                _modified(),
                Field("custom_forecast__c", "number", "Custom: forecast amount", "money"),
            ),
        ),
        Entity(
            "activities",
            "Engagement activities (web visits, email, meetings, ads)",
            "act",
            (
                _id("activity"),
                _ref("person_id", "people"),
                _ref("account_id", "accounts"),
                Field("activity_type", "picklist", "Kind of activity", "pick:activity_type"),
                Field(
                    "activity_date",
                    "datetime",
                    "When the activity happened (UTC); increases with the record's position",
                    "happened",
                    required=True,
                ),
                Field("duration_seconds", "bigint", "Duration in seconds", "big"),
                Field("score", "double", "Engagement score of the activity", "money"),
                Field("source_url", "url", "Page or asset URL", "url"),
                Field("details", "text", "Free-text details", "text"),
                _created(),
                _modified(),
                Field("custom_channel__c", "string", "Custom: marketing channel", "pick:channel"),
            ),
        ),
        Entity(
            "campaigns",
            "Advertising and marketing campaigns",
            "cmp",
            (
                _id("campaign"),
                Field("name", "string", "Campaign name", "company"),
                Field("status", "picklist", "Campaign status", "pick:campaign_status"),
                Field("budget", "currency", "Budget in USD", "money"),
                Field("spend", "number", "Spend to date in USD", "money"),
                Field("impressions", "long", "Ad impressions", "big"),
                Field("start_date", "date", "First day of the campaign", "day:0"),
                Field("end_date", "date", "Last day of the campaign", "day:60"),
                Field("is_active", "bool", "Whether the campaign is running", "flag"),
                _created(),
                _modified(),
                Field("custom_region__c", "picklist", "Custom: sales region", "pick:region"),
            ),
        ),
        Entity(
            "buying_groups",
            "Buying groups formed at tracked accounts",
            "bg",
            (
                _id("buying group"),
                _ref("account_id", "accounts"),
                Field("name", "string", "Buying group name", "company"),
                Field("stage", "picklist", "Journey stage", "pick:bg_stage"),
                Field("member_count", "integer", "Number of members", "count:40"),
                Field("engagement_minutes", "double", "Minutes of engagement", "money"),
                Field("is_active", "boolean", "Whether the group is active", "flag"),
                _created(),
                _modified("date-time"),
                Field("custom_owner__c", "string", "Custom: owning sales rep", "pick:last_name"),
            ),
        ),
    )
}

#: The prefix of each entity's row ids (``acc-0000001``), every dialect's entities included.
ID_PREFIXES: dict[str, str] = {
    **{e.name: e.id_prefix for e in ENTITIES.values()},
    "creatives": "cre",
    "buying_group_members": "bgm",
}

#: Rows per entity when the ``rows`` knob does not mention the entity.
DEFAULT_ROWS: dict[str, int] = {
    "accounts": 1000,
    "people": 1500,
    "opportunities": 400,
    "activities": 3000,
    "campaigns": 50,
    "buying_groups": 120,
    # Exported by the uapi dialect only (uapi/catalog.py).
    "creatives": 80,
    "buying_group_members": 300,
}
