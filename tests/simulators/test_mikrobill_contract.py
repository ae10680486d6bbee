"""Contract of the MikroBILL simulator, one test per point of protocols.md §5.2, over real sockets."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from etl.simulators.faults import FaultPlan
from etl.simulators.mikrobill import DEMO_CREDENTIALS, SESSION_HEADER, STATE, Code, MikrobillOptions, create_app
from etl.simulators.noise import spell
from etl.simulators.world import World

WORLD = World(seed=7, scale=300)
MEMBERS = list(WORLD.members("mikrobill"))


def client_id(customer_id: int) -> int:
    """The documented derivation: 6338241 followed by the zero-padded customer id."""
    return 633_824_100_000_000 + customer_id


def guid(account_id: int) -> int:
    """The documented derivation: 28236 followed by the zero-padded account id."""
    return 28_236_000_000_000 + account_id


FIRST = WORLD.customer(MEMBERS[0])
FIRST_ACCOUNTS = WORLD.accounts_of(FIRST)
C1 = client_id(FIRST.id)
A1 = guid(FIRST_ACCOUNTS[0].id)
C2 = client_id(MEMBERS[1])
A2 = guid(WORLD.accounts_of(WORLD.customer(MEMBERS[1]))[0].id)


class Mikrobill:
    """The test's side of the wire: connect, Process, close."""

    def __init__(self, app: Any, server: TestServer, http: aiohttp.ClientSession) -> None:
        self.app, self.server, self.http = app, server, http
        self.state = app[STATE]
        self.token = ""

    async def post(self, route: str, body: Any, token: str | None = None) -> tuple[int, Any]:
        headers = {SESSION_HEADER: token} if token else {}
        async with self.http.post(self.server.make_url(route), json=body, headers=headers) as response:
            return response.status, await response.json()

    async def connect(self, **overrides: str) -> dict[str, Any]:
        status, body = await self.post("/connect", DEMO_CREDENTIALS | overrides)
        assert status == 200
        if body["code"] == 0:
            self.token = body["return"]
        return body

    async def process(self, path: str, args: Any = None) -> Any:
        status, body = await self.post("/process", {"path": path, "args": args}, self.token)
        assert status == 200
        return body

    async def value(self, path: str, args: Any = None) -> Any:
        body = await self.process(path, args)
        assert body["code"] == 0, body
        return body["return"]


Start = Callable[..., Awaitable[Mikrobill]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    started: list[Mikrobill] = []

    async def _start(
        world: World | None = WORLD,
        *,
        options: MikrobillOptions | None = None,
        faults: FaultPlan | None = None,
        connect: bool = True,
    ) -> Mikrobill:
        app = create_app(world, faults=faults, options=options)
        server = TestServer(app)
        await server.start_server()
        mb = Mikrobill(app, server, aiohttp.ClientSession())
        started.append(mb)
        if connect:
            assert (await mb.connect())["code"] == 0
        return mb

    yield _start
    for mb in started:
        await mb.http.close()
        await mb.server.close()


# -- §5.2 transport: connect, Process, Close ------------------------------------------------
async def test_5_2_connect_returns_session_token_that_process_requires(start: Start) -> None:
    """Connect with the demo cashier returns a token; Process without it is refused as not connected."""
    mb = await start(connect=False)
    _, body = await mb.post("/process", {"path": "API.GetClients"})
    assert body["code"] == Code.NOT_CONNECTED and isinstance(body["return"], str)
    answer = await mb.connect()
    assert answer["code"] == 0 and isinstance(answer["return"], str) and answer["return"]
    assert (await mb.process("API.GetClients"))["code"] == 0


async def test_5_2_close_ends_the_session(start: Start) -> None:
    """Close answers OK and ends the session, as does Process("DISCONNECT"); later calls are not connected."""
    mb = await start()
    _, body = await mb.post("/close", {}, mb.token)
    assert body == {"return": "OK", "code": 0}
    assert (await mb.process("API.GetClients"))["code"] == Code.NOT_CONNECTED
    await mb.connect()
    assert await mb.process("DISCONNECT") == {"return": "OK", "code": 0}
    assert (await mb.process("API.GetClients"))["code"] == Code.NOT_CONNECTED


async def test_5_2_malformed_request_is_http_400_with_envelope(start: Start) -> None:
    """A body without a path, or a connect without the four fields, is HTTP 400 with a failure envelope."""
    mb = await start()
    status, body = await mb.post("/process", {"args": None}, mb.token)
    assert status == 400 and body["code"] == Code.BAD_REQUEST
    status, body = await mb.post("/connect", {"login": "cashier"})
    assert status == 400 and body["code"] == Code.BAD_REQUEST


# -- §5.2.1 paths --------------------------------------------------------------------------
async def test_5_2_1_paths_get_clients_lists_every_client(start: Start) -> None:
    """API.GetClients returns the id of every MikroBILL member, ascending."""
    mb = await start()
    assert await mb.value("API.GetClients") == [client_id(c) for c in MEMBERS]


async def test_5_2_1_paths_get_clients_searches_by_account_login(start: Start) -> None:
    """API.GetClients with a login returns the client owning that account (as third-party clients use it)."""
    mb = await start()
    assert await mb.value("API.GetClients", FIRST_ACCOUNTS[0].login) == [C1]
    assert await mb.value("API.GetClients", "no-such-login") == []


async def test_5_2_1_paths_autorize_info_name_and_accounts(start: Start) -> None:
    """AutorizeInfo.Name is the customer as MikroBILL spells it; AutorizeInfo.Accounts lists its account GUIDs."""
    mb = await start()
    assert await mb.value(f"API.Client.{C1}.AutorizeInfo.Name") == spell(WORLD.seed, FIRST, "mikrobill").display_name
    assert await mb.value(f"API.Client.{C1}.AutorizeInfo.Accounts") == [guid(a.id) for a in FIRST_ACCOUNTS]


async def test_5_2_1_paths_account_ip_mac_read(start: Start) -> None:
    """Accounts.<guid>.IP and .MAC read the account's address and MAC (Login and Tariff too)."""
    mb = await start()
    base = f"API.Client.{C1}.AutorizeInfo.Accounts.{A1}"
    account = FIRST_ACCOUNTS[0]
    assert await mb.value(f"{base}.IP") == account.ip
    assert await mb.value(f"{base}.MAC") == account.mac
    assert await mb.value(f"{base}.Login") == account.login
    assert await mb.value(f"{base}.Tariff") == account.product_id


async def test_5_2_1_paths_account_ip_mac_write(start: Start) -> None:
    """Writing IP or MAC answers exactly OK and reads back; an invalid IP is refused and changes nothing."""
    mb = await start()
    base = f"API.Client.{C1}.AutorizeInfo.Accounts.{A1}"
    assert await mb.process(f"{base}.IP", "192.168.10.25") == {"return": "OK", "code": 0}
    assert await mb.process(f"{base}.MAC", "AA:AA:AA:AA:AA:AA") == {"return": "OK", "code": 0}
    assert await mb.value(f"{base}.IP") == "192.168.10.25"
    assert await mb.value(f"{base}.MAC") == "AA:AA:AA:AA:AA:AA"
    assert (await mb.process(f"{base}.IP", "300.1.1.1"))["code"] == Code.BAD_ARGUMENT
    assert await mb.value(f"{base}.IP") == "192.168.10.25"


async def test_5_2_1_paths_add_account_with_list_argument(start: Start) -> None:
    """AddAccount with [ip, mac, login, password] answers OK and the new account appears under Accounts."""
    mb = await start()
    base = f"API.Client.{C1}.AutorizeInfo.Accounts"
    assert await mb.process(f"{base}.AddAccount", ["120.10.53.234", "", "Login", "Password"]) == {
        "return": "OK",
        "code": 0,
    }
    accounts = await mb.value(base)
    assert len(accounts) == len(FIRST_ACCOUNTS) + 1
    new = accounts[-1]
    assert len(str(new)) == 14
    assert await mb.value(f"{base}.{new}.IP") == "120.10.53.234"
    assert await mb.value(f"{base}.{new}.Login") == "Login"
    assert (await mb.process(f"{base}.AddAccount", ["120.10.53.235", "", "Login", "x"]))["code"] == Code.BAD_ARGUMENT
    assert (await mb.process(f"{base}.AddAccount", ["120.10.53.235", "Login"]))["code"] == Code.BAD_ARGUMENT


async def test_5_2_1_paths_billing_info_money_and_default_interface(start: Start) -> None:
    """BillingInfo.Money is the balance as a decimal string; DefaultInterface is a string."""
    mb = await start()
    balance = sum((a.balance for a in FIRST_ACCOUNTS), Decimal(0))
    assert Decimal(await mb.value(f"API.Client.{C1}.BillingInfo.Money")) == balance
    interface = await mb.value(f"API.Client.{C1}.BillingInfo.DefaultInterface")
    assert isinstance(interface, str) and interface


async def test_5_2_1_paths_status_info_block_reason_and_speed_limit(start: Start) -> None:
    """StatusInfo.BlockReason is -1 with a positive speed limit when active, and not -1 with 0 kbit/s when blocked."""
    mb = await start()
    blocked = next(c for c in MEMBERS if any(a.blocked for a in WORLD.accounts_of(WORLD.customer(c))))
    active = next(c for c in MEMBERS if not any(a.blocked for a in WORLD.accounts_of(WORLD.customer(c))))
    assert await mb.value(f"API.Client.{client_id(active)}.StatusInfo.BlockReason") == -1
    assert await mb.value(f"API.Client.{client_id(active)}.StatusInfo.CurrentSpeedLimitIn") > 0
    assert await mb.value(f"API.Client.{client_id(blocked)}.StatusInfo.BlockReason") != -1
    assert await mb.value(f"API.Client.{client_id(blocked)}.StatusInfo.CurrentSpeedLimitIn") == 0


async def test_5_2_1_paths_unknown_branch_non_zero_code_with_text_reason(start: Start) -> None:
    """Unknown branches answer a non-zero code whose return is a text reason naming the path."""
    mb = await start()
    for path in ("API.Users", f"API.Client.{C1}.PersonalInfo.Name", f"API.Client.{C1}.AutorizeInfo", "Foo"):
        body = await mb.process(path)
        assert body["code"] == Code.PATH_NOT_FOUND
        assert body["return"] == f"path not found: {path}"


# -- §5.2.2 envelopes ----------------------------------------------------------------------
async def test_5_2_2_envelope_success_and_write_ok(start: Start) -> None:
    """A read is exactly {"return", "code": 0}; a write is exactly {"return": "OK", "code": 0}."""
    mb = await start()
    body = await mb.process(f"API.Client.{C1}.AutorizeInfo.Name")
    assert set(body) == {"return", "code"} and body["code"] == 0
    assert await mb.process(f"API.Client.{C1}.AutorizeInfo.Name", "Ivan Petrov") == {"return": "OK", "code": 0}


async def test_5_2_2_envelope_failure_distinct_codes_per_cause(start: Start) -> None:
    """Each failure cause has its own non-zero code and a text reason ("client not found", ...)."""
    mb = await start()
    causes = {
        "API.Client.1.AutorizeInfo.Name": (None, "client not found: 1"),
        f"API.Client.{C1}.AutorizeInfo.Accounts.{A2}.IP": (None, f"account not found: {A2}"),
        f"API.Client.{C1}.Nope": (None, f"path not found: API.Client.{C1}.Nope"),
        f"API.Client.{C1}.BillingInfo.Money": ("5.00", f"property is read-only: API.Client.{C1}.BillingInfo.Money"),
        f"API.Client.{C1}.AutorizeInfo.Accounts.{A1}.MAC": ("zz", "not a MAC address: 'zz'"),
        "API.Tariff.4.Name": (None, "tariff not found: 4"),
    }
    codes = []
    for path, (args, reason) in causes.items():
        body = await mb.process(path, args)
        assert body == {"return": reason, "code": body["code"]} and body["code"] != 0
        codes.append(body["code"])
    assert len(set(codes)) == len(codes)


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
