"""The job ledger: what a run keeps in the stream's STATE about its in-flight export job.

Emitted as soon as the job exists and after every part, so that a run that crashes, is killed or
runs out of time leaves behind enough to re-attach: the next run GETs the job and downloads only
the parts not yet emitted, instead of spending quota on a new export of the same window.

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
    from collections.abc import MutableMapping

LEDGER_KEY = "export_job"


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
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


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


def read_entry(stream_state: MutableMapping[str, t.Any]) -> LedgerEntry | None:
    """Return the stream's ledger entry, if a previous run left one."""
    return LedgerEntry.from_state(stream_state.get(LEDGER_KEY))


def write_entry(stream_state: MutableMapping[str, t.Any], entry: LedgerEntry) -> None:
    """Put the entry in the stream's state (the caller emits the STATE message)."""
    stream_state[LEDGER_KEY] = entry.to_state()


def clear_entry(stream_state: MutableMapping[str, t.Any]) -> None:
    """Remove the entry once the job's records are all emitted and the bookmark advanced."""
    stream_state.pop(LEDGER_KEY, None)
