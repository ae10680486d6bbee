"""The miclinik (Dolibarr) simulator against protocols.md §5.1 points 1-4 (routes, auth, error body, profiles).

Every test talks to a real socket (``aiohttp.test_utils.TestServer``) with ``aiohttp.ClientSession``.
"""

from __future__ import annotations

import time

from etl.simulators.miclinik import DEMO_CREDENTIALS, MiclinikOptions
from tests.simulators.miclinik_support import KEY, message, serve

READER = MiclinikOptions().readonly_api_key
MISSING_NEW = (
    "Unauthorized: Failed to login to API. Neither parameter 'HTTP_DOLAPIKEY' nor 'Authentication: Bearer' found "
    "on HTTP header (and no parameter DOLAPIKEY in URL)."
)
MISSING_OLD = "Unauthorized: Failed to login to API. No parameter 'HTTP_DOLAPIKEY' on HTTP header (and no parameter DOLAPIKEY in URL)."
BAD_KEY = (
    "Unauthorized: Error user not valid (not found with api key or bad status or bad validity dates) (conf->entity={})"
)


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
        product = await c.post("/products", {"ref": "NEW-1", "label": "New", "status": 1})
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
