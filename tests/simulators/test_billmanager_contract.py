"""Contract of the BILLmanager simulator: one test per point of protocols.md §5.4, over real sockets."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from etl.simulators.billmanager import DEMO_CREDENTIALS, STATE, BillmanagerOptions, BillmanagerState, create_app
from etl.simulators.faults import FaultPlan
from etl.simulators.noise import spell
from etl.simulators.world import World

WORLD = World(seed=11, scale=60)
ADMIN = f"{DEMO_CREDENTIALS['username']}:{DEMO_CREDENTIALS['password']}"
CLIENT_PASSWORD = BillmanagerOptions().client_password


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Panel:
    app: web.Application
    http: aiohttp.ClientSession
    base: URL

    @property
    def state(self) -> BillmanagerState:
        return self.app[STATE]

    async def raw(self, params: dict[str, Any], method: str = "GET", path: str = "/billmgr") -> tuple[int, str]:
        params = {key: str(value) for key, value in params.items()}
        url = self.base.with_path(path)
        request = self.http.post(url, data=params) if method == "POST" else self.http.get(url, params=params)
        async with request as response:
            return response.status, await response.text()

    async def doc(self, method: str = "GET", path: str = "/billmgr", **params: Any) -> dict[str, Any]:
        params.setdefault("out", "json")
        status, text = await self.raw(params, method, path)
        assert status == 200
        return json.loads(text)["doc"]

    async def admin(self, **params: Any) -> dict[str, Any]:
        return await self.doc(authinfo=ADMIN, **params)

    async def login(self, username: str = "admin", password: str = DEMO_CREDENTIALS["password"]) -> str:
        return (await self.doc(func="auth", username=username, password=password))["auth"]["$id"]


@asynccontextmanager
async def panel(world: World | None = WORLD, faults: FaultPlan | None = None, **options: Any) -> AsyncIterator[Panel]:
    app = create_app(world, faults=faults, options=BillmanagerOptions(**options))
    async with TestServer(app) as server, aiohttp.ClientSession() as http:
        yield Panel(app, http, server.make_url("/"))


def elems(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc.get("elem", [])


def column(doc: dict[str, Any], name: str) -> list[str]:
    return [elem[name]["$"] for elem in elems(doc) if name in elem]


def error_of(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["error"]["$type"], doc["error"].get("$object", "")


async def client_login(p: Panel, project: str | None = None) -> dict[str, str]:
    """A seeded client login (optionally of a project by name): its login, account id and project."""
    projects = {elem["id"]["$"]: elem["project"]["$"] for elem in elems(await p.admin(func="account"))}
    for elem in elems(await p.admin(func="user")):
        account_id = elem.get("account_id", {}).get("$")
        if account_id and (project is None or projects[account_id] == project):
            return {"name": elem["name"]["$"], "account_id": account_id, "project": projects[account_id]}
    raise AssertionError(f"no client login in project {project}")


# -- 5.4.1 transport ----------------------------------------------------------
async def test_5_4_1_billmgr_and_manager_billmgr_accept_get_and_form_post() -> None:
    """Both paths answer GET and form-POST calls with the same client list."""
    async with panel() as p:
        answers = [
            column(await p.doc(method, path, func="account", authinfo=ADMIN), "id")
            for path in ("/billmgr", "/manager/billmgr")
            for method in ("GET", "POST")
        ]
    assert answers[0] == [str(i) for i in range(1, len(WORLD.members("billmanager")) + 1)]
    assert all(answer == answers[0] for answer in answers)


async def test_5_4_1_elid_plid_elname_address_the_same_record() -> None:
    """``payment.edit`` finds a payment by ``elid`` and by ``plid`` + ``elname`` (its number)."""
    async with panel() as p:
        first = elems(await p.admin(func="payment"))[0]
        by_elid = await p.admin(func="payment.edit", elid=first["id"]["$"])
        by_name = await p.admin(func="payment.edit", plid=first["account_id"]["$"], elname=first["number"]["$"])
    assert by_elid["elid"]["$"] == by_name["elid"]["$"] == first["id"]["$"]
    assert by_elid["number"] == by_name["number"] == first["number"]


async def test_5_4_1_lang_selects_message_language_and_falls_back_to_en() -> None:
    """``lang=ru`` answers in Russian; an unknown language falls back to English."""
    async with panel() as p:
        ru = await p.doc(func="account", authinfo="admin:wrong", lang="ru")
        xx = await p.doc(func="account", authinfo="admin:wrong", lang="xx")
    assert ru["$lang"] == "ru" and ru["error"]["msg"]["$"] == "Ошибка авторизации"
    assert xx["$lang"] == "en" and xx["error"]["msg"]["$"] == "Authorization failed"


async def test_5_4_1_p_num_p_cnt_page_a_list_and_can_be_ignored() -> None:
    """[guess] p_num/p_cnt page a list without gaps or repeats; with paging off every row comes back."""
    async with panel() as p:
        everything = column(await p.admin(func="payment"), "id")
        pages = [column(await p.admin(func="payment", p_num=n, p_cnt=7), "id") for n in range(1, 30)]
    async with panel(honour_paging=False) as p:
        ignored = column(await p.admin(func="payment", p_num=2, p_cnt=7), "id")
    async with panel(default_page_size=5) as p:
        defaulted = await p.admin(func="payment")
    assert [row for page in pages for row in page] == everything and len(everything) > 7
    assert all(len(page) == 7 for page in pages[: len(everything) // 7])
    assert ignored == everything
    assert len(elems(defaulted)) == 5 and defaulted["p_cnt"]["$"] == "5"


async def test_5_4_1a_out_xml_carries_the_same_doc_as_out_json() -> None:
    """``out=xml`` is a ``<doc>`` with the same elems, columns and attributes as ``out=json``."""
    async with panel() as p:
        as_json = await p.admin(func="vds", p_cnt=3)
        status, text = await p.raw({"func": "vds", "p_cnt": 3, "out": "xml", "authinfo": ADMIN})
    root = ET.fromstring(text)
    assert status == 200 and root.tag == "doc" and root.get("func") == "vds"
    xml_rows = [{child.tag: child.text for child in elem} for elem in root.findall("elem")]
    assert [row["ip"] for row in xml_rows] == column(as_json, "ip")
    assert [elem.find("item_status").get("color") for elem in root.findall("elem")] == [
        elem["item_status"]["$color"] for elem in elems(as_json)
    ]
    assert root.findtext("p_elems") == as_json["p_elems"]["$"]


async def test_5_4_1b_out_jsondata_is_json_without_dollar_metadata() -> None:
    """[guess] ``out=JSONdata`` has the json data but no root ``$`` keys and no tparams."""
    async with panel() as p:
        full = await p.admin(func="account", p_cnt=2)
        data = await p.admin(func="account", p_cnt=2, out="JSONdata")
    assert not [key for key in data if key.startswith("$")] and "tparams" not in data
    assert data["elem"] == full["elem"] and data["p_elems"] == full["p_elems"]


# -- 5.4.2 authentication -------------------------------------------------------
async def test_5_4_2a_func_auth_returns_doc_auth_with_id_and_level() -> None:
    """``func=auth`` answers ``doc.auth`` with ``$id`` = the sid as text and a ``$level``; XML has ``<auth id level>``."""
    async with panel() as p:
        doc = await p.doc(func="auth", username="admin", password=DEMO_CREDENTIALS["password"])
        listed = await p.doc(func="account", auth=doc["auth"]["$id"])
        _, text = await p.raw(
            {"func": "auth", "username": "admin", "password": DEMO_CREDENTIALS["password"]} | {"out": "xml"}
        )
    auth = doc["auth"]
    assert auth["$id"] == auth["$"] and len(auth["$id"]) >= 16 and auth["$level"] == "28"
    assert "error" not in listed and elems(listed)
    node = ET.fromstring(text).find("auth")
    assert node is not None and node.get("id") == node.text and node.get("level") == "28"


async def test_5_4_2b_session_expires_3600s_after_last_request() -> None:
    """Each request restarts the hour: a session used every 3500 s lives on, one idle 3601 s is gone."""
    clock = Clock()
    async with panel(clock=clock) as p:
        sid = await p.login()
        for _ in range(3):
            clock.now += 3500
            assert "error" not in await p.doc(func="paymethod", auth=sid)
        clock.now += 3601
        expired = await p.doc(func="paymethod", auth=sid)
    assert error_of(expired)[0] == "auth"


async def test_5_4_2b_session_ttl_is_configurable() -> None:
    """``session_ttl`` shortens the idle limit for tests."""
    clock = Clock()
    async with panel(clock=clock, session_ttl=10) as p:
        sid = await p.login()
        clock.now += 9
        alive = await p.doc(func="paymethod", auth=sid)
        clock.now += 11
        dead = await p.doc(func="paymethod", auth=sid)
    assert "error" not in alive and error_of(dead)[0] == "auth"


async def test_5_4_2c_expired_or_unknown_sid_is_auth_error_with_http_200() -> None:
    """[guess] An unknown sid, or none at all, gives ``doc.error`` ``$type`` auth with HTTP 200."""
    async with panel() as p:
        status, text = await p.raw({"func": "account", "auth": "deadbeef", "out": "json"})
        missing = await p.doc(func="account")
    assert status == 200 and error_of(json.loads(text)["doc"])[0] == "auth"
    assert error_of(missing)[0] == "auth"


async def test_5_4_2d_authinfo_authenticates_each_call_without_a_session() -> None:
    """``authinfo=user:pass`` works on every call and opens no session; wrong credentials give ``doc.error``."""
    async with panel() as p:
        good = [await p.doc(func=func, authinfo=ADMIN) for func in ("account", "payment", "vds")]
        bad = [await p.doc(func="account", authinfo=info) for info in ("admin:nope", "ghost:x", "admin")]
        sessions = len(p.state.sessions)
    assert all("error" not in doc and elems(doc) for doc in good) and sessions == 0
    assert [error_of(doc)[0] for doc in bad] == ["auth", "auth", "auth"]


async def test_5_4_2d_authinfo_ip_whitelist_rejects_other_addresses() -> None:
    """With a whitelist, authinfo from outside it is refused, from inside accepted; sessions are unaffected."""
    async with panel(authinfo_whitelist=("192.0.2.0/24",)) as p:
        refused = await p.admin(func="account")
        by_session = await p.doc(func="account", auth=await p.login())
    async with panel(authinfo_whitelist=("127.0.0.0/8", "::1/128")) as p:
        allowed = await p.admin(func="account")
    assert error_of(refused) == ("access", "authinfo")
    assert "error" not in by_session and "error" not in allowed


async def test_5_4_2e_su_lets_the_admin_act_as_any_login() -> None:
    """Admin ``su=<login>`` sees that client's data only, as the client would."""
    async with panel() as p:
        login = await client_login(p)
        users = await p.admin(func="user", su=login["name"])
        payments = await p.admin(func="payment", su=login["name"])
    assert set(column(users, "account_id")) == {login["account_id"]}
    assert set(column(payments, "account_id")) <= {login["account_id"]}


async def test_5_4_2e_su_for_resellers_only_over_their_own_clients() -> None:
    """A reseller may su to logins of its project's clients and gets an access error for others."""
    async with panel() as p:
        own = await client_login(p, "Partner Networks Ltd")
        foreign = await client_login(p, "ISP Hosting Ltd")
        reseller = "reseller:demo-reseller-pass"
        allowed = await p.doc(func="vds", authinfo=reseller, su=own["name"])
        refused = await p.doc(func="vds", authinfo=reseller, su=foreign["name"])
        listed = await p.doc(func="account", authinfo=reseller)
    assert "error" not in allowed and set(column(allowed, "account_id")) <= {own["account_id"]}
    assert error_of(refused) == ("access", "su")
    assert set(column(listed, "project")) == {"Partner Networks Ltd"}


async def test_5_4_2e_su_is_refused_to_client_logins() -> None:
    """A client login using su gets an access error, even towards itself."""
    async with panel() as p:
        login = await client_login(p)
        doc = await p.doc(func="user", authinfo=f"{login['name']}:{CLIENT_PASSWORD}", su=login["name"])
    assert error_of(doc) == ("access", "su")


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
