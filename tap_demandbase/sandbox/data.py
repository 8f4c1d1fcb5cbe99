"""The sandbox's data: a deterministic, streamable row generator and the export filters.

Row ``i`` of an entity is a pure function of ``(entity, i)`` and the data knobs of the settings
(``seed``, ``rows``, ``data_start``, ``data_days``): no state, no randomness from the process, only
integer mixing and ``zlib.crc32`` (never ``hash()``, which is salted per process). Two processes,
or the API and a test's ``expected_rows``, therefore agree cell for cell, and a million-row export
streams from a generator without being held in memory.

``last_modified_date`` (and ``activity_date``) of row ``i`` is
``data_start + floor(i * data_days * 86400 / rows)`` seconds: inside
``[data_start, data_start + data_days)`` and non-decreasing in ``i``, so changing ``rows`` or
``data_days`` re-spreads every timestamp. Because the column is monotonic, a ``date_range`` on it
is answered by bisection instead of scanning all rows.

The row-change knobs (``changes.py``: deleted, merged, updated, restated and appended rows) are
applied on top: a deleted row is skipped, a changed row's hash is salted and its
``last_modified_date`` may move, appended rows follow the generated ones. The few rows a change
moved are merged into the bisected range, so exports stay in index order and fast; an entity
without changes takes the unchanged path. ``added_fields`` add fields whose cells, like every
other, depend only on their row and field.

Cells are strings chosen to trip naive parsers: instants in five spellings (``Z``, ``+01:00``,
``-05:00``, ``.123Z``, naive ``YYYY-MM-DD HH:MM:SS`` meaning UTC), booleans as ``true``/``False``/
``1``/``0``, integers beyond 2**40 and negative, numbers like ``1e3`` and ``-0.25``, strings with
commas, quotes, embedded LF and CRLF line breaks, non-ASCII, surrounding spaces, the words ``NULL``
and ``true``, zero-padded numbers. ``None`` is an empty cell; no generated value is ``""``.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import operator
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from tap_demandbase.sandbox.changes import salted_hash
from tap_demandbase.sandbox.entities import DATE_TYPES, ENTITIES, Entity, Field
from tap_demandbase.sandbox.settings import CommonSettings

Cell = str | None
#: ``(row index, row hash) -> cell``.
CellFn = Callable[[int, int], Cell]
#: ``(row index, per-cell random number) -> non-empty cell text``.
ValueFn = Callable[[int, int], str]
#: ``(row index, row hash) -> epoch seconds of a date-like cell, or None when it is empty``.
StampFn = Callable[[int, int], int | None]

_M64 = (1 << 64) - 1
_M40 = (1 << 40) - 1
_CELL_MULTIPLIER = 0x94D049BB133111EB
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY = 86400
#: Recipes of the date-like fields spread in index order over the data span (bisectable):
#: ``last_modified_date`` (which changes move) and ``activity_date`` (which they never move).
_SPREAD_RECIPES = frozenset({"modified", "happened"})


@dataclass(frozen=True)
class Filters:
    """The filters of an export, already validated (each emulator's ``job_requests.py``).

    ``date_range`` keeps a row when the UTC calendar day of its ``date_field`` cell lies in
    ``[start, end]`` (both inclusive, either may be open); an empty cell never matches.
    ``account_list_id`` keeps a row when ``zlib.crc32(f"{list_id}:{row id}") % 4 == 0``, the
    stand-in for "the row belongs to an account on that list". ``one_of`` keeps a row when, for
    each ``(field, values)`` pair, the field's cell is one of ``values`` (the uapi dialect's
    ``accountIds`` and campaign ``source``).
    """

    date_field: str | None = None
    start: date | None = None
    end: date | None = None
    account_list_id: str | None = None
    one_of: tuple[tuple[str, frozenset[str]], ...] = ()


class _TableCell(NamedTuple):
    """A cell drawn from a precomputed table at slot ``_slot(row hash, salt, len(values))``."""

    values: tuple[Cell, ...]
    salt: int


class _StampCell(NamedTuple):
    """A date-like cell: ``render(stamp(i, row hash))``, empty when the stamp is None."""

    stamp: StampFn
    render: Callable[[int], str]


def _slot(h: int, salt: int, size: int) -> int:
    """Return the table slot of a row: 30 hash bits keep the arithmetic on CPython's fast path.

    ``row_function`` inlines this expression in its hot loop; keep the two identical.
    """
    return ((h >> 34) ^ salt) % size


def iter_rows(
    settings: CommonSettings, entity: str | Entity, fields: Sequence[str], filters: Filters
) -> Iterator[Sequence[Cell]]:
    """Yield the cells of ``fields`` (in that order) of each row an export with ``filters`` returns.

    ``entity`` is a name of ``ENTITIES`` or an :class:`Entity` (the uapi dialect's entities: a
    field list sharing an entity's name shares its values). Rows come in ascending index order,
    which is the export order; deleted rows (``deleted_rows``, ``merged_rows``) are left out.
    """
    rows = _Rows(settings, entity if isinstance(entity, Entity) else ENTITIES[entity])
    make_row = rows.row_function(fields)
    indices: Iterable[int] = range(rows.count)
    skip: frozenset[int] = frozenset() if rows.changes is None else rows.changes.deleted
    checks: list[Callable[[int, int], bool]] = []
    if filters.date_field is not None:
        field = rows.field(filters.date_field)
        first = -(1 << 62) if filters.start is None else _epoch_day(filters.start)
        last = 1 << 62 if filters.end is None else _epoch_day(filters.end)
        if field.recipe in _SPREAD_RECIPES:
            indices, moved_out = rows.dated_indices(field, first, last)
            skip |= moved_out
        else:
            checks.append(_day_check(rows.stamp(field), first, last))
    if filters.account_list_id is not None:
        checks.append(_list_check(rows.row_id, filters.account_list_id))
    for name, allowed in filters.one_of:
        checks.append(_value_check(rows.row_function([name]), allowed))
    row_hash = rows.cell_hash
    if not checks and not skip:  # the common, unfiltered case: keep the loop minimal
        for i in indices:
            yield make_row(i, row_hash(i))
        return
    for i in indices:
        if i in skip:
            continue
        h = row_hash(i)
        if all(check(i, h) for check in checks):
            yield make_row(i, h)


def _day_check(stamp: StampFn, first: int, last: int) -> Callable[[int, int], bool]:
    def check(i: int, h: int) -> bool:
        ts = stamp(i, h)
        return ts is not None and first <= ts // _DAY <= last

    return check


def _list_check(row_id: Callable[[int], str], list_id: str) -> Callable[[int, int], bool]:
    def check(i: int, h: int) -> bool:
        return zlib.crc32(f"{list_id}:{row_id(i)}".encode()) % 4 == 0

    return check


def _value_check(
    cells: Callable[[int, int], Sequence[Cell]], allowed: frozenset[str]
) -> Callable[[int, int], bool]:
    def check(i: int, h: int) -> bool:
        return cells(i, h)[0] in allowed

    return check


def _epoch_day(day: date) -> int:
    return day.toordinal() - _EPOCH_ORDINAL


class _Rows:
    """The value recipes of one entity under one set of settings, compiled for speed.

    Every cell draws its randomness from the row hash mixed with a per-field salt, so a cell
    depends only on its row and field, and any subset of fields can be generated alone. Per-cell
    cost dominates export speed, so values that do not depend on the row index are looked up in
    precomputed tables inside one list comprehension (no call per cell); only the few
    index-dependent fields (id, references, instants, URLs) run a closure.
    """

    def __init__(self, settings: CommonSettings, entity: Entity) -> None:
        self.settings = settings
        self.entity = settings.with_added_fields(entity)
        self.base = settings.row_count(entity.name)
        self.changes = settings.row_changes(entity.name)
        self.count = self.base if self.changes is None else self.changes.total
        self.start = _epoch_day(settings.data_start) * _DAY
        self.span = settings.data_days * _DAY
        self.salt = zlib.crc32(f"{settings.seed}:{entity.name}".encode())
        salts = {} if self.changes is None else self.changes.salts
        self.cell_hash: Callable[[int], int] = self.row_hash
        if salts:
            row_hash = self.row_hash
            self.cell_hash = lambda i: (
                salted_hash(row_hash(i), salts[i]) if i in salts else row_hash(i)
            )

    def field(self, name: str) -> Field:
        found = self.entity.field(name)
        if found is None:
            raise KeyError(f"{self.entity.name} has no field {name!r}")
        return found

    def row_hash(self, i: int) -> int:
        """Return 64 well-mixed bits for row ``i`` (the splitmix64 finaliser)."""
        z = (i * 0x9E3779B97F4A7C15 + self.salt) & _M64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        return z ^ (z >> 31)

    def row_id(self, i: int) -> str:
        return _row_id(self.entity.id_prefix, i)

    def base_stamp(self, i: int) -> int:
        """Return row ``i``'s place in time (epoch seconds): spread over the data span for a
        generated row, its batch's instant for an appended one. No change moves it.
        """
        if i < self.base or self.changes is None:
            return self.start + i * self.span // max(self.base, 1)
        return self.changes.appended[i - self.base]

    def base_day(self, i: int) -> int:
        return self.base_stamp(i) // _DAY

    def dated_indices(
        self, field: Field, first: int, last: int
    ) -> tuple[Iterable[int], frozenset[int]]:
        """Return the indices whose ``field`` (a spread recipe) lies in days ``[first, last]``,
        ascending, and those among them to skip (a change moved them out), by bisection.
        """
        lo = bisect.bisect_left(range(self.base), first, key=self.base_day)
        hi = max(lo, bisect.bisect_right(range(self.base), last, key=self.base_day))
        changes = self.changes
        if changes is None:
            return range(lo, hi), frozenset()
        moved = changes.modified if field.recipe == "modified" else {}

        def inside(ts: int) -> bool:
            return first <= ts // _DAY <= last

        out = frozenset(i for i, ts in moved.items() if lo <= i < hi and not inside(ts))
        extra = {i for i, ts in moved.items() if not lo <= i < hi and inside(ts)}
        extra |= {
            i
            for i in range(self.base, changes.total)
            if i not in moved and inside(self.base_stamp(i))
        }
        return heapq.merge(range(lo, hi), sorted(extra)), out

    def row_function(self, fields: Sequence[str]) -> Callable[[int, int], Sequence[Cell]]:
        """Return ``(i, row hash) -> cells of fields``.

        Cells are computed by kind (table lookups, date-like stamps, other closures), each kind
        in one comprehension, then put back in field order by one ``itemgetter``.
        """
        tables: list[tuple[tuple[Cell, ...], int, int]] = []
        dated: list[_StampCell] = []
        calls: list[CellFn] = []
        where: list[tuple[int, int]] = []  # (kind, index within kind) of each field
        for name in fields:
            cell = self.cell(name)
            if isinstance(cell, _TableCell):
                where.append((0, len(tables)))
                tables.append((cell.values, cell.salt, len(cell.values)))
            elif isinstance(cell, _StampCell):
                where.append((1, len(dated)))
                dated.append(cell)
            else:
                where.append((2, len(calls)))
                calls.append(cell)
        offsets = (0, len(tables), len(tables) + len(dated))
        order = [offsets[kind] + index for kind, index in where]
        reorder: Callable[[list[Cell]], Sequence[Cell]]
        if len(order) == 1:
            only = order[0]
            reorder = lambda cells: (cells[only],)  # noqa: E731
        else:
            reorder = operator.itemgetter(*order)

        def row(i: int, h: int) -> Sequence[Cell]:
            g = h >> 34
            return reorder(
                [values[(g ^ salt) % size] for values, salt, size in tables]
                + [None if (ts := stamp(i, h)) is None else render(ts) for stamp, render in dated]
                + [call(i, h) for call in calls]
            )

        return row

    def cell(self, name: str) -> CellFn | _TableCell | _StampCell:
        """Return how to produce field ``name``: a table lookup, a stamp, or a closure."""
        field = self.field(name)
        recipe, _, arg = field.recipe.partition(":")
        salt = self._salt(field)
        optional = not field.required
        if recipe == "day":
            texts = tuple(None if d is None else _format_day(d * _DAY) for d in self._days(field))
            return _TableCell(texts, salt)
        if field.is_date_like:
            render = _format_day if field.type in DATE_TYPES else _format_instant
            return _StampCell(self.stamp(field), render)
        if recipe not in _INDEXED_RECIPES:
            return _TableCell(_value_table(field.recipe, optional, _table_size(salt)), salt)
        if recipe == "id":
            prefix = self.entity.id_prefix
            return lambda i, h: _row_id(prefix, i)
        value = self._indexed_value(recipe, arg)
        if not optional:
            return lambda i, h: value(i, (((h ^ salt) * _CELL_MULTIPLIER) >> 64) & _M40)

        def optional_cell(i: int, h: int) -> Cell:
            r = (((h ^ salt) * _CELL_MULTIPLIER) >> 64) & _M40
            return None if r % 10 == 0 else value(i, r // 10)

        return optional_cell

    def stamp(self, field: Field) -> StampFn:
        """Return the epoch-seconds function of a date-like field (dates at midnight UTC)."""
        recipe = field.recipe.partition(":")[0]
        salt = self._salt(field)
        start, span, count = self.start, self.span, max(self.base, 1)
        if recipe in _SPREAD_RECIPES and self.changes is None:
            return lambda i, h: start + i * span // count
        base_stamp = self.base_stamp
        if recipe == "modified":
            moved = self.changes.modified if self.changes is not None else {}
            return lambda i, h: moved[i] if i in moved else base_stamp(i)
        if recipe == "happened":
            return lambda i, h: base_stamp(i)
        if recipe == "created" and self.changes is None:

            def created(i: int, h: int) -> int | None:
                r = (((h ^ salt) * _CELL_MULTIPLIER) >> 64) & _M40
                if r % 10 == 0:
                    return None
                return start + i * span // count - 3600 - (r // 10) % (400 * _DAY)

            return created
        if recipe == "created":
            salts = self.changes.salts if self.changes is not None else {}
            row_hash = self.row_hash

            def created_once(i: int, h: int) -> int | None:
                if i in salts:  # a change never moves created_date: the unsalted hash
                    h = row_hash(i)
                r = (((h ^ salt) * _CELL_MULTIPLIER) >> 64) & _M40
                if r % 10 == 0:
                    return None
                return base_stamp(i) - 3600 - (r // 10) % (400 * _DAY)

            return created_once
        if recipe == "day":
            days = self._days(field)
            size = len(days)
            return lambda i, h: None if (d := days[_slot(h, salt, size)]) is None else d * _DAY
        raise ValueError(f"{field.name} has no date recipe")

    def _salt(self, field: Field) -> int:
        """Return 30 bits private to the field (30, like ``_slot``'s hash bits)."""
        key = f"{self.settings.seed}:{self.entity.name}:{field.name}"
        return zlib.crc32(key.encode()) & 0x3FFFFFFF

    def _days(self, field: Field) -> tuple[int | None, ...]:
        """Return the epoch days a ``day:offset`` field draws from (offset from data_start)."""
        first = self.start // _DAY + int(field.recipe.partition(":")[2]) - 30
        width = self.span // _DAY + 30
        return _day_table(first, width, not field.required, _table_size(self._salt(field)))

    def _indexed_value(self, recipe: str, arg: str) -> ValueFn:
        """Return the value function of a recipe whose text depends on the row index."""
        if recipe == "ref":
            prefix = ENTITIES[arg].id_prefix
            count = max(self.settings.row_count(arg), 1)  # dangling when the target is empty
            return lambda i, v: _row_id(prefix, v % count)
        return _INDEXED_VALUES[recipe]


#: Table sizes: primes, different per field, so two fields' table indices are uncorrelated.
_TABLE_SIZES = (4093, 4091, 4079, 4073, 4057, 4051, 4049, 4027, 4021, 4019, 4013, 4007, 4003)


def _table_size(salt: int) -> int:
    return _TABLE_SIZES[salt % len(_TABLE_SIZES)]


def _spread(k: int) -> int:
    """Return 40 scrambled bits for table slot ``k``: the ``v`` handed to a value recipe."""
    return (k * 0x9E3779B97F4A7C15 >> 20) & _M40


@functools.cache
def _value_table(recipe_spec: str, optional: bool, size: int) -> tuple[Cell, ...]:
    """Return the values a row-independent recipe draws from; 1 in 10 is None if optional."""
    recipe, _, arg = recipe_spec.partition(":")
    value: ValueFn
    if recipe == "pick":
        choices = _PICKLISTS[arg]
        value = lambda i, v: choices[v % len(choices)]  # noqa: E731
    elif recipe == "count":
        modulus = int(arg)
        value = lambda i, v: str(v % modulus)  # noqa: E731
    else:
        value = _TABLE_VALUES[recipe]
    return tuple(None if optional and k % 10 == 0 else value(0, _spread(k)) for k in range(size))


@functools.lru_cache(maxsize=64)
def _day_table(first: int, width: int, optional: bool, size: int) -> tuple[int | None, ...]:
    """Return epoch days in ``[first, first + width)``; 1 in 10 is None if optional."""
    return tuple(
        None if optional and k % 10 == 0 else first + _spread(k) % width for k in range(size)
    )


def _row_id(prefix: str, i: int) -> str:
    """Return the id of row ``i``, like ``acc-0000001`` (zfill: twice as fast as a format spec)."""
    return prefix + "-" + str(i + 1).zfill(7)


_DAY_TEXT: dict[int, str] = {}
_TWO = [f"{n:02d}" for n in range(100)]
_HH_MM = [f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440)]
# The five spellings of an instant, by ts % 5: local-time shift, separator, suffix (None: millis).
_SHIFT = (0, 3600, -18000, 0, 0)
_SEPARATOR = ("T", "T", "T", "T", " ")
_SUFFIX = ("Z", "+01:00", "-05:00", None, "")


def _day_text(day: int) -> str:
    """Return ``YYYY-MM-DD`` of epoch day ``day`` (memoised: an export spans few days)."""
    text = _DAY_TEXT.get(day)
    if text is None:
        text = _DAY_TEXT[day] = date.fromordinal(day + _EPOCH_ORDINAL).isoformat()
    return text


def _format_day(ts: int) -> str:
    """Return ``YYYY-MM-DD`` of the UTC day containing epoch second ``ts``."""
    return _day_text(ts // _DAY)


def _format_instant(ts: int) -> str:
    """Spell instant ``ts`` one of five ways, chosen by ``ts`` itself (same instant, same text).

    ``Z``, ``+01:00`` and ``-05:00`` offsets (the local time shifted to match, so the calendar
    day may differ from the UTC day), ``.mmmZ`` milliseconds, and naive ``YYYY-MM-DD HH:MM:SS``
    meaning UTC.
    """
    variant = ts % 5
    day, seconds = divmod(ts + _SHIFT[variant], _DAY)
    suffix = _SUFFIX[variant]
    if suffix is None:
        suffix = f".{ts * 7919 % 1000:03d}Z"
    return (
        (_DAY_TEXT.get(day) or _day_text(day))
        + _SEPARATOR[variant]
        + _HH_MM[seconds // 60]
        + _TWO[seconds % 60]
        + suffix
    )


_COMPANIES = (
    "Acme, Inc.",
    'The "Best" Co',
    "Café Zürich AG",
    "日本データ株式会社",
    "Rocket 🚀 Labs",
    "  Spacious Holdings  ",
    "NULL",
    "true",
    "Two Line\nIndustries",
    "Windows\r\nSystems LLC",
    "000123",
    "Globex Corporation",
    "Initech",
    "Umbrella Corp",
    "Stark Industries",
    "Wayne Enterprises",
    "Hooli",
    "Vandelay Industries",
    "Soylent Green Foods",
    "Tyrell Corporation",
    "Cyberdyne Systems",
    "Wonka Industries",
    "Massive Dynamic",
    "Oscorp",
)
_TEXTS = (
    "Key account; renewal due in Q3.",
    'Met at "SaaStr", wants a demo.\nFollow up next week.',
    "Multi-line note:\r\n- uses Salesforce\r\n- 3 regions",
    "Größte Kunde in der DACH-Region — sehr zufrieden",
    "见面很愉快 👍",
    " leading and trailing spaces ",
    "comma, separated, values",
    "NULL",
    "true",
    "Plain description",
)
_PICKLISTS: dict[str, tuple[str, ...]] = {
    "industry": (
        "Software",
        "Financial Services",
        "Healthcare",
        "Manufacturing",
        "Retail",
        "Education",
        "Non-Profit",
        "Telecommunications, Media & Tech",
    ),
    "tier": ("Tier 1", "Tier 2", "Tier 3", "Strategic"),
    "first_name": ("Jane", "John", "Zoë", "José", "Ana", "Li", "Søren", "Aoife", "Mohammed"),
    "last_name": ("Doe", "O'Brien", "Müller", "García", "山田", "Nguyen", "Smith", "Kowalski"),
    "title": (
        "VP Marketing",
        "CTO",
        "Data Engineer",
        "Head of Sales Ops",
        "Directeur Général",
        "Manager, Demand Gen",
    ),
    "persona": ("Decision Maker", "Champion", "Influencer", "End User", "Blocker"),
    "opp_stage": (
        "Prospecting",
        "Qualification",
        "Proposal",
        "Negotiation",
        "Closed Won",
        "Closed Lost",
    ),
    "activity_type": ("Web Visit", "Email Open", "Form Fill", "Meeting", "Ad Click", "Webinar"),
    "channel": ("Paid Social", "Organic", "Email", "Events", "Partner"),
    "campaign_status": ("Planned", "Active", "Paused", "Completed"),
    "region": ("NA", "EMEA", "APAC", "LATAM"),
    "bg_stage": ("Awareness", "Consideration", "Decision", "Purchase"),
    # Used by the entities only the uapi dialect exports (uapi/catalog.py).
    "ad_source": ("demandbase", "linkedin", "google"),
    "bg_role": ("Decision Maker", "Champion", "Influencer", "Evaluator", "Budget Holder"),
    "keyword_set": ("Data Platform", "ABM", "Intent, Buyer", "Analytics"),
    "creative_format": ("Image", "Video", "Carousel", "Text"),
}
_BOOLEANS = ("true", "false", "TRUE", "False", "1", "0")
_EMAIL_NAMES = ("jane.doe", "john.smith", "zoe.muller", "jose.garcia", "li.nguyen", "Ana.OBrien")


def _money(i: int, v: int) -> str:
    kind = v % 10
    if kind == 0:
        return "0"
    if kind == 1:
        return f"{v % 9 + 1}e{v % 5 + 2}"
    if kind == 2:
        return f"-{v % 100}.{v % 97:02d}"
    if kind == 3:
        return str(v % 100000)
    return f"{v % 10_000_000}.{v % 89:02d}"


def _percent(i: int, v: int) -> str:
    return "100" if v % 20 == 0 else f"{v % 100}.{v // 100 % 10}"


def _fraction(i: int, v: int) -> str:
    kind = v % 8
    return "0" if kind == 0 else "1" if kind == 1 else "-0.25" if kind == 2 else f"0.{v % 100:02d}"


def _big(i: int, v: int) -> str:
    kind = v % 4
    if kind == 0:
        return str((1 << 40) + v)
    if kind == 1:
        return str((1 << 52) + v * 1000)
    return str(v % 100000)


def _signed(i: int, v: int) -> str:
    return str(v % 301 - 100)


def _flag(i: int, v: int) -> str:
    return _BOOLEANS[v % 6]


def _company(i: int, v: int) -> str:
    return _COMPANIES[v % len(_COMPANIES)]


def _text(i: int, v: int) -> str:
    return _TEXTS[v % len(_TEXTS)]


def _domain(i: int, v: int) -> str:
    kind = v % 3
    if kind == 0:
        return f"company{i}.com"
    if kind == 1:
        return f"www.company{i}.co.uk"
    return f"https://company{i}.example.com/"


def _url(i: int, v: int) -> str:
    return f"https://www.example.com/resources/{v % 500}?utm_source=ads&id={i}"


def _email(i: int, v: int) -> str:
    name = _EMAIL_NAMES[v % len(_EMAIL_NAMES)]
    return f"{name}+{i}@Example.com" if v % 7 == 0 else f"{name}{i}@example.com"


def _phone(i: int, v: int) -> str:
    kind = v % 4
    digits = v % 10000
    if kind == 0:
        return f"+1 415-555-{digits:04d}"
    if kind == 1:
        return f"(020) 7946 {digits:04d}"
    if kind == 2:
        return f"0044 20 7946 {digits:04d}"
    return f"555.{digits:04d} x{v % 100}"


def _padded(i: int, v: int) -> str:
    return f"{v % 10_000_000:08d}"


def _geo(i: int, v: int) -> str:
    lat = v % 1_800_000 - 900_000
    lon = v * 7919 % 3_600_000 - 1_800_000
    return f"{lat / 10000:.4f},{lon / 10000:.4f}"


_INDEXED_VALUES: dict[str, ValueFn] = {"domain": _domain, "url": _url, "email": _email}
_INDEXED_RECIPES = frozenset({"id", "ref", *_INDEXED_VALUES})
_TABLE_VALUES: dict[str, ValueFn] = {
    "company": _company,
    "money": _money,
    "percent": _percent,
    "fraction": _fraction,
    "big": _big,
    "signed": _signed,
    "flag": _flag,
    "phone": _phone,
    "text": _text,
    "padded": _padded,
    "geo": _geo,
}
