"""Contract of the BILLmanager simulator: protocols.md §5.4 points 1-2 (transport, authentication), over real
sockets."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from etl.simulators.billmanager import DEMO_CREDENTIALS
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
