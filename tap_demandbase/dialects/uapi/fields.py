"""The uapi dialect's streams and the names of their fields.

Demandbase's production API names fields ``{Entity}.camelCase`` (``{Account}.lastModifiedDate``),
some without a prefix (campaign fields: ``campaignId``). The tap emits snake_case property names
without the stream's own prefix, so that the streams the ``export_v1`` dialect also serves keep
their column names when a pipeline switches dialect; the API's name is kept beside each property
(catalog metadata ``api-name``) for job requests and to match result columns.
"""

from __future__ import annotations

import logging
import re
import typing as t
from dataclasses import dataclass

from tap_demandbase.dialects.base import StreamRules
from tap_demandbase.errors import ConfigError
from tap_demandbase.model import FieldInfo

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

logger = logging.getLogger("tap-demandbase.api")

#: A prefixed field name: ``{Account}.lastModifiedDate``.
_PREFIXED = re.compile(r"\{([A-Za-z0-9_]+)\}\.(.+)")
#: Where snake_case puts an underscore: before an upper-case letter that follows a lower-case
#: letter or a digit, and before the last upper-case letter of a run followed by a lower-case one.
_WORD_START = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


@dataclass(frozen=True)
class UapiStream:
    """One stream of the uapi dialect and the API's entity type behind it."""

    name: str
    entity_type: str
    #: The ``{Entity}`` prefix of the stream's own fields (None: its fields carry none).
    prefix: str | None
    #: The property that ``fromDate``/``toDate`` filter (activities), and the only possible
    #: replication key; None: other streams filter a date field with ``filters``.
    date_range_key: str | None = None
    #: Longest ``fromDate``..``toDate`` range the API accepts, in days (both ends included).
    max_window_days: int | None = None
    #: The setting naming the ``adReportType`` (campaigns, creatives), None for other streams.
    report_type_setting: str | None = None
    #: Whether jobs are limited to the accounts of ``buying_group_account_ids``.
    account_scoped: bool = False
    #: The primary key, where it is not ``id`` (campaign fields carry no prefix).
    primary_key: str = "id"

    @property
    def optional_settings(self) -> tuple[str, ...]:
        """Return the settings this stream needs to exist (none: always discovered)."""
        if self.report_type_setting:
            return ("campaign_sources", self.report_type_setting)
        if self.account_scoped:
            return ("buying_group_account_ids",)
        return ()


STREAMS: dict[str, UapiStream] = {
    s.name: s
    for s in (
        UapiStream("accounts", "account", "Account"),
        UapiStream("people", "person", "Person"),
        UapiStream("opportunities", "opportunity", "Opportunity"),
        UapiStream(
            "activities", "activity", "Activity", date_range_key="activity_date", max_window_days=90
        ),
        UapiStream(
            "campaigns",
            "campaign",
            None,
            report_type_setting="campaign_report_type",
            primary_key="campaign_id",
        ),
        UapiStream(
            "creatives",
            "creative",
            None,
            report_type_setting="creative_report_type",
            primary_key="creative_id",
        ),
        UapiStream(
            "buying_groups", "accountBuyingGroup", "AccountBuyingGroup", account_scoped=True
        ),
        UapiStream(
            "buying_group_members",
            "personBuyingGroupMember",
            "PersonBuyingGroupMember",
            account_scoped=True,
        ),
    )
}
#: Entity type (lower case, as the API may spell it in any case) → stream name.
STREAM_OF_ENTITY = {s.entity_type.lower(): s.name for s in STREAMS.values()}

#: Replication keys tried, in order, for streams other than activities: the first that the
#: stream lists as a date or date-time field (creation and close dates do not count).
REPLICATION_KEY_CANDIDATES = (
    "last_modified_date",
    "last_modified_at",
    "updated_at",
    "updated_date",
    "modified_date",
)


def snake_case(name: str) -> str:
    """Return a camelCase name in snake_case: ``sfdcID`` → ``sfdc_id``,
    ``engagementMinutesLast7Day`` → ``engagement_minutes_last7_day``, ``Region__c`` →
    ``region__c`` (underscores and digits kept).
    """
    return _WORD_START.sub("_", name).lower()


def split_name(name: str) -> tuple[str | None, str]:
    """Return the ``{Entity}`` prefix of a field name (None if it has none) and the rest."""
    match = _PREFIXED.fullmatch(name)
    return (match.group(1), match.group(2)) if match else (None, name)


def bare_name(name: str) -> str:
    """Return the field name after its ``{Entity}.`` prefix (the name itself without one)."""
    return split_name(name)[1]


def column_names(api_name: str) -> tuple[str, ...]:
    """Return the header names a field's result column may have: its name, then the bare name
    after the prefix (accepted only where unique in the part).
    """
    bare = bare_name(api_name)
    return (api_name,) if bare == api_name else (api_name, bare)


def property_fields(
    stream: UapiStream, fields: Iterable[tuple[str, str, str]]
) -> tuple[FieldInfo, ...]:
    """Return a stream's fields with property names, from (API name, dataType, description).

    The stream's own fields lose their prefix; another entity's field keeps it as a word
    (``{Account}.id`` in activities → ``account_id``). If two fields still map to one name,
    the stream's own field keeps it and the other takes its entity with a double underscore
    (``account__id``), with one warning.
    """
    fields = list(fields)
    own = {api_name: split_name(api_name)[0] in (None, stream.prefix) for api_name, _, _ in fields}
    names: dict[str, str] = {}
    # The stream's own fields choose first, so that they keep their name on a collision.
    for api_name in sorted(own, key=lambda n: not own[n]):
        prefix, bare = split_name(api_name)
        name = (
            snake_case(bare) if own[api_name] else f"{snake_case(prefix or '')}_{snake_case(bare)}"
        )
        if name in names.values():
            taken = next(n for n, p in names.items() if p == name)
            name = _collision_free(
                f"{snake_case(prefix or stream.entity_type)}__{snake_case(bare)}", names
            )
            logger.warning(
                "Fields '%s' and '%s' of %s both map to the property '%s': '%s' is emitted as "
                "'%s'.",
                taken, api_name, stream.name, names[taken], api_name, name,
            )  # fmt: skip
        names[api_name] = name
    return tuple(
        FieldInfo(name=names[api_name], type=data_type, description=text, api_name=api_name)
        for api_name, data_type, text in fields
    )


def _collision_free(name: str, taken: Mapping[str, str]) -> str:
    """Return ``name``, or it with a number, so that no other field has it."""
    used = set(taken.values())
    candidate, number = name, 2
    while candidate in used:
        candidate, number = f"{name}_{number}", number + 1
    return candidate


def default_replication_key(stream: str, date_fields: Sequence[str]) -> str | None:
    """Return the stream's replication key when the settings name none: activity_date for
    activities, else the first candidate the stream lists as a date field; None (FULL_TABLE)
    when there is none.
    """
    spec = STREAMS.get(stream)
    if spec is not None and spec.date_range_key:
        return spec.date_range_key
    return next((name for name in REPLICATION_KEY_CANDIDATES if name in date_fields), None)


def stream_named(entity: str) -> UapiStream:
    """Return the uapi stream of that name, or fail saying to rediscover the catalog."""
    stream = STREAMS.get(entity)
    if stream is None:
        msg = f"Stream '{entity}' is not a stream of api_dialect=uapi; rediscover the catalog."
        raise ConfigError(msg)
    return stream


def stream_rules(stream: str) -> StreamRules:
    """Return what the API imposes on a stream: activities filter activity_date by fromDate
    and toDate, at most 90 days per job; campaigns and creatives are keyed by their own id.
    """
    spec = STREAMS.get(stream)
    if spec is None:
        return StreamRules()
    return StreamRules(
        required_replication_key=spec.date_range_key,
        max_window_days=spec.max_window_days,
        primary_key=spec.primary_key,
    )
