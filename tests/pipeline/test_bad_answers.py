"""One bad answer fails one stream, or rejects one record: the rest of the run stages in full,
previously staged rows stay as they were, nothing is marked deleted on a bad answer's word, and
the run ends with its true status, within its bounds.

Each test stages a good run of the miclinik simulator through a recording proxy
(:class:`tests.support.hostile.HostileServer`), then has the proxy spoil some answers and runs
again with ``--full`` (the run that would mark deletions).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import pytest
from sqlalchemy import func, select

from etl.db.staging import RejectedRecord, StagedRecord, StreamState
from jobs.extract import ExtractReport, run_extract
from tests.support import shipped_settings, simulators, source_for, staged_content
from tests.support.hostile import Answer, HostileServer, Proxy, Received

API = "/api/index.php"
PAGE = 20
STREAMS = {"thirdparties", "products", "orders", "users"}


@dataclass
class Rig:
    """The simulator, the proxy in front of it, and how to run an extract through the proxy."""

    front: HostileServer
    origin: str
    database_url: str
    http: aiohttp.ClientSession

    async def extract(self, *, full: bool = True, **overrides: Any) -> ExtractReport:
        source = source_for("miclinik", self.front.url(API), page_size=PAGE, **overrides)
        settings = shipped_settings(self.database_url).model_copy(update={"sources": [source]})
        return await run_extract(settings, full=full)

    def spoil(self, resource: str, edit: Callable[[list[Any], Received], Any]) -> None:
        """Answer ``resource`` list pages with ``edit(records, request)`` of the simulator's own answer:
        a list of records to send, or an :class:`Answer` to send instead."""

        async def handler(seen: Received) -> Answer:
            headers = {k: v for k, v in seen.headers if k.lower() in ("dolapikey", "accept")}
            async with self.http.get(self.origin + seen.path_qs, headers=headers) as upstream:
                body = await upstream.read()
            records = orjson.loads(body) if upstream.status == 200 else []
            if isinstance(records, dict):  # a counted first page: {"data": [...], "pagination": ...}
                records = records["data"]
            if "sortorder=DESC" in seen.query:  # the partition probe asks no page: it is answered unspoiled
                return Answer(upstream.status, {"Content-Type": "application/json"}, body=body)
            changed = edit(records, seen)
            if isinstance(changed, Answer):
                return changed
            return Answer(200, {"Content-Type": "application/json"}, body=_json(changed))

        self.front.route("GET", f"{API}/{resource}", handler)


def _json(records: Any) -> bytes:
    return b"[" + b",".join(r if isinstance(r, bytes) else orjson.dumps(r) for r in records) + b"]"


@asynccontextmanager
async def rig(database_url: str, **options: Any) -> AsyncIterator[Rig]:
    async with (
        simulators(["miclinik"], scale=60, options=options or None) as sims,
        HostileServer() as front,
        aiohttp.ClientSession() as http,
    ):
        origin = sims["miclinik"].origin
        front.route("*", "*", Proxy(origin))
        yield Rig(front, origin, database_url, http)


def statuses(report: ExtractReport) -> dict[str, tuple[str, str]]:
    return {r.stream: (r.status, r.error or "") for r in report.results}


async def deleted_count(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).where(StagedRecord.deleted_at.is_not(None)))).scalar_one()


async def rejections(engine) -> list[tuple[str | None, str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(RejectedRecord.source_id, RejectedRecord.reason, RejectedRecord.payload))
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_answers_that_are_not_lists_fail_their_stream_and_end_nothing(migrated_url: str, engine) -> None:
    """An empty 200 body, a bare 304 and a JSON object where a list is due each fail their stream (never
    read as "no more rows"); the other stream stages in full and no staged row changes or is deleted."""
    async with rig(migrated_url) as r:
        assert (await r.extract()).status == "succeeded"
        before = await staged_content(engine)
        r.spoil("orders", lambda records, seen: Answer(200, {"Content-Type": "application/json"}, b""))
        r.spoil("products", lambda records, seen: Answer(304))
        r.spoil("users", lambda records, seen: Answer(200, body={"total": 0}))
        report = await r.extract()
    outcome = statuses(report)
    assert report.status == "partial"
    assert outcome["thirdparties"] == ("succeeded", "")
    assert outcome["orders"][0] == "failed" and "empty body where a JSON list is due" in outcome["orders"][1]
    assert outcome["products"][0] == "failed" and "304" in outcome["products"][1]
    assert outcome["users"][0] == "failed" and "expected a JSON list" in outcome["users"][1]
    assert await staged_content(engine) == before
    assert await deleted_count(engine) == 0


async def test_a_deep_answer_fails_its_stream_and_a_deep_record_is_rejected_alone(migrated_url: str, engine) -> None:
    """A 100,000-deep JSON body fails its stream with the reason named; a 100,000-deep record inside an
    otherwise good page is rejected alone and its neighbours are staged."""
    deep = b"[" * 100_000 + b"]" * 100_000
    deep_object = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    async with rig(migrated_url) as r:
        r.spoil("orders", lambda records, seen: Answer(200, {"Content-Type": "application/json"}, deep_object))

        def deep_record(records: list[Any], seen: Received) -> list[Any]:
            if "rowid:>:0)" in seen.query.replace("%3A", ":").replace("%29", ")"):
                records[3]["note_private"] = "DEEP"
                return [orjson.dumps(rec).replace(b'"DEEP"', deep) for rec in records]
            return records

        r.spoil("products", deep_record)
        report = await r.extract()
    outcome = statuses(report)
    assert outcome["orders"][0] == "failed" and "nested deeper" in outcome["orders"][1]
    assert outcome["products"][0] == "succeeded" and outcome["thirdparties"][0] == "succeeded"
    products = next(x for x in report.results if x.stream == "products")
    assert products.counts.rejected == 1 and products.counts.new == products.counts.records - 1
    [(source_id, reason, payload)] = await rejections(engine)
    assert source_id is None and "nested deeper" in reason and len(payload) < 70_000
    assert report.status == "partial"


async def test_ids_no_column_can_hold_are_rejected_before_the_insert(migrated_url: str, engine) -> None:
    """Records whose id is longer than the column or holds a NUL are rejected with the reason, escaped and
    cut in rejected_records, while the rest of their page is staged (on PostgreSQL no COPY aborts)."""
    async with rig(migrated_url) as r:

        def bad_ids(records: list[Any], seen: Received) -> list[Any]:
            if records and "rowid:>:0)" in seen.query.replace("%3A", ":").replace("%29", ")"):
                return [{**records[0], "id": "9" * 300}, {**records[0], "id": "12\u0000"}, *records]
            return records

        r.spoil("products", bad_ids)
        report = await r.extract()
    assert report.status == "succeeded", report.failures()
    products = next(x for x in report.results if x.stream == "products")
    assert products.counts.rejected == 2
    reasons = {source_id: reason for source_id, reason, _ in await rejections(engine)}
    assert reasons == {
        "9" * 100 + "...": "id is 300 characters long; staging ids hold at most 128",
        "12\\x00": "id contains a NUL character",
    }


async def test_a_rejected_record_never_makes_its_good_copy_look_deleted(migrated_url: str, engine) -> None:
    """Third parties answered once with invalid UTF-8, once with a NUL, once without an id: the first two
    are rejected yet seen, the third's absence holds the deletions (it may be a staged row); every good
    staged copy stays live and unchanged, and the run says the stream is held."""
    async with rig(migrated_url) as r:
        assert (await r.extract()).status == "succeeded"
        before = await staged_content(engine)

        def spoiled(records: list[Any], seen: Received) -> list[Any]:
            if not records or "rowid:>:0)" not in seen.query.replace("%3A", ":").replace("%29", ")"):
                return records
            raw = [orjson.dumps(rec) for rec in records]
            raw[0] = raw[0].replace(b'"name":"', b'"name":"\xff\xfe', 1)
            raw[1] = raw[1].replace(b'"name":"', b'"name":"\\u0000', 1)
            raw[2] = orjson.dumps({k: v for k, v in records[2].items() if k != "id"})
            return raw

        r.spoil("thirdparties", spoiled)
        report = await r.extract()
    outcome = statuses(report)
    assert outcome["thirdparties"][0] == "held", outcome
    assert "without a readable id" in outcome["thirdparties"][1]
    assert await staged_content(engine) == before
    assert await deleted_count(engine) == 0
    rejected = await rejections(engine)
    reasons = sorted(reason for _, reason, _ in rejected)
    assert len(reasons) == 3 and any("NUL" in x for x in reasons) and any("UTF-8" in x for x in reasons)
    async with engine.connect() as conn:
        flagged = await conn.execute(select(StagedRecord.source_id).where(StagedRecord.rejected_run == report.run_id))
        assert {row[0] for row in flagged} == {source_id for source_id, _, _ in rejected if source_id}
    assert len({source_id for source_id, _, _ in rejected if source_id}) == 2


@pytest.mark.parametrize("stamp", ["soon", 10**20, -5, 5_680_281_600])
async def test_a_status_clock_that_is_not_a_time_costs_nothing(migrated_url: str, engine, stamp: Any) -> None:
    """A ``timestamp_now_utc`` that is text, 10**20, negative or in 2149 is taken for no clock at all:
    every stream stages, and the next scan starts from the local clock less the overlap."""
    async with rig(migrated_url) as r:
        r.front.route("GET", f"{API}/status", Answer(200, body={"success": {"code": 200, "timestamp_now_utc": stamp}}))
        report = await r.extract(full=False)
    assert report.status == "succeeded", report.failures()
    assert {x.stream for x in report.results} == STREAMS
    async with engine.connect() as conn:
        states = (await conn.execute(select(StreamState.state))).scalars().all()
    this_year = str(datetime.now(UTC).year)
    assert {state["watermark"]["tms"][:4] for state in states} <= {this_year, str(int(this_year) - 1)}


async def test_a_server_whose_ids_rise_forever_is_stopped_by_the_scan_bound(migrated_url: str, engine) -> None:
    """Pages of ever-rising ids, no count, no end: the pass stops past 3 x live rows + slack with nothing
    deleted, a message naming the settings to raise and the pass dropped; the other streams stage in full."""
    async with rig(migrated_url) as r:
        assert (await r.extract()).status == "succeeded"
        before = await staged_content(engine)
        live = sum(1 for key in before if key[1] == "product")

        def endless(records: list[Any], seen: Received) -> list[Any]:
            after = int(seen.query.replace("%3A", ":").split("rowid:>:")[1].split(")")[0].split("%29")[0])
            return [{"id": str(after + i), "ref": f"P{after + i}"} for i in range(1, PAGE + 1)]

        r.spoil("products", endless)
        started = time.monotonic()
        report = await r.extract(scan_bound_slack=40)
        elapsed = time.monotonic() - started
    outcome = statuses(report)
    assert outcome["products"][0] == "failed" and "out_of_bounds" in outcome["products"][1]
    assert "scan_bound_slack" in outcome["products"][1]
    assert {s for s, (status, _) in outcome.items() if status == "succeeded"} == STREAMS - {"products"}
    limit = 3 * live + 40
    products = next(x for x in report.results if x.stream == "products")
    assert limit - PAGE < products.counts.records <= limit
    assert await deleted_count(engine) == 0
    assert elapsed < 30
    async with engine.connect() as conn:  # the pass is dropped: the next run starts a new scan
        state = (await conn.execute(select(StreamState.state).where(StreamState.stream == "products"))).scalar_one()
    assert "scan" not in state


async def test_a_record_past_max_record_bytes_is_rejected_and_kept_cut(migrated_url: str, engine) -> None:
    """A 1 MB record under ``max_record_bytes: 65536`` is rejected with both sizes named, kept cut to
    the rejected-payload limit; the rest of its page is staged."""
    async with rig(migrated_url) as r:

        def huge(records: list[Any], seen: Received) -> list[Any]:
            if records and "rowid:>:0)" in seen.query.replace("%3A", ":").replace("%29", ")"):
                records[0]["note_private"] = "x" * 1_000_000
            return records

        r.spoil("orders", huge)
        report = await r.extract(max_record_bytes=65_536)
    assert report.status == "succeeded", report.failures()
    [(source_id, reason, payload)] = await rejections(engine)
    assert source_id is not None and "over max_record_bytes 65,536" in reason
    assert len(payload) < 70_000 and payload.endswith("in all]")


async def test_a_trickling_server_is_stopped_by_the_stall_timeout(migrated_url: str, engine) -> None:
    """An orders page trickled a byte every half second stops its stream after ``stall_timeout``,
    resumable, while the other streams stage in full and the run ends within the bound."""
    async with rig(migrated_url) as r:
        r.front.route("GET", f"{API}/orders", Answer(200, {"Content-Type": "application/json"}, b"[" + b" " * 200 + b"]",
                                                    trickle=(1, 0.5)))  # fmt: skip
        started = time.monotonic()
        report = await r.extract(stall_timeout=1.5)
        elapsed = time.monotonic() - started
    outcome = statuses(report)
    assert outcome["orders"][0] == "failed" and "stall_timeout" in outcome["orders"][1]
    assert {s for s, (status, _) in outcome.items() if status == "succeeded"} == STREAMS - {"orders"}
    assert elapsed < 15


async def test_a_source_that_does_not_open_within_the_stall_timeout_ends_alone(migrated_url: str, engine) -> None:
    """A ``GET /status`` trickled a byte every half second ends its source after ``stall_timeout``, the
    run closed as failed within the bound, rather than after the whole call budget."""
    async with rig(migrated_url) as r:
        r.front.route("GET", f"{API}/status", Answer(200, {"Content-Type": "application/json"}, b" " * 200 + b"{}",
                                                    trickle=(1, 0.5)))  # fmt: skip
        started = time.monotonic()
        report = await r.extract(stall_timeout=1.5)
        elapsed = time.monotonic() - started
    assert report.status == "failed" and elapsed < 10
    assert all("did not open within 1.5 s (stall_timeout)" in (x.error or "") for x in report.results)
