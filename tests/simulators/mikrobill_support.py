"""Shared helpers for the MikroBILL simulator contract tests: id derivations, the wire client and ``start``.

Test modules import ``mikrobill_start``; pytest registers it as the ``start`` fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from etl.simulators.faults import FaultPlan
from etl.simulators.mikrobill import DEMO_CREDENTIALS, SESSION_HEADER, STATE, MikrobillOptions, create_app
from etl.simulators.world import World

WORLD = World(seed=7, scale=300)
MEMBERS = list(WORLD.members("mikrobill"))


def client_id(customer_id: int) -> int:
    """The documented derivation: 6338241 followed by the zero-padded customer id."""
    return 633_824_100_000_000 + customer_id


def guid(account_id: int) -> int:
    """The documented derivation: 28236 followed by the zero-padded account id."""
    return 28_236_000_000_000 + account_id


FIRST = WORLD.customer(MEMBERS[0])
FIRST_ACCOUNTS = WORLD.accounts_of(FIRST)
C1 = client_id(FIRST.id)
A1 = guid(FIRST_ACCOUNTS[0].id)
C2 = client_id(MEMBERS[1])
A2 = guid(WORLD.accounts_of(WORLD.customer(MEMBERS[1]))[0].id)


class Mikrobill:
    """The test's side of the wire: connect, Process, close."""

    def __init__(self, app: Any, server: TestServer, http: aiohttp.ClientSession) -> None:
        self.app, self.server, self.http = app, server, http
        self.state = app[STATE]
        self.token = ""

    async def post(self, route: str, body: Any, token: str | None = None) -> tuple[int, Any]:
        headers = {SESSION_HEADER: token} if token else {}
        async with self.http.post(self.server.make_url(route), json=body, headers=headers) as response:
            return response.status, await response.json()

    async def connect(self, **overrides: str) -> dict[str, Any]:
        status, body = await self.post("/connect", DEMO_CREDENTIALS | overrides)
        assert status == 200
        if body["code"] == 0:
            self.token = body["return"]
        return body

    async def process(self, path: str, args: Any = None) -> Any:
        status, body = await self.post("/process", {"path": path, "args": args}, self.token)
        assert status == 200
        return body

    async def value(self, path: str, args: Any = None) -> Any:
        body = await self.process(path, args)
        assert body["code"] == 0, body
        return body["return"]


Start = Callable[..., Awaitable[Mikrobill]]


@pytest.fixture(name="start")
async def mikrobill_start() -> AsyncIterator[Start]:
    started: list[Mikrobill] = []

    async def _start(
        world: World | None = WORLD,
        *,
        options: MikrobillOptions | None = None,
        faults: FaultPlan | None = None,
        connect: bool = True,
    ) -> Mikrobill:
        app = create_app(world, faults=faults, options=options)
        server = TestServer(app)
        await server.start_server()
        mb = Mikrobill(app, server, aiohttp.ClientSession())
        started.append(mb)
        if connect:
            assert (await mb.connect())["code"] == 0
        return mb

    yield _start
    for mb in started:
        await mb.http.close()
        await mb.server.close()
