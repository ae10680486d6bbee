"""The miclinik (Dolibarr) simulator against protocols.md §5.1 points 7-8 (write-back, failure modes) and the
uniform simulator interface.

Every test talks to a real socket (``aiohttp.test_utils.TestServer``) with ``aiohttp.ClientSession``.
"""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from etl.simulators.faults import FaultPlan, fault_middleware
from etl.simulators.miclinik import STATE, MiclinikOptions, create_app
from etl.simulators.world import World
from tests.simulators.miclinik_support import KEY, WORLD, message, serve


def plan(**rates: float) -> FaultPlan:
    return FaultPlan("none", seed=1, rates=rates)


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
