"""A response body is bounded by max_response_bytes counted after decompression: a bomb or an announced
giant fails its call at once, is not retried, and fails only its own stream."""

from __future__ import annotations

import time
import tracemalloc
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from etl.db.staging import StagedRecord
from etl.http.errors import ResponseTooLarge, ok
from etl.http.response import Request
from etl.http.transport import HttpTransport
from jobs.extract import run_extract
from tests.support import shipped_settings, simulators, source_for
from tests.support.hostile import Answer, HostileServer, Proxy, zeros

LIMIT = 1 << 20
BOMB = 256 << 20  # decoded; ~260 KB on the wire


async def test_a_body_over_the_limit_fails_as_it_is_read_and_an_announced_one_before() -> None:
    """A body of exactly the limit is read; one byte more, or a gzip bomb, fails while reading without
    holding the decoded body; a Content-Length over the limit fails before the body arrives; none is retried."""
    async with HostileServer() as server:
        server.route("GET", "/exact", Answer(body=b"x" * LIMIT))
        server.route("GET", "/over", Answer(body=b"x" * (LIMIT + 1)))
        server.route("GET", "/bomb", Answer(body=zeros(BOMB), gzip=True))
        # Promises 10 GB, sends two bytes, then keeps the connection: only an early refusal ends quickly.
        server.route("GET", "/announced", Answer(headers={"Content-Length": str(10**10)}, body=b"{}", stall=3))
        source = source_for("miclinik", server.base_url, max_response_bytes=LIMIT, max_attempts=1)
        async with HttpTransport(source) as transport:

            async def get(path: str) -> bytes:
                return await transport.call(
                    Request("GET", server.url(path)), lambda r: ok(r.body), what=path, safe=True
                )

            assert len(await get("/exact")) == LIMIT
            with pytest.raises(ResponseTooLarge, match=r"body is over max_response_bytes \(1,048,576 bytes"):
                await get("/over")
            tracemalloc.start()
            try:
                with pytest.raises(ResponseTooLarge, match="max_response_bytes"):
                    await get("/bomb")
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert peak < 8 * LIMIT, f"{peak:,} bytes held for a {LIMIT:,}-byte limit"
            started = time.monotonic()
            with pytest.raises(ResponseTooLarge, match="announces 10,000,000,000 bytes, over max_response_bytes"):
                await get("/announced")
            assert time.monotonic() - started < 2
    assert [seen.path for seen in server.received] == ["/exact", "/over", "/bomb", "/announced"]


async def test_a_gzip_bomb_on_one_list_fails_that_stream_alone_and_deletes_nothing(migrated_url, engine) -> None:
    """A list page that decompresses past max_response_bytes fails its stream naming the limit; the other
    streams stage in full and the failed stream's staged rows stay as they were."""
    async with simulators(["miclinik"], scale=40) as sims, HostileServer() as front:
        sim = sims["miclinik"]
        front.route("*", "*", Proxy(sim.origin))
        source = source_for("miclinik", front.url(urlsplit(sim.base_url).path), max_response_bytes=LIMIT)
        settings = shipped_settings(migrated_url).model_copy(update={"sources": [source]})
        assert (await run_extract(settings)).status == "succeeded"
        before = await staged_rows(engine)
        front.route("GET", "/api/index.php/products", Answer(body=zeros(BOMB), gzip=True))
        front.forget()
        report = await run_extract(settings)
    assert report.status == "partial"
    failed = {r.stream: r.error for r in report.results if r.failed}
    assert list(failed) == ["products"]
    assert "response_too_large" in failed["products"] and "max_response_bytes (1,048,576 bytes" in failed["products"]
    assert sum(seen.path.endswith("/products") for seen in front.received) == 1
    assert await staged_rows(engine) == before


async def staged_rows(engine) -> set[tuple]:
    """Every staged row with its hash and deletion mark."""
    columns = (StagedRecord.entity, StagedRecord.source_id, StagedRecord.content_hash, StagedRecord.deleted_at)
    async with engine.connect() as conn:
        return {tuple(row) for row in await conn.execute(select(*columns))}
