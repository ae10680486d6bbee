"""Contract of the MikroBILL simulator: protocols.md §5.2 points 3-4 (batch commands, data), over real sockets."""

from __future__ import annotations

import re
from decimal import Decimal

from etl.simulators.mikrobill import Code, MikrobillOptions
from tests.simulators.mikrobill_support import (
    A1,
    A2,
    C1,
    C2,
    FIRST_ACCOUNTS,
    MEMBERS,
    WORLD,
    Start,
    client_id,
    mikrobill_start,  # noqa: F401  (the start fixture)
)


# -- §5.2.3 batch --------------------------------------------------------------------------
async def test_5_2_3_batch_list_reads_expand_under_base_path(start: Start) -> None:
    """{"<A>": ["IP", "MAC"]} on a client's Accounts reads both leaves, each with its full path."""
    mb = await start()
    base = f"API.Client.{C1}.AutorizeInfo.Accounts"
    assert await mb.process(base, {str(A1): ["IP", "MAC"]}) == [
        {"return": FIRST_ACCOUNTS[0].ip, "code": 0, "path": f"{base}.{A1}.IP"},
        {"return": FIRST_ACCOUNTS[0].mac, "code": 0, "path": f"{base}.{A1}.MAC"},
    ]


async def test_5_2_3_batch_dict_values_write_each_leaf(start: Start) -> None:
    """{"<A>": {"IP": v, "MAC": v}} writes both, each item answering OK."""
    mb = await start()
    base = f"API.Client.{C1}.AutorizeInfo.Accounts"
    reply = await mb.process(base, {str(A1): {"IP": "192.168.25.110", "MAC": "aa:bb:cc:dd:ee:ff"}})
    assert [item["return"] for item in reply] == ["OK", "OK"]
    assert await mb.value(f"{base}.{A1}.IP") == "192.168.25.110"
    assert await mb.value(f"{base}.{A1}.MAC") == "aa:bb:cc:dd:ee:ff"


async def test_5_2_3_batch_mixed_read_and_write_in_one_call(start: Start) -> None:
    """Base API.Client with [read, {path: {MAC: v}}] reads the first and writes the second."""
    mb = await start()
    reply = await mb.process(
        "API.Client", [f"{C1}.BillingInfo.Money", {f"{C2}.AutorizeInfo.Accounts.{A2}": {"MAC": "00:11:22:33:44:55"}}]
    )
    assert reply[0]["code"] == 0 and Decimal(reply[0]["return"]) == sum(a.balance for a in FIRST_ACCOUNTS)
    assert reply[1] == {"return": "OK", "code": 0, "path": f"API.Client.{C2}.AutorizeInfo.Accounts.{A2}.MAC"}
    assert await mb.value(f"API.Client.{C2}.AutorizeInfo.Accounts.{A2}.MAC") == "00:11:22:33:44:55"


async def test_5_2_3_batch_any_nesting_depth_is_the_plain_path(start: Start) -> None:
    """A deeply nested dict write calls the same path as the plain two-argument write."""
    mb = await start()
    reply = await mb.process(f"API.Client.{C1}", {"AutorizeInfo": {"Accounts": {str(A1): {"IP": "10.200.0.1"}}}})
    assert reply == [{"return": "OK", "code": 0, "path": f"API.Client.{C1}.AutorizeInfo.Accounts.{A1}.IP"}]
    assert await mb.value(f"API.Client.{C1}.AutorizeInfo.Accounts.{A1}.IP") == "10.200.0.1"


async def test_5_2_3_batch_reply_array_in_argument_order(start: Start) -> None:
    """Replies follow the order of the arguments, not the order of the tree."""
    mb = await start()
    leaves = ["StatusInfo.BlockReason", "AutorizeInfo.Name", "BillingInfo.Money", "AutorizeInfo.Accounts"]
    args = [f"{c}.{leaf}" for c in (C2, C1) for leaf in leaves]
    reply = await mb.process("API.Client", args)
    assert [item["path"] for item in reply] == [f"API.Client.{arg}" for arg in args]
    assert all(set(item) == {"return", "code", "path"} and item["code"] == 0 for item in reply)


async def test_5_2_3_batch_partial_failure_one_item_code(start: Start) -> None:
    """One bad path in a batch fails alone with its own code while the items around it succeed and apply."""
    mb = await start()
    base = f"API.Client.{C1}.AutorizeInfo"
    reply = await mb.process(base, ["Name", "NoSuchLeaf", {f"Accounts.{A1}": {"IP": "10.9.9.9"}}])
    assert [item["code"] for item in reply] == [0, Code.PATH_NOT_FOUND, 0]
    assert reply[1]["return"] == f"path not found: {base}.NoSuchLeaf"
    assert await mb.value(f"{base}.Accounts.{A1}.IP") == "10.9.9.9"


async def test_5_2_3_batch_version_below_2_0_9_rejected(start: Start) -> None:
    """On 2.0.8 a list/dict argument to a read path is refused with a reason; function arguments still work."""
    mb = await start(options=MikrobillOptions(version="2.0.8"))
    for args in (["AutorizeInfo.Name"], {"AutorizeInfo": ["Name"]}):
        body = await mb.process(f"API.Client.{C1}", args)
        assert body["code"] == Code.BATCH_UNSUPPORTED and "2.0.9" in body["return"]
    add = await mb.process(f"API.Client.{C1}.AutorizeInfo.Accounts.AddAccount", ["10.1.1.1", "", "new", "pw"])
    assert add == {"return": "OK", "code": 0}
    assert (await start(options=MikrobillOptions(version="2.0.10"))).state.options.batch_supported


async def test_5_2_3_batch_max_items_guess_refuses_whole_call(start: Start) -> None:
    """A batch expanding past max_batch_items is refused whole, and none of its writes apply."""
    mb = await start(options=MikrobillOptions(max_batch_items=2))
    base = f"API.Client.{C1}.AutorizeInfo"
    body = await mb.process(base, {"Name": "Renamed", "Accounts": {str(A1): ["IP", "MAC"]}})
    assert body["code"] == Code.BATCH_TOO_LARGE and "2" in body["return"]
    assert await mb.value(f"{base}.Name") != "Renamed"
    assert len(await mb.process(base, ["Name", "Accounts"])) == 2


# -- §5.2.4 data ---------------------------------------------------------------------------
async def test_5_2_4_data_long_numeric_ids(start: Start) -> None:
    """Client ids are 15-digit and account GUIDs 14-digit JSON numbers by default."""
    mb = await start()
    ids = await mb.value("API.GetClients")
    assert all(isinstance(i, int) and len(str(i)) == 15 for i in ids)
    guids = await mb.value(f"API.Client.{C1}.AutorizeInfo.Accounts")
    assert all(isinstance(g, int) and len(str(g)) == 14 for g in guids)


async def test_5_2_4_data_id_json_type_option_string(start: Start) -> None:
    """With id_type="string" ids come back as decimal strings, still usable in paths and in payment rows."""
    mb = await start(options=MikrobillOptions(id_type="string"))
    ids = await mb.value("API.GetClients")
    assert ids[0] == str(C1)
    assert (await mb.value(f"API.Client.{ids[0]}.AutorizeInfo.Accounts"))[0] == str(A1)
    payer = next(c for c in MEMBERS if WORLD.payments_of(WORLD.customer(c)))
    rows = await mb.value(f"API.Client.{client_id(payer)}.Payments")
    assert rows[0]["user_name"] == str(client_id(payer))


async def test_5_2_4_data_money_decimal_string(start: Start) -> None:
    """Money is a string with two decimals, negative balances included, matching the world's balances."""
    mb = await start()
    reply = await mb.process("API.Client", [f"{client_id(c)}.BillingInfo.Money" for c in MEMBERS])
    for customer_id, item in zip(MEMBERS, reply, strict=True):
        assert re.fullmatch(r"-?\d+\.\d{2}", item["return"])
        expected = sum((a.balance for a in WORLD.accounts_of(WORLD.customer(customer_id))), Decimal(0))
        assert Decimal(item["return"]) == expected


async def test_5_2_4_data_block_reason_minus_one_means_active(start: Start) -> None:
    """BlockReason is -1 exactly for the clients none of whose accounts is blocked."""
    mb = await start()
    reply = await mb.process("API.Client", [f"{client_id(c)}.StatusInfo.BlockReason" for c in MEMBERS])
    for customer_id, item in zip(MEMBERS, reply, strict=True):
        blocked = any(a.blocked for a in WORLD.accounts_of(WORLD.customer(customer_id)))
        assert (item["return"] == -1) is not blocked


async def test_5_2_4_data_tariffs_and_services_behind_guess_paths(start: Start) -> None:
    """API.GetTariffs/GetServices list the world's tariffs and services; Name/Price/Type read, never write."""
    mb = await start()
    tariffs = [p for p in WORLD.products() if p.kind == "tariff"]
    services = [p for p in WORLD.products() if p.kind == "service"]
    assert await mb.value("API.GetTariffs") == [p.id for p in tariffs]
    assert await mb.value("API.GetServices") == [p.id for p in services]
    for branch, product, object_type in (("Tariff", tariffs[0], 0), ("Service", services[0], 3)):
        reply = await mb.process(f"API.{branch}", {str(product.id): ["Name", "Price", "Type"]})
        assert [item["return"] for item in reply] == [product.label, f"{product.price:.2f}", object_type]
    assert (await mb.process(f"API.Tariff.{tariffs[0].id}.Price", "1.00"))["code"] == Code.READ_ONLY
    assert (await mb.process(f"API.Service.{tariffs[0].id}.Name"))["code"] == Code.OBJECT_NOT_FOUND


async def test_5_2_4_data_payments_rows_shaped_like_moneys_table(start: Start) -> None:
    """Payments are moneys rows (user_name, moneytime ms, cash string, ..., uid) ending at the current balance."""
    mb = await start()
    customer = next(WORLD.customer(c) for c in MEMBERS if len(WORLD.payments_of(WORLD.customer(c))) >= 2)
    cid = client_id(customer.id)
    rows = await mb.value(f"API.Client.{cid}.Payments")
    columns = {"user_name", "moneytime", "cash", "cash_name", "value1", "actball"}
    columns |= {"uid", "actionid", "actionsubid", "moneytype"}
    assert all(set(row) == columns for row in rows)
    payments = sorted(WORLD.payments_of(customer), key=lambda p: (p.created_at, p.id))
    assert [row["uid"] for row in rows] == [p.id for p in payments]
    assert [row["moneytime"] for row in rows] == [int(p.created_at.timestamp() * 1000) for p in payments]
    assert [Decimal(row["cash"]) for row in rows] == [p.amount for p in payments]
    assert all(row["user_name"] == cid and row["moneytype"] == 0 for row in rows)
    assert rows[-1]["actball"] == await mb.value(f"API.Client.{cid}.BillingInfo.Money")
    assert Decimal(rows[0]["actball"]) + Decimal(rows[1]["cash"]) == Decimal(rows[1]["actball"])
