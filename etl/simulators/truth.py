"""The ground-truth mapping: every record each simulator serves, and the world entity behind it.

Reconciliation is scored against this file. Systems are rendered one after another, each
dropped before the next is built, so memory holds one system's rendering at a time.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from etl.simulators import registry
from etl.simulators.world import World


def write_truth(world: World, path: Path, systems: Sequence[str] = registry.BUILTIN) -> dict[str, int]:
    """Write ``system,entity,source_id,true_id`` rows to ``path`` (CSV); returns rows per system.

    Each system's app state must offer ``truth()`` yielding :class:`~etl.simulators.world.TruthRow`.
    """
    counts: dict[str, int] = {}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("system", "entity", "source_id", "true_id"))
        for system in systems:
            simulated = registry.get(system)
            state = simulated.create_app(world)[simulated.state_key]
            counts[system] = 0
            for row in state.truth():
                writer.writerow((system, row.entity, row.source_id, row.true_id))
                counts[system] += 1
            del state
    return counts
