"""The miclinik simulator's read quirks seen on a real Dolibarr 23 (protocols.md §1.9), over real sockets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from etl.simulators.world import World
from tests.simulators.miclinik_support import message, serve

RESTRICTED = "demo-dolibarr-restricted-key"
SMALL = World(seed=7, scale=80)
ROWID_ORDER = {"sortfield": "t.rowid", "sortorder": "ASC", "limit": 500}


def _tms_filter(moment: datetime) -> dict:
    return {**ROWID_ORDER, "sqlfilters": f"(t.tms:>=:'{moment.strftime('%Y-%m-%d %H:%M:%S')}')"}


async def test_restricted_key_reads_empty_thirdparties_and_orders_but_every_product() -> None:
    """A key without right 262 gets 404 "No third parties found", orders [] and the full product list."""
    async with serve(SMALL) as c:
        thirdparties = await c.get("/thirdparties", key=RESTRICTED, query=ROWID_ORDER)
        assert (thirdparties.status, message(thirdparties)) == (404, "Not Found: No third parties found")
        orders = await c.get("/orders", key=RESTRICTED, query=ROWID_ORDER)
        assert (orders.status, orders.body) == (200, [])
        products = await c.get("/products", key=RESTRICTED, query=ROWID_ORDER)
        assert products.status == 200 and len(products.body) == len(c.state.store.products) > 0
        assert (await c.get("/thirdparties", query=ROWID_ORDER)).status == 200  # the admin still sees them all


async def test_restricted_key_is_refused_a_third_party_by_id() -> None:
    """Reading one third party by id without right 262 is 403 Access not allowed."""
    async with serve(SMALL) as c:
        reply = await c.get("/thirdparties/1", key=RESTRICTED)
        assert reply.status == 403 and "Access not allowed for login" in message(reply)


async def test_database_zone_west_of_utc_compares_tms_as_local_time() -> None:
    """With db_utc_offset_hours=-5, a product edited now is not found by a UTC filter of a minute ago,
    but is by the same instant written in the database's zone."""
    async with serve(SMALL, db_utc_offset_hours=-5) as c:
        rowid = next(iter(c.state.store.products))
        c.state.store.edit_product_label(rowid, "Edited now")
        a_minute_ago = datetime.now(UTC) - timedelta(minutes=1)
        utc = await c.get("/products", query=_tms_filter(a_minute_ago))
        local = await c.get("/products", query=_tms_filter(a_minute_ago - timedelta(hours=5)))
        assert utc.body == []
        assert [p["id"] for p in local.body] == [str(rowid)]


async def test_database_zone_east_of_utc_only_reads_again() -> None:
    """East of UTC (+3) a UTC filter still finds the edit (and rows up to 3 h older): nothing is lost."""
    async with serve(SMALL, db_utc_offset_hours=3) as c:
        rowid = next(iter(c.state.store.products))
        c.state.store.edit_product_label(rowid, "Edited now")
        reply = await c.get("/products", query=_tms_filter(datetime.now(UTC) - timedelta(minutes=1)))
        assert [p["id"] for p in reply.body] == [str(rowid)]


async def test_line_description_edit_changes_the_order_but_not_its_tms() -> None:
    """Editing a line's description changes the order's JSON while llx_commande.tms stays: a tms
    filter does not return it."""
    async with serve(SMALL) as c:
        order = next(o for o in c.state.store.orders.all() if o.lines)
        before = (await c.get(f"/orders/{order.rowid}")).body
        since = datetime.now(UTC) - timedelta(minutes=1)
        c.state.store.edit_line_description(order.rowid, order.lines[0].rowid, "Re-described")
        after = (await c.get(f"/orders/{order.rowid}")).body
        assert after["lines"][0]["desc"] == "Re-described" != before["lines"][0]["desc"]
        assert (await c.get("/orders", query=_tms_filter(since))).body == []


async def test_product_label_edit_changes_orders_embedding_it_not_their_tms() -> None:
    """Renaming a product moves the product's tms and the product_label inside orders, not the orders' tms."""
    async with serve(SMALL) as c:
        order = next(o for o in c.state.store.orders.all() if o.lines and o.lines[0].fk_product)
        product = order.lines[0].fk_product
        since = datetime.now(UTC) - timedelta(minutes=1)
        c.state.store.edit_product_label(product, "Renamed product")
        line = (await c.get(f"/orders/{order.rowid}")).body["lines"][0]
        assert line["product_label"] == "Renamed product"
        assert (await c.get("/orders", query=_tms_filter(since))).body == []
        assert [p["id"] for p in (await c.get("/products", query=_tms_filter(since))).body] == [str(product)]


async def test_main_prod_status_has_no_server_clock() -> None:
    """With $dolibarr_main_prod=1, GET /status leaves timestamp_now_utc out; by default it is there."""
    async with serve(None, main_prod=True) as c:
        assert "timestamp_now_utc" not in (await c.get("/status")).body["success"]
    async with serve(None) as c:
        assert isinstance((await c.get("/status")).body["success"]["timestamp_now_utc"], int)


async def test_web_login_page_answers_outside_the_api() -> None:
    """A GET outside /api/index.php (a base URL without it) answers the HTML login page with 200."""
    async with serve(None) as c:
        root = c.base.removesuffix("/api/index.php")
        async with c.session.get(f"{root}/status", headers={"DOLAPIKEY": "x"}) as response:
            text = await response.text()
            assert (response.status, response.content_type) == (200, "text/html")
        assert '<form id="login"' in text and 'name="password"' in text


async def test_silent_page_cap_returns_fewer_rows_than_the_limit_and_the_whole_total() -> None:
    """max_page_size caps a page below limit without saying so; pagination_data still counts the whole list."""
    async with serve(SMALL, max_page_size=7) as c:
        reply = await c.get("/products", query={**ROWID_ORDER, "limit": 20, "pagination_data": "true"})
        assert len(reply.body["data"]) == 7
        assert reply.body["pagination"]["total"] == len(c.state.store.products) > 20
