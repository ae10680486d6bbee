"""The miclinik simulator's write behaviour seen on a real Dolibarr 23 (protocols.md §1.9), over real sockets."""

from __future__ import annotations

import asyncio
import json

from tests.simulators.miclinik_support import message, serve
from tests.support import DOLIBARR_FIXTURES

DATE = 1_795_132_800


async def test_ref_ext_is_kept_filterable_and_not_unique_on_thirdparties_and_orders() -> None:
    """ref_ext sent on POST comes back, filters with (t.ref_ext:=:'etl:flow:42'), and a second order may share it."""
    async with serve(None) as c:
        thirdparty = await c.post(
            "/thirdparties", {"name": "Acme", "client": 1, "code_client": -1, "ref_ext": "etl:c:1"}
        )
        orders = [(await c.post("/orders", {"socid": thirdparty.body, "date": DATE, "ref_ext": "etl:flow:42"})).body
                  for _ in range(2)]  # fmt: skip
        assert (await c.get(f"/thirdparties/{thirdparty.body}")).body["ref_ext"] == "etl:c:1"
        found = await c.get("/orders", query={"sqlfilters": "(t.ref_ext:=:'etl:flow:42')"})
        assert [int(o["id"]) for o in found.body] == orders and found.body[0]["ref_ext"] == "etl:flow:42"
        listed = await c.get("/thirdparties", query={"sqlfilters": "(t.ref_ext:=:'etl:c:1')"})
        assert [t["id"] for t in listed.body] == [str(thirdparty.body)]
        await c.call("PUT", f"/orders/{orders[0]}", json={"ref_ext": "etl:flow:43"})
        assert (await c.get(f"/orders/{orders[0]}")).body["ref_ext"] == "etl:flow:43"
        bad = await c.get("/orders", query={"sqlfilters": "(t.ref_ext:=:'etl:(42)')"})
        assert bad.status == 400 and "Bad syntax of the search string" in message(bad)


async def test_duplicate_product_ref_is_500_with_detail_inside_error() -> None:
    """A ref taken in another case is 500 with "0": "ErrorProductAlreadyExists" inside error, as recorded."""
    recorded = json.loads((DOLIBARR_FIXTURES / "product_create_duplicate_ref.json").read_text())["response"]
    async with serve(None) as c:
        await c.post("/products", {"ref": "FIX-001", "label": "First"})
        reply = await c.post("/products", {"ref": "fix-001", "label": "Duplicate", "type": 0, "price": 5})
        assert reply.status == recorded["status"] == 500
        assert reply.body["error"] == recorded["body"]["error"]


async def test_product_without_ref_is_400_ref_field_missing() -> None:
    """POST /products without ref is 400 "ref field missing"."""
    async with serve(None) as c:
        reply = await c.post("/products", {"label": "No ref"})
        assert (reply.status, message(reply)) == (400, "Bad Request: ref field missing")


async def test_custom_code_client_is_500_bad_customer_code_syntax() -> None:
    """A custom code_client is refused with the default numbering module; -1 gets the next code."""
    async with serve(None) as c:
        refused = await c.post("/thirdparties", {"name": "Custom", "client": 1, "code_client": "CUST-7"})
        assert refused.status == 500 and refused.body["error"]["0"] == "ErrorBadCustomerCodeSyntax"
        automatic = await c.post("/thirdparties", {"name": "Auto", "client": 1, "code_client": -1})
        assert automatic.status == 200
        assert (await c.get(f"/thirdparties/{automatic.body}")).body["code_client"].startswith("CU")


async def test_free_text_line_without_product_type_is_400() -> None:
    """A line without fk_product and without product_type is the database's 400 on product_type."""
    async with serve(None) as c:
        socid = (await c.post("/thirdparties", {"name": "T"})).body
        order = (await c.post("/orders", {"socid": socid, "date": DATE})).body
        reply = await c.post(f"/orders/{order}/lines", {"desc": "Free text", "qty": 1, "subprice": 5})
        assert (
            reply.status == 400 and "Incorrect integer value: ''" in message(reply) and "product_type" in message(reply)
        )
        ok = await c.post(f"/orders/{order}/lines", {"desc": "Free text", "qty": 1, "subprice": 5, "product_type": 1})
        assert ok.status == 200 and isinstance(ok.body, int)


async def test_lines_on_a_validated_order_are_400() -> None:
    """Once validated, an order takes no more lines (400), and validating again is 304 with no body."""
    async with serve(None) as c:
        socid = (await c.post("/thirdparties", {"name": "T"})).body
        order = (await c.post("/orders", {"socid": socid, "date": DATE})).body
        await c.post(f"/orders/{order}/lines", {"desc": "x", "qty": 1, "product_type": 1})
        assert (await c.post(f"/orders/{order}/validate", {})).status == 200
        again = await c.post(f"/orders/{order}/validate", {})
        assert (again.status, again.raw) == (304, b"")
        assert (await c.post(f"/orders/{order}/lines", {"desc": "y", "qty": 1, "product_type": 1})).status == 400


async def test_validate_refuses_a_line_whose_product_is_not_on_sale_or_missing() -> None:
    """A product created without status is not on sale; its line, or one naming no product, fails validate
    with 500 ErrorOneLineContainsADisactivatedProduct; put on sale, the order validates."""
    async with serve(None) as c:
        socid = (await c.post("/thirdparties", {"name": "T"})).body
        product = (await c.post("/products", {"ref": "OFF-1", "label": "Off sale"})).body
        order = (await c.post("/orders", {"socid": socid, "date": DATE})).body
        await c.post(f"/orders/{order}/lines", {"fk_product": product, "qty": 1, "product_type": 0})
        expected = "Internal Server Error: Error when validating Order: ErrorOneLineContainsADisactivatedProduct"
        refused = await c.post(f"/orders/{order}/validate", {})
        assert (refused.status, message(refused)) == (500, expected)
        missing = (await c.post("/orders", {"socid": socid, "date": DATE})).body
        stored = await c.post(f"/orders/{missing}/lines", {"fk_product": 999999, "qty": 1, "product_type": 0})
        assert stored.status == 200
        assert message(await c.post(f"/orders/{missing}/validate", {})) == expected
        await c.call("PUT", f"/products/{product}", json={"status": 1})
        assert (await c.post(f"/orders/{order}/validate", {})).status == 200


async def test_partial_line_put_zeroes_price_vat_and_description() -> None:
    """PUT /orders/{id}/lines/{lineid} with only qty leaves subprice and VAT 0 and the description empty."""
    async with serve(None) as c:
        socid = (await c.post("/thirdparties", {"name": "T"})).body
        order = (await c.post("/orders", {"socid": socid, "date": DATE})).body
        line = (await c.post(f"/orders/{order}/lines", {"desc": "Fibre", "qty": 1, "subprice": 25, "tva_tx": 20,
                                                       "product_type": 1})).body  # fmt: skip
        reply = await c.call("PUT", f"/orders/{order}/lines/{line}", json={"qty": 2})
        assert reply.status == 200
        updated = reply.body["lines"][0]
        assert (updated["qty"], updated["subprice"], updated["desc"]) == ("2", "0.00000000", "")
        assert float(updated["tva_tx"]) == 0
        assert reply.body["total_ttc"] == "0.00000000"


async def _together(*calls):
    return await asyncio.gather(*calls)


async def test_overlapping_thirdparty_creates_fail_with_duplicate_value() -> None:
    """Two third-party creates with code_client -1 in flight at once: the second is 500 Duplicate value."""
    async with serve(None, create_seconds=0.05) as c:
        body = {"name": "Twin", "client": 1, "code_client": -1}
        first, second = await _together(c.post("/thirdparties", body), c.post("/thirdparties", body))
        assert first.status == 200
        assert (second.status, second.body["error"]["0"]) == (500, "Duplicate value in a unique field")
        assert (await c.post("/thirdparties", body)).status == 200  # one at a time is fine


async def test_overlapping_order_creates_fail_with_deadlock() -> None:
    """Two order creates in flight at once: the second is 500 Deadlock found…; products never collide."""
    async with serve(None, create_seconds=0.05) as c:
        socid = (await c.post("/thirdparties", {"name": "T"})).body
        body = {"socid": socid, "date": DATE}
        first, second = await _together(c.post("/orders", body), c.post("/orders", body))
        assert first.status == 200 and second.status == 500
        assert second.body["error"]["0"] == "Deadlock found when trying to get lock; try restarting transaction"
        products = await _together(*(c.post("/products", {"ref": f"P{n}", "label": "p"}) for n in range(3)))
        assert [p.status for p in products] == [200, 200, 200]


async def test_seeded_conflict_rate_fails_some_sequential_creates() -> None:
    """create_conflict_rate fails that share of sequential order creates, the same ones for the same seed."""

    async def statuses(seed: int) -> list[int]:
        async with serve(None, create_conflict_rate=0.5, seed=seed) as c:
            socid = (await c.post("/thirdparties", {"name": "T"})).body
            return [(await c.post("/orders", {"socid": socid, "date": DATE})).status for _ in range(20)]

    first = await statuses(3)
    assert 0 < first.count(500) < 20 and first == await statuses(3)


async def test_delete_product_is_200_then_409_when_used_then_404() -> None:
    """DELETE /products/{id}: "Object deleted"; 409 while an order line uses it; a second delete is 404."""
    async with serve(None) as c:
        free = (await c.post("/products", {"ref": "FREE", "label": "f"})).body
        used = (await c.post("/products", {"ref": "USED", "label": "u"})).body
        socid = (await c.post("/thirdparties", {"name": "T"})).body
        order = (await c.post("/orders", {"socid": socid, "date": DATE})).body
        await c.post(f"/orders/{order}/lines", {"fk_product": used, "qty": 1, "product_type": 0})
        deleted = await c.call("DELETE", f"/products/{free}")
        assert (deleted.status, deleted.body) == (200, {"success": {"code": 200, "message": "Object deleted"}})
        again = await c.call("DELETE", f"/products/{free}")
        assert (again.status, message(again)) == (404, "Not Found: Product not found")
        refused = await c.call("DELETE", f"/products/{used}")
        assert (refused.status, message(refused)) == (409, "Conflict: Can't delete, that product is probably used")
        gone = await c.call("DELETE", f"/orders/{order}")
        assert gone.status == 200 and (await c.call("DELETE", f"/orders/{order}")).status == 404


async def test_sanitising_as_observed() -> None:
    """a<b is stored ab, <script>x</script> keeps x, ‹ becomes &lt;, phone spaces are removed."""
    async with serve(None) as c:
        created = await c.post("/thirdparties", {"name": "a<b <script>x</script> ‹y", "phone": "+45 12 34 56 78"})
        stored = (await c.get(f"/thirdparties/{created.body}")).body
        assert (stored["name"], stored["phone"]) == ("ab x &lt;y", "+4512345678")
