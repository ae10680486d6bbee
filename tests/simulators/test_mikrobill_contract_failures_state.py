"""Contract of the MikroBILL simulator: protocols.md §5.2 point 5 (failure modes), the simulator's own faults
and the uniform state interface, over real sockets."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from etl.simulators.faults import FaultPlan
from etl.simulators.mikrobill import Code, MikrobillOptions
from etl.simulators.noise import spell
from etl.simulators.world import World
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
    guid,
    mikrobill_start,  # noqa: F401  (the start fixture)
)


# -- §5.2.5 failure modes ------------------------------------------------------------------
async def test_5_2_5_failure_wrong_cashier_password(start: Start) -> None:
    """A wrong cashier password gets its own non-zero code at connect and no session."""
    mb = await start(connect=False)
    body = await mb.connect(password="wrong")
    assert body["code"] == Code.WRONG_PASSWORD and isinstance(body["return"], str)
    assert not mb.state.sessions


async def test_5_2_5_failure_cashier_lacking_api_permission(start: Start) -> None:
    """A cashier without the MikroBILL_API right is refused with "no rights"."""
    mb = await start(options=MikrobillOptions(cashier_api_allowed=False), connect=False)
    body = await mb.connect()
    assert body["code"] == Code.NO_API_RIGHTS and body["return"].startswith("no rights")


async def test_5_2_5_failure_cashier_outside_allowed_hours(start: Start) -> None:
    """Outside the cashier's hours the connect is refused; inside them it succeeds."""
    hour = datetime.now(UTC).hour
    closed = MikrobillOptions(cashier_hours=((hour + 2) % 24, (hour + 3) % 24))
    assert (await (await start(options=closed, connect=False)).connect())["code"] == Code.OUTSIDE_HOURS
    open_now = MikrobillOptions(cashier_hours=(hour, (hour + 2) % 24))
    assert (await (await start(options=open_now, connect=False)).connect())["code"] == 0


async def test_5_2_5_failure_cashier_outside_allowed_days(start: Start) -> None:
    """On a day the cashier does not work the connect is refused with the schedule code."""
    today = datetime.now(UTC)
    days = {today.isoweekday(), (today + timedelta(days=1)).isoweekday()}
    options = MikrobillOptions(cashier_days=tuple(d for d in range(1, 8) if d not in days))
    assert (await (await start(options=options, connect=False)).connect())["code"] == Code.OUTSIDE_HOURS


async def test_5_2_5_failure_cashier_outside_trusted_ip(start: Start) -> None:
    """From an address outside the cashier's trusted IPs the connect is refused; from a trusted one it works."""
    other = MikrobillOptions(cashier_trusted_ips=("10.9.9.9",))
    body = await (await start(options=other, connect=False)).connect()
    assert body["code"] == Code.IP_NOT_TRUSTED and "127.0.0.1" in body["return"]
    loopback = MikrobillOptions(cashier_trusted_ips=("127.0.0.1",))
    assert (await (await start(options=loopback, connect=False)).connect())["code"] == 0


async def test_5_2_5_failure_crypto_key_mismatch(start: Start) -> None:
    """Wrong CRYPTO keys are refused; after a reinstall old sessions and old keys fail, new keys work."""
    mb = await start()
    session = mb.token
    assert (await mb.connect(crypto_key_2="other"))["code"] == Code.CRYPTO_MISMATCH
    mb.state.reinstall("new-key-1", "new-key-2")
    mb.token = session
    assert (await mb.process("API.GetClients"))["code"] == Code.CRYPTO_MISMATCH
    assert (await mb.connect())["code"] == Code.CRYPTO_MISMATCH
    assert (await mb.connect(crypto_key_1="new-key-1", crypto_key_2="new-key-2"))["code"] == 0
    assert (await mb.process("API.GetClients"))["code"] == 0


async def test_5_2_5_failure_core_not_running_connection_refused(start: Start) -> None:
    """When the core is not running its port refuses connections."""
    mb = await start()
    url = mb.server.make_url("/process")
    await mb.server.close()
    async with aiohttp.ClientSession() as fresh:
        with pytest.raises(aiohttp.ClientConnectorError):
            await fresh.post(url, json={"path": "API.GetClients"})


async def test_5_2_5_failure_slow_core(start: Start) -> None:
    """With core_latency_seconds every Process call takes at least that long."""
    mb = await start(options=MikrobillOptions(core_latency_seconds=0.3))
    began = time.perf_counter()
    assert (await mb.process("API.GetTariffs"))["code"] == 0
    assert time.perf_counter() - began >= 0.3


async def test_5_2_5_failure_batch_with_unknown_account_guid(start: Start) -> None:
    """In a batch, an account GUID the client lacks fails with "account not found" while the known one reads."""
    mb = await start()
    base = f"API.Client.{C1}.AutorizeInfo.Accounts"
    reply = await mb.process(base, {str(A1): ["IP"], "99999999999999": ["IP"], str(A2): ["MAC"]})
    assert [item["code"] for item in reply] == [0, Code.ACCOUNT_NOT_FOUND, Code.ACCOUNT_NOT_FOUND]
    assert reply[1]["return"] == "account not found: 99999999999999"


# -- faults rolled by the simulator ----------------------------------------------------------
async def test_fault_busy_refuses_whole_call(start: Start) -> None:
    """A "busy" fault refuses the whole Process call with the core-busy code and a reason."""
    mb = await start(faults=FaultPlan(seed=3, rates={"busy": 1.0}))
    body = await mb.process("API.Client", [f"{C1}.AutorizeInfo.Name"])
    assert body == {"return": "core busy, try again later", "code": Code.CORE_BUSY}


async def test_fault_partial_batch_fails_one_item_unapplied(start: Start) -> None:
    """A "partial_batch" fault fails exactly one item with the core-busy code and leaves its write unapplied."""
    mb = await start(faults=FaultPlan(seed=3, rates={"partial_batch": 1.0}))
    clients = [client_id(c) for c in MEMBERS[:6]]
    names = [f"Name {n}" for n in range(6)]
    reply = await mb.process("API.Client", {f"{c}.AutorizeInfo.Name": n for c, n in zip(clients, names, strict=True)})
    busy = [i for i, item in enumerate(reply) if item["code"] != 0]
    assert len(busy) == 1 and reply[busy[0]]["code"] == Code.CORE_BUSY
    mb.state.processor.faults = None
    after = await mb.process("API.Client", [f"{c}.AutorizeInfo.Name" for c in clients])
    assert [item["return"] == name for item, name in zip(after, names, strict=True)] == [
        i not in busy for i in range(6)
    ]


# -- state: counting, mutation, truth ----------------------------------------------------------
async def test_state_call_count_and_request_log_per_process_call(start: Start) -> None:
    """Every Process call counts once and is logged with its path, a batch with its item count and args digest."""
    mb = await start()
    await mb.process("API.GetClients")
    await mb.process("API.Client", [f"{C1}.AutorizeInfo.Name", f"{C2}.AutorizeInfo.Name"])
    await mb.process("API.Client", [f"{C1}.AutorizeInfo.Name", f"{C2}.AutorizeInfo.Accounts"])
    await mb.process("API.Client", [f"{C1}.AutorizeInfo.Name", f"{C2}.AutorizeInfo.Name"])
    await mb.process("API.Nope")
    assert mb.state.call_count == 5
    calls = [e for e in mb.state.request_log if e["path"] == "/process"]
    assert [(e["what"], e["items"]) for e in calls] == [
        ("API.GetClients", None),
        *[("API.Client", 2)] * 3,
        ("API.Nope", None),
    ]
    digests = [e["args_digest"] for e in calls[1:4]]
    assert digests[0] == digests[2] != digests[1]


async def test_state_mutate_changes_that_fraction_without_timestamps(start: Start) -> None:
    """mutate(fraction) edits the name, first IP or balance of exactly that many clients."""
    mb = await start()

    async def snapshot() -> list[tuple[Any, ...]]:
        leaves = ("AutorizeInfo.Name", "BillingInfo.Money")
        reply = await mb.process("API.Client", [f"{client_id(c)}.{leaf}" for c in MEMBERS for leaf in leaves])
        firsts = {str(client_id(c)): guid(WORLD.accounts_of(WORLD.customer(c))[0].id) for c in MEMBERS}
        ips = await mb.process("API.Client", {c: {f"AutorizeInfo.Accounts.{a}": ["IP"]} for c, a in firsts.items()})
        values = [item["return"] for item in reply]
        return [(*values[2 * i : 2 * i + 2], ips[i]["return"]) for i in range(len(MEMBERS))]

    before = await snapshot()
    changed = mb.state.mutate(0.2, seed=5)
    after = await snapshot()
    assert changed == round(len(MEMBERS) * 0.2)
    assert sum(b != a for b, a in zip(before, after, strict=True)) == changed


async def test_state_truth_lists_every_served_record(start: Start) -> None:
    """truth() names every client, account, tariff/service and money-log row the API serves, with world ids."""
    mb = await start()
    await mb.process(f"API.Client.{C1}.AutorizeInfo.Accounts.AddAccount", ["10.3.3.3", "", "added", "pw"])
    truth = list(mb.state.truth())
    by_entity: dict[str, dict[str, int]] = {}
    for row in truth:
        assert row.system == "mikrobill"
        by_entity.setdefault(row.entity, {})[row.source_id] = row.true_id
    ids = await mb.value("API.GetClients")
    assert by_entity["customer"] == {str(client_id(c)): c for c in MEMBERS} and len(ids) == len(MEMBERS)
    accounts = await mb.process("API.Client", [f"{i}.AutorizeInfo.Accounts" for i in ids])
    assert set(by_entity["account"]) == {str(g) for item in accounts for g in item["return"]}
    assert by_entity["account"][str(A1)] == FIRST_ACCOUNTS[0].id
    assert sorted(by_entity["account"].values())[0] < 0
    products = await mb.value("API.GetTariffs") + await mb.value("API.GetServices")
    assert by_entity["product"] == {str(p): p for p in products}
    payments = await mb.process("API.Client", [f"{i}.Payments" for i in ids])
    assert set(by_entity["payment"]) == {str(row["uid"]) for item in payments for row in item["return"]}


async def test_empty_world_serves_no_records(start: Start) -> None:
    """With world=None the installation has no clients, tariffs or services and truth() is empty."""
    mb = await start(world=None)
    assert await mb.value("API.GetClients") == []
    assert await mb.value("API.GetTariffs") == []
    assert (await mb.process(f"API.Client.{C1}.AutorizeInfo.Name"))["code"] == Code.CLIENT_NOT_FOUND
    assert list(mb.state.truth()) == []


async def test_acceptance_10000_clients_extract_in_a_few_hundred_calls(start: Start) -> None:
    """Batch reads extract 10,000+ clients with their accounts in well under 300 Process calls."""
    world = World(seed=11, scale=18_000)
    mb = await start(world=world)
    ids = await mb.value("API.GetClients")
    assert len(ids) >= 10_000
    leaves = ("AutorizeInfo.Name", "AutorizeInfo.Accounts", "BillingInfo.Money", "StatusInfo.BlockReason")
    per_call = 2000 // len(leaves)
    clients: list[dict[str, Any]] = []
    for at in range(0, len(ids), per_call):
        reply = await mb.process("API.Client", [f"{i}.{leaf}" for i in ids[at : at + per_call] for leaf in leaves])
        assert all(item["code"] == 0 for item in reply)
        clients += [{"name": reply[n]["return"], "accounts": reply[n + 1]["return"]} for n in range(0, len(reply), 4)]
    pairs = [(i, a) for i, c in zip(ids, clients, strict=True) for a in c["accounts"]]
    ips = {}
    for at in range(0, len(pairs), 1000):
        batch = pairs[at : at + 1000]
        args = [f"{i}.AutorizeInfo.Accounts.{a}.{leaf}" for i, a in batch for leaf in ("IP", "Login")]
        reply = await mb.process("API.Client", args)
        ips.update({a: reply[2 * n]["return"] for n, (_, a) in enumerate(batch)})
    assert len(clients) == len(ids) and len(ips) == len(pairs)
    assert mb.state.call_count < 300
    sample = world.customer(world.members("mikrobill")[-1])
    assert clients[-1]["name"] == spell(world.seed, sample, "mikrobill").display_name
