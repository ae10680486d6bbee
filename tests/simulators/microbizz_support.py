"""Shared helpers for the Microbizz simulator contract tests: a manual clock, the wire client and ``start``.

Test modules import ``microbizz_start``; pytest registers it as the ``start`` fixture.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from etl.simulators.faults import FaultPlan
from etl.simulators.microbizz import DEMO_CREDENTIALS, STATE, MicrobizzOptions, create_app
from etl.simulators.world import World

WORLD = World(seed=11, scale=240)
MEMBERS = list(WORLD.members("microbizz"))
FIRST_CUSTOMER = 1000 + MEMBERS[0]
SYNC_START = {"changedate": "1970-01-01", "changetime": "00:00:00"}


class ManualClock:
    """A server clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


class Microbizz:
    """The test's side of the wire: envelopes in, parsed answers out."""

    def __init__(self, app: Any, server: TestServer, http: aiohttp.ClientSession, clock: ManualClock) -> None:
        self.app, self.server, self.http, self.clock = app, server, http, clock
        self.state = app[STATE]
        self.url = server.make_url("/api/endpoint.php")

    async def send(self, commands: list[Any], **fields: Any) -> tuple[int, dict[str, Any]]:
        envelope = {**DEMO_CREDENTIALS, "remoteagent": "contract-test", **fields, "commands": commands}
        async with self.http.post(self.url, data={"json": json.dumps(envelope)}) as response:
            return response.status, await response.json()

    async def run(self, *commands: dict[str, Any], **fields: Any) -> list[dict[str, Any]]:
        status, body = await self.send(list(commands), **fields)
        assert status == 200 and body["status"] == 1, body
        return body["results"]

    async def one(self, command: str, **args: Any) -> dict[str, Any]:
        (result,) = await self.run({"command": command, **args})
        return result

    async def ok(self, command: str, **args: Any) -> dict[str, Any]:
        result = await self.one(command, **args)
        assert result["status"] == 1, result
        return result

    async def sync(
        self, command: str, output: str, between: Callable[[int], Awaitable[None]] | None = None, **since: str
    ) -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
        """Follow resumekeys to the end; returns the objects, the number of calls and the first envelope."""
        since = since or SYNC_START
        objects: list[dict[str, Any]] = []
        key, calls, first = None, 0, None
        while True:
            command_args = {"command": command, **since, **({"resumekey": key} if key else {})}
            status, body = await self.send([command_args])
            assert status == 200 and body["status"] == 1 and body["results"][0]["status"] == 1, body
            first = first or body
            calls += 1
            objects += body["results"][0][output]
            key = body["results"][0].get("resumekey")
            if not key:
                return objects, calls, first
            if between:
                await between(calls)


Start = Callable[..., Awaitable[Microbizz]]


@pytest.fixture(name="start")
async def microbizz_start() -> AsyncIterator[Start]:
    servers: list[TestServer] = []
    http = aiohttp.ClientSession()

    async def _start(world: World | None = WORLD, faults: FaultPlan | None = None, **options: Any) -> Microbizz:
        clock = ManualClock(datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC))
        options.setdefault("extra_field_rate", 0.0)
        app = create_app(world, faults=faults, options=MicrobizzOptions(clock=clock, **options))
        server = TestServer(app)
        await server.start_server()
        servers.append(server)
        return Microbizz(app, server, http, clock)

    yield _start
    for server in servers:
        await server.close()
    await http.close()
