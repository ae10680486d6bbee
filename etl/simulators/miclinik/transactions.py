"""Creates that overlap in time, and what MariaDB does to them (protocols.md §1.9, [C-real]).

Four concurrent third-party creates with ``code_client: -1`` made 18 of 40 fail with 500
"Duplicate value in a unique field" (two transactions took the same automatic code), and four
concurrent order creates 4 of 40 with 500 "Deadlock found when trying to get lock; try
restarting transaction"; products were fine. A create here holds its transaction for
``create_seconds``; one that starts while another of its kind is in flight fails like that
(``create_conflicts``), and ``create_conflict_rate`` adds seeded failures of the same shape.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from etl.simulators.miclinik.errors import RestError
from etl.simulators.miclinik.options import MiclinikOptions

DUPLICATE_VALUE = "Duplicate value in a unique field"
DEADLOCK = "Deadlock found when trying to get lock; try restarting transaction"
CONFLICTS = {"thirdparty": DUPLICATE_VALUE, "order": DEADLOCK}


class Transactions:
    """The creates in flight, per kind, on one simulated database."""

    def __init__(self, options: MiclinikOptions) -> None:
        self.options = options
        self.in_flight: Counter[str] = Counter()
        self.random = random.Random(options.seed)
        self.conflicts: Counter[str] = Counter()

    @asynccontextmanager
    async def create(self, kind: str, what: str, source: str, *, may_conflict: bool = True) -> AsyncIterator[None]:
        """Hold a create's transaction; raise Dolibarr's 500 when it collides with another of ``kind``."""
        options = self.options
        overlapping = self.in_flight[kind] > 0
        rolled = options.create_conflict_rate > 0 and self.random.random() < options.create_conflict_rate
        collides = may_conflict and kind in CONFLICTS and ((overlapping and options.create_conflicts) or rolled)
        self.in_flight[kind] += 1
        try:
            if options.create_seconds > 0:
                await asyncio.sleep(options.create_seconds)
            if collides:
                self.conflicts[kind] += 1
                raise RestError(500, f"Error creating {what}", details=[CONFLICTS[kind]], source=source)
            yield
        finally:
            self.in_flight[kind] -= 1
