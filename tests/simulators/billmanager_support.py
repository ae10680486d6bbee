"""Shared helpers for the BILLmanager simulator contract tests: a real-socket panel and doc accessors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from etl.simulators.billmanager import DEMO_CREDENTIALS, STATE, BillmanagerOptions, BillmanagerState, create_app
from etl.simulators.faults import FaultPlan
from etl.simulators.world import World

WORLD = World(seed=11, scale=60)
ADMIN = f"{DEMO_CREDENTIALS['username']}:{DEMO_CREDENTIALS['password']}"
CLIENT_PASSWORD = BillmanagerOptions().client_password


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Panel:
    app: web.Application
    http: aiohttp.ClientSession
    base: URL

    @property
    def state(self) -> BillmanagerState:
        return self.app[STATE]

    async def raw(self, params: dict[str, Any], method: str = "GET", path: str = "/billmgr") -> tuple[int, str]:
        params = {key: str(value) for key, value in params.items()}
        url = self.base.with_path(path)
        request = self.http.post(url, data=params) if method == "POST" else self.http.get(url, params=params)
        async with request as response:
            return response.status, await response.text()

    async def doc(self, method: str = "GET", path: str = "/billmgr", **params: Any) -> dict[str, Any]:
        params.setdefault("out", "json")
        status, text = await self.raw(params, method, path)
        assert status == 200
        return json.loads(text)["doc"]

    async def admin(self, **params: Any) -> dict[str, Any]:
        return await self.doc(authinfo=ADMIN, **params)

    async def login(self, username: str = "admin", password: str = DEMO_CREDENTIALS["password"]) -> str:
        return (await self.doc(func="auth", username=username, password=password))["auth"]["$id"]


@asynccontextmanager
async def panel(world: World | None = WORLD, faults: FaultPlan | None = None, **options: Any) -> AsyncIterator[Panel]:
    app = create_app(world, faults=faults, options=BillmanagerOptions(**options))
    async with TestServer(app) as server, aiohttp.ClientSession() as http:
        yield Panel(app, http, server.make_url("/"))


def elems(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc.get("elem", [])


def column(doc: dict[str, Any], name: str) -> list[str]:
    return [elem[name]["$"] for elem in elems(doc) if name in elem]


def error_of(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["error"]["$type"], doc["error"].get("$object", "")


async def client_login(p: Panel, project: str | None = None) -> dict[str, str]:
    """A seeded client login (optionally of a project by name): its login, account id and project."""
    projects = {elem["id"]["$"]: elem["project"]["$"] for elem in elems(await p.admin(func="account"))}
    for elem in elems(await p.admin(func="user")):
        account_id = elem.get("account_id", {}).get("$")
        if account_id and (project is None or projects[account_id] == project):
            return {"name": elem["name"]["$"], "account_id": account_id, "project": projects[account_id]}
    raise AssertionError(f"no client login in project {project}")
