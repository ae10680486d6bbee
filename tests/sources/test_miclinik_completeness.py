"""miclinik: the end of a list proven, pages counted exactly, a misconfigured base URL, a clock-less server."""

from __future__ import annotations

import io
import json
import math

import structlog

from etl.http.transport import HttpTransport
from etl.logging import configure_logging
from etl.simulators.miclinik import MiclinikOptions
from etl.sources.miclinik.client import MiclinikClient
from etl.sources.miclinik.streams import ProductsStream, UsersStream
from jobs.extract import run_extract
from tests.support import shipped_settings, simulators, source_for, staged_keys, truth_keys

ENTITIES = {"customer", "product", "order", "user"}
PAGE = 40
COUNTED = {"thirdparties", "products", "orders"}  # NEW servers count these with pagination_data (not users)


# The request arithmetic here is one cursor's; split scans are counted in tests/pipeline/test_partitions.py.
ONE = {"partitions": 1}


def _settings(url: str, *sources):
    return shipped_settings(url).model_copy(update={"sources": list(sources)})


def _list_requests(state, resource: str) -> list[dict]:
    return [e for e in state.request_log if e["path"] == f"/api/index.php/{resource}"]


def probed_pages(records: int, page: int) -> int:
    """Pages of a scan proven by an ask after the short page: full pages, the short one, the empty answer."""
    return records // page + 1 + (records % page != 0)


def counted_pages(records: int, page: int) -> int:
    """Pages of a scan whose first answer carries the server's count: never an extra one."""
    return max(1, math.ceil(records / page))


async def test_short_page_is_not_the_end_of_the_list(engine, migrated_url) -> None:
    """A server capping pages below ``limit`` without saying so (OLD: no count) is read completely:
    a short page is followed by an ask after its last id, and only the empty answer ends the list."""
    options = {"miclinik": MiclinikOptions(profile="OLD", max_page_size=15)}
    async with simulators(["miclinik"], scale=120, seed=2, options=options) as sims:
        sim = sims["miclinik"]
        source = source_for("miclinik", sim.base_url, page_size=PAGE, options={"profile": "old"})
        report = await run_extract(_settings(migrated_url, source))
        assert report.status == "succeeded", report.failures()
        assert await staged_keys(engine, source.name) == truth_keys(sim.state, ENTITIES)
        products = next(r for r in report.results if r.stream == "products")
        assert products.counts.records > 15
        # every page is short (15 < 40), so each is followed by one more ask; the empty one ends it
        assert products.counts.pages == math.ceil(products.counts.records / 15) + 1


async def test_capped_new_server_is_read_completely_by_its_count(engine, migrated_url) -> None:
    """On a NEW server the first page's pagination total (the whole list) keeps a capped scan going
    until that many rows arrived, and ends it there without an empty ask."""
    options = {"miclinik": MiclinikOptions(max_page_size=15)}
    async with simulators(["miclinik"], scale=120, seed=2, options=options) as sims:
        sim = sims["miclinik"]
        source = source_for("miclinik", sim.base_url, page_size=PAGE, **ONE)
        report = await run_extract(_settings(migrated_url, source))
        assert report.status == "succeeded", report.failures()
        assert await staged_keys(engine, source.name) == truth_keys(sim.state, ENTITIES)
        products = next(r for r in report.results if r.stream == "products")
        assert products.counts.pages == math.ceil(products.counts.records / 15)
        asks = _list_requests(sim.state, "products")
        assert [e["query"].get("pagination_data") for e in asks] == ["true"] + [None] * (len(asks) - 1)


async def test_a_healthy_new_server_costs_no_extra_request(engine, migrated_url) -> None:
    """NEW: counted lists take exactly ceil(n/limit) pages (one at least), users (never counted) one
    ask more than their pages of rows; every list request is one page (no confirmations)."""
    async with simulators(["miclinik"], scale=150, seed=6) as sims:
        sim = sims["miclinik"]
        source = source_for("miclinik", sim.base_url, page_size=PAGE, **ONE)
        report = await run_extract(_settings(migrated_url, source))
        assert report.status == "succeeded", report.failures()
        for result in report.results:
            n = result.counts.records
            expected = counted_pages(n, PAGE) if result.stream in COUNTED else probed_pages(n, PAGE)
            assert result.counts.pages == expected, (result.stream, n)
            assert len(_list_requests(sim.state, result.stream)) == expected, result.stream


async def test_an_old_server_costs_one_extra_request_per_scan(engine, migrated_url) -> None:
    """OLD (no count): each list takes its pages of rows plus one empty ask, and the 404 "none found"
    after a short page is taken at once (not confirmed like one after a full page)."""
    options = {"miclinik": MiclinikOptions(profile="OLD")}
    async with simulators(["miclinik"], scale=150, seed=6, options=options) as sims:
        sim = sims["miclinik"]
        source = source_for("miclinik", sim.base_url, page_size=PAGE, options={"profile": "old"}, **ONE)
        report = await run_extract(_settings(migrated_url, source))
        assert report.status == "succeeded", report.failures()
        for result in report.results:
            n = result.counts.records
            assert n % PAGE, f"{result.stream}: pick a scale where the last page is short"
            requests = _list_requests(sim.state, result.stream)
            assert len(requests) == result.counts.pages == probed_pages(n, PAGE), (result.stream, n)
            assert requests[-1]["status"] == 404 and "pagination_data" not in requests[0]["query"]


async def test_the_servers_count_travels_in_the_cursor_and_is_no_floor() -> None:
    """The page asked with pagination_data carries the whole list's count in its cursor, to end the scan; it
    is not reported as Evidence.total (under keyset paging a row deleted mid-scan skips nothing, so a scan
    receiving one row fewer than counted is still complete)."""
    async with simulators(["miclinik"], scale=100, seed=3) as sims:
        sim = sims["miclinik"]
        source = source_for("miclinik", sim.base_url, page_size=10)
        async with HttpTransport(source) as transport:
            client = MiclinikClient(source, transport)
            await client.open()
            stream = ProductsStream(client, source)
            first = await stream.fetch(stream.start(None))
            second = await stream.fetch(first.next_cursor)
            users = await UsersStream(client, source).fetch({"after": 0, "since": None})
    assert first.next_cursor["total"] == len(sim.state.store.products) > 20 and first.evidence.total is None
    assert second.evidence.total is None and second.next_cursor["seen"] == 20
    assert users.evidence.total is None and users.next_cursor.get("probe") is True


async def test_html_login_page_base_url_is_a_configuration_error(migrated_url) -> None:
    """A base URL without /api/index.php answers the web login page (200, text/html): the source ends at
    open with a configuration error naming the fix, after one request (no retries)."""
    async with simulators(["miclinik"], scale=50) as sims:
        sim = sims["miclinik"]
        root = sim.base_url.removesuffix("/api/index.php")
        report = await run_extract(_settings(migrated_url, source_for("miclinik", root)))
        log = list(sim.state.request_log)
    assert report.status == "failed"
    for result in report.results:
        assert result.error.startswith("configuration: "), result.error
        assert f"it should end in /api/index.php, e.g. {root}/api/index.php" in result.error
    assert [(e["path"], e["status"]) for e in log] == [("/status", 200)]


async def test_status_without_server_clock_logs_once_that_the_local_clock_is_used(migrated_url) -> None:
    """A production server ($dolibarr_main_prod=1) gives no timestamp_now_utc: the run succeeds on the
    local clock, and says so exactly once."""
    out = io.StringIO()
    configure_logging(fmt="json", stream=out)
    try:
        async with simulators(["miclinik"], scale=50, options={"miclinik": MiclinikOptions(main_prod=True)}) as sims:
            report = await run_extract(_settings(migrated_url, source_for("miclinik", sims["miclinik"].base_url)))
    finally:
        structlog.reset_defaults()
    assert report.status == "succeeded", report.failures()
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines() if line.startswith("{")]
    said = [e for e in events if "local clock is used for the watermark" in e]
    assert len(said) == 1, events
