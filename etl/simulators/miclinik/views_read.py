"""GET endpoints: lists, single objects, status, users/info.

Each list follows the ``index()`` of its Dolibarr API class: the right is checked, the query parsed,
the faults a real database shows are rolled (``db_error``: 503 on the query; OLD only: a page after
the first that comes back empty, 404), then the page is rendered. Empty lists are 404 in the OLD
profile and ``[]`` in the NEW one, except third parties, which are 404 in both.

A user without "see all third parties" (``societe.client.voir``, right 262) lists only the third
parties they are sales representative of, and their orders: none here, so such a key reads empty
third-party and order lists without any error (protocols.md §1.9). ``t.tms`` is compared in the
database's zone (option ``db_utc_offset_hours``), see :func:`zoned`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from etl.simulators.miclinik.auth import may, permission_denied
from etl.simulators.miclinik.errors import RestError, json_response, json_value
from etl.simulators.miclinik.listing import (
    ListQuery,
    Resource,
    RowSource,
    compile_filter,
    list_body,
    parse_query,
    select_rows,
)
from etl.simulators.miclinik.render import select_properties
from etl.simulators.miclinik.rows import (
    LINE_COLUMNS,
    ORDER_COLUMNS,
    PRODUCT_COLUMNS,
    THIRDPARTY_COLUMNS,
    USER_COLUMNS,
    ColumnView,
    UserRow,
)
from etl.simulators.miclinik.tables import DictTable

if TYPE_CHECKING:
    from etl.simulators.miclinik.app import MiclinikState

PRODUCTS = Resource(
    PRODUCT_COLUMNS, "t.ref", "Error when retrieve product list", "api_products.class.php", "No product found"
)
THIRDPARTIES = Resource(
    THIRDPARTY_COLUMNS, "t.rowid", "Error when retrieve thirdparties", "api_thirdparties.class.php", ""
)
ORDERS = Resource(
    ORDER_COLUMNS, "t.rowid", "Error when retrieve commande list", "api_orders.class.php", "No order found"
)
ORDER_LINES = Resource(LINE_COLUMNS, "tl.rowid", "Error when retrieve commande list", "api_orders.class.php", "")
USERS = Resource(USER_COLUMNS, "t.rowid", "Error when retrieve User list", "api_users.class.php", "No User found")
# [guess] the error MariaDB reports when the db_error fault fires.
DB_ERROR = "Lost connection to server during query"
# api_thirdparties' 404 text per ``mode``.
THIRDPARTY_EMPTY = {
    0: "No third parties found",
    1: "No customers found",
    2: "No prospects found",
    3: "No other third parties found",
    4: "No suppliers found",
}
THIRDPARTY_MODES: dict[int, Callable[[Any], bool]] = {
    1: lambda row: row.client in (1, 3),
    2: lambda row: row.client in (2, 3),
    3: lambda row: row.client == 0,
    4: lambda row: row.fournisseur == 1,
}


def require(state: MiclinikState, user: UserRow | None, right: str, message: str = "") -> None:
    """Raise the profile's permission error unless the user holds ``right``."""
    if user is None or not may(user, right):
        raise permission_denied(state, message)


def _list_faults(state: MiclinikState, resource: Resource, query: ListQuery) -> None:
    """The failures a real server shows on a list query."""
    if state.roll("db_error"):
        raise RestError(503, f"{resource.list_error} : {DB_ERROR}", source=resource.source)
    if not state.options.is_new and query.page > 0 and state.roll(state.options.old_page_404_kind):
        raise RestError(404, resource.empty_old, source=resource.source)


SEE_ALL_THIRDPARTIES = "societe.client.voir"
_ZONED: dict[tuple[int, float], Resource] = {}


def sees_all_thirdparties(user: UserRow | None) -> bool:
    """Whether lists show this user every third party (right 262), not only those they represent."""
    return user is not None and may(user, SEE_ALL_THIRDPARTIES)


def zoned(state: MiclinikState, resource: Resource) -> Resource:
    """``resource`` with ``t.tms`` read as the database zone's local time: MariaDB shows a TIMESTAMP in
    the session zone, which Dolibarr never sets, and compares the filter's literal with that."""
    offset = state.options.db_utc_offset_hours
    if not offset or "t.tms" not in resource.columns:
        return resource
    key = (id(resource), offset)
    if key not in _ZONED:
        shift = timedelta(hours=offset)

        def local_tms(row: Any) -> datetime:
            return (datetime.fromtimestamp(row.tms, UTC) + shift).replace(tzinfo=None)

        _ZONED[key] = dataclasses.replace(resource, columns={**resource.columns, "t.tms": local_tms})
    return _ZONED[key]


def server_now(state: MiclinikState) -> datetime:
    """The server clock as ``__NOW__`` reads it."""
    return datetime.fromtimestamp(state.store.now(), UTC)


def _run_list(
    state: MiclinikState,
    request: web.Request,
    resource: Resource,
    table: RowSource,
    keep: Callable[[Any], bool] | None = None,
    user_id: int = 1,
) -> tuple[ListQuery, list, int]:
    new = state.options.is_new
    resource = zoned(state, resource)
    query = parse_query(request.query, resource, new=new)
    expr = compile_filter(query.sqlfilters, resource, new=new, now=server_now(state), user_id=user_id)
    _list_faults(state, resource, query)
    rows, total = select_rows(query, resource, expr, table, state.sort_cache, keep)
    cap = state.options.max_page_size
    return query, rows[:cap] if cap > 0 else rows, total


def _respond(state: MiclinikState, query: ListQuery, items: list[str], total: int, resource: Resource) -> web.Response:
    """Render a page: OLD answers an empty page with 404, NEW with ``[]`` (or the pagination envelope)."""
    if not items and not state.options.is_new:
        raise RestError(404, resource.empty_old, source=resource.source)
    if query.properties is not None:
        items = [
            json.dumps(select_properties(text, query.properties), ensure_ascii=False, separators=(",", ":"))
            for text in items
        ]
    return json_response(list_body(items, total, query))


def _category_filter(request: web.Request) -> Callable[[Any], bool] | None:
    """``category``: no categories exist in the simulated database, so any category matches nothing. [guess]"""
    category = request.query.get("category", "0").strip()
    return (lambda row: False) if category not in ("", "0") else None


def _both(first: Callable[[Any], bool] | None, second: Callable[[Any], bool] | None) -> Callable[[Any], bool] | None:
    if first is None or second is None:
        return first or second
    return lambda row: first(row) and second(row)


# -- products ------------------------------------------------------------------
async def list_products(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """GET /products: mode (1 products, 2 services), sqlfilters, sort, page; NEW: ids_only, properties."""
    require(state, user, "produit.lire")
    mode = request.query.get("mode", "0").strip()
    keep = {"1": lambda row: row.fk_product_type == 0, "2": lambda row: row.fk_product_type == 1}.get(mode)
    keep = _both(keep, _category_filter(request))
    query, rows, total = _run_list(state, request, PRODUCTS, DictTable(state.store.products), keep)
    if state.options.is_new and request.query.get("ids_only", "").lower() in ("1", "true"):
        # [guess] the rowids come straight from mysqli, as strings like every other id
        return json_response(list_body([f'"{row.rowid}"' for row in rows], total, query))
    render = state.renderer.product_json
    return _respond(state, query, [render(row) for row in rows], total, PRODUCTS)


async def get_product(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """GET /products/{id}."""
    require(state, user, "produit.lire")
    row = state.store.product(int(request.match_info["id"]))
    if row is None:
        raise RestError(404, "Product not found", source="api_products.class.php:2436")
    return json_response(state.renderer.product_json(row))


async def get_product_by_ref(
    request: web.Request, state: MiclinikState, user: UserRow | None, body: Any
) -> web.Response:
    """GET /products/ref/{ref}."""
    require(state, user, "produit.lire")
    row = state.store.product_by_ref(request.match_info["ref"])
    if row is None:
        raise RestError(404, "Product not found", source="api_products.class.php:2436")
    return json_response(state.renderer.product_json(row))


# -- third parties -------------------------------------------------------------
async def list_thirdparties(
    request: web.Request, state: MiclinikState, user: UserRow | None, body: Any
) -> web.Response:
    """GET /thirdparties: mode 0-4, sqlfilters on ``t.nom`` etc.; an empty result is always 404."""
    require(state, user, "societe.lire")
    mode = int(request.query.get("mode", "0") or 0) if request.query.get("mode", "0").strip().isdigit() else 0
    keep = _both(THIRDPARTY_MODES.get(mode), _category_filter(request))
    keep = keep if sees_all_thirdparties(user) else _represents_none
    query, rows, total = _run_list(state, request, THIRDPARTIES, state.store.thirdparties, keep)
    if not rows:
        raise RestError(404, THIRDPARTY_EMPTY.get(mode, THIRDPARTY_EMPTY[0]), source="api_thirdparties.class.php:270")
    render = state.renderer.thirdparty_json
    return _respond(state, query, [render(row, listed=True) for row in rows], total, THIRDPARTIES)


def _represents_none(row: Any) -> bool:
    """The sales-representative join of a user without right 262: they represent no one here."""
    return False


def _check_access(state: MiclinikState, user: UserRow | None) -> None:
    """``_checkAccessToResource``: a user without right 262 may not read a third party's objects."""
    if not sees_all_thirdparties(user):
        login = user.login if user else ""
        raise permission_denied(state, f"Access not allowed for login {login}")


async def get_thirdparty(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """GET /thirdparties/{id}."""
    require(state, user, "societe.lire")
    _check_access(state, user)
    row = state.store.thirdparties.get(int(request.match_info["id"]))
    if row is None:
        raise RestError(404, "Thirdparty not found", source="api_thirdparties.class.php:2611")
    return json_response(state.renderer.thirdparty_json(row))


async def get_thirdparty_by_email(
    request: web.Request, state: MiclinikState, user: UserRow | None, body: Any
) -> web.Response:
    """GET /thirdparties/email/{email}: compared as the case-insensitive collation compares."""
    require(state, user, "societe.lire")
    wanted = request.match_info["email"].strip().lower()
    row = next((r for r in state.store.thirdparties.all() if (r.email or "").strip().lower() == wanted), None)
    if row is None:
        raise RestError(404, "Thirdparty not found", source="api_thirdparties.class.php:2611")
    return json_response(state.renderer.thirdparty_json(row))


# -- orders --------------------------------------------------------------------
def _order_filters(request: web.Request, state: MiclinikState) -> Callable[[Any], bool] | None:
    """``thirdparty_ids`` and (NEW) ``sqlfilterlines`` on the lines' columns (alias ``tl``)."""
    keep = None
    ids_text = request.query.get("thirdparty_ids", "").strip()
    if ids_text:
        socids = {int(part) for part in ids_text.split(",") if part.strip().isdigit()}
        keep = lambda row: row.fk_soc in socids  # noqa: E731
    lines_text = request.query.get("sqlfilterlines", "").strip()
    if lines_text and state.options.is_new:
        expr = compile_filter(lines_text, ORDER_LINES, new=True, now=server_now(state))
        assert expr is not None
        matches = expr.predicate()

        def any_line(row: Any) -> bool:
            return any(matches(ColumnView(line, LINE_COLUMNS)) for line in row.lines)

        keep = _both(keep, any_line)
    return keep


async def list_orders(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """GET /orders: every order with its lines; thirdparty_ids, sqlfilters, sqlfilterlines (NEW)."""
    require(state, user, "commande.lire")
    keep = _order_filters(request, state) if sees_all_thirdparties(user) else _represents_none
    query, rows, total = _run_list(state, request, ORDERS, state.store.orders, keep)
    product = state.store.product
    items = [state.renderer.order_json(row, product, "list") for row in rows]
    return _respond(state, query, items, total, ORDERS)


def _order(state: MiclinikState, request: web.Request) -> Any:
    row = state.store.orders.get(int(request.match_info["id"]))
    if row is None:
        raise RestError(404, "Order not found", source="api_orders.class.php:132")
    return row


async def get_order(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """GET /orders/{id}."""
    require(state, user, "commande.lire")
    _check_access(state, user)
    return json_response(state.renderer.order_json(_order(state, request), state.store.product))


async def get_order_by_ref(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """GET /orders/ref/{ref}: ``(PROVn)`` is read directly, a numbered ref is searched for."""
    require(state, user, "commande.lire")
    ref = request.match_info["ref"]
    orders = state.store.orders
    row = None
    if ref.startswith("(PROV") and ref.endswith(")") and ref[5:-1].isdigit():
        row = orders.get(int(ref[5:-1]))
    else:
        row = next((r for r in orders.all() if r.ref.lower() == ref.lower()), None)
    if row is None or row.ref.lower() != ref.lower():
        raise RestError(404, "Order not found", source="api_orders.class.php:132")
    return json_response(state.renderer.order_json(row, state.store.product))


async def get_order_lines(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """GET /orders/{id}/lines: the lines alone, as a list."""
    require(state, user, "commande.lire")
    row = _order(state, request)
    items = [state.renderer.line_json(line, state.store.product) for line in row.lines]
    return json_response(f"[{','.join(items)}]")


# -- users and status ----------------------------------------------------------
async def list_users(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """GET /users (needs the right to read users); user_ids filter."""
    require(state, user, "user.lire", "You are not allowed to read list of users")
    ids_text = request.query.get("user_ids", "").strip()
    keep = None
    if ids_text:
        wanted = {int(part) for part in ids_text.split(",") if part.strip().isdigit()}
        keep = lambda row: row.rowid in wanted  # noqa: E731
    keep = _both(keep, _category_filter(request))
    query, rows, _ = _run_list(state, request, USERS, DictTable(state.store.users), keep)
    query.pagination_data = False  # users has no pagination_data, even in NEW
    items = [state.renderer.user_json(row) for row in rows]
    return _respond(state, query, items, -1, USERS)


async def get_user(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """GET /users/{id}: one's own record, or anyone's with the right to read users."""
    rowid = int(request.match_info["id"])
    if user is None or (user.rowid != rowid and not may(user, "user.lire")):
        raise permission_denied(state, "", "api_users.class.php:0")
    row = state.store.users.get(rowid)
    if row is None:
        raise RestError(404, "User not found", source="api_users.class.php:0")
    return json_response(state.renderer.user_json(row))


async def user_info(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """GET /users/info: the key owner's own record with ``user_group_list``."""
    assert user is not None
    return json_response(state.renderer.user_json(user, with_groups=True))


async def status(request: web.Request, state: MiclinikState, user: UserRow | None, body: Any) -> web.Response:
    """GET /status: version and server clock (NEW); version only (OLD). Needs a key as recorded. [guess]"""
    now = state.store.now()
    success: dict[str, object] = {"code": 200, "dolibarr_version": state.options.version}
    if state.options.is_new:
        success |= {
            "access_locked": "0",
            "environment": "production" if state.options.main_prod else "non-production",
            "timestamp_now_utc": now,
            "timestamp_php_tz": "UTC",
            "date_tz": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S"),
        }
        if state.options.main_prod:
            # $dolibarr_main_prod=1 hides the clock (as seen, §1.9); [guess] the rest stays
            del success["timestamp_now_utc"]
    return json_value({"success": success})
