"""Seeded fault injection shared by the four simulators.

A :class:`FaultPlan` answers one question per request and fault kind: "does
this fault happen now?". Draws come from one seeded stream per plan, so a
sequential client sees the same faults in the same order on every run.

Generic kinds are applied by :func:`fault_middleware` in front of every app,
shaped like the proxy or network in front of a real server. System-specific
kinds (a revoked Dolibarr key, a BILLmanager session expiring, a MikroBILL
batch item failing) are rolled by the simulator that owns the shape.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

GENERIC_KINDS = ("latency", "proxy_5xx", "proxy_429", "reset", "truncated", "slow_page")
SPECIFIC_KINDS = ("revoked_key", "db_error", "session_expiry", "partial_batch", "busy", "not_active")
KINDS = GENERIC_KINDS + SPECIFIC_KINDS

PROFILES: dict[str, dict[str, float]] = {
    "none": {},
    "flaky": {kind: 0.01 for kind in KINDS} | {"latency": 0.03},
    "hostile": {kind: 0.06 for kind in KINDS} | {"latency": 0.15, "reset": 0.04},
}


@dataclass
class FaultPlan:
    """Which faults fire, at what rate, under which seed."""

    profile: str = "none"
    seed: int = 0
    rates: dict[str, float] = field(default_factory=dict)
    latency_seconds: float = 0.05
    slow_page_seconds: float = 0.5
    retry_after_seconds: int = 1
    fired: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown fault profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        self.rates = PROFILES[self.profile] | self.rates
        self._random = random.Random(self.seed)

    def roll(self, kind: str) -> bool:
        """Draw once for ``kind``; always consumes one draw so sequences stay aligned."""
        hit = self._random.random() < self.rates.get(kind, 0.0)
        if hit:
            self.fired[kind] = self.fired.get(kind, 0) + 1
        return hit
