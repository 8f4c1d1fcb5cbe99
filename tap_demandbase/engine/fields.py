"""Fields that come and go: a selected field the API no longer has is dropped from the stream's
jobs (its column stays in the target, empty from then on), and a field the API offers that the
catalog lacks is named once, with how to add it.

Demandbase makes one export field per keyword set, and a set cannot be renamed: a "rename" is a
new field and the old one stops. Without this rule one stale field fails every scheduled run
until someone runs discovery. A key or bookmark field is never dropped: rows without it cannot
be upserted or bookmarked, so the stream fails with one line saying to run discovery.

No Singer and no API words here: a dialect says which fields its answer names
(``UnknownFieldsError.api_names``) and which fields it lists (``ExportApi.offered_fields``).
"""

from __future__ import annotations

import threading
import typing as t
from dataclasses import replace

from tap_demandbase.errors import UnknownFieldsError

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Collection, Iterable, Mapping, Sequence

    from tap_demandbase.model import ExportApi, FieldInfo, JobSpec

#: How to refresh the catalog, as every line of this module says it.
REDISCOVER = (
    "run discovery again (tap-demandbase --discover; with Meltano, whose catalog is cached: "
    "meltano run --refresh-catalog ...)"
)


class FieldDrops:
    """The fields each stream's jobs go without in this run (property → API name), shared by
    every window and every job started ahead (hence the lock).
    """

    def __init__(self) -> None:
        self._dropped: dict[str, dict[str, str]] = {}
        self._checked: set[str] = set()
        self._lock = threading.Lock()

    def dropped(self, stream: str) -> dict[str, str]:
        """Return the fields dropped from the stream's jobs so far (property → API name)."""
        with self._lock:
            return dict(self._dropped.get(stream, {}))

    def drop(self, stream: str, fields: Mapping[str, str]) -> dict[str, str]:
        """Drop fields from the stream's jobs; return those not dropped before (to be said)."""
        with self._lock:
            known = self._dropped.setdefault(stream, {})
            new = {name: api for name, api in fields.items() if name not in known}
            known.update(new)
            return new

    def first_check(self, stream: str) -> bool:
        """Whether the stream's fields are not yet checked against the API's list in this run
        (and mark them checked): the lines of that check are said once per run.
        """
        with self._lock:
            first = stream not in self._checked
            self._checked.add(stream)
            return first


def without(fields: Sequence[str], dropped: Collection[str]) -> tuple[str, ...]:
    """Return the fields, less the dropped ones, in their order."""
    return tuple(name for name in fields if name not in dropped)


def named_fields(
    fields: Iterable[str], api_names: Mapping[str, str], named: Collection[str]
) -> dict[str, str]:
    """Return the job's fields (property → API name) among those an API answer names (by
    their API names, or their property names for an API that names fields as properties).
    """
    out = {}
    for name in fields:
        api_name = api_names.get(name, name)
        if api_name in named or name in named:
            out[name] = api_name
    return out


def gone_fields(
    fields: Iterable[str], api_names: Mapping[str, str], offered: Sequence[FieldInfo]
) -> dict[str, str]:
    """Return the fields (property → API name) the API's list no longer has."""
    listed = {f.name for f in offered} | {f.name_in_api for f in offered}
    return {
        name: api_names.get(name, name)
        for name in fields
        if name not in listed and api_names.get(name, name) not in listed
    }


def new_fields(offered: Sequence[FieldInfo], catalog: Collection[str]) -> list[FieldInfo]:
    """Return the fields the API lists that the catalog lacks (selected or not), in its order."""
    return [f for f in offered if f.name not in catalog]


def shown(fields: Mapping[str, str]) -> str:
    """Return fields as the lines name them: ``property`` or ``property (API name)``."""
    return ", ".join(name if api == name else f"{name} ({api})" for name, api in fields.items())


def dropped_line(stream: str, fields: Mapping[str, str], why: str) -> str:
    """Say that fields are dropped from a stream's jobs, why, and what to do."""
    one = len(fields) == 1
    which, column = ("field", "its column stays") if one else ("fields", "their columns stay")
    return (
        f"Stream '{stream}': the API no longer has the selected {which} {shown(fields)} ({why}): "
        f"dropped from its export jobs; the sync goes on, and {column} in the target, "
        f"empty (null) from now on. To stop this warning, {REDISCOVER}."
    )


def gone_line(stream: str, fields: Mapping[str, str]) -> str:
    """Say (for --test) which selected fields the API's list no longer has, and what a sync
    does about them.
    """
    return (
        f"Stream '{stream}': the API's field list no longer has the selected field(s) "
        f"{shown(fields)}: a sync drops them from its export jobs, and their columns stay in "
        f"the target, empty (null). To stop this, {REDISCOVER}."
    )


def new_fields_line(stream: str, fields: Sequence[FieldInfo]) -> str:
    """Say which fields the API offers that the catalog lacks, and how to add them."""
    names = shown({f.name: f.name_in_api for f in fields})
    first = fields[0].name
    return (
        f"Stream '{stream}': the API offers {len(fields)} field(s) the catalog lacks: {names}. "
        f"To export them, {REDISCOVER} and select them (with Meltano: meltano select "
        f"tap-demandbase {stream} {first}, or a select of {stream}.*)."
    )


def key_gone_error(
    stream: str, fields: Mapping[str, str], keys: Collection[str], cause: Exception | None
) -> UnknownFieldsError:
    """Return the error of a key or bookmark field the API no longer has: not droppable."""
    gone = {name: api for name, api in fields.items() if name in keys}
    which = "field" if len(gone) == 1 else "fields"
    msg = (
        f"Stream '{stream}': the API no longer has the {which} {shown(gone)}, which the stream "
        "cannot go without (its primary key or replication key). Run discovery again "
        "(tap-demandbase --discover) and choose another replication key (replication_keys) "
        "if it was that one."
    )
    if cause is not None:
        msg += f" The API said: {cause}"
    return UnknownFieldsError(msg, list(gone.values()))


class StreamFields:
    """One stream's side of the rule in one run: which fields its jobs go without, and the
    lines that say so (the run's ``FieldDrops`` is shared by every window and job started ahead).
    """

    def __init__(
        self,
        api: ExportApi,
        drops: FieldDrops,
        stream: str,
        *,
        selected: Sequence[str],
        catalog: Collection[str],
        keys: Collection[str],
        logger: logging.Logger,
    ) -> None:
        self.api = api
        self.drops = drops
        self.stream = stream
        self.selected = tuple(selected)
        self.catalog = catalog or self.selected
        self.keys = set(keys)
        self.logger = logger

    def check(self) -> None:
        """Once per run, before the stream's first job: if the API's field list is known in
        this run, drop the selected fields it no longer has, and name the fields it offers that
        the catalog lacks (one INFO line).
        """
        if not self.drops.first_check(self.stream):
            return
        api_names = self.api.field_api_names(self.stream)  # lists the fields if nobody said them
        offered = self.api.offered_fields(self.stream)
        if offered is None:
            return
        gone = gone_fields(self.selected, api_names, offered)
        if gone:
            self.drop(gone, "the API's field list does not have it any more")
        new = new_fields(offered, self.catalog)
        if new:
            self.logger.info("%s", new_fields_line(self.stream, new))

    def drop(
        self, fields: Mapping[str, str], why: str, cause: UnknownFieldsError | None = None
    ) -> None:
        """Drop fields (property → API name) from the stream's jobs for the rest of the run,
        saying so once per field; a key field cannot be dropped (UnknownFieldsError).
        """
        if set(fields) & self.keys:
            raise key_gone_error(self.stream, fields, self.keys, cause)
        newly = self.drops.drop(self.stream, fields)
        if newly:
            self.logger.warning("%s", dropped_line(self.stream, newly, why))

    def dropped(self) -> dict[str, str]:
        """Return the fields dropped from the stream's jobs so far (property → API name)."""
        return self.drops.dropped(self.stream)

    def without_dropped(self, spec: JobSpec) -> JobSpec:
        """Return the spec less the fields dropped from the stream's jobs in this run."""
        dropped = self.dropped()
        return replace(spec, fields=without(spec.fields, dropped)) if dropped else spec

    def drop_refused(self, spec: JobSpec, refusal: UnknownFieldsError) -> JobSpec:
        """Return the spec less the fields the API refused it for (dropped for the run), or
        raise the refusal when it names none of the spec's fields (nothing to drop: no retry).
        """
        named = named_fields(spec.fields, self.api.field_api_names(self.stream), refusal.api_names)
        remaining = without(spec.fields, named)
        if not named or not remaining:
            raise refusal
        self.drop(named, "the API refused an export job naming it", refusal)
        return replace(spec, fields=remaining)

    def resumed_without(self, job_id: str, dropped: Mapping[str, str], spec: JobSpec) -> JobSpec:
        """Return the spec less the fields a job resumed from the state was created without
        (dropped for the run too, and said), when those are all it lacks; else the spec.
        """
        lacking = {f: api for f, api in dropped.items() if f in spec.fields}
        if not lacking:
            return spec
        why = f"export job {job_id}, resumed from the state, was created without it"
        self.drop(lacking, why)
        return self.without_dropped(spec)
