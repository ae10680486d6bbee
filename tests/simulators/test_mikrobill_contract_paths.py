"""Contract of the MikroBILL simulator: protocols.md §5.2 transport and points 1-2 (paths, envelopes), over real
sockets."""

from __future__ import annotations

from decimal import Decimal

from etl.simulators.mikrobill import Code
from etl.simulators.noise import spell
from tests.simulators.mikrobill_support import (
    A1,
    A2,
    C1,
    FIRST,
    FIRST_ACCOUNTS,
    MEMBERS,
    WORLD,
    Start,
    client_id,
    guid,
    mikrobill_start,  # noqa: F401  (the start fixture)
)


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
