"""Shared by the retry tests: a server-side gate that logs one page's requests and injects a fault into them.

The gate is an aiohttp middleware put in front of a real simulator (outermost, so it sees
every request, even those a proxy fault answers before the application does). It keeps its
own log of the requests for the page under test, which is what the tests count; the fault
is either a page the proxy in front answers with, or one of the simulator's own fault kinds
made to fire on exactly those requests.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from etl.settings import SourceSettings
from etl.simulators.faults import FaultPlan, proxy_error
from tests.support import shipped_settings, source_for

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Fault = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
Matcher = Callable[[web.Request, bytes], bool]

FAST = {"backoff_initial": 0.001, "backoff_max": 0.002, "rate_limit": 10_000}


@dataclass
class FaultGate:
    """Logs the requests ``matches`` picks; the first ``faulty`` of them (all when ``None``) get ``fault``."""

    matches: Matcher
    fault: Fault
    faulty: int | None = None
    log: list[bytes] = field(default_factory=list)
    faulted: int = 0

    @property
    def requests(self) -> int:
        """How many requests for the page reached the server."""
        return len(self.log)

    def middleware(self) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
        @web.middleware
        async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
            body = await request.read()  # aiohttp keeps it: the application reads it again
            if not self.matches(request, body):
                return await handler(request)
            self.log.append(body)
            if self.faulty is None or self.faulted < self.faulty:
                self.faulted += 1
                return await self.fault(request, handler)
            return await handler(request)

        return gate


def proxy_page(status: int, *, retry_after: int | None = None) -> Fault:
    """nginx in front answers ``status`` with its HTML page; the application never sees the request."""

    async def fault(request: web.Request, handler: Handler) -> web.StreamResponse:
        return proxy_error(status, retry_after=retry_after)

    return fault


def simulator_fault(plan: FaultPlan, kind: str) -> Fault:
    """The simulator's own fault ``kind`` fires on this request (its rate is 1 while the request runs)."""

    async def fault(request: web.Request, handler: Handler) -> web.StreamResponse:
        plan.rates[kind] = 1.0
        try:
            return await handler(request)
        finally:
            plan.rates[kind] = 0.0

    return fault


def before(action: Callable[[], Any]) -> Fault:
    """Run ``action`` on the server (e.g. forget every session), then let the request through."""

    async def fault(request: web.Request, handler: Handler) -> web.StreamResponse:
        action()
        return await handler(request)

    return fault


def held(release: asyncio.Event, finished: asyncio.Event) -> Fault:
    """Hold the request until the test releases it, then let the application act on it."""

    async def fault(request: web.Request, handler: Handler) -> web.StreamResponse:
        await release.wait()
        try:
            return await handler(request)
        finally:
            finished.set()

    return fault


@asynccontextmanager
async def serve(app: web.Application, gate: FaultGate | None = None) -> AsyncIterator[str]:
    """``app`` on a loopback port, the gate outermost; yields the server's origin."""
    if gate is not None:
        app.middlewares.insert(0, gate.middleware())
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/")


def settings_for(kind: str, base_url: str, attempts: int, **fields: Any) -> SourceSettings:
    """The shipped source of ``kind`` at ``base_url`` with ``attempts`` attempts and near-zero backoff.

    ``options`` given here are merged into the shipped options instead of replacing them."""
    shipped = next(s for s in shipped_settings().sources if s.kind == kind)
    options = {**shipped.options.model_dump(), **fields.pop("options", {})}
    return source_for(kind, base_url, **{**FAST, "max_attempts": attempts, "options": options, **fields})


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
