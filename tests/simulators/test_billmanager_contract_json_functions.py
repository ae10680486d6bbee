"""Contract of the BILLmanager simulator: protocols.md §5.4 points 3-4 (JSON encoding, functions), over real
sockets."""

from __future__ import annotations

import json
from typing import Any

from etl.simulators.noise import spell
from tests.simulators.billmanager_support import (
    ADMIN,
    CLIENT_PASSWORD,
    WORLD,
    client_login,
    column,
    elems,
    error_of,
    panel,
)


# -- 5.4.3 JSON encoding --------------------------------------------------------
def _all_strings(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_all_strings(item) for item in value.values())
    if isinstance(value, list):
        return all(_all_strings(item) for item in value)
    return isinstance(value, str)


async def test_5_4_3a_doc_root_text_under_dollar_attributes_prefixed_all_strings() -> None:
    """The root is ``doc``, text sits under ``$``, attributes are ``$name`` keys and every value is a string."""
    async with panel() as p:
        status, text = await p.raw({"func": "vds", "out": "json", "authinfo": ADMIN})
    body = json.loads(text)
    assert status == 200 and list(body) == ["doc"] and _all_strings(body)
    first = body["doc"]["elem"][0]
    assert set(first["id"]) == {"$"} and set(first["item_status"]) == {"$", "$color"}


async def test_5_4_3b_lang_func_metadata_and_tparams_echo() -> None:
    """The doc carries ``$lang``/``$func`` and echoes the request in ``tparams``, without secrets."""
    async with panel() as p:
        doc = await p.admin(func="payment", plid=1, lang="en")
    assert doc["$lang"] == "en" and doc["$func"] == "payment"
    assert doc["tparams"]["func"] == {"$": "payment"} and doc["tparams"]["plid"] == {"$": "1"}
    assert "authinfo" not in doc["tparams"]


async def test_5_4_3c_lists_are_elem_arrays_and_elem_is_absent_when_empty() -> None:
    """A list is ``doc.elem`` (an array even with one row, by default); an empty list has no ``elem`` key."""
    async with panel() as p:
        one = await p.admin(func="account", p_cnt=1)
        empty = await p.admin(func="payment", plid=999_999)
    async with panel(world=None) as p:
        nothing = await p.admin(func="account")
    async with panel(single_elem_as_array=False) as p:
        as_object = await p.admin(func="account", p_cnt=1)
    assert isinstance(one["elem"], list) and len(one["elem"]) == 1
    assert "elem" not in empty and "elem" not in nothing and nothing["p_elems"]["$"] == "0"
    assert isinstance(as_object["elem"], dict) and as_object["elem"]["id"]["$"] == "1"


async def test_5_4_3d_p_elems_p_num_p_cnt_metadata() -> None:
    """Lists report the total rows, the page number and the page size."""
    async with panel() as p:
        doc = await p.admin(func="account", p_num=2, p_cnt=4)
    members = len(WORLD.members("billmanager"))
    assert (doc["p_elems"]["$"], doc["p_num"]["$"], doc["p_cnt"]["$"]) == (str(members), "2", "4")
    assert column(doc, "id") == ["5", "6", "7", "8"]


# -- 5.4.4 functions -----------------------------------------------------------
async def test_5_4_4a_account_lists_the_members_as_billmanager_spells_them() -> None:
    """``account`` lists every billmanager member, spelled by the noise, with balance, status and dates."""
    async with panel() as p:
        doc = await p.admin(func="account")
    customers = [WORLD.customer(cid) for cid in WORLD.members("billmanager")]
    spelled = [spell(WORLD.seed, customer, "billmanager") for customer in customers]
    assert column(doc, "name") == [s.company or f"{s.first_name} {s.last_name}" for s in spelled]
    first = elems(doc)[0]
    assert first["balance"]["$"].endswith(" EUR") and first["account_status"]["$"] in ("active", "blocked")
    assert {"project", "tz_registration_date", "status", "changedate"} <= set(first)


async def test_5_4_4a_user_lists_one_login_per_client_plus_admin() -> None:
    """``user`` lists the admin and one login per client, with ``account_id`` and ``email``."""
    async with panel() as p:
        doc = await p.admin(func="user")
    members = len(WORLD.members("billmanager"))
    assert column(doc, "name")[0] == "admin" and len(elems(doc)) == members + 1
    assert column(doc, "account_id") == [str(i) for i in range(1, members + 1)]


async def test_5_4_4a_payment_lists_world_payments_with_plid_and_filter() -> None:
    """``payment`` serves ``world.payments_of``; ``plid`` narrows to a client, ``filter=on`` by status and dates."""
    async with panel() as p:
        everything = await p.admin(func="payment")
        of_client = await p.admin(func="payment", plid=2)
        credited = await p.admin(func="payment", filter="on", status=4)
        dates = {"createdate": "other", "createdatestart": "2021-01-01", "createdateend": "2021-12-31"}
        in_2021 = await p.admin(func="payment", filter="on", **dates)
        bad = await p.admin(func="payment", filter="on", status=9)
    truth = [pay for cid in WORLD.members("billmanager") for pay in WORLD.payments_of(WORLD.customer(cid))]
    assert column(everything, "subaccountamount_iso") == [f"{pay.amount:.2f} EUR" for pay in truth]
    assert column(everything, "status") == [str(pay.status) for pay in truth]
    assert set(column(of_client, "account_id")) <= {"2"}
    assert set(column(credited, "status")) == {"4"} and len(elems(credited)) == sum(p.status == 4 for p in truth)
    assert column(in_2021, "create_date") and all(day.startswith("2021") for day in column(in_2021, "create_date"))
    assert error_of(bad) == ("value", "status")


async def test_5_4_4a_payment_edit_shows_and_creates_payments() -> None:
    """``payment.edit`` shows a payment and, with ``sok=ok`` and ``plid``, records a new one."""
    async with panel() as p:
        shown = await p.admin(func="payment.edit", elid=1)
        made = await p.admin(func="payment.edit", sok="ok", plid=3, amount="12.50", paymethod=2)
        listed = await p.admin(func="payment", plid=3)
    assert shown["elid"]["$"] == "1" and shown["status"]["$"] in {str(s) for s in range(1, 8)}
    assert "ok" in made and made["id"]["$"] in column(listed, "id")
    assert "12.50 EUR" in column(listed, "subaccountamount_iso")


async def test_5_4_4a_paymethod_and_pricelist() -> None:
    """``paymethod`` lists methods; ``pricelist`` lists the world's tariff (vds) and service (soft) products."""
    async with panel() as p:
        methods = await p.admin(func="paymethod")
        plans = await p.admin(func="pricelist")
        vds_plans = await p.admin(func="pricelist", itemtype="vds")
    products = [product for product in WORLD.products() if product.kind in ("tariff", "service")]
    assert column(methods, "name") == ["Bank card", "Bank transfer", "Cash"]
    assert column(plans, "name") == [product.label for product in products]
    assert column(plans, "cost") == [f"{product.price:.2f}" for product in products]
    assert set(column(vds_plans, "itemtype")) == {"vds"}


async def test_5_4_4b_vds_and_soft_services_with_item_status_color() -> None:
    """``vds`` carries one service per ISP account (its IP and tariff); ``soft`` is a second type; both colour status."""
    async with panel() as p:
        vds = await p.admin(func="vds")
        soft = await p.admin(func="soft")
    accounts = [a for cid in WORLD.members("billmanager") for a in WORLD.accounts_of(WORLD.customer(cid))]
    assert column(vds, "ip") == [account.ip for account in accounts]
    assert column(vds, "pricelist") == [WORLD.product(account.product_id).label for account in accounts]
    for doc in (vds, soft):
        first = elems(doc)[0]
        assert {"id", "pricelist", "account", "createdate", "expiredate", "cost"} <= set(first)
        assert first["item_status"]["$color"] in ("green", "red", "blue", "yellow")


async def test_5_4_4c_basket_holds_orders_until_checkout() -> None:
    """An order without skipbasket waits in ``doc.list[0]``; delete removes an entry, pay creates the service."""
    async with panel() as p:
        login = await client_login(p)
        plan = column(await p.admin(func="pricelist", itemtype="vds"), "id")[0]
        as_client = {"authinfo": f"{login['name']}:{CLIENT_PASSWORD}"}
        order = {"func": "vds.order.param", "pricelist": plan, "period": 1, "sok": "ok", "clicked_button": "finish"}
        kept = await p.doc(**order, **as_client)
        dropped = await p.doc(**order, **as_client)
        cart = (await p.doc(func="basket", **as_client))["list"][0]["elem"]
        await p.doc(func="basket", clicked_button="delete", id=dropped["id"]["$"], sok="ok", **as_client)
        paid = await p.doc(func="basket", clicked_button="pay", id=cart[0]["cartid"]["$"], sok="ok", **as_client)
        after = await p.doc(func="basket", **as_client)
        services = await p.admin(func="vds", plid=login["account_id"])
    assert kept["ok"]["$type"] == "url" and [e["id"]["$"] for e in cart] == [kept["id"]["$"], dropped["id"]["$"]]
    assert "elem" not in after["list"][0]
    assert paid["id"]["$"] in column(services, "id")


async def test_5_4_4d_order_param_with_skipbasket_and_finish_creates_the_service() -> None:
    """``<type>.order.param`` creates the service only with ``sok=ok&clicked_button=finish``, at once with skipbasket."""
    async with panel() as p:
        login = await client_login(p)
        plan = column(await p.admin(func="pricelist", itemtype="soft"), "id")[0]
        base = {"func": "soft.order.param", "pricelist": plan, "period": 12, "su": login["name"]}
        before = len(elems(await p.admin(func="soft")))
        form = await p.admin(**base)
        unfinished = await p.admin(**base, sok="ok", skipbasket="on")
        done = await p.admin(**base, sok="ok", skipbasket="on", clicked_button="finish")
        after = await p.admin(func="soft")
        wrong_type = await p.admin(**(base | {"func": "vds.order.param"}), sok="ok", clicked_button="finish")
    assert "ok" not in form and "ok" not in unfinished and form["slist"]
    assert "ok" in done and len(elems(after)) == before + 1 and done["id"]["$"] == column(after, "id")[-1]
    assert error_of(wrong_type) == ("value", "pricelist")


async def test_5_4_4e_suspend_resume_delete_services() -> None:
    """``.suspend``/``.resume`` take comma-delimited ids; ``.delete`` removes the service from the list."""
    async with panel() as p:
        await p.admin(func="vds.suspend", elid="1, 2")
        suspended = elems(await p.admin(func="vds", p_cnt=2))
        await p.admin(func="vds.resume", elid="2")
        resumed = elems(await p.admin(func="vds", p_cnt=2))
        await p.admin(func="vds.delete", elid="1")
        remaining = column(await p.admin(func="vds"), "id")
        missing = await p.admin(func="vds.suspend", elid="1")
    assert [e["item_status"]["$color"] for e in suspended] == ["red", "red"]
    assert [e["status"]["$"] for e in resumed] == ["3", "2"]
    assert "1" not in remaining and error_of(missing) == ("missed", "elid")


async def test_5_4_4e_register_creates_a_client_that_can_log_in() -> None:
    """``register`` needs no authentication and creates a client whose login works."""
    async with panel() as p:
        form = await p.doc(func="register")
        fields = {"email": "new.client@example.org", "passwd": "s3cret-pass", "realname": "New Client"}
        made = await p.doc(func="register", sok="ok", conditions_agree="on", project=1, **fields)
        sid = await p.login("new.client@example.org", "s3cret-pass")
        own = await p.doc(func="user", auth=sid)
    assert "email" in form and "ok" in made
    assert column(own, "account_id") == [made["id"]["$"]]
