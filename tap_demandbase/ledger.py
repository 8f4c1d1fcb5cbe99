"""The job ledger: what a run keeps in the stream's STATE about its in-flight export job.

Emitted as soon as the job exists and after every part, so that a run that crashes, is killed or
runs out of time leaves behind enough to re-attach: the next run GETs the job and downloads only
the parts not yet emitted, instead of spending quota on a new export of the same window.
"""

from __future__ import annotations

import datetime
import typing as t
from dataclasses import dataclass, field

from tap_demandbase.api import JobSpec

LEDGER_KEY = "export_job"


@dataclass
class LedgerEntry:
    """One in-flight job: its id, what it exports, and how far its result has been emitted."""

    job_id: str
    spec: JobSpec
    created_at: str
    parts_done: list[int] = field(default_factory=list)
    max_replication_value: t.Any = None

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
            "account_list_id": self.spec.account_list_id,
            "created_at": self.created_at,
            "parts_done": sorted(self.parts_done),
            "max_replication_value": self.max_replication_value,
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
                account_list_id=value.get("account_list_id"),
            )
            return cls(
                job_id=str(value["job_id"]),
                spec=spec,
                created_at=str(value.get("created_at") or ""),
                parts_done=[int(n) for n in value.get("parts_done") or []],
                max_replication_value=value.get("max_replication_value"),
            )
        except (KeyError, TypeError, ValueError):
            return None


def _date(value: t.Any) -> datetime.date | None:
    return datetime.date.fromisoformat(value) if value else None


def read_entry(stream_state: dict[str, t.Any]) -> LedgerEntry | None:
    """Return the stream's ledger entry, if a previous run left one."""
    return LedgerEntry.from_state(stream_state.get(LEDGER_KEY))


def write_entry(stream_state: dict[str, t.Any], entry: LedgerEntry) -> None:
    """Put the entry in the stream's state (the caller emits the STATE message)."""
    stream_state[LEDGER_KEY] = entry.to_state()


def clear_entry(stream_state: dict[str, t.Any]) -> None:
    """Remove the entry once the job's records are all emitted and the bookmark advanced."""
    stream_state.pop(LEDGER_KEY, None)
