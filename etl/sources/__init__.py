"""The source registry: one package per billing system, each exporting ``SOURCE``.

Adding a fifth system means adding a package with a client, its streams and a
``SOURCE = SourceDefinition(...)``, and naming it here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from etl.sources.base import SourceDefinition

KINDS = ("miclinik", "mikrobill", "microbizz", "billmanager")


class _Registry(Mapping[str, SourceDefinition]):
    """kind -> definition, imported on first use so one broken package cannot stop the others."""

    def __getitem__(self, kind: str) -> SourceDefinition:
        if kind not in KINDS:
            raise KeyError(kind)
        return importlib.import_module(f"etl.sources.{kind}").SOURCE

    def __iter__(self) -> Iterator[str]:
        return iter(KINDS)

    def __len__(self) -> int:
        return len(KINDS)


REGISTRY: Mapping[str, SourceDefinition] = _Registry()
