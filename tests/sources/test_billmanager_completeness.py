"""BILLmanager completeness evidence, read at the stream: what each page proves about the whole list.

Every test runs the simulated panel on real sockets with one quirk of protocols.md §4.5 turned on
and walks a stream's pages the way one engine pass does (fetch, follow ``next_cursor``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from etl.http.transport import HttpTransport
from etl.settings import SourceSettings
from etl.simulators.billmanager import BillmanagerOptions
from etl.simulators.serve import RunningSimulator
from etl.sources.base import Cursor, Page
from etl.sources.billmanager.client import BillmanagerClient
from etl.sources.billmanager.streams import PanelListStream, PaymentsStream
from tests.support import simulators, source_for


@asynccontextmanager
async def payments_of(
    panel: BillmanagerOptions, *, scale: int = 60, page_size: int = 10, **overrides: Any
) -> AsyncIterator[tuple[RunningSimulator, BillmanagerClient, SourceSettings]]:
    """A panel with options ``panel`` and an open client on it (the payments list is the one paged here)."""
    async with simulators(["billmanager"], scale=scale, options={"billmanager": panel}) as sims:
        sim = sims["billmanager"]
        source = source_for("billmanager", sim.base_url, page_size=page_size, **overrides)
        async with HttpTransport(source) as transport:
            client = BillmanagerClient(source, transport)
            await client.open()
            yield sim, client, source


async def one_pass(stream: PanelListStream, cursor: Cursor | None = None) -> list[Page]:
    """The pages of one pass, from ``cursor`` (the start) until a page gives no next cursor."""
    pages: list[Page] = []
    following: Cursor | None = cursor or stream.start(None)
    while following is not None:
        page = await stream.fetch(following)
        pages.append(page)
        following = page.next_cursor
    return pages


def ids(pages: list[Page]) -> list[str]:
    return [record["id"]["$"] for page in pages for record in page.records]


def served_payments(sim: RunningSimulator) -> list[str]:
    return [str(row_id) for row_id in sim.state.store.payments.ids()]


def list_calls(sim: RunningSimulator, func: str = "payment") -> list[dict[str, Any]]:
    return [entry for entry in sim.state.request_log if entry["func"] == func]


async def test_every_page_reports_p_elems_as_the_total_and_costs_no_extra_request() -> None:
    """A healthy panel: each page's total is the list's p_elems, nothing is doubted, one call per page."""
    async with payments_of(BillmanagerOptions()) as (sim, client, source):
        pages = await one_pass(PaymentsStream(client, source))
        served = served_payments(sim)
        assert ids(pages) == served and len(served) > 3 * source.page_size
        assert {page.evidence.total for page in pages} == {len(served)}
        assert not [page for page in pages if page.evidence.doubt or page.evidence.shifted]
        assert sum(page.received or 0 for page in pages) == len(served)
        assert len(list_calls(sim)) == len(pages) == -(-len(served) // source.page_size)


async def test_silent_page_cap_is_detected_and_paging_continues_at_the_served_size() -> None:
    """Asked for 25 rows, served 7 while echoing 25: the scan goes on 7 at a time and reads every row."""
    async with payments_of(BillmanagerOptions(page_cap=7), page_size=25) as (sim, client, source):
        pages = await one_pass(PaymentsStream(client, source))
        assert ids(pages) == served_payments(sim)
        assert not [page for page in pages if page.evidence.doubt]
        asked = [int(entry["p_cnt"]) for entry in list_calls(sim)]
        assert asked[0] == 25 and set(asked[1:]) == {7}


async def test_without_p_elems_a_short_page_is_confirmed_by_one_extra_request() -> None:
    """No p_elems: the page after the short last one is asked once, and its empty answer ends the list."""
    async with payments_of(BillmanagerOptions(omit_p_elems=True)) as (sim, client, source):
        pages = await one_pass(PaymentsStream(client, source))
        served = served_payments(sim)
        assert ids(pages) == served and not [page for page in pages if page.evidence.doubt]
        assert len(served) % source.page_size, "the last page must be short for this test to mean anything"
        assert len(list_calls(sim)) == -(-len(served) // source.page_size) + 1
        assert pages[-1].records == [] and pages[-1].evidence.total is None


async def test_without_p_elems_a_silent_page_cap_is_still_read_to_the_end() -> None:
    """No p_elems and a silent cap of 4 rows: the confirmation page finds more rows and the scan reads them all,
    never again asking for more rows than the server served (a server may count offsets in the size asked)."""
    options = BillmanagerOptions(omit_p_elems=True, page_cap=4)
    async with payments_of(options, page_size=10) as (sim, client, source):
        pages = await one_pass(PaymentsStream(client, source))
        assert ids(pages) == served_payments(sim)
        assert not [page for page in pages if page.evidence.doubt]
        assert max(int(entry["p_cnt"]) for entry in list_calls(sim)[1:]) == 4


async def test_a_session_landing_on_the_logon_form_is_renewed_once_and_the_list_completes() -> None:
    """A session that dies mid-scan and answers the logon form (no error) costs one login; no page is lost."""
    async with payments_of(BillmanagerOptions(logon_form_on_expiry=True)) as (sim, client, source):
        stream = PaymentsStream(client, source)
        first = await stream.fetch(stream.start(None))
        sim.state.sessions.drop(client._sid or "")
        rest = await one_pass(stream, first.next_cursor)
        assert ids([first, *rest]) == served_payments(sim)
        assert client.logins == 2 and [e for e in sim.state.request_log if e["result"] == "logon"]
        assert not [page for page in rest if page.evidence.doubt]


async def test_sessions_dropped_onto_the_logon_form_at_random_are_renewed_and_nothing_is_lost() -> None:
    """The fault kind ``logon_form`` (a session silently dying onto the logon form) costs a login each time, no rows."""
    async with payments_of(BillmanagerOptions(), scale=100, page_size=5) as (sim, client, source):
        stream = PaymentsStream(client, source)
        first = await stream.fetch(stream.start(None))
        # Seeded: from here on the draws never hit one call twice in a row (that would be a doubt, by design).
        sim.plan.rates["logon_form"] = 0.1
        pages = [first, *await one_pass(stream, first.next_cursor)]
        fired = sim.plan.fired.get("logon_form", 0)
        assert fired >= 2 and client.logins == 1 + fired
        assert ids(pages) == served_payments(sim) and not [page for page in pages if page.evidence.doubt]


@pytest.mark.parametrize(("auth_mode", "logins"), [("session", 2), ("authinfo", 0)])
async def test_a_logon_form_that_persists_is_the_doubt_of_the_page(auth_mode: str, logins: int) -> None:
    """A list answered by the logon form even after a new login is no list: no rows, no next page, a named doubt."""
    options = BillmanagerOptions(logon_form_funcs=frozenset({"payment"}))
    async with payments_of(options, options={"auth_mode": auth_mode}) as (sim, client, source):
        pages = await one_pass(PaymentsStream(client, source))
        assert len(pages) == 1 and pages[0].records == [] and pages[0].next_cursor is None
        assert "$func 'logon'" in (pages[0].evidence.doubt or "")
        assert "the list was not read" in (pages[0].evidence.doubt or "")
        assert client.logins == logins
        assert len(list_calls(sim)) == (2 if auth_mode == "session" else 1), "one renewal, one retry"


async def test_rows_deleted_mid_scan_mark_the_page_shifted_even_after_a_resume() -> None:
    """A row of page 1 deleted after page 2 was served: page 3's p_elems differs from the pass's, kept in the cursor."""
    options = BillmanagerOptions(delete_row_after_page={"payment": 2})
    async with payments_of(options) as (sim, client, source):
        stream = PaymentsStream(client, source)
        first = await stream.fetch(stream.start(None))
        second = await stream.fetch(first.next_cursor or {})
        assert second.next_cursor and second.next_cursor["p_elems"] == first.evidence.total
        assert sim.state.deleted_mid_scan == [("payment", 1)]
        # A killed run resumes from the committed cursor with a fresh stream object.
        resumed = await PaymentsStream(client, source).fetch(second.next_cursor)
        assert resumed.evidence.shifted and f"was {first.evidence.total}" in resumed.evidence.shifted
        assert resumed.next_cursor is None and resumed.evidence.total == (first.evidence.total or 0) - 1
        assert resumed.records, "the shifted page's rows are still staged"
        again = await one_pass(PaymentsStream(client, source))
        assert ids(again) == served_payments(sim) and not [p for p in again if p.evidence.shifted]


async def test_list_calls_send_a_stable_sort_on_id_unless_configured_off() -> None:
    """Every list call asks p_sort=id&p_order=asc ([I]); sort_column null sends neither."""
    async with payments_of(BillmanagerOptions()) as (sim, client, source):
        await one_pass(PaymentsStream(client, source))
        assert {(e["p_sort"], e["p_order"]) for e in list_calls(sim)} == {("id", "asc")}
    async with payments_of(BillmanagerOptions(), options={"sort_column": None}) as (sim, client, source):
        await one_pass(PaymentsStream(client, source))
        assert {(e["p_sort"], e["p_order"]) for e in list_calls(sim)} == {(None, None)}
