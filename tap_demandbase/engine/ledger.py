"""The job ledger: what a run keeps in the stream's STATE about its in-flight export job.

Emitted as soon as the job exists and after every part, so that a run that crashes, is killed or
runs out of time leaves behind enough to re-attach: the next run GETs the job and downloads only
the parts not yet emitted, instead of spending quota on a new export of the same window.

A window whose rows come from several jobs (one per filter set, e.g. a chunk of account ids) is
in flight until every one of them is done: which filter sets are done is kept too, so that the
next run exports only the missing ones, and the bookmark never passes a window half exported.

Each part done is kept with the rows it held, so that a run that resumes a job still checks
all of its rows against the job's ``record_count``; a job whose result proved inconsistent is
marked so, and the next run exports its window anew instead of trusting it.
"""

from __future__ import annotations

import datetime
import typing as t
from dataclasses import dataclass, field

from tap_demandbase.model import Filters, JobSpec

if t.TYPE_CHECKING:
    from collections.abc import Mapping, MutableMapping

#: What a job is for (see ``LedgerEntry.purpose``).
Purpose = t.Literal["incremental", "lookback", "backfill", "check"]

LEDGER_KEY = "export_job"
#: Stream state key: jobs created ahead for the stream's later windows while it, or another
#: stream, was still being read (the job slot is free once a job finishes on the server).
AHEAD_KEY = "export_jobs_ahead"
#: Stream state key: the filter sets already done of a window that several jobs export.
SPLIT_WINDOW_KEY = "window_filters_done"


@dataclass
class LedgerEntry:
    """One in-flight job: its id, what it exports, and how far its result has been emitted."""

    job_id: str
    spec: JobSpec
    created_at: str
    #: Part number → rows it held (None: emitted by a version that did not count them).
    parts_done: dict[int, int | None] = field(default_factory=dict)
    max_replication_value: t.Any = None
    #: Why the job's result cannot be trusted (None: nothing wrong found).
    inconsistent: str | None = None
    #: What the job is for: the bookmark's windows, or re-reading days before it (lookback)
    #: or before the first synced day (backfill), which never move the bookmark, or every row
    #: again (a delete check).
    purpose: Purpose = "incremental"
    #: Selected fields the job was created without, the API no longer having them (property →
    #: API name): a run resuming it goes without them too.
    dropped: dict[str, str] = field(default_factory=dict)

    def rows_done(self) -> int | None:
        """Return the rows of all parts done, or None when some part's count is unknown."""
        counts = list(self.parts_done.values())
        return None if None in counts else sum(t.cast("list[int]", counts))

    def to_state(self) -> dict[str, t.Any]:
        """Return the JSON the STATE message carries."""
        return {
            "job_id": self.job_id,
            "entity_type": self.spec.entity,
            "fields": list(self.spec.fields),
            "window": {
                "field": self.spec.date_field,
                "start": self.spec.start.isoformat() if self.spec.start else None,
                "end": self.spec.end.isoformat() if self.spec.end else None,
            },
            "filters": dict(self.spec.filters),
            "created_at": self.created_at,
            "parts_done": {str(n): rows for n, rows in sorted(self.parts_done.items())},
            "max_replication_value": self.max_replication_value,
            **({"inconsistent": self.inconsistent} if self.inconsistent else {}),
            **({"purpose": self.purpose} if self.purpose != "incremental" else {}),
            **({"fields_dropped": dict(self.dropped)} if self.dropped else {}),
        }

    @classmethod
    def from_state(cls, value: t.Any) -> LedgerEntry | None:
        """Read an entry back; None when the state holds none (or one this version cannot read)."""
        if not isinstance(value, dict) or not value.get("job_id"):
            return None
        try:
            window = value.get("window") or {}
            spec = JobSpec(
                entity=str(value["entity_type"]),
                fields=tuple(value["fields"]),
                date_field=window.get("field"),
                start=_date(window.get("start")),
                end=_date(window.get("end")),
                filters=filters_from_state(value),
            )
            return cls(
                job_id=str(value["job_id"]),
                spec=spec,
                created_at=str(value.get("created_at") or ""),
                parts_done=_parts_done(value.get("parts_done")),
                max_replication_value=value.get("max_replication_value"),
                inconsistent=str(value["inconsistent"]) if value.get("inconsistent") else None,
                purpose=_purpose(value.get("purpose")),
                dropped={str(k): str(v) for k, v in (value.get("fields_dropped") or {}).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def _purpose(value: t.Any) -> Purpose:
    if value in (None, "incremental"):
        return "incremental"
    if value in ("lookback", "backfill", "check"):
        return t.cast("Purpose", value)
    raise ValueError(f"unknown purpose {value!r}")


def filters_from_state(value: dict[str, t.Any]) -> Filters:
    """Read a job's filters back: ``{"filters": {...}}``, or the ``account_list_id`` that
    versions before dialects kept on its own.
    """
    filters = value.get("filters")
    if isinstance(filters, dict):
        return tuple(sorted((str(k), str(v)) for k, v in filters.items()))
    legacy = value.get("account_list_id")
    return (("account_list_id", str(legacy)),) if legacy else ()


def _parts_done(value: t.Any) -> dict[int, int | None]:
    """Read parts done: ``{"1": rows}``, or the plain list of part numbers of older versions."""
    if isinstance(value, dict):
        return {int(n): None if rows is None else int(rows) for n, rows in value.items()}
    return {int(n): None for n in value or []}


def _date(value: t.Any) -> datetime.date | None:
    return datetime.date.fromisoformat(value) if value else None


def read_entry(stream_state: Mapping[str, t.Any]) -> LedgerEntry | None:
    """Return the stream's ledger entry, if a previous run left one."""
    return LedgerEntry.from_state(stream_state.get(LEDGER_KEY))


def write_entry(stream_state: MutableMapping[str, t.Any], entry: LedgerEntry) -> None:
    """Put the entry in the stream's state (the caller emits the STATE message)."""
    stream_state[LEDGER_KEY] = entry.to_state()


def clear_entry(stream_state: MutableMapping[str, t.Any]) -> None:
    """Remove the entry once the job's records are all emitted and the bookmark advanced."""
    stream_state.pop(LEDGER_KEY, None)


def read_ahead(stream_state: Mapping[str, t.Any]) -> list[LedgerEntry] | None:
    """Return the jobs created ahead for the stream's later windows (None: not readable)."""
    value = stream_state.get(AHEAD_KEY)
    if value is None:
        return []
    if not isinstance(value, list):
        return None
    entries = [LedgerEntry.from_state(item) for item in value]
    return None if None in entries else t.cast("list[LedgerEntry]", entries)


def read_entries(stream_state: Mapping[str, t.Any]) -> list[LedgerEntry]:
    """Return every job of the stream's ledger: the one being read first, then those ahead."""
    current = read_entry(stream_state)
    return ([current] if current else []) + (read_ahead(stream_state) or [])


def write_ahead(stream_state: MutableMapping[str, t.Any], entry: LedgerEntry) -> None:
    """Keep a job created ahead in the stream's state, in place of an earlier job of the same
    window and filters (an attempt that failed); nothing when it is the job being read.
    """
    current = read_entry(stream_state)
    if current is not None and current.job_id == entry.job_id:
        return
    same = _window_of(entry.spec)
    kept = [e for e in read_ahead(stream_state) or [] if _window_of(e.spec) != same]
    stream_state[AHEAD_KEY] = [e.to_state() for e in [*kept, entry]]


def take_ahead(stream_state: MutableMapping[str, t.Any], job_id: str) -> LedgerEntry | None:
    """Remove a job from the jobs ahead (its window is now being read) and return it."""
    ahead = read_ahead(stream_state) or []
    taken = next((e for e in ahead if e.job_id == job_id), None)
    rest = [e.to_state() for e in ahead if e.job_id != job_id]
    if rest:
        stream_state[AHEAD_KEY] = rest
    else:
        stream_state.pop(AHEAD_KEY, None)
    return taken


def _window_of(spec: JobSpec) -> tuple[t.Any, ...]:
    return (spec.entity, spec.date_field, spec.start, spec.end, spec.filters)


@dataclass
class SplitWindow:
    """A window exported by one job per filter set, some of them done: which, the greatest
    bookmark value they emitted, and whether every one was created after the window's last day
    (so that no row of the window could still come).
    """

    date_field: str | None
    start: datetime.date | None
    end: datetime.date | None
    done: list[Filters] = field(default_factory=list)
    max_replication_value: t.Any = None
    for_good: bool = True

    @classmethod
    def of(cls, spec: JobSpec) -> SplitWindow:
        """Return the window of a job, none of its filter sets done yet."""
        return cls(spec.date_field, spec.start, spec.end)

    def holds(self, spec: JobSpec) -> bool:
        """Whether a job exports this window (whatever its filters)."""
        return (spec.date_field, spec.start, spec.end) == (self.date_field, self.start, self.end)

    def did(self, spec: JobSpec) -> bool:
        """Whether a job's rows are already emitted: its window, with filters done."""
        return self.holds(spec) and spec.filters in self.done

    def add(self, filters: Filters, max_value: t.Any, *, for_good: bool) -> None:
        """Count a filter set as done, with the greatest bookmark value its job emitted."""
        if filters not in self.done:
            self.done.append(filters)
        current = self.max_replication_value
        if max_value is not None and (current is None or max_value > current):
            self.max_replication_value = max_value
        self.for_good = self.for_good and for_good

    def to_state(self) -> dict[str, t.Any]:
        """Return the JSON the STATE message carries."""
        return {
            "field": self.date_field,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "filters": [dict(f) for f in self.done],
            "max_replication_value": self.max_replication_value,
            "for_good": self.for_good,
        }

    @classmethod
    def from_state(cls, value: dict[str, t.Any]) -> SplitWindow:
        """Read a split window back.

        Raises:
            TypeError, ValueError, AttributeError: it is not the shape ``to_state`` writes.
        """
        done = value["filters"]
        if not isinstance(done, list) or not all(isinstance(f, dict) for f in done):
            raise TypeError("filters is not a list of objects")
        field_name = value.get("field")
        return cls(
            date_field=None if field_name is None else str(field_name),
            start=_date(value.get("start")),
            end=_date(value.get("end")),
            done=[filters_from_state({"filters": f}) for f in done],
            max_replication_value=value.get("max_replication_value"),
            for_good=value.get("for_good") is True,
        )


def read_split_window(stream_state: Mapping[str, t.Any]) -> SplitWindow | None:
    """Return the window some of whose filter sets an earlier run finished, if any."""
    value = stream_state.get(SPLIT_WINDOW_KEY)
    if not isinstance(value, dict):
        return None
    try:
        return SplitWindow.from_state(value)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def write_split_window(stream_state: MutableMapping[str, t.Any], window: SplitWindow) -> None:
    """Put the split window in the stream's state (the caller emits the STATE message)."""
    stream_state[SPLIT_WINDOW_KEY] = window.to_state()


def clear_split_window(stream_state: MutableMapping[str, t.Any]) -> None:
    """Remove the split window once every filter set of it is done."""
    stream_state.pop(SPLIT_WINDOW_KEY, None)
