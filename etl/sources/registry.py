"""The source registry: the only list of kinds.

The built-in kinds are the packages named in :data:`BUILTIN_KINDS`; each exports
``SOURCE = SourceDefinition(...)`` and is imported on first use, so one broken package
cannot stop the others. Any other kind (a plug-in, a test's toy system) is added with
:func:`register`, the same public call the built-ins go through. Settings are validated
against whatever is registered when they are loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from etl.sources.base import SourceDefinition

BUILTIN_KINDS = ("miclinik", "mikrobill", "microbizz", "billmanager")
_definitions: dict[str, SourceDefinition] = {}


def register(definition: SourceDefinition) -> SourceDefinition:
    """Add a kind; registering a different definition under a taken kind is an error."""
    known = _definitions.get(definition.kind)
    if known is not None and known is not definition:
        raise ValueError(f"source kind {definition.kind!r} is already registered")
    _definitions[definition.kind] = definition
    return definition


def unregister(kind: str) -> None:
    """Remove a kind added with :func:`register` (built-ins stay)."""
    if kind in BUILTIN_KINDS:
        raise ValueError(f"{kind!r} is a built-in kind")
    _definitions.pop(kind, None)


def kinds() -> list[str]:
    """Every kind: the built-ins in their order, then registered ones."""
    return [*BUILTIN_KINDS, *(kind for kind in _definitions if kind not in BUILTIN_KINDS)]


def get(kind: str) -> SourceDefinition:
    """The definition of ``kind``; :class:`KeyError` when no such kind exists."""
    if kind not in _definitions:
        if kind not in BUILTIN_KINDS:
            raise KeyError(kind)
        register(importlib.import_module(f"etl.sources.{kind}").SOURCE)
    return _definitions[kind]


class _Registry(Mapping[str, SourceDefinition]):
    """kind -> definition, as a read-only mapping view of the registry."""

    def __getitem__(self, kind: str) -> SourceDefinition:
        return get(kind)

    def __iter__(self) -> Iterator[str]:
        return iter(kinds())

    def __len__(self) -> int:
        return len(kinds())


REGISTRY: Mapping[str, SourceDefinition] = _Registry()
