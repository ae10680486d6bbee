"""The toy kind's simulator: an independent aiohttp server (it imports nothing of the toy source)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiohttp import web

from etl.simulators.registry import SimulatedSystem
from etl.simulators.world import TruthRow, World

TOKEN = "toy-token-7f3a9c"


class ToyState:
    def __init__(self, world: World | None) -> None:
        world = world or World(seed=1, scale=50)
        self.members = {cid: world.customer(cid).display_name for cid in world.members("toybill")}
        self.plans = {p.id: p.label for p in world.products()}
        self.request_log: list[dict[str, Any]] = []

    def truth(self) -> Iterator[TruthRow]:
        for cid in self.members:
            yield TruthRow("toybill", "customer", str(cid), cid)
        for pid in self.plans:
            yield TruthRow("toybill", "product", str(pid), pid)


STATE: web.AppKey[ToyState] = web.AppKey("toybill_state", ToyState)


def create_app(world: World | None, *, faults: Any = None, options: Any = None) -> web.Application:
    app = web.Application()
    app[STATE] = state = ToyState(world)

    def authorised(request: web.Request) -> bool:
        state.request_log.append({"path": request.path, **request.query})
        return request.headers.get("X-Toy-Token") == TOKEN

    async def ping(request: web.Request) -> web.Response:
        if not authorised(request):
            return web.json_response({"error": "bad token"}, status=401)
        return web.json_response({"pong": True})

    async def listing(request: web.Request) -> web.Response:
        if not authorised(request):
            return web.json_response({"error": "bad token"}, status=401)
        table = {"members": state.members, "plans": state.plans}.get(request.match_info["resource"])
        if table is None:
            return web.json_response({"error": "no such list"}, status=404)
        after, limit = int(request.query.get("after", 0)), int(request.query.get("limit", 100))
        ids = sorted(i for i in table if i > after)[:limit]
        return web.json_response({"items": [{"id": i, "name": table[i]} for i in ids]})

    app.router.add_get("/toy/ping", ping)
    app.router.add_get("/toy/items/{resource}", listing)
    return app


SIMULATOR = SimulatedSystem(
    name="toybill",
    base_path="/toy",
    create_app=create_app,
    state_key=STATE,
    demo_credentials={"account": "acme", "token": TOKEN},
    presence=1.0,
)
