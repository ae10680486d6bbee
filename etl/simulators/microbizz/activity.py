"""Invoice lines and todos: the work a tenant does for its customers, generated on demand.

Invoice lines are the world's order lines of Microbizz customers, one line each
(id ``world order id * 4 + line index``); a line is processed when its world order
is closed (status 3), and then carries the order's reference as ``ordernumber``.
Todos are drawn per customer, 0 to 3 each (id ``4 * customer + n``).

Which line ids exist is only known after drawing every member's orders, so the
line index is built on first use (a few seconds at 100,000 customers), not at start.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from etl.simulators.microbizz.population import (
    CUSTOMER_OFFSET,
    USER_OFFSET,
    CustomerBase,
    base_second,
    unit,
)
from etl.simulators.world import rng_for

_TODO_NUMBER = re.compile(r"^T(\d+)$")
_TODO_TITLES = ("Install fiber", "Replace router", "Service visit", "Fault report", "Move connection", "Cable check")


class InvoiceLineBase:
    """One invoice line per world order line of the Microbizz customers.

    The first use draws every member's orders once and keeps each line as a few
    numeric columns (about 60 bytes a line), so reading a line later costs a bisect.
    Implements :class:`~etl.simulators.microbizz.store.BaseSource`.
    """

    entity = "invoiceline"

    def __init__(self, customers: CustomerBase) -> None:
        self.customers = customers
        self.world = customers.world
        self.seed = customers.seed
        self.first_free_id = 16 * (self.world.scale + 1 if self.world else 1)
        self._columns: dict[str, array] | None = None
        self._products: dict[int, tuple[str, str]] = {}

    def _build(self) -> dict[str, array]:
        if self._columns is None:
            columns = {name: array("q") for name in ("id", "second", "product", "qty", "cents", "ordered", "closed")}
            for cid in self.customers.members if self.world else ():
                for order in self.world.orders_of(self.world.customer(cid)):
                    ordered = int(order.date.timestamp())
                    for index, line in enumerate(order.lines):
                        rid = order.id * 4 + index
                        # A line is entered within three days of its order.
                        lag = int(unit(self.seed, "mbz-line-lag", rid) * 3 * 86_400)
                        for name, value in (
                            ("id", rid),
                            ("second", ordered + lag),
                            ("product", line.product_id),
                            ("qty", line.qty),
                            ("cents", int(line.unit_price * 100)),
                            ("ordered", ordered),
                            ("closed", order.status == 3),
                        ):
                            columns[name].append(value)
            self._columns = columns
        return self._columns

    def _position(self, record_id: int) -> int | None:
        ids = self._build()["id"]
        pos = bisect_left(ids, record_id)
        return pos if pos < len(ids) and ids[pos] == record_id else None

    def _product(self, product_id: int) -> tuple[str, str]:
        if product_id not in self._products:
            product = self.world.product(product_id)
            self._products[product_id] = (product.ref, product.label)
        return self._products[product_id]

    def contains(self, record_id: int) -> bool:
        return self._position(record_id) is not None

    def ids(self) -> Iterator[int]:
        return iter(self._build()["id"])

    def change_keys(self) -> Iterator[tuple[int, int]]:
        columns = self._build()
        return zip(columns["second"], columns["id"], strict=True)

    def changed_second(self, record_id: int) -> int:
        pos = self._position(record_id)
        return self._build()["second"][pos] if pos is not None else 0

    def true_id(self, record_id: int) -> int:
        return record_id // 4

    def find_number(self, number: str) -> int | None:
        return None

    def row(self, record_id: int) -> dict[str, Any] | None:
        pos = self._position(record_id)
        if pos is None:
            return None
        columns = self._build()
        ref, label = self._product(columns["product"][pos])
        processed = bool(columns["closed"][pos])
        order_id = record_id // 4
        return {
            "customerid": CUSTOMER_OFFSET + order_id // 4,
            "productnumber": ref,
            "text": label,
            "quantity": float(columns["qty"][pos]),
            "price": columns["cents"][pos] / 100,
            "date": datetime.fromtimestamp(columns["ordered"][pos], UTC).date(),
            # The world's order reference, PO-<order id>, as the billing run that processed it wrote it.
            "ordernumber": f"PO-{order_id}" if processed else "",
            "processed": processed,
            "deleted": False,
        }


class TodoBase:
    """Tasks and work orders: up to three per Microbizz customer.

    Implements :class:`~etl.simulators.microbizz.store.BaseSource`.
    """

    entity = "todo"

    def __init__(self, customers: CustomerBase, user_count: int) -> None:
        self.customers = customers
        self.seed = customers.seed
        self.user_count = user_count
        world = customers.world
        self.first_free_id = 4 * (world.scale + 1 if world else 1)

    def _count(self, cid: int) -> int:
        return int(unit(self.seed, "mbz-todo-count", cid) * 4)

    def contains(self, record_id: int) -> bool:
        cid = record_id // 4
        return self.customers.contains(CUSTOMER_OFFSET + cid) and record_id % 4 < self._count(cid)

    def ids(self) -> Iterator[int]:
        for cid in self.customers.members:
            yield from range(4 * cid, 4 * cid + self._count(cid))

    def change_keys(self) -> Iterator[tuple[int, int]]:
        return ((base_second(self.seed, self.entity, rid), rid) for rid in self.ids())

    def changed_second(self, record_id: int) -> int:
        return base_second(self.seed, self.entity, record_id)

    def true_id(self, record_id: int) -> int:
        return record_id // 4

    def find_number(self, number: str) -> int | None:
        match = _TODO_NUMBER.match(number)
        return int(match[1]) if match and self.contains(int(match[1])) else None

    def row(self, record_id: int) -> dict[str, Any] | None:
        if not self.contains(record_id):
            return None
        r = rng_for(self.seed, "mbz-todo", record_id)
        changed = datetime.fromtimestamp(self.changed_second(record_id), UTC)
        start = (changed - timedelta(days=r.randrange(1, 60))).date()
        closed = r.random() < 0.6
        require_answer = r.random() < 0.2
        return {
            "number": f"T{record_id}",
            "customerid": CUSTOMER_OFFSET + record_id // 4,
            "userid": USER_OFFSET + 1 + r.randrange(self.user_count) if self.user_count else 0,
            "title": r.choice(_TODO_TITLES),
            "description": "",
            "startdate": start,
            "enddate": start + timedelta(days=r.randrange(0, 5)),
            "stateid": 3 if closed else r.choice((1, 2)),
            "requireanswer": require_answer,
            "answer": "Done" if closed and require_answer else "",
            "closed": closed,
            "deleted": r.random() < 0.005,
        }
