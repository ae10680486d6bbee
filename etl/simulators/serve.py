"""Run simulators in-process, each behind the fault proxy, on loopback ports.

``running_simulators`` is what tests, benchmarks and the pipeline's end-to-end runs use:
it builds each system's app through its :class:`~etl.simulators.registry.SimulatedSystem`
(the uniform ``create_app(world, faults=..., options=...)`` contract), puts
:func:`~etl.simulators.faults.fault_middleware` in front of it, and serves it with
``web.AppRunner``/``web.TCPSite``. ``serve_forever`` is the body of ``etl simulate``.
"""

from __future__ import annotations

import asyncio
import functools
import signal
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from etl.simulators import registry
from etl.simulators.faults import FaultPlan, describe_fired, fault_middleware
from etl.simulators.world import World


@dataclass
class RunningSimulator:
    """One simulator listening on a socket, with the handles a test needs."""

    system: str
    host: str
    port: int
    app: web.Application
    state: Any
    plan: FaultPlan
    credentials: dict[str, str]

    @property
    def origin(self) -> str:
        """``http://host:port`` (the server root)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The URL the ETL is configured with (server root plus the system's base path)."""
        return self.origin + registry.get(self.system).base_path


@dataclass
class RunningSimulators:
    """The simulators started by :func:`running_simulators`, keyed by system name."""

    systems: dict[str, RunningSimulator]

    def __getitem__(self, system: str) -> RunningSimulator:
        return self.systems[system]

    def __iter__(self) -> Iterator[RunningSimulator]:
        return iter(self.systems.values())

    def __len__(self) -> int:
        return len(self.systems)

    @property
    def base_urls(self) -> dict[str, str]:
        """System name -> base URL."""
        return {name: sim.base_url for name, sim in self.systems.items()}

    @property
    def plans(self) -> dict[str, FaultPlan]:
        """System name -> its fault plan (``plan.fired`` says what fired so far)."""
        return {name: sim.plan for name, sim in self.systems.items()}

    def table(self) -> str:
        """A plain-text table of system, base URL and demo credentials."""
        rows = [("system", "url", "credentials")]
        rows += [(sim.system, sim.base_url, _format_credentials(sim.credentials)) for sim in self]
        widths = [max(len(row[i]) for row in rows) for i in range(2)]
        lines = [f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}".rstrip() for row in rows]
        lines.insert(1, "-" * max(len(line) for line in lines))
        return "\n".join(lines)


def _format_credentials(credentials: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in credentials.items())


def build_app(
    system: registry.SimulatedSystem, world: World | None, plan: FaultPlan, options: object | None = None
) -> web.Application:
    """Create ``system``'s app with the fault proxy as its outermost middleware."""
    app = system.create_app(world, faults=plan, options=options)
    # app.middlewares stays a mutable list until the runner freezes the app; index 0 runs first,
    # so the fault proxy sees every request (unknown routes included) before the application does.
    app.middlewares.insert(0, fault_middleware(plan))
    return app


@asynccontextmanager
async def running_simulators(
    systems: Sequence[str] = registry.BUILTIN,
    *,
    world: World | None,
    faults: str = "none",
    seed: int = 0,
    base_port: int = 18000,
    host: str = "127.0.0.1",
    options: Mapping[str, object] | None = None,
) -> AsyncIterator[RunningSimulators]:
    """Serve ``systems`` on ``host``; ``base_port`` 0 picks free ports, else port = base_port + offset.

    ``systems`` are names from :func:`etl.simulators.registry.names`; each gets its own
    ``FaultPlan(faults, seed + offset)``; ``options`` maps a system name to that system's Options
    instance. Everything is shut down when the block exits.
    """
    options = options or {}
    # Resolved before anything listens, so an unknown name fails without leaving a server behind.
    chosen = [registry.get(name) for name in systems]
    offsets = registry.port_offsets()
    runners: list[web.AppRunner] = []
    started: dict[str, RunningSimulator] = {}
    try:
        for system in chosen:
            offset = offsets[system.name]
            plan = FaultPlan(faults, seed + offset)
            app = build_app(system, world, plan, options.get(system.name))
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, host, base_port + offset if base_port else 0).start()
            port = runner.addresses[0][1]
            state = app[system.state_key]
            credentials = dict(system.demo_credentials)
            started[system.name] = RunningSimulator(system.name, host, port, app, state, plan, credentials)
        yield RunningSimulators(started)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


async def serve_forever(
    systems: Sequence[str] = registry.BUILTIN,
    *,
    world: World | None,
    faults: str = "none",
    seed: int = 0,
    base_port: int = 18000,
    host: str = "127.0.0.1",
    options: Mapping[str, object] | None = None,
    write: Callable[[str], object] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or until ``stop`` is set); print the URL table, then a fault summary."""
    if write is None:
        # Flushed, so a parent reading our stdout through a pipe sees the table while we serve.
        write = functools.partial(print, flush=True)
    if stop is None:
        stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not every loop can take signal handlers (e.g. outside the main thread); stop still works.
        with suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    try:
        async with running_simulators(
            systems, world=world, faults=faults, seed=seed, base_port=base_port, host=host, options=options
        ) as running:
            write(running.table())
            write(f"fault profile: {faults} (seed {seed}); Ctrl-C to stop")
            await stop.wait()
            write(describe_fired(running.plans))
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
