"""Validating a uapi ``POST /data/export/v1/job`` body into what the job store runs.

The checks and their error codes follow Demandbase's published error registry (see
``demandbase-production-api.md`` §2.3 and §4.2). Where public material is silent the sandbox
picks the strict, plausible reading and says so here:

- Unknown body keys are refused (400-147, documented). ``accountIds`` is not in the published
  schema; it is accepted unless ``uapi_accept_account_ids`` is off. ``companyIds`` and
  ``jobType`` are refused.
- ``fields`` omitted: every field of the entity [inferred].
- ``fromDate``/``toDate`` (``yyyy-mm-dd`` or ``yyyy-mm-ddThh:mm:ssZ``, compared by UTC day, both
  ends inclusive): required for activity, where they filter ``{Activity}.activityDate`` and may
  span at most 90 days (``toDate <= fromDate + 89 days``, else 400-114); required for the
  rollup report types, where they name the reporting period and do not change the rows; refused
  for the other entity types (400-103), where production's behaviour is unknown.
- ``filters``: date comparisons (``Greater Than or Equal To``, ``Less Than or Equal To``,
  ``Greater Than``, ``Less Than``, ``Between``, ``Equals``) on Date/Datetime fields, by UTC day,
  on one date field per job; ``Equals`` and ``In`` on any field (exact text). The other
  documented operators are valid but not emulated (400-103); a comparison on a field that is
  neither a date nor a number is 400-140.
- ``source`` (campaign, creative) keeps the rows of those ad platforms (``all``: every one);
  ``adReportType`` is checked but every report type of an entity has the same fields and rows.
- ``accountIds`` (buying groups) keeps the rows of those accounts; an id is a number (``42``
  means the sandbox's ``acc-0000042``) or a sandbox account id.
- ``accountListIds``/``personListIds``: one list id per job, the ``export_v1`` stand-in
  membership (``data.Filters.account_list_id``).
- ``limit`` (1-1,000) caps the rows exported [unknown in production].
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from tap_demandbase.sandbox.api import ApiError
from tap_demandbase.sandbox.data import Filters
from tap_demandbase.sandbox.uapi.catalog import (
    SOURCES,
    UapiEntity,
    UapiField,
    entity_type_named,
    fields_for,
    live_entity,
)
from tap_demandbase.sandbox.uapi.settings import UapiSettings

#: Every body key of the published ``JobRequestBody`` (plus ``limit``, seen in Demandbase's
#: Postman collection).
REQUEST_KEYS = frozenset(
    {
        "entityType",
        "jobName",
        "fields",
        "filters",
        "fromDate",
        "toDate",
        "source",
        "adReportType",
        "accountListIds",
        "personListIds",
        "limit",
        "format",
    }
)
#: The filter operators Demandbase documents, exactly as spelled there.
OPERATORS = (
    "Equals",
    "Does Not Equal",
    "Contains",
    "Does Not Contain",
    "Begins With",
    "Does Not Begin With",
    "Ends With",
    "Does Not End With",
    "Greater Than",
    "Greater Than or Equal To",
    "Less Than",
    "Less Than or Equal To",
    "Between",
    "Exists",
    "Does Not Exist",
    "In",
    "Not In",
)
_COMPARISONS = frozenset(
    {"Greater Than", "Greater Than or Equal To", "Less Than", "Less Than or Equal To", "Between"}
)
_NUMERIC_KINDS = frozenset(
    {"integer", "int", "long", "bigint", "number", "float", "double", "decimal", "currency"}
    | {"percent"}
)
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}:\d{2}Z)?")
_SANDBOX_ACCOUNT_ID = re.compile(r"acc-\d{7}")
MAX_JOB_NAME = 50
MAX_IDS = 10_000
MAX_ACTIVITY_DAYS = 90


def bad_request(code: str, message: str) -> ApiError:
    """Return a 400 with errorCode ``code`` (e.g. ``400-115``)."""
    return ApiError(400, code, message)


@dataclass(frozen=True)
class JobRequest:
    """A validated create-job body: what to export and how the job is named."""

    entity: UapiEntity
    job_name: str
    fields: tuple[UapiField, ...]
    filters: Filters
    max_rows: int | None = None

    @property
    def sources(self) -> list[str]:
        """Return the generator fields to export, in request order."""
        return [f.source for f in self.fields]

    @property
    def header(self) -> list[str]:
        """Return the CSV header names (the original field names), in request order."""
        return [f.name for f in self.fields]


@dataclass
class _Bounds:
    """Date conditions collected from ``fromDate``/``toDate`` and ``filters``."""

    date_field: UapiField | None = None
    start: date | None = None
    end: date | None = None
    one_of: list[tuple[str, frozenset[str]]] = field(default_factory=list)

    def restrict(self, on: UapiField, start: date | None, end: date | None) -> None:
        if self.date_field is not None and self.date_field.source != on.source:
            raise bad_request(
                "400-103",
                "The sandbox applies date conditions to one field per job; got "
                f"{self.date_field.name} and {on.name}",
            )
        self.date_field = on
        if start is not None:
            self.start = start if self.start is None else max(self.start, start)
        if end is not None:
            self.end = end if self.end is None else min(self.end, end)


def parse_job_request(body: object, settings: UapiSettings) -> JobRequest:
    """Validate a create-job body under the live knobs.

    Raises:
        ApiError: 400 with the documented errorCode of the first problem found.
    """
    if not isinstance(body, dict):
        raise bad_request("400-102", "The request body is not a valid JSON object.")
    allowed = REQUEST_KEYS | ({"accountIds"} if settings.uapi_accept_account_ids else set())
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise bad_request(
            "400-147", f"The request contains an unrecognized property: {', '.join(unknown)}"
        )
    entity = live_entity(_entity(body), settings)
    job_name = body.get("jobName")
    if not isinstance(job_name, str) or not job_name.strip() or len(job_name) > MAX_JOB_NAME:
        raise bad_request("400-126", "jobName is missing or longer than 50 characters.")
    output = body.get("format", "csv")
    if not isinstance(output, str) or output.lower() != "csv":
        raise bad_request("400-116", f"format {output!r} is not supported; the sandbox writes CSV.")
    available = fields_for(entity, settings)
    fields = _fields(entity, available, body.get("fields"))
    bounds = _Bounds()
    _dates(entity, body, available, bounds)
    _report(entity, body, bounds)
    _filters(body.get("filters"), available, bounds)
    _account_ids(entity, body, bounds, settings.uapi_accept_account_ids)
    list_id = _list_id(body)
    return JobRequest(
        entity=entity,
        job_name=job_name,
        fields=fields,
        filters=Filters(
            None if bounds.date_field is None else bounds.date_field.source,
            bounds.start,
            bounds.end,
            list_id,
            tuple(bounds.one_of),
        ),
        max_rows=_limit(body.get("limit")),
    )


def _entity(body: dict[str, object]) -> UapiEntity:
    if "entityType" not in body:
        raise bad_request("400-104", "The required parameter entityType is missing.")
    entity = entity_type_named(body["entityType"])
    if entity is None:
        raise bad_request("400-127", f"The entityType {body['entityType']!r} is not supported.")
    return entity


def _fields(
    entity: UapiEntity, available: tuple[UapiField, ...], requested: object
) -> tuple[UapiField, ...]:
    """Return the requested fields (all when omitted); 400-115 names every invalid one."""
    if requested is None:
        return available
    if (
        not isinstance(requested, list)
        or not requested
        or not all(isinstance(n, str) for n in requested)
    ):
        raise bad_request("400-103", "fields must be a non-empty list of field names.")
    by_name = {f.name: f for f in available}
    invalid = [n for n in requested if n not in by_name]
    if invalid:
        raise bad_request("400-115", f"Invalid field names: {', '.join(invalid)}")
    if len(set(requested)) != len(requested):
        raise bad_request("400-103", "fields must not name a field twice.")
    return tuple(by_name[n] for n in requested)


def _day(value: object, what: str) -> date:
    """Return the UTC day of a ``yyyy-mm-dd`` or ``yyyy-mm-ddThh:mm:ssZ`` value (else 400-111)."""
    match = _DATE.fullmatch(value) if isinstance(value, str) else None
    try:
        if match is None:
            raise ValueError
        return date.fromisoformat(match.group(1))
    except ValueError:
        raise bad_request(
            "400-111", f"{what} {value!r} is not a yyyy-mm-dd or yyyy-mm-ddThh:mm:ssZ date."
        ) from None


def _dates(
    entity: UapiEntity,
    body: dict[str, object],
    available: tuple[UapiField, ...],
    bounds: _Bounds,
) -> None:
    """Check ``fromDate``/``toDate``; for activity, restrict ``{Activity}.activityDate``."""
    given = [key for key in ("fromDate", "toDate") if body.get(key) is not None]
    dated = entity.date_range_field is not None or entity.report_types
    if not given:
        if entity.date_range_field is not None:
            raise bad_request(
                "400-104", f"fromDate and toDate are required for {entity.entity_type} exports."
            )
        return
    if not dated:
        raise bad_request(
            "400-103",
            f"fromDate/toDate are not emulated for {entity.entity_type} exports "
            "(production behaviour unknown); filter on a date field instead.",
        )
    if len(given) == 1:
        raise bad_request("400-112", "fromDate and toDate must be supplied together.")
    start, end = _day(body["fromDate"], "fromDate"), _day(body["toDate"], "toDate")
    if start > end:
        raise bad_request("400-113", f"fromDate {start} is after toDate {end}.")
    if entity.date_range_field is None:
        return  # a report period: the rows do not change
    if end > start + timedelta(days=MAX_ACTIVITY_DAYS - 1):
        raise bad_request(
            "400-114",
            f"The date range of an activity export cannot exceed {MAX_ACTIVITY_DAYS} days "
            f"({start} to {end}).",
        )
    on = next((f for f in available if f.name == entity.date_range_field), None)
    if on is not None:
        bounds.restrict(on, start, end)


def _report(entity: UapiEntity, body: dict[str, object], bounds: _Bounds) -> None:
    """Check ``adReportType`` and ``source`` (campaign, creative); keep the sources' rows."""
    report, source = body.get("adReportType"), body.get("source")
    if not entity.report_types:
        if report is not None:
            raise bad_request(
                "400-139", f"adReportType is not valid for {entity.entity_type} exports."
            )
        if source is not None:
            raise bad_request("400-103", "source applies to campaign and creative exports only.")
        return
    if report is None:
        raise bad_request("400-104", f"adReportType is required for {entity.entity_type} exports.")
    if report not in entity.report_types:
        raise bad_request(
            "400-139",
            f"adReportType {report!r} is not valid for {entity.entity_type}; one of: "
            f"{', '.join(entity.report_types)}.",
        )
    if report in entity.dated_report_types and body.get("fromDate") is None:
        raise bad_request("400-104", f"fromDate and toDate are required for {report} reports.")
    if source is None:
        raise bad_request("400-104", f"source is required for {entity.entity_type} exports.")
    if (
        not isinstance(source, list)
        or not source
        or not all(isinstance(s, str) and s.lower() in SOURCES for s in source)
    ):
        raise bad_request(
            "400-138", f"source must be a list of: {', '.join(SOURCES)}; got {source!r}."
        )
    wanted = frozenset(s.lower() for s in source)
    if "all" not in wanted:
        bounds.one_of.append(("source", wanted))


def _filters(raw: object, available: tuple[UapiField, ...], bounds: _Bounds) -> None:
    """Check ``filters`` and turn the emulated ones into row conditions."""
    if raw is None:
        return
    if not isinstance(raw, list):
        raise bad_request("400-103", "filters must be a list of {field, operator, values}.")
    by_name = {f.name: f for f in available}
    for item in raw:
        if not isinstance(item, dict) or set(item) - {"field", "operator", "values"}:
            raise bad_request(
                "400-103", f"A filter is an object of field, operator and values: {item!r}"
            )
        name, operator, values = item.get("field"), item.get("operator"), item.get("values")
        on = by_name.get(name) if isinstance(name, str) else None
        if on is None:
            raise bad_request("400-115", f"Invalid field names: {name}")
        if operator not in OPERATORS:
            raise bad_request(
                "400-103", f"Unknown filter operator {operator!r}; one of: {', '.join(OPERATORS)}"
            )
        if values is not None and (
            not isinstance(values, list) or not all(isinstance(v, str) for v in values)
        ):
            raise bad_request("400-103", f"Filter values must be a list of strings: {values!r}")
        texts: list[str] = values or []
        if on.is_date and (operator in _COMPARISONS or operator == "Equals"):
            _date_filter(on, str(operator), texts, bounds)
        elif operator in _COMPARISONS and on.kind not in _NUMERIC_KINDS:
            raise bad_request(
                "400-140",
                f"The filter operator {operator!r} is invalid for {on.name} "
                f"(dataType {on.data_type}).",
            )
        elif operator in ("Equals", "In") and texts:
            if operator == "Equals" and len(texts) != 1:
                raise bad_request("400-103", "Equals takes exactly one value.")
            bounds.one_of.append((on.source, frozenset(texts)))
        else:
            raise bad_request(
                "400-103",
                f"The sandbox does not emulate the filter {operator!r} on {on.name}; it emulates "
                "date comparisons, Equals and In.",
            )


def _date_filter(on: UapiField, operator: str, values: list[str], bounds: _Bounds) -> None:
    """Turn a comparison on a date field into inclusive UTC-day bounds."""
    wanted = 2 if operator == "Between" else 1
    if len(values) != wanted:
        raise bad_request("400-103", f"{operator} takes {wanted} value(s), got {len(values)}.")
    days = [_day(v, f"Filter value of {on.name}") for v in values]
    one_day = timedelta(days=1)
    first, last = {
        "Greater Than or Equal To": (days[0], None),
        "Greater Than": (days[0] + one_day, None),
        "Less Than or Equal To": (None, days[0]),
        "Less Than": (None, days[0] - one_day),
        "Equals": (days[0], days[0]),
        "Between": (days[0], days[-1]),
    }[operator]
    bounds.restrict(on, first, last)


def _account_ids(
    entity: UapiEntity, body: dict[str, object], bounds: _Bounds, required: bool
) -> None:
    """Check ``accountIds`` (buying groups) and keep those accounts' rows.

    ``required`` is false when the ``uapi_accept_account_ids`` knob refuses the property: a
    buying-group job then exports every row.
    """
    raw = body.get("accountIds")
    if not entity.account_scoped:
        if raw is not None:
            raise bad_request("400-103", "accountIds applies to the Buying Group entity types.")
        return
    if raw is None or raw == []:
        if not required:
            return
        raise bad_request(
            "400-149", "accountIds is required for the selected Buying Group entity type."
        )
    if not isinstance(raw, list):
        raise bad_request("400-148", "accountIds must be a list of numeric account ids.")
    if len(raw) > MAX_IDS:
        raise bad_request("400-150", f"accountIds has more than {MAX_IDS:,} ids.")
    bounds.one_of.append(("account_id", frozenset(_account_id(v) for v in raw)))


def _account_id(value: object) -> str:
    """Return the sandbox account id a requested id names (``42`` -> ``acc-0000042``)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return f"acc-{value:07d}"
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return f"acc-{int(value):07d}"
    if isinstance(value, str) and _SANDBOX_ACCOUNT_ID.fullmatch(value):
        return value
    raise bad_request("400-148", f"accountIds contains a non-numeric id: {value!r}")


def _list_id(body: dict[str, object]) -> str | None:
    """Check ``accountListIds``/``personListIds``; return the one list id, if any."""
    ids: list[str] = []
    for key, code, too_many in (
        ("accountListIds", "400-129", "400-145"),
        ("personListIds", "400-141", "400-146"),
    ):
        raw = body.get(key)
        if raw is None:
            continue
        if not isinstance(raw, list):
            raise bad_request(code, f"{key} must be a list of numeric ids.")
        if len(raw) > MAX_IDS:
            raise bad_request(too_many, f"{key} has more than {MAX_IDS:,} ids.")
        for value in raw:
            text = str(value) if isinstance(value, (int, str)) else ""
            if isinstance(value, bool) or not text.isdigit():
                raise bad_request(code, f"{key} contains a non-numeric id: {value!r}")
            ids.append(text)
    if len(ids) > 1:
        raise bad_request("400-103", "The sandbox emulates one account or person list per job.")
    return ids[0] if ids else None


def _limit(raw: object) -> int | None:
    """Return ``limit`` as a row cap (400-118 if not numeric, 400-119 outside 1-1,000)."""
    if raw is None:
        return None
    text = str(raw) if isinstance(raw, (int, str)) and not isinstance(raw, bool) else ""
    if not text.isdigit():
        raise bad_request("400-118", f"limit must be numeric, got {raw!r}.")
    if not 1 <= int(text) <= 1000:
        raise bad_request("400-119", "limit is outside the supported range of 1-1,000.")
    return int(text)
