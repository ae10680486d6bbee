"""The miclinik (Dolibarr) simulator against protocols.md §5.1, one test per point and sub-point.

Every test talks to a real socket (``aiohttp.test_utils.TestServer``) with ``aiohttp.ClientSession``.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from etl.simulators.faults import FaultPlan, fault_middleware
from etl.simulators.miclinik import DEMO_CREDENTIALS, STATE, MiclinikOptions, MiclinikState, create_app
from etl.simulators.world import World

KEY = DEMO_CREDENTIALS["api_key"]
READER = MiclinikOptions().readonly_api_key
WORLD = World(seed=7, scale=600)
MISSING_NEW = (
    "Unauthorized: Failed to login to API. Neither parameter 'HTTP_DOLAPIKEY' nor 'Authentication: Bearer' found "
    "on HTTP header (and no parameter DOLAPIKEY in URL)."
)
MISSING_OLD = "Unauthorized: Failed to login to API. No parameter 'HTTP_DOLAPIKEY' on HTTP header (and no parameter DOLAPIKEY in URL)."
BAD_KEY = (
    "Unauthorized: Error user not valid (not found with api key or bad status or bad validity dates) (conf->entity={})"
)
MONEY = re.compile(r"^-?\d+\.\d{8}$")


class Clock:
    """A settable server clock."""

    def __init__(self, now: float = 1_795_418_624) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


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


def plan(**rates: float) -> FaultPlan:
    return FaultPlan("none", seed=1, rates=rates)


def unaccented(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)).casefold()


def message(reply: Reply) -> str:
    return reply.body["error"]["message"]


# -- 5.1.1 routes --------------------------------------------------------------
async def test_5_1_1_get_routes_answer() -> None:
    """Every GET route of §5.1.1 answers 200 with the record asked for."""
    async with serve() as c:
        thirdparty = next(t for t in c.state.store.thirdparties.all() if t.email and t.email == t.email.strip().lower())
        order = (await c.get("/orders", query={"limit": 1})).body[0]
        product = (await c.get("/products/1")).body
        paths = {
            "/products": list, "/products/1": dict, f"/products/ref/{product['ref']}": dict, "/thirdparties": list,
            "/thirdparties/1": dict, f"/thirdparties/email/{thirdparty.email}": dict, "/orders": list,
            f"/orders/{order['id']}": dict, f"/orders/ref/{order['ref']}": dict, f"/orders/{order['id']}/lines": list,
            "/users": list, "/users/1": dict, "/users/info": dict, "/status": dict,
        }  # fmt: skip
        for path, kind in paths.items():
            reply = await c.get(path)
            assert reply.status == 200, (path, reply.body)
            assert isinstance(reply.body, kind), path
        assert (await c.get(f"/thirdparties/email/{thirdparty.email}")).body["id"] == str(thirdparty.rowid)


async def test_5_1_1_write_routes_answer() -> None:
    """Every POST/PUT/DELETE route of §5.1.1 answers 200."""
    async with serve() as c:
        product = await c.post("/products", {"ref": "NEW-1", "label": "New"})
        thirdparty = await c.post("/thirdparties", {"name": "New Co", "client": 1, "code_client": -1})
        order = await c.post("/orders", {"socid": thirdparty.body, "date": 1_795_132_800})
        line = await c.post(f"/orders/{order.body}/lines", {"fk_product": product.body, "qty": 1, "subprice": 5})
        user = await c.post("/users", {"login": "newbie", "lastname": "Newbie"})
        updates = [
            await c.call("PUT", f"/products/{product.body}", json={"label": "Renamed"}),
            await c.call("PUT", f"/thirdparties/{thirdparty.body}", json={"email": "a@b.example"}),
            await c.call("PUT", f"/orders/{order.body}", json={"ref_client": "PO-9"}),
        ]
        validated = await c.post(f"/orders/{order.body}/validate", {})
        deleted = await c.call("DELETE", f"/orders/{order.body}")
        for reply in (product, thirdparty, order, line, user, *updates, validated, deleted):
            assert reply.status == 200, reply.body
        assert deleted.body == {"success": {"code": 200, "message": "Order deleted"}}
        assert (await c.get(f"/orders/{order.body}")).status == 404


async def test_5_1_1_login_get_and_post() -> None:
    """GET and POST /login both hand out the admin's token without an API key."""
    async with serve() as c:
        credentials = {"login": "admin", "password": DEMO_CREDENTIALS["password"]}
        by_get = await c.get("/login", key=None, query=credentials)
        by_post = await c.post("/login", credentials, key=None)
        for reply in (by_get, by_post):
            assert reply.status == 200
            assert reply.body["success"]["token"] == KEY
            assert reply.body["success"]["message"].startswith("Welcome admin - This is your token")


# -- 5.1.2 auth ----------------------------------------------------------------
async def test_5_1_2_key_in_header_or_query() -> None:
    """The key works in the DOLAPIKEY header and in the api_key and DOLAPIKEY query parameters."""
    async with serve() as c:
        assert (await c.get("/products/1")).status == 200
        assert (await c.get("/products/1", key=None, query={"api_key": KEY})).status == 200
        assert (await c.get("/products/1", key=None, query={"DOLAPIKEY": KEY})).status == 200


async def test_5_1_2_bearer_accepted_in_new() -> None:
    """The NEW profile reads ``Authorization: Bearer`` when no DOLAPIKEY is given."""
    async with serve() as c:
        reply = await c.get("/products/1", key=None, headers={"Authorization": f"Bearer {KEY}"})
        assert reply.status == 200


async def test_5_1_2_missing_key_401_exact_text() -> None:
    """No key at all is 401 with Dolibarr's exact text, per profile."""
    async with serve() as c:
        reply = await c.get("/products", key=None)
        assert (reply.status, message(reply)) == (401, MISSING_NEW)
    async with serve(profile="OLD") as c:
        reply = await c.get("/products", key=None)
        assert (reply.status, message(reply)) == (401, MISSING_OLD)


async def test_5_1_2_wrong_key_delay_then_401() -> None:
    """An unknown key waits the configured delay, then gets 401 naming the entity."""
    async with serve(bad_key_delay=0.3) as c:
        started = time.monotonic()
        reply = await c.get("/products", key="wrong-key")
        assert time.monotonic() - started >= 0.3
        assert (reply.status, message(reply)) == (401, BAD_KEY.format(1))
        assert reply.headers.get("WWW-Authenticate") == ""


async def test_5_1_2_dolapientity_header() -> None:
    """DOLAPIENTITY picks the entity: the message names it, and a user outside it is refused."""
    async with serve() as c:
        assert (await c.get("/products/1", headers={"DOLAPIENTITY": "1"})).status == 200
        refused = await c.get("/products/1", key=READER, headers={"DOLAPIENTITY": "2"})
        assert (refused.status, message(refused)) == (401, BAD_KEY.format(2))
        unknown = await c.get("/products/1", key="nope", headers={"DOLAPIENTITY": "3"})
        assert message(unknown) == BAD_KEY.format(3)


async def test_5_1_2_login_token_or_403() -> None:
    """/login with a wrong password is 403 Access denied; reset=1 issues a new token that replaces the old."""
    async with serve() as c:
        bad = await c.post("/login", {"login": "admin", "password": "wrong"}, key=None)
        assert (bad.status, message(bad)) == (403, "Forbidden: Access denied")
        fresh = await c.get(
            "/login", key=None, query={"login": "admin", "password": DEMO_CREDENTIALS["password"], "reset": 1}
        )
        token = fresh.body["success"]["token"]
        assert token != KEY
        assert (await c.get("/products/1", key=token)).status == 200
        assert (await c.get("/products/1")).status == 401


# -- 5.1.3 error body ----------------------------------------------------------
async def test_5_1_3_error_body_with_debug() -> None:
    """Errors are {"error": {"code", "message": "<Reason>: <text>"}, "debug": {...}} with status == code."""
    async with serve() as c:
        reply = await c.get("/products/999999")
        assert reply.status == 404
        assert reply.body["error"] == {"code": 404, "message": "Not Found: Product not found"}
        assert set(reply.body["debug"]) == {"source", "stages"}
        assert reply.body["debug"]["stages"]["failure"] == ["call", "message"]


async def test_5_1_3_production_mode_drops_debug() -> None:
    """With production mode on, error bodies carry no debug object."""
    async with serve(production_mode=True) as c:
        reply = await c.get("/products/999999")
        assert reply.body == {"error": {"code": 404, "message": "Not Found: Product not found"}}


async def test_5_1_3_304_has_no_body() -> None:
    """A 304 (validating twice) reaches the client with an empty body."""
    async with serve() as c:
        order = await c.post("/orders", {"socid": 1, "date": 1_795_132_800})
        await c.post(f"/orders/{order.body}/validate", {})
        again = await c.post(f"/orders/{order.body}/validate", {})
        assert (again.status, again.raw) == (304, b"")


# -- 5.1.4 version profile -----------------------------------------------------
async def test_5_1_4_permission_401_old_403_new() -> None:
    """A user without the right gets 403 in NEW and 401 in OLD."""
    for profile, status in (("NEW", 403), ("OLD", 401)):
        async with serve(profile=profile) as c:
            assert (await c.get("/products/1", key=READER)).status == 200
            create = await c.post("/products", {"ref": "R", "label": "R"}, key=READER)
            assert create.status == status
            users = await c.get("/users", key=READER)
            assert users.status == status
            assert message(users).endswith("You are not allowed to read list of users")


async def test_5_1_4_empty_list_404_old_empty_array_new() -> None:
    """An empty products/orders list is 404 "No <x> found" in OLD and [] in NEW."""
    async with serve(None, profile="OLD") as c:
        assert message(await c.get("/products")) == "Not Found: No product found"
        assert message(await c.get("/orders")) == "Not Found: No order found"
    async with serve(None) as c:
        assert (await c.get("/products")).body == []
        assert (await c.get("/orders")).body == []


async def test_5_1_4_thirdparties_always_404() -> None:
    """An empty thirdparties list (no rows, no match, page past the end) is 404 in both profiles."""
    for profile in ("OLD", "NEW"):
        async with serve(profile=profile) as c:
            for query in ({"sqlfilters": "(t.nom:=:'No Such Name')"}, {"page": 99}):
                reply = await c.get("/thirdparties", query=query)
                assert (reply.status, message(reply)) == (404, "Not Found: No third parties found")
        async with serve(None, profile=profile) as c:
            assert (await c.get("/thirdparties")).status == 404


async def test_5_1_4_bad_sqlfilters_503_old_400_new() -> None:
    """A malformed filter is 400 with the NEW texts and 503 with the OLD one."""
    async with serve() as c:
        unbalanced = await c.get("/thirdparties", query={"sqlfilters": "(t.nom:=:Acme Inc"})
        assert (unbalanced.status, message(unbalanced)) == (
            400,
            "Bad Request: Error when validating parameter "
            "sqlfilters -> Wrong balance of parenthesis in "
            "sqlfilters=((t.nom:=:Acme Inc)",
        )
        stray = await c.get("/products", query={"sqlfilters": "(t.ref:=:'a') xor (t.ref:=:'b')"})
        assert stray.status == 400
        assert "Bad syntax of the search string: (t.ref:=:'a') xor (t.ref:=:'b')" in message(stray)
    async with serve(profile="OLD") as c:
        old = await c.get("/products", query={"sqlfilters": "(t.ref:=:'a'"})
        expected = "Service Unavailable: Error when validating parameter sqlfilters (t.ref:=:'a'"
        assert (old.status, message(old)) == (503, expected)


async def test_5_1_4_post_orders_mandatory_fields() -> None:
    """POST /orders needs socid and date in NEW, socid only in OLD."""
    async with serve() as c:
        assert message(await c.post("/orders", {"date": 1})) == "Bad Request: socid field missing"
        assert message(await c.post("/orders", {"socid": 1})) == "Bad Request: date field missing"
    async with serve(profile="OLD") as c:
        assert message(await c.post("/orders", {"date": 1})) == "Bad Request: socid field missing"
        created = await c.post("/orders", {"socid": 1})
        assert created.status == 200 and isinstance(created.body, int)


async def test_5_1_4_pagination_properties_ids_only_new_only() -> None:
    """pagination_data, properties and ids_only shape the NEW answer and are ignored by OLD."""
    query = {"limit": 5, "sortfield": "t.rowid", "pagination_data": "true", "properties": "id,ref"}
    async with serve() as c:
        reply = await c.get("/products", query=query)
        total = len(c.state.store.products)
        assert reply.body["pagination"] == {"total": total, "page": 0, "page_count": -(-total // 5), "limit": 5}
        assert [set(item) for item in reply.body["data"]] == [{"id", "ref"}] * 5
        ids = await c.get("/products", query={"limit": 3, "sortfield": "t.rowid", "ids_only": 1})
        assert ids.body == ["1", "2", "3"]
    async with serve(profile="OLD") as c:
        reply = await c.get("/products", query=query | {"ids_only": 1})
        assert isinstance(reply.body, list) and len(reply.body) == 5
        assert "label" in reply.body[0]


async def test_5_1_4_bearer_old_not_accepted() -> None:
    """The OLD profile does not read Authorization: Bearer, so the key counts as missing."""
    async with serve(profile="OLD") as c:
        reply = await c.get("/products", key=None, headers={"Authorization": f"Bearer {KEY}"})
        assert (reply.status, message(reply)) == (401, MISSING_OLD)


# -- 5.1.5 listing -------------------------------------------------------------
async def test_5_1_5_limit_default_100_and_zero_means_all() -> None:
    """limit defaults to 100 and 0 returns every row."""
    async with serve() as c:
        count = len(c.state.store.thirdparties)
        assert count > 100
        assert len((await c.get("/thirdparties")).body) == 100
        assert len((await c.get("/thirdparties", query={"limit": 0})).body) == count


async def test_5_1_5_page_is_zero_based() -> None:
    """page=0 is the first page; a negative page is page 0."""
    async with serve() as c:
        first = await c.get("/orders", query={"limit": 3, "page": 0})
        second = await c.get("/orders", query={"limit": 3, "page": 1})
        negative = await c.get("/orders", query={"limit": 3, "page": -4})
        ids = [int(o["id"]) for o in first.body + second.body]
        assert ids == sorted(ids) and len(set(ids)) == 6
        assert negative.body == first.body


async def test_5_1_5_sortfield_and_sortorder() -> None:
    """sortfield/sortorder order by DB columns; products default to t.ref ascending."""
    async with serve() as c:
        by_price = (await c.get("/products", query={"sortfield": "t.price", "sortorder": "DESC"})).body
        prices = [float(p["price"]) for p in by_price]
        assert prices == sorted(prices, reverse=True)
        refs = [p["ref"] for p in (await c.get("/products")).body]
        assert refs == sorted(refs, key=str.lower)


async def test_5_1_5_unknown_sortfield_503() -> None:
    """A sortfield the table lacks is the DB error: 503 Error when retrieve <x> list."""
    async with serve() as c:
        reply = await c.get("/products", query={"sortfield": "t.nope"})
        expected = "Service Unavailable: Error when retrieve product list : Unknown column 't.nope' in 'order clause'"
        assert (reply.status, message(reply)) == (503, expected)


async def test_5_1_5_mode_filters() -> None:
    """mode selects products (1) or services (2), and customers (1) or prospects (2)."""
    async with serve() as c:
        assert {p["type"] for p in (await c.get("/products", query={"mode": 1})).body} == {"0"}
        assert {p["type"] for p in (await c.get("/products", query={"mode": 2})).body} == {"1"}
        customers = (await c.get("/thirdparties", query={"mode": 1, "limit": 0})).body
        prospects = (await c.get("/thirdparties", query={"mode": 2, "limit": 0})).body
        assert {t["client"] for t in customers} == {"1", "3"}
        assert {t["client"] for t in prospects} == {"2", "3"}


async def test_5_1_5_category_filter() -> None:
    """A category filter matches nothing in a database without categories."""
    async with serve() as c:
        assert (await c.get("/products", query={"category": 3})).body == []
        assert (await c.get("/thirdparties", query={"category": 3})).status == 404


async def test_5_1_5_sqlfilters_use_db_column_names() -> None:
    """Filters address DB columns (t.nom), not JSON names (name, an unknown column: 503)."""
    async with serve() as c:
        row = next(r for r in c.state.store.thirdparties.all() if "'" not in r.nom)
        hit = await c.get("/thirdparties", query={"sqlfilters": f"(t.nom:=:'{row.nom}')"})
        assert str(row.rowid) in {t["id"] for t in hit.body}
        wrong = await c.get("/thirdparties", query={"sqlfilters": "(t.name:=:'x')"})
        assert wrong.status == 503
        assert message(wrong).endswith("Unknown column 't.name' in 'where clause'")


async def test_5_1_5_sqlfilters_grammar() -> None:
    """Nested and/or, like wildcards, in lists and is NULL select what the data says they should."""
    async with serve() as c:
        rows = c.state.store.thirdparties.all()
        nested = "((t.client:=:1) or (t.client:=:3)) and (t.nom:like:'%n%')"
        got = {int(t["id"]) for t in (await c.get("/thirdparties", query={"sqlfilters": nested, "limit": 0})).body}
        # The collation ignores case and accents: "Muñoz" is like '%n%'.
        assert got == {r.rowid for r in rows if r.client in (1, 3) and "n" in unaccented(r.nom)}
        listed = await c.get("/thirdparties", query={"sqlfilters": "(t.rowid:in:1,2,3)"})
        assert [t["id"] for t in listed.body] == ["1", "2", "3"]
        without = [r.rowid for r in rows if r.email is None]
        assert without, "the world should have third parties without an e-mail"
        reply = await c.get("/thirdparties", query={"sqlfilters": "(t.email:is:NULL)", "limit": 0})
        assert [int(t["id"]) for t in reply.body] == without
        validated = await c.get("/orders", query={"sqlfilters": "(t.fk_statut:=:1)", "limit": 0})
        assert {o["status"] for o in validated.body} == {"1"}


async def test_5_1_5_incremental_tms_filter() -> None:
    """GET shows tms null, but (t.tms:>:'...') finds exactly the rows changed after the cut-off."""
    clock = Clock(1_900_000_000)
    async with serve(clock=clock) as c:
        clock.now += 3600
        changed = c.state.mutate(0.05, seed=3)
        cutoff = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(clock.now - 60))
        query = {"sqlfilters": f"(t.tms:>:'{cutoff}')", "limit": 0}
        products = await c.get("/products", query=query)
        thirdparties = await c.get("/thirdparties", query=query)
        found = len(products.body) + (len(thirdparties.body) if thirdparties.status == 200 else 0)
        assert changed > 0 and found == changed
        assert products.body == [] or (products.body[0]["tms"], products.body[0]["date_modification"]) == (None, "")


# -- 5.1.6 data realism --------------------------------------------------------
async def test_5_1_6_ids_and_numbers_are_strings() -> None:
    """Ids, quantities and amounts are strings; amounts carry 8 decimals."""
    async with serve() as c:
        product = (await c.get("/products/1")).body
        order = (await c.get("/orders", query={"limit": 1})).body[0]
        assert isinstance(product["id"], str) and MONEY.match(product["price"]) and MONEY.match(product["price_ttc"])
        assert MONEY.match(order["total_ttc"]) and isinstance(order["socid"], str)
        line = order["lines"][0]
        assert isinstance(line["qty"], str) and MONEY.match(line["subprice"]) and isinstance(line["id"], str)


async def test_5_1_6_product_type_and_status() -> None:
    """Products are type "0" (product) or "1" (service) with status and status_buy."""
    async with serve() as c:
        products = (await c.get("/products", query={"limit": 0})).body
        assert {p["type"] for p in products} == {"0", "1"}
        assert {p["status"] for p in products} <= {"0", "1"} and {p["status_buy"] for p in products} <= {"0", "1"}


async def test_5_1_6_thirdparty_client_values() -> None:
    """Third parties' client is one of "0".."3", and the world has several of them."""
    async with serve() as c:
        clients = {t["client"] for t in (await c.get("/thirdparties", query={"limit": 0})).body}
        assert clients <= {"0", "1", "2", "3"} and len(clients) >= 3


async def test_5_1_6_orders_carry_lines_and_status() -> None:
    """Orders have lines, statut == status, and a (PROVn) ref when draft, SOyymm-nnnn otherwise."""
    async with serve() as c:
        orders = (await c.get("/orders", query={"limit": 0})).body
        assert {o["status"] for o in orders} >= {"0", "1"}
        for order in orders:
            assert order["lines"] and order["statut"] == order["status"]
            pattern = r"\(PROV\d+\)" if order["status"] == "0" else r"SO\d{4}-\d{4,}"
            assert re.fullmatch(pattern, order["ref"]), order["ref"]


async def test_5_1_6_validate_assigns_so_number() -> None:
    """Validating a draft turns (PROVn) into SO<yymm of the order date>-nnnn."""
    async with serve(None) as c:
        await c.post("/thirdparties", {"name": "Acme"})
        order = await c.post("/orders", {"socid": 1, "date": 1_795_132_800})
        assert (await c.get(f"/orders/{order.body}")).body["ref"] == f"(PROV{order.body})"
        validated = await c.post(f"/orders/{order.body}/validate", {})
        assert validated.body["ref"] == "SO2611-0001"


async def test_5_1_6_html_entities_in_names_and_labels() -> None:
    """Some stored names and labels come back with &#39; and &amp; undecoded."""
    async with serve() as c:
        labels = " ".join(p["label"] for p in (await c.get("/products", query={"limit": 0})).body)
        names = " ".join(t["name"] for t in (await c.get("/thirdparties", query={"limit": 0})).body)
        assert "&amp;" in labels and "&#39;" in labels
        assert "&#39;" in names or "&amp;" in names


async def test_5_1_6_unknown_extra_keys() -> None:
    """Objects carry keys no Dolibarr sends (switchable), so clients must ignore unknown keys."""
    async with serve() as c:
        assert {"fk_legacy_id", "ext_sync_flags"} <= set((await c.get("/products/1")).body)
    async with serve(extra_keys=False) as c:
        assert "ext_sync_flags" not in (await c.get("/products/1")).body


# -- 5.1.7 write-back ----------------------------------------------------------
async def test_5_1_7_post_returns_bare_integer_id() -> None:
    """Creates answer the new rowid as a bare JSON integer."""
    async with serve(None) as c:
        product = await c.post("/products", {"ref": "P1", "label": "P1"})
        thirdparty = await c.post("/thirdparties", {"name": "T1"})
        order = await c.post("/orders", {"socid": thirdparty.body, "date": 1_795_132_800})
        line = await c.post(f"/orders/{order.body}/lines", {"fk_product": product.body, "qty": 2, "subprice": 3})
        assert [r.raw for r in (product, thirdparty, order, line)] == [b"1", b"1", b"1", b"1"]


async def test_5_1_7_missing_field_400() -> None:
    """A missing mandatory field is 400 "<field> field missing"."""
    async with serve() as c:
        assert message(await c.post("/products", {"ref": "X"})) == "Bad Request: label field missing"
        assert message(await c.post("/products", {})) == "Bad Request: ref field missing"
        assert message(await c.post("/thirdparties", {"email": "a@b.c"})) == "Bad Request: name field missing"
        assert message(await c.post("/users", {})) == "Bad Request: login field missing"


async def test_5_1_7_duplicate_product_ref_500() -> None:
    """A ref already taken is 500 Error creating product with detail ErrorProductAlreadyExists."""
    async with serve() as c:
        ref = (await c.get("/products/1")).body["ref"]
        reply = await c.post("/products", {"ref": ref, "label": "dup"})
        assert reply.status == 500
        assert {k: reply.body["error"][k] for k in ("message", "0")} == {
            "message": "Internal Server Error: Error creating product",
            "0": "ErrorProductAlreadyExists",
        }


async def test_5_1_7_lines_only_on_drafts() -> None:
    """Lines can be added to a draft order only; a validated one answers 400."""
    async with serve() as c:
        order = await c.post("/orders", {"socid": 1, "date": 1_795_132_800})
        assert (await c.post(f"/orders/{order.body}/lines", {"fk_product": 1, "qty": 1})).status == 200
        await c.post(f"/orders/{order.body}/validate", {})
        refused = await c.post(f"/orders/{order.body}/lines", {"fk_product": 1, "qty": 1})
        assert refused.status == 400


async def test_5_1_7_validate_returns_object_then_304() -> None:
    """validate answers the whole validated order once, then 304."""
    async with serve() as c:
        order = await c.post("/orders", {"socid": 1, "date": 1_795_132_800, "lines": [{"fk_product": 1, "qty": 1}]})
        first = await c.post(f"/orders/{order.body}/validate", {})
        assert first.status == 200 and first.body["statut"] == "1" and len(first.body["lines"]) == 1
        assert (await c.post(f"/orders/{order.body}/validate", {})).status == 304


async def test_5_1_7_character_handling() -> None:
    """Quotes and tags are stripped from plain text, ' in a product ref becomes _, & in HTML fields is &amp;."""
    async with serve(None) as c:
        body = {"ref": "FIX-O'Brien&Co", "label": 'Tom\'s "Fish" & Chips <b>bold</b>', "description": "a & <i>b</i>"}
        product = (await c.get(f"/products/{(await c.post('/products', body)).body}")).body
        assert (product["ref"], product["label"], product["description"]) == (
            "FIX-O_Brien&Co",
            "Tom's Fish & Chips bold",
            "a &amp; <i>b</i>",
        )
        created = await c.post("/thirdparties", {"name": 'O\'Reilly & Sons <Ltd> "Quoted"', "note_public": "x & y"})
        thirdparty = (await c.get(f"/thirdparties/{created.body}")).body
        assert (thirdparty["name"], thirdparty["note_public"]) == ("O'Reilly & Sons Quoted", "x &amp; y")


async def test_5_1_7_malformed_json_400() -> None:
    """A body that is not JSON is 400 Error encoding/decoding JSON: Syntax error."""
    async with serve() as c:
        reply = await c.call(
            "POST", "/products", data='{"ref": "X", "label": ', headers={"Content-Type": "application/json"}
        )
        assert (reply.status, message(reply)) == (400, "Bad Request: Error encoding/decoding JSON: Syntax error")


# -- 5.1.8 failure modes ---------------------------------------------------------
async def test_5_1_8_revoked_key_burst() -> None:
    """A fired revoked_key fault rejects the next few requests with a valid key too, then lets them through."""
    faults = plan(revoked_key=1.0)
    async with serve(faults=faults, revoked_burst=3) as c:
        assert (await c.get("/products/1")).status == 401
        faults.rates["revoked_key"] = 0.0
        statuses = [(await c.get("/products/1")).status for _ in range(3)]
        assert statuses == [401, 401, 200]


async def test_5_1_8_db_error_503_on_list_page() -> None:
    """The db_error fault answers a list page with 503 Error when retrieve <x> list."""
    async with serve(faults=plan(db_error=1.0)) as c:
        reply = await c.get("/products")
        assert reply.status == 503
        assert (
            message(reply)
            == "Service Unavailable: Error when retrieve product list : Lost connection to server during query"
        )


async def test_5_1_8_busy_500_on_create() -> None:
    """The busy fault refuses a create with 500 and stores nothing."""
    async with serve(faults=plan(busy=1.0)) as c:
        reply = await c.post("/products", {"ref": "BUSY-1", "label": "x"})
        assert (reply.status, message(reply)) == (500, "Internal Server Error: Error creating product")
        assert (await c.get("/products/ref/BUSY-1")).status == 404


async def test_5_1_8_unknown_endpoint_501_plain_text() -> None:
    """An unknown API name is index.php's plain-text 501, not JSON."""
    async with serve() as c:
        reply = await c.get("/nosuchthing")
        assert (reply.status, reply.body) == (501, "API not found (failed to include API file)")
        assert reply.content_type.startswith("text/html")


async def test_5_1_8_module_not_active_200_plain_text() -> None:
    """The not_active fault answers HTTP 200 with a plain-text warning page."""
    async with serve(faults=plan(not_active=1.0)) as c:
        reply = await c.get("/products")
        assert reply.status == 200 and reply.content_type.startswith("text/html")
        assert "Module <b>Api</b> must be enabled" in reply.body


async def test_5_1_8_old_page_404_mid_pagination() -> None:
    """In the OLD profile a page after the first can come back 404; NEW is not affected."""
    async with serve(faults=plan(partial_batch=1.0), profile="OLD") as c:
        assert (await c.get("/products", query={"limit": 5, "page": 0})).status == 200
        gone = await c.get("/products", query={"limit": 5, "page": 1})
        assert (gone.status, message(gone)) == (404, "Not Found: No product found")
    async with serve(faults=plan(partial_batch=1.0)) as c:
        assert (await c.get("/products", query={"limit": 5, "page": 1})).status == 200


async def test_5_1_8_slow_429_502_come_from_the_proxy_layer() -> None:
    """Dolibarr never rate-limits: 429/502 and slow pages come from the shared proxy middleware in front."""
    faults = plan(proxy_429=1.0)
    app = create_app(WORLD, faults=faults, options=MiclinikOptions())
    app.middlewares.insert(0, fault_middleware(faults))
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as session:
        response = await session.get(server.make_url("/api/index.php/products"), headers={"DOLAPIKEY": KEY})
        assert response.status == 429 and response.headers["Server"] == "nginx"
        response.release()
    assert app[STATE].call_count == 0


# -- the uniform simulator interface ---------------------------------------------
async def test_interface_request_log_and_call_count() -> None:
    """Each request is counted and logged with its logical call and query."""
    async with serve() as c:
        await c.get("/products", query={"limit": 2, "page": 1})
        await c.get("/products", query={"page": 1, "limit": 2})
        assert c.state.call_count == 2
        whats = [entry["what"] for entry in c.state.request_log]
        assert whats[0] == whats[1] == "products.list limit=2&page=1"


async def test_interface_truth_and_mutate() -> None:
    """truth() names every served record with its world id; mutate() changes and counts records."""
    async with serve() as c:
        rows = list(c.state.truth())
        by_entity: dict[str, list] = {}
        for row in rows:
            by_entity.setdefault(row.entity, []).append(row)
        assert len(by_entity["customer"]) == len(WORLD.members("miclinik"))
        assert [r.true_id for r in by_entity["customer"]] == list(WORLD.members("miclinik"))
        assert all(r.true_id == int(r.source_id) for r in by_entity["order"] + by_entity["product"])
        before = (await c.get("/products", query={"limit": 0})).body
        assert c.state.mutate(0.5, seed=1) > 0
        after = (await c.get("/products", query={"limit": 0})).body
        assert before != after


def test_interface_large_world_is_built_lazily() -> None:
    """At scale 100,000 the app starts without building third parties or orders; a page builds only its rows."""
    app = create_app(World(seed=5, scale=100_000))
    store = app[STATE].store
    assert sum(store.customers.built) == 0
    store.thirdparties.page(0, 100, False)
    assert sum(store.customers.built) == 100


@pytest.mark.parametrize("profile", ["OLD", "NEW"])
def test_interface_options_validate_profile(profile: str) -> None:
    """Only the two known profiles are accepted."""
    assert MiclinikOptions(profile=profile).profile == profile  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        MiclinikOptions(profile="MIDDLE")  # type: ignore[arg-type]
