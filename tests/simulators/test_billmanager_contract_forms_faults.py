"""Contract of the BILLmanager simulator: protocols.md §5.4 points 5-6 (form semantics, failure modes) and the
uniform simulator interface, over real sockets."""

from __future__ import annotations

import json
from decimal import Decimal

from etl.simulators.faults import FaultPlan
from tests.simulators.billmanager_support import (
    ADMIN,
    CLIENT_PASSWORD,
    WORLD,
    Clock,
    client_login,
    column,
    elems,
    error_of,
    panel,
)


# -- 5.4.5 form semantics --------------------------------------------------------
async def test_5_4_5a_edit_without_sok_returns_the_current_values() -> None:
    """``account.edit&elid=`` without sok shows the client's values and changes nothing."""
    async with panel() as p:
        listed = elems(await p.admin(func="account", p_cnt=1))[0]
        form = await p.admin(func="account.edit", elid=1, name="Ignored Without Sok")
        again = elems(await p.admin(func="account", p_cnt=1))[0]
    assert form["elid"]["$"] == "1" and form["name"] == listed["name"] and form["email"] == listed["email"]
    assert again == listed


async def test_5_4_5b_sok_applies_the_change_with_ok_and_id_for_creates() -> None:
    """With ``sok=ok`` a create answers ``doc.ok`` plus ``doc.id``; an update answers ``doc.ok`` and moves changedate."""
    clock = Clock()
    async with panel(clock=clock) as p:
        created = await p.admin(func="account.edit", sok="ok", name="Fjordnet ApS", email="ops@fjordnet.example")
        updated = await p.admin(func="account.edit", sok="ok", elid=2, name="Renamed Client")
        row = await p.admin(func="account.edit", elid=2)
        new_row = await p.admin(func="account.edit", elid=created["id"]["$"])
    assert "ok" in created and created["id"]["$"] == str(len(WORLD.members("billmanager")) + 1)
    assert "ok" in updated and "id" not in updated
    assert row["name"]["$"] == "Renamed Client" and row["changedate"]["$"] == "2025-06-15 15:06:40"
    assert new_row["name"]["$"] == "Fjordnet ApS"


async def test_5_4_5c_validation_failure_is_value_error_naming_the_field() -> None:
    """Invalid fields answer ``$type`` value with ``$object`` = the field."""
    async with panel() as p:
        answers = [
            await p.admin(func="account.edit", sok="ok", name=""),
            await p.admin(func="account.edit", sok="ok", name="X", email="not-an-email"),
            await p.admin(func="payment.edit", sok="ok", plid=1, amount="-3", paymethod=1),
            await p.admin(func="payment.edit", sok="ok", plid=1, amount="3", paymethod=9),
            await p.admin(func="vds.edit", sok="ok", elid=1, ip="999.1.1.1"),
        ]
    assert [error_of(doc) for doc in answers] == [
        ("value", "name"),
        ("value", "email"),
        ("value", "amount"),
        ("value", "paymethod"),
        ("value", "ip"),
    ]


async def test_5_4_5d_duplicate_is_exists_error() -> None:
    """Creating a login that already exists answers ``$type`` exists."""
    async with panel() as p:
        login = await client_login(p)
        clash = await p.admin(func="account.edit", sok="ok", name="Copy", email=login["name"].upper())
        user_clash = await p.admin(func="user.edit", sok="ok", name="admin", account_id=1)
    assert error_of(clash) == ("exists", "user") and error_of(user_clash) == ("exists", "user")


async def test_5_4_5e_bad_elid_is_missed_or_value_elid() -> None:
    """A missing record answers missed/elid; a malformed or absent id answers value/elid."""
    async with panel() as p:
        missing = [await p.admin(func=f, elid=999_999) for f in ("account.edit", "payment.edit", "vds.edit")]
        malformed = await p.admin(func="payment.edit", elid="abc")
        absent = await p.admin(func="soft.edit")
    assert {error_of(doc) for doc in missing} == {("missed", "elid")}
    assert error_of(malformed) == ("value", "elid") and error_of(absent) == ("value", "elid")


async def test_5_4_5f_delete_of_a_missing_id_still_returns_ok() -> None:
    """Deleting an id that does not exist answers ``doc.ok``; ``.edit`` then reports it missing."""
    async with panel() as p:
        deleted = await p.admin(func="soft.delete", elid="999999")
        check = await p.admin(func="soft.edit", elid="999999")
    assert "ok" in deleted and "error" not in deleted and error_of(check) == ("missed", "elid")


# -- 5.4.6 failure modes ---------------------------------------------------------
async def test_5_4_6a_session_expiry_mid_extraction_needs_reauth_and_retry() -> None:
    """The session_expiry fault kills the current session; re-auth and retry still reads every page once."""
    plan = FaultPlan(seed=5, rates={"session_expiry": 0.3})
    async with panel(faults=plan) as p:
        expected = column(await p.admin(func="payment"), "id")
        sid, page, seen, reauths = await p.login(), 1, [], 0
        for _ in range(200):
            doc = await p.doc(func="payment", auth=sid, p_num=page, p_cnt=6)
            if "error" in doc:
                assert error_of(doc)[0] == "auth"
                sid, reauths = await p.login(), reauths + 1
                continue
            if not elems(doc):
                break
            seen, page = seen + column(doc, "id"), page + 1
    assert seen == expected and reauths == plan.fired["session_expiry"] >= 1


async def test_5_4_6b_bad_authinfo_and_authinfo_from_a_non_whitelisted_ip() -> None:
    """Both failures are ``doc.error`` with HTTP 200 and no data."""
    async with panel(authinfo_whitelist=("198.51.100.7/32",)) as p:
        outside = await p.admin(func="payment")
    async with panel() as p:
        wrong = await p.doc(func="payment", authinfo="admin:guess")
    for doc in (outside, wrong):
        assert "error" in doc and "elem" not in doc
    assert error_of(outside)[0] == "access" and error_of(wrong)[0] == "auth"


async def test_5_4_6c_insufficient_access_level_gives_error_or_truncated_list() -> None:
    """A client login gets an access error for admin lists, or [guess] only its own row in truncate mode."""
    async with panel() as p:
        login = await client_login(p)
        as_client = {"authinfo": f"{login['name']}:{CLIENT_PASSWORD}"}
        refused = await p.doc(func="account", **as_client)
        edit = await p.doc(func="payment.edit", elid=1, **as_client)
        own_services = await p.doc(func="vds", **as_client)
    async with panel(denied_list_mode="truncate") as p:
        truncated = await p.doc(func="account", **as_client)
    assert error_of(refused) == ("access", "func") and error_of(edit) == ("access", "func")
    assert set(column(own_services, "account_id")) == {login["account_id"]}
    assert column(truncated, "id") == [login["account_id"]] and truncated["p_elems"]["$"] == "1"


async def test_5_4_6d_function_missing_by_configuration_is_unknown_function_error() -> None:
    """[guess] A disabled or unknown function answers missed/func; the type is an option."""
    async with panel(disabled_funcs=frozenset({"soft"})) as p:
        disabled = await p.admin(func="soft")
        unknown = await p.admin(func="dnshost")
        still = await p.admin(func="vds")
    async with panel(unknown_func_error=("value", "func")) as p:
        retyped = await p.admin(func="dnshost")
    assert error_of(disabled) == error_of(unknown) == ("missed", "func") and "error" not in still
    assert error_of(retyped) == ("value", "func")


async def test_5_4_6e_slow_lists_are_left_to_the_generic_fault_middleware() -> None:
    """The simulator draws only its own session_expiry kind, so latency and slow pages are not applied twice."""
    plan = FaultPlan(seed=1, rates={"slow_page": 1.0, "latency": 1.0, "proxy_5xx": 1.0})
    async with panel(faults=plan) as p:
        sid = await p.login()
        docs = [await p.doc(func="payment", auth=sid, p_num=n, p_cnt=5) for n in (1, 2)]
    assert all(elems(doc) for doc in docs) and plan.fired == {}


async def test_5_4_6f_application_errors_are_http_200_never_5xx() -> None:
    """Every application error comes back as HTTP 200 with a ``doc.error`` body."""
    requests = [
        {"func": "account", "auth": "nope"},
        {"func": "nosuch", "authinfo": ADMIN},
        {"func": "payment.edit", "elid": "x", "authinfo": ADMIN},
        {"func": "account.edit", "sok": "ok", "name": "", "authinfo": ADMIN},
        {"func": "auth", "username": "admin", "password": "bad"},
    ]
    async with panel() as p:
        answers = [await p.raw(params | {"out": "json"}) for params in requests]
    assert all(status == 200 and "error" in json.loads(text)["doc"] for status, text in answers)


# -- the uniform simulator interface ---------------------------------------------
async def test_state_counts_calls_and_logs_func_paging_and_elid() -> None:
    """``call_count`` counts requests and ``request_log`` records func, p_num/p_cnt and elid, never credentials."""
    async with panel() as p:
        await p.admin(func="payment", p_num=2, p_cnt=5)
        await p.admin(func="payment", p_num=2, p_cnt=5)
        await p.admin(func="vds.edit", elid=3)
        log, count = p.state.request_log, p.state.call_count
    assert count == 3 and [entry["func"] for entry in log] == ["payment", "payment", "vds.edit"]
    assert (log[0]["p_num"], log[0]["p_cnt"], log[2]["elid"]) == ("2", "5", "3")
    assert log[0]["what"] == log[1]["what"] and "authinfo" not in log[0]["what"]


async def test_source_ids_are_sequential_per_entity() -> None:
    """Every entity numbers its rows 1..n in world order (users: admin first)."""
    async with panel() as p:
        for func in ("account", "user", "pricelist", "payment", "vds", "soft"):
            ids = column(await p.admin(func=func), "id")
            assert ids == [str(i) for i in range(1, len(ids) + 1)], func


async def test_mutate_edits_records_and_stamps_changedate() -> None:
    """``mutate`` edits the given share of records, changing names/balances/IPs and their changedate."""
    clock = Clock()
    async with panel(clock=clock) as p:
        before = {func: elems(await p.admin(func=func)) for func in ("account", "vds")}
        clock.now += 86400
        changed = p.state.mutate(0.5, seed=3)
        after = {func: elems(await p.admin(func=func)) for func in ("account", "vds")}
    stamp = "2025-06-16 15:06:40"
    assert changed > 0
    pairs = {func: list(zip(before[func], after[func], strict=True)) for func in before}
    for func, fields in (("account", ("name", "balance")), ("vds", ("ip",))):
        edited = [(old, new) for old, new in pairs[func] if new["changedate"]["$"] == stamp]
        assert len(edited) == round(len(pairs[func]) * 0.5)
        assert all(any(old[f] != new[f] for f in fields) for old, new in edited)
        assert all(old["changedate"] == new["changedate"] for old, new in pairs[func] if (old, new) not in edited)
    assert all(new["ip"]["$"].startswith("172.") for old, new in pairs["vds"] if old["ip"] != new["ip"])


async def test_truth_maps_every_served_record_to_its_world_entity() -> None:
    """``truth`` names the customer, account, payment, product and order behind every served record."""
    outsider = next(c for c in WORLD.customers() if not WORLD.present_in(c.id, "billmanager"))
    async with panel() as p:
        made = await p.admin(func="account.edit", sok="ok", name="X", email=f" {outsider.email.upper()} ")
        served = {func: elems(await p.admin(func=func)) for func in ("account", "vds", "payment", "pricelist")}
        truth = list(p.state.truth())
    by_entity: dict[str, dict[str, int]] = {}
    for row in truth:
        by_entity.setdefault(row.entity, {})[row.source_id] = row.true_id
    accounts = {a.id: a for cid in WORLD.members("billmanager") for a in WORLD.accounts_of(WORLD.customer(cid))}
    payments = {x.id: x for cid in WORLD.members("billmanager") for x in WORLD.payments_of(WORLD.customer(cid))}
    assert by_entity["customer"][made["id"]["$"]] == outsider.id
    assert len(by_entity["customer"]) == len(served["account"]) and len(by_entity["user"]) == len(served["account"])
    for elem in served["vds"]:
        assert accounts[by_entity["account"][elem["id"]["$"]]].ip == elem["ip"]["$"]
    for elem in served["payment"]:
        amount = payments[by_entity["payment"][elem["id"]["$"]]].amount
        assert Decimal(elem["subaccountamount_iso"]["$"].split()[0]) == amount
    for elem in served["pricelist"]:
        assert WORLD.product(by_entity["product"][elem["id"]["$"]]).label == elem["name"]["$"]
    assert set(by_entity["order"].values()) <= {o.id for c in WORLD.customers() for o in WORLD.orders_of(c)}
