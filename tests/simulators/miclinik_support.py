"""Shared helpers for the miclinik (Dolibarr) simulator contract tests: a real-socket server and client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from etl.simulators.faults import FaultPlan
from etl.simulators.miclinik import DEMO_CREDENTIALS, STATE, MiclinikOptions, MiclinikState, create_app
from etl.simulators.world import World

KEY = DEMO_CREDENTIALS["api_key"]
WORLD = World(seed=7, scale=600)


@dataclass
class Reply:
    status: int
    content_type: str
    body: Any
    raw: bytes
    headers: Any


@dataclass
class Client:
    session: aiohttp.ClientSession
    base: str
    state: MiclinikState

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = KEY,
        query: dict | None = None,
        json: Any = None,
        data: str | None = None,
        headers: dict | None = None,
    ) -> Reply:
        sent = dict(headers or {})
        if key is not None:
            sent["DOLAPIKEY"] = key
        params = {k: str(v) for k, v in (query or {}).items()}
        async with self.session.request(
            method, self.base + path, params=params, json=json, data=data, headers=sent
        ) as response:
            raw = await response.read()
            content_type = response.headers.get("Content-Type", "")
            body: Any = raw.decode()
            if content_type.startswith("application/json") and raw:
                body = await response.json()
            return Reply(response.status, content_type, body, raw, response.headers)

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, json: Any = None, **kwargs: Any) -> Reply:
        return await self.call("POST", path, json=json, **kwargs)


@asynccontextmanager
async def serve(world: World | None = WORLD, faults: FaultPlan | None = None, **options: Any) -> AsyncIterator[Client]:
    """One simulator on a loopback socket and a client session for it."""
    options.setdefault("bad_key_delay", 0.01)
    app = create_app(world, faults=faults, options=MiclinikOptions(**options))
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as session:
        yield Client(session, str(server.make_url("/api/index.php")), app[STATE])


def message(reply: Reply) -> str:
    return reply.body["error"]["message"]
