"""The one list of simulated kinds: what serves each, where it lives, and how it sees the world.

Each built-in kind is a package ``etl.simulators.<kind>`` that exports ``SIMULATOR``, a
:class:`SimulatedSystem`; :data:`BUILTIN` is the only place their names are listed. A test (or a
plug-in) adds a kind at run time with :func:`register` and removes it with :func:`unregister`, or
scopes it with :func:`registered`.

Built-in packages are imported on first :func:`get`, never when this module is: the packages
import :mod:`etl.simulators.world` and :mod:`etl.simulators.noise`, which import this module.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from aiohttp import web

    from etl.simulators.faults import FaultPlan
    from etl.simulators.world import World

# Order matters: world.py breaks "present nowhere" ties by position in this tuple, and the fault
# seeds and default ports follow it, so reordering it would change every generated world.
BUILTIN: tuple[str, ...] = ("miclinik", "mikrobill", "microbizz", "billmanager")


class AppFactory(Protocol):
    """The uniform ``create_app(world, faults=..., options=...)`` every simulated kind exports."""

    def __call__(
        self, world: World | None, *, faults: FaultPlan | None = None, options: Any = None
    ) -> web.Application: ...


@dataclass(frozen=True)
class Spelling:
    """How a system misspells the truth beyond the noise every system shares (see :func:`noise.spell`).

    Each field is the share of eligible customers the quirk hits; 0 turns it off.
    """

    transliterate: float = 0.0  # Russian names stored in Latin letters
    escaped_ampersand: float = 0.0  # company names with "&" stored HTML-escaped ("&amp;")
    escaped_apostrophe: float = 0.0  # last names with "'" stored as "&#39;"

    def __post_init__(self) -> None:
        for quirk in fields(self):
            _check_share(f"Spelling.{quirk.name}", getattr(self, quirk.name))


@dataclass(frozen=True)
class SimulatedSystem:
    """One simulated kind: its app, where its protocol lives, and which customers it knows.

    ``port_offset`` is added to ``running_simulators``'s ``base_port`` (None takes the lowest offset
    no other kind uses); ``presence`` is the share of world customers present in this system.
    """

    name: str
    base_path: str
    create_app: AppFactory
    state_key: web.AppKey[Any]
    demo_credentials: Mapping[str, str] = field(default_factory=dict)
    port_offset: int | None = None
    presence: float = 0.5
    spelling: Spelling = field(default_factory=Spelling)

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"simulated system name {self.name!r} must be a Python identifier")
        if self.base_path and not self.base_path.startswith("/"):
            raise ValueError(f"{self.name}: base_path {self.base_path!r} must be empty or start with '/'")
        if self.port_offset is not None and self.port_offset < 0:
            raise ValueError(f"{self.name}: port_offset must be >= 0, not {self.port_offset}")
        _check_share(f"{self.name}: presence", self.presence)


class UnknownSystemError(KeyError, ValueError):
    """A simulated kind that is neither built in nor registered."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown simulated system {self.name!r}; choose from {', '.join(names())}"


_builtins: dict[str, SimulatedSystem] = {}
_extras: dict[str, SimulatedSystem] = {}


def get(name: str) -> SimulatedSystem:
    """The simulated kind called ``name``; raises :class:`UnknownSystemError` for any other name."""
    if name in _extras:
        return _extras[name]
    if name not in BUILTIN:
        raise UnknownSystemError(name)
    if name not in _builtins:
        _builtins[name] = _load_builtin(name)
    return _builtins[name]


def names() -> list[str]:
    """Every simulated kind: the built-ins in their fixed order, then registered ones as registered."""
    return [*BUILTIN, *_extras]


def register(system: SimulatedSystem) -> None:
    """Add ``system`` to :func:`names`; raises ValueError if its name or explicit port offset is taken."""
    if system.name in BUILTIN or system.name in _extras:
        raise ValueError(f"simulated system {system.name!r} is already registered")
    if system.port_offset is not None:
        for other in map(get, names()):
            if other.port_offset == system.port_offset:
                raise ValueError(f"{system.name}: port_offset {system.port_offset} is taken by {other.name}")
    _extras[system.name] = system


def unregister(name: str) -> None:
    """Remove a kind added by :func:`register`; built-ins cannot be removed."""
    if name in BUILTIN:
        raise ValueError(f"{name!r} is built in and cannot be unregistered")
    if name not in _extras:
        raise UnknownSystemError(name)
    del _extras[name]


@contextmanager
def registered(system: SimulatedSystem) -> Iterator[SimulatedSystem]:
    """Register ``system`` for the duration of a ``with`` block (test isolation)."""
    register(system)
    try:
        yield system
    finally:
        unregister(system.name)


def port_offsets() -> dict[str, int]:
    """Kind -> port offset; kinds without an explicit one take the lowest free offsets in :func:`names` order."""
    systems = [get(name) for name in names()]
    taken = {s.port_offset for s in systems if s.port_offset is not None}
    offsets: dict[str, int] = {}
    candidate = 0
    for system in systems:
        if system.port_offset is not None:
            offsets[system.name] = system.port_offset
            continue
        while candidate in taken:
            candidate += 1
        offsets[system.name] = candidate
        taken.add(candidate)
    return offsets


def port_offset(name: str) -> int:
    """The offset from ``base_port`` that ``name`` listens on (see :func:`port_offsets`)."""
    get(name)
    return port_offsets()[name]


def _load_builtin(name: str) -> SimulatedSystem:
    module = importlib.import_module(f"etl.simulators.{name}")
    system = getattr(module, "SIMULATOR", None)
    if not isinstance(system, SimulatedSystem) or system.name != name:
        raise TypeError(f"etl.simulators.{name} must export SIMULATOR = SimulatedSystem(name={name!r}, ...)")
    return system


def _check_share(what: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} must lie between 0 and 1, not {value}")
