"""Contract of the Microbizz simulator, one test per point of protocols.md §5.3, over real sockets."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from etl.simulators.faults import FaultPlan
from etl.simulators.microbizz import DEMO_CREDENTIALS, STATE, MicrobizzOptions, create_app
from etl.simulators.microbizz.fields import FIELDS
from etl.simulators.world import World

WORLD = World(seed=11, scale=240)
MEMBERS = list(WORLD.members("microbizz"))
FIRST_CUSTOMER = 1000 + MEMBERS[0]
SYNC_START = {"changedate": "1970-01-01", "changetime": "00:00:00"}


class ManualClock:
    """A server clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


class Microbizz:
    """The test's side of the wire: envelopes in, parsed answers out."""

    def __init__(self, app: Any, server: TestServer, http: aiohttp.ClientSession, clock: ManualClock) -> None:
        self.app, self.server, self.http, self.clock = app, server, http, clock
        self.state = app[STATE]
        self.url = server.make_url("/api/endpoint.php")

    async def send(self, commands: list[Any], **fields: Any) -> tuple[int, dict[str, Any]]:
        envelope = {**DEMO_CREDENTIALS, "remoteagent": "contract-test", **fields, "commands": commands}
        async with self.http.post(self.url, data={"json": json.dumps(envelope)}) as response:
            return response.status, await response.json()

    async def run(self, *commands: dict[str, Any], **fields: Any) -> list[dict[str, Any]]:
        status, body = await self.send(list(commands), **fields)
        assert status == 200 and body["status"] == 1, body
        return body["results"]

    async def one(self, command: str, **args: Any) -> dict[str, Any]:
        (result,) = await self.run({"command": command, **args})
        return result

    async def ok(self, command: str, **args: Any) -> dict[str, Any]:
        result = await self.one(command, **args)
        assert result["status"] == 1, result
        return result

    async def sync(
        self, command: str, output: str, between: Callable[[int], Awaitable[None]] | None = None, **since: str
    ) -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
        """Follow resumekeys to the end; returns the objects, the number of calls and the first envelope."""
        since = since or SYNC_START
        objects: list[dict[str, Any]] = []
        key, calls, first = None, 0, None
        while True:
            command_args = {"command": command, **since, **({"resumekey": key} if key else {})}
            status, body = await self.send([command_args])
            assert status == 200 and body["status"] == 1 and body["results"][0]["status"] == 1, body
            first = first or body
            calls += 1
            objects += body["results"][0][output]
            key = body["results"][0].get("resumekey")
            if not key:
                return objects, calls, first
            if between:
                await between(calls)


Start = Callable[..., Awaitable[Microbizz]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    servers: list[TestServer] = []
    http = aiohttp.ClientSession()

    async def _start(world: World | None = WORLD, faults: FaultPlan | None = None, **options: Any) -> Microbizz:
        clock = ManualClock(datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC))
        options.setdefault("extra_field_rate", 0.0)
        app = create_app(world, faults=faults, options=MicrobizzOptions(clock=clock, **options))
        server = TestServer(app)
        await server.start_server()
        servers.append(server)
        return Microbizz(app, server, http, clock)

    yield _start
    for server in servers:
        await server.close()
    await http.close()


def stamp_of(obj: dict[str, Any]) -> str:
    return f"{obj['changedate']} {obj['changetime']}"


# -- 5.3.1 endpoint ---------------------------------------------------------------
async def test_5_3_1_post_form_field_json_is_answered(start: Start) -> None:
    """An urlencoded POST with form field ``json`` runs the envelope."""
    mbz = await start()
    results = await mbz.run({"command": "Echo", "text": "Hello world"})
    assert results == [{"status": 1, "answer": "Hello world"}]


async def test_5_3_1_multipart_form_field_json_is_answered(start: Start) -> None:
    """A multipart POST with form field ``json`` (curl's array POSTFIELDS) runs the envelope."""
    mbz = await start()
    form = aiohttp.FormData()
    form.add_field("json", json.dumps({**DEMO_CREDENTIALS, "commands": [{"command": "Echo", "text": "æøå"}]}))
    async with mbz.http.post(mbz.url, data=form) as response:
        body = await response.json()
    assert body["status"] == 1 and body["results"][0]["answer"] == "æøå"


async def test_5_3_1_get_query_json_is_answered(start: Start) -> None:
    """GET ``?json=`` with the URL-encoded envelope works like POST."""
    mbz = await start()
    envelope = {**DEMO_CREDENTIALS, "commands": [{"command": "Echo", "text": "via GET"}]}
    async with mbz.http.get(mbz.url, params={"json": json.dumps(envelope)}) as response:
        body = await response.json()
    assert response.status == 200 and body["results"] == [{"status": 1, "answer": "via GET"}]


@pytest.mark.parametrize("form", [{}, {"json": ""}, {"json": "{not json"}, {"json": "[1,2]"}, {"json": '{"a":1}'}])
async def test_5_3_1_missing_or_invalid_json_gives_status_0(start: Start, form: dict[str, str]) -> None:
    """No ``json`` field, broken JSON or a non-envelope answers ``{"status":0,"msg":…}`` with HTTP 200."""
    mbz = await start()
    async with mbz.http.post(mbz.url, data=form) as response:
        body = await response.json()
    assert response.status == 200
    assert body["status"] == 0 and body["msg"] and "results" not in body


# -- 5.3.2 envelope auth ----------------------------------------------------------
async def test_5_3_2_apikey_username_password_or_accesstoken_authenticate(start: Start) -> None:
    """Contract + apikey + username + password works, and so does contract + an app-connect accesstoken."""
    mbz = await start(access_tokens=("tok-123",))
    assert (await mbz.run({"command": "Echo", "text": "a"}))[0]["status"] == 1
    envelope = {"contract": "2391", "accesstoken": "tok-123", "commands": [{"command": "Echo", "text": "b"}]}
    async with mbz.http.post(mbz.url, data={"json": json.dumps(envelope)}) as response:
        body = await response.json()
    assert body["status"] == 1 and body["results"][0]["answer"] == "b"


@pytest.mark.parametrize(
    "override",
    [{"contract": 9999}, {"apikey": "wrong"}, {"username": "nobody"}, {"password": "wrong"}, {"accesstoken": "bad"}],
)
async def test_5_3_2_wrong_credentials_status_0_without_results_http_200(
    start: Start, override: dict[str, Any]
) -> None:
    """Any wrong identifying value answers status 0 with a reason and no results, over HTTP 200."""
    mbz = await start()
    status, body = await mbz.send([{"command": "Echo", "text": "x"}], **override)
    assert status == 200 and body["status"] == 0 and body["msg"]
    assert "results" not in body


async def test_5_3_2_success_carries_receipt_date_and_time(start: Start) -> None:
    """The envelope's date/time is the receipt moment in Copenhagen time: 10:00 UTC is 11:00 in March."""
    mbz = await start()
    _, body = await mbz.send([{"command": "Echo", "text": "t"}])
    assert (body["date"], body["time"]) == ("2026-03-01", "11:00:00")
    mbz.clock.advance(hours=3, seconds=5)
    _, body = await mbz.send([{"command": "Echo", "text": "t"}])
    assert (body["date"], body["time"]) == ("2026-03-01", "14:00:05")


# -- 5.3.3 dispatch ---------------------------------------------------------------
async def test_5_3_3_one_result_per_command_in_order(start: Start) -> None:
    """Three commands give three results in the order sent."""
    mbz = await start()
    results = await mbz.run(*({"command": "Echo", "text": str(n)} for n in range(3)))
    assert [r["answer"] for r in results] == ["0", "1", "2"]


async def test_5_3_3_result_is_status_1_with_outputs_or_status_0_with_msg(start: Start) -> None:
    """Outputs sit beside ``status``:1 in a result; a failing command gives status 0 and a msg."""
    mbz = await start()
    ok, failed = await mbz.run(
        {"command": "GetCustomerByID", "customerid": FIRST_CUSTOMER}, {"command": "GetCustomerByID"}
    )
    assert ok["status"] == 1 and ok["customers"][0]["id"] == FIRST_CUSTOMER
    assert failed["status"] == 0 and failed["msg"] and "customers" not in failed


async def test_5_3_3_unknown_command_status_0(start: Start) -> None:
    """An unknown command name fails that command only."""
    mbz = await start()
    unknown, echo = await mbz.run({"command": "DoesNotExist"}, {"command": "Echo", "text": "still"})
    assert unknown["status"] == 0 and "DoesNotExist" in unknown["msg"]
    assert echo == {"status": 1, "answer": "still"}


async def test_5_3_3_haltonerror_0_runs_every_command(start: Start) -> None:
    """By default a failure does not stop the commands after it."""
    mbz = await start()
    commands = [{"command": "Echo", "text": "1"}, {"command": "Nope"}, {"command": "Echo", "text": "3"}]
    results = await mbz.run(*commands)
    assert [r["status"] for r in results] == [1, 0, 1]


async def test_5_3_3_haltonerror_1_stops_and_omits_later_results(start: Start) -> None:
    """With haltonerror=1 nothing runs after the first failure and later results are left out."""
    mbz = await start()
    create = {"command": "CreateUpdateCustomerByID", "customer": {"id": 0, "name": "Never made"}}
    results = await mbz.run({"command": "Echo", "text": "1"}, {"command": "Nope"}, create, haltonerror=1)
    assert [r["status"] for r in results] == [1, 0]
    assert mbz.state.tables["customer"].created == []


async def test_5_3_3_haltonerror_1_can_emit_skipped_as_status_0(start: Start) -> None:
    """The switch ``halt_emits_skipped`` answers the commands after the failure with status 0."""
    mbz = await start(halt_emits_skipped=True)
    results = await mbz.run({"command": "Nope"}, {"command": "Echo", "text": "2"}, haltonerror="yes")
    assert [r["status"] for r in results] == [0, 0]
    assert "answer" not in results[1]


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
async def test_5_3_5_changedate_changetime_filter(start: Start) -> None:
    """Only objects changed at or after changedate/changetime come back."""
    mbz = await start(timezone="UTC")
    everything, _, _ = await mbz.sync("GetCustomersByLastChange", "customers")
    cut = sorted(stamp_of(c) for c in everything)[len(everything) // 2]
    day, clock_time = cut.split(" ")
    later, _, _ = await mbz.sync("GetCustomersByLastChange", "customers", changedate=day, changetime=clock_time)
    assert sorted(c["id"] for c in later) == sorted(c["id"] for c in everything if stamp_of(c) >= cut)
    assert 0 < len(later) < len(everything)


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


# -- 5.3.6 types ------------------------------------------------------------------
async def test_5_3_6_booleans_out_as_1_0_and_accepted_in_all_spellings(start: Start) -> None:
    """true/yes/1 and false/no/0 (strings, numbers or JSON booleans) are read; 1/0 are written."""
    mbz = await start()
    truthy = [(True, 1), ("true", 1), ("YES", 1), (1, 1), ("1", 1)]
    falsy = [(False, 0), ("false", 0), ("no", 0), (0, 0), ("0", 0)]
    for spelling, expected in (*truthy, *falsy):
        result = await mbz.ok("CreateUpdateCustomerByID", customer={"id": FIRST_CUSTOMER, "closed": spelling})
        assert result["customer"]["closed"] == expected, spelling
    bad = await mbz.one("CreateUpdateCustomerByID", customer={"id": FIRST_CUSTOMER, "closed": "maybe"})
    assert bad["status"] == 0


async def test_5_3_6_dates_and_times_accept_alternate_formats(start: Start) -> None:
    """Dates in four spellings and times in three all read as the same moment; output is YYYY-MM-DD/HH:MM:SS."""
    mbz = await start(chunk_size=10_000)
    for spelling in ("2011-08-05", "05-08-2011", "5-8-2011", "05/08/2011"):
        todo = {"id": 0, "title": "Dated", "startdate": spelling}
        assert (await mbz.ok("CreateUpdateTodo", todo=todo))["todo"]["startdate"] == "2011-08-05"
    answers = []
    for clock_time in ("18:45:00", "18:45", "18.45"):
        result = await mbz.ok("GetCustomersByLastChange", changedate="5-8-2024", changetime=clock_time)
        answers.append(sorted(c["id"] for c in result["customers"]))
    assert answers[0] == answers[1] == answers[2] and answers[0]
    assert all(len(c["changetime"]) == 8 for c in result["customers"])
    assert (await mbz.one("GetCustomersByLastChange", changedate="2024-13-45"))["status"] == 0


async def test_5_3_6_individual_prices_in_ore(start: Start) -> None:
    """The individual price goes in as an integer number of øre; a fractional øre amount is refused."""
    mbz = await start()
    ref = WORLD.product(3).ref
    await mbz.ok("AssignIndividualPriceByProductNumber", productnumber=ref, customerid=FIRST_CUSTOMER, price="4995")
    refused = await mbz.one(
        "AssignIndividualPriceByProductNumber", productnumber=ref, customerid=FIRST_CUSTOMER, price=1.5
    )
    assert refused["status"] == 0
    product = (await mbz.ok("GetProductByProductNumber", productnumber=ref, include_prices="yes"))["products"][0]
    assert product["prices"] == [{"customerid": FIRST_CUSTOMER, "price": 49.95}]


# -- 5.3.7 forward compatibility --------------------------------------------------
async def test_5_3_7_extra_unknown_fields_on_objects_and_results(start: Start) -> None:
    """Some objects and results carry fields outside the known set, the same ones on every read."""
    mbz = await start(extra_field_rate=0.3, chunk_size=10_000)
    known = set(FIELDS["customer"]) | {"changedate", "changetime"}
    first = (await mbz.ok("GetCustomersByLastChange", **SYNC_START))["customers"]
    second = (await mbz.ok("GetCustomersByLastChange", **SYNC_START))["customers"]
    extended = [c for c in first if set(c) - known]
    assert first == second and 0 < len(extended) < len(first)
    results = await mbz.run(*({"command": "Echo", "text": str(n)} for n in range(40)))
    assert 0 < sum(1 for r in results if set(r) - {"status", "answer"}) < 40


# -- 5.3.8 failure modes ----------------------------------------------------------
async def test_5_3_8_bad_credentials_give_envelope_status_0(start: Start) -> None:
    """A wrong password fails the whole envelope and runs none of its commands."""
    mbz = await start()
    status, body = await mbz.send(
        [{"command": "CreateUpdateCustomerByID", "customer": {"id": 0, "name": "x"}}], password="no"
    )
    assert status == 200 and body == {"status": 0, "msg": body["msg"]}
    assert mbz.state.tables["customer"].created == []


async def test_5_3_8_partial_batch_fails_one_command_only(start: Start) -> None:
    """The partial_batch fault fails exactly one command of a multi-command envelope, "temporarily unavailable"."""
    mbz = await start(faults=FaultPlan(rates={"partial_batch": 1.0}))
    results = await mbz.run(*({"command": "Echo", "text": str(n)} for n in range(4)))
    failed = [r for r in results if r["status"] == 0]
    assert len(results) == 4 and len(failed) == 1 and "temporarily unavailable" in failed[0]["msg"]
    assert await mbz.run({"command": "Echo", "text": "alone"}) == [{"status": 1, "answer": "alone"}]


async def test_5_3_8_haltonerror_truncates_a_partial_batch(start: Start) -> None:
    """With haltonerror=1 the injected failure is the last result; nothing after it ran."""
    mbz = await start(faults=FaultPlan(rates={"partial_batch": 1.0}))
    results = await mbz.run(*({"command": "Echo", "text": str(n)} for n in range(6)), haltonerror=1)
    assert results[-1]["status"] == 0 and all(r["status"] == 1 for r in results[:-1])
    assert len(results) <= 6


async def test_5_3_8_busy_server_answers_envelope_status_0(start: Start) -> None:
    """The busy fault answers the whole envelope status 0 "server busy" with no results."""
    mbz = await start(faults=FaultPlan(rates={"busy": 1.0}))
    status, body = await mbz.send([{"command": "Echo", "text": "x"}])
    assert status == 200 and body["status"] == 0 and "busy" in body["msg"].lower() and "results" not in body


async def test_5_3_8_large_queries_are_slow(start: Start) -> None:
    """With slow_seconds_per_object set, a chunk of N objects takes at least N times that long."""
    mbz = await start(slow_seconds_per_object=0.004, chunk_size=50)
    began = time.monotonic()
    result = await mbz.ok("GetCustomersByLastChange", **SYNC_START)
    assert len(result["customers"]) == 50 and time.monotonic() - began >= 0.2


async def test_5_3_8_simulator_itself_always_answers_json(start: Start) -> None:
    """Non-JSON bodies and 5xx are the fault proxy's job: the simulator answers every malformed input in JSON."""
    mbz = await start()
    bodies = [{"json": "{"}, {"json": json.dumps({**DEMO_CREDENTIALS, "commands": [None, 5, {"command": 3}]})}]
    for form in bodies:
        async with mbz.http.post(mbz.url, data=form) as response:
            assert response.status == 200 and response.content_type == "application/json"
            await response.json()


async def test_5_3_8_no_rate_limiting(start: Start) -> None:
    """Rapid requests are all served: no rate limit is documented, so none is simulated [guess]."""
    mbz = await start()
    for _ in range(30):
        assert (await mbz.run({"command": "Echo", "text": "x"}))[0]["status"] == 1


# -- the uniform simulator interface ----------------------------------------------
async def test_interface_call_count_and_request_log_record_each_chunk(start: Start) -> None:
    """Each request is counted and logged with its command names and date/time/resumekey inputs."""
    mbz = await start(chunk_size=40)
    _, calls, _ = await mbz.sync("GetCustomersByLastChange", "customers")
    assert mbz.state.call_count == calls == len(mbz.state.request_log)
    keys = [entry["what"][0].get("resumekey") for entry in mbz.state.request_log]
    assert keys[0] is None and len(set(keys)) == calls
    assert all(entry["commands"] == ["GetCustomersByLastChange"] for entry in mbz.state.request_log)
    assert mbz.state.request_log[0]["what"][0]["changedate"] == "1970-01-01"


async def test_interface_mutate_is_seen_by_the_next_incremental_sync(start: Start) -> None:
    """mutate() edits a fraction of records and moves their change time to now."""
    mbz = await start()
    _, body = await mbz.send([{"command": "Echo", "text": "watermark"}])
    mbz.clock.advance(minutes=5)
    changed = mbz.state.mutate(0.25, seed=3)
    fresh, _, _ = await mbz.sync(
        "GetCustomersByLastChange", "customers", changedate=body["date"], changetime=body["time"]
    )
    assert changed > 0 and len(fresh) == round(0.25 * len(MEMBERS))


async def test_interface_truth_maps_records_to_world_ids(start: Start) -> None:
    """truth() names customers, products and invoice lines (as order_line -> world order) correctly."""
    mbz = await start()
    rows = list(mbz.state.truth())
    entities = {row.entity for row in rows}
    assert entities == {"customer", "user", "product", "order_line", "todo"}
    customers = {int(r.source_id): r.true_id for r in rows if r.entity == "customer"}
    assert sorted(customers.values()) == MEMBERS
    lines, _, _ = await mbz.sync("GetInvoiceLinesByLastChange", "invoicelines")
    line_truth = {int(r.source_id): r.true_id for r in rows if r.entity == "order_line"}
    for line in lines[:40]:
        order_id = line_truth[line["id"]]
        order = WORLD.orders_of(WORLD.customer(order_id // 4))[order_id % 4]
        assert line["customerid"] == 1000 + order.customer_id
        assert line["productnumber"] in {WORLD.product(ol.product_id).ref for ol in order.lines}


async def test_interface_empty_world_has_no_records(start: Start) -> None:
    """world=None is an empty tenant: syncs answer nothing and truth is empty."""
    mbz = await start(world=None)
    customers, calls, _ = await mbz.sync("GetCustomersByLastChange", "customers")
    assert customers == [] and calls == 1 and list(mbz.state.truth()) == []
