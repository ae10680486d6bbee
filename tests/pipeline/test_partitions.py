"""Keyset scans split into partitions read at once: every row staged once, each partition's end proven
on its own, the requests in flight bounded by the source's ``concurrency`` across its streams, a
server that ignores the upper bound refused, and a stopped scan resumed partition by partition."""

from __future__ import annotations

import asyncio
import itertools
import math
import re
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

import aiohttp
from hypothesis import given
from hypothesis import strategies as st

from etl.db.engine import session_factory
from etl.pipeline.checkpoints import load_state
from etl.pipeline.flow import PageQueue
from etl.sources.miclinik.streams import id_ranges
from jobs.extract import run_extract
from tests.support import shipped_settings, simulators, source_for, staged_keys, truth_keys
from tests.support.hostile import Answer, HostileServer, Proxy, Received

API = "/api/index.php"
PAGE = 10
ENTITIES = {"customer", "product", "order", "user"}


def _settings(url: str, source: Any) -> Any:
    return shipped_settings(url).model_copy(update={"sources": [source]})


def _bounds(query: dict[str, Any]) -> tuple[int, int | None]:
    filters = str(query.get("sqlfilters", ""))
    after, upto = re.search(r"t\.rowid:>:(\d+)", filters), re.search(r"t\.rowid:<=:(\d+)", filters)
    assert after, filters
    return int(after.group(1)), int(upto.group(1)) if upto else None


def _pages_by_partition(log: list[dict], resource: str) -> dict[int | None, list[dict]]:
    """upper bound -> the list pages asked in that partition, in order (the DESC probe left out)."""
    parts: dict[int | None, list[dict]] = defaultdict(list)
    for entry in log:
        if entry["path"] == f"{API}/{resource}" and entry["query"].get("sortorder") != "DESC":
            parts[_bounds(entry["query"])[1]].append(entry)
    return parts


async def test_a_split_scan_stages_every_row_and_each_partition_proves_its_own_end(engine, migrated_url) -> None:
    """One DESC probe, four id ranges (the last open-ended), each asking the count of its own range on its
    first page and taking exactly ceil(rows in range / limit) pages; staging equals the simulator's truth."""
    async with simulators(["miclinik"], scale=400, seed=5) as sims:
        sim = sims["miclinik"]
        source = source_for("miclinik", sim.base_url, page_size=PAGE, concurrency=4)
        report = await run_extract(_settings(migrated_url, source))
        assert report.status == "succeeded", report.failures()
        assert await staged_keys(engine, source.name) == truth_keys(sim.state, ENTITIES)
        log = sim.state.request_log
        probes = [e for e in log if e["path"] == f"{API}/thirdparties" and e["query"].get("sortorder") == "DESC"]
        assert len(probes) == 1 and probes[0]["query"]["limit"] == "1"
        parts = _pages_by_partition(log, "thirdparties")
        assert len(parts) == 4 and None in parts
        ids = sorted(int(sid) for entity, sid in truth_keys(sim.state, {"customer"}) if entity == "customer")
        starts = sorted(_bounds(pages[0]["query"])[0] for pages in parts.values())
        assert starts[0] == 0
        for upto, pages in parts.items():
            lower = _bounds(pages[0]["query"])[0]
            rows = sum(1 for i in ids if i > lower and (upto is None or i <= upto))
            assert len(pages) == max(1, math.ceil(rows / PAGE)), (lower, upto, rows)
            assert pages[0]["query"].get("pagination_data") == "true"
            assert all("pagination_data" not in page["query"] for page in pages[1:])
        bounded = sorted(upto for upto in parts if upto is not None)
        assert bounded == starts[1:], "the ranges are contiguous: each ends where the next begins"


@asynccontextmanager
async def _front(origin: str) -> AsyncIterator[HostileServer]:
    async with HostileServer() as front:
        front.route("*", "*", Proxy(origin))
        yield front


async def test_requests_in_flight_stay_within_concurrency_across_streams(engine, migrated_url) -> None:
    """Slow answers (40 ms): partitions and streams overlap, yet never more than ``concurrency`` requests are
    in flight for the source, and the source's streams run at the same time."""
    async with simulators(["miclinik"], scale=300, seed=5) as sims, _front(sims["miclinik"].origin) as front:
        in_flight, peak, spans = 0, 0, defaultdict(list)

        async def slow(seen: Received) -> Proxy:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            started = asyncio.get_running_loop().time()
            try:
                await asyncio.sleep(0.04)
            finally:
                in_flight -= 1
            spans[seen.path.rsplit("/", 1)[-1]].append((started, started + 0.04))
            return Proxy(sims["miclinik"].origin)

        front.route("GET", f"{API}/*", slow)
        source = source_for("miclinik", front.url(API), page_size=PAGE, concurrency=3)
        report = await run_extract(_settings(migrated_url, source))
    assert report.status == "succeeded", report.failures()
    assert peak == 3
    overlap = [
        (a, b)
        for a in spans["thirdparties"]
        for b in spans["orders"]
        if a[0] < b[1] and b[0] < a[1]  # two intervals that intersect
    ]
    assert overlap, "thirdparties and orders never had requests in flight together"


def _without_upper_bound(origin: str, http: aiohttp.ClientSession):
    async def handler(seen: Received) -> Answer:
        query = {k: v[0] for k, v in parse_qs(seen.query).items()}
        if "sqlfilters" in query:
            query["sqlfilters"] = re.sub(r" and \(t\.rowid:<=:\d+\)", "", query["sqlfilters"])
        headers = {k: v for k, v in seen.headers if k.lower() in ("dolapikey", "accept")}
        async with http.get(origin + seen.path, params=query, headers=headers) as upstream:
            body = await upstream.read()
            return Answer(upstream.status, {"Content-Type": upstream.content_type}, body)

    return handler


async def test_a_server_ignoring_the_upper_bound_fails_the_stream_and_one_partition_reads_it(
    engine, migrated_url
) -> None:
    """A server that drops ``(t.rowid:<=:N)`` answers rows past a range's end: the stream fails naming
    ``partitions: 1``, deletes nothing, and with that setting the same server is read in full."""
    async with (
        simulators(["miclinik"], scale=300, seed=5) as sims,
        _front(sims["miclinik"].origin) as front,
        aiohttp.ClientSession() as http,
    ):
        sim = sims["miclinik"]
        front.route("GET", f"{API}/thirdparties", _without_upper_bound(sim.origin, http))
        source = source_for("miclinik", front.url(API), page_size=PAGE)
        report = await run_extract(_settings(migrated_url, source), full=True)
        failed = {r.stream: r.error for r in report.results if r.failed}
        assert list(failed) == ["thirdparties"] and "set partitions: 1" in failed["thirdparties"]
        assert all(r.counts.deleted == 0 for r in report.results)
        again = await run_extract(_settings(migrated_url, source.model_copy(update={"partitions": 1})), full=True)
        assert again.status == "succeeded", again.failures()
        assert await staged_keys(engine, source.name) == truth_keys(sim.state, ENTITIES)


async def test_a_stopped_split_scan_resumes_each_partition_and_asks_no_staged_page_again(engine, migrated_url) -> None:
    """The open-ended partition fails after its first page (HTTP 500 until retries run out): the other
    partitions finish. The next run asks no probe, nothing of a finished partition, nothing before a
    partition's cursor, and staging equals the simulator's truth."""
    async with simulators(["miclinik"], scale=400, seed=5) as sims, _front(sims["miclinik"].origin) as front:
        sim, first_pages = sims["miclinik"], {}

        def flaky(seen: Received) -> Answer | Proxy:
            query = {k: v[0] for k, v in parse_qs(seen.query).items()}
            if query.get("sortorder") != "DESC":
                after, upto = _bounds(query)
                if upto is None and first_pages.setdefault("open", after) != after:
                    return Answer(500, body=b"busy")
            return Proxy(sim.origin)

        front.route("GET", f"{API}/thirdparties", flaky)
        source = source_for("miclinik", front.url(API), page_size=PAGE, max_attempts=2)
        first = await run_extract(_settings(migrated_url, source), streams=["thirdparties"])
        assert first.status == "failed"
        async with session_factory(engine)() as session:
            scan = (await load_state(session, source.name, "thirdparties")).scan
        assert scan is not None and len(scan.ranges) == 4
        assert scan.cursors[:3] == [None, None, None] and scan.cursors[3] is not None
        front.route("GET", f"{API}/thirdparties", Proxy(sim.origin))
        boundary = len(sim.state.request_log)
        second = await run_extract(_settings(migrated_url, source), streams=["thirdparties"])
        assert second.status == "succeeded", second.failures()
        asked = [e for e in sim.state.request_log[boundary:] if e["path"] == f"{API}/thirdparties"]
        assert asked and all(e["query"].get("sortorder") != "DESC" for e in asked), "no new probe"
        assert all(_bounds(e["query"])[1] is None for e in asked), "finished partitions are not asked again"
        assert min(_bounds(e["query"])[0] for e in asked) == int(scan.cursors[3]["after"])
        assert await staged_keys(engine, source.name) == truth_keys(sim.state, {"customer"})


@given(
    after=st.integers(0, 10**6),
    width=st.integers(1, 10**7),
    parts=st.integers(1, 64),
    page_size=st.integers(1, 5000),
)
def test_id_ranges_cover_every_id_after_the_cursor_once(after: int, width: int, parts: int, page_size: int) -> None:
    """Contiguous ranges from ``after``, the last open-ended, at most ``parts``, each a page wide or more."""
    highest = after + width
    ranges = id_ranges(after, highest, parts, page_size)
    assert ranges[0][0] == after and ranges[-1][1] is None
    assert 1 <= len(ranges) <= parts
    for (_, upper), (lower, _) in itertools.pairwise(ranges):
        assert upper == lower
    if len(ranges) > 1:
        assert all(upper - lower >= page_size for lower, upper in ranges[:-1])
        assert highest - ranges[-1][0] >= page_size


async def test_the_page_queue_is_bounded_by_bytes_and_lets_one_large_page_through() -> None:
    """Puts wait while the bytes held would pass the bound; an item larger than the bound enters an
    empty queue alone; order is kept."""
    queue: PageQueue[str] = PageQueue(max_bytes=100)
    await queue.put("a", 60)
    blocked = asyncio.ensure_future(queue.put("b", 60))
    await asyncio.sleep(0.01)
    assert not blocked.done() and queue.held == 60
    assert await queue.get() == "a"
    await asyncio.wait_for(blocked, 1)
    assert await queue.get() == "b"
    await asyncio.wait_for(queue.put("huge", 1000), 1)
    assert queue.held == 1000 and queue.get_nowait() == "huge" and queue.get_nowait() is None
