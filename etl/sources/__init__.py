"""One package per billing system, all alike; :mod:`etl.sources.registry` is the list of them."""

from __future__ import annotations

from etl.sources.registry import REGISTRY, register

__all__ = ["REGISTRY", "register"]
