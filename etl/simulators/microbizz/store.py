"""One table per entity: base rows generated from the world plus an overlay of writes.

Change moments are microseconds since 1970 UTC. A record written since start keeps
its whole change history (a short list of moments), which is what lets a chunked
sync read the table *as it was* when the sequence began:

A ``…ByLastChange`` sequence is pinned to the moment ``snapshot`` its first chunk was
received. Every chunk serves, in ``(change moment, id)`` order, the records whose
last change *before the snapshot* was at or after ``since``; each record is placed at
that as-of-snapshot position but rendered with its current data. Hence:

- a record changed between chunks is neither skipped nor repeated: it keeps its
  place in the sequence and is served once, already showing the new values;
- its new change moment lies after the snapshot, so the next sync (watermark = the
  envelope date/time of the sequence's *first* call) serves it again;
- records created during the sequence are not part of it; the next sync has them;
- a record *removed* (:meth:`Table.remove`, a hard delete) is simply gone: no change feed
  serves it again, with or without a ``deleted`` flag; only a full read shows it missing.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from typing import Any, Protocol

Key = tuple[int, int]  # (change moment in microseconds, record id)
Row = dict[str, Any]
MICROS = 1_000_000
_ID_BITS = 32


class BaseSource(Protocol):
    """What a table needs from the records the world seeds (see population.py)."""

    entity: str
    first_free_id: int

    def contains(self, record_id: int) -> bool:
        """Whether the world seeds a record with this id."""
        ...

    def ids(self) -> Iterator[int]:
        """Every seeded id, ascending."""
        ...

    def change_keys(self) -> Iterator[tuple[int, int]]:
        """``(last change in whole seconds, id)`` of every seeded record, in any order."""
        ...

    def changed_second(self, record_id: int) -> int:
        """When a seeded record last changed, in seconds since 1970 UTC."""
        ...

    def true_id(self, record_id: int) -> int:
        """The world id the seeded record renders."""
        ...

    def find_number(self, number: str) -> int | None:
        """The seeded record whose number field is ``number`` as seeded."""
        ...

    def row(self, record_id: int) -> Row | None:
        """The seeded row, or None when there is no such record."""
        ...


class Table:
    """One entity's records; ``number_field`` is the secondary key ByNumber commands use."""

    def __init__(self, base: BaseSource, number_field: str | None = None) -> None:
        self.base = base
        self.entity = base.entity
        self.number_field = number_field
        self.rows: dict[int, Row] = {}
        self.history: dict[int, list[int]] = {}
        self.created: list[int] = []
        self.removed: set[int] = set()
        self.by_number: dict[str, set[int]] = {}
        self.next_id = base.first_free_id
        self.version = 0
        self._index: array | None = None
        self._overlay_cache: tuple[tuple[int, int, int], list[Key]] | None = None

    # -- single records --------------------------------------------------
    def get(self, record_id: int) -> Row | None:
        """The current row, or None if there is no such record."""
        if record_id in self.removed:
            return None
        if record_id in self.rows:
            return self.rows[record_id]
        return self.base.row(record_id)

    def changed(self, record_id: int) -> int:
        """When the record last changed."""
        moments = self.history.get(record_id)
        return moments[-1] if moments else self.base.changed_second(record_id) * MICROS

    def true_id(self, record_id: int) -> int | None:
        """The world id behind a record; None for records created through the API."""
        return self.base.true_id(record_id) if self.base.contains(record_id) else None

    def put(self, record_id: int, row: Row, now: int) -> None:
        """Store ``row`` as the record's current state, changed at ``now``."""
        if record_id not in self.history:
            seeded = self.base.contains(record_id)
            self.history[record_id] = [self.base.changed_second(record_id) * MICROS] if seeded else []
        moments = self.history[record_id]
        # A clock set back must not reorder a record's own history.
        moments.append(max(now, moments[-1]) if moments else now)
        old = self.rows.get(record_id)
        if self.number_field and old is not None:
            self.by_number.get(old[self.number_field], set()).discard(record_id)
        self.rows[record_id] = row
        if self.number_field and row.get(self.number_field):
            self.by_number.setdefault(row[self.number_field], set()).add(record_id)
        self.version += 1

    def create(self, row: Row, now: int) -> int:
        """Store a new record; returns its id."""
        record_id = self.next_id
        self.next_id += 1
        self.created.append(record_id)
        self.put(record_id, row, now)
        return record_id

    def remove(self, record_id: int) -> None:
        """Delete the record outright (a hard delete): it is no longer served anywhere."""
        self.removed.add(record_id)
        self.version += 1

    def find_number(self, number: str) -> int | None:
        """A record whose number field is ``number``; with duplicates the lowest id wins."""
        candidates = set(self.by_number.get(number, ()))
        seeded = self.base.find_number(number)
        if seeded is not None and seeded not in self.rows:
            candidates.add(seeded)
        candidates -= self.removed
        return min(candidates) if candidates else None

    def ids(self) -> Iterator[int]:
        """Every record id still present: seeded ones ascending, then the created ones."""
        for record_id in self.base.ids():
            if record_id not in self.removed:
                yield record_id
        yield from (record_id for record_id in self.created if record_id not in self.removed)

    # -- chunked change feed ---------------------------------------------
    def _base_index(self) -> array:
        if self._index is None:
            packed = sorted((second << _ID_BITS) | record_id for second, record_id in self.base.change_keys())
            self._index = array("q", packed)
        return self._index

    def _base_stream(self, since: int, snapshot: int, after: Key | None) -> Iterator[Key]:
        index = self._base_index()
        # Base moments are whole seconds: start at the floor second and let the checks below trim.
        first_second = max(since, after[0] if after else since) // MICROS
        for position in range(bisect_left(index, first_second << _ID_BITS), len(index)):
            packed = index[position]
            moment, record_id = (packed >> _ID_BITS) * MICROS, packed & ((1 << _ID_BITS) - 1)
            if moment >= snapshot:
                return
            if record_id in self.history or moment < since or (after and (moment, record_id) <= after):
                continue
            yield moment, record_id

    def _overlay_keys(self, since: int, snapshot: int) -> list[Key]:
        cache_key = (since, snapshot, self.version)
        if self._overlay_cache and self._overlay_cache[0] == cache_key:
            return self._overlay_cache[1]
        keys = []
        for record_id, moments in self.history.items():
            before = bisect_left(moments, snapshot)
            if before and moments[before - 1] >= since:
                keys.append((moments[before - 1], record_id))
        keys.sort()
        self._overlay_cache = (cache_key, keys)
        return keys

    def chunk(
        self,
        since: int,
        snapshot: int,
        after: Key | None,
        limit: int,
        keep: Callable[[Row], bool] | None = None,
        admit: Callable[[int], bool] | None = None,
    ) -> tuple[list[tuple[Key, Row]], bool]:
        """Up to ``limit`` records after ``after`` in the sequence (since, snapshot); and whether more follow.

        ``since`` is a lower bound; ``admit``, when given, is the exact test of a change moment
        (a strict "after", or a comparison in the tenant's wall-clock time)."""
        overlay = self._overlay_keys(since, snapshot)
        start = bisect_right(overlay, after) if after else 0
        merged = heapq.merge(
            self._base_stream(since, snapshot, after), (overlay[i] for i in range(start, len(overlay)))
        )
        served: list[tuple[Key, Row]] = []
        for key in merged:
            if admit is not None and not admit(key[0]):
                continue
            row = self.get(key[1])
            if row is None or (keep and not keep(row)):
                continue
            if len(served) == limit:
                return served, True
            served.append((key, row))
        return served, False
