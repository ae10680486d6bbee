"""The false-deletion paths real servers showed (protocols.md §1.9, §4.5), each reproduced by a simulator
option: none marks a record deleted; each either holds the stream naming the failed check, or reads the
list completely and marks exactly the genuine deletion."""

from __future__ import annotations

from sqlalchemy import select

from etl.db.staging import HeldDeletion
from etl.pipeline.results import StreamResult
from jobs.extract import run_extract
from tests.support import shipped_settings, simulators, source_for, staged_keys

ADMIN_KEY = {"api_key": "demo-dolibarr-key"}
RESTRICTED_KEY = {"api_key": "demo-dolibarr-restricted-key"}


async def _extract(
    url: str, kind: str, base_url: str, full: bool = False, **overrides: object
) -> dict[str, StreamResult]:
    source = source_for(kind, base_url, **overrides)
    report = await run_extract(shipped_settings(url).model_copy(update={"sources": [source]}), full=full)
    return {result.stream: result for result in report.results}


async def _live(engine, kind: str, entity: str) -> set[str]:
    return {source_id for staged_entity, source_id in await staged_keys(engine, kind) if staged_entity == entity}


async def test_a_key_without_the_third_parties_right_deletes_nothing(migrated_url, engine) -> None:
    """Dolibarr: a key lacking "see all third parties" reads third parties as 404 and orders as []; a full (or
    sweep) scan with it holds both streams (each would be emptied) and marks nothing, while products stage normally."""
    async with simulators(["miclinik"], scale=150) as sims:
        url = sims["miclinik"].base_url
        first = await _extract(migrated_url, "miclinik", url, credentials=ADMIN_KEY, page_size=50)
        assert all(result.status == "succeeded" for result in first.values())
        before = {entity: await _live(engine, "miclinik", entity) for entity in ("customer", "order", "product")}
        restricted = await _extract(migrated_url, "miclinik", url, full=True, credentials=RESTRICTED_KEY, page_size=50)
    for stream, entity in (("thirdparties", "customer"), ("orders", "order")):
        result = restricted[stream]
        assert result.status == "held" and result.counts.deleted == 0, (stream, result.error)
        live = len(before[entity])
        assert f"it would leave the stream empty (all {live} live rows unseen)" in result.error
        assert f"({live} -> 0)" in result.error
        assert await _live(engine, "miclinik", entity) == before[entity]
    assert restricted["products"].status == "succeeded" and restricted["products"].counts.deleted == 0
    assert await _live(engine, "miclinik", "product") == before["product"]


async def test_a_logon_form_answer_holds_a_stream_under_min_rows(migrated_url, engine) -> None:
    """BILLmanager: a list answered by the logon form ($func "logon", no elem, no error) holds its stream with
    the $func check named, even below min_rows_for_fraction; the other streams are untouched."""
    async with simulators(["billmanager"], scale=60) as sims:
        url = sims["billmanager"].base_url
        first = await _extract(migrated_url, "billmanager", url, page_size=20)
        accounts = await _live(engine, "billmanager", "customer")
        assert first["accounts"].status == "succeeded" and 0 < len(accounts) < 50
        sims["billmanager"].state.options.logon_form_funcs = frozenset({"account"})
        second = await _extract(migrated_url, "billmanager", url, page_size=20)
    result = second["accounts"]
    assert result.status == "held" and result.counts.deleted == 0
    assert "logon" in result.error and "$func" in result.error
    assert await _live(engine, "billmanager", "customer") == accounts
    assert all(r.status == "succeeded" for name, r in second.items() if name != "accounts")


async def _genuine_deletion_with(migrated_url, engine, options: dict, page_size: int) -> tuple[StreamResult, str]:
    """Stage accounts, delete one on the server, enable the quirk, extract again."""
    async with simulators(["billmanager"], scale=300) as sims:
        url = sims["billmanager"].base_url
        await _extract(migrated_url, "billmanager", url, page_size=page_size)
        clients = sims["billmanager"].state.store.clients
        gone = sorted(clients.ids())[len(clients.ids()) // 2]
        assert clients.delete(gone)
        for name, value in options.items():
            setattr(sims["billmanager"].state.options, name, value)
        second = await _extract(migrated_url, "billmanager", url, page_size=page_size)
        served = {str(i) for i in clients.ids()}
    assert await _live(engine, "billmanager", "customer") == served
    return second["accounts"], str(gone)


async def test_paging_without_p_elems_reads_every_page_and_marks_the_genuine_deletion(migrated_url, engine) -> None:
    """BILLmanager lists answered without p_elems: the end is proven by an empty page, not a short one, so
    the scan is complete and exactly the one account deleted on the server is marked."""
    result, _gone = await _genuine_deletion_with(migrated_url, engine, {"omit_p_elems": True}, page_size=40)
    assert (result.status, result.counts.deleted) == ("succeeded", 1), result.error


async def test_a_silent_page_cap_is_paged_around_and_marks_the_genuine_deletion(migrated_url, engine) -> None:
    """BILLmanager serving 25 rows where 100 were asked (echoing 100): p_elems shows the pages were short,
    the stream pages on at the size served, and exactly the genuine deletion is marked."""
    result, _gone = await _genuine_deletion_with(migrated_url, engine, {"page_cap": 25}, page_size=100)
    assert (result.status, result.counts.deleted) == ("succeeded", 1), result.error
    assert result.counts.pages >= 4


async def test_rows_deleted_mid_scan_are_read_again_and_only_the_genuine_deletion_marked(migrated_url, engine) -> None:
    """BILLmanager offset paging: a row deleted after page 1 was served shifts every later row back one;
    p_elems changing makes the scan read the list again, and only rows gone from that consistent pass
    (the genuine deletion and the row deleted mid-scan) are marked."""
    async with simulators(["billmanager"], scale=300) as sims:
        url = sims["billmanager"].base_url
        await _extract(migrated_url, "billmanager", url, page_size=40)
        state = sims["billmanager"].state
        clients = state.store.clients
        gone = sorted(clients.ids())[-3]
        assert clients.delete(gone)
        state.options.delete_row_after_page = {"account": 1}
        second = await _extract(migrated_url, "billmanager", url, page_size=40)
        deleted_mid_scan = [row for func, row in state.deleted_mid_scan if func == "account"]
        served = {str(i) for i in clients.ids()}
    result = second["accounts"]
    assert len(deleted_mid_scan) == 1
    assert (result.status, result.counts.deleted) == ("succeeded", 2), result.error
    assert await _live(engine, "billmanager", "customer") == served
    async with engine.connect() as conn:
        assert (await conn.execute(select(HeldDeletion))).first() is None


async def test_a_lossy_page_cap_is_read_completely_too(migrated_url, engine) -> None:
    """BILLmanager capping 100 to 90 rows with offsets counted in the size asked (10 % of every page never
    served at that size): the stream pages on at the size served, so the scan is complete and exact."""
    options = {"page_cap": 90, "page_cap_offsets": "asked"}
    result, _gone = await _genuine_deletion_with(migrated_url, engine, options, page_size=100)
    assert (result.status, result.counts.deleted) == ("succeeded", 1), result.error


async def test_rows_counted_but_not_served_hold_the_stream_below_the_guard(migrated_url, engine) -> None:
    """BILLmanager counting in p_elems rows it leaves out of the list (a login of too low a level, §4.5):
    fewer than 20 % would be deleted, yet the short pages and the total check hold the stream, named."""
    async with simulators(["billmanager"], scale=300) as sims:
        url = sims["billmanager"].base_url
        await _extract(migrated_url, "billmanager", url, page_size=40)
        accounts = await _live(engine, "billmanager", "customer")
        sims["billmanager"].state.options.hide_every = 10
        second = await _extract(migrated_url, "billmanager", url, page_size=40)
    result = second["accounts"]
    hidden = sum(1 for account in accounts if int(account) % 10 == 0)
    assert 0 < hidden < 0.2 * len(accounts)
    assert result.status == "held" and result.counts.deleted == 0, result.error
    assert f"although p_elems says {len(accounts)}: the list leaves rows out" in result.error
    assert f"the server counted {len(accounts)} rows but the scan received" in result.error
    assert f"{hidden} of {len(accounts)} live rows would be marked deleted" in result.error
    assert await _live(engine, "billmanager", "customer") == accounts


async def test_a_shift_no_count_reveals_is_caught_by_the_confirming_pass(migrated_url, engine) -> None:
    """BILLmanager without p_elems, a row deleted after page 1 was served: the shift is invisible, so the
    first pass misses the row that moved onto page 1; the confirming pass (offset-paged deletions are
    confirmed by a second read) sees it, so nothing is marked; the row deleted mid-scan, which the first
    pass saw, is marked by the next run."""
    async with simulators(["billmanager"], scale=300) as sims:
        url = sims["billmanager"].base_url
        await _extract(migrated_url, "billmanager", url, page_size=40)
        state = sims["billmanager"].state
        state.options.omit_p_elems = True
        state.options.delete_row_after_page = {"account": 1}
        second = await _extract(migrated_url, "billmanager", url, page_size=40)
        deleted_mid_scan = [str(row) for func, row in state.deleted_mid_scan if func == "account"]
        served = {str(i) for i in state.store.clients.ids()}
        assert len(deleted_mid_scan) == 1
        assert (second["accounts"].status, second["accounts"].counts.deleted) == ("succeeded", 0)
        assert await _live(engine, "billmanager", "customer") == served | set(deleted_mid_scan)
        third = await _extract(migrated_url, "billmanager", url, page_size=40)
    assert (third["accounts"].status, third["accounts"].counts.deleted) == ("succeeded", 1)
    assert await _live(engine, "billmanager", "customer") == served
