"""The two big tables, materialised lazily from the world.

At world scale 100,000 there are ~60,000 third parties and ~85,000 orders; building them all costs
seconds, so a row is built from the world the first time something reads it and kept from then on
(the kept row is also where writes go). Paging in rowid order builds only what the page needs;
a filter or a sort on another column builds the whole table once.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator

from etl.simulators.miclinik.population import SYSTEM, CatalogueMemo, order_row, thirdparty_row
from etl.simulators.miclinik.rows import OrderRow, ProductRow, ThirdpartyRow
from etl.simulators.world import World


class CustomerRows:
    """Builds, once per world customer, both the third-party row and the orders behind it.

    Building a world customer is the expensive part (~0.1 ms), so one build serves both tables.
    ``thirdparties[n]`` is the row of member ``n`` (None until built); created rows are appended.
    """

    def __init__(self, world: World | None, loaded_at: int, products: Callable[[], dict[int, ProductRow]]) -> None:
        self.world = CatalogueMemo(world) if world is not None else None
        self.loaded_at = loaded_at
        self.products = products
        self.members: array = world.members(SYSTEM) if world else array("l")
        self.thirdparties: list[ThirdpartyRow | None] = [None] * len(self.members)
        self.orders: dict[int, OrderRow] = {}
        self.built = bytearray(len(self.members))

    def ensure(self, position: int) -> None:
        """Build member ``position``'s third party and orders unless that was done already."""
        if self.built[position]:
            return
        assert self.world is not None
        self.built[position] = 1
        customer = self.world.customer(self.members[position])
        self.thirdparties[position] = thirdparty_row(self.world, position + 1, customer, self.loaded_at)
        products = self.products()
        for order in self.world.orders_of(customer):
            self.orders[order.id] = order_row(self.world, order, position + 1, products, self.loaded_at)

    def position_of(self, customer_id: int) -> int | None:
        """Where a world customer is among the members, or None when miclinik does not know them."""
        at = bisect_left(self.members, customer_id)
        if at < len(self.members) and self.members[at] == customer_id:
            return at
        return None


class ThirdpartyTable:
    """``llx_societe``: rowid ``n`` is world member ``n - 1``; created rows follow the members."""

    def __init__(self, source: CustomerRows) -> None:
        self.source = source
        self.rows = source.thirdparties

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, rowid: int) -> ThirdpartyRow | None:
        """The row, built on first read; None when there is no such rowid."""
        if not 1 <= rowid <= len(self.rows):
            return None
        row = self.rows[rowid - 1]
        if row is None:
            self.source.ensure(rowid - 1)
            row = self.rows[rowid - 1]
        return row

    def all(self) -> list[ThirdpartyRow]:
        """Every row, in rowid order."""
        return [self.get(rowid) for rowid in range(1, len(self.rows) + 1)]  # type: ignore[misc]

    def page(self, offset: int, limit: int, descending: bool) -> list[ThirdpartyRow]:
        """Rows ``offset..offset+limit`` in rowid order (``limit`` 0 = all), building only those."""
        count = len(self.rows)
        stop = count if limit <= 0 else min(count, offset + limit)
        positions = range(offset, stop)
        if descending:
            positions = range(count - 1 - offset, count - 1 - stop, -1)
        return [self.get(position + 1) for position in positions]  # type: ignore[misc]

    def count(self) -> int:
        """How many rows (without building them)."""
        return len(self.rows)

    def rows_after(self, rowid: int) -> Iterator[ThirdpartyRow]:
        """Rows with a rowid above ``rowid``, ascending, built as they are reached."""
        for next_rowid in range(max(rowid, 0) + 1, len(self.rows) + 1):
            yield self.get(next_rowid)  # type: ignore[misc]

    def add(self, row: ThirdpartyRow) -> None:
        """Append a row created through the API (its rowid must be ``len(self) + 1``)."""
        self.rows.append(row)


class OrderTable:
    """``llx_commande``: world orders keep their world ids; created orders count on above them.

    ``world_ids`` lists world order ids in ascending order for the customers ``members[:cursor]``;
    a customer's orders are built when paging reaches them or when one of them is read by id.
    """

    def __init__(self, source: CustomerRows) -> None:
        self.source = source
        self.rows = source.orders
        self.world_ids: list[int] = []
        self.created_ids: list[int] = []
        self.cursor = 0
        self.world_limit = (source.world.scale + 1) * 4 if source.world else 1
        self.first_free_id = self.world_limit

    @property
    def complete(self) -> bool:
        """Whether every world order has been built and listed."""
        return self.cursor >= len(self.source.members)

    def _ids_of(self, position: int) -> list[int]:
        """Build member ``position`` (once) and return the ids of its orders still present."""
        self.source.ensure(position)
        customer_id = self.source.members[position]
        return [oid for oid in range(customer_id * 4, customer_id * 4 + 4) if oid in self.rows]

    def _advance(self, needed: int | None) -> None:
        members = len(self.source.members)
        while self.cursor < members and (needed is None or len(self.world_ids) < needed):
            self.world_ids.extend(self._ids_of(self.cursor))
            self.cursor += 1

    def get(self, order_id: int) -> OrderRow | None:
        """The order, building its customer on first read."""
        row = self.rows.get(order_id)
        if row is None and order_id < self.world_limit:
            position = self.source.position_of(order_id // 4)
            if position is not None:
                self.source.ensure(position)
                row = self.rows.get(order_id)
        return row

    def ordered_ids(self, needed: int | None = None) -> list[int]:
        """Live order ids ascending: at least ``needed`` of them when that many exist (None = all)."""
        self._advance(needed)
        return self.world_ids + self.created_ids if self.complete else list(self.world_ids)

    def all(self) -> list[OrderRow]:
        """Every order, in rowid order."""
        return [self.rows[oid] for oid in self.ordered_ids()]

    def page(self, offset: int, limit: int, descending: bool) -> list[OrderRow]:
        """Orders ``offset..offset+limit`` in rowid order (``limit`` 0 = all)."""
        if descending or limit <= 0:
            ids = self.ordered_ids()
            ids = ids[::-1] if descending else ids
        else:
            ids = self.ordered_ids(offset + limit)
        stop = None if limit <= 0 else offset + limit
        return [self.rows[oid] for oid in ids[offset:stop]]

    def count(self) -> int:
        """How many orders exist (builds them all)."""
        return len(self.ordered_ids())

    def rows_after(self, rowid: int) -> Iterator[OrderRow]:
        """Orders with an id above ``rowid``, ascending; customers are built only as they are reached."""
        position = bisect_right(self.world_ids, rowid)
        while True:
            if position >= len(self.world_ids):
                if self.complete:
                    break
                self._advance(len(self.world_ids) + 1)
                position = bisect_right(self.world_ids, rowid, lo=position)
                continue
            order_id = self.world_ids[position]
            position += 1
            if order_id in self.rows:
                yield self.rows[order_id]
        for order_id in list(self.created_ids):
            if order_id > rowid and order_id in self.rows:
                yield self.rows[order_id]

    def add(self, row: OrderRow) -> None:
        """Store an order created through the API."""
        self.rows[row.rowid] = row
        self.created_ids.append(row.rowid)

    def delete(self, order_id: int) -> None:
        """Remove an order (it must exist)."""
        del self.rows[order_id]
        for ids in (self.world_ids, self.created_ids):
            if order_id in ids:
                ids.remove(order_id)


class DictTable:
    """A small table kept whole in a dict whose insertion order is rowid order (products, users)."""

    def __init__(self, rows: dict) -> None:
        self.rows = rows

    def page(self, offset: int, limit: int, descending: bool) -> list:
        """Rows ``offset..offset+limit`` in rowid order (``limit`` 0 = all)."""
        rows = self.all()
        if descending:
            rows.reverse()
        return rows[offset : offset + limit if limit > 0 else None]

    def count(self) -> int:
        """How many rows."""
        return len(self.rows)

    def all(self) -> list:
        """Every row, in rowid order."""
        return list(self.rows.values())

    def rows_after(self, rowid: int) -> Iterator:
        """Rows with a rowid above ``rowid``, ascending."""
        return iter(sorted((row for key, row in self.rows.items() if key > rowid), key=lambda row: row.rowid))
