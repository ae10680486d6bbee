"""Contract of the Microbizz simulator: protocols.md §5.3 points 6-8 (types, forward compatibility, failure
modes) and the uniform simulator interface, over real sockets."""

from __future__ import annotations

import json
import time

from etl.simulators.faults import FaultPlan
from etl.simulators.microbizz import DEMO_CREDENTIALS
from etl.simulators.microbizz.fields import FIELDS
from tests.simulators.microbizz_support import (
    FIRST_CUSTOMER,
    MEMBERS,
    SYNC_START,
    WORLD,
    Start,
    microbizz_start,  # noqa: F401  (the start fixture)
)


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
