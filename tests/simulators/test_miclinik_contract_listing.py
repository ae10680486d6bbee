"""The miclinik (Dolibarr) simulator against protocols.md §5.1 points 5-6 (listing, data realism).

Every test talks to a real socket (``aiohttp.test_utils.TestServer``) with ``aiohttp.ClientSession``.
"""

from __future__ import annotations

import re
import time
import unicodedata

from tests.simulators.miclinik_support import message, serve

MONEY = re.compile(r"^-?\d+\.\d{8}$")


class Clock:
    """A settable server clock."""

    def __init__(self, now: float = 1_795_418_624) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def unaccented(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)).casefold()


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
