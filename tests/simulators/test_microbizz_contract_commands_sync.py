"""Contract of the Microbizz simulator: protocols.md §5.3 points 4-5 (commands, incremental sync), over real
sockets."""

from __future__ import annotations

from typing import Any

import pytest

from tests.simulators.microbizz_support import (
    FIRST_CUSTOMER,
    MEMBERS,
    SYNC_START,
    WORLD,
    Start,
    microbizz_start,  # noqa: F401  (the start fixture)
)


def stamp_of(obj: dict[str, Any]) -> str:
    return f"{obj['changedate']} {obj['changetime']}"


# -- 5.3.4 commands ---------------------------------------------------------------
async def test_5_3_4_echo(start: Start) -> None:
    """Echo answers its text under ``answer``."""
    mbz = await start()
    assert (await mbz.ok("Echo", text="Hello world"))["answer"] == "Hello world"


async def test_5_3_4_customer_commands(start: Start) -> None:
    """Customers can be read by id and number, created by id 0, updated by id (a merge) and by number."""
    mbz = await start()
    world_customer = WORLD.customer(MEMBERS[0])
    by_id = (await mbz.ok("GetCustomerByID", customerid=FIRST_CUSTOMER))["customers"][0]
    listed = (await mbz.ok("GetCustomersByLastChange", **SYNC_START))["customers"]
    numbered = next(c for c in listed if c["customernumber"])
    found = (await mbz.ok("GetCustomerByCustomerNumber", customernumber=numbered["customernumber"]))["customers"]
    assert [c["id"] for c in found] == [numbered["id"]]
    assert numbered["customernumber"] == WORLD.customer(numbered["id"] - 1000).customer_number
    assert by_id["zip"] == world_customer.zip and by_id["country"] == world_customer.country_code
    made = await mbz.ok("CreateUpdateCustomerByID", customer={"id": 0, "name": "Fjordnet ApS", "city": "Odense"})
    new_id = made["customer"]["id"]
    updated = await mbz.ok("CreateUpdateCustomerByID", customer={"id": new_id, "phone": "+4512345678"})
    assert updated["customer"]["city"] == "Odense" and updated["customer"]["phone"] == "+4512345678"
    keyed = await mbz.ok("CreateUpdateCustomerByCustomerNumber", customer={"customernumber": "X-1", "name": "Ny"})
    again = await mbz.ok(
        "CreateUpdateCustomerByCustomerNumber", customer={"id": 5, "customernumber": "X-1", "zip": "1"}
    )
    assert again["customer"]["id"] == keyed["customer"]["id"] and again["customer"]["name"] == "Ny"
    customers, _, _ = await mbz.sync("GetCustomersByLastChange", "customers")
    assert {c["id"] for c in customers} >= {new_id, keyed["customer"]["id"]}


async def test_5_3_4_user_commands(start: Start) -> None:
    """Employees have usercodes; CreateUpdateUser with id 0 creates one and GetUsersByLastChange lists all."""
    mbz = await start(user_count=12)
    user = (await mbz.ok("GetUserByID", userid=101))["users"][0]
    assert user["usercode"] and user["name"]
    made = await mbz.ok("CreateUpdateUser", user={"id": 0, "name": "Ida Bæk", "usercode": "IB"})
    users, _, _ = await mbz.sync("GetUsersByLastChange", "users")
    assert len(users) == 13 and made["user"]["id"] in {u["id"] for u in users}
    assert len({u["usercode"] for u in users}) == 13


async def test_5_3_4_product_commands(start: Start) -> None:
    """Products by id and number (with prices on request), created and updated by id and by number."""
    mbz = await start()
    product = WORLD.product(1)
    by_number = (await mbz.ok("GetProductByProductNumber", productnumber=product.ref))["products"][0]
    assert by_number["id"] == 2001 and by_number["price"] == float(product.price) and "prices" not in by_number
    with_prices = (await mbz.ok("GetProductByID", productid=2001, include_prices="true"))["products"][0]
    assert with_prices["prices"] == []
    made = await mbz.ok("CreateUpdateProductByID", product={"id": 0, "name": "Patch cable 3 m", "price": "12.59"})
    assert made["product"]["price"] == 12.59
    renamed = await mbz.ok("CreateUpdateProductByProductNumber", product={"productnumber": product.ref, "price": 1})
    assert renamed["product"]["id"] == 2001 and renamed["product"]["name"] == product.label
    products, _, _ = await mbz.sync("GetProductsByLastChange", "products")
    assert len(products) == WORLD.product_count + 1


async def test_5_3_4_individual_price_succeeds_silently_when_missing(start: Start) -> None:
    """AssignIndividualPriceByProductNumber stores an øre price, and answers status 1 for unknown targets."""
    mbz = await start()
    ref = WORLD.product(2).ref
    await mbz.ok("AssignIndividualPriceByProductNumber", productnumber=ref, customerid=FIRST_CUSTOMER, price=12559)
    await mbz.ok("AssignIndividualPriceByProductNumber", productnumber="NO-SUCH", customerid=FIRST_CUSTOMER, price=1)
    await mbz.ok("AssignIndividualPriceByProductNumber", productnumber=ref, customerid=999_999, price=1)
    product = (await mbz.ok("GetProductByID", productid=2002, include_prices=1))["products"][0]
    assert product["prices"] == [{"customerid": FIRST_CUSTOMER, "price": 125.59}]


async def test_5_3_4_todo_commands(start: Start) -> None:
    """Todos: created with id 0, listed by last change, and CloseTodoByID leaves unmet ones open without failing."""
    mbz = await start()
    todos, _, _ = await mbz.sync("GetTodosByLastChange", "todos")
    assert todos and all(t["customerid"] - 1000 in MEMBERS for t in todos)
    made = await mbz.ok(
        "CreateUpdateTodo", todo={"id": 0, "title": "Fault report", "customerid": FIRST_CUSTOMER, "requireanswer": 1}
    )
    todo_id = made["todo"]["id"]
    unmet = await mbz.ok("CloseTodoByID", todoid=todo_id, stateid=3)
    assert unmet["todo"]["closed"] == 0
    closed = await mbz.ok("CloseTodoByID", todoid=todo_id, stateid=3, answer="Fixed the splice")
    assert closed["todo"]["closed"] == 1 and closed["todo"]["answer"] == "Fixed the splice"
    assert (await mbz.one("CloseTodoByID", todoid=999_999_999, stateid=3))["status"] == 0


async def test_5_3_4_invoice_line_commands(start: Start) -> None:
    """Lines: listed by last change and as pending, added (no output), and marked processed."""
    mbz = await start()
    lines, _, _ = await mbz.sync("GetInvoiceLinesByLastChange", "invoicelines")
    expected = sum(len(o.lines) for c in MEMBERS for o in WORLD.orders_of(WORLD.customer(c)))
    assert len(lines) == expected
    pending = (await mbz.ok("GetPendingInvoiceLines"))["invoicelines"]
    assert {line["id"] for line in pending} == {line["id"] for line in lines if not line["processed"]}
    added = await mbz.ok("AddInvoiceLine", invoiceline={"id": 77, "customerid": FIRST_CUSTOMER, "text": "Visit"})
    assert set(added) == {"status"}
    pending = (await mbz.ok("GetPendingInvoiceLines"))["invoicelines"]
    new_line = next(line for line in pending if line["text"] == "Visit")
    assert new_line["id"] != 77 and new_line["processed"] == 0
    await mbz.ok("MarkInvoiceLinesAsProcessed", invoicelineids=[new_line["id"]], ordernumber="INV-1")
    after = (await mbz.ok("GetPendingInvoiceLines"))["invoicelines"]
    assert new_line["id"] not in {line["id"] for line in after} and len(after) == len(pending) - 1


@pytest.mark.parametrize(
    ("command", "args", "output"),
    [
        ("GetCustomerByID", {"customerid": 5}, "customers"),
        ("GetCustomerByCustomerNumber", {"customernumber": "nope"}, "customers"),
        ("GetUserByID", {"userid": 99_999}, "users"),
        ("GetProductByID", {"productid": 1}, "products"),
        ("GetProductByProductNumber", {"productnumber": "nope"}, "products"),
    ],
)
async def test_5_3_4_get_by_id_not_found_is_empty_collection(
    start: Start, command: str, args: dict[str, Any], output: str
) -> None:
    """A getter that finds nothing answers status 1 and an empty collection."""
    mbz = await start()
    assert await mbz.one(command, **args) == {"status": 1, output: []}


async def test_5_3_4_id_0_creates(start: Start) -> None:
    """``id`` 0 in CreateUpdate…ByID creates a record with a fresh id above the seeded ones."""
    mbz = await start()
    first = (await mbz.ok("CreateUpdateCustomerByID", customer={"id": 0, "name": "A"}))["customer"]["id"]
    second = (await mbz.ok("CreateUpdateCustomerByID", customer={"id": "0", "name": "B"}))["customer"]["id"]
    assert second == first + 1 and first > 1000 + WORLD.scale
    assert (await mbz.ok("GetCustomerByID", customerid=second))["customers"][0]["name"] == "B"


@pytest.mark.parametrize("command", ["CreateUpdateCustomerByCustomerNumber", "CreateUpdateProductByProductNumber"])
async def test_5_3_4_by_number_without_number_fails(start: Start, command: str) -> None:
    """ByNumber without the number answers status 0 and stores nothing."""
    mbz = await start()
    key = "customer" if "Customer" in command else "product"
    result = await mbz.one(command, **{key: {"id": 0, "name": "No number"}})
    assert result["status"] == 0 and result["msg"]
    assert mbz.state.tables[key].created == []


# -- 5.3.5 incremental sync -------------------------------------------------------
@pytest.mark.parametrize("strict", [True, False])
async def test_5_3_5_changetime_is_strictly_after_unless_switched_off(start: Start, strict: bool) -> None:
    """Objects changed strictly after changedate/changetime come back (at or after with the switch off)."""
    mbz = await start(timezone="UTC", changetime_strictly_after=strict)
    everything, _, _ = await mbz.sync("GetCustomersByLastChange", "customers")
    cut = sorted(stamp_of(c) for c in everything)[len(everything) // 2]
    day, clock_time = cut.split(" ")
    later, _, _ = await mbz.sync("GetCustomersByLastChange", "customers", changedate=day, changetime=clock_time)
    wanted = [c["id"] for c in everything if (stamp_of(c) > cut if strict else stamp_of(c) >= cut)]
    assert sorted(c["id"] for c in later) == sorted(wanted)
    assert 0 < len(later) < len(everything)
    assert (cut in {stamp_of(c) for c in later}) is not strict


async def test_5_3_5_changedate_alone_is_on_or_after_that_day(start: Start) -> None:
    """Without changetime, every object changed on the given day or later comes back."""
    mbz = await start(timezone="UTC")
    everything, _, _ = await mbz.sync("GetCustomersByLastChange", "customers")
    day = sorted(c["changedate"] for c in everything)[len(everything) // 2]
    later, _, _ = await mbz.sync("GetCustomersByLastChange", "customers", changedate=day)
    assert sorted(c["id"] for c in later) == sorted(c["id"] for c in everything if c["changedate"] >= day)


async def test_5_3_5_resumekey_chunks_cover_all_without_repeats(start: Start) -> None:
    """Chunks of at most N objects, ordered by change time then id, cover every record exactly once."""
    mbz = await start(chunk_size=17)
    customers, calls, _ = await mbz.sync("GetCustomersByLastChange", "customers")
    ids = [c["id"] for c in customers]
    assert sorted(ids) == sorted(1000 + c for c in MEMBERS)
    assert len(set(ids)) == len(ids) and calls == -(-len(MEMBERS) // 17)
    assert [(stamp_of(c), c["id"]) for c in customers] == sorted((stamp_of(c), c["id"]) for c in customers)


async def test_5_3_5_last_chunk_has_no_resumekey(start: Start) -> None:
    """Every chunk but the last carries a resumekey; an exact multiple of N ends without an empty chunk."""
    mbz = await start(chunk_size=len(MEMBERS) // 2)
    key = None
    sizes = []
    for _ in range(3):
        result = await mbz.ok("GetCustomersByLastChange", **SYNC_START, **({"resumekey": key} if key else {}))
        sizes.append(len(result["customers"]))
        key = result.get("resumekey")
        if key is None:
            break
    assert key is None and sum(sizes) == len(MEMBERS) and 0 not in sizes


async def test_5_3_5_same_changedate_must_come_with_the_resumekey(start: Start) -> None:
    """A resumekey used with another changedate, or by another command, fails with status 0."""
    mbz = await start(chunk_size=10)
    key = (await mbz.ok("GetCustomersByLastChange", **SYNC_START))["resumekey"]
    moved = await mbz.one("GetCustomersByLastChange", changedate="2001-01-01", resumekey=key)
    other = await mbz.one("GetTodosByLastChange", **SYNC_START, resumekey=key)
    assert moved["status"] == 0 and other["status"] == 0


async def test_5_3_5_ignoreclosed_leaves_closed_customers_out(start: Start) -> None:
    """``ignoreclosed`` drops closed customers from every chunk, and its resumekeys only continue that filter."""
    mbz = await start(chunk_size=25)
    closed_id = (await mbz.ok("CreateUpdateCustomerByID", customer={"id": FIRST_CUSTOMER, "closed": 1}))["customer"]
    everything, _, _ = await mbz.sync("GetCustomersByLastChange", "customers")
    open_only, _, _ = await mbz.sync("GetCustomersByLastChange", "customers", ignoreclosed="1", **SYNC_START)
    assert closed_id["id"] not in {c["id"] for c in open_only}
    assert sorted(c["id"] for c in open_only) == sorted(c["id"] for c in everything if not c["closed"])
    key = (await mbz.ok("GetCustomersByLastChange", **SYNC_START, ignoreclosed=1))["resumekey"]
    assert (await mbz.one("GetCustomersByLastChange", **SYNC_START, resumekey=key))["status"] == 0


@pytest.mark.parametrize("key", ["garbage", "abc.def", "", "x" * 40 + "." + "0" * 16])
async def test_5_3_5_unknown_or_garbled_resumekey_status_0(start: Start, key: str) -> None:
    """A resumekey this tenant did not issue (or a tampered one) fails; an empty one starts over."""
    mbz = await start(chunk_size=10)
    good = (await mbz.ok("GetCustomersByLastChange", **SYNC_START))["resumekey"]
    tampered = good[:-1] + ("0" if good[-1] != "0" else "1")
    result = await mbz.one("GetCustomersByLastChange", **SYNC_START, resumekey=key or tampered)
    assert result["status"] == 0 and "resumekey" in result["msg"]
    fresh = await mbz.ok("GetCustomersByLastChange", **SYNC_START, resumekey="")
    assert len(fresh["customers"]) == 10


async def test_5_3_5_records_changed_between_chunks_neither_skipped_nor_repeated(start: Start) -> None:
    """Edits and creations between chunks never skip or repeat a record of the running sequence."""
    mbz = await start(chunk_size=15)
    created: list[int] = []

    async def edit(calls: int) -> None:
        mbz.clock.advance(seconds=30)
        mbz.state.mutate(0.2, seed=calls)
        made = await mbz.ok("CreateUpdateCustomerByID", customer={"id": 0, "name": f"New {calls}"})
        created.append(made["customer"]["id"])

    customers, calls, _ = await mbz.sync("GetCustomersByLastChange", "customers", between=edit)
    ids = [c["id"] for c in customers]
    assert calls > 3 and len(ids) == len(set(ids))
    assert set(ids) == {1000 + c for c in MEMBERS}
    assert not set(created) & set(ids)


async def test_5_3_5_first_call_watermark_catches_changes_made_during_the_sequence(start: Start) -> None:
    """Storing the first call's envelope date/time as watermark makes the next sync serve every mid-run change."""
    mbz = await start(chunk_size=20)
    changed_ids: set[int] = set()

    async def edit(calls: int) -> None:
        mbz.clock.advance(seconds=10)
        before = {i: list(h) for i, h in mbz.state.tables["customer"].history.items()}
        mbz.state.mutate(0.1, seed=100 + calls)
        changed_ids.update(i for i, h in mbz.state.tables["customer"].history.items() if h != before.get(i))

    _, _, first = await mbz.sync("GetCustomersByLastChange", "customers", between=edit)
    mbz.clock.advance(seconds=10)
    again, _, _ = await mbz.sync(
        "GetCustomersByLastChange", "customers", changedate=first["date"], changetime=first["time"]
    )
    assert changed_ids and changed_ids <= {c["id"] for c in again}
