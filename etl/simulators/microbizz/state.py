"""The simulated tenant: its tables, individual prices, clock, request log, edits and truth."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from etl.simulators.faults import FaultPlan
from etl.simulators.microbizz.activity import InvoiceLineBase, TodoBase
from etl.simulators.microbizz.mutation import EDITS
from etl.simulators.microbizz.options import MicrobizzOptions
from etl.simulators.microbizz.population import SYSTEM, CustomerBase, ProductBase, UserBase
from etl.simulators.microbizz.store import Table
from etl.simulators.microbizz.types import to_micros
from etl.simulators.world import TruthRow, World, rng_for

# Table name -> the entity name truth() reports it under.
TRUTH_ENTITIES = {
    "customer": "customer",
    "user": "user",
    "product": "product",
    "invoiceline": "order_line",
    "todo": "todo",
}


class MicrobizzState:
    """Everything one simulated Microbizz tenant holds.

    ``request_log`` has one dict per HTTP request: ``method``, ``path``, ``what`` (one
    dict per command with its name and its ``changedate``/``changetime``/``resumekey``
    inputs when given), ``commands`` (the names alone), ``received`` and ``status``.
    """

    def __init__(self, world: World | None, faults: FaultPlan | None, options: MicrobizzOptions) -> None:
        self.world = world
        self.faults = faults
        self.options = options
        self.zone = options.zone
        self.seed = world.seed if world else 0
        customers = CustomerBase(world)
        self.tables: dict[str, Table] = {
            "customer": Table(customers, "customernumber"),
            "user": Table(UserBase(self.seed, options.user_count if world else 0), "usercode"),
            "product": Table(ProductBase(world), "productnumber"),
            "invoiceline": Table(InvoiceLineBase(customers)),
            "todo": Table(TodoBase(customers, options.user_count), "number"),
        }
        # product id -> customer id -> individual price in øre
        self.prices: dict[int, dict[int, int]] = {}
        self.request_log: list[dict[str, Any]] = []
        self.call_count = 0
        self._last_moment = 0
        self.secret = hashlib.blake2b(f"microbizz-resume|{self.seed}|{options.contract}".encode()).digest()[:16]

    def now(self) -> int:
        """The server clock in microseconds since 1970 UTC, strictly increasing from call to call.

        Receipts and writes are thereby totally ordered even under a clock a test holds
        still: a write made after a sequence began is always after that sequence's snapshot.
        """
        self._last_moment = max(to_micros(self.options.clock()), self._last_moment + 1)
        return self._last_moment

    def mutate(self, fraction: float, seed: int) -> int:
        """Edit ``fraction`` of each table's records as a user would; returns how many changed.

        Every edited record's change moment moves to now, so ``…ByLastChange`` serves it
        again. Processed invoice lines are locked and left alone, so fewer lines than the
        fraction may change.
        """
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must lie between 0 and 1")
        now = self.now()
        changed = 0
        for name, table in self.tables.items():
            ids = list(table.ids())
            r = rng_for(seed, "mbz-mutate", name)
            for record_id in sorted(r.sample(ids, round(fraction * len(ids)))):
                row = table.get(record_id)
                edited = EDITS[name](r, dict(row)) if row is not None else None
                if edited is not None:
                    table.put(record_id, edited, now)
                    changed += 1
        return changed

    def soft_delete(self, table_name: str, record_id: int) -> None:
        """Flag a record ``deleted`` (1) as the UI's delete does: changed now, so the change feed serves it."""
        row = self.tables[table_name].get(record_id)
        if row is None:
            raise KeyError(f"{table_name} {record_id} does not exist")
        self.tables[table_name].put(record_id, {**row, "deleted": True}, self.now())

    def hard_delete(self, table_name: str, record_id: int) -> None:
        """Remove a record entirely: no ``…ByLastChange`` ever serves it again (§3.5 [U] made concrete)."""
        if self.tables[table_name].get(record_id) is None:
            raise KeyError(f"{table_name} {record_id} does not exist")
        self.tables[table_name].remove(record_id)

    def truth(self) -> Iterator[TruthRow]:
        """Every record served now that renders a world entity (API-created records have none).

        Users are employees, not world entities: their ``true_id`` is the employee number.
        Invoice lines are reported as ``order_line`` with the world order id; todos with
        the world customer id they are for.
        """
        for name, table in self.tables.items():
            entity = TRUTH_ENTITIES[name]
            for record_id in table.ids():
                true_id = table.true_id(record_id)
                if true_id is not None:
                    row = table.get(record_id) or {}
                    yield TruthRow(SYSTEM, entity, str(record_id), true_id, deleted=bool(row.get("deleted")))
