"""How the source changed since its rows were generated: the row-change knobs, as a pure value.

The generator (``data.py``) makes ``rows[entity]`` base rows. The change knobs say what happened
to them since, each a pure function of the knobs (a test sets them between two runs, and the
next export shows the change):

- ``deleted_rows``: entity -> row ids. Those rows are in no export and no count. Taking an id
  out of the knob brings the row back exactly as it was (same values, same
  ``last_modified_date``), so an incremental export on ``last_modified_date`` does not see it.
- ``merged_rows``: entity -> {merged id: ``survivor id`` or ``survivor id@instant``}. The merged
  row is gone, as if deleted; the survivor's values change (salted by the merged id) and its
  ``last_modified_date`` becomes ``instant``, or ``data_end`` (see below) when none is given.
- ``updated_rows``: entity -> {row id: instant}. The row's values change (salted by the instant)
  and its ``last_modified_date`` becomes ``instant``: an incremental export sees it.
- ``restated_rows``: entity -> {row id: revision (1, 2, ...)}. The row's values change (salted
  by the revision) and no date moves: only a re-export of its window sees it (Demandbase
  re-scoring past activities).
- ``appended_rows``: entity -> {instant: count}. ``count`` rows are added after the base rows,
  each with ``last_modified_date`` (and ``activity_date``) ``instant``; batches are numbered in
  instant order, so ids continue ``acc-0001001``, ... Other rows keep their values and ids
  (raising ``rows`` instead re-spreads every timestamp and every reference to the entity).

What a change never moves: a row's id, ``created_date`` and ``activity_date`` (when the activity
happened). Every other value derived from the row hash is re-drawn from the salted hash, so a
changed row differs in most of its cells (references included: a merged account's people may
point elsewhere). Several changes of one row combine (their salts are mixed, the latest
``last_modified_date`` wins). Instants are ISO 8601 with an offset, like
``2024-04-01T08:00:00Z``. ``data_end`` is ``data_start + data_days`` at 00:00 UTC, after every
base row.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING

from tap_demandbase.sandbox.entities import DEFAULT_ROWS

if TYPE_CHECKING:
    from tap_demandbase.sandbox.settings import CommonSettings

_M64 = (1 << 64) - 1
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY = 86400
_ROW_ID = re.compile(r"([a-z]+)-([0-9]{7})")


@dataclass(frozen=True)
class RowChanges:
    """The changes of one entity, by row index.

    Attributes:
        base: Rows the generator makes (``rows``); indices ``[0, base)``.
        appended: ``last_modified_date`` (epoch seconds) of each appended row, in index order
            from ``base``.
        deleted: Indices of rows in no export (deleted, or merged into another).
        salts: Index -> the salt its row hash is mixed with (its values changed).
        modified: Index -> its ``last_modified_date`` (epoch seconds), where a change moved it.
    """

    base: int
    appended: tuple[int, ...]
    deleted: frozenset[int]
    salts: Mapping[int, int]
    modified: Mapping[int, int]

    @property
    def total(self) -> int:
        """Return how many row indices exist, deleted ones included (base and appended)."""
        return self.base + len(self.appended)


@dataclass(frozen=True)
class ChangeKnobs:
    """The raw row-change knobs of one entity (JSON shapes, as the settings hold them)."""

    deleted: list[str]
    merged: dict[str, str]
    updated: dict[str, str]
    restated: dict[str, int]
    appended: dict[str, int]

    @property
    def empty(self) -> bool:
        """Whether nothing changed."""
        return not (self.deleted or self.merged or self.updated or self.restated or self.appended)


def row_changes(knobs: ChangeKnobs, prefix: str, base: int, data_end: int) -> RowChanges | None:
    """Return the changes the knobs make to an entity of ``base`` rows with id ``prefix``, or
    None when they change nothing (the generator's fast path).

    Raises:
        ValueError: A row id or instant is malformed, names another entity's row or a row that
            does not exist, or a row is merged into itself.
    """
    if knobs.empty:
        return None
    appended = tuple(
        stamp
        for instant, count in sorted(
            ((parse_instant(text), count) for text, count in knobs.appended.items())
        )
        for stamp in (instant,) * count
    )
    total = base + len(appended)

    def index(row_id: str) -> int:
        return row_index(row_id, prefix, total)

    deleted = {index(row_id) for row_id in knobs.deleted}
    salts: dict[int, int] = {}
    modified: dict[int, int] = {}

    def change(i: int, salt_text: str, stamp: int | None) -> None:
        salts[i] = salts.get(i, 0) ^ zlib.crc32(salt_text.encode())
        if stamp is not None:
            modified[i] = max(stamp, modified.get(i, stamp))

    for loser, target in knobs.merged.items():
        survivor, at = parse_merge(target)
        i, s = index(loser), index(survivor)
        if i == s:
            raise ValueError(f"merged_rows: {loser} cannot be merged into itself")
        deleted.add(i)
        change(s, f"merge:{loser}", data_end if at is None else at)
    for row_id, instant in knobs.updated.items():
        change(index(row_id), f"update:{instant}", parse_instant(instant))
    for row_id, revision in knobs.restated.items():
        change(index(row_id), f"restate:{revision}", None)
    return RowChanges(base, appended, frozenset(deleted), salts, modified)


def check(knobs: ChangeKnobs, prefix: str, base: int) -> None:
    """Check the knobs of one entity as :func:`row_changes` would use them.

    Raises:
        ValueError: Naming the offending id, instant or count.
    """
    if any(count < 0 for count in knobs.appended.values()):
        raise ValueError("appended_rows counts must not be negative")
    if any(revision < 1 for revision in knobs.restated.values()):
        raise ValueError("restated_rows revisions must be at least 1")
    row_changes(knobs, prefix, base, 0)


def salted_hash(h: int, salt: int) -> int:
    """Return a row hash re-mixed with ``salt`` (the splitmix64 finaliser, as the row hash)."""
    z = (h ^ (salt * 0x9E3779B97F4A7C15)) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def row_index(row_id: str, prefix: str, total: int) -> int:
    """Return the index of row ``row_id`` (``acc-0000007`` -> 6) of an entity of ``total`` rows.

    Raises:
        ValueError: The id is malformed, of another entity, or beyond the rows.
    """
    match = _ROW_ID.fullmatch(row_id)
    if match is None or match.group(1) != prefix:
        raise ValueError(f"{row_id!r} is not a row id like {prefix}-0000001")
    i = int(match.group(2)) - 1
    if not 0 <= i < total:
        raise ValueError(f"{row_id} does not exist: the entity has {total} rows")
    return i


def parse_merge(target: str) -> tuple[str, int | None]:
    """Return the survivor id and the instant (epoch seconds, or None) of a ``merged_rows``
    value, ``survivor`` or ``survivor@instant``.
    """
    survivor, at, instant = target.partition("@")
    return survivor, parse_instant(instant) if at else None


def parse_instant(text: str) -> int:
    """Return ISO 8601 instant ``text`` (with an offset) as epoch seconds.

    Raises:
        ValueError: It is not an instant with an offset.
    """
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or "T" not in text:
        raise ValueError(f"{text!r} is not an instant like 2024-04-01T08:00:00Z")
    return int(moment.astimezone(timezone.utc).timestamp())


def epoch_day(day: date) -> int:
    """Return the days from 1970-01-01 to ``day``."""
    return day.toordinal() - _EPOCH_ORDINAL


def data_end(data_start: date, data_days: int) -> int:
    """Return ``data_start + data_days`` at 00:00 UTC in epoch seconds (after every base row)."""
    return (epoch_day(data_start) + data_days) * _DAY


def latest_change_day(settings: CommonSettings) -> date:
    """Return the latest UTC day any row change stamps (``data_start`` when none does)."""
    stamps = [epoch_day(settings.data_start) * _DAY]
    for entity in DEFAULT_ROWS:
        changes = settings.row_changes(entity)
        if changes is not None:
            stamps += [*changes.appended, *changes.modified.values()]
    return date.fromordinal(max(stamps) // _DAY + _EPOCH_ORDINAL)
