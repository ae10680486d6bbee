"""The ground-truth file lists every served record once, with the world entity behind it."""

from __future__ import annotations

import csv
from collections import Counter

from etl.simulators.truth import write_truth
from etl.simulators.world import World


def test_truth_file_covers_every_system_and_maps_customers_across_systems(tmp_path) -> None:
    """Each (system, entity, source_id) appears once, and many world customers appear in two or more systems."""
    world = World(seed=5, scale=300)
    counts = write_truth(world, tmp_path / "truth.csv")
    with (tmp_path / "truth.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == sum(counts.values()) and set(counts) == {"miclinik", "mikrobill", "microbizz", "billmanager"}
    keys = Counter((r["system"], r["entity"], r["source_id"]) for r in rows)
    assert max(keys.values()) == 1
    systems_per_customer = Counter(int(r["true_id"]) for r in rows if r["entity"] == "customer")
    shared = sum(1 for n in systems_per_customer.values() if n >= 2)
    assert shared > len(systems_per_customer) * 0.5
    assert set(systems_per_customer) == set(range(1, 301))
