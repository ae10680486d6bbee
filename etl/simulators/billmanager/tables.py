"""Tables whose rows are rendered from the world on demand, with this run's writes laid over them.

Nothing world-derived is stored per row: a row is rebuilt from ``(seed, index)``
when read, and only edits (an overlay of changed fields), creations and deletions
are kept. That keeps a 100,000-customer installation within a few megabytes.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Generic, TypeVar

R = TypeVar("R")


class Table(Generic[R]):
    """Rows ``1..base_count`` built by ``build(id)``, plus created rows, minus deleted ones."""

    def __init__(self, base_count: int, build: Callable[[int], R]) -> None:
        self.base_count = base_count
        self._build = build
        self.overlay: dict[int, dict[str, Any]] = {}
        self.created: dict[int, R] = {}
        self.deleted: set[int] = set()
        self.next_id = base_count + 1

    def exists(self, row_id: int) -> bool:
        """Whether the row is live (created, or a world row not deleted)."""
        if row_id in self.created:
            return True
        return 1 <= row_id <= self.base_count and row_id not in self.deleted

    def get(self, row_id: int) -> R | None:
        """The row as it reads now, or None when there is no such row."""
        if row_id in self.created:
            return self.created[row_id]
        if not self.exists(row_id):
            return None
        row = self._build(row_id)
        patch = self.overlay.get(row_id)
        return replace(row, **patch) if patch else row  # type: ignore[type-var]

    def ids(self) -> Sequence[int]:
        """Every live id, ascending; a ``range`` while nothing was created or deleted."""
        base: Sequence[int] = range(1, self.base_count + 1)
        if self.deleted:
            base = [row_id for row_id in base if row_id not in self.deleted]
        if not self.created:
            return base
        return [*base, *sorted(self.created)]

    def update(self, row_id: int, **fields: Any) -> None:
        """Change fields of a live row (an overlay over a world row)."""
        if row_id in self.created:
            self.created[row_id] = replace(self.created[row_id], **fields)  # type: ignore[type-var]
        else:
            self.overlay.setdefault(row_id, {}).update(fields)

    def add(self, make: Callable[[int], R]) -> R:
        """Create a row with the next id; ``make(id)`` builds it."""
        row = make(self.next_id)
        self.created[self.next_id] = row
        self.next_id += 1
        return row

    def delete(self, row_id: int) -> bool:
        """Remove a row; False when there was none (callers still answer ok, as the panel does)."""
        if self.created.pop(row_id, None) is not None:
            return True
        if not self.exists(row_id):
            return False
        self.deleted.add(row_id)
        self.overlay.pop(row_id, None)
        return True

    def __len__(self) -> int:
        return self.base_count - len(self.deleted) + len(self.created)


class OwnedTable(Table[R]):
    """A table whose world rows are grouped by client: client ``c`` owns ids ``start[c-1]+1 .. start[c]``.

    ``columns`` hold a few compact per-row values of the world rows (``columns[name][id - 1]``) so
    filters and the truth can scan without rebuilding every row.
    """

    def __init__(self, start: array, build: Callable[[int], R], columns: dict[str, array] | None = None) -> None:
        super().__init__(start[-1] if len(start) else 0, build)
        self.start = start
        self.columns = columns or {}

    def owner_of(self, row_id: int) -> int:
        """The client id owning a row (created rows carry it in ``account_id``)."""
        if row_id in self.created:
            return self.created[row_id].account_id  # type: ignore[attr-defined]
        return bisect_left(self.start, row_id)

    def position(self, row_id: int) -> tuple[int, int]:
        """``(client id, index among that client's world rows)`` of a world-derived row."""
        client_id = bisect_left(self.start, row_id)
        return client_id, row_id - self.start[client_id - 1] - 1

    def ids_of(self, client_id: int) -> list[int]:
        """Live ids owned by one client, ascending."""
        ids: list[int] = []
        if 1 <= client_id < len(self.start):
            first, last = self.start[client_id - 1] + 1, self.start[client_id]
            ids = [row_id for row_id in range(first, last + 1) if row_id not in self.deleted]
        ids += [row_id for row_id, row in sorted(self.created.items()) if row.account_id == client_id]  # type: ignore[attr-defined]
        return ids


class Baskets:
    """Open carts: the entries each client added with ``<type>.order.param`` and has not checked out."""

    def __init__(self, entry_type: Callable[..., Any]) -> None:
        self._entry_type = entry_type
        self.entries: dict[int, list[Any]] = {}
        self.open_cart: dict[int, int] = {}
        self._entry_sequence = 0
        self._cart_sequence = 0

    def add(self, account_id: int, itemtype: str, pricelist_id: int, period: int) -> Any:
        """Put an order in the client's cart, opening a cart (with a new cart id) if none is open."""
        if account_id not in self.open_cart:
            self._cart_sequence += 1
            self.open_cart[account_id] = self._cart_sequence
        self._entry_sequence += 1
        entry = self._entry_type(
            self._entry_sequence, self.open_cart[account_id], account_id, itemtype, pricelist_id, period
        )
        self.entries.setdefault(account_id, []).append(entry)
        return entry

    def of(self, account_id: int) -> list[Any]:
        """The entries of a client's open cart."""
        return list(self.entries.get(account_id, ()))

    def remove(self, account_id: int, entry_id: int) -> bool:
        """Drop one entry from a client's cart; False when it was not there."""
        kept = [entry for entry in self.entries.get(account_id, ()) if entry.id != entry_id]
        removed = len(kept) != len(self.entries.get(account_id, ()))
        self.entries[account_id] = kept
        return removed

    def take(self, account_id: int) -> list[Any]:
        """Check out: empty and close the client's cart, returning what was in it."""
        self.open_cart.pop(account_id, None)
        return self.entries.pop(account_id, [])
