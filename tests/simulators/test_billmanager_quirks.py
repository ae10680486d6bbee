"""The BILLmanager simulator's quirk options (protocols.md §4.5): each off by default, each shaped as a panel does it."""

from __future__ import annotations

from tests.simulators.billmanager_support import column, elems, error_of, panel


async def test_quirks_are_off_by_default() -> None:
    """A default panel answers lists with p_elems, the asked page size, no logon form and no deletions."""
    async with panel() as p:
        doc = await p.admin(func="payment", p_num=1, p_cnt=5)
        assert doc["$func"] == "payment" and "p_elems" in doc and len(elems(doc)) == 5
        assert "error" not in await p.admin(func="vds", p_num=1, p_cnt=5)
        assert p.state.deleted_mid_scan == []


async def test_logon_form_funcs_answer_the_logon_form_without_error_or_elem() -> None:
    """A function in logon_form_funcs answers ``$func: "logon"`` with neither ``error`` nor ``elem``."""
    async with panel(logon_form_funcs=frozenset({"payment"})) as p:
        doc = await p.admin(func="payment")
        assert doc["$func"] == "logon" and "error" not in doc and "elem" not in doc
        assert elems(await p.admin(func="account"))


async def test_logon_form_on_expiry_replaces_the_auth_error_of_a_dead_session() -> None:
    """An unknown session lands on the logon form instead of an auth error."""
    async with panel(logon_form_on_expiry=True) as p:
        doc = await p.doc(func="account", auth="no-such-session")
        assert doc["$func"] == "logon" and "error" not in doc
    async with panel() as p:
        assert error_of(await p.doc(func="account", auth="no-such-session")) == ("auth", "auth")


async def test_omit_p_elems_leaves_the_total_out() -> None:
    """omit_p_elems: no p_elems, while p_num and p_cnt are still echoed."""
    async with panel(omit_p_elems=True) as p:
        doc = await p.admin(func="account", p_num=2, p_cnt=5)
        assert "p_elems" not in doc and doc["p_num"]["$"] == "2" and doc["p_cnt"]["$"] == "5"


async def test_page_cap_serves_fewer_rows_and_echoes_the_size_asked() -> None:
    """page_cap=4: p_cnt=10 gets 4 rows, offsets counted in 4s, and the answer still says p_cnt 10."""
    async with panel(page_cap=4) as p:
        first = await p.admin(func="account", p_num=1, p_cnt=10)
        second = await p.admin(func="account", p_num=2, p_cnt=10)
        assert column(first, "id") == ["1", "2", "3", "4"] and column(second, "id") == ["5", "6", "7", "8"]
        assert first["p_cnt"]["$"] == "10"


async def test_delete_row_after_page_shifts_later_pages_once() -> None:
    """After the 2nd payment page, payment 1 is deleted: p_elems drops by one and page 3 starts a row later."""
    async with panel(delete_row_after_page={"payment": 2}) as p:
        pages = [await p.admin(func="payment", p_num=n, p_cnt=5) for n in (1, 2, 3)]
        assert [doc["p_elems"]["$"] for doc in pages][1:] == [
            pages[0]["p_elems"]["$"],
            str(int(pages[0]["p_elems"]["$"]) - 1),
        ]
        assert column(pages[2], "id")[0] == "12" and p.state.deleted_mid_scan == [("payment", 1)]
        await p.admin(func="payment", p_num=1, p_cnt=5)
        assert len(p.state.deleted_mid_scan) == 1


async def test_missing_and_renamed_functions_answer_missed_in_the_panels_words() -> None:
    """missing_funcs and a func_names rename answer ``missed`` without $object and the Russian module text."""
    async with panel(missing_funcs=frozenset({"soft"}), func_names={"vds": "vds.vps"}) as p:
        for func in ("soft", "vds"):
            doc = await p.admin(func=func)
            assert error_of(doc) == ("missed", "")
            assert (
                doc["error"]["msg"]["$"]
                == f"Не удалось найти функцию '{func}'. Возможно, управляющий модуль не загружен."
            )
        assert elems(await p.admin(func="vds.vps"))


async def test_authtype_on_calls_refuses_that_request_and_drops_the_session() -> None:
    """authtype_on_calls={2}: the 2nd request answers ``$type: "authtype"`` and its session is gone afterwards."""
    async with panel(authtype_on_calls=frozenset({2})) as p:
        sid = await p.login()
        assert error_of(await p.doc(func="account", auth=sid))[0] == "authtype"
        assert error_of(await p.doc(func="account", auth=sid)) == ("auth", "auth")
