"""The aiohttp application: routes under ``/api/index.php/``, in the order Dolibarr checks things.

``index.php`` first (module active? API file exists? else plain text), then Restler: the JSON body
is decoded (setup stage), the route is matched, the key is checked (authenticate stage) and the API
method runs (call stage). Every answer that is not a success goes through :class:`RestError`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

import msgspec
from aiohttp import web

from etl.simulators.faults import FaultPlan
from etl.simulators.miclinik import auth, views_orders, views_read, views_write
from etl.simulators.miclinik.errors import (
    API_NOT_FOUND,
    LOGIN_PAGE,
    MODULE_NOT_ACTIVE,
    RestError,
    error_response,
    plain_page,
)
from etl.simulators.miclinik.listing import SortCache
from etl.simulators.miclinik.options import MiclinikOptions
from etl.simulators.miclinik.render import Renderer
from etl.simulators.miclinik.rows import UserRow
from etl.simulators.miclinik.store import Store
from etl.simulators.miclinik.transactions import Transactions
from etl.simulators.world import TruthRow, World

BASE = "/api/index.php"
# API classes that exist (api_<name>.class.php); any other name is index.php's 501.
KNOWN_APIS = frozenset({"products", "thirdparties", "orders", "users", "login", "status", "setup", "explorer"})

Handler = Callable[[web.Request, "MiclinikState", UserRow | None, dict | None], Awaitable[web.Response]]


@dataclass
class MiclinikState:
    """Everything one simulated Dolibarr holds; ``STATE`` maps the app to it."""

    options: MiclinikOptions
    store: Store
    faults: FaultPlan | None = None
    renderer: Renderer = field(init=False)
    sort_cache: SortCache = field(init=False)
    transactions: Transactions = field(init=False)
    request_log: list[dict] = field(default_factory=list)
    call_count: int = 0
    revoked_left: int = 0

    def __post_init__(self) -> None:
        self.renderer = Renderer(self.options)
        self.sort_cache = SortCache(lambda: self.store.version)
        self.transactions = Transactions(self.options)

    def mutate(self, fraction: float, seed: int) -> int:
        """Edit ``fraction`` of products and third parties like a user would; bumps their ``tms``."""
        return self.store.mutate(fraction, seed)

    def truth(self) -> Iterator[TruthRow]:
        """Every served record with its true world id."""
        return self.store.truth()

    def roll(self, kind: str) -> bool:
        """Whether the fault ``kind`` fires now (never without a fault plan)."""
        return self.faults is not None and self.faults.roll(kind)


STATE: web.AppKey[MiclinikState] = web.AppKey("miclinik_state", MiclinikState)


def create_app(
    world: World | None, *, faults: FaultPlan | None = None, options: MiclinikOptions | None = None
) -> web.Application:
    """A simulated miclinik (Dolibarr REST API) serving ``world`` (None = an empty database)."""
    options = options or MiclinikOptions()
    state = MiclinikState(options=options, store=Store(world, options), faults=faults)
    app = web.Application(middlewares=[_index_php], client_max_size=16 * 1024**2)
    app[STATE] = state
    for method, path, call, handler, public in ROUTES:
        app.router.add_route(method, BASE + path, _endpoint(handler, public=public), name=call)
    app.router.add_route("*", BASE + "/{name}{tail:.*}", _no_route, name="unrouted")
    if options.web_login_page:
        app.router.add_route("GET", "/{tail:.*}", _login_page, name="web.login")
    return app


async def _login_page(request: web.Request) -> web.Response:
    """Outside the API (a base URL without ``/api/index.php``): the web login form, status 200."""
    return plain_page(200, LOGIN_PAGE)


def _endpoint(handler: Handler, *, public: bool = False) -> Callable[[web.Request], Awaitable]:
    async def run(request: web.Request) -> web.Response:
        state = request.app[STATE]
        body = await _read_body(request) if request.method in ("POST", "PUT") else None
        user = None if public else await auth.authenticate(request, state)
        return await handler(request, state, user, body)

    return run


async def _read_body(request: web.Request) -> dict:
    """Restler decodes the JSON body before routing; a syntax error fails at the setup stage."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw.decode())
    except ValueError:  # UnicodeDecodeError included
        raise RestError(
            400, "Error encoding/decoding JSON: Syntax error", source="JsonFormat.php:154", stage="setup"
        ) from None
    return data if isinstance(data, dict) else {}  # [guess] a non-object body carries no fields


async def _no_route(request: web.Request) -> web.Response:
    """Unknown API name: index.php's plain 501. Known name, no such route: Restler's 404."""
    if request.match_info["name"] not in KNOWN_APIS:
        return plain_page(501, API_NOT_FOUND)
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=_CORS)
    raise RestError(404, "", source="Routes.php:451", stage="route")


_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "DOLAPIKEY, DOLAPIENTITY, Authorization, Content-Type",
}


@web.middleware
async def _index_php(request: web.Request, handler: Callable[[web.Request], Awaitable]) -> web.StreamResponse:
    """Count and log every call; the module-not-active page; RestError to Restler's body."""
    state = request.app[STATE]
    state.call_count += 1
    entry = {"method": request.method, "path": request.path, "query": dict(request.query)}
    state.request_log.append(entry)
    call = request.match_info.route.name or "unrouted"
    try:
        if state.roll("not_active"):
            call = "not_active"
            response = plain_page(200, MODULE_NOT_ACTIVE)
        else:
            response = await handler(request)
    except RestError as error:
        response = error_response(error, state.options.production_mode)
    except web.HTTPException as http_error:
        response = web.Response(status=http_error.status, body=http_error.text.encode() if http_error.text else None)
    entry["what"] = f"{call} {urlencode(sorted(request.query.items()))}".strip()
    entry["status"] = response.status
    if not state.options.production_mode:
        _pretty_print(response)
    return response


def _pretty_print(response: web.StreamResponse) -> None:
    """Without API_PRODUCTION_MODE Restler pretty-prints every JSON answer (protocols.md §1.9):
    the same record arrives as other bytes when the setting changes. Bodies the formatter cannot
    read (an unpaired surrogate escape) go out as they are, as PHP would have written them."""
    if not isinstance(response, web.Response) or not response.body or "json" not in (response.content_type or ""):
        return
    body = response.body if isinstance(response.body, bytes) else None
    if body is None:
        return
    with contextlib.suppress(msgspec.DecodeError):
        response.body = msgspec.json.format(body, indent=4)


ROUTES: list[tuple[str, str, str, Handler, bool]] = [
    ("GET", "/status", "status", views_read.status, False),
    ("GET", "/login", "login.get", lambda request, state, user, body: auth.login(request, state, body), True),
    ("POST", "/login", "login.post", lambda request, state, user, body: auth.login(request, state, body), True),
    ("GET", "/products", "products.list", views_read.list_products, False),
    ("GET", r"/products/{id:\d+}", "products.get", views_read.get_product, False),
    ("GET", "/products/ref/{ref}", "products.by_ref", views_read.get_product_by_ref, False),
    ("POST", "/products", "products.create", views_write.create_product, False),
    ("PUT", r"/products/{id:\d+}", "products.update", views_write.update_product, False),
    ("DELETE", r"/products/{id:\d+}", "products.delete", views_write.delete_product, False),
    ("GET", "/thirdparties", "thirdparties.list", views_read.list_thirdparties, False),
    ("GET", r"/thirdparties/{id:\d+}", "thirdparties.get", views_read.get_thirdparty, False),
    ("GET", "/thirdparties/email/{email}", "thirdparties.by_email", views_read.get_thirdparty_by_email, False),
    ("POST", "/thirdparties", "thirdparties.create", views_write.create_thirdparty, False),
    ("PUT", r"/thirdparties/{id:\d+}", "thirdparties.update", views_write.update_thirdparty, False),
    ("GET", "/orders", "orders.list", views_read.list_orders, False),
    ("GET", r"/orders/{id:\d+}", "orders.get", views_read.get_order, False),
    ("GET", "/orders/ref/{ref}", "orders.by_ref", views_read.get_order_by_ref, False),
    ("GET", r"/orders/{id:\d+}/lines", "orders.lines", views_read.get_order_lines, False),
    ("POST", "/orders", "orders.create", views_orders.create_order, False),
    ("POST", r"/orders/{id:\d+}/lines", "orders.add_line", views_orders.add_order_line, False),
    ("PUT", r"/orders/{id:\d+}/lines/{lineid:\d+}", "orders.update_line", views_orders.update_order_line, False),
    ("POST", r"/orders/{id:\d+}/validate", "orders.validate", views_orders.validate_order, False),
    ("PUT", r"/orders/{id:\d+}", "orders.update", views_orders.update_order, False),
    ("DELETE", r"/orders/{id:\d+}", "orders.delete", views_orders.delete_order, False),
    ("GET", "/users", "users.list", views_read.list_users, False),
    ("GET", "/users/info", "users.info", views_read.user_info, False),
    ("GET", r"/users/{id:\d+}", "users.get", views_read.get_user, False),
    ("POST", "/users", "users.create", views_write.create_user, False),
]
