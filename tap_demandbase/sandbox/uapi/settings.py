"""UapiSettings: the knobs only the ``uapi`` emulator reads, beside the common ones.

They bend what only this dialect has: client credentials and their tokens, the daily call
budgets and the one-job-at-a-time limit, the catalogue ``/fields`` serves, the job body it
accepts, and the shape of job statuses and result files.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from typing_extensions import override

from tap_demandbase.sandbox.settings import CommonSettings, check_choice
from tap_demandbase.sandbox.uapi import catalog

#: The documented daily limits per tenant (calls per UTC day, by endpoint).
UAPI_DAILY_LIMITS = {"create": 60, "status": 300, "list": 1200, "fields": 60}
#: Endpoints ``uapi_daily_limits`` may name (``token`` has no documented limit).
UAPI_COUNTED = ("create", "status", "list", "fields", "token")
#: Job statuses, the keys of ``uapi_status_names``.
UAPI_STATUSES = ("accepted", "processing", "finished", "failed")
#: 403 errorCodes of Demandbase's registry (``uapi_denied_entity_types`` values).
UAPI_DENIAL_CODES = ("403-100", "403-101", "403-102", "403-103", "403-104", "403-105")


@dataclass
class UapiSettings(CommonSettings):
    """Knobs of the ``uapi`` emulator (Demandbase's production API).

    Attributes:
        uapi_client_id: The client id the uapi token endpoint accepts.
        uapi_client_secret: The client secret the uapi token endpoint accepts.
        uapi_token_ttl_seconds: Lifetime of uapi access tokens (``expiresIn``); ``token`` is
            accepted too and never expires.
        uapi_expire_next_tokens: The next k uapi API calls find their token expired: 401, and
            that token stays invalid.
        uapi_gateway_401: uapi 401s carry the gateway body ``{"status": ...}`` instead of
            ``{errorCode, errorMessage, diagnosticCode}``.
        uapi_daily_limits: uapi endpoint -> calls allowed per UTC day (create, status, list,
            fields, token); beyond it: 429 with errorCode 429-100.
        uapi_max_running_jobs: uapi jobs accepted or processing at once per tenant; a create
            beyond it: 429 with errorCode 429-102.
        uapi_busy_next_creates: The next k uapi job creates answer 429-102, as when a job
            started from the UI is running.
        uapi_accept_account_ids: Whether uapi jobs accept ``accountIds`` (required for the buying
            groups); if not, it is refused as an unrecognized property (400-147).
        uapi_split_files: uapi results come as files of ``rows_per_part`` rows listed in
            ``resultsUrls`` (``resultsUrl``: the first); else one file in ``resultsUrl``.
        uapi_gzip: uapi result files are gzip-compressed (same name and Content-Type).
        uapi_nulls: uapi job statuses send absent keys (message, resultsUrl...) as null.
        uapi_status_names: uapi status -> the spelling sent instead (e.g. an unknown status).
        uapi_field_types: uapi field name -> the dataType ``/fields`` serves for it, or ``omit``
            to drop the field.
        uapi_alias_fields: uapi entity type -> {new field name: existing field name}: extra
            fields repeating another's values (e.g. to make two names collide).
        uapi_max_per_page: Largest ``perPage`` of uapi ``GET /jobs``; more is served as this.
        uapi_rate_limited: uapi endpoint -> its next k calls answer 429 ``429-100`` "Rate limit
            exceeded." as a momentary limit does (create, status, list, fields); -1: every call,
            as when the endpoint's daily limit is spent (the message then says so, with the
            reset). The calls are counted like any other.
        uapi_denied_entity_types: uapi entity type -> the 403 errorCode that every fields,
            create and list call naming it answers: ``403-101`` (the tenant's Export
            Collection does not include it), ``403-100`` (the API key set lacks the Data Export
            permission) or another ``403-1xx`` of Demandbase's registry.
    """

    DIALECT: typing.ClassVar[str] = "uapi"
    ENDPOINTS: typing.ClassVar[tuple[str, ...]] = ("token", "fields", "create", "status", "list")

    uapi_client_id: str = "sandbox-client"
    uapi_client_secret: str = "sandbox-secret"
    uapi_token_ttl_seconds: int = 28800
    uapi_expire_next_tokens: int = 0
    uapi_gateway_401: bool = False
    uapi_daily_limits: dict[str, int] = field(default_factory=lambda: dict(UAPI_DAILY_LIMITS))
    uapi_max_running_jobs: int = 1
    uapi_busy_next_creates: int = 0
    uapi_accept_account_ids: bool = True
    uapi_split_files: bool = False
    uapi_gzip: bool = False
    uapi_nulls: bool = False
    uapi_status_names: dict[str, str] = field(default_factory=dict)
    uapi_field_types: dict[str, str] = field(default_factory=dict)
    uapi_alias_fields: dict[str, dict[str, str]] = field(default_factory=dict)
    uapi_max_per_page: int = 100
    uapi_rate_limited: dict[str, int] = field(default_factory=dict)
    uapi_denied_entity_types: dict[str, str] = field(default_factory=dict)

    @override
    def known_fields(self, entity: str) -> set[str]:
        """Return the generator fields of ``entity`` either dialect exports (uapi has a few
        of its own, such as ``sfdc_id`` of accounts).
        """
        own = {
            f.name
            for e in catalog.ENTITY_TYPES.values()
            if e.data.name == entity
            for f in e.data.fields
        }
        return super().known_fields(entity) | own

    @override
    def validate(self) -> None:
        """Check the common knobs, then this emulator's (limits, statuses, fields, aliases)."""
        super().validate()
        for key in self.uapi_daily_limits:
            check_choice("uapi_daily_limits key", key, UAPI_COUNTED)
        for key in self.uapi_rate_limited:
            check_choice("uapi_rate_limited key", key, tuple(UAPI_DAILY_LIMITS))
        for key in self.uapi_status_names:
            check_choice("uapi_status_names key", key, UAPI_STATUSES)
        known = catalog.field_names()
        for entity_type, aliases in self.uapi_alias_fields.items():
            check_choice("uapi_alias_fields key", entity_type, tuple(catalog.ENTITY_TYPES))
            own = {f.name for f in catalog.ENTITY_TYPES[entity_type].fields}
            for target in aliases.values():
                check_choice(f"uapi_alias_fields target of {entity_type}", target, tuple(own))
            known |= set(aliases)
        for name in self.uapi_field_types:
            if name not in known:
                raise ValueError(f"invalid uapi_field_types key {name!r}: not a uapi field name")
        if self.uapi_token_ttl_seconds < 1:
            raise ValueError("uapi_token_ttl_seconds must be at least 1")
        for entity_type, code in self.uapi_denied_entity_types.items():
            check_choice("uapi_denied_entity_types key", entity_type, tuple(catalog.ENTITY_TYPES))
            check_choice(f"uapi_denied_entity_types code of {entity_type}", code, UAPI_DENIAL_CODES)
        if self.uapi_max_running_jobs < 1 or self.uapi_max_per_page < 1:
            raise ValueError("uapi_max_running_jobs and uapi_max_per_page must be at least 1")
